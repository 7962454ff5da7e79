//! The shifted transaction-id clock, and its rebase when a database was restored
//! into another PostgreSQL cluster. The reasoning is in the crate docs, "Restored
//! databases".

use sqlx::{PgPool, Row};

use crate::types::Error;

/// What [`rebase_if_restored`] changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rebase {
    /// The highest transaction id stored in `events` and `reader_checkpoints`:
    /// ids handed out by the cluster the database came from.
    pub stored_max: i64,
    /// This cluster's next transaction id (shifted by the old offset) when the
    /// restore was noticed: below `stored_max`, which is how it was noticed.
    pub cluster_next: i64,
    pub old_offset: i64,
    pub new_offset: i64,
}

/// The state of the clock in one snapshot.
struct Reading {
    stored_max: Option<i64>,
    xmin: i64,
    xmax: i64,
    offset: i64,
}

impl Reading {
    /// Stored ids are ids of finished transactions, so on an untouched database they
    /// are all below the cluster's next xid (shifted). One at or above it was handed
    /// out by another cluster.
    fn restored(&self) -> bool {
        self.stored_max
            .is_some_and(|m| m >= self.xmax + self.offset)
    }
}

async fn read<'e, X>(executor: X) -> Result<Reading, Error>
where
    X: sqlx::Executor<'e, Database = sqlx::Postgres>,
{
    let row = sqlx::query(
        "SELECT greatest((SELECT max(transaction_id) FROM events), \
                         (SELECT max(transaction_id) FROM reader_checkpoints)) AS stored_max, \
                pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin, \
                pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS xmax, \
                (SELECT xid_offset FROM eventlog_clock) AS xid_offset",
    )
    .fetch_one(executor)
    .await?;
    Ok(Reading {
        stored_max: row.try_get("stored_max")?,
        xmin: row.try_get("xmin")?,
        xmax: row.try_get("xmax")?,
        offset: row
            .try_get::<Option<i64>, _>("xid_offset")?
            .ok_or(Error::ClockMissing)?,
    })
}

/// Detects a database restored from another cluster and moves the clock past every
/// transaction id it carries, so that readers neither stall nor skip. Run it after
/// the migrations and before anything appends (`kujira` does, on every start).
/// Returns `None` when nothing had to change, which is every time but the first
/// start after a restore.
pub async fn rebase_if_restored(pool: &PgPool) -> Result<Option<Rebase>, Error> {
    // The usual case costs one index probe and takes no lock.
    if !read(pool).await?.restored() {
        return Ok(None);
    }
    let mut tx = pool.begin().await?;
    // Waits for every transaction that has appended and not finished, and holds off
    // new appends and reads until the new offset is in place: no event is ever
    // stamped with the old offset after this commits.
    sqlx::query("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    sqlx::query("SELECT 1 FROM eventlog_clock FOR UPDATE")
        .execute(&mut *tx)
        .await?;
    let now = read(&mut *tx).await?;
    let Some(stored_max) = now.stored_max.filter(|_| now.restored()) else {
        // Another process rebased while this one waited for the lock.
        return Ok(None);
    };
    // Every transaction that can still append has an xid >= xmin, so it stamps its
    // events with at least stored_max + 1.
    let new_offset = stored_max + 1 - now.xmin;
    sqlx::query(
        "UPDATE eventlog_clock SET xid_offset = $1, rebased_at = now(), rebased_above = $2",
    )
    .bind(new_offset)
    .bind(stored_max)
    .execute(&mut *tx)
    .await?;
    // A literal, not a lookup: appends stay a plain single-row INSERT. The statement
    // is built from an integer, never from input.
    sqlx::query(&format!(
        "ALTER TABLE events ALTER COLUMN transaction_id \
         SET DEFAULT (pg_current_xact_id()::text::bigint + {new_offset})"
    ))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(Rebase {
        stored_max,
        cluster_next: now.xmax + now.offset,
        old_offset: now.offset,
        new_offset,
    }))
}
