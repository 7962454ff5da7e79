//! The delivery worker.
//!
//! Each delivery is claimed in one short statement that takes a lease (moving
//! `next_attempt_at` past the longest send, from the clock at the moment of the
//! claim) and writes a fresh claim token on the row; it is then sent with no
//! transaction open, then settled in another short statement that only applies while
//! the row still carries that token (`WHERE key = $1 AND claim = $token AND status =
//! 'pending'`). Holding a row lock across the send instead would keep a transaction
//! id alive for as long as an SMTP server dawdles, and every gap-safe reader of the
//! event log waits for the oldest live transaction id.
//!
//! A worker overtaken after its lease ran out (another one claimed the mail with a
//! new token) has its outcome dropped and logged: only the lease holder records. A
//! worker whose lease runs out before it hands the mail to the server does not send
//! it at all. Crash anywhere: the row stays `pending` and its lease runs out, so
//! another worker (or this one after a restart) picks it up. The only duplicate left
//! is the one no protocol avoids: the server accepted the mail and we died (or were
//! overtaken) before recording it.
//!
//! At send time, before rendering, the mailer reads the stream of the person the mail
//! is to or about (`person-<id>`): erased → cancelled (any mail); suspended (利用停止)
//! → no mail to the applicant; opted out or bouncing → no applicant follow-up. In
//! quiet hours, applicant follow-ups are held until the window ends, which counts
//! neither as an attempt nor as a failure. Transactional and staff mail is never held.

pub(crate) mod message;
mod run;
mod settle;
pub(crate) mod transport;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use kujira_config::{Clock, Config, QuietHours};
use kujira_domain::decider::Decider;
use kujira_domain::mail::{
    Audience, MAIL_QUEUED, MAIL_REQUESTED, MailContent, MailFacts, MailKind, MailQueued,
    MailRequested, RenderError, RenderMail,
};
use kujira_domain::person::{Person, PersonEvent, PersonState};
use kujira_eventlog::StreamName;
use kujira_store::Store;
use sqlx::Row;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use self::message::{Sender, build_message_with, message_id};
use self::settle::Settled;
use self::transport::{SendError, Transport, redact_addresses};
use crate::outbox::CancelReason;
use crate::unsubscribe::UnsubscribeLinks;

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
    /// Keys not sent on purpose (erased, suspended, opted out, bouncing): final.
    pub cancelled: Vec<String>,
    /// Applicant follow-ups due in quiet hours, held until the window ends. Not
    /// attempts.
    pub held: Vec<String>,
    /// Keys whose outcome this worker did not record because another worker had
    /// claimed them after this one's lease ran out.
    pub overtaken: Vec<String>,
}

impl DeliveryReport {
    /// Deliveries this call worked on (held ones are only put back).
    pub fn attempted(&self) -> usize {
        self.sent.len()
            + self.deferred.len()
            + self.failed.len()
            + self.cancelled.len()
            + self.overtaken.len()
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
    person_id: Option<Uuid>,
    audience: Option<Audience>,
    kind: MailKind,
    /// This worker's token on the row: its outcome is recorded only while it is there.
    token: Uuid,
    /// The end of this worker's lease.
    lease_until: DateTime<Utc>,
}

impl Claim {
    /// Legacy mail of unknown audience counts as applicant mail: the person checks
    /// err on the side of not writing to someone who asked us not to.
    fn to_applicant(&self) -> bool {
        self.audience != Some(Audience::Staff)
    }

    fn is_applicant_follow_up(&self) -> bool {
        self.audience == Some(Audience::Applicant) && self.kind == MailKind::FollowUp
    }
}

/// What became of one claimed delivery.
enum Outcome {
    Sent {
        message_id: String,
        subject: String,
    },
    Cancelled(CancelReason),
    Deferred(String),
    Failed {
        error: String,
        subject: Option<String>,
        /// The SMTP code, when the reply blames the recipient's address.
        bounce: Option<u16>,
    },
    /// The lease ran out before the mail was handed over: not sent.
    LeaseExpired,
}

/// Why a mail was not handed to the transport.
enum Stop {
    Cancel(CancelReason),
    Error(SendError),
}

impl From<SendError> for Stop {
    fn from(e: SendError) -> Self {
        Self::Error(e)
    }
}

/// The person a mail is to or about, read from their stream at send time.
struct Recipient {
    state: PersonState,
    /// The stream's facts (opened), handed to the renderer.
    facts: Vec<(String, serde_json::Value)>,
}

/// Whether the person's state stops the mail, and why.
fn cancel_reason(state: &PersonState, claim: &Claim) -> Option<CancelReason> {
    if state.erased.is_some() {
        return Some(CancelReason::Erased);
    }
    if claim.to_applicant() && state.suspended {
        return Some(CancelReason::Suspended);
    }
    if claim.to_applicant() && claim.kind == MailKind::FollowUp {
        if state.opted_out {
            return Some(CancelReason::OptedOut);
        }
        if state.bouncing.is_some() {
            return Some(CancelReason::Bouncing);
        }
    }
    None
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
    /// The quiet hours and the time zone they are read in.
    quiet_hours: Option<(QuietHours, chrono_tz::Tz)>,
    /// Makes the one-click unsubscribe link of applicant follow-ups.
    unsubscribe: Option<UnsubscribeLinks>,
}

impl Mailer {
    /// A mailer without quiet hours and without unsubscribe links (see
    /// [`Mailer::with_quiet_hours`], [`Mailer::with_unsubscribe`]; a follow-up to an
    /// applicant is never sent without its link). [`Mailer::from_config`] sets both.
    pub fn new(store: Store, transport: Transport, sender: Sender, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            transport,
            sender,
            clock,
            policy: RetryPolicy::default(),
            renderers: Vec::new(),
            quiet_hours: None,
            unsubscribe: None,
        }
    }

    /// The mailer `kujira serve` runs: SMTP when `KUJIRA_SMTP_URL` is set, otherwise
    /// `.eml` files in `<data dir>/outbox`; mail comes from `KUJIRA_MAIL_FROM` (under
    /// its display name, or the site's name); `KUJIRA_QUIET_HOURS` in
    /// `KUJIRA_TIMEZONE`; unsubscribe links under `KUJIRA_PUBLIC_URL`.
    pub fn from_config(
        store: Store,
        config: &Config,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        let transport = match &config.smtp_url {
            Some(url) => Transport::smtp_with_connections(url, config.mail_workers)
                .context("KUJIRA_SMTP_URL is not a usable SMTP URL")?,
            None => Transport::file(config.outbox_dir()),
        };
        let sender =
            Sender::from_config(config).context("KUJIRA_MAIL_FROM is not a usable address")?;
        Ok(Self::new(store, transport, sender, clock)
            .with_quiet_hours(config.quiet_hours, config.timezone)
            .with_unsubscribe(UnsubscribeLinks::from_config(config)))
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

    /// Holds applicant follow-ups due inside `quiet` (read in `tz`) until it ends.
    pub fn with_quiet_hours(mut self, quiet: Option<QuietHours>, tz: chrono_tz::Tz) -> Self {
        self.quiet_hours = quiet.map(|q| (q, tz));
        self
    }

    /// Adds the one-click unsubscribe to every applicant follow-up.
    pub fn with_unsubscribe(mut self, links: UnsubscribeLinks) -> Self {
        self.unsubscribe = Some(links);
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
        // Each key at most once per call, however the clock moves meanwhile.
        let mut seen: Vec<String> = Vec::new();
        let mut held = false;
        while report.attempted() < BATCH && !stop.is_some_and(CancellationToken::is_cancelled) {
            // The clock is read for every claim: a lease computed at the start of a
            // batch could be over before a slow batch reaches its later mails.
            let now = self.clock.now();
            let quiet_until = self.quiet_hours.and_then(|(q, tz)| q.hold_until(now, tz));
            if let Some(until) = quiet_until
                && !held
            {
                report.held.extend(self.hold(now, until).await?);
                held = true;
            }
            let Some(claim) = self.claim(now, quiet_until.is_some(), &seen).await? else {
                break;
            };
            seen.push(claim.key.clone());
            let outcome = self.process(&claim).await;
            let key = claim.key.clone();
            match self.settle(&claim, outcome).await? {
                Settled::Sent => report.sent.push(key),
                Settled::Deferred => report.deferred.push(key),
                Settled::Failed => report.failed.push(key),
                Settled::Cancelled => report.cancelled.push(key),
                Settled::Overtaken => report.overtaken.push(key),
            }
        }
        Ok(report)
    }

    /// Moves the applicant follow-ups due at `now` to the end of the quiet hours.
    /// Rows leased by a worker are not due, so a mail being sent is never touched.
    async fn hold(&self, now: DateTime<Utc>, until: DateTime<Utc>) -> anyhow::Result<Vec<String>> {
        let rows = sqlx::query(
            "UPDATE mail_deliveries SET next_attempt_at = $2 \
             WHERE status = 'pending' AND kind = 'follow_up' AND audience = 'applicant' \
               AND (next_attempt_at IS NULL OR next_attempt_at <= $1) \
             RETURNING key",
        )
        .bind(now)
        .bind(until)
        .fetch_all(self.store.pool())
        .await
        .context("cannot hold follow-ups in quiet hours")?;
        let keys = rows
            .iter()
            .map(|r| r.try_get("key"))
            .collect::<Result<Vec<String>, _>>()?;
        if !keys.is_empty() {
            tracing::info!(count = keys.len(), %until, "follow-ups held for quiet hours");
        }
        Ok(keys)
    }

    /// Takes the next due delivery and leases it to this worker, with a fresh token.
    async fn claim(
        &self,
        now: DateTime<Utc>,
        quiet: bool,
        seen: &[String],
    ) -> anyhow::Result<Option<Claim>> {
        let token = Uuid::new_v4();
        let lease_until = now + self.policy.lease;
        let row = sqlx::query(
            "UPDATE mail_deliveries SET \
               attempts = attempts + 1, last_attempt_at = $1, next_attempt_at = $2, claim = $3 \
             WHERE key = ( \
               SELECT key FROM mail_deliveries \
               WHERE status = 'pending' AND (next_attempt_at IS NULL OR next_attempt_at <= $1) \
                 AND key <> ALL($4) \
                 AND NOT ($5 AND kind = 'follow_up' AND audience = 'applicant') \
               ORDER BY next_attempt_at NULLS FIRST, position \
               LIMIT 1 FOR UPDATE SKIP LOCKED) \
             RETURNING key, stream_name, stream_version, position, attempts, person_id, \
                       audience, kind",
        )
        .bind(now)
        .bind(lease_until)
        .bind(token)
        .bind(seen)
        .bind(quiet)
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
                person_id: r.try_get("person_id")?,
                audience: crate::outbox::audience_opt(r.try_get("audience")?)?,
                kind: crate::outbox::kind(r.try_get("kind")?)?,
                token,
                lease_until,
            })
        })
        .transpose()
    }

    /// Checks, renders and sends one claimed mail.
    async fn process(&self, claim: &Claim) -> Outcome {
        let mut subject = None;
        match self.try_send(claim, &mut subject).await {
            Ok(Some(message_id)) => Outcome::Sent {
                message_id,
                subject: subject.unwrap_or_default(),
            },
            Ok(None) => Outcome::LeaseExpired,
            Err(Stop::Cancel(reason)) => Outcome::Cancelled(reason),
            Err(Stop::Error(SendError::Transient(e))) => Outcome::Deferred(e),
            Err(Stop::Error(SendError::Permanent(error))) => Outcome::Failed {
                error,
                subject,
                bounce: None,
            },
            Err(Stop::Error(SendError::Rejected {
                code,
                bounce,
                reason,
            })) => Outcome::Failed {
                error: reason,
                subject,
                bounce: bounce.then_some(code),
            },
        }
    }

    /// `Ok(None)`: the lease ran out before the mail could be handed over.
    async fn try_send(
        &self,
        claim: &Claim,
        subject: &mut Option<String>,
    ) -> Result<Option<String>, Stop> {
        let recipient = match claim.person_id {
            Some(p) => Some(self.recipient(p).await?),
            None => None,
        };
        if let Some(reason) = recipient
            .as_ref()
            .and_then(|r| cancel_reason(&r.state, claim))
        {
            return Err(Stop::Cancel(reason));
        }
        let person_facts = recipient.map(|r| r.facts).unwrap_or_default();
        let (content, requested_at) = self.load(claim, &person_facts).await?;
        *subject = Some(redact_addresses(&content.subject));
        let unsubscribe = if claim.is_applicant_follow_up() {
            let links = self.unsubscribe.as_ref().ok_or_else(|| {
                // Never send a follow-up without its unsubscribe: keep it for a worker
                // that is configured.
                SendError::Transient("no unsubscribe link is configured".into())
            })?;
            let person = claim.person_id.ok_or_else(|| {
                SendError::Permanent("an applicant follow-up names no person".into())
            })?;
            Some(links.url(person))
        } else {
            None
        };
        let message = build_message_with(
            &self.sender,
            &claim.key,
            &content,
            requested_at,
            unsubscribe.as_deref(),
        )
        .map_err(|e| SendError::Permanent(redact_addresses(&e.to_string())))?;
        // The last moment to back out: past its lease, another worker may hold the
        // mail, and handing it over now could deliver it twice.
        if self.clock.now() >= claim.lease_until {
            return Ok(None);
        }
        self.transport.send(&claim.key, &message).await?;
        Ok(Some(message_id(&claim.key, self.sender.domain())))
    }

    /// The person's state and facts, read (and opened) from their stream now.
    async fn recipient(&self, person_id: Uuid) -> Result<Recipient, SendError> {
        let stream = StreamName::new(kujira_domain::person::CATEGORY, person_id);
        let events =
            self.store.read_whole_stream(&stream).await.map_err(|e| {
                SendError::Transient(format!("cannot read the person's stream: {e}"))
            })?;
        let mut state = PersonState::default();
        let mut facts = Vec::with_capacity(events.len());
        for e in events {
            let event: PersonEvent = e.decode().map_err(|err| {
                // A newer kind of fact (a newer version wrote it): keep the mail for
                // a worker that knows it rather than guess.
                SendError::Transient(format!("cannot read the person's stream: {err}"))
            })?;
            state = Person::evolve(state, &event);
            facts.push((e.event_type, e.data));
        }
        Ok(Recipient { state, facts })
    }

    /// Loads the requested mail from its event (rendering queued mail).
    async fn load(
        &self,
        claim: &Claim,
        person: &[(String, serde_json::Value)],
    ) -> Result<(MailContent, DateTime<Utc>), Stop> {
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
            let content = self.render(&stream, claim, &queued, person).await?;
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
            ))
            .into());
        }
        match mail.personal.into_known() {
            Some(content) => Ok((content, event.recorded_at)),
            // The person's key is gone: erased, whether or not the erasure's event
            // has been appended yet.
            None => Err(Stop::Cancel(CancelReason::Erased)),
        }
    }

    /// Renders a queued mail from the facts of its stream, up to the event that
    /// queued it, and of the person it is addressed to.
    async fn render(
        &self,
        stream: &StreamName,
        claim: &Claim,
        queued: &MailQueued,
        person: &[(String, serde_json::Value)],
    ) -> Result<MailContent, Stop> {
        let renderer = self
            .renderers
            .iter()
            .find(|r| r.templates().contains(&queued.template.as_str()))
            .ok_or_else(|| {
                // A process without the renderer (a misconfigured worker) must not
                // drop the mail: a later attempt, or another worker, can render it.
                SendError::Transient(format!("no renderer for template {}", queued.template))
            })?;
        let events = self
            .store
            .read_stream(stream, 0, claim.stream_version)
            .await
            .map_err(|e| SendError::Transient(format!("cannot load the facts: {e}")))?;
        let facts: Vec<(String, serde_json::Value)> =
            events.into_iter().map(|e| (e.event_type, e.data)).collect();
        renderer
            .render(
                queued,
                &MailFacts {
                    stream: &facts,
                    person,
                },
            )
            .map_err(|e| match e {
                RenderError::Erased(_) => Stop::Cancel(CancelReason::Erased),
                other => SendError::Permanent(other.to_string()).into(),
            })
    }
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
