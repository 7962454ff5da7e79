//! The mail outbox and mailer, and the cron rules that request follow-up mail
//! ([`rules`]).
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
//! 3. The [`Mailer`] claims due rows with a lease and a claim token, checks the
//!    person's state (erased, suspended, opted out, bouncing: `cancelled`) and the
//!    quiet hours (applicant follow-ups are held), loads and renders the event, adds
//!    the one-click unsubscribe to applicant follow-ups, sends it over SMTP or writes
//!    it as an `.eml` file, and records the outcome only while its token is still on
//!    the row. A failure is retried with capped exponential backoff; a permanent 5xx
//!    rejection is kept as `failed`, visible in [`outbox_status`], and marks an
//!    applicant's address as bouncing (`AddressBounced`).
//! 4. [`router`] serves the unsubscribe link (`/unsubscribe/{token}`).
//!
//! A crash between "requested" and "sent" loses nothing (the row stays pending and
//! its lease runs out) and sends twice only if the SMTP server had accepted the mail
//! just before the crash. No database transaction stays open during a send: a
//! transaction holding an xid would hold back every gap-safe reader of the event log.
//!
//! The `mailer` module only delivers. The cron rules ([`rules`]: reminders,
//! thank-yous, nurture, check-ins, the digest) only *request* mail, with
//! deterministic keys, so that a rule that runs twice still sends once.
//!
//! Queueing a follow-up (what a rule appends, through `kujira_store::execute`, on
//! the stream whose facts the mail is rendered from):
//!
//! ```ignore
//! let mail = MailQueued::to_applicant(format!("tour-reminder/{tour}/{party}"), "tour_reminder", person_id)
//!     .follow_up()          // held in quiet hours, stopped by opt-out / bounce, unsubscribe added
//!     .about(signup_id);    // optional; `with_params(json)` for anything else non-personal
//! // event id: mail.event_id(stream) (from the key), so a second tick is a replay
//! ```
//!
//! The mailer adds the unsubscribe headers and footer itself; templates must not.
//! Subjects must hold no personal data: they are kept for the person's data export.

mod mailer;
mod outbox;
mod person;
pub mod rules;
pub mod stats;
mod unsubscribe;

pub use mailer::message::{
    MessageError, Sender, build_message, build_message_with, eml_file_name, message_id,
    unsubscribe_footer_text,
};
pub use mailer::transport::{SendError, Transport, blames_recipient};
pub use mailer::{DeliveryReport, MAIL_NOTIFY_CHANNEL, Mailer, RetryPolicy};
pub use outbox::{
    CancelReason, DeliveryStatus, ErasedMail, MailDelivery, MailOutboxProjection, OutboxStatus,
    deliveries_for_person, deliveries_of_keys, delivery, erase_person_mail, outbox_status,
    outbox_status_at, requeue_failed,
};
pub use person::{PersonCommandError, clear_bounce, set_follow_ups_opted_out};
pub use rules::{
    Concierge, FixedStaff, RuleMailTemplates, RuleReport, Rules, RulesProjection, SchedulerCommand,
    StaffDirectory,
};
pub use unsubscribe::{UnsubscribeLinks, UnsubscribeState, router};

/// The migrations of this crate's tables (versions 20261124000300–20261124000399 and
/// 20261201005000–20261201005999, 20261203005000–20261203005999).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();
