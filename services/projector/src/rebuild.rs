//! Rebuilding a projection from the whole log while its read model stays up.
//!
//! 1. **Shadow.** The projection's DDL runs in a fresh schema `rebuild_<name>`, with
//!    that schema first on the `search_path`, so the projection's unqualified table
//!    names resolve to the new tables and everything else it reads still resolves to
//!    the live schema. The result must equal the live tables in every column,
//!    default, constraint, index and trigger, or the rebuild refuses before doing
//!    any work: a swap must never change the shape that the pages and later
//!    migrations rely on (constraint names are mapped to answers, for one). Grants
//!    on the live tables are copied.
//! 2. **Catch up.** The shadow is filled from the start of the log under its own
//!    checkpoint (`rebuild:<name>`), in ordinary short steps. The live projection
//!    keeps running and the live tables keep answering; nothing of theirs is locked.
//! 3. **Swap**, in one transaction: lock the live checkpoint (the live loop, in any
//!    process, skips the projection while it is locked), apply the last events to the
//!    shadow, move the live tables out and the shadow tables in (`ALTER TABLE ... SET
//!    SCHEMA` keeps every name, index and constraint name), give the live checkpoint
//!    the shadow's position, drop the old tables. Queries on the live tables wait
//!    for the swap's few milliseconds and then see the new tables, prepared
//!    statements included (PostgreSQL re-plans them when a table they use moves).
//!    The swap waits at most a short `lock_timeout` for the table locks, so that a
//!    long query on a live table makes the swap retry instead of making every
//!    reader queue behind it.
//!
//! Why the shadow's position is never behind the live one: the live checkpoint `L`
//! was written by a committed step that had read below some watermark `W_L`; the
//! swap reads after it holds the lock, so its watermark `W_s` is at least `W_L`
//! (every xid below `W_L` had finished, and finished transactions stay finished),
//! and the shadow's last read covers everything below `W_s`. The swap still checks.
//!
//! A rebuild that fails or is killed leaves only its shadow schema and checkpoint,
//! which the next rebuild drops; the live tables are untouched until the swap
//! commits.

use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use kujira_eventlog::{Checkpoint, EventStore, read_batch_with};
use sqlx::{PgConnection, PgPool};

use crate::status::{self, ProjectionState};
use crate::step::{self, Mode, Outcome, Target};
use crate::{Projection, Rebuild};

/// Events per step while the shadow catches up. Each step holds an xid (and so
/// holds back every reader of the log) while it applies, so steps stay short.
const REBUILD_BATCH: i64 = 1_000;
/// How long the swap waits for a lock before it rolls back and tries again.
const SWAP_LOCK_TIMEOUT: &str = "2s";
const SWAP_ATTEMPTS: u32 = 30;
/// How often a long rebuild logs its progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// What a rebuild did.
#[derive(Debug, Clone, PartialEq)]
pub struct RebuildReport {
    pub name: String,
    pub tables: Vec<String>,
    /// Events applied to the new tables, the swap's last ones included.
    pub events_applied: u64,
    /// The checkpoint the live projection carries on from.
    pub swapped_at: Checkpoint,
    pub elapsed: Duration,
    /// Swap attempts (more than 1 when a lock was not granted in time).
    pub swap_attempts: u32,
}

impl std::fmt::Display for RebuildReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "rebuilt {} ({}): {} events in {:.1} s, live from position {}",
            self.name,
            self.tables.join(", "),
            self.events_applied,
            self.elapsed.as_secs_f64(),
            self.swapped_at.position
        )
    }
}

struct Names {
    projection: &'static str,
    shadow: String,
    retired: String,
    reader: String,
}

pub(crate) async fn rebuild(
    store: &EventStore,
    p: &dyn Projection,
    stall_limit: Duration,
) -> anyhow::Result<RebuildReport> {
    let (tables, ddl) = match p.rebuild() {
        Rebuild::Tables { tables, ddl } => (tables, ddl),
        Rebuild::Refused(reason) => {
            bail!("projection {} cannot be rebuilt: {reason}", p.name())
        }
    };
    ensure!(
        !tables.is_empty(),
        "projection {} cannot be rebuilt: it declares no tables",
        p.name()
    );
    let names = Names {
        projection: p.name(),
        shadow: format!("rebuild_{}", p.name()),
        retired: format!("retired_{}", p.name()),
        reader: format!("rebuild:{}", p.name()),
    };
    let pool = store.pool();
    // Registered only once it is clear that it can be rebuilt: the swap records it
    // as caught up.
    status::ensure(pool, &[p.name()]).await?;

    // One rebuild of a projection at a time, whatever the process: a session lock on
    // a connection of its own, released when the connection closes, so a killed
    // rebuild never leaves it behind.
    let mut guard = pool.acquire().await?;
    let locked: bool = sqlx::query_scalar(
        "SELECT pg_try_advisory_lock(hashtext('kujira.projector.rebuild'), hashtext($1))",
    )
    .bind(names.projection)
    .fetch_one(&mut *guard)
    .await?;
    ensure!(
        locked,
        "a rebuild of projection {} is already running",
        names.projection
    );
    let result = run(store, p, tables, ddl, &names, stall_limit).await;
    if result.is_err() {
        drop_shadow(pool, &names).await;
    }
    sqlx::query("SELECT pg_advisory_unlock(hashtext('kujira.projector.rebuild'), hashtext($1))")
        .bind(names.projection)
        .execute(&mut *guard)
        .await
        .ok();
    result
}

async fn run(
    store: &EventStore,
    p: &dyn Projection,
    tables: &'static [&'static str],
    ddl: &'static str,
    names: &Names,
    stall_limit: Duration,
) -> anyhow::Result<RebuildReport> {
    let started = Instant::now();
    let pool = store.pool();
    let live = prepare_shadow(pool, tables, ddl, names).await?;
    tracing::info!(projection = names.projection, schema = %names.shadow, "rebuild: shadow tables created");

    let mut applied = 0u64;
    let mut last_report = Instant::now();
    loop {
        let target = Target::Shadow {
            reader: &names.reader,
            schema: &names.shadow,
        };
        let applying = step::Applying::default();
        match step::step(
            store,
            p,
            target,
            REBUILD_BATCH,
            Mode::Batch,
            stall_limit,
            &applying,
        )
        .await?
        {
            Outcome::Applied {
                applied: n,
                full,
                next,
            } => {
                applied += n;
                if last_report.elapsed() >= PROGRESS_EVERY {
                    last_report = Instant::now();
                    tracing::info!(
                        projection = names.projection,
                        position = next.position,
                        applied,
                        "rebuild: catching up"
                    );
                }
                if !full {
                    break;
                }
            }
            Outcome::Busy => bail!(
                "the checkpoint {} is locked by another transaction",
                names.reader
            ),
        }
    }
    for (table, _) in &live {
        sqlx::query(&format!(
            "ANALYZE {}.{}",
            ident(&names.shadow),
            ident(table)
        ))
        .execute(pool)
        .await
        .with_context(|| format!("cannot analyse the new {table}"))?;
    }

    let mut attempt = 0;
    loop {
        attempt += 1;
        match swap(pool, p, &live, names, stall_limit).await {
            Ok((tail, swapped_at)) => {
                return Ok(RebuildReport {
                    name: names.projection.to_owned(),
                    tables: tables.iter().map(|t| (*t).to_owned()).collect(),
                    events_applied: applied + tail,
                    swapped_at,
                    elapsed: started.elapsed(),
                    swap_attempts: attempt,
                });
            }
            Err(e) if is_lock_timeout(&e) && attempt < SWAP_ATTEMPTS => {
                tracing::warn!(
                    projection = names.projection,
                    attempt,
                    "rebuild: the swap did not get its locks in time (a long query or a \
                     running batch on the live projection); trying again"
                );
                tokio::time::sleep(Duration::from_millis(200) * attempt.min(10)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Creates the shadow tables, checks them against the live ones, copies grants.
/// Returns each table with the schema its live copy is in.
async fn prepare_shadow(
    pool: &PgPool,
    tables: &[&str],
    ddl: &str,
    names: &Names,
) -> anyhow::Result<Vec<(String, String)>> {
    let mut tx = pool.begin().await?;
    let mut live = Vec::with_capacity(tables.len());
    for table in tables {
        let schema: Option<String> = sqlx::query_scalar(
            "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.oid = to_regclass(quote_ident($1)) AND c.relkind IN ('r', 'p')",
        )
        .bind(table)
        .fetch_one(&mut *tx)
        .await?;
        let Some(schema) = schema else {
            bail!(
                "table {table} of projection {} does not exist; have the migrations run?",
                names.projection
            );
        };
        ensure!(
            schema != names.shadow,
            "table {table} resolves to the shadow schema"
        );
        live.push(((*table).to_owned(), schema));
    }
    drop_shadow_in(&mut tx, names).await?;
    sqlx::query(&format!("CREATE SCHEMA {}", ident(&names.shadow)))
        .execute(&mut *tx)
        .await?;
    let path: String = sqlx::query_scalar("SELECT current_setting('search_path')")
        .fetch_one(&mut *tx)
        .await?;
    set_path(&mut tx, &format!("{}, {path}", ident(&names.shadow))).await?;
    sqlx::raw_sql(ddl)
        .execute(&mut *tx)
        .await
        .with_context(|| {
            format!(
                "the DDL of projection {} fails in the shadow schema",
                names.projection
            )
        })?;

    let strays: Vec<String> = sqlx::query_scalar(
        "SELECT pg_describe_object(d.classid, d.objid, d.objsubid) FROM pg_depend d \
         WHERE d.refclassid = 'pg_namespace'::regclass AND d.deptype = 'n' \
           AND d.refobjid = (SELECT oid FROM pg_namespace WHERE nspname = $1) \
           AND NOT (d.classid = 'pg_class'::regclass AND ( \
                 d.objid IN (SELECT c.oid FROM pg_class c \
                             WHERE c.relnamespace = d.refobjid AND c.relname = ANY($2) \
                               AND c.relkind IN ('r', 'p')) \
              OR EXISTS (SELECT 1 FROM pg_depend o JOIN pg_class t ON t.oid = o.refobjid \
                         WHERE o.classid = 'pg_class'::regclass AND o.objid = d.objid \
                           AND o.refclassid = 'pg_class'::regclass AND o.deptype IN ('a', 'i') \
                           AND t.relnamespace = d.refobjid AND t.relname = ANY($2)))) \
         ORDER BY 1",
    )
    .bind(&names.shadow)
    .bind(tables)
    .fetch_all(&mut *tx)
    .await?;
    let missing: Vec<&str> = {
        let mut missing = Vec::new();
        for table in tables {
            let found: Option<String> = sqlx::query_scalar(
                "SELECT to_regclass(quote_ident($1) || '.' || quote_ident($2))::text",
            )
            .bind(&names.shadow)
            .bind(table)
            .fetch_one(&mut *tx)
            .await?;
            if found.is_none() {
                missing.push(*table);
            }
        }
        missing
    };
    ensure!(
        missing.is_empty() && strays.is_empty(),
        "the DDL of projection {} must create exactly its tables ({}): {}{}",
        names.projection,
        tables.join(", "),
        if missing.is_empty() {
            String::new()
        } else {
            format!("it does not create {}. ", missing.join(", "))
        },
        if strays.is_empty() {
            String::new()
        } else {
            format!("it also creates {}", strays.join(", "))
        }
    );

    let mut differences = Vec::new();
    for (table, schema) in &live {
        set_path(&mut tx, &path).await?;
        let live_shape = describe(&mut tx, schema, table).await?;
        set_path(&mut tx, &format!("{}, {path}", ident(&names.shadow))).await?;
        let new_shape = describe(&mut tx, &names.shadow, table).await?;
        for line in &live_shape {
            if !new_shape.contains(line) {
                differences.push(format!("{table}: live has `{line}`"));
            }
        }
        for line in &new_shape {
            if !live_shape.contains(line) {
                differences.push(format!("{table}: the DDL gives `{line}`"));
            }
        }
        if differences.is_empty() && live_shape != new_shape {
            differences.push(format!("{table}: the columns are in another order"));
        }
    }
    ensure!(
        differences.is_empty(),
        "the DDL of projection {} no longer matches its live tables (update \
         Projection::rebuild with the migrations): {}",
        names.projection,
        differences.join("; ")
    );

    for (table, schema) in &live {
        let grants: Vec<String> = sqlx::query_scalar(
            "SELECT format('GRANT %s ON TABLE %I.%I TO %s%s', a.privilege_type, $3::text, $2::text, \
                    CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END, \
                    CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END) \
             FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a \
             WHERE c.oid = to_regclass(quote_ident($1) || '.' || quote_ident($2)) \
               AND a.grantee <> c.relowner",
        )
        .bind(schema)
        .bind(table)
        .bind(&names.shadow)
        .fetch_all(&mut *tx)
        .await?;
        for grant in grants {
            sqlx::query(&grant).execute(&mut *tx).await?;
        }
    }
    sqlx::query("INSERT INTO reader_checkpoints (reader) VALUES ($1)")
        .bind(&names.reader)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(live)
}

/// The shape of a table as lines of text, with the names of objects in its own
/// schema unqualified (the caller puts that schema first on the search path), so
/// that a live table and its shadow copy describe the same when they are the same.
async fn describe(tx: &mut PgConnection, schema: &str, table: &str) -> anyhow::Result<Vec<String>> {
    let lines: Vec<String> = sqlx::query_scalar(
        "WITH r AS (SELECT to_regclass(quote_ident($1) || '.' || quote_ident($2)) AS oid) \
         SELECT line FROM ( \
           SELECT 0 AS k, '' AS o, 'table kind ' || c.relkind::text || ' persistence ' || c.relpersistence::text \
                  || coalesce(' with ' || array_to_string(c.reloptions, ','), '') AS line \
           FROM pg_class c, r WHERE c.oid = r.oid \
           UNION ALL \
           SELECT 1, lpad(row_number() OVER (ORDER BY a.attnum)::text, 5, '0'), \
                  'column ' || quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod) \
                  || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END \
                  || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '') \
                  || CASE a.attidentity WHEN 'a' THEN ' identity always' \
                                        WHEN 'd' THEN ' identity by default' ELSE '' END \
                  || CASE a.attgenerated WHEN 's' THEN ' generated stored' ELSE '' END \
                  || CASE WHEN a.attcollation <> ty.typcollation \
                          THEN ' collate ' || a.attcollation::regcollation::text ELSE '' END \
                  || ' storage ' || a.attstorage::text \
                  || CASE WHEN a.attcompression <> '' \
                          THEN ' compression ' || a.attcompression::text ELSE '' END \
           FROM pg_attribute a JOIN r ON a.attrelid = r.oid \
           JOIN pg_type ty ON ty.oid = a.atttypid \
           LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
           WHERE a.attnum > 0 AND NOT a.attisdropped \
           UNION ALL \
           SELECT 2, co.conname, 'constraint ' || quote_ident(co.conname) || ' ' \
                  || pg_get_constraintdef(co.oid) \
                  || CASE WHEN co.condeferrable THEN ' deferrable' ELSE '' END \
           FROM pg_constraint co JOIN r ON co.conrelid = r.oid \
           UNION ALL \
           SELECT 3, ic.relname, 'index ' || pg_get_indexdef(i.indexrelid) \
           FROM pg_index i JOIN r ON i.indrelid = r.oid JOIN pg_class ic ON ic.oid = i.indexrelid \
           UNION ALL \
           SELECT 4, tg.tgname, 'trigger ' || pg_get_triggerdef(tg.oid) \
           FROM pg_trigger tg JOIN r ON tg.tgrelid = r.oid WHERE NOT tg.tgisinternal \
         ) shape ORDER BY k, o",
    )
    .bind(schema)
    .bind(table)
    .fetch_all(&mut *tx)
    .await
    .with_context(|| format!("cannot describe {schema}.{table}"))?;
    // Index and trigger definitions always name their table's schema, which is the
    // one thing that differs between a live table and its shadow.
    // PostgreSQL quotes the schema only when it must; strip either spelling.
    let spellings = [format!("{schema}."), format!("{}.", ident(schema))];
    let lines = lines
        .into_iter()
        .map(|mut l| {
            if l.starts_with("index ") || l.starts_with("trigger ") {
                for s in &spellings {
                    l = l
                        .replace(&format!(" ON {s}"), " ON ")
                        .replace(&format!(" ON ONLY {s}"), " ON ONLY ");
                }
            }
            l
        })
        .collect();
    Ok(lines)
}

/// The swap transaction. Returns how many events it applied and the position the
/// live projection carries on from.
async fn swap(
    pool: &PgPool,
    p: &dyn Projection,
    live: &[(String, String)],
    names: &Names,
    stall_limit: Duration,
) -> anyhow::Result<(u64, Checkpoint)> {
    let mut tx = pool.begin().await?;
    let path: String = sqlx::query_scalar("SELECT current_setting('search_path')")
        .fetch_one(&mut *tx)
        .await?;
    step::set_limits(&mut tx, Some(&names.shadow), stall_limit).await?;
    sqlx::query("SELECT set_config('lock_timeout', $1, true)")
        .bind(SWAP_LOCK_TIMEOUT)
        .execute(&mut *tx)
        .await?;

    // From here the live projection pauses, in every process.
    let live_at = EventStore::lock_checkpoint(&mut tx, names.projection).await?;
    let mut at = EventStore::lock_checkpoint(&mut tx, &names.reader).await?;
    let mut tail = 0;
    loop {
        let batch = read_batch_with(&mut *tx, at, REBUILD_BATCH, p.event_types()).await?;
        step::apply_one_by_one(&mut tx, p, &batch.events, &step::Applying::default())
            .await
            .with_context(|| format!("projection {} failed", names.projection))?;
        tail += batch.events.len() as u64;
        at = batch.next;
        if !batch.full {
            break;
        }
    }
    ensure!(
        at >= live_at,
        "the rebuilt copy of {} ends at {:?}, behind the live one at {:?}; nothing was changed",
        names.projection,
        at,
        live_at
    );

    set_path(&mut tx, &path).await?;
    sqlx::query(&format!(
        "DROP SCHEMA IF EXISTS {} CASCADE",
        ident(&names.retired)
    ))
    .execute(&mut *tx)
    .await?;
    sqlx::query(&format!("CREATE SCHEMA {}", ident(&names.retired)))
        .execute(&mut *tx)
        .await?;
    for (table, schema) in live {
        sqlx::query(&format!(
            "ALTER TABLE {}.{} SET SCHEMA {}",
            ident(schema),
            ident(table),
            ident(&names.retired)
        ))
        .execute(&mut *tx)
        .await?;
        sqlx::query(&format!(
            "ALTER TABLE {}.{} SET SCHEMA {}",
            ident(&names.shadow),
            ident(table),
            ident(schema)
        ))
        .execute(&mut *tx)
        .await?;
    }
    // RESTRICT: a view or a foreign key on an old table makes the swap fail loudly
    // instead of silently dropping what depends on it.
    let old: Vec<String> = live
        .iter()
        .map(|(t, _)| format!("{}.{}", ident(&names.retired), ident(t)))
        .collect();
    sqlx::query(&format!("DROP TABLE {} RESTRICT", old.join(", ")))
        .execute(&mut *tx)
        .await
        .context("cannot drop the old tables: does a view or a foreign key use them?")?;
    sqlx::query(&format!("DROP SCHEMA {} RESTRICT", ident(&names.retired)))
        .execute(&mut *tx)
        .await?;
    sqlx::query(&format!("DROP SCHEMA {} RESTRICT", ident(&names.shadow)))
        .execute(&mut *tx)
        .await?;
    EventStore::save_checkpoint(&mut tx, names.projection, at).await?;
    sqlx::query("DELETE FROM reader_checkpoints WHERE reader = $1")
        .bind(&names.reader)
        .execute(&mut *tx)
        .await?;
    // Whatever the live copy had failed on, the new one got past it.
    status::mark_ok(&mut tx, names.projection, ProjectionState::CaughtUp).await?;
    tx.commit().await?;
    Ok((tail, at))
}

async fn drop_shadow(pool: &PgPool, names: &Names) {
    let result = async {
        let mut tx = pool.begin().await?;
        drop_shadow_in(&mut tx, names).await?;
        tx.commit().await
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(projection = names.projection, error = %e, "cannot drop the rebuild's shadow schema; the next rebuild will");
    }
}

async fn drop_shadow_in(tx: &mut PgConnection, names: &Names) -> sqlx::Result<()> {
    sqlx::query(&format!(
        "DROP SCHEMA IF EXISTS {} CASCADE",
        ident(&names.shadow)
    ))
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM reader_checkpoints WHERE reader = $1")
        .bind(&names.reader)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

async fn set_path(tx: &mut PgConnection, path: &str) -> sqlx::Result<()> {
    sqlx::query("SELECT set_config('search_path', $1, true)")
        .bind(path)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

fn is_lock_timeout(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<sqlx::Error>()
            .and_then(|e| e.as_database_error())
            .and_then(|d| d.code())
            .is_some_and(|code| code == "55P03")
    })
}

/// A quoted SQL identifier.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
