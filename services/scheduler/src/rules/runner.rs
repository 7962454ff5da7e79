//! The cron runner of `kujira serve`: tokio-cron-scheduler fires each enabled rule
//! on its schedule, in the city's time zone; each tick evaluates the rule as of the
//! clock's now. Missed runs are caught up first.

use std::sync::Arc;

use anyhow::{Context, anyhow};
use kujira_config::{Clock, RuleName};
use tokio_cron_scheduler::{Job, JobScheduler};
use tokio_util::sync::CancellationToken;

use super::engine::Rules;

/// The tour reminder also runs every minute (seconds first), so that a party
/// promoted from the waiting list after the reminder's moment gets its reminder at
/// promotion, not at the next day's run, which may come after the tour has started.
/// The run is cheap: it reads the tours starting within days.
pub const PROMOTION_SWEEP: &str = "0 * * * * *";

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
        for rule in self.enabled() {
            let Some(cron) = self.config().rules.schedule(rule).cron() else {
                continue;
            };
            self.add(&scheduler, &cron.with_seconds, rule, &clock)
                .await?;
            if rule == RuleName::TourReminder {
                self.add(&scheduler, PROMOTION_SWEEP, rule, &clock).await?;
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
        tracing::info!("scheduler rules stopped");
        Ok(())
    }

    async fn add(
        &self,
        scheduler: &JobScheduler,
        cron: &str,
        rule: RuleName,
        clock: &Arc<dyn Clock>,
    ) -> anyhow::Result<()> {
        let rules = self.clone();
        let clock = clock.clone();
        let job = Job::new_async_tz(cron, self.config().timezone, move |_id, _scheduler| {
            let rules = rules.clone();
            let clock = clock.clone();
            Box::pin(async move { rules.tick(rule, clock.now()).await })
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
