//! The tour form of the desk (create and edit): the values as typed, kept to show
//! them again, and their checks with a Japanese message per field.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use kujira_domain::tour::{TITLE_MAX, TourDetails, TourError, TourKind};
use kujira_web::FormData;
use unicode_normalization::UnicodeNormalization;

use crate::form::FormErrors;

/// Longest meeting place and audience (one line each).
pub const LINE_MAX: usize = 200;
/// Longest description.
pub const DESCRIPTION_MAX: usize = 2000;
/// Bounds of the capacity and of the maximum of people.
pub const CAPACITY_MAX: u32 = 500;
pub const PEOPLE_MAX: u32 = 5000;
pub const FEE_MAX: u32 = 1_000_000;

/// The fields, in the order of the form.
pub const FIELDS: &[(&str, &str)] = &[
    ("title", "タイトル"),
    ("kind", "種類"),
    ("starts_at", "開始日時"),
    ("ends_at", "終了日時"),
    ("deadline", "申込締切"),
    ("capacity_parties", "定員（組数）"),
    ("max_people", "最大人数"),
    ("fee_yen", "参加費（円）"),
    ("meeting_place", "集合場所"),
    ("audience", "対象"),
    ("description", "内容"),
    ("reason", "中止の理由"),
];

pub fn label_of(field: &str) -> String {
    FIELDS
        .iter()
        .find(|(f, _)| *f == field)
        .map_or("入力", |(_, l)| l)
        .to_owned()
}

/// What the form held, as typed.
#[derive(Debug, Clone, Default)]
pub struct TourValues {
    pub title: String,
    pub kind: String,
    pub starts_at: String,
    pub ends_at: String,
    pub deadline: String,
    pub capacity_parties: String,
    pub max_people: String,
    pub fee_yen: String,
    pub meeting_place: String,
    pub audience: String,
    pub description: String,
    pub publish: bool,
}

/// `2027-02-14T09:00`, the value of a `datetime-local` input, in the city's zone.
pub fn local_input(at: DateTime<Utc>, tz: Tz) -> String {
    at.with_timezone(&tz).format("%Y-%m-%dT%H:%M").to_string()
}

impl TourValues {
    pub fn from_form(form: &FormData) -> Self {
        let get = |name: &str| form.get(name).to_owned();
        Self {
            title: get("title"),
            kind: get("kind"),
            starts_at: get("starts_at"),
            ends_at: get("ends_at"),
            deadline: get("deadline"),
            capacity_parties: get("capacity_parties"),
            max_people: get("max_people"),
            fee_yen: get("fee_yen"),
            meeting_place: get("meeting_place"),
            audience: get("audience"),
            description: get("description"),
            publish: form.checked("publish"),
        }
    }

    /// The form filled with a tour's details (the edit page).
    pub fn from_details(d: &TourDetails, tz: Tz) -> Self {
        Self {
            title: d.title.clone(),
            kind: d.kind.as_str().to_owned(),
            starts_at: local_input(d.starts_at, tz),
            ends_at: local_input(d.ends_at, tz),
            deadline: d.deadline.map(|t| local_input(t, tz)).unwrap_or_default(),
            capacity_parties: d.capacity_parties.to_string(),
            max_people: d.max_people.map(|m| m.to_string()).unwrap_or_default(),
            fee_yen: d.fee_yen.to_string(),
            meeting_place: d.meeting_place.clone(),
            audience: d.audience.clone(),
            description: d.description.clone(),
            publish: false,
        }
    }

    /// The details, or every field at fault with its message. `now` decides what is
    /// in the past.
    pub fn parse(&self, tz: Tz, now: DateTime<Utc>) -> Result<TourDetails, FormErrors> {
        let mut e = FormErrors::new();
        let title = self.title.trim();
        if title.is_empty() {
            e.add("title", "タイトルを入力してください。");
        } else if title.chars().count() > TITLE_MAX {
            e.add(
                "title",
                format!("タイトルは{TITLE_MAX}文字以内で入力してください。"),
            );
        }
        let kind = TourKind::parse(self.kind.trim());
        if kind.is_none() {
            e.add("kind", "種類を選んでください。");
        }
        let starts_at = datetime(&mut e, "starts_at", &self.starts_at, tz, true);
        let ends_at = datetime(&mut e, "ends_at", &self.ends_at, tz, true);
        let deadline = datetime(&mut e, "deadline", &self.deadline, tz, false);
        if let Some(s) = starts_at
            && s <= now
        {
            e.add(
                "starts_at",
                "開始日時は現在より後の日時を指定してください。",
            );
        }
        if let (Some(s), Some(end)) = (starts_at, ends_at)
            && end <= s
        {
            e.add("ends_at", "終了日時は開始日時より後にしてください。");
        }
        if let (Some(s), Some(d)) = (starts_at, deadline)
            && d > s
        {
            e.add(
                "deadline",
                "申込締切は開始日時と同じか、それより前にしてください。",
            );
        }
        let capacity = number(
            &mut e,
            "capacity_parties",
            &self.capacity_parties,
            1,
            CAPACITY_MAX,
            true,
        );
        let max_people = number(&mut e, "max_people", &self.max_people, 1, PEOPLE_MAX, false);
        let fee = number(&mut e, "fee_yen", &self.fee_yen, 0, FEE_MAX, false);
        let meeting_place = line(&mut e, "meeting_place", &self.meeting_place, LINE_MAX);
        let audience = line(&mut e, "audience", &self.audience, LINE_MAX);
        let description = self.description.trim().replace("\r\n", "\n");
        if description.chars().count() > DESCRIPTION_MAX {
            e.add(
                "description",
                format!("内容は{DESCRIPTION_MAX}文字以内で入力してください。"),
            );
        }
        match (kind, starts_at, ends_at, capacity) {
            (Some(kind), Some(starts_at), Some(ends_at), Some(Some(capacity))) if e.is_empty() => {
                Ok(TourDetails {
                    title: title.to_owned(),
                    kind,
                    starts_at,
                    ends_at,
                    meeting_place,
                    capacity_parties: capacity,
                    max_people: max_people.flatten(),
                    fee_yen: fee.flatten().unwrap_or(0),
                    deadline,
                    description,
                    audience,
                })
            }
            _ => Err(e),
        }
    }
}

fn line(e: &mut FormErrors, field: &str, value: &str, max: usize) -> String {
    let v = value.trim();
    if v.chars().any(char::is_control) {
        e.add(field, "改行や制御文字は使えません。");
    } else if v.chars().count() > max {
        e.add(
            field,
            format!("{}は{max}文字以内で入力してください。", label_of(field)),
        );
    }
    v.to_owned()
}

/// A local date and time as typed (`2027-02-14T09:00`, or with a space, full-width
/// digits accepted), in the city's zone.
fn datetime(
    e: &mut FormErrors,
    field: &str,
    value: &str,
    tz: Tz,
    required: bool,
) -> Option<DateTime<Utc>> {
    let v: String = value.nfkc().collect::<String>().trim().replace(' ', "T");
    if v.is_empty() {
        if required {
            e.add(field, format!("{}を入力してください。", label_of(field)));
        }
        return None;
    }
    let parsed = NaiveDateTime::parse_from_str(&v, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(&v, "%Y-%m-%dT%H:%M:%S"))
        .ok()
        .and_then(|n| tz.from_local_datetime(&n).earliest())
        .map(|t| t.with_timezone(&Utc));
    if parsed.is_none() {
        e.add(field, "日時は「2027-02-14 09:00」の形で入力してください。");
    }
    parsed
}

/// A whole number in `min..=max`: `Some(None)` when optional and blank.
fn number(
    e: &mut FormErrors,
    field: &str,
    value: &str,
    min: u32,
    max: u32,
    required: bool,
) -> Option<Option<u32>> {
    let v: String = value.nfkc().collect::<String>().trim().replace(',', "");
    if v.is_empty() {
        if required {
            e.add(field, format!("{}を入力してください。", label_of(field)));
            return None;
        }
        return Some(None);
    }
    match v.parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => Some(Some(n)),
        _ => {
            e.add(
                field,
                format!(
                    "{}は{min}〜{max}の半角数字（整数）で入力してください。",
                    label_of(field)
                ),
            );
            None
        }
    }
}

/// A refusal of the tour aggregate as a field error where it concerns one field,
/// else as a message about the whole form.
pub fn refusal(e: &TourError) -> (Option<&'static str>, String) {
    match e {
        TourError::CapacityBelowConfirmed { confirmed } => (
            Some("capacity_parties"),
            format!("定員（組数）は、参加確定済みの{confirmed}組より少なくできません。"),
        ),
        TourError::MaxPeopleBelowConfirmed { confirmed } => (
            Some("max_people"),
            format!("最大人数は、参加確定済みの{confirmed}人より少なくできません。"),
        ),
        TourError::TourStarted => (
            None,
            "このツアーはすでに開始・終了しているため、変更できません。".into(),
        ),
        TourError::TourCancelled => (
            None,
            "このツアーは中止されているため、変更できません。".into(),
        ),
        TourError::NoChange => (None, "変更された項目がありません。".into()),
        TourError::InvalidSchedule(_) => (
            None,
            "日程・定員の指定に誤りがあります。入力内容を確認してください。".into(),
        ),
        other => (None, other.message_ja().to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-12-01T00:00:00Z".parse().unwrap()
    }

    fn ok() -> TourValues {
        TourValues {
            title: " 冬の柏崎 暮らし体験 ".into(),
            kind: "day_trip".into(),
            starts_at: "２０２７-02-14 09:00".into(),
            ends_at: "2027-02-14T17:00".into(),
            deadline: "2027-02-07T23:59".into(),
            capacity_parties: "５".into(),
            max_people: String::new(),
            fee_yen: "3,000".into(),
            ..TourValues::default()
        }
    }

    #[test]
    fn values_are_read_in_the_city_zone_and_normalised() {
        let d = ok().parse(chrono_tz::Asia::Tokyo, now()).unwrap();
        assert_eq!(d.title, "冬の柏崎 暮らし体験");
        assert_eq!(
            d.starts_at,
            "2027-02-14T00:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(
            (d.capacity_parties, d.max_people, d.fee_yen),
            (5, None, 3000)
        );
        let back = TourValues::from_details(&d, chrono_tz::Asia::Tokyo);
        assert_eq!(back.starts_at, "2027-02-14T09:00");
    }

    #[test]
    fn every_fault_gets_a_japanese_message_on_its_field() {
        let bad = TourValues {
            title: String::new(),
            kind: "cruise".into(),
            starts_at: "2026-11-30T10:00".into(),
            ends_at: "2026-11-30T09:00".into(),
            deadline: "tomorrow".into(),
            capacity_parties: "0".into(),
            max_people: "-1".into(),
            fee_yen: "abc".into(),
            meeting_place: "駅\n前".into(),
            ..TourValues::default()
        };
        let e = bad.parse(chrono_tz::Asia::Tokyo, now()).unwrap_err();
        for f in [
            "title",
            "kind",
            "starts_at",
            "ends_at",
            "deadline",
            "capacity_parties",
            "max_people",
            "fee_yen",
            "meeting_place",
        ] {
            assert!(e.get(f).is_some(), "{f}: {e:?}");
        }
    }
}
