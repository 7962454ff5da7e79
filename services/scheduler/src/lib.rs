//! The mail outbox and mailer, and (in a later issue) the cron rules that request
//! follow-up mail.
//!
//! How a mail travels:
//!
//! 1. A service appends `MailRequested` (the rendered mail) or `MailQueued` (a key
//!    and a template, rendered at send time from the stream's facts by the service's
//!    `RenderMail`; see `kujira_domain::mail`) in the same append as the business
//!    fact that caused it, so the two can never part.
//! 2. [`MailOutboxProjection`], run by the projector, turns each one into a row of
//!    `mail_deliveries`, one per idempotency key. The row holds only delivery state:
//!    the content stays in the event, the single place a later erasure has to reach.
//! 3. The [`Mailer`] claims due rows with a short lease, loads the event, sends it
//!    over SMTP or writes it as an `.eml` file, and records the outcome. A failure is
//!    retried with capped exponential backoff; a permanent 5xx rejection is kept as
//!    `failed`, visible in [`outbox_status`].
//!
//! A crash between "requested" and "sent" loses nothing (the row stays pending and
//! its lease runs out) and sends twice only if the SMTP server had accepted the mail
//! just before the crash. No database transaction stays open during a send: a
//! transaction holding an xid would hold back every gap-safe reader of the event log.
//!
//! The `mailer` module only delivers. The cron rules (reminders, digests) will live
//! in their own module and only *request* mail, with deterministic keys, so that a
//! rule that runs twice still sends once.

mod mailer;
mod outbox;

pub use mailer::message::{MessageError, Sender, build_message, eml_file_name, message_id};
pub use mailer::transport::{SendError, Transport};
pub use mailer::{DeliveryReport, MAIL_NOTIFY_CHANNEL, Mailer, RetryPolicy};
pub use outbox::{
    DeliveryStatus, MailDelivery, MailOutboxProjection, OutboxStatus, delivery, outbox_status,
    outbox_status_at, requeue_failed,
};

/// The migrations of this crate's tables (versions 20261124000300–20261124000399).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();
