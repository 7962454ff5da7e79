//! Raw form or JSON input turned into a validated submission: each field parsed
//! into its domain value, every fault named by its field, dates checked against
//! the moment and the city's calendar ([`DateRules`]). Time comes in as an argument.

use super::*;

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
    let email = e.check_email_pair(&input.email, input.email_confirm.as_deref());
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
    let email = e.check_email_pair(&input.email, input.email_confirm.as_deref());
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
