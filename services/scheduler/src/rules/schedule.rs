//! A rule's cron schedule in the city's time zone, read with croner exactly as
//! tokio-cron-scheduler reads it, so that "when is it due" and "when does it run"
//! agree.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use kujira_config::CronExpr;

#[derive(Debug, Clone)]
pub(crate) struct Schedule {
    cron: croner::Cron,
    tz: Tz,
}

impl Schedule {
    pub(crate) fn new(expr: &CronExpr, tz: Tz) -> Self {
        Self {
            cron: expr.cron(),
            tz,
        }
    }

    /// The last run at or before `now`.
    pub(crate) fn last_run(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_previous_occurrence(&now.with_timezone(&self.tz), true)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    /// The next run after `now`.
    pub(crate) fn next_run(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_next_occurrence(&now.with_timezone(&self.tz), false)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    /// The first run at or after `t`: when something due at `t` is decided.
    pub(crate) fn first_run_from(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_next_occurrence(&t.with_timezone(&self.tz), true)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    /// The first run on or after the start of the local day `date`.
    pub(crate) fn first_run_on_or_after(&self, date: NaiveDate) -> Option<DateTime<Utc>> {
        self.first_run_from(start_of_day(self.tz, date))
    }

    /// The local date of `t`.
    pub(crate) fn date(&self, t: DateTime<Utc>) -> NaiveDate {
        t.with_timezone(&self.tz).date_naive()
    }
}

/// The first instant of the local day `date` in `tz` (a day that starts in a DST gap
/// starts at the first time that exists).
pub(crate) fn start_of_day(tz: Tz, date: NaiveDate) -> DateTime<Utc> {
    let midnight = date.and_hms_opt(0, 0, 0).expect("midnight exists");
    match tz.from_local_datetime(&midnight) {
        chrono::LocalResult::Single(t) => t.with_timezone(&Utc),
        chrono::LocalResult::Ambiguous(t, _) => t.with_timezone(&Utc),
        chrono::LocalResult::None => {
            let later = midnight + chrono::Duration::hours(1);
            tz.from_local_datetime(&later).earliest().map_or_else(
                || Utc.from_utc_datetime(&midnight),
                |t| t.with_timezone(&Utc),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokyo(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn runs_are_read_in_the_city_s_time() {
        let s = Schedule::new(
            &CronExpr::parse("30 8 * * *").unwrap(),
            chrono_tz::Asia::Tokyo,
        );
        let now = tokyo("2026-12-01T09:00:00+09:00");
        assert_eq!(s.last_run(now), Some(tokyo("2026-12-01T08:30:00+09:00")));
        assert_eq!(s.next_run(now), Some(tokyo("2026-12-02T08:30:00+09:00")));
        // At the very moment, that run counts as the last one.
        let at = tokyo("2026-12-01T08:30:00+09:00");
        assert_eq!(s.last_run(at), Some(at));
        assert_eq!(
            s.first_run_on_or_after("2026-12-05".parse().unwrap()),
            Some(tokyo("2026-12-05T08:30:00+09:00"))
        );
        let weekdays = Schedule::new(
            &CronExpr::parse("0 10 * * 1-5").unwrap(),
            chrono_tz::Asia::Tokyo,
        );
        // Saturday 12/5: the first run is on Monday.
        assert_eq!(
            weekdays.first_run_on_or_after("2026-12-05".parse().unwrap()),
            Some(tokyo("2026-12-07T10:00:00+09:00"))
        );
    }
}
