//! What the rules append, and the aggregates they append it through.
//!
//! * Applicant follow-ups go on the stream their mail is rendered from: the tour's
//!   (`tour-<id>`: reminders, thank-yous), through [`TourMails`], which is the tour
//!   aggregate that also remembers the keys of the mails already queued; and the
//!   case's (`consultation-<id>`: nurture, post-move), through `Consultation`, whose
//!   state has those keys already.
//! * Staff mail is compiled by the rules into a fact of their own, on a stream of
//!   their own ([`StaffMail`]): the day's digests on `digest-<yyyy-mm-dd>`, a
//!   移住支援金 note on `support_window-<case id>`. The fact names the recipient
//!   (a staff account) and holds references, never an applicant's data.
//!
//! Every event id derives from its key, so that two schedulers, or a retried tick,
//! append the very same events and the log keeps one.

use std::collections::BTreeSet;
use std::convert::Infallible;

use chrono::{DateTime, NaiveDate, Utc};
use kujira_domain::decider::{Aggregate, Decider};
use kujira_domain::mail::MailQueued;
use kujira_domain::tour::{Tour, TourEvent, TourState};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The stream category of a day's digests: `digest-<yyyy-mm-dd>`.
pub const DIGEST_CATEGORY: &str = "digest";
/// The stream category of a case's 移住支援金 notes: `support_window-<case id>`.
pub const SUPPORT_WINDOW_CATEGORY: &str = "support_window";

/// A staff account that receives a rule's mail.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Concierge {
    pub user_id: Uuid,
    /// The work address of the account.
    pub email: String,
    pub display_name: String,
}

/// The facts of the rules' own streams.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum StaffMailEvent {
    DigestCompiled(DigestCompiled),
    SupportWindowNoted(SupportWindowNoted),
    MailQueued(MailQueued),
}

impl StaffMailEvent {
    fn key(&self) -> &str {
        match self {
            Self::DigestCompiled(d) => &d.key,
            Self::SupportWindowNoted(n) => &n.key,
            Self::MailQueued(m) => &m.key,
        }
    }
}

/// One concierge's digest of one business day, as of the moment it was compiled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DigestCompiled {
    /// The key of the mail that sends it.
    pub key: String,
    pub date: NaiveDate,
    /// The moment it describes.
    pub at: DateTime<Utc>,
    /// The previous digest's moment: "new" means since then.
    pub since: DateTime<Utc>,
    pub recipient: Concierge,
    pub sections: Vec<DigestSection>,
    pub tours: Vec<DigestTour>,
}

impl DigestCompiled {
    /// Whether there is anything to tell.
    pub fn is_empty(&self) -> bool {
        self.tours.is_empty() && self.sections.iter().all(DigestSection::is_empty)
    }
}

/// What a digest lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DigestItem {
    /// Opened since the previous digest.
    NewCases,
    /// No contact logged within the first business days.
    NoFirstContact,
    /// A nurture step came due since the previous digest: the applicant got a mail,
    /// the concierge should follow up too.
    FollowUpsDue,
    /// The next-action date has passed.
    PastNextAction,
    /// Nothing done for a while.
    Idle,
    /// The applicant's address bounces: it needs correcting.
    Bouncing,
}

impl DigestItem {
    pub const ALL: [DigestItem; 6] = [
        Self::NewCases,
        Self::NoFirstContact,
        Self::FollowUpsDue,
        Self::PastNextAction,
        Self::Idle,
        Self::Bouncing,
    ];
}

/// One list of a digest: the recipient's cases, and the cases nobody holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DigestSection {
    pub item: DigestItem,
    pub mine: Vec<CaseRef>,
    /// How many there are in all (the list is cut at a few dozen).
    pub mine_total: u32,
    /// Cases assigned to nobody (or to an account that is no longer a concierge).
    pub unassigned: Vec<CaseRef>,
    pub unassigned_total: u32,
}

impl DigestSection {
    pub fn is_empty(&self) -> bool {
        self.mine_total == 0 && self.unassigned_total == 0
    }
}

/// A case as a digest names it: by its reference, never by the applicant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseRef {
    pub case_id: Uuid,
    pub reference: String,
    /// `gathering`, `considering`, `decided`, `moved`.
    pub phase: String,
    /// The time the item is about (opened, last contact, last action, bounce).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<DateTime<Utc>>,
    /// The date it is about (the next-action date).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<NaiveDate>,
}

/// A tour in the coming days, and how full it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestTour {
    pub tour_id: Uuid,
    pub title: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub capacity_parties: i32,
    pub max_people: Option<i32>,
    pub confirmed_parties: i32,
    pub confirmed_people: i32,
    pub waitlist_length: i32,
}

/// A household that applies for 移住支援金 reached the reminder month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupportWindowNoted {
    pub key: String,
    pub case_id: Uuid,
    /// Whose case it is: erasing them cancels the note.
    pub person_id: Uuid,
    pub reference: String,
    pub move_in: NaiveDate,
    /// The end of the application window (one year after the move-in date).
    pub closes_on: NaiveDate,
    pub at: DateTime<Utc>,
    pub recipient: Concierge,
    /// Whether the recipient holds the case (else nobody does, and every concierge
    /// is told).
    pub assigned: bool,
}

/// Keys of the facts and mails on a rules stream.
#[derive(Debug, Clone, Default)]
pub struct StaffMailState {
    pub keys: BTreeSet<String>,
}

/// The aggregate of the rules' own streams. Its commands are the rules' decisions,
/// passed to `kujira_store::execute` as closures; `decide` itself decides nothing.
#[derive(Debug)]
pub struct StaffMail;

const FACT_NAMESPACE: Uuid = Uuid::from_u128(0x6b75_6a69_7261_2f72_756c_6573_0000_0001);

impl Decider for StaffMail {
    type State = StaffMailState;
    type Command = ();
    type Event = StaffMailEvent;
    type Error = Infallible;

    fn decide(_: &Self::State, _: &()) -> Result<Vec<StaffMailEvent>, Infallible> {
        Ok(vec![])
    }

    fn evolve(mut state: Self::State, event: &StaffMailEvent) -> Self::State {
        state.keys.insert(event.key().to_owned());
        state
    }
}

impl Aggregate for StaffMail {
    fn significant(event: &StaffMailEvent) -> bool {
        !matches!(event, StaffMailEvent::MailQueued(_))
    }

    fn event_id(_: Uuid, stream: &str, _: usize, event: &StaffMailEvent) -> Uuid {
        match event {
            StaffMailEvent::MailQueued(m) => m.event_id(stream),
            other => Uuid::new_v5(
                &FACT_NAMESPACE,
                format!("{stream}/fact/{}", other.key()).as_bytes(),
            ),
        }
    }
}

/// A tour as the rules see it: the tour's own state, and the keys of the mails
/// already queued on its stream.
#[derive(Debug, Clone, Default)]
pub struct TourMailState {
    pub tour: TourState,
    pub mail_keys: BTreeSet<String>,
}

/// The tour aggregate with memory of its mails: appends exactly what `Tour` would
/// (the same event ids), so that a reminder queued here and one queued by the tours
/// service under the same key are one event.
#[derive(Debug)]
pub struct TourMails;

impl Decider for TourMails {
    type State = TourMailState;
    type Command = ();
    type Event = TourEvent;
    type Error = Infallible;

    fn decide(_: &Self::State, _: &()) -> Result<Vec<TourEvent>, Infallible> {
        Ok(vec![])
    }

    fn evolve(mut state: Self::State, event: &TourEvent) -> Self::State {
        match event {
            TourEvent::MailQueued(m) => {
                state.mail_keys.insert(m.key.clone());
            }
            TourEvent::MailRequested(m) => {
                state.mail_keys.insert(m.key.clone());
            }
            _ => {}
        }
        state.tour = Tour::evolve(std::mem::take(&mut state.tour), event);
        state
    }
}

impl Aggregate for TourMails {
    fn significant(event: &TourEvent) -> bool {
        Tour::significant(event)
    }

    fn event_id(command_id: Uuid, stream: &str, index: usize, event: &TourEvent) -> Uuid {
        Tour::event_id(command_id, stream, index, event)
    }
}
