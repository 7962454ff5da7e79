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

pub mod form;

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
// Events
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TourScheduled {
    pub tour_id: Uuid,
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    pub details: TourDetails,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TourPublished {
    pub tour_id: Uuid,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TourCancelled {
    pub tour_id: Uuid,
    pub at: DateTime<Utc>,
    /// Shown to the parties; written by staff, never personal.
    #[serde(default)]
    pub reason: Option<String>,
    /// Parties holding a place or a waiting-list slot when the tour was cancelled.
    /// Their own sign-ups are left as they were: the tour's status says it all.
    pub affected_sign_ups: Vec<Uuid>,
}

/// Staff changed a scheduled tour's details (the desk's edit page). The whole new
/// set of details is recorded, with the names of the fields that changed, so that
/// every reader can apply it on its own. Raising the capacity promotes waiting
/// parties in the same append ([`SignUpPromoted`] with no cancellation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TourDetailsChanged {
    pub tour_id: Uuid,
    pub at: DateTime<Utc>,
    /// 1 for the first change of the tour, then 2, ...: names the change (mail
    /// keys, calendar sequence numbers).
    pub revision: u32,
    /// Names of the fields of [`TourDetails`] that changed (never values).
    pub changed: Vec<String>,
    #[serde(flatten)]
    pub details: TourDetails,
}

impl TourDetailsChanged {
    /// Whether the change touches what a party must know to come (when and where).
    pub fn concerns_parties(&self) -> bool {
        self.changed.iter().any(|f| {
            matches!(
                f.as_str(),
                "starts_at" | "ends_at" | "meeting_place" | "fee_yen"
            )
        })
    }
}

/// A sign-up arrived. Head counts and statistics fields sit at the top; everything
/// that identifies a person is in `personal`. Always followed, in the same append, by
/// [`SignUpConfirmed`] or [`SignUpWaitlisted`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignUpReceived {
    pub sign_up_id: Uuid,
    /// The person who signed up: the party's personal part is theirs.
    pub person_id: Uuid,
    pub at: DateTime<Utc>,
    pub adults: u8,
    pub children: u8,
    pub prefecture: Prefecture,
    #[serde(default)]
    pub transport: Option<Transport>,
    /// How they heard of the tour.
    #[serde(default)]
    pub source: Option<Source>,
    pub personal: Personal<SignUpPersonal>,
}

impl SignUpReceived {
    pub fn party(&self) -> Party {
        Party {
            adults: self.adults,
            children: self.children,
        }
    }
}

/// A sign-up's personal data, kept apart so that it can be encrypted per person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignUpPersonal {
    pub name: PersonName,
    pub name_kana: Kana,
    pub email: Email,
    pub phone: Phone,
    #[serde(default)]
    pub children_ages: Option<FreeText>,
    /// Allergies, accessibility and the like.
    #[serde(default)]
    pub needs: Option<FreeText>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignUpConfirmed {
    pub sign_up_id: Uuid,
    pub at: DateTime<Utc>,
    pub adults: u8,
    pub children: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignUpWaitlisted {
    pub sign_up_id: Uuid,
    pub at: DateTime<Utc>,
    pub adults: u8,
    pub children: u8,
    /// 1-based place on the waiting list when the party joined it.
    pub position: u32,
}

/// A waitlisted party got a place because another party left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignUpPromoted {
    pub sign_up_id: Uuid,
    pub at: DateTime<Utc>,
    pub adults: u8,
    pub children: u8,
    /// The cancellation that freed the place; `None` when staff made room by
    /// raising the capacity ([`TourDetailsChanged`]). Stored events always had a
    /// value, which still decodes.
    #[serde(default)]
    pub after_cancellation_of: Option<Uuid>,
}

/// What a sign-up was when it was cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    Confirmed,
    Waitlisted,
}

/// Who cancelled a sign-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelledBy {
    /// The party itself, through its personal link.
    Party,
    /// Staff, on the party's behalf (the staff desk, later).
    Staff,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignUpCancelled {
    pub sign_up_id: Uuid,
    pub at: DateTime<Utc>,
    pub adults: u8,
    pub children: u8,
    pub was: Standing,
    pub by: CancelledBy,
}

/// A participant's feedback after the tour. The satisfaction is a statistic; the
/// comments are free text and so personal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedbackRecorded {
    pub sign_up_id: Uuid,
    /// The person who signed up: the comments are sealed with their key.
    pub person_id: Uuid,
    pub at: DateTime<Utc>,
    /// 1 (不満) to 5 (満足).
    pub satisfaction: u8,
    pub personal: Personal<FeedbackPersonal>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedbackPersonal {
    #[serde(default)]
    pub comments: Option<FreeText>,
}

/// Check-in on the day (受付): whether a confirmed party came.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttendanceRecorded {
    pub sign_up_id: Uuid,
    pub at: DateTime<Utc>,
    pub attended: bool,
    /// Head counts, so that participants can be counted from this fact alone.
    pub adults: u8,
    pub children: u8,
}

/// Every fact recorded on a tour stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum TourEvent {
    TourScheduled(TourScheduled),
    TourPublished(TourPublished),
    TourCancelled(TourCancelled),
    TourDetailsChanged(TourDetailsChanged),
    TourSignUpReceived(SignUpReceived),
    TourSignUpConfirmed(SignUpConfirmed),
    TourSignUpWaitlisted(SignUpWaitlisted),
    TourSignUpPromoted(SignUpPromoted),
    TourSignUpCancelled(SignUpCancelled),
    TourFeedbackRecorded(FeedbackRecorded),
    TourAttendanceRecorded(AttendanceRecorded),
    /// Legacy: tours rendered their mails when deciding until every mail became a
    /// `MailQueued`; kept so that stored events decode.
    MailRequested(MailRequested),
    MailQueued(MailQueued),
}

impl TourEvent {
    /// Every event type a tour stream can hold except `MailRequested`, for readers
    /// that subscribe by type (the catalogue projection).
    pub const TYPES: &'static [&'static str] = &[
        "TourScheduled",
        "TourPublished",
        "TourCancelled",
        "TourDetailsChanged",
        "TourSignUpReceived",
        "TourSignUpConfirmed",
        "TourSignUpWaitlisted",
        "TourSignUpPromoted",
        "TourSignUpCancelled",
        "TourFeedbackRecorded",
        "TourAttendanceRecorded",
    ];

    /// A key unique to this fact within its stream. Each fact can happen at most once
    /// (a sign-up is received once, promoted once, cancelled once), so the key makes a
    /// deterministic event id, and a retried request can never record a fact twice.
    pub fn key(&self) -> String {
        match self {
            TourEvent::TourScheduled(_) => "scheduled".into(),
            TourEvent::TourPublished(_) => "published".into(),
            TourEvent::TourCancelled(_) => "cancelled".into(),
            TourEvent::TourDetailsChanged(e) => format!("details/{}", e.revision),
            TourEvent::TourSignUpReceived(e) => format!("sign-up/{}/received", e.sign_up_id),
            TourEvent::TourSignUpConfirmed(e) => format!("sign-up/{}/confirmed", e.sign_up_id),
            TourEvent::TourSignUpWaitlisted(e) => format!("sign-up/{}/waitlisted", e.sign_up_id),
            TourEvent::TourSignUpPromoted(e) => format!("sign-up/{}/promoted", e.sign_up_id),
            TourEvent::TourSignUpCancelled(e) => format!("sign-up/{}/cancelled", e.sign_up_id),
            TourEvent::TourFeedbackRecorded(e) => format!("sign-up/{}/feedback", e.sign_up_id),
            // Attendance can be corrected (a mis-click at the door): each record is
            // its own fact, told apart by its time.
            TourEvent::TourAttendanceRecorded(e) => format!(
                "sign-up/{}/attendance/{}",
                e.sign_up_id,
                e.at.timestamp_nanos_opt().unwrap_or_default()
            ),
            TourEvent::MailRequested(m) => format!("mail/{}", m.key),
            TourEvent::MailQueued(m) => format!("mail/{}", m.key),
        }
    }
}

// ---------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------

/// A sign-up as the decider receives it: already validated (see [`form`]), and
/// attributed to a person with [`NewSignUp::for_person`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSignUp {
    pub sign_up_id: Uuid,
    pub person_id: Uuid,
    pub party: Party,
    pub prefecture: Prefecture,
    pub transport: Option<Transport>,
    pub source: Option<Source>,
    pub personal: SignUpPersonal,
}

impl NewSignUp {
    /// The sign-up, attributed to the person who made it.
    pub fn for_person(mut self, person_id: Uuid) -> Self {
        self.person_id = person_id;
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TourCommand {
    Schedule {
        tour_id: Uuid,
        details: TourDetails,
        publish: bool,
        at: DateTime<Utc>,
    },
    Publish {
        at: DateTime<Utc>,
    },
    Cancel {
        reason: Option<String>,
        at: DateTime<Utc>,
    },
    /// Staff edit a scheduled tour: the whole new set of details.
    ChangeDetails {
        details: TourDetails,
        at: DateTime<Utc>,
    },
    SignUp {
        sign_up: NewSignUp,
        at: DateTime<Utc>,
    },
    CancelSignUp {
        sign_up_id: Uuid,
        by: CancelledBy,
        at: DateTime<Utc>,
    },
    RecordFeedback {
        sign_up_id: Uuid,
        satisfaction: u8,
        comments: Option<FreeText>,
        at: DateTime<Utc>,
    },
    /// Check-in: the party came, or did not.
    RecordAttendance {
        sign_up_id: Uuid,
        attended: bool,
        at: DateTime<Utc>,
    },
}

/// Why a command was refused. Each is a clear answer to show the person who asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TourError {
    #[error("no such tour")]
    NotScheduled,
    #[error("the tour is already scheduled")]
    AlreadyScheduled,
    #[error("invalid schedule: {0}")]
    InvalidSchedule(&'static str),
    #[error("the tour is not published")]
    NotPublished,
    #[error("the tour is cancelled")]
    TourCancelled,
    #[error("the sign-up deadline has passed")]
    DeadlinePassed,
    #[error("the tour has already started")]
    TourStarted,
    #[error("invalid party: {0}")]
    InvalidParty(&'static str),
    #[error("the party is larger than the tour can ever take")]
    PartyTooLarge,
    #[error("no such sign-up")]
    UnknownSignUp,
    #[error("the sign-up is already cancelled")]
    SignUpAlreadyCancelled,
    #[error("feedback opens when the tour has started")]
    FeedbackNotOpen,
    #[error("only confirmed participants can give feedback")]
    FeedbackNotAllowed,
    #[error("feedback is already recorded")]
    FeedbackAlreadyRecorded,
    #[error("satisfaction must be between 1 and 5")]
    InvalidSatisfaction,
    #[error("attendance opens on the day of the tour")]
    AttendanceNotOpen,
    #[error("only confirmed parties can be checked in")]
    NotConfirmed,
    #[error("nothing would change")]
    NoChange,
    #[error("the capacity would be below the {confirmed} confirmed parties")]
    CapacityBelowConfirmed { confirmed: u32 },
    #[error("the maximum of people would be below the {confirmed} confirmed people")]
    MaxPeopleBelowConfirmed { confirmed: u32 },
}

impl TourError {
    /// The message shown to the public, in Japanese.
    pub fn message_ja(&self) -> &'static str {
        match self {
            TourError::NotScheduled | TourError::NotPublished => "このツアーは見つかりません。",
            TourError::AlreadyScheduled => "このツアーはすでに登録されています。",
            TourError::InvalidSchedule(_) => "ツアーの日程・定員の指定に誤りがあります。",
            TourError::TourCancelled => {
                "このツアーは中止となりました。お申し込みいただくことはできません。"
            }
            TourError::DeadlinePassed => {
                "このツアーの申込締切を過ぎています。お申し込みいただくことはできません。"
            }
            TourError::TourStarted => "このツアーはすでに開始・終了しています。",
            TourError::InvalidParty(_) => "参加人数の指定に誤りがあります。",
            TourError::PartyTooLarge => {
                "参加人数がこのツアーの定員を超えているため、お申し込みいただけません。窓口までご相談ください。"
            }
            TourError::UnknownSignUp => "お申し込みが見つかりません。",
            TourError::SignUpAlreadyCancelled => "このお申し込みはすでにキャンセルされています。",
            TourError::FeedbackNotOpen => "アンケートはツアー開始後にご回答いただけます。",
            TourError::FeedbackNotAllowed => "このお申し込みではアンケートにご回答いただけません。",
            TourError::FeedbackAlreadyRecorded => "アンケートはすでにご回答いただいています。",
            TourError::InvalidSatisfaction => "満足度は1〜5で選んでください。",
            TourError::AttendanceNotOpen => "参加の記録はツアー当日から入力できます。",
            TourError::NotConfirmed => "参加確定のお申し込みだけ参加を記録できます。",
            TourError::NoChange => "変更はありません（すでにその状態です）。",
            TourError::CapacityBelowConfirmed { .. } => {
                "定員（組数）は、参加確定済みの組数より少なくできません。"
            }
            TourError::MaxPeopleBelowConfirmed { .. } => {
                "最大人数は、参加確定済みの人数より少なくできません。"
            }
        }
    }
}

// ---------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------

/// Where a sign-up stands now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignUpStatus {
    /// Received, not yet decided. Never seen after a whole append is folded.
    Received,
    Confirmed,
    Waitlisted,
    Cancelled,
}

impl SignUpStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SignUpStatus::Received => "received",
            SignUpStatus::Confirmed => "confirmed",
            SignUpStatus::Waitlisted => "waitlisted",
            SignUpStatus::Cancelled => "cancelled",
        }
    }
}

/// One sign-up as rebuilt from the tour's events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignUp {
    pub id: Uuid,
    pub person_id: Uuid,
    pub received_at: DateTime<Utc>,
    pub party: Party,
    pub prefecture: Prefecture,
    pub transport: Option<Transport>,
    pub source: Option<Source>,
    pub personal: Personal<SignUpPersonal>,
    pub status: SignUpStatus,
    /// Set when the party moved from the waiting list to a place.
    pub promoted_at: Option<DateTime<Utc>>,
    /// What it was when it was cancelled, and by whom.
    pub cancelled: Option<(Standing, CancelledBy, DateTime<Utc>)>,
    pub feedback: Option<u8>,
    /// Check-in: `Some(true)` came, `Some(false)` no-show, `None` not recorded.
    pub attended: Option<bool>,
}

impl SignUp {
    pub fn is_confirmed(&self) -> bool {
        self.status == SignUpStatus::Confirmed
    }
}

/// A tour as rebuilt from its stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TourState {
    pub id: Option<Uuid>,
    /// `None` until the tour is scheduled.
    pub details: Option<TourDetails>,
    pub status: TourStatus,
    pub cancel_reason: Option<String>,
    /// How many times staff changed the details (0: as scheduled).
    pub revision: u32,
    /// In order of arrival.
    pub sign_ups: Vec<SignUp>,
}

impl TourState {
    pub fn sign_up(&self, id: Uuid) -> Option<&SignUp> {
        self.sign_ups.iter().find(|s| s.id == id)
    }

    fn sign_up_mut(&mut self, id: Uuid) -> Option<&mut SignUp> {
        self.sign_ups.iter_mut().find(|s| s.id == id)
    }

    pub fn confirmed(&self) -> impl Iterator<Item = &SignUp> {
        self.sign_ups.iter().filter(|s| s.is_confirmed())
    }

    /// The waiting list, first come first.
    pub fn waitlist(&self) -> impl Iterator<Item = &SignUp> {
        self.sign_ups
            .iter()
            .filter(|s| s.status == SignUpStatus::Waitlisted)
    }

    pub fn confirmed_parties(&self) -> u32 {
        self.confirmed().count() as u32
    }

    pub fn confirmed_people(&self) -> u32 {
        self.confirmed().map(|s| s.party.people()).sum()
    }

    pub fn waitlist_length(&self) -> u32 {
        self.waitlist().count() as u32
    }

    /// 1-based place on the waiting list.
    pub fn waitlist_position(&self, id: Uuid) -> Option<u32> {
        self.waitlist()
            .position(|s| s.id == id)
            .map(|p| p as u32 + 1)
    }

    /// Parties that can still be confirmed, by the party count alone.
    pub fn places_left(&self) -> u32 {
        let capacity = self.details.as_ref().map_or(0, |d| d.capacity_parties);
        capacity.saturating_sub(self.confirmed_parties())
    }

    /// Whether `party` can be confirmed now, whole.
    pub fn fits(&self, party: Party) -> bool {
        let Some(d) = &self.details else {
            return false;
        };
        self.confirmed_parties() < d.capacity_parties
            && d.max_people
                .is_none_or(|max| self.confirmed_people() + party.people() <= max)
    }

    /// Parties still holding a place or a waiting-list slot.
    pub fn active_sign_ups(&self) -> impl Iterator<Item = &SignUp> {
        self.sign_ups
            .iter()
            .filter(|s| matches!(s.status, SignUpStatus::Confirmed | SignUpStatus::Waitlisted))
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
