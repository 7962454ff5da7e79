//! Runs the projections: durable, checkpointed readers of the event log that build
//! the read models (pipeline, rosters, KPI counts, the mail outbox).
//!
//! Each projection applies a batch of events and moves its checkpoint in one
//! transaction, so a crash never loses or repeats an event (projections run
//! in-process after commit lose events on a crash: cqrs-es #26). The checkpoint
//! row is locked for the batch, so two processes never run one projection at once.
//! A projection that fails on an event stops there, loudly, and retries later:
//! it never skips (Marten #2615).

use std::sync::Arc;
use std::time::Duration;

use kujira_eventlog::{EventStore, RecordedEvent};
use tokio_util::sync::CancellationToken;

/// Events read per transaction.
const BATCH: i64 = 500;
/// How long [`Projector::catch_up`] waits for held-back events.
pub const CATCH_UP_LIMIT: Duration = Duration::from_secs(60);
/// How long a failing projection waits before it tries again.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// A read model built from the event log.
#[async_trait::async_trait]
pub trait Projection: Send + Sync + 'static {
    /// Stable name; the checkpoint is stored under it.
    fn name(&self) -> &'static str;

    /// The event types it wants; `None` for all.
    fn event_types(&self) -> Option<&'static [&'static str]> {
        None
    }

    /// Applies one event inside the transaction that also moves the checkpoint.
    async fn apply(&self, tx: &mut sqlx::PgConnection, event: &RecordedEvent)
    -> anyhow::Result<()>;
}

/// The set of projections one process runs.
#[derive(Clone)]
pub struct Projector {
    store: EventStore,
    projections: Vec<Arc<dyn Projection>>,
}

impl std::fmt::Debug for Projector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.projections.iter().map(|p| p.name()).collect();
        f.debug_struct("Projector")
            .field("projections", &names)
            .finish()
    }
}

impl Projector {
    pub fn new(store: EventStore) -> Self {
        Self {
            store,
            projections: Vec::new(),
        }
    }

    pub fn with(mut self, projection: impl Projection) -> Self {
        self.projections.push(Arc::new(projection));
        self
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.projections.iter().map(|p| p.name()).collect()
    }

    /// Applies, in every projection, every event committed before the call, and
    /// returns how many events it applied. Tests call this instead of sleeping.
    ///
    /// It is a real barrier: when a transaction elsewhere in the cluster holds the
    /// watermark back (xids are cluster-wide, so parallel tests on other databases
    /// do), it waits until the events committed before the call become readable,
    /// for at most [`CATCH_UP_LIMIT`].
    pub async fn catch_up(&self) -> anyhow::Result<u64> {
        let deadline = tokio::time::Instant::now() + CATCH_UP_LIMIT;
        let mut total = 0;
        for p in &self.projections {
            let target = last_committed(&self.store, p.event_types()).await?;
            loop {
                let n = step(&self.store, p.as_ref()).await?;
                total += n;
                if n > 0 {
                    continue;
                }
                let at = EventStore::checkpoint(self.store.pool(), p.name()).await?;
                if target.is_none_or(|t| at >= t) {
                    break;
                }
                anyhow::ensure!(
                    tokio::time::Instant::now() < deadline,
                    "projection {} is held back by a long-running transaction",
                    p.name()
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        Ok(total)
    }

    /// Applies whatever is readable now, without waiting for held-back events.
    async fn drain(&self) -> anyhow::Result<u64> {
        let mut total = 0;
        for p in &self.projections {
            loop {
                let n = step(&self.store, p.as_ref()).await?;
                total += n;
                if n == 0 {
                    break;
                }
            }
        }
        Ok(total)
    }

    /// Runs until `shutdown` is cancelled, woken by appends and by polling.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let mut sub = self.store.subscribe().await;
        loop {
            match self.drain().await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "projection failed; retrying");
                    tokio::select! {
                        () = shutdown.cancelled() => return Ok(()),
                        () = tokio::time::sleep(RETRY_AFTER) => continue,
                    }
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                () = sub.wait() => {}
            }
        }
    }
}

/// The position of the last committed event of these types, in the global order.
async fn last_committed(
    store: &EventStore,
    types: Option<&'static [&'static str]>,
) -> anyhow::Result<Option<kujira_eventlog::Checkpoint>> {
    use sqlx::Row;
    let row = sqlx::query(
        "SELECT transaction_id, position FROM events \
         WHERE ($1::text[] IS NULL OR event_type = ANY($1)) \
         ORDER BY transaction_id DESC, position DESC LIMIT 1",
    )
    .bind(types)
    .fetch_optional(store.pool())
    .await?;
    Ok(row.map(|r| kujira_eventlog::Checkpoint {
        transaction_id: r.get(0),
        position: r.get(1),
    }))
}

/// Applies one batch of one projection; returns how many events it applied.
async fn step(store: &EventStore, p: &dyn Projection) -> anyhow::Result<u64> {
    use anyhow::Context;
    let mut tx = store.pool().begin().await?;
    let from = EventStore::lock_checkpoint(&mut tx, p.name()).await?;
    let events = kujira_eventlog::read_all_with(&mut *tx, from, BATCH, p.event_types()).await?;
    let Some(last) = events.last().map(RecordedEvent::checkpoint) else {
        return Ok(0);
    };
    for e in &events {
        p.apply(&mut tx, e).await.with_context(|| {
            format!(
                "projection {} failed on {} at position {}",
                p.name(),
                e.event_type,
                e.position
            )
        })?;
    }
    EventStore::save_checkpoint(&mut tx, p.name(), last).await?;
    tx.commit().await?;
    Ok(events.len() as u64)
}
