//! Readers' durable checkpoints: read, lock (so one instance reads at a time) and
//! save, each inside the reader's own transaction.

use super::*;

impl EventStore {
    /// The durable checkpoint of a named reader.
    pub async fn checkpoint<'e, X>(executor: X, reader: &str) -> Result<Checkpoint, Error>
    where
        X: sqlx::Executor<'e, Database = Postgres>,
    {
        let row = sqlx::query(
            "SELECT transaction_id, position FROM reader_checkpoints WHERE reader = $1",
        )
        .bind(reader)
        .fetch_optional(executor)
        .await?;
        row.as_ref().map_or(Ok(Checkpoint::START), checkpoint_of)
    }

    /// Locks a reader's checkpoint row for the rest of the transaction, creating it if
    /// needed, so that two processes never run the same reader at once.
    pub async fn lock_checkpoint(
        tx: &mut sqlx::PgConnection,
        reader: &str,
    ) -> Result<Checkpoint, Error> {
        sqlx::query("INSERT INTO reader_checkpoints (reader) VALUES ($1) ON CONFLICT DO NOTHING")
            .bind(reader)
            .execute(&mut *tx)
            .await?;
        let row = sqlx::query(
            "SELECT transaction_id, position FROM reader_checkpoints WHERE reader = $1 FOR UPDATE",
        )
        .bind(reader)
        .fetch_one(&mut *tx)
        .await?;
        checkpoint_of(&row)
    }

    /// Like [`EventStore::lock_checkpoint`], but returns `None` at once when another
    /// transaction holds the row: that reader is running elsewhere, and waiting for it
    /// would only hold a connection (and, once this transaction has an xid, every
    /// reader's watermark) for nothing.
    pub async fn try_lock_checkpoint(
        tx: &mut sqlx::PgConnection,
        reader: &str,
    ) -> Result<Option<Checkpoint>, Error> {
        let row = sqlx::query(
            "SELECT transaction_id, position FROM reader_checkpoints \
             WHERE reader = $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(reader)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(r) = row {
            return Ok(Some(checkpoint_of(&r)?));
        }
        // Skipped because it is locked, or missing. A plain read tells which without
        // waiting; only a missing row is created (and is then ours until commit).
        let exists: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM reader_checkpoints WHERE reader = $1)",
        )
        .bind(reader)
        .fetch_one(&mut *tx)
        .await?;
        if exists {
            return Ok(None);
        }
        let row = sqlx::query(
            "INSERT INTO reader_checkpoints (reader) VALUES ($1) ON CONFLICT DO NOTHING \
             RETURNING transaction_id, position",
        )
        .bind(reader)
        .fetch_optional(&mut *tx)
        .await?;
        row.as_ref().map(checkpoint_of).transpose()
    }

    /// Moves a reader's checkpoint; call it in the transaction that applied the events.
    pub async fn save_checkpoint(
        tx: &mut sqlx::PgConnection,
        reader: &str,
        checkpoint: Checkpoint,
    ) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO reader_checkpoints (reader, transaction_id, position, updated_at) \
             VALUES ($1, $2, $3, now()) \
             ON CONFLICT (reader) DO UPDATE SET transaction_id = $2, position = $3, updated_at = now()",
        )
        .bind(reader)
        .bind(checkpoint.transaction_id)
        .bind(checkpoint.position)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}
