//! The tour's events: facts, named in the past tense, never edited. Personal
//! parts (the party's contacts, names, needs) sit in [`Personal`] fields.

use super::*;

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
