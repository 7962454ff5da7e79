//! Trial-migration tours (おためし移住体験ツアー): the tour aggregate.
//!
//! Each tour is one stream, `tour-<uuid>`, and that stream alone decides every
//! sign-up: capacity (parties, and optionally people), the waiting list in order of
//! arrival, promotions when a confirmed party leaves, and cancellation. A party
//! (組) is one unit: it is confirmed or waitlisted whole, never split.
//!
//! Every sign-up's standing (confirmed, waitlisted, promoted, cancelled) can be
//! rebuilt from the tour's events alone with [`Tour::replay`](crate::decider::Decider::replay);
//! the staff rosters will read the same events, so they carry head counts and needs.
//!
//! The decider never renders mail: the service turns the decided facts into
//! [`TourEvent::MailQueued`] events and appends them in the same batch; the mailer
//! renders them from the tour's facts when it sends them.

mod commands;
mod events;
pub mod form;
mod state;

pub use commands::*;
pub use events::*;
pub use state::*;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::decider::Decider;
use crate::mail::{MailQueued, MailRequested};
use crate::personal::Personal;
use crate::values::{Email, FreeText, Kana, PersonName, Phone, Prefecture, Source};

/// The stream category of tours: `tour-<uuid>`.
pub const CATEGORY: &str = "tour";

/// Longest title staff may give a tour, in characters.
pub const TITLE_MAX: usize = 200;
/// Longest description, audience or meeting place, in characters.
pub const TEXT_MAX: usize = 4000;
/// Bounds of a party's head counts, from the sign-up form's rules.
pub const ADULTS_MAX: u8 = 10;
pub const CHILDREN_MAX: u8 = 10;

/// A dated tour is either a day trip or an overnight stay (1泊2日).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TourKind {
    DayTrip,
    Overnight,
}

impl TourKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TourKind::DayTrip => "day_trip",
            TourKind::Overnight => "overnight",
        }
    }

    pub fn label_ja(self) -> &'static str {
        match self {
            TourKind::DayTrip => "日帰り",
            TourKind::Overnight => "宿泊（1泊2日）",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "day_trip" => Some(TourKind::DayTrip),
            "overnight" => Some(TourKind::Overnight),
            _ => None,
        }
    }
}

/// Where a tour stands. A tour that is not scheduled has no state at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TourStatus {
    #[default]
    Draft,
    Published,
    Cancelled,
}

impl TourStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TourStatus::Draft => "draft",
            TourStatus::Published => "published",
            TourStatus::Cancelled => "cancelled",
        }
    }
}

/// How the party comes: by their own car, or by train with a pickup at the station.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    Car,
    Train,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Car => "car",
            Transport::Train => "train",
        }
    }

    pub fn label_ja(self) -> &'static str {
        match self {
            Transport::Car => "自家用車で来場",
            Transport::Train => "電車で来場（駅まで送迎）",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "car" => Some(Transport::Car),
            "train" => Some(Transport::Train),
            _ => None,
        }
    }
}

/// A party's head counts: one booking unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Party {
    pub adults: u8,
    pub children: u8,
}

impl Party {
    pub fn people(self) -> u32 {
        u32::from(self.adults) + u32::from(self.children)
    }
}

/// Everything staff set when they schedule a tour. None of it is personal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TourDetails {
    pub title: String,
    pub kind: TourKind,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    #[serde(default)]
    pub meeting_place: String,
    pub capacity_parties: u32,
    #[serde(default)]
    pub max_people: Option<u32>,
    #[serde(default)]
    pub fee_yen: u32,
    /// When unset, sign-ups close when the tour starts.
    #[serde(default)]
    pub deadline: Option<DateTime<Utc>>,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub audience: String,
}

impl TourDetails {
    /// The moment sign-ups close.
    pub fn sign_up_closes_at(&self) -> DateTime<Utc> {
        match self.deadline {
            Some(d) if d < self.starts_at => d,
            _ => self.starts_at,
        }
    }
}

// ---------------------------------------------------------------------------
// Decider
// ---------------------------------------------------------------------------

/// The tour aggregate.
#[derive(Debug)]
pub struct Tour;

/// Namespace of the ids of tour facts.
const EVENT_NAMESPACE: Uuid = Uuid::from_u128(0x6b75_6a69_7261_2d74_6f75_7273_0000_0001);

impl crate::decider::Aggregate for Tour {
    fn significant(event: &TourEvent) -> bool {
        !matches!(
            event,
            TourEvent::MailRequested(_) | TourEvent::MailQueued(_)
        )
    }

    /// Each fact happens at most once per tour (a sign-up is received once, promoted
    /// once, cancelled once), so its id derives from the fact itself: a retried
    /// request, in any process, can never record it twice.
    fn event_id(_command_id: Uuid, stream: &str, _index: usize, event: &TourEvent) -> Uuid {
        Uuid::new_v5(
            &EVENT_NAMESPACE,
            format!("{stream}/{}", event.key()).as_bytes(),
        )
    }
}

impl Decider for Tour {
    type State = TourState;
    type Command = TourCommand;
    type Event = TourEvent;
    type Error = TourError;

    fn decide(state: &TourState, command: &TourCommand) -> Result<Vec<TourEvent>, TourError> {
        match command {
            TourCommand::Schedule {
                tour_id,
                details,
                publish,
                at,
            } => schedule(state, *tour_id, details, *publish, *at),
            TourCommand::Publish { at } => {
                let id = scheduled(state)?;
                match state.status {
                    TourStatus::Published => Ok(vec![]),
                    TourStatus::Cancelled => Err(TourError::TourCancelled),
                    TourStatus::Draft => Ok(vec![TourEvent::TourPublished(TourPublished {
                        tour_id: id,
                        at: *at,
                    })]),
                }
            }
            TourCommand::Cancel { reason, at } => {
                let id = scheduled(state)?;
                if state.status == TourStatus::Cancelled {
                    return Err(TourError::TourCancelled);
                }
                Ok(vec![TourEvent::TourCancelled(TourCancelled {
                    tour_id: id,
                    at: *at,
                    reason: reason.clone().filter(|r| !r.trim().is_empty()),
                    affected_sign_ups: state.active_sign_ups().map(|s| s.id).collect(),
                })])
            }
            TourCommand::ChangeDetails { details, at } => change_details(state, details, *at),
            TourCommand::SignUp { sign_up, at } => sign_up_for(state, sign_up, *at),
            TourCommand::RecordAttendance {
                sign_up_id,
                attended,
                at,
            } => {
                let details = state.details.as_ref().ok_or(TourError::NotScheduled)?;
                let s = state.sign_up(*sign_up_id).ok_or(TourError::UnknownSignUp)?;
                if state.status == TourStatus::Cancelled {
                    return Err(TourError::TourCancelled);
                }
                // Check-in opens on the day: from 12 hours before the start.
                if *at < details.starts_at - chrono::Duration::hours(12) {
                    return Err(TourError::AttendanceNotOpen);
                }
                if !s.is_confirmed() {
                    return Err(TourError::NotConfirmed);
                }
                if s.attended == Some(*attended) {
                    return Err(TourError::NoChange);
                }
                Ok(vec![TourEvent::TourAttendanceRecorded(
                    AttendanceRecorded {
                        sign_up_id: *sign_up_id,
                        at: *at,
                        attended: *attended,
                        adults: s.party.adults,
                        children: s.party.children,
                    },
                )])
            }
            TourCommand::CancelSignUp { sign_up_id, by, at } => {
                cancel_sign_up(state, *sign_up_id, *by, *at)
            }
            TourCommand::RecordFeedback {
                sign_up_id,
                satisfaction,
                comments,
                at,
            } => {
                let details = state.details.as_ref().ok_or(TourError::NotScheduled)?;
                let s = state.sign_up(*sign_up_id).ok_or(TourError::UnknownSignUp)?;
                if !(1..=5).contains(satisfaction) {
                    return Err(TourError::InvalidSatisfaction);
                }
                if state.status == TourStatus::Cancelled {
                    return Err(TourError::TourCancelled);
                }
                if *at < details.starts_at {
                    return Err(TourError::FeedbackNotOpen);
                }
                if !s.is_confirmed() {
                    return Err(TourError::FeedbackNotAllowed);
                }
                if s.feedback.is_some() {
                    return Err(TourError::FeedbackAlreadyRecorded);
                }
                Ok(vec![TourEvent::TourFeedbackRecorded(FeedbackRecorded {
                    sign_up_id: *sign_up_id,
                    person_id: s.person_id,
                    at: *at,
                    satisfaction: *satisfaction,
                    personal: Personal::Known(FeedbackPersonal {
                        comments: comments.clone(),
                    }),
                })])
            }
        }
    }

    fn evolve(mut state: TourState, event: &TourEvent) -> TourState {
        match event {
            TourEvent::TourScheduled(e) => {
                state.id = Some(e.tour_id);
                state.details = Some(e.details.clone());
                state.status = TourStatus::Draft;
            }
            TourEvent::TourPublished(_) => {
                if state.status == TourStatus::Draft {
                    state.status = TourStatus::Published;
                }
            }
            TourEvent::TourCancelled(e) => {
                state.status = TourStatus::Cancelled;
                state.cancel_reason = e.reason.clone();
            }
            TourEvent::TourDetailsChanged(e) => {
                state.details = Some(e.details.clone());
                state.revision = e.revision;
            }
            TourEvent::TourSignUpReceived(e) => state.sign_ups.push(SignUp {
                id: e.sign_up_id,
                person_id: e.person_id,
                received_at: e.at,
                party: e.party(),
                prefecture: e.prefecture,
                transport: e.transport,
                source: e.source,
                personal: e.personal.clone(),
                status: SignUpStatus::Received,
                promoted_at: None,
                cancelled: None,
                feedback: None,
                attended: None,
            }),
            TourEvent::TourSignUpConfirmed(e) => {
                if let Some(s) = state.sign_up_mut(e.sign_up_id) {
                    s.status = SignUpStatus::Confirmed;
                }
            }
            TourEvent::TourSignUpWaitlisted(e) => {
                if let Some(s) = state.sign_up_mut(e.sign_up_id) {
                    s.status = SignUpStatus::Waitlisted;
                }
            }
            TourEvent::TourSignUpPromoted(e) => {
                if let Some(s) = state.sign_up_mut(e.sign_up_id) {
                    s.status = SignUpStatus::Confirmed;
                    s.promoted_at = Some(e.at);
                }
            }
            TourEvent::TourSignUpCancelled(e) => {
                if let Some(s) = state.sign_up_mut(e.sign_up_id) {
                    s.status = SignUpStatus::Cancelled;
                    s.cancelled = Some((e.was, e.by, e.at));
                }
            }
            TourEvent::TourFeedbackRecorded(e) => {
                if let Some(s) = state.sign_up_mut(e.sign_up_id) {
                    s.feedback = Some(e.satisfaction);
                }
            }
            TourEvent::TourAttendanceRecorded(e) => {
                if let Some(s) = state.sign_up_mut(e.sign_up_id) {
                    s.attended = Some(e.attended);
                }
            }
            TourEvent::MailRequested(_) | TourEvent::MailQueued(_) => {}
        }
        state
    }
}

fn scheduled(state: &TourState) -> Result<Uuid, TourError> {
    state.id.ok_or(TourError::NotScheduled)
}

/// The details as they will be recorded (title trimmed), if they make sense at `at`.
fn checked_details(d: &TourDetails, at: DateTime<Utc>) -> Result<TourDetails, TourError> {
    let title = d.title.trim();
    if title.is_empty() {
        return Err(TourError::InvalidSchedule("the title is empty"));
    }
    if title.chars().count() > TITLE_MAX {
        return Err(TourError::InvalidSchedule("the title is too long"));
    }
    if [&d.description, &d.audience, &d.meeting_place]
        .iter()
        .any(|t| t.chars().count() > TEXT_MAX)
    {
        return Err(TourError::InvalidSchedule("a text is too long"));
    }
    if d.ends_at <= d.starts_at {
        return Err(TourError::InvalidSchedule(
            "the tour must end after it starts",
        ));
    }
    if d.starts_at <= at {
        return Err(TourError::InvalidSchedule(
            "the tour must start in the future",
        ));
    }
    if d.capacity_parties == 0 {
        return Err(TourError::InvalidSchedule(
            "the capacity must be at least one party",
        ));
    }
    if d.max_people == Some(0) {
        return Err(TourError::InvalidSchedule(
            "the maximum of people must be at least one",
        ));
    }
    if let Some(deadline) = d.deadline
        && deadline > d.starts_at
    {
        return Err(TourError::InvalidSchedule(
            "the deadline must not be after the start",
        ));
    }
    let mut details = d.clone();
    details.title = title.to_owned();
    Ok(details)
}

/// The names of the fields that differ between two sets of details.
pub fn changed_fields(before: &TourDetails, after: &TourDetails) -> Vec<String> {
    let mut fields = Vec::new();
    let mut diff = |name: &str, changed: bool| {
        if changed {
            fields.push(name.to_owned());
        }
    };
    diff("title", before.title != after.title);
    diff("kind", before.kind != after.kind);
    diff("starts_at", before.starts_at != after.starts_at);
    diff("ends_at", before.ends_at != after.ends_at);
    diff("meeting_place", before.meeting_place != after.meeting_place);
    diff(
        "capacity_parties",
        before.capacity_parties != after.capacity_parties,
    );
    diff("max_people", before.max_people != after.max_people);
    diff("fee_yen", before.fee_yen != after.fee_yen);
    diff("deadline", before.deadline != after.deadline);
    diff("description", before.description != after.description);
    diff("audience", before.audience != after.audience);
    fields
}

/// Staff edit a tour. A cancelled tour, or one that has started, is history and is
/// not edited; the capacity (and the maximum of people) never drops below what is
/// already confirmed, because a confirmed place is a promise to a family. Raising
/// them fills the new room from the waiting list at once, first come first.
fn change_details(
    state: &TourState,
    d: &TourDetails,
    at: DateTime<Utc>,
) -> Result<Vec<TourEvent>, TourError> {
    let tour_id = scheduled(state)?;
    let before = state.details.as_ref().ok_or(TourError::NotScheduled)?;
    if state.status == TourStatus::Cancelled {
        return Err(TourError::TourCancelled);
    }
    if at >= before.starts_at {
        return Err(TourError::TourStarted);
    }
    let details = checked_details(d, at)?;
    let confirmed = state.confirmed_parties();
    if details.capacity_parties < confirmed {
        return Err(TourError::CapacityBelowConfirmed { confirmed });
    }
    let people = state.confirmed_people();
    if details.max_people.is_some_and(|max| max < people) {
        return Err(TourError::MaxPeopleBelowConfirmed { confirmed: people });
    }
    let changed = changed_fields(before, &details);
    if changed.is_empty() {
        return Err(TourError::NoChange);
    }
    let event = TourEvent::TourDetailsChanged(TourDetailsChanged {
        tour_id,
        at,
        revision: state.revision + 1,
        changed,
        details,
    });
    let after = Tour::evolve(state.clone(), &event);
    let mut events = vec![event];
    events.extend(promote_waiting(after, at, None));
    Ok(events)
}

/// Fills every free place from the waiting list: the first waitlisted party that
/// fits, again and again, so that a large party waiting never blocks smaller ones
/// behind it.
fn promote_waiting(
    mut after: TourState,
    at: DateTime<Utc>,
    after_cancellation_of: Option<Uuid>,
) -> Vec<TourEvent> {
    let mut events = Vec::new();
    loop {
        let next = after
            .waitlist()
            .find(|w| after.fits(w.party))
            .map(|w| (w.id, w.party));
        let Some((id, party)) = next else { break };
        let promoted = TourEvent::TourSignUpPromoted(SignUpPromoted {
            sign_up_id: id,
            at,
            adults: party.adults,
            children: party.children,
            after_cancellation_of,
        });
        after = Tour::evolve(after, &promoted);
        events.push(promoted);
    }
    events
}

fn schedule(
    state: &TourState,
    tour_id: Uuid,
    d: &TourDetails,
    publish: bool,
    at: DateTime<Utc>,
) -> Result<Vec<TourEvent>, TourError> {
    if state.details.is_some() {
        return Err(TourError::AlreadyScheduled);
    }
    let details = checked_details(d, at)?;
    let mut events = vec![TourEvent::TourScheduled(TourScheduled {
        tour_id,
        at,
        details,
    })];
    if publish {
        events.push(TourEvent::TourPublished(TourPublished { tour_id, at }));
    }
    Ok(events)
}

fn sign_up_for(
    state: &TourState,
    new: &NewSignUp,
    at: DateTime<Utc>,
) -> Result<Vec<TourEvent>, TourError> {
    let details = state.details.as_ref().ok_or(TourError::NotScheduled)?;
    // A retried submit of the same sign-up changes nothing; the caller reads its standing.
    if state.sign_up(new.sign_up_id).is_some() {
        return Ok(vec![]);
    }
    match state.status {
        TourStatus::Draft => return Err(TourError::NotPublished),
        TourStatus::Cancelled => return Err(TourError::TourCancelled),
        TourStatus::Published => {}
    }
    if at >= details.starts_at {
        return Err(TourError::TourStarted);
    }
    if at >= details.sign_up_closes_at() {
        return Err(TourError::DeadlinePassed);
    }
    if new.person_id.is_nil() {
        return Err(TourError::InvalidParty("the sign-up names no person"));
    }
    // One party per person: a second sign-up (the confirmation mail not found, or
    // meant as a change of numbers) would hold two places, or wait behind itself.
    if let Some(mine) = state
        .active_sign_ups()
        .find(|s| s.person_id == new.person_id)
    {
        return Err(TourError::AlreadySignedUp {
            sign_up_id: mine.id,
        });
    }
    let party = new.party;
    if !(1..=ADULTS_MAX).contains(&party.adults) {
        return Err(TourError::InvalidParty("adults must be 1 to 10"));
    }
    if party.children > CHILDREN_MAX {
        return Err(TourError::InvalidParty("children must be 0 to 10"));
    }
    // Waitlisting a party that no cancellation could ever make room for would be a lie.
    if details.max_people.is_some_and(|max| party.people() > max) {
        return Err(TourError::PartyTooLarge);
    }
    let received = TourEvent::TourSignUpReceived(SignUpReceived {
        sign_up_id: new.sign_up_id,
        person_id: new.person_id,
        at,
        adults: party.adults,
        children: party.children,
        prefecture: new.prefecture,
        transport: new.transport,
        source: new.source,
        personal: Personal::Known(new.personal.clone()),
    });
    let decided = if state.fits(party) {
        TourEvent::TourSignUpConfirmed(SignUpConfirmed {
            sign_up_id: new.sign_up_id,
            at,
            adults: party.adults,
            children: party.children,
        })
    } else {
        TourEvent::TourSignUpWaitlisted(SignUpWaitlisted {
            sign_up_id: new.sign_up_id,
            at,
            adults: party.adults,
            children: party.children,
            position: state.waitlist_length() + 1,
        })
    };
    Ok(vec![received, decided])
}

fn cancel_sign_up(
    state: &TourState,
    sign_up_id: Uuid,
    by: CancelledBy,
    at: DateTime<Utc>,
) -> Result<Vec<TourEvent>, TourError> {
    let details = state.details.as_ref().ok_or(TourError::NotScheduled)?;
    let s = state.sign_up(sign_up_id).ok_or(TourError::UnknownSignUp)?;
    let was = match s.status {
        SignUpStatus::Confirmed => Standing::Confirmed,
        SignUpStatus::Waitlisted => Standing::Waitlisted,
        SignUpStatus::Cancelled => return Err(TourError::SignUpAlreadyCancelled),
        SignUpStatus::Received => return Err(TourError::UnknownSignUp),
    };
    if state.status == TourStatus::Cancelled {
        return Err(TourError::TourCancelled);
    }
    if at >= details.starts_at {
        return Err(TourError::TourStarted);
    }
    let cancelled = TourEvent::TourSignUpCancelled(SignUpCancelled {
        sign_up_id,
        at,
        adults: s.party.adults,
        children: s.party.children,
        was,
        by,
    });
    let after = Tour::evolve(state.clone(), &cancelled);
    let mut events = vec![cancelled];
    if was == Standing::Confirmed {
        events.extend(promote_waiting(after, at, Some(sign_up_id)));
    }
    Ok(events)
}

#[cfg(test)]
mod tests;
