//! The consultation case (相談案件): what an inquiry or an order-made tour request
//! opens, and what the concierges then take through the pipeline
//! 情報収集中 → 移住検討中 → 移住確定 → 移住済み.
//!
//! One case is one stream, `consultation-<case id>`. The first append holds the
//! submission and the mails it requests (concierge notice, applicant auto-reply),
//! so that a case can never exist without its mails, nor a mail without its case.
//!
//! This module also turns raw form or JSON input into a validated submission
//! ([`validate_inquiry`], [`validate_tour_request`]); time comes in as an argument.

use chrono::{DateTime, Days, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::decider::Decider;
use crate::mail::{MailQueued, MailRequested};
use crate::personal::Personal;
use crate::values::{
    AgeGroup, ConsultationMethod, Email, FieldErrors, FreeText, Gender, Household, Kana,
    MoveTiming, PersonName, Phone, PostalCode, Prefecture, Segment, Source, Topic, TourInterest,
    ValueError, optional,
};

/// The stream category of a case: `consultation-<case id>`.
pub const CATEGORY: &str = "consultation";

/// Longest message (相談内容) accepted.
pub const MESSAGE_MAX: usize = 2000;
/// Longest one-line free text (city, hometown, children's ages).
pub const LINE_MAX: usize = 100;
/// At most this many preferred dates.
pub const PREFERRED_DATES_MAX: usize = 3;

/// What opened the case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsultationKind {
    /// 移住相談フォーム.
    Inquiry,
    /// オーダーメイドツアーの申込.
    TourRequest,
}

/// Where the submission came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// The HTML form.
    Form,
    /// `POST /api/v1/...`.
    Api,
    /// Entered by staff on the desk (a fair booth, the phone, the counter); how it
    /// came in is `CaseOpening::desk_source`.
    Desk,
}

impl Channel {
    /// Web (the public form and the API) as the KPI sheet counts it.
    pub fn is_web(self) -> bool {
        matches!(self, Self::Form | Self::Api)
    }
}

/// The pipeline stage of a case. A new case starts at [`Stage::Gathering`];
/// the staff desk (a later issue) moves it on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// 情報収集中
    Gathering,
    /// 移住検討中
    Considering,
    /// 移住確定
    Decided,
    /// 移住済み
    Moved,
}

impl Stage {
    pub fn label_ja(self) -> &'static str {
        match self {
            Self::Gathering => "情報収集中",
            Self::Considering => "移住検討中",
            Self::Decided => "移住確定",
            Self::Moved => "移住済み",
        }
    }
}

/// A validated inquiry: statistics at top level, personal data in `personal`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inquiry {
    pub segment: Segment,
    pub age_group: Option<AgeGroup>,
    pub gender: Option<Gender>,
    pub prefecture: Prefecture,
    pub household: Option<Household>,
    pub move_timing: Option<MoveTiming>,
    pub topics: Vec<Topic>,
    pub method: ConsultationMethod,
    /// 希望日時 第1–第3, in the order given.
    pub preferred_dates: Vec<DateTime<Utc>>,
    pub source: Option<Source>,
    pub newsletter: bool,
    pub personal: Personal<InquiryPersonal>,
}

/// Everything in an inquiry that identifies or describes a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InquiryPersonal {
    pub name: PersonName,
    pub name_kana: Kana,
    pub email: Email,
    pub phone: Option<Phone>,
    pub postal_code: Option<PostalCode>,
    pub city: Option<FreeText>,
    pub hometown: Option<FreeText>,
    pub children_ages: Option<FreeText>,
    pub message: Option<FreeText>,
}

/// A validated order-made tour request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TourRequest {
    /// 希望日 第1–第3, in the order given.
    pub preferred_dates: Vec<NaiveDate>,
    pub interests: Vec<TourInterest>,
    pub adults: u8,
    pub children: u8,
    pub prefecture: Prefecture,
    pub source: Option<Source>,
    pub newsletter: bool,
    pub personal: Personal<TourRequestPersonal>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TourRequestPersonal {
    pub name: PersonName,
    pub name_kana: Kana,
    pub email: Email,
    pub phone: Phone,
    pub children_ages: Option<FreeText>,
    pub message: Option<FreeText>,
}

/// What every submission records besides its content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseOpening {
    pub case_id: Uuid,
    /// The person whose case it is; the key that seals `personal`.
    pub person_id: Uuid,
    /// The 連番 staff and applicants quote.
    pub reference: String,
    pub channel: Channel,
    pub submitted_at: DateTime<Utc>,
    /// The purpose of use shown above the button when consent was given (APPI art. 62).
    pub privacy_purpose: String,
    /// For a case entered on the desk: how the inquiry came in (窓口 or イベント).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desk_source: Option<crate::casework::ContactChannel>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InquirySubmitted {
    #[serde(flatten)]
    pub opening: CaseOpening,
    #[serde(flatten)]
    pub inquiry: Inquiry,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TourRequestSubmitted {
    #[serde(flatten)]
    pub opening: CaseOpening,
    #[serde(flatten)]
    pub request: TourRequest,
}

/// The facts of a consultation stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
#[allow(clippy::large_enum_variant)]
pub enum ConsultationEvent {
    InquirySubmitted(InquirySubmitted),
    TourRequestSubmitted(TourRequestSubmitted),
    MailRequested(MailRequested),
    /// A mail rendered at send time from this stream's facts.
    MailQueued(MailQueued),
    CaseAssigned(crate::casework::CaseAssigned),
    CasePhaseChanged(crate::casework::CasePhaseChanged),
    ContactLogged(crate::casework::ContactLogged),
    ConsultationScheduled(crate::casework::ConsultationScheduled),
    NextActionSet(crate::casework::NextActionSet),
    MoveRecorded(crate::casework::MoveRecorded),
    CaseClosed(crate::casework::CaseClosed),
    CaseReopened(crate::casework::CaseReopened),
    CaseMerged(crate::casework::CaseMerged),
    CaseMergeUndone(crate::casework::CaseMergeUndone),
}

impl ConsultationEvent {
    /// The event type string as stored.
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::InquirySubmitted(_) => "InquirySubmitted",
            Self::TourRequestSubmitted(_) => "TourRequestSubmitted",
            Self::MailRequested(_) => crate::mail::MAIL_REQUESTED,
            Self::MailQueued(_) => crate::mail::MAIL_QUEUED,
            Self::CaseAssigned(_) => "CaseAssigned",
            Self::CasePhaseChanged(_) => "CasePhaseChanged",
            Self::ContactLogged(_) => "ContactLogged",
            Self::ConsultationScheduled(_) => "ConsultationScheduled",
            Self::NextActionSet(_) => "NextActionSet",
            Self::MoveRecorded(_) => "MoveRecorded",
            Self::CaseClosed(_) => "CaseClosed",
            Self::CaseReopened(_) => "CaseReopened",
            Self::CaseMerged(_) => "CaseMerged",
            Self::CaseMergeUndone(_) => "CaseMergeUndone",
        }
    }

    /// Every event type a consultation stream can hold, for readers that subscribe
    /// by type.
    pub const TYPES: &'static [&'static str] = &[
        "InquirySubmitted",
        "TourRequestSubmitted",
        crate::mail::MAIL_REQUESTED,
        crate::mail::MAIL_QUEUED,
        "CaseAssigned",
        "CasePhaseChanged",
        "ContactLogged",
        "ConsultationScheduled",
        "NextActionSet",
        "MoveRecorded",
        "CaseClosed",
        "CaseReopened",
        "CaseMerged",
        "CaseMergeUndone",
    ];
}

/// What a case remembers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsultationState {
    pub opened: Option<OpenedCase>,
    /// Keys of every mail requested so far: a key is never requested twice.
    pub mail_keys: Vec<String>,
    /// What concierges did with the case.
    pub work: crate::casework::CaseWork,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedCase {
    pub case_id: Uuid,
    pub person_id: Uuid,
    pub kind: ConsultationKind,
    pub channel: Channel,
    pub reference: String,
    pub stage: Stage,
    pub opened_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsultationCommand {
    /// Opens the case with an inquiry and requests its mails in the same append.
    SubmitInquiry {
        submission: InquirySubmitted,
        mails: Vec<MailQueued>,
    },
    SubmitTourRequest {
        submission: TourRequestSubmitted,
        mails: Vec<MailQueued>,
    },
    /// Case work by staff, at `at`.
    Work {
        command: crate::casework::CaseCommand,
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsultationError {
    /// A case is opened once. A retried submission is recognised by its
    /// deterministic event ids before it reaches here.
    #[error("case {reference} is already open")]
    AlreadyOpened { reference: String },
    #[error("mail key {0} is requested twice")]
    DuplicateMailKey(String),
    #[error(transparent)]
    Case(#[from] crate::casework::CaseError),
}

/// The consultation aggregate.
#[derive(Debug)]
pub struct Consultation;

impl crate::decider::Aggregate for Consultation {
    fn significant(event: &ConsultationEvent) -> bool {
        !matches!(
            event,
            ConsultationEvent::MailRequested(_) | ConsultationEvent::MailQueued(_)
        )
    }

    /// A mail's id derives from its key, whoever queues it: a rule that runs twice,
    /// or two schedulers at once, queue the very same event and the log keeps one.
    fn event_id(command_id: Uuid, stream: &str, index: usize, event: &ConsultationEvent) -> Uuid {
        match event {
            ConsultationEvent::MailQueued(m) => m.event_id(stream),
            _ => Uuid::new_v5(&command_id, format!("{stream}/{index}").as_bytes()),
        }
    }
}

impl Decider for Consultation {
    type State = ConsultationState;
    type Command = ConsultationCommand;
    type Event = ConsultationEvent;
    type Error = ConsultationError;

    fn decide(
        state: &Self::State,
        command: &Self::Command,
    ) -> Result<Vec<Self::Event>, Self::Error> {
        if let ConsultationCommand::Work { command, at } = command {
            let open = state
                .opened
                .as_ref()
                .ok_or(crate::casework::CaseError::NotOpen)?;
            return Ok(crate::casework::decide(open, &state.work, command, *at)?);
        }
        if let Some(open) = &state.opened {
            return Err(ConsultationError::AlreadyOpened {
                reference: open.reference.clone(),
            });
        }
        let (first, mails) = match command {
            ConsultationCommand::SubmitInquiry { submission, mails } => (
                ConsultationEvent::InquirySubmitted(submission.clone()),
                mails,
            ),
            ConsultationCommand::SubmitTourRequest { submission, mails } => (
                ConsultationEvent::TourRequestSubmitted(submission.clone()),
                mails,
            ),
            ConsultationCommand::Work { .. } => unreachable!("decided above"),
        };
        let mut keys: Vec<&str> = Vec::new();
        for m in mails {
            if keys.contains(&m.key.as_str()) || state.mail_keys.contains(&m.key) {
                return Err(ConsultationError::DuplicateMailKey(m.key.clone()));
            }
            keys.push(&m.key);
        }
        let mut events = vec![first];
        events.extend(mails.iter().cloned().map(ConsultationEvent::MailQueued));
        Ok(events)
    }

    fn evolve(mut state: Self::State, event: &Self::Event) -> Self::State {
        let open = |o: &CaseOpening, kind| OpenedCase {
            case_id: o.case_id,
            person_id: o.person_id,
            kind,
            channel: o.channel,
            reference: o.reference.clone(),
            stage: Stage::Gathering,
            opened_at: o.submitted_at,
        };
        match event {
            ConsultationEvent::InquirySubmitted(e) => {
                state.opened = Some(open(&e.opening, ConsultationKind::Inquiry));
            }
            ConsultationEvent::TourRequestSubmitted(e) => {
                state.opened = Some(open(&e.opening, ConsultationKind::TourRequest));
            }
            ConsultationEvent::MailRequested(m) => state.mail_keys.push(m.key.clone()),
            ConsultationEvent::MailQueued(m) => state.mail_keys.push(m.key.clone()),
            work => {
                if let Some(open) = state.opened.as_mut() {
                    crate::casework::evolve(open, &mut state.work, work);
                }
            }
        }
        if let (Some(open), None) = (&state.opened, state.work.last_phase_change_at) {
            state.work.last_phase_change_at = Some(open.opened_at);
            state.work.last_activity_at = Some(open.opened_at);
        }
        state
    }
}

mod input;
pub use input::{
    DateRules, INQUIRY_FIELDS, InquiryInput, TOUR_MESSAGE_MAX, TOUR_REQUEST_FIELDS,
    TourRequestInput, validate_inquiry, validate_tour_request,
};

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> DateRules {
        DateRules {
            // 2026-11-24 10:00 in Tokyo.
            now: DateTime::parse_from_rfc3339("2026-11-24T01:00:00Z")
                .unwrap()
                .to_utc(),
            timezone: chrono_tz::Asia::Tokyo,
            lead_days: 3,
        }
    }

    fn input() -> InquiryInput {
        InquiryInput {
            name: "柏崎 太郎".into(),
            name_kana: "ｶｼﾜｻﾞｷ ﾀﾛｳ".into(),
            email: "taro@example.jp".into(),
            email_confirm: Some("taro@example.jp".into()),
            prefecture: "東京都".into(),
            segment: "i_turn".into(),
            topics: vec!["work".into(), "housing".into()],
            method: "online".into(),
            preferred_date_1: "2026-11-27T10:00".into(),
            consent: true,
            ..InquiryInput::default()
        }
    }

    fn mail(key: &str) -> MailQueued {
        MailQueued::to_applicant(key.into(), "inquiry_received_applicant", Uuid::from_u128(8))
    }

    fn submitted(case_id: Uuid) -> InquirySubmitted {
        InquirySubmitted {
            opening: CaseOpening {
                case_id,
                person_id: Uuid::from_u128(8),
                reference: "000001".into(),
                channel: Channel::Form,
                submitted_at: rules().now,
                privacy_purpose: "目的".into(),
                desk_source: None,
            },
            inquiry: validate_inquiry(&input(), &rules()).unwrap(),
        }
    }

    #[test]
    fn a_valid_inquiry_is_normalised() {
        let inquiry = validate_inquiry(&input(), &rules()).unwrap();
        assert_eq!(
            inquiry.personal.known().unwrap().name_kana.as_str(),
            "カシワザキ タロウ"
        );
        assert_eq!(inquiry.topics, vec![Topic::Work, Topic::Housing]);
        assert_eq!(
            inquiry.preferred_dates,
            vec![
                DateTime::parse_from_rfc3339("2026-11-27T01:00:00Z")
                    .unwrap()
                    .to_utc()
            ]
        );
    }

    #[test]
    fn every_field_at_fault_gets_an_error() {
        let bad = InquiryInput {
            name: String::new(),
            name_kana: "太郎".into(),
            email_confirm: Some("jiro@example.jp".into()),
            postal_code: "123".into(),
            prefecture: "東京".into(),
            segment: "x_turn".into(),
            topics: vec![],
            method: String::new(),
            preferred_date_1: "2026-11-26T10:00".into(),
            preferred_date_2: "2026-11-20T10:00".into(),
            preferred_date_3: "tomorrow".into(),
            message: "あ".repeat(MESSAGE_MAX + 1),
            consent: false,
            ..input()
        };
        let errors = validate_inquiry(&bad, &rules()).unwrap_err();
        let expect = [
            ("name", ValueError::Required),
            ("name_kana", ValueError::NotKatakana),
            ("email_confirm", ValueError::Mismatch),
            ("postal_code", ValueError::InvalidPostalCode),
            ("prefecture", ValueError::UnknownPrefecture),
            ("segment", ValueError::UnknownChoice),
            ("topics", ValueError::ChooseAtLeastOne),
            ("method", ValueError::Required),
            ("preferred_date_1", ValueError::TooSoon { lead_days: 3 }),
            ("preferred_date_2", ValueError::InPast),
            ("preferred_date_3", ValueError::InvalidDateTime),
            ("message", ValueError::TooLong { max: MESSAGE_MAX }),
            ("consent", ValueError::MustAgree),
        ];
        for (field, err) in &expect {
            assert_eq!(errors.get(field), Some(err), "{field}");
        }
        assert_eq!(errors.len(), expect.len());
    }

    #[test]
    fn rfc3339_dates_with_offset_are_accepted_and_duplicates_refused() {
        let i = InquiryInput {
            preferred_date_1: "2026-12-01T10:00:00+09:00".into(),
            preferred_date_2: "2026-12-01T10:00".into(),
            ..input()
        };
        let errors = validate_inquiry(&i, &rules()).unwrap_err();
        assert_eq!(errors.get("preferred_date_2"), Some(&ValueError::Duplicate));
    }

    #[test]
    fn given_no_case_when_an_inquiry_is_submitted_then_the_case_opens_with_its_mails() {
        let id = Uuid::from_u128(7);
        let cmd = ConsultationCommand::SubmitInquiry {
            submission: submitted(id),
            mails: vec![mail("a"), mail("b")],
        };
        let events = Consultation::decide(&ConsultationState::default(), &cmd).unwrap();
        assert_eq!(events.len(), 3);
        assert_eq!(events[0].event_type(), "InquirySubmitted");
        assert!(matches!(&events[2], ConsultationEvent::MailQueued(m) if m.key == "b"));
        let state = Consultation::replay(&events);
        let open = state.opened.unwrap();
        assert_eq!(
            (open.case_id, open.stage, open.kind),
            (id, Stage::Gathering, ConsultationKind::Inquiry)
        );
        assert_eq!(state.mail_keys, vec!["a".to_owned(), "b".to_owned()]);
    }

    #[test]
    fn given_an_open_case_when_submitted_again_then_it_is_refused() {
        let cmd = ConsultationCommand::SubmitInquiry {
            submission: submitted(Uuid::from_u128(7)),
            mails: vec![mail("a")],
        };
        let state = Consultation::replay(
            &Consultation::decide(&ConsultationState::default(), &cmd).unwrap(),
        );
        assert_eq!(
            Consultation::decide(&state, &cmd),
            Err(ConsultationError::AlreadyOpened {
                reference: "000001".into()
            })
        );
    }

    #[test]
    fn given_no_case_when_two_mails_share_a_key_then_it_is_refused() {
        let cmd = ConsultationCommand::SubmitInquiry {
            submission: submitted(Uuid::from_u128(7)),
            mails: vec![mail("a"), mail("a")],
        };
        assert_eq!(
            Consultation::decide(&ConsultationState::default(), &cmd),
            Err(ConsultationError::DuplicateMailKey("a".into()))
        );
    }

    #[test]
    fn events_keep_statistics_at_top_level_and_personal_data_nested() {
        let e = ConsultationEvent::InquirySubmitted(submitted(Uuid::from_u128(7)));
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["type"], "InquirySubmitted");
        let data = &json["data"];
        assert_eq!(data["segment"], "i_turn");
        assert_eq!(data["prefecture"], "東京都");
        assert_eq!(data["topics"][0], "work");
        assert_eq!(data["personal"]["email"], "taro@example.jp");
        assert_eq!(data["person_id"], Uuid::from_u128(8).to_string());
        for personal in ["name", "name_kana", "email", "phone", "message"] {
            assert!(
                data.get(personal).is_none(),
                "{personal} leaked to the top level"
            );
        }
        let back: ConsultationEvent = serde_json::from_value(json).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn a_tour_request_needs_a_date_an_interest_and_a_party() {
        let ok = TourRequestInput {
            name: "柏崎 花子".into(),
            name_kana: "カシワザキ ハナコ".into(),
            email: "hanako@example.jp".into(),
            email_confirm: Some("hanako@example.jp".into()),
            phone: "090-1234-5678".into(),
            prefecture: "新潟県".into(),
            preferred_date_1: "2026-11-27".into(),
            interests: vec!["schools".into(), "migrants".into()],
            adults: "２".into(),
            children: "1".into(),
            consent: true,
            ..TourRequestInput::default()
        };
        let r = validate_tour_request(&ok, &rules()).unwrap();
        assert_eq!((r.adults, r.children), (2, 1));
        assert_eq!(
            r.interests,
            vec![TourInterest::Schools, TourInterest::Migrants]
        );

        let bad = TourRequestInput {
            preferred_date_1: String::new(),
            interests: vec![],
            adults: "0".into(),
            children: "11".into(),
            ..ok
        };
        let e = validate_tour_request(&bad, &rules()).unwrap_err();
        assert_eq!(e.get("preferred_date_1"), Some(&ValueError::Required));
        assert_eq!(e.get("interests"), Some(&ValueError::ChooseAtLeastOne));
        assert_eq!(
            e.get("adults"),
            Some(&ValueError::OutOfRange { min: 1, max: 10 })
        );
        assert_eq!(
            e.get("children"),
            Some(&ValueError::OutOfRange { min: 0, max: 10 })
        );
    }
}
