//! The delivery worker.
//!
//! Each delivery is claimed in one short statement that takes a lease (moving
//! `next_attempt_at` past the longest send), then sent with no transaction open, then
//! settled in another short statement. Holding a row lock across the send instead
//! would keep a transaction id alive for as long as an SMTP server dawdles, and every
//! gap-safe reader of the event log waits for the oldest live transaction id.
//!
//! Crash anywhere: the row stays `pending` and its lease runs out, so another worker
//! (or this one after a restart) picks it up. The only duplicate left is the one no
//! protocol avoids: the server accepted the mail and we died before recording it.

pub(crate) mod message;
pub(crate) mod transport;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use kujira_config::{Clock, Config};
use kujira_domain::mail::{
    MAIL_QUEUED, MAIL_REQUESTED, MailContent, MailFacts, MailQueued, MailRequested, RenderError,
    RenderMail,
};
use kujira_eventlog::StreamName;
use kujira_store::Store;
use sqlx::Row;
use sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;

use self::message::{Sender, build_message, message_id};
use self::transport::{SendError, Transport, redact_addresses};

/// The channel on which the outbox projection announces new deliveries (an empty
/// payload, delivered when the projector commits).
pub const MAIL_NOTIFY_CHANNEL: &str = "kujira_mail";

/// How often [`Mailer::run`] looks for due mail when nothing wakes it: retries come
/// due without any notification.
const POLL_INTERVAL: Duration = Duration::from_secs(5);
/// Deliveries per [`Mailer::deliver_due`] call, so that a long queue does not keep
/// shutdown waiting.
const BATCH: usize = 50;

/// When to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The wait after the first failure; it doubles after each further one.
    pub first_retry: chrono::Duration,
    /// The longest wait between two attempts. There is no last attempt: a mail is
    /// never dropped because a server was down for a long time.
    pub max_retry: chrono::Duration,
    /// How long a worker owns a claimed mail. Longer than any send can take (SMTP
    /// commands time out after 30 s), so that a live worker is never overtaken.
    pub lease: chrono::Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            first_retry: chrono::Duration::minutes(1),
            max_retry: chrono::Duration::hours(1),
            lease: chrono::Duration::minutes(10),
        }
    }
}

impl RetryPolicy {
    /// The wait after the `attempts`-th failed attempt (1-based).
    pub fn backoff(&self, attempts: u32) -> chrono::Duration {
        let doublings = attempts.saturating_sub(1).min(30);
        self.first_retry
            .checked_mul(1 << doublings)
            .map_or(self.max_retry, |d| d.min(self.max_retry))
    }
}

/// What one [`Mailer::deliver_due`] call did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Keys sent (or written) this time.
    pub sent: Vec<String>,
    /// Keys that failed for now and were scheduled for a retry.
    pub deferred: Vec<String>,
    /// Keys rejected for good.
    pub failed: Vec<String>,
}

impl DeliveryReport {
    pub fn attempted(&self) -> usize {
        self.sent.len() + self.deferred.len() + self.failed.len()
    }
}

/// A claimed delivery.
#[derive(Debug)]
struct Claim {
    key: String,
    stream_name: String,
    stream_version: i64,
    position: i64,
    attempts: i32,
}

/// Sends what the outbox holds.
#[derive(Debug, Clone)]
pub struct Mailer {
    store: Store,
    transport: Transport,
    sender: Sender,
    clock: Arc<dyn Clock>,
    policy: RetryPolicy,
    /// Who renders the queued mails of each template.
    renderers: Vec<Arc<dyn RenderMail>>,
}

impl Mailer {
    pub fn new(store: Store, transport: Transport, sender: Sender, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            transport,
            sender,
            clock,
            policy: RetryPolicy::default(),
            renderers: Vec::new(),
        }
    }

    /// The mailer `kujira serve` runs: SMTP when `KUJIRA_SMTP_URL` is set, otherwise
    /// `.eml` files in `<data dir>/outbox`; mail comes from `KUJIRA_MAIL_FROM` under
    /// the site's name.
    pub fn from_config(
        store: Store,
        config: &Config,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        let transport = match &config.smtp_url {
            Some(url) => {
                Transport::smtp(url).context("KUJIRA_SMTP_URL is not a usable SMTP URL")?
            }
            None => Transport::file(config.outbox_dir()),
        };
        let sender = Sender::new(&config.words.site_name, &config.mail_from)
            .context("KUJIRA_MAIL_FROM is not a usable address")?;
        Ok(Self::new(store, transport, sender, clock))
    }

    /// Registers the renderer of some templates of `MailQueued` mail.
    pub fn with_renderer(mut self, renderer: Arc<dyn RenderMail>) -> Self {
        self.renderers.push(renderer);
        self
    }

    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// Sends every delivery due now (up to a batch), each at most once per call.
    /// Tests call this directly, moving a `FixedClock` to make retries come due.
    pub async fn deliver_due(&self) -> anyhow::Result<DeliveryReport> {
        self.deliver_batch(None).await
    }

    async fn deliver_batch(
        &self,
        stop: Option<&CancellationToken>,
    ) -> anyhow::Result<DeliveryReport> {
        let mut report = DeliveryReport::default();
        // Claimed at one `now`, so that a mail deferred in this call is not due again
        // in the same call however the clock moves.
        let now = self.clock.now();
        while report.attempted() < BATCH && !stop.is_some_and(CancellationToken::is_cancelled) {
            let Some(claim) = self.claim(now).await? else {
                break;
            };
            let outcome = self.send(&claim).await;
            let key = claim.key.clone();
            match self.settle(&claim, outcome).await? {
                Settled::Sent => report.sent.push(key),
                Settled::Deferred => report.deferred.push(key),
                Settled::Failed => report.failed.push(key),
            }
        }
        Ok(report)
    }

    /// Takes the next due delivery and leases it to this worker.
    async fn claim(&self, now: DateTime<Utc>) -> anyhow::Result<Option<Claim>> {
        let row = sqlx::query(
            "UPDATE mail_deliveries SET \
               attempts = attempts + 1, last_attempt_at = $1, next_attempt_at = $2 \
             WHERE key = ( \
               SELECT key FROM mail_deliveries \
               WHERE status = 'pending' AND (next_attempt_at IS NULL OR next_attempt_at <= $1) \
               ORDER BY next_attempt_at NULLS FIRST, position \
               LIMIT 1 FOR UPDATE SKIP LOCKED) \
             RETURNING key, stream_name, stream_version, position, attempts",
        )
        .bind(now)
        .bind(now + self.policy.lease)
        .fetch_optional(self.store.pool())
        .await
        .context("cannot claim a mail delivery")?;
        row.map(|r| {
            Ok(Claim {
                key: r.try_get("key")?,
                stream_name: r.try_get("stream_name")?,
                stream_version: r.try_get("stream_version")?,
                position: r.try_get("position")?,
                attempts: r.try_get("attempts")?,
            })
        })
        .transpose()
    }

    /// Loads the requested mail from its event and hands it to the transport.
    async fn send(&self, claim: &Claim) -> Result<String, SendError> {
        let (mail, requested_at) = self.load(claim).await?;
        let content = mail.personal.known().ok_or_else(|| {
            SendError::Permanent(format!("the personal data of {} was erased", claim.key))
        })?;
        let message = build_message(&self.sender, &mail.key, content, requested_at)
            .map_err(|e| SendError::Permanent(redact_addresses(&e.to_string())))?;
        self.transport.send(&claim.key, &message).await?;
        Ok(message_id(&claim.key, self.sender.domain()))
    }

    async fn load(&self, claim: &Claim) -> Result<(MailRequested, DateTime<Utc>), SendError> {
        let stream = StreamName::parse(&claim.stream_name)
            .map_err(|e| SendError::Permanent(e.to_string()))?;
        let after = u64::try_from(claim.stream_version - 1).unwrap_or(0);
        let events = self
            .store
            .read_stream(&stream, after, 1)
            .await
            .map_err(|e| SendError::Transient(format!("cannot load the request: {e}")))?;
        let event = events
            .into_iter()
            .next()
            .filter(|e| {
                e.position == claim.position
                    && (e.event_type == MAIL_REQUESTED || e.event_type == MAIL_QUEUED)
            })
            .ok_or_else(|| {
                SendError::Permanent(format!(
                    "the mail event at position {} is gone",
                    claim.position
                ))
            })?;
        let decode_error = |e: serde_json::Error| {
            SendError::Permanent(format!(
                "cannot decode the request at {}: {e}",
                claim.position
            ))
        };
        let mail: MailRequested = if event.event_type == MAIL_QUEUED {
            let queued: MailQueued = serde_json::from_value(event.data).map_err(decode_error)?;
            let content = self.render(&stream, claim, &queued).await?;
            MailRequested {
                key: queued.key,
                template: queued.template,
                personal: content.into(),
            }
        } else {
            // Legacy: rendered when requested, sealed with the person's key since.
            serde_json::from_value(event.data).map_err(decode_error)?
        };
        if mail.key != claim.key {
            return Err(SendError::Permanent(format!(
                "the event at position {} has another key",
                claim.position
            )));
        }
        if mail.personal.is_erased() {
            return Err(SendError::Permanent(format!(
                "the personal data of {} was erased",
                claim.key
            )));
        }
        Ok((mail, event.recorded_at))
    }

    /// Renders a queued mail from the facts of its stream, up to the event that
    /// queued it, and of the person it is addressed to.
    async fn render(
        &self,
        stream: &StreamName,
        claim: &Claim,
        queued: &MailQueued,
    ) -> Result<MailContent, SendError> {
        let renderer = self
            .renderers
            .iter()
            .find(|r| r.templates().contains(&queued.template.as_str()))
            .ok_or_else(|| {
                // A process without the renderer (a misconfigured worker) must not
                // drop the mail: a later attempt, or another worker, can render it.
                SendError::Transient(format!("no renderer for template {}", queued.template))
            })?;
        let load_error = |e: kujira_store::StoreError| {
            SendError::Transient(format!("cannot load the facts: {e}"))
        };
        let events = self
            .store
            .read_stream(stream, 0, claim.stream_version)
            .await
            .map_err(load_error)?;
        let person = match queued.person_id {
            Some(p) => self
                .store
                .read_whole_stream(&StreamName::new(kujira_domain::person::CATEGORY, p))
                .await
                .map_err(load_error)?,
            None => Vec::new(),
        };
        let facts: Vec<(String, serde_json::Value)> =
            events.into_iter().map(|e| (e.event_type, e.data)).collect();
        let person: Vec<(String, serde_json::Value)> =
            person.into_iter().map(|e| (e.event_type, e.data)).collect();
        renderer
            .render(
                queued,
                &MailFacts {
                    stream: &facts,
                    person: &person,
                },
            )
            .map_err(|e| match e {
                RenderError::Erased(_) => {
                    SendError::Permanent(format!("the personal data of {} was erased", queued.key))
                }
                other => SendError::Permanent(other.to_string()),
            })
    }

    /// Records the outcome. Only a pending row is touched: a row that an operator
    /// settled meanwhile keeps its state.
    async fn settle(
        &self,
        claim: &Claim,
        outcome: Result<String, SendError>,
    ) -> anyhow::Result<Settled> {
        let now = self.clock.now();
        let pool = self.store.pool();
        let settled = match outcome {
            Ok(message_id) => {
                sqlx::query(
                    "UPDATE mail_deliveries SET status = 'sent', sent_at = $2, message_id = $3, \
                       next_attempt_at = NULL, last_error = NULL \
                     WHERE key = $1 AND status = 'pending'",
                )
                .bind(&claim.key)
                .bind(now)
                .bind(&message_id)
                .execute(pool)
                .await
                .context("sent a mail but cannot record it; it will be sent again")?;
                tracing::info!(key = %claim.key, %message_id, "mail sent");
                Settled::Sent
            }
            Err(SendError::Permanent(error)) => {
                sqlx::query(
                    "UPDATE mail_deliveries SET status = 'failed', failed_at = $2, last_error = $3, \
                       next_attempt_at = NULL \
                     WHERE key = $1 AND status = 'pending'",
                )
                .bind(&claim.key)
                .bind(now)
                .bind(&error)
                .execute(pool)
                .await
                .context("cannot record a rejected mail")?;
                tracing::error!(key = %claim.key, %error, "mail rejected for good");
                Settled::Failed
            }
            Err(SendError::Transient(error)) => {
                let attempts = u32::try_from(claim.attempts).unwrap_or(1);
                let retry_at = now + self.policy.backoff(attempts);
                sqlx::query(
                    "UPDATE mail_deliveries SET next_attempt_at = $2, last_error = $3 \
                     WHERE key = $1 AND status = 'pending'",
                )
                .bind(&claim.key)
                .bind(retry_at)
                .bind(&error)
                .execute(pool)
                .await
                .context("cannot record a failed mail attempt")?;
                tracing::warn!(key = %claim.key, attempts, %retry_at, %error, "mail deferred");
                Settled::Deferred
            }
        };
        Ok(settled)
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

enum Settled {
    Sent,
    Deferred,
    Failed,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(1), chrono::Duration::minutes(1));
        assert_eq!(p.backoff(2), chrono::Duration::minutes(2));
        assert_eq!(p.backoff(3), chrono::Duration::minutes(4));
        assert_eq!(p.backoff(7), chrono::Duration::minutes(60));
        assert_eq!(p.backoff(8), chrono::Duration::hours(1));
        assert_eq!(p.backoff(u32::MAX), chrono::Duration::hours(1));
        assert!(p.lease > chrono::Duration::seconds(30));
    }
}
