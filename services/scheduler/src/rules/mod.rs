//! The scheduler's rules: follow-up mail on a schedule.
//!
//! | Rule | Mail | Stream it is queued on |
//! |---|---|---|
//! | tour reminder | to each confirmed party, days before the tour | `tour-<id>` |
//! | tour thank-you | to each party that came, with the feedback form | `tour-<id>` |
//! | nurture | to an applicant with no contact for 30, then 90 days | `consultation-<id>` |
//! | post-move check-in | to a household 90 days after it moved | `consultation-<id>` |
//! | 移住支援金 window | to the case's concierge, 9 months after the move-in | `support_window-<case id>` |
//! | concierge digest | to each concierge, 08:30 on business days | `digest-<yyyy-mm-dd>` |
//!
//! Cron only decides and enqueues ([`Rules::serve`]): each tick evaluates its rule as
//! of now ([`Rules::run`]) and appends the mails it decides on, each with a
//! deterministic key ([`keys`]) from which the event id derives, through
//! `kujira_store::execute` on the stream the mail is rendered from. Restarts,
//! overlapping ticks and two schedulers at once therefore append each mail once, and
//! the outbox sends each key once. Candidates come from the rules' own projection
//! ([`RulesProjection`]), minus the keys the outbox already holds; each is checked
//! again on its own stream inside the decision, so that a contact logged a moment
//! ago wins. Sending, quiet hours, opt-outs and unsubscribe links are the mailer's.

mod cli;
mod engine;
mod mail;
mod projection;
mod runner;
mod schedule;
mod streams;

pub use cli::{SchedulerCommand, print_status, run_once};
pub use engine::{
    DIGEST_LIST_MAX, FixedStaff, LATE_LIMIT_DAYS, Planned, RuleReport, RuleStatus, Rules,
    StaffDirectory, THANK_YOU_LATE_DAYS,
};
pub use mail::{RuleMailTemplates, date_ja, templates};
pub use projection::RulesProjection;
pub use runner::PROMOTION_SWEEP;
pub use streams::{
    CaseRef, Concierge, DIGEST_CATEGORY, DigestCompiled, DigestItem, DigestSection, DigestTour,
    SUPPORT_WINDOW_CATEGORY, StaffMail, StaffMailEvent, SupportWindowNoted, TourMails,
};

/// The idempotency keys of the rules' mails: (rule, case or party, occurrence).
pub mod keys {
    use chrono::{DateTime, NaiveDate, Utc};
    use uuid::Uuid;

    /// One reminder per party and tour, whenever it goes.
    pub fn tour_reminder(tour: Uuid, sign_up: Uuid) -> String {
        format!("tour/{tour}/sign-up/{sign_up}/reminder")
    }

    pub fn tour_thank_you(tour: Uuid, sign_up: Uuid) -> String {
        format!("tour/{tour}/sign-up/{sign_up}/thank-you")
    }

    /// The `step`-th follow-up (1-based) of the nurture clock that started at
    /// `clock` (the last contact or phase change): a reset starts new occurrences.
    pub fn nurture(case: Uuid, clock: DateTime<Utc>, step: usize) -> String {
        format!("case/{case}/nurture/{}/{step}", clock.timestamp())
    }

    /// The check-in after the move the case reached at `moved_at`.
    pub fn post_move(case: Uuid, moved_at: DateTime<Utc>) -> String {
        format!("case/{case}/post-move/{}", moved_at.timestamp())
    }

    pub fn support_window(case: Uuid, move_in: NaiveDate, staff: Uuid) -> String {
        format!("case/{case}/support-window/{move_in}/{staff}")
    }

    pub fn digest(date: NaiveDate, staff: Uuid) -> String {
        format!("digest/{date}/{staff}")
    }
}
