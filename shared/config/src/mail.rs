//! The mail settings that need parsing: quiet hours and the sender's mailbox.

use anyhow::{anyhow, bail};
use chrono::{DateTime, LocalResult, NaiveDateTime, NaiveTime, TimeZone, Utc};

/// `KUJIRA_QUIET_HOURS`: the daily window, in the city's time zone, in which
/// applicants get no scheduled follow-up mail. The window may wrap midnight
/// (`20:00-08:00`, the default); its start is inside it and its end is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl QuietHours {
    /// The default window, 20:00–08:00.
    pub fn default_window() -> Self {
        Self {
            start: NaiveTime::from_hms_opt(20, 0, 0).expect("a valid time"),
            end: NaiveTime::from_hms_opt(8, 0, 0).expect("a valid time"),
        }
    }

    /// Parses `HH:MM-HH:MM`.
    pub fn parse(value: &str) -> Result<Self, String> {
        let (start, end) = value
            .split_once('-')
            .ok_or_else(|| format!("{value:?} is not a window like 20:00-08:00"))?;
        let time = |s: &str| {
            NaiveTime::parse_from_str(s.trim(), "%H:%M")
                .map_err(|_| format!("{:?} is not a time like 08:00", s.trim()))
        };
        let (start, end) = (time(start)?, time(end)?);
        if start == end {
            return Err(format!(
                "{value:?} starts and ends at the same time; leave the variable empty to turn quiet hours off"
            ));
        }
        Ok(Self { start, end })
    }

    /// Whether the local time of day `t` is inside the window.
    pub fn contains(&self, t: NaiveTime) -> bool {
        if self.start < self.end {
            self.start <= t && t < self.end
        } else {
            t >= self.start || t < self.end
        }
    }

    /// When `now` is inside the window: the instant the window ends (the next time
    /// the clock in `tz` shows the end). `None` outside the window.
    pub fn hold_until(&self, now: DateTime<Utc>, tz: chrono_tz::Tz) -> Option<DateTime<Utc>> {
        let local = now.with_timezone(&tz);
        if !self.contains(local.time()) {
            return None;
        }
        let today = local.date_naive();
        // Before the end on the same day, or (for a window that wraps midnight,
        // evening part) the end on the next day.
        let date = if local.time() < self.end {
            today
        } else {
            today.succ_opt()?
        };
        Some(resolve(tz, date.and_time(self.end)))
    }
}

impl std::fmt::Display for QuietHours {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}-{}",
            self.start.format("%H:%M"),
            self.end.format("%H:%M")
        )
    }
}

/// The instant a local time stands for. In a gap (a clock moved forward), the first
/// instant after it; when ambiguous (moved back), the earlier one.
fn resolve(tz: chrono_tz::Tz, local: NaiveDateTime) -> DateTime<Utc> {
    let mut t = local;
    for _ in 0..24 * 4 {
        match tz.from_local_datetime(&t) {
            LocalResult::Single(x) | LocalResult::Ambiguous(x, _) => return x.with_timezone(&Utc),
            LocalResult::None => t += chrono::Duration::minutes(15),
        }
    }
    // No zone has a gap of a day; read the local time as UTC rather than panic.
    local.and_utc()
}

/// Reads `KUJIRA_QUIET_HOURS`: unset means the default window, an empty value turns
/// quiet hours off. `raw` is the variable (set, possibly empty) or the file's value.
pub(crate) fn quiet_hours(raw: Option<&str>) -> anyhow::Result<Option<QuietHours>> {
    match raw.map(str::trim) {
        None => Ok(Some(QuietHours::default_window())),
        Some("") => Ok(None),
        Some(v) => QuietHours::parse(v)
            .map(Some)
            .map_err(|e| anyhow!("KUJIRA_QUIET_HOURS: {e}")),
    }
}

/// `KUJIRA_MAIL_FROM`: `noreply@city.example.jp` or `くじらと。 <noreply@city.example.jp>`
/// (the name may be quoted). Returns the display name, if any, and the address.
pub fn parse_mailbox(value: &str) -> Result<(Option<String>, String), String> {
    let value = value.trim();
    let (name, address) = match value.rsplit_once('<') {
        Some((name, rest)) => {
            let address = rest
                .strip_suffix('>')
                .ok_or_else(|| format!("{value:?}: the address must end with '>'"))?;
            let name = name.trim();
            let name = name
                .strip_prefix('"')
                .and_then(|n| n.strip_suffix('"'))
                .unwrap_or(name)
                .trim();
            (
                Some(name.to_owned()).filter(|n| !n.is_empty()),
                address.trim(),
            )
        }
        None => (None, value),
    };
    if name
        .as_deref()
        .is_some_and(|n| n.contains(['<', '>', '"', '\r', '\n']))
    {
        return Err(format!(
            "{value:?}: the display name must not contain <, > or quotes"
        ));
    }
    let ok = address.rsplit_once('@').is_some_and(|(l, d)| {
        !l.is_empty()
            && !d.is_empty()
            && !address.contains(char::is_whitespace)
            && !address.contains(['<', '>'])
    });
    if !ok {
        return Err(format!("{value:?} is not an email address"));
    }
    Ok((name, address.to_owned()))
}

pub(crate) fn mail_from(value: &str) -> anyhow::Result<(Option<String>, String)> {
    parse_mailbox(value).map_err(|e| anyhow!("KUJIRA_MAIL_FROM: {e}"))
}

pub(crate) fn check_quiet_hours_type(value: &toml::Value) -> anyhow::Result<String> {
    match value {
        toml::Value::String(s) => Ok(s.clone()),
        _ => bail!("KUJIRA_QUIET_HOURS: quiet_hours in the configuration file must be a string"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_window_that_wraps_midnight_ends_the_next_morning() {
        let q = QuietHours::parse("20:00-08:00").unwrap();
        let tz = chrono_tz::Asia::Tokyo;
        assert_eq!(q, QuietHours::default_window());
        assert_eq!(
            q.hold_until(at("2026-12-01T21:00:00+09:00"), tz),
            Some(at("2026-12-02T08:00:00+09:00"))
        );
        assert_eq!(
            q.hold_until(at("2026-12-02T07:59:59+09:00"), tz),
            Some(at("2026-12-02T08:00:00+09:00"))
        );
        assert_eq!(
            q.hold_until(at("2026-12-01T20:00:00+09:00"), tz),
            Some(at("2026-12-02T08:00:00+09:00"))
        );
        assert_eq!(q.hold_until(at("2026-12-02T08:00:00+09:00"), tz), None);
        assert_eq!(q.hold_until(at("2026-12-01T19:59:59+09:00"), tz), None);
        assert_eq!(q.to_string(), "20:00-08:00");
    }

    #[test]
    fn a_window_within_one_day_and_a_gap_in_the_local_time() {
        let q = QuietHours::parse("12:00-13:30").unwrap();
        let tz = chrono_tz::Asia::Tokyo;
        assert_eq!(
            q.hold_until(at("2026-12-01T12:10:00+09:00"), tz),
            Some(at("2026-12-01T13:30:00+09:00"))
        );
        assert_eq!(q.hold_until(at("2026-12-01T13:30:00+09:00"), tz), None);
        // 02:30 does not exist in New York on 2027-03-14: the window ends at 03:00.
        let q = QuietHours::parse("22:00-02:30").unwrap();
        let ny = chrono_tz::America::New_York;
        assert_eq!(
            q.hold_until(at("2027-03-13T23:00:00-05:00"), ny),
            Some(at("2027-03-14T03:00:00-04:00"))
        );
    }

    #[test]
    fn bad_windows_are_refused() {
        for bad in [
            "20:00",
            "25:00-08:00",
            "20:00-08:00-09:00",
            "8時-20時",
            "08:00-08:00",
        ] {
            assert!(QuietHours::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(quiet_hours(Some("")).unwrap(), None);
        assert_eq!(quiet_hours(Some("  ")).unwrap(), None);
        assert_eq!(
            quiet_hours(None).unwrap(),
            Some(QuietHours::default_window())
        );
    }

    #[test]
    fn the_sender_may_carry_a_display_name() {
        assert_eq!(
            parse_mailbox("くじらと。 <noreply@city.example.jp>").unwrap(),
            (
                Some("くじらと。".to_owned()),
                "noreply@city.example.jp".to_owned()
            )
        );
        assert_eq!(
            parse_mailbox("\"柏崎市, 移住\" <a@b.jp>").unwrap(),
            (Some("柏崎市, 移住".to_owned()), "a@b.jp".to_owned())
        );
        assert_eq!(
            parse_mailbox("<a@b.jp>").unwrap(),
            (None, "a@b.jp".to_owned())
        );
        assert_eq!(
            parse_mailbox("a@b.jp").unwrap(),
            (None, "a@b.jp".to_owned())
        );
        for bad in [
            "nobody",
            "名前 <nobody>",
            "名前 <a@b.jp",
            "a b@c.jp",
            "x <a@b.jp> y",
        ] {
            assert!(parse_mailbox(bad).is_err(), "{bad}");
        }
    }
}
