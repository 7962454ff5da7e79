//! Runs the projections: durable, checkpointed readers of the event log that build
//! the read models (the desk's cases and counts, rosters, the tour catalogue, the
//! mail outbox).
//!
//! # Exactly once, never skipping
//!
//! A projection applies a batch of events and moves its checkpoint in one
//! transaction, so a crash never loses or repeats an event (projections run
//! in-process after commit lose events on a crash: cqrs-es #26). The checkpoint row
//! is locked for the batch, so two processes never run one projection at once: the
//! second one skips it (`SKIP LOCKED`) instead of queueing behind it, because a
//! waiting transaction would hold a connection, and an xid that holds back every
//! reader of the log.
//!
//! A projection that fails on an event stops there, with an error that names the
//! event (type, stream, position), and tries again with a growing delay. It never
//! skips the event (Marten #2615): a read model that silently missed a fact is worse
//! than one that is visibly late, and the fix (new code, then a retry or a rebuild)
//! must see the event again.
//!
//! # Each projection on its own
//!
//! [`Projector::run`] runs one loop per projection. A projection that fails, panics
//! or hangs only stops its own loop: the mail outbox keeps sending while a desk
//! projection waits for a fix. Each loop records its state (running, caught up,
//! failed with the error and the event) in `reader_status`, the event log's table
//! beside `reader_checkpoints` (so every database that has the log has it, tests'
//! included), so that every process sees it. [`Projector::status`] adds the lag,
//! measured from the checkpoint rather than stored, so that a stalled process
//! cannot report itself healthy.
//!
//! The loops share one wake-up subscription (one LISTEN connection, however many
//! projections), and every step runs with server-side time limits: a projection
//! stuck inside its transaction would otherwise hold an xid, and with it the
//! watermark of every reader in the cluster.
//!
//! # Filtered projections
//!
//! A projection that wants a few event types still moves its checkpoint past the
//! events it skipped, soundly, through the watermark ([`kujira_eventlog::Batch`];
//! the argument is in the event log's crate docs, "Filtered readers").
//!
//! # Rebuilds
//!
//! [`Projector::rebuild`] builds a projection again from the whole log without
//! taking its read model down: into a shadow schema beside the live tables, then
//! swapped in, in one short transaction. See the `rebuild` module for why each step
//! is the way it is. A projection says what a rebuild needs through
//! [`Projection::rebuild`]; one whose rows carry state that the log does not hold
//! (the mail outbox: delivery attempts, sent or failed) refuses.
//!
//! # Writing a projection
//!
//! * Create its tables in a migration of its crate, and give [`Projection::rebuild`]
//!   the same DDL (`include_str!` of that migration when one migration made them).
//!   A rebuild compares the two and refuses while they differ; a test that calls
//!   [`Projector::rebuild`] keeps them honest.
//! * In `apply`, write only those tables, with unqualified names, through the given
//!   connection. Each event is applied exactly once, in the global order, so plain
//!   `INSERT`/`UPDATE` is right; there is no need for idempotent writes.
//! * Return an error for any event it cannot handle: the projection stops there,
//!   names the event in `kujira projections status` and `/readyz`, and retries.
//!   Ignore (return `Ok`) only what it really does not need.
//! * Name the types it needs in [`Projection::event_types`], so that others are
//!   never read (and are still moved past).
//! * For large rebuilds, override [`Projection::apply_batch`] to write many rows
//!   per statement.
//! * In tests, [`Projector::catch_up`] is the barrier, and
//!   [`testing::projection_contents`] compares a rebuilt projection with the one
//!   built live.

mod cli;
mod rebuild;
mod status;
mod step;
pub mod testing;

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use kujira_eventlog::{Checkpoint, EventStore, RecordedEvent};
use sqlx::PgConnection;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use cli::{ProjectionsCommand, run_cli};
pub use rebuild::RebuildReport;
pub use status::{EventRef, Failure, ProjectionState, ProjectionStatus};

use crate::step::{Mode, Outcome, Target};

/// How long [`Projector::catch_up`] waits for held-back events.
pub const CATCH_UP_LIMIT: Duration = Duration::from_secs(60);
/// Events read per transaction by the live loops. Small enough that a step, which
/// holds an xid and so holds back every reader, stays short.
const LIVE_BATCH: i64 = 500;
/// The default delays between attempts of a failing projection.
const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(60);

/// A read model built from the event log.
///
/// Implementations write only their own tables, with unqualified table names (a
/// rebuild resolves them to a shadow schema through `search_path`), and only
/// through the connection they are given: that transaction also moves the
/// checkpoint.
#[async_trait::async_trait]
pub trait Projection: Send + Sync + 'static {
    /// Stable name: the checkpoint and the status are stored under it, and
    /// `kujira projections rebuild NAME` finds it by it.
    fn name(&self) -> &'static str;

    /// The event types it wants; `None` for all. The checkpoint moves past the
    /// others without reading them again.
    fn event_types(&self) -> Option<&'static [&'static str]> {
        None
    }

    /// Applies one event inside the transaction that also moves the checkpoint.
    /// An error stops the projection at this event (nothing of the batch is kept)
    /// until a later attempt succeeds: return one for anything it cannot handle,
    /// never skip.
    async fn apply(&self, tx: &mut PgConnection, event: &RecordedEvent) -> anyhow::Result<()>;

    /// Applies a batch, in order, in one transaction. Override it to write many rows
    /// per statement (rebuilds of large logs); it must have the same effect as
    /// [`Projection::apply`] on each event in turn. When it fails without naming the
    /// event (an [`EventRef`] in the error's context), the projector applies the
    /// batch again one event at a time to find the event.
    async fn apply_batch(
        &self,
        tx: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> anyhow::Result<()> {
        for event in events {
            self.apply(tx, event)
                .await
                .map_err(|e| e.context(EventRef::of(event)))?;
        }
        Ok(())
    }

    /// What a rebuild needs. The default refuses.
    fn rebuild(&self) -> Rebuild {
        Rebuild::Refused("it does not declare its tables (Projection::rebuild)")
    }
}

/// Whether and how a projection can be rebuilt from the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rebuild {
    /// Its read model is exactly these tables (unqualified names), and `ddl` creates
    /// them, with their constraints and indexes, exactly as the migrations left the
    /// live ones, using unqualified names only. A rebuild runs `ddl` in a shadow
    /// schema and refuses to swap if the result differs from the live tables in any
    /// column, default, constraint, index or trigger.
    Tables {
        tables: &'static [&'static str],
        ddl: &'static str,
    },
    /// It cannot be rebuilt; the reason is shown to the operator.
    Refused(&'static str),
}

/// The set of projections one process runs.
#[derive(Clone)]
pub struct Projector {
    store: EventStore,
    projections: Vec<Arc<dyn Projection>>,
    first_retry: Duration,
    max_retry: Duration,
    stall_limit: Duration,
}

impl std::fmt::Debug for Projector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Projector")
            .field("projections", &self.names())
            .finish()
    }
}

impl Projector {
    pub fn new(store: EventStore) -> Self {
        Self {
            store,
            projections: Vec::new(),
            first_retry: FIRST_RETRY,
            max_retry: MAX_RETRY,
            stall_limit: step::STALL_LIMIT,
        }
    }

    /// Adds a projection.
    ///
    /// # Panics
    /// When another projection has the same name: both would share one checkpoint.
    pub fn with(self, projection: impl Projection) -> Self {
        self.with_shared(Arc::new(projection))
    }

    /// Adds a projection that is already shared (a crate's `projections()` list).
    ///
    /// # Panics
    /// When another projection has the same name, or the name is empty or longer
    /// than 48 bytes (it names a schema during a rebuild).
    pub fn with_shared(mut self, projection: Arc<dyn Projection>) -> Self {
        let name = projection.name();
        assert!(
            !name.is_empty() && name.len() <= 48,
            "projection name {name:?} must be 1 to 48 bytes long"
        );
        assert!(
            self.find(name).is_none(),
            "two projections are named {name:?}; each needs its own checkpoint"
        );
        self.projections.push(projection);
        self
    }

    /// The delays between attempts of a failing projection: `first`, doubling up to
    /// `max`. Tests shorten them.
    pub fn retry_backoff(mut self, first: Duration, max: Duration) -> Self {
        self.first_retry = first;
        self.max_retry = max.max(first);
        self
    }

    /// How long one statement of a step, or a pause between two, may take (default
    /// 10 s). A step holds an xid, and so holds back every reader of the log, so the
    /// server ends a step stuck longer than this; a step whose code is still stuck
    /// after twice this is abandoned. Either way the projection is recorded as
    /// failed and tried again.
    pub fn stall_limit(mut self, limit: Duration) -> Self {
        self.stall_limit = limit.max(Duration::from_millis(1));
        self
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.projections.iter().map(|p| p.name()).collect()
    }

    pub fn store(&self) -> &EventStore {
        &self.store
    }

    fn find(&self, name: &str) -> Option<&Arc<dyn Projection>> {
        self.projections.iter().find(|p| p.name() == name)
    }

    /// Applies, in every projection, every event committed before the call, and
    /// returns how many events it applied. Tests call this instead of sleeping.
    ///
    /// It is a real barrier: when a transaction elsewhere in the cluster holds the
    /// watermark back (xids are cluster-wide, so parallel tests on other databases
    /// do), or another process is running a projection, it waits until the events
    /// committed before the call are applied, for at most [`CATCH_UP_LIMIT`].
    /// A projection that fails is recorded as failed, the others still catch up,
    /// and the error names every projection that failed.
    pub async fn catch_up(&self) -> anyhow::Result<u64> {
        let deadline = tokio::time::Instant::now() + CATCH_UP_LIMIT;
        status::ensure(self.store.pool(), &self.names()).await?;
        let target = last_event(&self.store).await?;
        let results = futures::future::join_all(
            self.projections
                .iter()
                .map(|p| self.catch_up_one(p.as_ref(), target, deadline)),
        )
        .await;
        let mut total = 0;
        let mut errors = Vec::new();
        for r in results {
            match r {
                Ok(n) => total += n,
                Err(e) => errors.push(e),
            }
        }
        match errors.len() {
            0 => Ok(total),
            1 => Err(errors.remove(0)),
            n => Err(anyhow::anyhow!(
                "{n} projections failed: {}",
                errors
                    .iter()
                    .map(|e| format!("{e:#}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            )),
        }
    }

    async fn catch_up_one(
        &self,
        p: &dyn Projection,
        target: Option<Checkpoint>,
        deadline: tokio::time::Instant,
    ) -> anyhow::Result<u64> {
        let mut total = 0;
        loop {
            let applying = step::Applying::default();
            let stepped = step::step(
                &self.store,
                p,
                Target::Live,
                LIVE_BATCH,
                Mode::Batch,
                self.stall_limit,
                &applying,
            )
            .await;
            let reached = match stepped {
                Ok(Outcome::Applied { applied, full, .. }) if full => {
                    total += applied;
                    continue;
                }
                Ok(Outcome::Applied { applied, next, .. }) => {
                    total += applied;
                    target.is_none_or(|t| next >= t)
                }
                Ok(Outcome::Busy) => {
                    let at = EventStore::checkpoint(self.store.pool(), p.name()).await?;
                    target.is_none_or(|t| at >= t)
                }
                Err(e) => {
                    status::record_failure(self.store.pool(), p.name(), &e, None).await;
                    return Err(e);
                }
            };
            if reached {
                return Ok(total);
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "projection {} did not catch up within {} s: a long-running transaction \
                 holds the watermark back, or another process holds the projection",
                p.name(),
                CATCH_UP_LIMIT.as_secs()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Runs every projection, each in its own loop, until `shutdown` is cancelled.
    /// Loops are woken by appends (in this process or, through NOTIFY, in another)
    /// and by polling. A failing projection retries with a growing delay; the others
    /// carry on.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let (wake, woken) = watch::channel(0u64);
        let mut loops = tokio::task::JoinSet::new();
        for p in &self.projections {
            loops.spawn(
                self.clone()
                    .run_one(p.clone(), woken.clone(), shutdown.clone()),
            );
        }
        let mut sub = self.store.subscribe().await;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = sub.wait() => { wake.send_modify(|n| *n = n.wrapping_add(1)); }
            }
        }
        while let Some(r) = loops.join_next().await {
            if let Err(e) = r {
                tracing::error!(error = %e, "a projection loop ended abnormally");
            }
        }
        Ok(())
    }

    /// One projection's loop: drain, then wait for a wake-up; on failure, record it
    /// and wait out the backoff.
    async fn run_one(
        self,
        p: Arc<dyn Projection>,
        mut woken: watch::Receiver<u64>,
        shutdown: CancellationToken,
    ) {
        let mut failures: u32 = 0;
        let mut registered = false;
        loop {
            // After a failure, one event at a time, so that a batch that hung is
            // narrowed down to the event it hangs on.
            let mode = if failures > 0 {
                Mode::OneByOne
            } else {
                Mode::Batch
            };
            // Registering (the status and checkpoint rows) is part of the loop, so
            // that a database that is down at start-up is retried like any failure.
            let attempt = async {
                if !registered {
                    status::ensure(self.store.pool(), &[p.name()]).await?;
                    registered = true;
                }
                self.drain(p.as_ref(), mode, &shutdown).await
            };
            match attempt.await {
                Ok(()) => failures = 0,
                Err(e) => {
                    failures = failures.saturating_add(1);
                    let delay = self
                        .first_retry
                        .saturating_mul(2u32.saturating_pow(failures - 1))
                        .min(self.max_retry);
                    status::record_failure(self.store.pool(), p.name(), &e, Some(delay)).await;
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(delay) => continue,
                    }
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                r = woken.changed() => if r.is_err() { return },
            }
        }
    }

    /// Steps until nothing more is readable now (or another process holds it).
    /// A panic, or a step still running after twice the stall limit, counts as a
    /// failure.
    async fn drain(
        &self,
        p: &dyn Projection,
        mode: Mode,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<()> {
        let applying = step::Applying::default();
        while !shutdown.is_cancelled() {
            let step = std::panic::AssertUnwindSafe(step::step(
                &self.store,
                p,
                Target::Live,
                LIVE_BATCH,
                mode,
                self.stall_limit,
                &applying,
            ))
            .catch_unwind();
            let outcome = match tokio::time::timeout(self.stall_limit * 2, step).await {
                Ok(Ok(r)) => r?,
                Ok(Err(panic)) => {
                    let what = panic
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    anyhow::bail!("projection {} panicked: {what}", p.name());
                }
                Err(_) => {
                    let e = anyhow::anyhow!(
                        "projection {} was stuck for {:.1} s in {}; the step was abandoned \
                         and will be tried again",
                        p.name(),
                        (self.stall_limit * 2).as_secs_f64(),
                        applying
                            .describe()
                            .unwrap_or_else(|| "a step, before it applied anything".to_owned())
                    );
                    return Err(match applying.single() {
                        Some(event) => e.context(event),
                        None => e,
                    });
                }
            };
            match outcome {
                Outcome::Applied { full: true, .. } => continue,
                Outcome::Applied { .. } | Outcome::Busy => return Ok(()),
            }
        }
        Ok(())
    }

    /// Each projection's position, lag and state, in registration order.
    pub async fn status(&self) -> anyhow::Result<Vec<ProjectionStatus>> {
        let mut all = Vec::with_capacity(self.projections.len());
        for p in &self.projections {
            all.push(status::of(self.store.pool(), p.as_ref()).await?);
        }
        Ok(all)
    }

    /// Rebuilds the projection `name` from the whole log beside its live tables,
    /// then swaps the new tables in, in one transaction. Safe while the projection
    /// runs in this process or another: its loop pauses for the swap and carries on
    /// from the rebuilt state.
    pub async fn rebuild(&self, name: &str) -> anyhow::Result<RebuildReport> {
        let Some(p) = self.find(name) else {
            anyhow::bail!(
                "no projection is named {name:?}; known: {}",
                self.names().join(", ")
            );
        };
        rebuild::rebuild(&self.store, p.as_ref(), self.stall_limit).await
    }
}

/// The last event committed and visible now, in the global order.
async fn last_event(store: &EventStore) -> anyhow::Result<Option<Checkpoint>> {
    use sqlx::Row;
    let row = sqlx::query(
        "SELECT transaction_id, position FROM events \
         ORDER BY transaction_id DESC, position DESC LIMIT 1",
    )
    .fetch_optional(store.pool())
    .await?;
    row.map(|r| {
        Ok(Checkpoint {
            transaction_id: r.try_get("transaction_id")?,
            position: r.try_get("position")?,
        })
    })
    .transpose()
}
