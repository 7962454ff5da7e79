//! The delivery loops of `kujira serve`: woken by the outbox projection's NOTIFY,
//! and by a poll for retries.

use anyhow::Context;
use sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;

use super::{BATCH, MAIL_NOTIFY_CHANNEL, Mailer, POLL_INTERVAL};

impl Mailer {
    /// `workers` delivery loops ([`Mailer::run`]) side by side, as `kujira serve`
    /// runs them (`KUJIRA_MAIL_WORKERS`). They share nothing but the table: each claim
    /// takes one row with `SKIP LOCKED` under a token of its own, so they never wait
    /// on each other nor send a mail twice. Several matter for SMTP, where every
    /// message waits out a delayed ACK and one connection carries about 22 mails a
    /// second whatever the work (see the README's mail benchmark).
    pub async fn run_workers(
        self,
        workers: usize,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let mut loops = tokio::task::JoinSet::new();
        for _ in 0..workers.max(1) {
            loops.spawn(self.clone().run(shutdown.clone()));
        }
        let mut outcome = Ok(());
        while let Some(done) = loops.join_next().await {
            let done = done.context("a mail worker panicked").and_then(|r| r);
            if let Err(e) = done {
                // The others keep sending until shutdown; the first failure is kept.
                tracing::error!(error = format!("{e:#}"), "a mail worker stopped");
                if outcome.is_ok() {
                    outcome = Err(e);
                }
            }
        }
        outcome
    }

    /// The worker of `kujira serve`: delivers whenever the outbox projection announces
    /// new mail, and every few seconds for retries, until `shutdown` is cancelled.
    /// A mail being sent when shutdown comes is finished first.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let mut listener = match PgListener::connect_with(self.store.pool()).await {
            Ok(mut l) => match l.listen(MAIL_NOTIFY_CHANNEL).await {
                Ok(()) => Some(l),
                Err(e) => {
                    tracing::warn!(error = %e, "mailer: LISTEN failed; polling only");
                    None
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "mailer: no LISTEN connection; polling only");
                None
            }
        };
        while !shutdown.is_cancelled() {
            match self.deliver_batch(Some(&shutdown)).await {
                // A full batch: there may be more due right now.
                Ok(report) if report.attempted() >= BATCH => continue,
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "mailer: delivery round failed")
                }
            }
            let notified = async {
                match listener.as_mut() {
                    Some(l) => {
                        if let Err(e) = l.recv().await {
                            // sqlx reconnects on the next recv; wait a poll so that a
                            // database that is down is not hammered.
                            tracing::debug!(error = %e, "mailer: listener error");
                            tokio::time::sleep(POLL_INTERVAL).await;
                        }
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = notified => {}
                () = tokio::time::sleep(POLL_INTERVAL) => {}
            }
        }
        tracing::info!("mailer stopped");
        Ok(())
    }
}
