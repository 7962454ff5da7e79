//! The cron runner of `kujira serve`: tokio-cron-scheduler fires each enabled rule
//! on its schedule, in the city's time zone; each tick evaluates the rule as of the
//! clock's now. Missed runs are caught up first.

use std::sync::Arc;

use anyhow::{Context, anyhow};
use kujira_config::{Clock, RuleName};
use tokio_cron_scheduler::{Job, JobScheduler};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::engine::Rules;

/// The tour reminder also runs every minute (seconds first), so that a party
/// promoted from the waiting list after the reminder's moment gets its reminder at
/// promotion, not at the next day's run, which may come after the tour has started.
/// The run is cheap: it reads the tours starting within days.
pub const PROMOTION_SWEEP: &str = "0 * * * * *";

/// How long stopping waits for the rule runs in progress (a run takes milliseconds
/// to seconds; one stuck on the database is not waited for forever).
const STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// The runs in progress, and whether the service is stopping.
#[derive(Clone)]
struct Ticks {
    tracker: TaskTracker,
    shutdown: CancellationToken,
}

impl Rules {
    /// Runs the rules on their schedules until `shutdown` is cancelled. First it
    /// catches up the runs missed while the service was down.
    pub async fn serve(
        self,
        clock: Arc<dyn Clock>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        match self.catch_up_missed(clock.now()).await {
            Ok(caught) => {
                for r in caught.iter().filter(|r| !r.queued.is_empty()) {
                    tracing::info!(
                        rule = r.rule.as_str(),
                        queued = r.queued.len(),
                        "queued mail at start"
                    );
                }
            }
            // The database may still be starting; the schedule goes on regardless.
            Err(e) => tracing::error!(error = format!("{e:#}"), "cannot catch up missed runs"),
        }
        let mut scheduler = JobScheduler::new()
            .await
            .map_err(|e| anyhow!("cannot start the cron scheduler: {e}"))?;
        // The runs in progress, so that stopping waits for them: a tick that fired
        // as the service stopped ran on after this returned, and failed on the pool
        // `serve` closes next (「rule failed … closed pool」 in the log).
        let running = Ticks {
            tracker: TaskTracker::new(),
            shutdown: shutdown.clone(),
        };
        for rule in self.enabled() {
            let Some(cron) = self.config().rules.schedule(rule).cron() else {
                continue;
            };
            self.add(&scheduler, &cron.with_seconds, rule, &clock, &running)
                .await?;
            if rule == RuleName::TourReminder {
                self.add(&scheduler, PROMOTION_SWEEP, rule, &clock, &running)
                    .await?;
            }
        }
        scheduler
            .start()
            .await
            .map_err(|e| anyhow!("cannot start the cron scheduler: {e}"))?;
        tracing::info!(rules = ?self.enabled(), "scheduler rules are running");
        shutdown.cancelled().await;
        scheduler
            .shutdown()
            .await
            .map_err(|e| anyhow!("cannot stop the cron scheduler: {e}"))?;
        running.tracker.close();
        if tokio::time::timeout(STOP_WAIT, running.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                seconds = STOP_WAIT.as_secs(),
                "a rule run was still going; stopping without waiting for it"
            );
        }
        tracing::info!("scheduler rules stopped");
        Ok(())
    }

    async fn add(
        &self,
        scheduler: &JobScheduler,
        cron: &str,
        rule: RuleName,
        clock: &Arc<dyn Clock>,
        running: &Ticks,
    ) -> anyhow::Result<()> {
        let rules = self.clone();
        let clock = clock.clone();
        let running = running.clone();
        let job = Job::new_async_tz(cron, self.config().timezone, move |_id, _scheduler| {
            let rules = rules.clone();
            let clock = clock.clone();
            // Counted before anything else, so that a stop waiting for the runs
            // cannot miss this one; a tick that fires once the stop began does not
            // start.
            let token = running.tracker.token();
            let stopping = running.shutdown.is_cancelled();
            Box::pin(async move {
                if !stopping {
                    rules.tick(rule, clock.now()).await;
                }
                drop(token);
            })
        })
        .map_err(|e| anyhow!("{}: cannot schedule {cron:?}: {e}", rule.variable()))?;
        scheduler
            .add(job)
            .await
            .map_err(|e| anyhow!("cannot add {rule}: {e}"))
            .context("the cron scheduler")?;
        Ok(())
    }
}
