//! Appending inside a transaction that also writes other tables.
//!
//! A working store that is not a projection (the staff accounts, whose password
//! hashes never go into an event) must change its rows and record the event that
//! says why in one commit: either both happen or neither does. [`EventStore::begin`]
//! gives such a transaction. Readers stay gap-safe: the rows carry the transaction's
//! id like any other append, and readers wake up only after the commit.

use sqlx::{PgConnection, Postgres, Row};

use super::{MANY_AFTER, MANY_NEW, SINGLE_AFTER, SINGLE_NEW, is_unique_violation, to_i64};
use crate::store::EventStore;
use crate::types::{AppendResult, Error, ExpectedVersion, NewEvent, StreamName};

/// A database transaction in which events can be appended next to other writes.
/// Dropping it without [`Transaction::commit`] rolls everything back.
pub struct Transaction {
    store: EventStore,
    tx: sqlx::Transaction<'static, Postgres>,
}

impl std::fmt::Debug for Transaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction").finish_non_exhaustive()
    }
}

impl EventStore {
    /// Opens a transaction for writes that must commit together with an append.
    pub async fn begin(&self) -> Result<Transaction, Error> {
        Ok(Transaction {
            store: self.clone(),
            tx: self.pool.begin().await?,
        })
    }
}

impl Transaction {
    /// The connection, for the caller's own statements in the same transaction.
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// Appends `events` to `stream` if its version is `expected`, inside the
    /// transaction. A lost race is a [`Error::Conflict`] (or
    /// [`Error::DuplicateEventId`] for a reused id); the transaction stays usable,
    /// so the caller can still roll back or decide otherwise. There is no replay
    /// detection here: the caller's other writes would not be replays.
    pub async fn append(
        &mut self,
        stream: &StreamName,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, Error> {
        if events.is_empty() {
            return Err(Error::Empty);
        }
        let ids: Vec<uuid::Uuid> = events.iter().map(|e| e.id).collect();
        let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
        let data: Vec<&serde_json::Value> = events.iter().map(|e| &e.data).collect();
        let metadata = events
            .iter()
            .map(|e| serde_json::to_value(&e.metadata))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Error::Encode(e.to_string()))?;
        let base = match expected {
            ExpectedVersion::Exact(n) => n,
            ExpectedVersion::NoStream => 0,
            ExpectedVersion::Any => version_in(&mut self.tx, stream).await?,
        };
        let sql = match (events.len() == 1, base == 0) {
            (true, true) => SINGLE_NEW,
            (true, false) => SINGLE_AFTER,
            (false, true) => MANY_NEW,
            (false, false) => MANY_AFTER,
        };
        // A savepoint, so that a unique violation leaves the transaction usable.
        let mut savepoint = sqlx::Connection::begin(&mut *self.tx).await?;
        let query = sqlx::query(sql).bind(stream.as_str()).bind(to_i64(base));
        let query = if events.len() == 1 {
            query
                .bind(ids[0])
                .bind(types[0])
                .bind(data[0])
                .bind(&metadata[0])
        } else {
            query.bind(&ids).bind(&types).bind(&data).bind(&metadata)
        };
        let inserted = query.fetch_all(&mut *savepoint).await;
        match inserted {
            Ok(rows) if !rows.is_empty() => {
                savepoint.commit().await?;
                let positions = rows
                    .iter()
                    .map(|r| r.try_get::<i64, _>("position"))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(AppendResult {
                    stream_version: base + events.len() as u64,
                    first_position: positions.iter().copied().min().unwrap_or_default(),
                    last_position: positions.iter().copied().max().unwrap_or_default(),
                    replayed: false,
                })
            }
            Ok(_) => {
                savepoint.rollback().await?;
                Err(Error::Conflict {
                    stream: stream.to_string(),
                    expected,
                    actual: version_in(&mut self.tx, stream).await?,
                })
            }
            Err(err) if is_unique_violation(&err) => {
                let on_event_id = matches!(&err, sqlx::Error::Database(db)
                    if db.constraint() == Some("events_event_id_key"));
                savepoint.rollback().await?;
                if on_event_id {
                    return Err(Error::DuplicateEventId(ids[0]));
                }
                Err(Error::Conflict {
                    stream: stream.to_string(),
                    expected,
                    actual: version_in(&mut self.tx, stream).await?,
                })
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Commits, then wakes the readers (never before: they would find nothing yet).
    pub async fn commit(self) -> Result<(), Error> {
        self.tx.commit().await?;
        self.store.appended.send_modify(|n| *n = n.wrapping_add(1));
        Ok(())
    }
}

async fn version_in(conn: &mut PgConnection, stream: &StreamName) -> Result<u64, Error> {
    let v: Option<i64> =
        sqlx::query_scalar("SELECT max(stream_version) FROM events WHERE stream_name = $1")
            .bind(stream.as_str())
            .fetch_one(conn)
            .await?;
    Ok(v.unwrap_or(0) as u64)
}
