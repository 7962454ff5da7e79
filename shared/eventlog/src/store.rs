use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use serde::de::DeserializeOwned;
use sqlx::postgres::{PgListener, PgRow};
use sqlx::{PgPool, Postgres, Row};
use tokio::sync::watch;
use uuid::Uuid;

mod batch;
mod checkpoints;
mod sql;
mod transaction;

use sql::{MANY_AFTER, MANY_NEW, SINGLE_AFTER, SINGLE_NEW, guarded_sql};
pub use transaction::Transaction;

use crate::types::{
    AppendResult, Batch, Checkpoint, Error, ExpectedVersion, Guard, GuardValue, Metadata, NewEvent,
    RecordedEvent, StreamName,
};

/// The channel that carries the (empty) wake-up hint.
pub const NOTIFY_CHANNEL: &str = "kujira_events";
/// At most one NOTIFY is sent per interval, however many appends happen.
pub const NOTIFY_COALESCE: Duration = Duration::from_millis(20);

/// How often a subscription polls when no hint arrives.
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// `Any` appends re-read the version and retry this often before giving up with a conflict.
const ANY_RETRIES: usize = 16;

const SELECT_COLUMNS: &str = "position, transaction_id, event_id, stream_name, stream_version, \
     event_type, data, metadata, recorded_at";

/// Handle on the event log. Cheap to clone.
#[derive(Clone)]
pub struct EventStore {
    pool: PgPool,
    /// Bumped after every append; subscriptions and the notifier watch it.
    appended: Arc<watch::Sender<u64>>,
    /// Group commit of guarded appends (see [`EventStore::append_guarded`]).
    batcher: Arc<batch::Batcher>,
}

impl std::fmt::Debug for EventStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStore").finish_non_exhaustive()
    }
}

/// How far gap-safe readers are held back by transactions still running.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ReaderLag {
    /// Committed or in-flight events at or above the watermark, not yet readable.
    pub events_held_back: i64,
    /// Age of the oldest transaction in the cluster that holds an xid.
    pub oldest_transaction_seconds: f64,
}

impl EventStore {
    /// Wraps a pool. Must be called inside a Tokio runtime: it starts the task that
    /// coalesces wake-up NOTIFYs.
    pub fn new(pool: PgPool) -> Self {
        let appended = Arc::new(watch::Sender::new(0));
        tokio::spawn(notifier(pool.clone(), appended.subscribe()));
        Self {
            pool,
            appended,
            batcher: Arc::default(),
        }
    }

    /// The same log, with every guarded append written by a statement of its own:
    /// what it cost before group commit, for measuring it.
    pub fn without_group_commit(mut self) -> Self {
        self.batcher = Arc::new(batch::Batcher::off());
        self
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Appends `events` to `stream` if its version is `expected`.
    ///
    /// Re-appending the same event ids to the same stream at the same versions is a
    /// no-op that returns the earlier result with `replayed: true`, so a retried
    /// request never writes twice.
    pub async fn append(
        &self,
        stream: &StreamName,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, Error> {
        self.append_with(stream, expected, events, None).await
    }

    /// Appends `events` to the new stream `stream`, in the same statement as `guard`
    /// (see [`Guard`]): when the guard finds nothing, nothing is written and the
    /// result is [`Error::GuardFailed`]. A replay of the same events is recognised as
    /// [`EventStore::append`] recognises it.
    ///
    /// Guarded appends made at the same moment share a statement and its commit
    /// (group commit, see `store/batch.rs`); each still gets its own outcome, and a
    /// lone one is written at once.
    pub async fn append_guarded(
        &self,
        stream: &StreamName,
        events: Vec<NewEvent>,
        guard: &Guard,
    ) -> Result<AppendResult, Error> {
        if events.is_empty() {
            return Err(Error::Empty);
        }
        let (reply, outcome) = tokio::sync::oneshot::channel();
        let member = batch::Member {
            stream: stream.clone(),
            events,
            guard: guard.clone(),
            reply,
        };
        match self.batcher.submit(self, member) {
            Ok(()) => outcome.await.unwrap_or_else(|_| {
                Err(Error::Database(sqlx::Error::Protocol(
                    "the batch writer stopped before answering".into(),
                )))
            }),
            Err(m) => {
                self.append_with(stream, ExpectedVersion::NoStream, m.events, Some(guard))
                    .await
            }
        }
    }

    async fn append_with(
        &self,
        stream: &StreamName,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        guard: Option<&Guard>,
    ) -> Result<AppendResult, Error> {
        if events.is_empty() {
            return Err(Error::Empty);
        }
        let ids: Vec<Uuid> = events.iter().map(|e| e.id).collect();
        let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
        let data: Vec<&serde_json::Value> = events.iter().map(|e| &e.data).collect();
        let metadata = events
            .iter()
            .map(|e| serde_json::to_value(&e.metadata))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Error::Encode(e.to_string()))?;

        let mut attempts = 0;
        loop {
            let base = match expected {
                ExpectedVersion::Exact(n) => n,
                ExpectedVersion::NoStream => 0,
                ExpectedVersion::Any => self.stream_version(stream).await?,
            };
            // The statement is chosen by shape, so that PostgreSQL plans each one once
            // and reuses it: a new stream (the common case: one command opens one
            // case) needs no guard, and one event goes in as a plain single-row INSERT,
            // the same shape as the baseline it is measured against. Appending after
            // version n checks that version n exists, so that no gap can be left.
            let sql = match (events.len() == 1, base == 0, guard) {
                (single, _, Some(g)) => guarded_sql(single, g),
                (true, true, None) => SINGLE_NEW,
                (true, false, None) => SINGLE_AFTER,
                (false, true, None) => MANY_NEW,
                (false, false, None) => MANY_AFTER,
            };
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
            let query = guard
                .map(|g| g.values.as_slice())
                .unwrap_or_default()
                .iter()
                .fold(query, |q, v| match v {
                    GuardValue::Uuid(u) => q.bind(*u),
                    GuardValue::Bytes(b) => q.bind(b.as_slice()),
                });
            let inserted = query.fetch_all(&self.pool).await;

            match inserted {
                Ok(rows) if rows.is_empty() && guard.is_some() => return Err(Error::GuardFailed),
                Ok(rows) if rows.is_empty() => {
                    // The expected version is ahead of the stream: appending would leave a gap.
                    return Err(Error::Conflict {
                        stream: stream.to_string(),
                        expected,
                        actual: self.stream_version(stream).await?,
                    });
                }
                Ok(rows) => {
                    self.appended.send_modify(|n| *n = n.wrapping_add(1));
                    let positions: Vec<i64> = rows.iter().map(|r| r.get("position")).collect();
                    return Ok(AppendResult {
                        stream_version: base + events.len() as u64,
                        first_position: positions.iter().copied().min().unwrap_or_default(),
                        last_position: positions.iter().copied().max().unwrap_or_default(),
                        replayed: false,
                    });
                }
                Err(err) if is_unique_violation(&err) => {
                    if let Some(replay) = self.earlier_append(stream, expected, &ids).await? {
                        return Ok(replay);
                    }
                    let actual = self.stream_version(stream).await?;
                    attempts += 1;
                    if expected == ExpectedVersion::Any && attempts < ANY_RETRIES {
                        continue;
                    }
                    return Err(Error::Conflict {
                        stream: stream.to_string(),
                        expected,
                        actual,
                    });
                }
                Err(err) => return Err(err.into()),
            }
        }
    }

    /// If every id was already appended, as one run at the versions `expected` allows,
    /// returns that earlier result. If some id was used elsewhere, that is an error.
    async fn earlier_append(
        &self,
        stream: &StreamName,
        expected: ExpectedVersion,
        ids: &[Uuid],
    ) -> Result<Option<AppendResult>, Error> {
        let rows = sqlx::query(
            "SELECT event_id, stream_name, stream_version, position FROM events \
             WHERE event_id = ANY($1)",
        )
        .bind(ids)
        .fetch_all(&self.pool)
        .await?;
        if rows.is_empty() {
            return Ok(None);
        }
        let found = |id: &Uuid| rows.iter().find(|r| r.get::<Uuid, _>("event_id") == *id);
        let mut versions = Vec::with_capacity(ids.len());
        let mut positions = Vec::with_capacity(ids.len());
        for id in ids {
            match found(id) {
                Some(row) if row.get::<String, _>("stream_name") == stream.as_str() => {
                    versions.push(row.get::<i64, _>("stream_version"));
                    positions.push(row.get::<i64, _>("position"));
                }
                _ => return Err(Error::DuplicateEventId(*id)),
            }
        }
        let first = versions[0];
        let consecutive = versions
            .iter()
            .enumerate()
            .all(|(i, v)| *v == first + i as i64);
        let matches_expected = match expected {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => first == 1,
            ExpectedVersion::Exact(n) => first == to_i64(n) + 1,
        };
        if !consecutive || !matches_expected {
            return Err(Error::DuplicateEventId(ids[0]));
        }
        Ok(Some(AppendResult {
            stream_version: (first + versions.len() as i64 - 1) as u64,
            first_position: positions.iter().copied().min().unwrap_or_default(),
            last_position: positions.iter().copied().max().unwrap_or_default(),
            replayed: true,
        }))
    }

    /// The version of the stream's last event, 0 when it has none.
    pub async fn stream_version(&self, stream: &StreamName) -> Result<u64, Error> {
        let v: Option<i64> =
            sqlx::query_scalar("SELECT max(stream_version) FROM events WHERE stream_name = $1")
                .bind(stream.as_str())
                .fetch_one(&self.pool)
                .await?;
        Ok(v.unwrap_or(0) as u64)
    }

    /// Up to `limit` events of one stream with versions above `after_version`.
    pub async fn read_stream(
        &self,
        stream: &StreamName,
        after_version: u64,
        limit: i64,
    ) -> Result<Vec<RecordedEvent>, Error> {
        let sql = format!(
            "SELECT {SELECT_COLUMNS} FROM events \
             WHERE stream_name = $1 AND stream_version > $2 \
             ORDER BY stream_version LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(stream.as_str())
            .bind(to_i64(after_version))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(decode_row).collect()
    }

    /// Every event of one stream, fetched lazily in batches of `batch` so that memory
    /// stays flat however long the stream is.
    pub fn stream_events(
        &self,
        stream: &StreamName,
        batch: i64,
    ) -> impl Stream<Item = Result<RecordedEvent, Error>> + Send + 'static {
        let store = self.clone();
        let stream = stream.clone();
        let pages = futures::stream::try_unfold(Some(0u64), move |after| {
            let store = store.clone();
            let stream = stream.clone();
            async move {
                let Some(after) = after else {
                    return Ok::<_, Error>(None);
                };
                let page = store.read_stream(&stream, after, batch).await?;
                let next = if (page.len() as i64) < batch {
                    None
                } else {
                    page.last().map(|e| e.stream_version)
                };
                if page.is_empty() {
                    return Ok(None);
                }
                let items = page.into_iter().map(Ok::<_, Error>);
                Ok(Some((futures::stream::iter(items), next)))
            }
        });
        futures::TryStreamExt::try_flatten(pages)
    }

    /// Loads and decodes a whole stream, returning its events and its version.
    pub async fn load<E: DeserializeOwned>(
        &self,
        stream: &StreamName,
    ) -> Result<(Vec<E>, u64), Error> {
        let mut events = Vec::new();
        let mut version = 0;
        loop {
            let page = self.read_stream(stream, version, 1000).await?;
            let done = page.len() < 1000;
            for e in &page {
                events.push(e.decode()?);
                version = e.stream_version;
            }
            if done {
                return Ok((events, version));
            }
        }
    }

    /// Up to `limit` events after `after` in the global, gap-safe order.
    /// `event_types`, when given, keeps only those types.
    ///
    /// Resume from the last event returned. Readers that filter should use
    /// [`EventStore::read_batch`] instead, whose checkpoint also moves past the events
    /// that the filter skipped.
    pub async fn read_all(
        &self,
        after: Checkpoint,
        limit: i64,
        event_types: Option<&[&str]>,
    ) -> Result<Vec<RecordedEvent>, Error> {
        Ok(read_batch_with(&self.pool, after, limit, event_types)
            .await?
            .events)
    }

    /// Up to `limit` events after `after` in the global, gap-safe order, and where
    /// the next read resumes ([`Batch::next`]): past every event this read covered,
    /// including those `event_types` filtered out.
    pub async fn read_batch(
        &self,
        after: Checkpoint,
        limit: i64,
        event_types: Option<&[&str]>,
    ) -> Result<Batch, Error> {
        read_batch_with(&self.pool, after, limit, event_types).await
    }

    /// The checkpoint of the last event readers can read now, in the gap-safe order
    /// ([`Checkpoint::START`] for an empty log). A reader that starts here sees
    /// exactly the events committed from now on.
    pub async fn head(&self) -> Result<Checkpoint, Error> {
        let row = sqlx::query(
            "SELECT transaction_id, position FROM events \
             WHERE transaction_id < (SELECT eventlog_watermark()) \
             ORDER BY transaction_id DESC, position DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(r) => Checkpoint {
                transaction_id: r.try_get("transaction_id")?,
                position: r.try_get("position")?,
            },
            None => Checkpoint::START,
        })
    }

    /// A wake-up hint for readers: resolves on an append (in this process or,
    /// through NOTIFY, in another) or after the polling interval.
    pub async fn subscribe(&self) -> Subscription {
        self.subscribe_polling_every(POLL_INTERVAL).await
    }

    /// [`EventStore::subscribe`] with another polling interval.
    pub async fn subscribe_polling_every(&self, poll: Duration) -> Subscription {
        let listener = match PgListener::connect_with(&self.pool).await {
            Ok(mut l) => match l.listen(NOTIFY_CHANNEL).await {
                Ok(()) => Some(l),
                Err(e) => {
                    tracing::warn!(error = %e, "LISTEN failed; falling back to polling");
                    None
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "no LISTEN connection; falling back to polling");
                None
            }
        };
        Subscription {
            listener,
            local: Some(self.appended.subscribe()),
            poll,
        }
    }

    /// How far gap-safe readers are currently held back.
    pub async fn reader_lag(&self) -> Result<ReaderLag, Error> {
        let row = sqlx::query(
            "SELECT \
               (SELECT count(*) FROM events WHERE transaction_id >= eventlog_watermark()) \
                 AS events_held_back, \
               (SELECT coalesce(extract(epoch FROM max(now() - xact_start)), 0)::float8 \
                  FROM pg_stat_activity WHERE backend_xid IS NOT NULL) \
                 AS oldest_transaction_seconds",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(ReaderLag {
            events_held_back: row.get("events_held_back"),
            oldest_transaction_seconds: row.get("oldest_transaction_seconds"),
        })
    }
}

/// The gap-safe read. One statement, so one snapshot and one watermark `W`:
///
/// * the first branch returns up to `limit` events after `after` below `W` that
///   match the filter, in `(transaction_id, position)` order;
/// * the second returns `W` and the highest `(transaction_id, position)` of any
///   event below `W`, matching or not.
///
/// When the first branch returns fewer than `limit` events it has considered every
/// row between `after` and that highest row, so the reader may resume there. See
/// "Filtered readers" in the crate docs.
const READ_BATCH: &str = "WITH w AS MATERIALIZED (SELECT eventlog_watermark() AS watermark) \
     (SELECT false AS covered, NULL::bigint AS watermark, \
             position, transaction_id, event_id, stream_name, stream_version, \
             event_type, data, metadata, recorded_at \
      FROM events \
      WHERE (transaction_id, position) > ($1, $2) \
        AND transaction_id < (SELECT watermark FROM w) \
        AND ($4::text[] IS NULL OR event_type = ANY($4)) \
      ORDER BY transaction_id, position \
      LIMIT $3) \
     UNION ALL \
     (SELECT true, w.watermark, t.position, t.transaction_id, \
             NULL, NULL, NULL, NULL, NULL, NULL, NULL \
      FROM w LEFT JOIN LATERAL ( \
          SELECT position, transaction_id FROM events \
          WHERE transaction_id < w.watermark \
          ORDER BY transaction_id DESC, position DESC \
          LIMIT 1) t ON true)";

/// [`EventStore::read_batch`] on any executor, so that a projection can read inside
/// the transaction that holds its checkpoint lock.
pub async fn read_batch_with<'e, X>(
    executor: X,
    after: Checkpoint,
    limit: i64,
    event_types: Option<&[&str]>,
) -> Result<Batch, Error>
where
    X: sqlx::Executor<'e, Database = Postgres>,
{
    let limit = limit.max(1);
    let rows = sqlx::query(READ_BATCH)
        .bind(after.transaction_id)
        .bind(after.position)
        .bind(limit)
        .bind(event_types)
        .fetch_all(executor)
        .await?;
    let mut events = Vec::with_capacity(rows.len());
    let mut watermark = None;
    let mut highest = None;
    for row in &rows {
        if row.try_get::<bool, _>("covered")? {
            watermark = row.try_get::<Option<i64>, _>("watermark")?;
            let position: Option<i64> = row.try_get("position")?;
            let transaction_id: Option<i64> = row.try_get("transaction_id")?;
            if let (Some(position), Some(transaction_id)) = (position, transaction_id) {
                highest = Some(Checkpoint {
                    transaction_id,
                    position,
                });
            }
        } else {
            events.push(decode_row(row)?);
        }
    }
    let watermark = watermark.ok_or(Error::ClockMissing)?;
    // The branches of a UNION ALL come back in order in practice; sorting makes it a
    // guarantee, and costs one pass over an already sorted vector.
    events.sort_by_key(RecordedEvent::checkpoint);
    let full = events.len() as i64 >= limit;
    let next = match (full, events.last()) {
        (true, Some(last)) => last.checkpoint(),
        // Everything between `after` and the highest row below the watermark was
        // considered, so the reader resumes past all of it.
        _ => after
            .max(highest.unwrap_or(Checkpoint::START))
            .max(events.last().map_or(after, RecordedEvent::checkpoint)),
    };
    Ok(Batch {
        events,
        next,
        watermark,
        full,
    })
}

/// A wake-up hint for one reader.
pub struct Subscription {
    listener: Option<PgListener>,
    local: Option<watch::Receiver<u64>>,
    poll: Duration,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("listening", &self.listener.is_some())
            .finish_non_exhaustive()
    }
}

impl Subscription {
    /// Waits for a hint that something may have been appended. Spurious wake-ups are
    /// normal: the caller just reads again.
    pub async fn wait(&mut self) {
        let poll = tokio::time::sleep(self.poll);
        let local = async {
            match self.local.as_mut() {
                Some(rx) => {
                    if rx.changed().await.is_err() {
                        // The store is gone: only polling and NOTIFY are left.
                        self.local = None;
                        std::future::pending::<()>().await;
                    }
                }
                None => std::future::pending::<()>().await,
            }
        };
        let remote = async {
            match self.listener.as_mut() {
                Some(l) => {
                    if let Err(e) = l.recv().await {
                        tracing::debug!(error = %e, "listener error; polling");
                    }
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = local => {},
            () = remote => {},
            () = poll => {},
        }
    }
}

/// Sends one empty NOTIFY per burst of appends, outside every appender's transaction.
async fn notifier(pool: PgPool, mut appended: watch::Receiver<u64>) {
    // Ends when the last EventStore clone is dropped.
    while appended.changed().await.is_ok() {
        if let Err(e) = sqlx::query("SELECT pg_notify($1, '')")
            .bind(NOTIFY_CHANNEL)
            .execute(&pool)
            .await
        {
            if pool.is_closed() {
                return;
            }
            tracing::debug!(error = %e, "NOTIFY failed; readers will poll");
        }
        tokio::time::sleep(NOTIFY_COALESCE).await;
    }
}

fn decode_row(row: &PgRow) -> Result<RecordedEvent, Error> {
    let metadata: sqlx::types::Json<Metadata> = row.try_get("metadata")?;
    let version: i64 = row.try_get("stream_version")?;
    Ok(RecordedEvent {
        position: row.try_get("position")?,
        transaction_id: row.try_get("transaction_id")?,
        event_id: row.try_get("event_id")?,
        stream_name: row.try_get("stream_name")?,
        stream_version: version as u64,
        event_type: row.try_get("event_type")?,
        data: row.try_get("data")?,
        metadata: metadata.0,
        recorded_at: row.try_get("recorded_at")?,
    })
}

fn checkpoint_of(row: &PgRow) -> Result<Checkpoint, Error> {
    Ok(Checkpoint {
        transaction_id: row.try_get("transaction_id")?,
        position: row.try_get("position")?,
    })
}

fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.code().as_deref() == Some("23505"))
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
