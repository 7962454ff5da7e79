//! One step of one projection: lock its checkpoint, read a batch, apply it, move the
//! checkpoint, commit. Everything the projector does goes through here.

use kujira_eventlog::{Batch, Checkpoint, EventStore, RecordedEvent, read_batch_with};
use sqlx::PgConnection;

use crate::status::{self, ProjectionState};
use crate::{EventRef, Projection};

/// The default of [`crate::Projector::stall_limit`].
pub(crate) const STALL_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Which copy of a projection a step advances.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target<'a> {
    /// The live tables, under the projection's own checkpoint and status.
    Live,
    /// A rebuild's shadow tables in `schema`, under the checkpoint `reader`.
    Shadow { reader: &'a str, schema: &'a str },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// [`Projection::apply_batch`].
    Batch,
    /// [`Projection::apply`] on each event: finds the event a batch failed on.
    OneByOne,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The checkpoint moved to `next` (or stayed, when nothing was readable).
    /// `full`: the read hit its limit, so more may be readable at once.
    Applied {
        applied: u64,
        full: bool,
        next: Checkpoint,
    },
    /// Another transaction holds the checkpoint: the projection runs elsewhere, or a
    /// rebuild is swapping it.
    Busy,
}

enum Failed {
    /// `apply_batch` failed on a batch of several events without naming the event.
    Unattributed(anyhow::Error),
    Other(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for Failed {
    fn from(e: E) -> Self {
        Failed::Other(e.into())
    }
}

/// One step. When the batch fails without naming its event, the same batch is
/// applied again one event at a time, so that the error (and the recorded status)
/// always names the event. A loop that has just failed steps [`Mode::OneByOne`]
/// from the start, so that a batch that hung is narrowed down to its event too.
pub(crate) async fn step(
    store: &EventStore,
    p: &dyn Projection,
    target: Target<'_>,
    limit: i64,
    mode: Mode,
    stall_limit: std::time::Duration,
    applying: &Applying,
) -> anyhow::Result<Outcome> {
    let run = |mode| step_in(store, p, target, limit, mode, stall_limit, applying);
    let result = match run(mode).await {
        Err(Failed::Unattributed(batch_error)) => match run(Mode::OneByOne).await {
            Ok(outcome) => {
                tracing::warn!(
                    projection = p.name(),
                    error = status::redact(&format!("{batch_error:#}")),
                    "apply_batch failed but applying the same events one by one succeeded; \
                         apply_batch and apply disagree"
                );
                Ok(outcome)
            }
            Err(Failed::Unattributed(e) | Failed::Other(e)) => Err(e),
        },
        Err(Failed::Other(e)) => Err(e),
        Ok(outcome) => Ok(outcome),
    };
    result.map_err(|e| e.context(format!("projection {} failed", p.name())))
}

async fn step_in(
    store: &EventStore,
    p: &dyn Projection,
    target: Target<'_>,
    limit: i64,
    mode: Mode,
    stall_limit: std::time::Duration,
    applying: &Applying,
) -> Result<Outcome, Failed> {
    let (reader, schema) = match target {
        Target::Live => (p.name(), None),
        Target::Shadow { reader, schema } => (reader, Some(schema)),
    };
    let mut tx = store.pool().begin().await?;
    set_limits(&mut tx, schema, stall_limit).await?;
    let Some(from) = EventStore::try_lock_checkpoint(&mut tx, reader).await? else {
        return Ok(Outcome::Busy);
    };
    let batch = read_batch_with(&mut *tx, from, limit, p.event_types()).await?;
    applying.set(&batch.events);
    let applied = apply(&mut tx, p, &batch, mode, applying).await;
    applying.clear();
    if let Err(e) = applied {
        // Nothing of the batch is kept, and the checkpoint stays before it.
        tx.rollback().await.ok();
        return Err(e);
    }
    if batch.next != from {
        EventStore::save_checkpoint(&mut tx, reader, batch.next).await?;
    }
    if matches!(target, Target::Live) {
        let state = if batch.full {
            ProjectionState::Running
        } else {
            ProjectionState::CaughtUp
        };
        status::mark_ok(&mut tx, p.name(), state).await?;
    }
    tx.commit().await?;
    Ok(Outcome::Applied {
        applied: batch.events.len() as u64,
        full: batch.full,
        next: batch.next,
    })
}

/// Sets the step's server-side limits and, for a shadow, puts the shadow schema
/// first on the search path, so that the projection's unqualified table names
/// resolve to the shadow tables (and anything else it reads, to the live schema).
///
/// The limits matter beyond the projection itself: a step holds an xid, so a step
/// stuck inside its transaction (a statement waiting on a lock, code awaiting
/// something that never comes) holds back the watermark of every reader of the
/// log. The server ends such a transaction after `stall_limit`, which frees the
/// others; the loop then records the failure and tries again.
pub(crate) async fn set_limits(
    tx: &mut PgConnection,
    shadow_schema: Option<&str>,
    stall_limit: std::time::Duration,
) -> sqlx::Result<()> {
    let ms = format!("{}ms", stall_limit.as_millis().max(1));
    sqlx::query(
        "SELECT set_config('statement_timeout', $1, true), \
                set_config('idle_in_transaction_session_timeout', $1, true), \
                CASE WHEN $2::text IS NOT NULL THEN set_config('search_path', \
                     quote_ident($2) || ', ' || current_setting('search_path'), true) END",
    )
    .bind(&ms)
    .bind(shadow_schema)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn apply(
    tx: &mut PgConnection,
    p: &dyn Projection,
    batch: &Batch,
    mode: Mode,
    applying: &Applying,
) -> Result<(), Failed> {
    if batch.events.is_empty() {
        return Ok(());
    }
    let result = match mode {
        Mode::Batch => p.apply_batch(tx, &batch.events).await,
        Mode::OneByOne => apply_one_by_one(tx, p, &batch.events, applying).await,
    };
    let Err(e) = result else { return Ok(()) };
    if e.downcast_ref::<EventRef>().is_some() {
        return Err(Failed::Other(e));
    }
    match batch.events.as_slice() {
        [only] => Err(Failed::Other(e.context(EventRef::of(only)))),
        _ if mode == Mode::Batch => Err(Failed::Unattributed(e)),
        _ => Err(Failed::Other(e)),
    }
}

/// The batch a step is applying, for the error of a step that never finishes.
#[derive(Debug, Default)]
pub(crate) struct Applying(std::sync::Mutex<Option<(EventRef, EventRef)>>);

impl Applying {
    fn set(&self, events: &[RecordedEvent]) {
        let range = match (events.first(), events.last()) {
            (Some(first), Some(last)) => Some((EventRef::of(first), EventRef::of(last))),
            _ => None,
        };
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = range;
    }

    fn clear(&self) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// The event being applied, when the batch is that one event.
    pub(crate) fn single(&self) -> Option<EventRef> {
        let guard = self.0.lock().unwrap_or_else(|p| p.into_inner());
        guard
            .as_ref()
            .filter(|(first, last)| first == last)
            .map(|(first, _)| first.clone())
    }

    /// "the event …" or "the batch of events from … to …", when one was being applied.
    pub(crate) fn describe(&self) -> Option<String> {
        let guard = self.0.lock().unwrap_or_else(|p| p.into_inner());
        guard.as_ref().map(|(first, last)| {
            if first == last {
                format!("the {first}")
            } else {
                format!(
                    "the batch of events from position {} to {} (first: {first})",
                    first.position, last.position
                )
            }
        })
    }
}

pub(crate) async fn apply_one_by_one(
    tx: &mut PgConnection,
    p: &dyn Projection,
    events: &[RecordedEvent],
    applying: &Applying,
) -> anyhow::Result<()> {
    for event in events {
        applying.set(std::slice::from_ref(event));
        p.apply(tx, event)
            .await
            .map_err(|e| e.context(EventRef::of(event)))?;
    }
    Ok(())
}
