//! The `.ics` calendar entries a tour's mails carry: added on confirmation, revised
//! when staff change the tour, taken out again on cancellation (same UID, higher
//! SEQUENCE).

use chrono::{DateTime, Utc};
use icalendar::{Calendar, Component, EventLike};
use kujira_config::Config;
use kujira_domain::tour::TourDetails;
use uuid::Uuid;

/// Whether an `.ics` adds the tour to a calendar or takes it out again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcsMethod {
    Publish,
    /// Same UID, a higher SEQUENCE and STATUS:CANCELLED: calendar clients remove the
    /// entry that the confirmation added.
    Cancel,
}

impl IcsMethod {
    fn as_str(self) -> &'static str {
        match self {
            IcsMethod::Publish => "PUBLISH",
            IcsMethod::Cancel => "CANCEL",
        }
    }

    /// The attachment's content type, which repeats the method (RFC 6047).
    pub fn content_type(self) -> String {
        format!("text/calendar; charset=utf-8; method={}", self.as_str())
    }
}

/// The `.ics` calendar entry of a tour (UTC times, so every client reads them alike).
pub fn ics(config: &Config, tour_id: Uuid, d: &TourDetails, stamp: DateTime<Utc>) -> String {
    ics_with(config, tour_id, d, stamp, IcsMethod::Publish)
}

/// The entry of a tour whose details staff changed `revision` times: the same UID
/// with a higher SEQUENCE, so that calendar clients update the entry they have.
pub fn ics_revised(
    config: &Config,
    tour_id: Uuid,
    d: &TourDetails,
    stamp: DateTime<Utc>,
    method: IcsMethod,
    revision: u32,
) -> String {
    let sequence = match method {
        IcsMethod::Publish => revision,
        IcsMethod::Cancel => revision + 1,
    };
    ics_sequenced(config, tour_id, d, stamp, method, sequence)
}

/// [`ics`] with a method: `Cancel` withdraws the entry a confirmation added.
pub fn ics_with(
    config: &Config,
    tour_id: Uuid,
    d: &TourDetails,
    stamp: DateTime<Utc>,
    method: IcsMethod,
) -> String {
    let sequence = match method {
        IcsMethod::Publish => 0,
        IcsMethod::Cancel => 1,
    };
    ics_sequenced(config, tour_id, d, stamp, method, sequence)
}

fn ics_sequenced(
    config: &Config,
    tour_id: Uuid,
    d: &TourDetails,
    stamp: DateTime<Utc>,
    method: IcsMethod,
    sequence: u32,
) -> String {
    let host = config
        .public_url
        .split("://")
        .nth(1)
        .unwrap_or("kujira")
        .split(['/', ':'])
        .next()
        .unwrap_or("kujira");
    let mut event = icalendar::Event::new();
    event
        .uid(&format!("tour-{tour_id}@{host}"))
        .timestamp(stamp)
        .summary(&format!("{}（{}）", d.title, config.words.city_name))
        .starts(d.starts_at)
        .ends(d.ends_at)
        .description(&format!(
            "{}\n\nお問い合わせ：{} {}",
            d.description, config.words.desk_name, config.words.desk_phone
        ))
        .url(&format!("{}/tours/{tour_id}", config.public_url));
    if !d.meeting_place.is_empty() {
        event.location(&d.meeting_place);
    }
    if method == IcsMethod::Cancel {
        event.status(icalendar::EventStatus::Cancelled);
    }
    if sequence > 0 {
        event.sequence(sequence);
    }
    let mut cal = Calendar::new();
    cal.append_property(icalendar::Property::new("METHOD", method.as_str()));
    cal.name(&d.title).push(event.done());
    cal.done().to_string()
}
