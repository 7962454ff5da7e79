//! Test projections and helpers shared by the projector's tests.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use kujira_eventlog::{EventStore, ExpectedVersion, Metadata, NewEvent, RecordedEvent, StreamName};
use kujira_projector::{Projection, Rebuild};
use uuid::Uuid;

/// Appends one event per `n` to a new stream; returns their positions.
pub async fn append(store: &EventStore, ty: &str, ns: impl IntoIterator<Item = i64>) -> Vec<i64> {
    let evs: Vec<NewEvent> = ns
        .into_iter()
        .map(|n| NewEvent {
            id: Uuid::now_v7(),
            event_type: ty.into(),
            data: serde_json::json!({ "n": n }),
            metadata: Metadata::new("test", Uuid::nil()),
        })
        .collect();
    let count = evs.len() as i64;
    let r = store
        .append(
            &StreamName::new("sum", Uuid::now_v7()),
            ExpectedVersion::NoStream,
            evs,
        )
        .await
        .unwrap();
    // One append is one statement: its positions are consecutive.
    (r.first_position..r.first_position + count).collect()
}

/// Waits for `check` to hold, polling, for at most 30 s; panics with `what` after.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Records every event of its types in its own table `<name>(position, n)`, once.
/// Fails on `n == fail_on`, panics on `n == panic_on`, and hangs (for an hour) on
/// `n == hang_on`, each while set.
pub struct Recorder {
    pub name: &'static str,
    pub types: Option<&'static [&'static str]>,
    pub fail_on: Arc<AtomicI64>,
    pub panic_on: Arc<AtomicI64>,
    pub hang_on: Arc<AtomicI64>,
}

impl Recorder {
    pub fn new(name: &'static str, types: Option<&'static [&'static str]>) -> Self {
        Self {
            name,
            types,
            fail_on: Arc::new(AtomicI64::new(-1)),
            panic_on: Arc::new(AtomicI64::new(-1)),
            hang_on: Arc::new(AtomicI64::new(-1)),
        }
    }

    pub async fn create(&self, pool: &sqlx::PgPool) {
        sqlx::query(&format!(
            "CREATE TABLE \"{}\" (position bigint PRIMARY KEY, n bigint NOT NULL)",
            self.name
        ))
        .execute(pool)
        .await
        .unwrap();
    }

    /// The positions it recorded, in order.
    pub async fn seen(pool: &sqlx::PgPool, name: &str) -> Vec<i64> {
        sqlx::query_scalar(&format!(
            "SELECT position FROM \"{name}\" ORDER BY position"
        ))
        .fetch_all(pool)
        .await
        .unwrap()
    }
}

#[async_trait::async_trait]
impl Projection for Recorder {
    fn name(&self) -> &'static str {
        self.name
    }
    fn event_types(&self) -> Option<&'static [&'static str]> {
        self.types
    }
    async fn apply(&self, tx: &mut sqlx::PgConnection, e: &RecordedEvent) -> anyhow::Result<()> {
        let n = e.data["n"].as_i64().unwrap_or_default();
        assert_ne!(n, self.panic_on.load(Ordering::SeqCst), "panic on {n}");
        if n == self.hang_on.load(Ordering::SeqCst) {
            // Inside the transaction, after its first write: it holds an xid.
            sqlx::query("SELECT pg_current_xact_id()")
                .execute(&mut *tx)
                .await?;
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        // A primary key: applying an event twice fails loudly instead of hiding.
        sqlx::query(&format!(
            "INSERT INTO \"{}\" (position, n) VALUES ($1, $2)",
            self.name
        ))
        .bind(e.position)
        .bind(n)
        .execute(&mut *tx)
        .await?;
        anyhow::ensure!(n != self.fail_on.load(Ordering::SeqCst), "boom on {n}");
        Ok(())
    }
}

/// A projection worth rebuilding: two tables with an identity column, defaults,
/// named constraints and an index.
pub struct Ledger;

pub const LEDGER_DDL: &str = "
CREATE TABLE ledger_streams (
    stream      text        NOT NULL,
    total       bigint      NOT NULL DEFAULT 0,
    events      integer     NOT NULL,
    last_at     timestamptz NOT NULL,
    CONSTRAINT ledger_streams_pkey PRIMARY KEY (stream),
    CONSTRAINT ledger_streams_events_positive CHECK (events > 0)
);
CREATE TABLE ledger_entries (
    id          bigint GENERATED ALWAYS AS IDENTITY,
    position    bigint      NOT NULL,
    stream      text        NOT NULL,
    n           bigint      NOT NULL,
    kind        text        NOT NULL DEFAULT 'counted',
    CONSTRAINT ledger_entries_pkey PRIMARY KEY (id),
    CONSTRAINT ledger_entries_position_key UNIQUE (position)
);
CREATE INDEX ledger_entries_by_n ON ledger_entries (n, position);
";

#[async_trait::async_trait]
impl Projection for Ledger {
    fn name(&self) -> &'static str {
        "ledger"
    }
    fn event_types(&self) -> Option<&'static [&'static str]> {
        Some(&["Counted"])
    }
    async fn apply(&self, tx: &mut sqlx::PgConnection, e: &RecordedEvent) -> anyhow::Result<()> {
        let n = e.data["n"].as_i64().unwrap_or_default();
        // Unqualified names: a rebuild resolves them to its shadow schema.
        sqlx::query(
            "INSERT INTO ledger_streams (stream, total, events, last_at) VALUES ($1, $2, 1, $3) \
             ON CONFLICT (stream) DO UPDATE SET total = ledger_streams.total + $2, \
               events = ledger_streams.events + 1, last_at = $3",
        )
        .bind(&e.stream_name)
        .bind(n)
        .bind(e.recorded_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO ledger_entries (position, stream, n) VALUES ($1, $2, $3)")
            .bind(e.position)
            .bind(&e.stream_name)
            .bind(n)
            .execute(&mut *tx)
            .await?;
        Ok(())
    }
    fn rebuild(&self) -> Rebuild {
        Rebuild::Tables {
            tables: &["ledger_streams", "ledger_entries"],
            ddl: LEDGER_DDL,
        }
    }
}
