//! The `mail_deliveries` table: filled by [`MailOutboxProjection`], worked through by
//! the mailer, read by `/readyz` and the desk.

use chrono::{DateTime, Utc};
use kujira_domain::mail::{
    Audience, MAIL_QUEUED, MAIL_REQUESTED, MailKind, MailQueued, MailRequested,
};
use kujira_eventlog::RecordedEvent;
use serde::Deserialize;
use sqlx::{PgConnection, PgPool, Row};

use crate::mailer::MAIL_NOTIFY_CHANNEL;

/// Turns every `MailQueued` (and legacy `MailRequested`) event into one pending
/// delivery per key, with the mail's routing: person, audience, kind.
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
        let routing = match event.event_type.as_str() {
            MAIL_REQUESTED => {
                let m = MailRequested::from_event_data(&event.data).with_context(|| {
                    format!(
                        "cannot decode MailRequested at position {} of {}",
                        event.position, event.stream_name
                    )
                })?;
                // Legacy rendered mail: transactional, of unknown audience; sealed
                // since with the key of the person named beside it.
                Routing {
                    key: m.key,
                    template: m.template,
                    person_id: event
                        .data
                        .get(kujira_domain::personal::PERSON_FIELD)
                        .and_then(serde_json::Value::as_str)
                        .and_then(|s| uuid::Uuid::parse_str(s).ok()),
                    audience: None,
                    kind: MailKind::Transactional,
                }
            }
            MAIL_QUEUED => {
                let m = MailQueued::deserialize(&event.data).with_context(|| {
                    format!(
                        "cannot decode MailQueued at position {} of {}",
                        event.position, event.stream_name
                    )
                })?;
                Routing {
                    key: m.key,
                    template: m.template,
                    person_id: m.person_id,
                    audience: Some(m.audience),
                    kind: m.kind,
                }
            }
            _ => return Ok(()),
        };
        let inserted = sqlx::query(
            "INSERT INTO mail_deliveries \
               (key, stream_name, stream_version, position, template, requested_at, \
                person_id, audience, kind) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (key) DO NOTHING",
        )
        .bind(&routing.key)
        .bind(&event.stream_name)
        .bind(i64::try_from(event.stream_version).unwrap_or(i64::MAX))
        .bind(event.position)
        .bind(&routing.template)
        .bind(event.recorded_at)
        .bind(routing.person_id)
        .bind(routing.audience.map(Audience::as_str))
        .bind(routing.kind.as_str())
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

/// What the outbox keeps of a mail event besides where it is: nothing personal.
struct Routing {
    key: String,
    template: String,
    person_id: Option<uuid::Uuid>,
    audience: Option<Audience>,
    kind: MailKind,
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
    /// Rejected for good (a 5xx reply, a mail that cannot be built): a person
    /// should look at it. [`requeue_failed`] puts it back.
    Failed,
    /// Not sent, on purpose, for a [`CancelReason`]. Final, and not a failure.
    Cancelled,
}

impl DeliveryStatus {
    fn parse(s: &str) -> anyhow::Result<Self> {
        match s {
            "pending" => Ok(Self::Pending),
            "sent" => Ok(Self::Sent),
            "failed" => Ok(Self::Failed),
            "cancelled" => Ok(Self::Cancelled),
            other => anyhow::bail!("unknown delivery status {other:?}"),
        }
    }
}

/// Why a mail was not sent (checked when it was due, not when it was queued).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelReason {
    /// The person's data was erased: no mail to them or about them.
    Erased,
    /// The person suspended the use of their data (利用停止): no mail to them.
    Suspended,
    /// The person opted out of follow-up mail.
    OptedOut,
    /// The person's address bounced: no follow-up until the desk clears it.
    Bouncing,
}

impl CancelReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Erased => "erased",
            Self::Suspended => "suspended",
            Self::OptedOut => "opted_out",
            Self::Bouncing => "bouncing",
        }
    }

    pub fn label_ja(self) -> &'static str {
        match self {
            Self::Erased => "個人情報の削除により送信中止",
            Self::Suspended => "利用停止により送信中止",
            Self::OptedOut => "配信停止により送信中止",
            Self::Bouncing => "宛先不達により送信中止",
        }
    }

    fn parse(s: &str) -> anyhow::Result<Self> {
        match s {
            "erased" => Ok(Self::Erased),
            "suspended" => Ok(Self::Suspended),
            "opted_out" => Ok(Self::OptedOut),
            "bouncing" => Ok(Self::Bouncing),
            other => anyhow::bail!("unknown cancel reason {other:?}"),
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
    /// The person the mail is addressed to or about.
    pub person_id: Option<uuid::Uuid>,
    /// `None` for legacy rendered mail (`MailRequested`).
    pub audience: Option<Audience>,
    pub kind: MailKind,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub requested_at: DateTime<Utc>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub message_id: Option<String>,
    /// The subject as sent (subjects hold no personal data by design).
    pub subject: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    pub failed_at: Option<DateTime<Utc>>,
    pub cancel_reason: Option<CancelReason>,
    pub cancelled_at: Option<DateTime<Utc>>,
    /// The token of the worker holding the row while it is being sent.
    pub claim: Option<uuid::Uuid>,
}

const DELIVERY_COLUMNS: &str = "key, stream_name, stream_version, position, template, person_id, \
     audience, kind, status, attempts, requested_at, next_attempt_at, last_attempt_at, \
     last_error, message_id, subject, sent_at, failed_at, cancel_reason, cancelled_at, claim";

fn audience(s: &str) -> anyhow::Result<Audience> {
    match s {
        "applicant" => Ok(Audience::Applicant),
        "staff" => Ok(Audience::Staff),
        other => anyhow::bail!("unknown audience {other:?}"),
    }
}

pub(crate) fn kind(s: &str) -> anyhow::Result<MailKind> {
    match s {
        "transactional" => Ok(MailKind::Transactional),
        "follow_up" => Ok(MailKind::FollowUp),
        other => anyhow::bail!("unknown mail kind {other:?}"),
    }
}

pub(crate) fn audience_opt(s: Option<String>) -> anyhow::Result<Option<Audience>> {
    s.as_deref().map(audience).transpose()
}

fn delivery_from_row(r: &sqlx::postgres::PgRow) -> anyhow::Result<MailDelivery> {
    Ok(MailDelivery {
        key: r.try_get("key")?,
        stream_name: r.try_get("stream_name")?,
        stream_version: r.try_get("stream_version")?,
        position: r.try_get("position")?,
        template: r.try_get("template")?,
        person_id: r.try_get("person_id")?,
        audience: audience_opt(r.try_get("audience")?)?,
        kind: kind(r.try_get("kind")?)?,
        status: DeliveryStatus::parse(r.try_get("status")?)?,
        attempts: r.try_get("attempts")?,
        requested_at: r.try_get("requested_at")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
        last_attempt_at: r.try_get("last_attempt_at")?,
        last_error: r.try_get("last_error")?,
        message_id: r.try_get("message_id")?,
        subject: r.try_get("subject")?,
        sent_at: r.try_get("sent_at")?,
        failed_at: r.try_get("failed_at")?,
        cancel_reason: r
            .try_get::<Option<&str>, _>("cancel_reason")?
            .map(CancelReason::parse)
            .transpose()?,
        cancelled_at: r.try_get("cancelled_at")?,
        claim: r.try_get("claim")?,
    })
}

/// The delivery of one key, if it was requested.
pub async fn delivery(pool: &PgPool, key: &str) -> anyhow::Result<Option<MailDelivery>> {
    let row = sqlx::query(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM mail_deliveries WHERE key = $1"
    ))
    .bind(key)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(delivery_from_row).transpose()
}

/// The deliveries of these idempotency keys (those the outbox has seen), in no
/// particular order: for the desk's case page, which shows each queued mail's state.
pub async fn deliveries_of_keys(
    pool: &PgPool,
    keys: &[String],
) -> anyhow::Result<Vec<MailDelivery>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let rows = sqlx::query(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM mail_deliveries WHERE key = ANY($1)"
    ))
    .bind(keys)
    .fetch_all(pool)
    .await?;
    rows.iter().map(delivery_from_row).collect()
}

/// Every mail to or about `person_id`, oldest first: for the person's data export
/// ("mail sent: subject and time") and the desk's case page.
pub async fn deliveries_for_person(
    pool: &PgPool,
    person_id: uuid::Uuid,
) -> anyhow::Result<Vec<MailDelivery>> {
    let rows = sqlx::query(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM mail_deliveries WHERE person_id = $1 \
         ORDER BY requested_at, position"
    ))
    .bind(person_id)
    .fetch_all(pool)
    .await?;
    rows.iter().map(delivery_from_row).collect()
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
    /// Not sent on purpose (erased, suspended, opted out, bouncing).
    pub cancelled: i64,
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
           count(*) FILTER (WHERE status = 'pending') AS pending, \
           count(*) FILTER (WHERE status = 'pending' \
                              AND (next_attempt_at IS NULL \
                                   OR next_attempt_at <= coalesce($1, now()))) AS due, \
           count(*) FILTER (WHERE status = 'failed') AS failed, \
           count(*) FILTER (WHERE status = 'cancelled') AS cancelled, \
           count(*) FILTER (WHERE status = 'pending' AND attempts > 0) AS retrying, \
           coalesce(extract(epoch FROM coalesce($1, now()) - min(requested_at) \
                              FILTER (WHERE status = 'pending')), 0)::float8 AS oldest \
         FROM mail_deliveries",
    )
    // `now()` is the transaction's start: good enough for a status page.
    .bind(now)
    .fetch_one(pool)
    .await?;
    Ok(OutboxStatus {
        pending: r.try_get("pending")?,
        due: r.try_get("due")?,
        failed: r.try_get("failed")?,
        cancelled: r.try_get("cancelled")?,
        retrying: r.try_get("retrying")?,
        // A clock behind the database's (tests) must not show a negative age.
        oldest_pending_seconds: r.try_get::<f64, _>("oldest")?.max(0.0),
    })
}

/// Puts a failed delivery back in the queue, once whatever rejected it is fixed.
/// Returns whether the key was failed.
pub async fn requeue_failed(pool: &PgPool, key: &str) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE mail_deliveries \
         SET status = 'pending', next_attempt_at = NULL, failed_at = NULL, claim = NULL \
         WHERE key = $1 AND status = 'failed'",
    )
    .bind(key)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// What erasing a person did to their mail.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ErasedMail {
    /// Deliveries still pending, now cancelled (`erased`).
    pub cancelled: u64,
    /// `.eml` files of their mail removed from the outbox directory.
    pub files_deleted: u64,
}

/// Stops and removes a person's mail, for their erasure: pending deliveries are
/// cancelled, and every `.eml` file written for them is deleted from `outbox_dir`
/// (the files hold the rendered text). The delivery rows stay: they hold no
/// personal data, and the statistics (mails sent and failed) must not change.
pub async fn erase_person_mail(
    conn: &mut PgConnection,
    outbox_dir: Option<&std::path::Path>,
    person_id: uuid::Uuid,
    at: DateTime<Utc>,
) -> anyhow::Result<ErasedMail> {
    use anyhow::Context;
    let cancelled = sqlx::query(
        "UPDATE mail_deliveries SET status = 'cancelled', cancel_reason = 'erased', \
           cancelled_at = $2, next_attempt_at = NULL, claim = NULL \
         WHERE person_id = $1 AND status = 'pending'",
    )
    .bind(person_id)
    .bind(at)
    .execute(&mut *conn)
    .await
    .context("cannot cancel the erased person's mail")?
    .rows_affected();
    let mut files_deleted = 0;
    if let Some(dir) = outbox_dir {
        let keys: Vec<String> =
            sqlx::query_scalar("SELECT key FROM mail_deliveries WHERE person_id = $1")
                .bind(person_id)
                .fetch_all(&mut *conn)
                .await?;
        for key in keys {
            let path = dir.join(crate::eml_file_name(&key));
            match std::fs::remove_file(&path) {
                Ok(()) => files_deleted += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot delete {}", path.display()));
                }
            }
        }
    }
    Ok(ErasedMail {
        cancelled,
        files_deleted,
    })
}
