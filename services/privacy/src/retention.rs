//! Retention (保有期間): persons with no activity for `KUJIRA_RETENTION` are erased,
//! by the same erasure as a request, with the rule named in the record.

use std::sync::Arc;

use anyhow::{Context, anyhow};
use chrono::{DateTime, Utc};
use kujira_config::{Clock, Retention};
use kujira_store::Store;
use tokio_cron_scheduler::{Job, JobScheduler};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::PrivacyError;

/// The actor retention erasures are recorded under.
pub const ACTOR: &str = "system:retention";

/// Erases every person whose last activity is older than `retention` at `now`.
/// Returns the persons erased. Safe to run twice, or in two processes at once:
/// erasing an erased person records nothing.
pub async fn run(
    store: &Store,
    retention: Retention,
    now: DateTime<Utc>,
) -> Result<Vec<Uuid>, PrivacyError> {
    let Some(cutoff) = retention.cutoff(now) else {
        return Ok(vec![]);
    };
    let due: Vec<Uuid> = sqlx::query_scalar(
        "SELECT person_id FROM privacy_persons \
         WHERE erased_at IS NULL AND last_activity_at < $1 ORDER BY last_activity_at",
    )
    .bind(cutoff)
    .fetch_all(store.pool())
    .await
    .map_err(|e| PrivacyError::Internal(e.into()))?;
    let rule = retention.rule();
    for person in &due {
        crate::erasure::erase_person(store, *person, ACTOR, Some(rule.clone()), now).await?;
    }
    if !due.is_empty() {
        tracing::info!(persons = due.len(), %rule, "retention erased persons past their period");
    }
    Ok(due)
}

/// When `kujira serve` applies retention: every day at 03:00 in the city's time
/// zone (seconds first, as tokio-cron-scheduler reads it), a quiet hour for the
/// database. Once at start-up too, so that a service stopped over night still
/// erases what fell due.
pub const SCHEDULE: &str = "0 0 3 * * *";

/// Applies `retention` on [`SCHEDULE`] until `shutdown` is cancelled. A failed run is
/// logged and tried again at the next one: the erasure is idempotent, and nothing
/// is half-done (each person is erased in one transaction).
pub async fn serve(
    store: Store,
    retention: Retention,
    timezone: chrono_tz::Tz,
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    if retention.cutoff(clock.now()).is_none() {
        tracing::info!("retention is off (KUJIRA_RETENTION=off)");
        return Ok(());
    }
    run_logged(&store, retention, clock.now()).await;
    let mut scheduler = JobScheduler::new()
        .await
        .map_err(|e| anyhow!("cannot start the retention schedule: {e}"))?;
    let job = Job::new_async_tz(SCHEDULE, timezone, move |_id, _scheduler| {
        let store = store.clone();
        let clock = clock.clone();
        Box::pin(async move { run_logged(&store, retention, clock.now()).await })
    })
    .map_err(|e| anyhow!("cannot schedule retention: {e}"))?;
    scheduler
        .add(job)
        .await
        .map_err(|e| anyhow!("cannot schedule retention: {e}"))?;
    scheduler
        .start()
        .await
        .map_err(|e| anyhow!("cannot start the retention schedule: {e}"))?;
    shutdown.cancelled().await;
    scheduler
        .shutdown()
        .await
        .map_err(|e| anyhow!("cannot stop the retention schedule: {e}"))
        .context("retention")?;
    Ok(())
}

async fn run_logged(store: &Store, retention: Retention, now: DateTime<Utc>) {
    if let Err(e) = run(store, retention, now).await {
        tracing::error!(error = %e, "retention run failed; it is tried again at the next run");
    }
}
