//! The test harness: a fresh database per test on a real PostgreSQL.
//!
//! With `DATABASE_URL` set, tests use that server (the role needs CREATEDB).
//! Otherwise the first test of any test binary starts a private cluster under
//! `target/kujira-test-pg`, which the following binaries reuse; it keeps running
//! after the tests so that the next `cargo test` starts instantly
//! (stop it with `pg_ctl -D target/kujira-test-pg stop`, as its owner).
//!
//! Every test gets its own database, cloned from a template that was migrated
//! once: cloning takes milliseconds, migrating takes much longer. Templates are
//! named after a fingerprint of their migrations, so a changed migration gets a
//! new template and never a stale one.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};

use sha2::{Digest, Sha256};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};

use crate::cluster::{Cluster, ClusterOptions, quote_ident, wait_ready};

/// Which private cluster a database lives on, when `DATABASE_URL` is unset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `target/kujira-test-pg`, fsync off: fast, for tests.
    Test,
    /// `target/kujira-bench-pg`, fsync on like production: for benchmarks.
    Bench,
}

/// The server the databases of `kind` live on: its admin connection options.
fn server(kind: Kind) -> &'static PgConnectOptions {
    static TEST: OnceLock<PgConnectOptions> = OnceLock::new();
    static BENCH: OnceLock<PgConnectOptions> = OnceLock::new();
    let cell = match kind {
        Kind::Test => &TEST,
        Kind::Bench => &BENCH,
    };
    cell.get_or_init(|| {
        if let Ok(url) = std::env::var("DATABASE_URL") {
            return url
                .parse()
                .unwrap_or_else(|e| panic!("DATABASE_URL is not a valid PostgreSQL URL: {e}"));
        }
        let (dir, durable) = match kind {
            Kind::Test => ("kujira-test-pg", false),
            Kind::Bench => ("kujira-bench-pg", true),
        };
        let opts = ClusterOptions {
            pgdata: target_dir().join(dir),
            os_user: std::env::var("KUJIRA_PG_USER").ok(),
            durable,
        };
        let cluster = Cluster::start(&opts)
            .unwrap_or_else(|e| panic!("cannot start the PostgreSQL cluster {dir}: {e:#}"));
        cluster.connect_options("postgres")
    })
}

/// The cargo target directory of the running executable.
pub fn target_dir() -> PathBuf {
    if let Ok(exe) = std::env::current_exe()
        && let Some(t) = exe
            .ancestors()
            .find(|a| a.file_name().is_some_and(|n| n == "target"))
    {
        return t.to_path_buf();
    }
    if let Ok(t) = std::env::var("CARGO_TARGET_DIR") {
        return PathBuf::from(t);
    }
    std::env::current_exe()
        .ok()
        .and_then(|e| e.parent()?.parent().map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("target"))
}

/// One test's own database.
pub struct TestDb {
    pub pool: PgPool,
    pub name: String,
    kind: Kind,
    /// Options to open more connections (a second pool simulates a restart).
    pub options: PgConnectOptions,
}

impl std::fmt::Debug for TestDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDb").field("name", &self.name).finish()
    }
}

impl TestDb {
    /// A fresh database with `migrators` applied.
    pub async fn new(migrators: &[&Migrator]) -> TestDb {
        Self::try_new(migrators, Kind::Test)
            .await
            .unwrap_or_else(|e| panic!("cannot create a test database: {e:#}"))
    }

    /// A fresh database on a durable server (fsync on, like production), for
    /// benchmarks: `target/kujira-bench-pg`, or `DATABASE_URL` when set.
    pub async fn durable(migrators: &[&Migrator]) -> TestDb {
        Self::try_new(migrators, Kind::Bench)
            .await
            .unwrap_or_else(|e| panic!("cannot create a benchmark database: {e:#}"))
    }

    async fn try_new(migrators: &[&Migrator], kind: Kind) -> anyhow::Result<TestDb> {
        let admin = server(kind).clone();
        wait_ready(&admin).await?;
        drop_stale_databases(&admin).await;
        let template = ensure_template(&admin, migrators).await?;

        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "kt_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut conn = PgConnection::connect_with(&admin).await?;
        let sql = format!(
            "CREATE DATABASE {} TEMPLATE {}",
            quote_ident(&name),
            quote_ident(&template)
        );
        // A clone fails while anyone is connected to the template; nobody should be,
        // but another process may be just closing its connection.
        let mut tries = 0;
        loop {
            match sqlx::query(&sql).execute(&mut conn).await {
                Ok(_) => break,
                Err(sqlx::Error::Database(e))
                    if e.code().as_deref() == Some("55006") && tries < 50 =>
                {
                    tries += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        conn.close().await.ok();

        let options = admin.clone().database(&name);
        let pool = PgPoolOptions::new()
            .max_connections(20)
            .connect_with(options.clone())
            .await?;
        Ok(TestDb {
            pool,
            name,
            kind,
            options,
        })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Dropping needs async IO; do it on a helper thread with its own runtime so
        // that it works inside and outside a Tokio runtime. Leftovers (a killed test
        // run) are removed by the next run.
        let admin = server(self.kind).clone();
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                rt.block_on(async {
                    if let Ok(mut c) = PgConnection::connect_with(&admin).await {
                        let sql = format!(
                            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                            quote_ident(&name)
                        );
                        let _ = sqlx::query(&sql).execute(&mut c).await;
                        let _ = c.close().await;
                    }
                });
            }
        })
        .join();
    }
}

/// Creates (once per server, whatever the number of processes) the migrated template.
async fn ensure_template(
    admin: &PgConnectOptions,
    migrators: &[&Migrator],
) -> anyhow::Result<String> {
    let migrator = crate::combine(migrators)?;
    let mut hasher = Sha256::new();
    for m in migrator.iter() {
        hasher.update(m.version.to_le_bytes());
        hasher.update(&m.checksum);
    }
    let fingerprint: String = hasher
        .finalize()
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect();
    let template = format!("kujira_tpl_{fingerprint}");

    static READY: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    if READY
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_or_insert_with(HashSet::new)
        .contains(&template)
    {
        return Ok(template);
    }

    let mut conn = PgConnection::connect_with(admin).await?;
    sqlx::query("SELECT pg_advisory_lock(hashtext($1))")
        .bind(&template)
        .execute(&mut conn)
        .await?;
    let result = async {
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(&template)
                .fetch_one(&mut conn)
                .await?;
        if !exists {
            // Build under another name and rename, so that a crash mid-migration never
            // leaves a half-built template behind the real name.
            let building = format!("{template}_building");
            sqlx::query(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                quote_ident(&building)
            ))
            .execute(&mut conn)
            .await?;
            sqlx::query(&format!("CREATE DATABASE {}", quote_ident(&building)))
                .execute(&mut conn)
                .await?;
            let mut db = PgConnection::connect_with(&admin.clone().database(&building)).await?;
            migrator.run(&mut db).await?;
            db.close().await?;
            sqlx::query(&format!(
                "ALTER DATABASE {} RENAME TO {}",
                quote_ident(&building),
                quote_ident(&template)
            ))
            .execute(&mut conn)
            .await?;
        }
        anyhow::Ok(())
    }
    .await;
    sqlx::query("SELECT pg_advisory_unlock(hashtext($1))")
        .bind(&template)
        .execute(&mut conn)
        .await?;
    conn.close().await.ok();
    result?;
    READY
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_or_insert_with(HashSet::new)
        .insert(template.clone());
    Ok(template)
}

/// Drops the databases of test processes that are gone (once per process).
async fn drop_stale_databases(admin: &PgConnectOptions) {
    static DONE: OnceLock<()> = OnceLock::new();
    if DONE.set(()).is_err() {
        return;
    }
    let Ok(mut conn) = PgConnection::connect_with(admin).await else {
        return;
    };
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'kt\\_%'")
            .fetch_all(&mut conn)
            .await
            .unwrap_or_default();
    for name in names {
        let pid: Option<i32> = name.split('_').nth(1).and_then(|p| p.parse().ok());
        let alive = pid.is_some_and(|p| {
            matches!(
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), None),
                Ok(()) | Err(nix::errno::Errno::EPERM)
            )
        });
        if !alive {
            let sql = format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                quote_ident(&name)
            );
            let _ = sqlx::query(&sql).execute(&mut conn).await;
        }
    }
    conn.close().await.ok();
}
