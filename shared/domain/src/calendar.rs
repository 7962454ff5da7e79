//! The Japanese calendar of the desk: national holidays (国民の祝日), and the
//! business days of a municipal office (開庁日).
//!
//! Holidays follow the 国民の祝日に関する法律 as amended up to 2018 (天皇誕生日 on
//! 2/23 from 2020, スポーツの日), with the one-off dates of 2019 (即位の日 and the
//! days around it, 即位礼正殿の儀) and the Olympic moves of 2020 and 2021:
//!
//! * fixed dates, and the "Happy Monday" days (nth Monday of a month);
//! * 春分の日 and 秋分の日 from the usual approximation of the equinoxes, which
//!   matches the dates the National Astronomical Observatory announces for 1980–2099
//!   (the law fixes them only a year ahead, each February, in the 官報);
//! * 振替休日: a holiday on a Sunday moves to the next day that is not a holiday;
//! * 国民の休日: a weekday between two holidays is a holiday (as 2026-09-22).
//!
//! Business days exclude weekends, holidays, and the year-end closure of public
//! offices, 12/29–1/3 (行政機関の休日に関する法律, and the municipal ordinances that
//! follow it). The concierge digest and "no contact within 3 business days" count
//! these days; the desk's due dates should count them too, with this module.
//!
//! Years outside 2000–2099 get the rules of today's law: good enough for the
//! arithmetic on dates far away, never used for a real desk day.

use chrono::{Datelike, NaiveDate, Weekday};

/// The day of the week as Japanese write it in a date: `月` … `日`.
pub fn weekday_ja(w: Weekday) -> &'static str {
    match w {
        Weekday::Mon => "月",
        Weekday::Tue => "火",
        Weekday::Wed => "水",
        Weekday::Thu => "木",
        Weekday::Fri => "金",
        Weekday::Sat => "土",
        Weekday::Sun => "日",
    }
}

/// A date as every page and mail writes it: `2026年12月1日（火）`.
pub fn date_ja(d: NaiveDate) -> String {
    format!(
        "{}年{}月{}日（{}）",
        d.year(),
        d.month(),
        d.day(),
        weekday_ja(d.weekday())
    )
}

/// The name of the national holiday on `date`, if it is one.
pub fn holiday_name(date: NaiveDate) -> Option<&'static str> {
    if let Some(name) = base_holiday(date) {
        return Some(name);
    }
    // 振替休日 (since 1973; "the next day that is not a holiday" since 2007): the
    // day after a run of holidays that began on a Sunday.
    if date.weekday() != Weekday::Sun {
        let mut d = date;
        while let Some(prev) = d.pred_opt() {
            if base_holiday(prev).is_none() {
                break;
            }
            if prev.weekday() == Weekday::Sun {
                return Some("振替休日");
            }
            d = prev;
        }
    }
    // 国民の休日: sandwiched between two holidays (not a Sunday, which is a day off
    // anyway). The neighbours count only as base holidays: a substitute holiday never
    // makes one, and the law's two cases (5/4 before 2007, September) need none.
    if date.weekday() != Weekday::Sun
        && let (Some(prev), Some(next)) = (date.pred_opt(), date.succ_opt())
        && base_holiday(prev).is_some()
        && base_holiday(next).is_some()
    {
        return Some("国民の休日");
    }
    None
}

/// Whether `date` is a national holiday (including 振替休日 and 国民の休日).
pub fn is_holiday(date: NaiveDate) -> bool {
    holiday_name(date).is_some()
}

/// Whether `date` falls in the year-end closure of public offices (12/29–1/3).
pub fn is_year_end_closure(date: NaiveDate) -> bool {
    matches!((date.month(), date.day()), (12, 29..=31) | (1, 1..=3))
}

/// Whether the desk is open on `date`: not a Saturday or Sunday, not a national
/// holiday, not in the year-end closure.
pub fn is_business_day(date: NaiveDate) -> bool {
    !matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
        && !is_holiday(date)
        && !is_year_end_closure(date)
}

/// The `n`-th business day after `date` (`date` itself never counts; `n = 0` gives
/// `date`).
pub fn add_business_days(date: NaiveDate, n: u32) -> NaiveDate {
    let mut d = date;
    let mut left = n;
    while left > 0 {
        d = d.succ_opt().unwrap_or(d);
        if is_business_day(d) {
            left -= 1;
        }
    }
    d
}

/// The `n`-th business day before `date` (`date` itself never counts).
pub fn sub_business_days(date: NaiveDate, n: u32) -> NaiveDate {
    let mut d = date;
    let mut left = n;
    while left > 0 {
        d = d.pred_opt().unwrap_or(d);
        if is_business_day(d) {
            left -= 1;
        }
    }
    d
}

/// The last business day before `date`.
pub fn previous_business_day(date: NaiveDate) -> NaiveDate {
    sub_business_days(date, 1)
}

/// Every national holiday of `year`, in order, with its name.
pub fn holidays_of(year: i32) -> Vec<(NaiveDate, &'static str)> {
    let Some(first) = NaiveDate::from_ymd_opt(year, 1, 1) else {
        return Vec::new();
    };
    first
        .iter_days()
        .take_while(|d| d.year() == year)
        .filter_map(|d| holiday_name(d).map(|n| (d, n)))
        .collect()
}

fn ymd(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(y, m, d)
}

/// The `n`-th Monday of a month.
fn nth_monday(year: i32, month: u32, n: u8) -> Option<NaiveDate> {
    NaiveDate::from_weekday_of_month_opt(year, month, Weekday::Mon, n)
}

/// 春分日 (vernal equinox day), March.
fn vernal_equinox(year: i32) -> u32 {
    equinox(year, 20.8431)
}

/// 秋分日 (autumnal equinox day), September.
fn autumnal_equinox(year: i32) -> u32 {
    equinox(year, 23.2488)
}

/// The standard approximation, valid for 1980–2099.
fn equinox(year: i32, base: f64) -> u32 {
    let y = f64::from(year - 1980);
    let day = base + 0.242194 * y - (y / 4.0).floor();
    day.floor() as u32
}

/// A holiday by the calendar alone: no substitute, no sandwiched day.
fn base_holiday(date: NaiveDate) -> Option<&'static str> {
    let y = date.year();
    let is = |m: u32, d: u32| ymd(y, m, d) == Some(date);
    let monday = |m: u32, n: u8| nth_monday(y, m, n) == Some(date);

    // The one-off days of the accession (2019) and the Olympics (2020, 2021).
    match (y, date.month(), date.day()) {
        (2019, 5, 1) => return Some("天皇の即位の日"),
        (2019, 10, 22) => return Some("即位礼正殿の儀の行われる日"),
        // 4/30 and 5/2 of 2019 were 国民の休日 by the sandwich rule, below.
        _ => {}
    }

    if is(1, 1) {
        return Some("元日");
    }
    if monday(1, 2) {
        return Some("成人の日");
    }
    if is(2, 11) {
        return Some("建国記念の日");
    }
    if y >= 2020 && is(2, 23) {
        return Some("天皇誕生日");
    }
    if y <= 2018 && is(12, 23) {
        return Some("天皇誕生日");
    }
    if is(3, vernal_equinox(y)) {
        return Some("春分の日");
    }
    if is(4, 29) {
        return Some(if y >= 2007 {
            "昭和の日"
        } else {
            "みどりの日"
        });
    }
    if is(5, 3) {
        return Some("憲法記念日");
    }
    if y >= 2007 && is(5, 4) {
        return Some("みどりの日");
    }
    if is(5, 5) {
        return Some("こどもの日");
    }
    let marine = match y {
        2020 => is(7, 23),
        2021 => is(7, 22),
        _ if y >= 2003 => monday(7, 3),
        _ => is(7, 20),
    };
    if marine {
        return Some("海の日");
    }
    let mountain = match y {
        2020 => is(8, 10),
        2021 => is(8, 8),
        _ => y >= 2016 && is(8, 11),
    };
    if mountain {
        return Some("山の日");
    }
    let aged = if y >= 2003 { monday(9, 3) } else { is(9, 15) };
    if aged {
        return Some("敬老の日");
    }
    if is(9, autumnal_equinox(y)) {
        return Some("秋分の日");
    }
    match y {
        2020 if is(7, 24) => return Some("スポーツの日"),
        2021 if is(7, 23) => return Some("スポーツの日"),
        2020 | 2021 => {}
        _ if monday(10, 2) => {
            return Some(if y >= 2020 {
                "スポーツの日"
            } else {
                "体育の日"
            });
        }
        _ => {}
    }
    if is(11, 3) {
        return Some("文化の日");
    }
    if is(11, 23) {
        return Some("勤労感謝の日");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn dates(year: i32) -> Vec<String> {
        holidays_of(year)
            .into_iter()
            .map(|(d, _)| d.format("%m-%d").to_string())
            .collect()
    }

    /// The lists the Cabinet Office publishes (内閣府「国民の祝日について」).
    #[test]
    fn the_published_holidays_of_recent_years() {
        assert_eq!(
            dates(2019),
            [
                "01-01", "01-14", "02-11", "03-21", "04-29", "04-30", "05-01", "05-02", "05-03",
                "05-04", "05-05", "05-06", "07-15", "08-11", "08-12", "09-16", "09-23", "10-14",
                "10-22", "11-03", "11-04", "11-23"
            ]
        );
        assert_eq!(
            dates(2020),
            [
                "01-01", "01-13", "02-11", "02-23", "02-24", "03-20", "04-29", "05-03", "05-04",
                "05-05", "05-06", "07-23", "07-24", "08-10", "09-21", "09-22", "11-03", "11-23"
            ]
        );
        assert_eq!(
            dates(2021),
            [
                "01-01", "01-11", "02-11", "02-23", "03-20", "04-29", "05-03", "05-04", "05-05",
                "07-22", "07-23", "08-08", "08-09", "09-20", "09-23", "11-03", "11-23"
            ]
        );
        assert_eq!(
            dates(2024),
            [
                "01-01", "01-08", "02-11", "02-12", "02-23", "03-20", "04-29", "05-03", "05-04",
                "05-05", "05-06", "07-15", "08-11", "08-12", "09-16", "09-22", "09-23", "10-14",
                "11-03", "11-04", "11-23"
            ]
        );
        assert_eq!(
            dates(2025),
            [
                "01-01", "01-13", "02-11", "02-23", "02-24", "03-20", "04-29", "05-03", "05-04",
                "05-05", "05-06", "07-21", "08-11", "09-15", "09-23", "10-13", "11-03", "11-23",
                "11-24"
            ]
        );
        assert_eq!(
            dates(2026),
            [
                "01-01", "01-12", "02-11", "02-23", "03-20", "04-29", "05-03", "05-04", "05-05",
                "05-06", "07-20", "08-11", "09-21", "09-22", "09-23", "10-12", "11-03", "11-23"
            ]
        );
        assert_eq!(
            dates(2027),
            [
                "01-01", "01-11", "02-11", "02-23", "03-21", "03-22", "04-29", "05-03", "05-04",
                "05-05", "07-19", "08-11", "09-20", "09-23", "10-11", "11-03", "11-23"
            ]
        );
    }

    #[test]
    fn names_say_which_holiday_it_is() {
        assert_eq!(holiday_name(d("2026-09-22")), Some("国民の休日"));
        assert_eq!(holiday_name(d("2026-05-06")), Some("振替休日"));
        assert_eq!(holiday_name(d("2026-10-12")), Some("スポーツの日"));
        assert_eq!(holiday_name(d("2019-10-14")), Some("体育の日"));
        assert_eq!(holiday_name(d("2027-03-21")), Some("春分の日"));
        assert_eq!(holiday_name(d("2026-12-01")), None);
    }

    #[test]
    fn business_days_skip_weekends_holidays_and_the_year_end() {
        // Tuesday 2026-12-01 is a plain weekday.
        assert!(is_business_day(d("2026-12-01")));
        assert!(!is_business_day(d("2026-12-05")), "Saturday");
        assert!(!is_business_day(d("2026-12-06")), "Sunday");
        assert!(!is_business_day(d("2026-11-23")), "勤労感謝の日 (Monday)");
        assert!(!is_business_day(d("2026-12-29")), "year-end closure");
        assert!(!is_business_day(d("2027-01-04").pred_opt().unwrap()), "1/3");
        assert!(is_business_day(d("2027-01-04")), "offices open on the 4th");
        assert!(is_business_day(d("2026-12-28")));

        // Three business days after Friday 2026-11-20 skip the weekend and 11/23.
        assert_eq!(add_business_days(d("2026-11-20"), 3), d("2026-11-26"));
        assert_eq!(sub_business_days(d("2026-11-26"), 3), d("2026-11-20"));
        assert_eq!(previous_business_day(d("2027-01-04")), d("2026-12-28"));
        assert_eq!(add_business_days(d("2026-12-01"), 0), d("2026-12-01"));
        // Golden Week 2026: 4/29 (Wed), 5/3–5/6.
        assert_eq!(add_business_days(d("2026-05-01"), 1), d("2026-05-07"));
    }

    #[test]
    fn every_year_of_the_century_has_its_holidays_and_no_monday_is_doubled() {
        for y in 2000..2100 {
            let h = holidays_of(y);
            assert!((15..=22).contains(&h.len()), "{y}: {} holidays", h.len());
            let march = vernal_equinox(y);
            let september = autumnal_equinox(y);
            assert!((19..=22).contains(&march), "{y}: 春分 {march}");
            assert!((21..=24).contains(&september), "{y}: 秋分 {september}");
        }
    }
}
