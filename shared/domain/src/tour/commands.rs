//! What staff and parties ask of a tour, and why the tour may refuse.

use super::*;

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
    #[error("the person has already signed up for this tour ({sign_up_id})")]
    AlreadySignedUp { sign_up_id: Uuid },
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
            TourError::AlreadySignedUp { .. } => {
                "このメールアドレスで、このツアーにはすでにお申し込みいただいています。お申し込み内容の確認・キャンセルは、お申し込み時にお送りしたメールのリンクからできます。人数の変更などは窓口までご連絡ください。"
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
