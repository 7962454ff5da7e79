//! The `mail_deliveries` table: filled by [`MailOutboxProjection`], worked through by
//! the mailer, read by `/readyz` and the desk.

use chrono::{DateTime, Utc};
use kujira_domain::mail::{MAIL_QUEUED, MAIL_REQUESTED, MailQueued, MailRequested};
use kujira_eventlog::RecordedEvent;
use serde::Deserialize;
use sqlx::{PgConnection, PgPool, Row};

use crate::mailer::MAIL_NOTIFY_CHANNEL;

/// Turns every `MailRequested` event into one pending delivery per key.
///
/// A second event with a key already seen is ignored: the first request wins, so a
/// retried command or a rebuilt projection never sends a mail twice.
#[derive(Debug, Clone, Copy, Default)]
pub struct MailOutboxProjection;

impl MailOutboxProjection {
    pub fn new() -> Self {
        Self
    }

    /// What the projector's `apply` does, callable without the projector.
    pub async fn record(conn: &mut PgConnection, event: &RecordedEvent) -> anyhow::Result<()> {
        use anyhow::Context;

        // The data of a `MailRequested` or `MailQueued` variant is the struct itself,
        // whatever the enum of the stream it was appended to.
        let (key, template) = match event.event_type.as_str() {
            MAIL_REQUESTED => {
                let m = MailRequested::from_event_data(&event.data).with_context(|| {
                    format!(
                        "cannot decode MailRequested at position {} of {}",
                        event.position, event.stream_name
                    )
                })?;
                (m.key, m.template)
            }
            MAIL_QUEUED => {
                let m = MailQueued::deserialize(&event.data).with_context(|| {
                    format!(
                        "cannot decode MailQueued at position {} of {}",
                        event.position, event.stream_name
                    )
                })?;
                (m.key, m.template)
            }
            _ => return Ok(()),
        };
        let inserted = sqlx::query(
            "INSERT INTO mail_deliveries \
               (key, stream_name, stream_version, position, template, requested_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (key) DO NOTHING",
        )
        .bind(&key)
        .bind(&event.stream_name)
        .bind(i64::try_from(event.stream_version).unwrap_or(i64::MAX))
        .bind(event.position)
        .bind(&template)
        .bind(event.recorded_at)
        .execute(&mut *conn)
        .await
        .context("cannot insert into mail_deliveries")?;
        if inserted.rows_affected() > 0 {
            // Delivered at commit, i.e. exactly when the row becomes visible to workers,
            // in this process or another. The projector commits rarely, so the global
            // lock NOTIFY takes at commit costs nothing here.
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(MAIL_NOTIFY_CHANNEL)
                .execute(&mut *conn)
                .await
                .context("cannot notify the mailer")?;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl kujira_projector::Projection for MailOutboxProjection {
    fn name(&self) -> &'static str {
        "mail_outbox"
    }

    fn event_types(&self) -> Option<&'static [&'static str]> {
        Some(&[MAIL_REQUESTED, MAIL_QUEUED])
    }

    async fn apply(&self, tx: &mut PgConnection, event: &RecordedEvent) -> anyhow::Result<()> {
        Self::record(tx, event).await
    }

    fn rebuild(&self) -> kujira_projector::Rebuild {
        kujira_projector::Rebuild::Refused(
            "its rows carry delivery state (attempts, sent, failed) that the event log does \
             not hold; rebuilding it would send every mail again",
        )
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Sent,
    Failed,
}

impl DeliveryStatus {
    fn parse(s: &str) -> anyhow::Result<Self> {
        match s {
            "pending" => Ok(Self::Pending),
            "sent" => Ok(Self::Sent),
            "failed" => Ok(Self::Failed),
            other => anyhow::bail!("unknown delivery status {other:?}"),
        }
    }
}

/// One row of `mail_deliveries`. It holds no personal data.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MailDelivery {
    pub key: String,
    pub stream_name: String,
    pub stream_version: i64,
    pub position: i64,
    pub template: String,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub requested_at: DateTime<Utc>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub message_id: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    pub failed_at: Option<DateTime<Utc>>,
}

/// The delivery of one key, if it was requested.
pub async fn delivery(pool: &PgPool, key: &str) -> anyhow::Result<Option<MailDelivery>> {
    let row = sqlx::query(
        "SELECT key, stream_name, stream_version, position, template, status, attempts, \
                requested_at, next_attempt_at, last_attempt_at, last_error, message_id, \
                sent_at, failed_at \
         FROM mail_deliveries WHERE key = $1",
    )
    .bind(key)
    .fetch_optional(pool)
    .await?;
    let Some(r) = row else { return Ok(None) };
    Ok(Some(MailDelivery {
        key: r.try_get("key")?,
        stream_name: r.try_get("stream_name")?,
        stream_version: r.try_get("stream_version")?,
        position: r.try_get("position")?,
        template: r.try_get("template")?,
        status: DeliveryStatus::parse(r.try_get("status")?)?,
        attempts: r.try_get("attempts")?,
        requested_at: r.try_get("requested_at")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
        last_attempt_at: r.try_get("last_attempt_at")?,
        last_error: r.try_get("last_error")?,
        message_id: r.try_get("message_id")?,
        sent_at: r.try_get("sent_at")?,
        failed_at: r.try_get("failed_at")?,
    }))
}

/// The outbox at a glance, for `/readyz` and monitoring.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct OutboxStatus {
    /// Not yet sent, whether due now, leased by a worker, or waiting for a retry.
    pub pending: i64,
    /// Pending and due at `now` (not leased, not backing off).
    pub due: i64,
    /// Rejected for good; needs a person to look at it.
    pub failed: i64,
    /// Pending deliveries that have failed at least once.
    pub retrying: i64,
    /// Age of the oldest pending request at `now`, 0 when none is pending.
    pub oldest_pending_seconds: f64,
}

/// Counts the outbox's pending and failed deliveries now, by the database's clock
/// (what `/readyz` shows).
pub async fn outbox_status(pool: &PgPool) -> anyhow::Result<OutboxStatus> {
    status(pool, None).await
}

/// Counts the outbox's pending and failed deliveries at `now` (a test's clock).
pub async fn outbox_status_at(pool: &PgPool, now: DateTime<Utc>) -> anyhow::Result<OutboxStatus> {
    status(pool, Some(now)).await
}

async fn status(pool: &PgPool, now: Option<DateTime<Utc>>) -> anyhow::Result<OutboxStatus> {
    let r = sqlx::query(
        "SELECT \
           count(*) FILTER (WHERE status = 'pending'), \
           count(*) FILTER (WHERE status = 'pending' \
                              AND (next_attempt_at IS NULL \
                                   OR next_attempt_at <= coalesce($1, now()))), \
           count(*) FILTER (WHERE status = 'failed'), \
           count(*) FILTER (WHERE status = 'pending' AND attempts > 0), \
           coalesce(extract(epoch FROM coalesce($1, now()) - min(requested_at) \
                              FILTER (WHERE status = 'pending')), 0)::float8 \
         FROM mail_deliveries",
    )
    // `now()` is the transaction's start: good enough for a status page.
    .bind(now)
    .fetch_one(pool)
    .await?;
    Ok(OutboxStatus {
        pending: r.try_get(0)?,
        due: r.try_get(1)?,
        failed: r.try_get(2)?,
        retrying: r.try_get(3)?,
        // A clock behind the database's (tests) must not show a negative age.
        oldest_pending_seconds: r.try_get::<f64, _>(4)?.max(0.0),
    })
}

/// Puts a failed delivery back in the queue, once whatever rejected it is fixed.
/// Returns whether the key was failed.
pub async fn requeue_failed(pool: &PgPool, key: &str) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE mail_deliveries \
         SET status = 'pending', next_attempt_at = NULL, failed_at = NULL \
         WHERE key = $1 AND status = 'failed'",
    )
    .bind(key)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}
