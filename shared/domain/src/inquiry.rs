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

/// The rules that depend on the moment and the place: "now", the city's time zone,
/// and how many days ahead a preferred date must be.
#[derive(Debug, Clone, Copy)]
pub struct DateRules {
    pub now: DateTime<Utc>,
    pub timezone: Tz,
    pub lead_days: u32,
}

impl DateRules {
    /// The first local date a preferred date may fall on.
    pub fn earliest_date(&self) -> NaiveDate {
        let today = self.now.with_timezone(&self.timezone).date_naive();
        today
            .checked_add_days(Days::new(u64::from(self.lead_days)))
            .unwrap_or(today)
    }

    fn check_date(
        &self,
        local_date: NaiveDate,
        instant: Option<DateTime<Utc>>,
    ) -> Result<(), ValueError> {
        let past = match instant {
            Some(t) => t <= self.now,
            None => local_date < self.now.with_timezone(&self.timezone).date_naive(),
        };
        if past {
            Err(ValueError::InPast)
        } else if local_date < self.earliest_date() {
            Err(ValueError::TooSoon {
                lead_days: self.lead_days,
            })
        } else {
            Ok(())
        }
    }

    /// Reads a preferred date and time: RFC 3339 with an offset, or a local
    /// `YYYY-MM-DDTHH:MM[:SS]` (what `datetime-local` sends) read in the city's zone.
    pub fn parse_datetime(&self, input: &str) -> Result<DateTime<Utc>, ValueError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(ValueError::Required);
        }
        let at = match DateTime::parse_from_rfc3339(s) {
            Ok(t) => t.to_utc(),
            Err(_) => {
                let local = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]
                    .iter()
                    .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
                    .ok_or(ValueError::InvalidDateTime)?;
                // A local time skipped by a DST change does not exist; an ambiguous one
                // takes its first occurrence.
                self.timezone
                    .from_local_datetime(&local)
                    .earliest()
                    .ok_or(ValueError::InvalidDateTime)?
                    .to_utc()
            }
        };
        self.check_date(at.with_timezone(&self.timezone).date_naive(), Some(at))?;
        Ok(at)
    }

    /// Reads a preferred date, `YYYY-MM-DD` (what `<input type="date">` sends).
    pub fn parse_date(&self, input: &str) -> Result<NaiveDate, ValueError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(ValueError::Required);
        }
        let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| ValueError::InvalidDate)?;
        self.check_date(d, None)?;
        Ok(d)
    }
}

/// An inquiry as typed: the form's and the API's field names, as text.
/// `email_confirm` is `Some` on the HTML form, which asks for the address twice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InquiryInput {
    pub name: String,
    pub name_kana: String,
    pub email: String,
    pub email_confirm: Option<String>,
    pub phone: String,
    pub postal_code: String,
    pub prefecture: String,
    pub city: String,
    pub age_group: String,
    pub gender: String,
    pub segment: String,
    pub hometown: String,
    pub household: String,
    pub children_ages: String,
    pub move_timing: String,
    pub topics: Vec<String>,
    pub method: String,
    pub preferred_date_1: String,
    pub preferred_date_2: String,
    pub preferred_date_3: String,
    pub message: String,
    pub source: String,
    pub consent: bool,
    pub newsletter: bool,
}

/// Field names of the inquiry, in the order of the form.
pub const INQUIRY_FIELDS: &[&str] = &[
    "name",
    "name_kana",
    "email",
    "email_confirm",
    "phone",
    "postal_code",
    "prefecture",
    "city",
    "age_group",
    "gender",
    "segment",
    "hometown",
    "household",
    "children_ages",
    "move_timing",
    "topics",
    "method",
    "preferred_date_1",
    "preferred_date_2",
    "preferred_date_3",
    "message",
    "source",
    "consent",
    "newsletter",
];

fn line(max: usize) -> impl Fn(&str) -> Result<FreeText, ValueError> {
    move |s| FreeText::parse_line(s, max)
}

fn check_email_pair(errors: &mut FieldErrors, email: &str, confirm: Option<&str>) -> Option<Email> {
    let parsed = errors.check("email", Email::parse(email));
    if let Some(confirm) = confirm {
        match Email::parse(confirm) {
            Err(ValueError::Required) => errors.add("email_confirm", ValueError::Required),
            Ok(c) if parsed.as_ref().is_some_and(|e| *e != c) => {
                errors.add("email_confirm", ValueError::Mismatch)
            }
            Err(_) if parsed.is_some() => errors.add("email_confirm", ValueError::Mismatch),
            _ => {}
        }
    }
    parsed
}

fn choose_many<T: PartialEq>(
    errors: &mut FieldErrors,
    field: &'static str,
    values: &[String],
    parse: impl Fn(&str) -> Result<T, ValueError>,
) -> Vec<T> {
    let mut out = Vec::new();
    for v in values.iter().filter(|v| !v.trim().is_empty()) {
        match parse(v) {
            Ok(t) if !out.contains(&t) => out.push(t),
            Ok(_) => {}
            Err(e) => {
                errors.add(field, e);
                return Vec::new();
            }
        }
    }
    if out.is_empty() {
        errors.add(field, ValueError::ChooseAtLeastOne);
    }
    out
}

/// Validates an inquiry. On failure, every field at fault has an error.
pub fn validate_inquiry(input: &InquiryInput, rules: &DateRules) -> Result<Inquiry, FieldErrors> {
    let mut e = FieldErrors::new();
    let name = e.check("name", PersonName::parse(&input.name));
    let name_kana = e.check("name_kana", Kana::parse(&input.name_kana));
    let email = check_email_pair(&mut e, &input.email, input.email_confirm.as_deref());
    let phone = e.check("phone", optional(&input.phone, Phone::parse));
    let postal_code = e.check(
        "postal_code",
        optional(&input.postal_code, PostalCode::parse),
    );
    let prefecture = e.check("prefecture", Prefecture::parse(&input.prefecture));
    let city = e.check("city", optional(&input.city, line(LINE_MAX)));
    let age_group = e.check("age_group", optional(&input.age_group, AgeGroup::parse));
    let gender = e.check("gender", optional(&input.gender, Gender::parse));
    let segment = e.check("segment", Segment::parse(&input.segment));
    let hometown = e.check("hometown", optional(&input.hometown, line(LINE_MAX)));
    let household = e.check("household", optional(&input.household, Household::parse));
    let children_ages = e.check(
        "children_ages",
        optional(&input.children_ages, line(LINE_MAX)),
    );
    let move_timing = e.check(
        "move_timing",
        optional(&input.move_timing, MoveTiming::parse),
    );
    let topics = choose_many(&mut e, "topics", &input.topics, Topic::parse);
    let method = e.check("method", ConsultationMethod::parse(&input.method));
    let mut preferred_dates: Vec<DateTime<Utc>> = Vec::new();
    for (field, raw) in [
        ("preferred_date_1", &input.preferred_date_1),
        ("preferred_date_2", &input.preferred_date_2),
        ("preferred_date_3", &input.preferred_date_3),
    ] {
        match e.check(field, optional(raw, |s| rules.parse_datetime(s))) {
            Some(Some(t)) if preferred_dates.contains(&t) => e.add(field, ValueError::Duplicate),
            Some(Some(t)) => preferred_dates.push(t),
            _ => {}
        }
    }
    let message = e.check(
        "message",
        optional(&input.message, |s| {
            FreeText::parse_multiline(s, MESSAGE_MAX)
        }),
    );
    let source = e.check("source", optional(&input.source, Source::parse));
    if !input.consent {
        e.add("consent", ValueError::MustAgree);
    }
    if !e.is_empty() {
        return Err(e);
    }
    // Every `check` that failed recorded an error, so with none recorded all are `Some`.
    let (
        Some(name),
        Some(name_kana),
        Some(email),
        Some(phone),
        Some(postal_code),
        Some(prefecture),
        Some(city),
        Some(age_group),
        Some(gender),
        Some(segment),
        Some(hometown),
        Some(household),
        Some(children_ages),
        Some(move_timing),
        Some(method),
        Some(message),
        Some(source),
    ) = (
        name,
        name_kana,
        email,
        phone,
        postal_code,
        prefecture,
        city,
        age_group,
        gender,
        segment,
        hometown,
        household,
        children_ages,
        move_timing,
        method,
        message,
        source,
    )
    else {
        return Err(e);
    };
    Ok(Inquiry {
        segment,
        age_group,
        gender,
        prefecture,
        household,
        move_timing,
        topics,
        method,
        preferred_dates,
        source,
        newsletter: input.newsletter,
        personal: Personal::Known(InquiryPersonal {
            name,
            name_kana,
            email,
            phone,
            postal_code,
            city,
            hometown,
            children_ages,
            message,
        }),
    })
}

/// An order-made tour request as typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TourRequestInput {
    pub name: String,
    pub name_kana: String,
    pub email: String,
    pub email_confirm: Option<String>,
    pub phone: String,
    pub prefecture: String,
    pub preferred_date_1: String,
    pub preferred_date_2: String,
    pub preferred_date_3: String,
    pub interests: Vec<String>,
    pub adults: String,
    pub children: String,
    pub children_ages: String,
    pub message: String,
    pub source: String,
    pub consent: bool,
    pub newsletter: bool,
}

/// Field names of the tour request, in the order of the form.
pub const TOUR_REQUEST_FIELDS: &[&str] = &[
    "name",
    "name_kana",
    "email",
    "email_confirm",
    "phone",
    "prefecture",
    "preferred_date_1",
    "preferred_date_2",
    "preferred_date_3",
    "interests",
    "adults",
    "children",
    "children_ages",
    "message",
    "source",
    "consent",
    "newsletter",
];

/// Longest message of a tour request.
pub const TOUR_MESSAGE_MAX: usize = 2000;

fn count(input: &str, min: u8, max: u8) -> Result<u8, ValueError> {
    let s: String = input
        .trim()
        .chars()
        .map(|c| match c {
            '０'..='９' => char::from_u32(c as u32 - '０' as u32 + '0' as u32).unwrap_or(c),
            c => c,
        })
        .collect();
    if s.is_empty() {
        return Err(ValueError::Required);
    }
    let range = ValueError::OutOfRange {
        min: i64::from(min),
        max: i64::from(max),
    };
    let n: u8 = s.parse().map_err(|_| range.clone())?;
    if (min..=max).contains(&n) {
        Ok(n)
    } else {
        Err(range)
    }
}

/// Validates an order-made tour request.
pub fn validate_tour_request(
    input: &TourRequestInput,
    rules: &DateRules,
) -> Result<TourRequest, FieldErrors> {
    let mut e = FieldErrors::new();
    let name = e.check("name", PersonName::parse(&input.name));
    let name_kana = e.check("name_kana", Kana::parse(&input.name_kana));
    let email = check_email_pair(&mut e, &input.email, input.email_confirm.as_deref());
    let phone = e.check("phone", Phone::parse(&input.phone));
    let prefecture = e.check("prefecture", Prefecture::parse(&input.prefecture));
    let mut preferred_dates: Vec<NaiveDate> = Vec::new();
    for (i, (field, raw)) in [
        ("preferred_date_1", &input.preferred_date_1),
        ("preferred_date_2", &input.preferred_date_2),
        ("preferred_date_3", &input.preferred_date_3),
    ]
    .into_iter()
    .enumerate()
    {
        let parsed = if i == 0 {
            e.check(field, rules.parse_date(raw).map(Some))
        } else {
            e.check(field, optional(raw, |s| rules.parse_date(s)))
        };
        match parsed {
            Some(Some(d)) if preferred_dates.contains(&d) => e.add(field, ValueError::Duplicate),
            Some(Some(d)) => preferred_dates.push(d),
            _ => {}
        }
    }
    let interests = choose_many(&mut e, "interests", &input.interests, TourInterest::parse);
    let adults = e.check("adults", count(&input.adults, 1, 10));
    let children = e.check(
        "children",
        if input.children.trim().is_empty() {
            Ok(0)
        } else {
            count(&input.children, 0, 10)
        },
    );
    let children_ages = e.check(
        "children_ages",
        optional(&input.children_ages, line(LINE_MAX)),
    );
    let message = e.check(
        "message",
        optional(&input.message, |s| {
            FreeText::parse_multiline(s, TOUR_MESSAGE_MAX)
        }),
    );
    let source = e.check("source", optional(&input.source, Source::parse));
    if !input.consent {
        e.add("consent", ValueError::MustAgree);
    }
    if !e.is_empty() {
        return Err(e);
    }
    match (
        name,
        name_kana,
        email,
        phone,
        prefecture,
        adults,
        children,
        children_ages,
        message,
        source,
    ) {
        (
            Some(name),
            Some(name_kana),
            Some(email),
            Some(phone),
            Some(prefecture),
            Some(adults),
            Some(children),
            Some(children_ages),
            Some(message),
            Some(source),
        ) => Ok(TourRequest {
            preferred_dates,
            interests,
            adults,
            children,
            prefecture,
            source,
            newsletter: input.newsletter,
            personal: Personal::Known(TourRequestPersonal {
                name,
                name_kana,
                email,
                phone,
                children_ages,
                message,
            }),
        }),
        _ => Err(e),
    }
}

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
            name_kana: "たろう".into(),
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
