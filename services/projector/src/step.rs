//! One step of one projection: lock its checkpoint, read a batch, apply it, move the
//! checkpoint, commit. Everything the projector does goes through here.

use kujira_eventlog::{Batch, Checkpoint, EventStore, RecordedEvent, read_batch_with};
use sqlx::PgConnection;

use crate::status::{self, ProjectionState};
use crate::{EventRef, Projection};

/// Server-side limits of every step. A step holds an xid, so a step stuck inside
/// its transaction would hold back every reader of the log, not only its own
/// projection: the server ends it instead.
const STATEMENT_LIMIT: &str = "60s";
const IDLE_LIMIT: &str = "60s";

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
/// always names the event.
pub(crate) async fn step(
    store: &EventStore,
    p: &dyn Projection,
    target: Target<'_>,
    limit: i64,
) -> anyhow::Result<Outcome> {
    let result = match step_in(store, p, target, limit, Mode::Batch).await {
        Err(Failed::Unattributed(batch_error)) => {
            match step_in(store, p, target, limit, Mode::OneByOne).await {
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
            }
        }
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
) -> Result<Outcome, Failed> {
    let (reader, schema) = match target {
        Target::Live => (p.name(), None),
        Target::Shadow { reader, schema } => (reader, Some(schema)),
    };
    let mut tx = store.pool().begin().await?;
    set_limits(&mut tx, schema).await?;
    let Some(from) = EventStore::try_lock_checkpoint(&mut tx, reader).await? else {
        return Ok(Outcome::Busy);
    };
    let batch = read_batch_with(&mut *tx, from, limit, p.event_types()).await?;
    if let Err(e) = apply(&mut tx, p, &batch, mode).await {
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
pub(crate) async fn set_limits(
    tx: &mut PgConnection,
    shadow_schema: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query(
        "SELECT set_config('statement_timeout', $1, true), \
                set_config('idle_in_transaction_session_timeout', $2, true), \
                CASE WHEN $3::text IS NOT NULL THEN set_config('search_path', \
                     quote_ident($3) || ', ' || current_setting('search_path'), true) END",
    )
    .bind(STATEMENT_LIMIT)
    .bind(IDLE_LIMIT)
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
) -> Result<(), Failed> {
    if batch.events.is_empty() {
        return Ok(());
    }
    let result = match mode {
        Mode::Batch => p.apply_batch(tx, &batch.events).await,
        Mode::OneByOne => apply_one_by_one(tx, p, &batch.events).await,
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

pub(crate) async fn apply_one_by_one(
    tx: &mut PgConnection,
    p: &dyn Projection,
    events: &[RecordedEvent],
) -> anyhow::Result<()> {
    for event in events {
        p.apply(tx, event)
            .await
            .map_err(|e| e.context(EventRef::of(event)))?;
    }
    Ok(())
}
