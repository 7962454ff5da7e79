//! The desk's calendar: Japanese public holidays (国民の祝日) and the city office's
//! business days (開庁日), computed rather than looked up, so that no yearly data
//! update is needed.
//!
//! The public holidays follow 国民の祝日に関する法律 as amended up to 2018 (天皇誕生日
//! on 2月23日 from 2020, スポーツの日), with the one-off dates of 2019–2021 (the
//! enthronement, the Olympic moves). 春分の日 and 秋分の日 are fixed each February by
//! the Cabinet Office from the National Astronomical Observatory's ephemeris; the
//! approximation used here (the same as most calendar libraries) agrees with every
//! announced date from 1980 to 2099. Outside 2000–2099 the calendar knows weekends
//! and fixed dates only.
//!
//! A business day is a day the city office is open: not a Saturday, a Sunday or a
//! public holiday, and not one of the year-end closing days, 12月29日 to 1月3日
//! (行政機関の休日に関する法律, which municipal ordinances follow).

use chrono::{Datelike, Days, NaiveDate, Weekday};

/// The name of the public holiday on `d`, if it is one (振替休日 and 国民の休日 included).
pub fn holiday_name(d: NaiveDate) -> Option<&'static str> {
    if let Some(name) = named_holiday(d) {
        return Some(name);
    }
    if d.year() < 1973 {
        return None;
    }
    // 振替休日: a holiday that falls on a Sunday moves to the next day that is not a
    // holiday (since 2007 it may skip several, as in Golden Week).
    if d.weekday() != Weekday::Sun {
        let mut prev = d.pred_opt()?;
        while named_holiday(prev).is_some() {
            if prev.weekday() == Weekday::Sun {
                return Some("振替休日");
            }
            prev = prev.pred_opt()?;
        }
    }
    // 国民の休日: an ordinary day between two holidays (the September "silver week").
    if d.year() >= 1986
        && d.weekday() != Weekday::Sun
        && named_holiday(d.pred_opt()?).is_some()
        && named_holiday(d.succ_opt()?).is_some()
    {
        return Some("国民の休日");
    }
    None
}

/// Whether `d` is a public holiday.
pub fn is_holiday(d: NaiveDate) -> bool {
    holiday_name(d).is_some()
}

/// Whether the city office is open on `d` (see the module docs).
pub fn is_business_day(d: NaiveDate) -> bool {
    let year_end = matches!((d.month(), d.day()), (12, 29..=31) | (1, 1..=3));
    !matches!(d.weekday(), Weekday::Sat | Weekday::Sun) && !year_end && !is_holiday(d)
}

/// The `n`-th business day after `d` (`d` itself does not count).
pub fn add_business_days(d: NaiveDate, n: u32) -> NaiveDate {
    let mut day = d;
    let mut left = n;
    while left > 0 {
        day = day.checked_add_days(Days::new(1)).unwrap_or(day);
        if is_business_day(day) {
            left -= 1;
        }
    }
    day
}

fn nth_monday(year: i32, month: u32, n: u8) -> Option<NaiveDate> {
    NaiveDate::from_weekday_of_month_opt(year, month, Weekday::Mon, n)
}

/// 春分日 (day of March), for 1980–2099.
fn vernal_equinox(year: i32) -> Option<u32> {
    equinox(year, 20.8431)
}

/// 秋分日 (day of September), for 1980–2099.
fn autumnal_equinox(year: i32) -> Option<u32> {
    equinox(year, 23.2488)
}

fn equinox(year: i32, base: f64) -> Option<u32> {
    if !(1980..=2099).contains(&year) {
        return None;
    }
    let y = f64::from(year - 1980);
    let day = base + 0.242194 * y - (y / 4.0).floor();
    Some(day.floor() as u32)
}

/// Holidays named by the law, before substitutes and sandwiched days.
fn named_holiday(d: NaiveDate) -> Option<&'static str> {
    let (y, m, day) = (d.year(), d.month(), d.day());
    if !(2000..=2099).contains(&y) {
        return match (m, day) {
            (1, 1) => Some("元日"),
            (2, 11) => Some("建国記念の日"),
            (11, 3) => Some("文化の日"),
            (11, 23) => Some("勤労感謝の日"),
            _ => None,
        };
    }
    let is = |date: Option<NaiveDate>| date == Some(d);
    // One-off dates set by special laws.
    match (y, m, day) {
        (2019, 5, 1) => return Some("天皇の即位の日"),
        (2019, 10, 22) => return Some("即位礼正殿の儀の行われる日"),
        _ => {}
    }
    let name = match m {
        1 if day == 1 => "元日",
        1 if is(nth_monday(y, 1, 2)) => "成人の日",
        2 if day == 11 => "建国記念の日",
        2 if day == 23 && y >= 2020 => "天皇誕生日",
        3 if Some(day) == vernal_equinox(y) => "春分の日",
        4 if day == 29 => {
            if y >= 2007 {
                "昭和の日"
            } else {
                "みどりの日"
            }
        }
        5 if day == 3 => "憲法記念日",
        5 if day == 4 && y >= 2007 => "みどりの日",
        5 if day == 5 => "こどもの日",
        7 if y == 2020 && day == 23 => "海の日",
        7 if y == 2021 && day == 22 => "海の日",
        7 if y == 2020 && day == 24 => "スポーツの日",
        7 if y == 2021 && day == 23 => "スポーツの日",
        7 if !(2020..=2021).contains(&y) && y >= 2003 && is(nth_monday(y, 7, 3)) => "海の日",
        7 if y < 2003 && day == 20 => "海の日",
        8 if y == 2020 && day == 10 => "山の日",
        8 if y == 2021 && day == 8 => "山の日",
        8 if y >= 2016 && !(2020..=2021).contains(&y) && day == 11 => "山の日",
        9 if y >= 2003 && is(nth_monday(y, 9, 3)) => "敬老の日",
        9 if y < 2003 && day == 15 => "敬老の日",
        9 if Some(day) == autumnal_equinox(y) => "秋分の日",
        10 if !(2020..=2021).contains(&y) && is(nth_monday(y, 10, 2)) => {
            if y >= 2020 {
                "スポーツの日"
            } else {
                "体育の日"
            }
        }
        11 if day == 3 => "文化の日",
        11 if day == 23 => "勤労感謝の日",
        12 if day == 23 && (1989..=2018).contains(&y) => "天皇誕生日",
        _ => return None,
    };
    Some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn holidays_of(year: i32) -> Vec<String> {
        let mut day = NaiveDate::from_ymd_opt(year, 1, 1).unwrap();
        let mut out = Vec::new();
        while day.year() == year {
            if let Some(name) = holiday_name(day) {
                out.push(format!("{} {name}", day.format("%m-%d")));
            }
            day = day.succ_opt().unwrap();
        }
        out
    }

    /// The Cabinet Office's published lists (内閣府「国民の祝日について」).
    #[test]
    fn the_published_holidays_of_2019_to_2027() {
        let published: &[(i32, &[&str])] = &[
            (
                2019,
                &[
                    "01-01 元日",
                    "01-14 成人の日",
                    "02-11 建国記念の日",
                    "03-21 春分の日",
                    "04-29 昭和の日",
                    "04-30 国民の休日",
                    "05-01 天皇の即位の日",
                    "05-02 国民の休日",
                    "05-03 憲法記念日",
                    "05-04 みどりの日",
                    "05-05 こどもの日",
                    "05-06 振替休日",
                    "07-15 海の日",
                    "08-11 山の日",
                    "08-12 振替休日",
                    "09-16 敬老の日",
                    "09-23 秋分の日",
                    "10-14 体育の日",
                    "10-22 即位礼正殿の儀の行われる日",
                    "11-03 文化の日",
                    "11-04 振替休日",
                    "11-23 勤労感謝の日",
                ],
            ),
            (
                2021,
                &[
                    "01-01 元日",
                    "01-11 成人の日",
                    "02-11 建国記念の日",
                    "02-23 天皇誕生日",
                    "03-20 春分の日",
                    "04-29 昭和の日",
                    "05-03 憲法記念日",
                    "05-04 みどりの日",
                    "05-05 こどもの日",
                    "07-22 海の日",
                    "07-23 スポーツの日",
                    "08-08 山の日",
                    "08-09 振替休日",
                    "09-20 敬老の日",
                    "09-23 秋分の日",
                    "11-03 文化の日",
                    "11-23 勤労感謝の日",
                ],
            ),
            (
                2025,
                &[
                    "01-01 元日",
                    "01-13 成人の日",
                    "02-11 建国記念の日",
                    "02-23 天皇誕生日",
                    "02-24 振替休日",
                    "03-20 春分の日",
                    "04-29 昭和の日",
                    "05-03 憲法記念日",
                    "05-04 みどりの日",
                    "05-05 こどもの日",
                    "05-06 振替休日",
                    "07-21 海の日",
                    "08-11 山の日",
                    "09-15 敬老の日",
                    "09-23 秋分の日",
                    "10-13 スポーツの日",
                    "11-03 文化の日",
                    "11-23 勤労感謝の日",
                    "11-24 振替休日",
                ],
            ),
            (
                2026,
                &[
                    "01-01 元日",
                    "01-12 成人の日",
                    "02-11 建国記念の日",
                    "02-23 天皇誕生日",
                    "03-20 春分の日",
                    "04-29 昭和の日",
                    "05-03 憲法記念日",
                    "05-04 みどりの日",
                    "05-05 こどもの日",
                    "05-06 振替休日",
                    "07-20 海の日",
                    "08-11 山の日",
                    "09-21 敬老の日",
                    "09-22 国民の休日",
                    "09-23 秋分の日",
                    "10-12 スポーツの日",
                    "11-03 文化の日",
                    "11-23 勤労感謝の日",
                ],
            ),
            (
                2027,
                &[
                    "01-01 元日",
                    "01-11 成人の日",
                    "02-11 建国記念の日",
                    "02-23 天皇誕生日",
                    "03-21 春分の日",
                    "03-22 振替休日",
                    "04-29 昭和の日",
                    "05-03 憲法記念日",
                    "05-04 みどりの日",
                    "05-05 こどもの日",
                    "07-19 海の日",
                    "08-11 山の日",
                    "09-20 敬老の日",
                    "09-23 秋分の日",
                    "10-11 スポーツの日",
                    "11-03 文化の日",
                    "11-23 勤労感謝の日",
                ],
            ),
        ];
        for (year, expected) in published {
            assert_eq!(holidays_of(*year), *expected, "{year}");
        }
    }

    #[test]
    fn equinoxes_match_the_announced_days() {
        for (year, spring, autumn) in [
            (2000, 20, 23),
            (2012, 20, 22),
            (2016, 20, 22),
            (2024, 20, 22),
            (2028, 20, 22),
            (2030, 20, 23),
            (2044, 20, 22),
        ] {
            assert_eq!(vernal_equinox(year), Some(spring), "{year} spring");
            assert_eq!(autumnal_equinox(year), Some(autumn), "{year} autumn");
        }
    }

    #[test]
    fn business_days_skip_weekends_holidays_and_the_year_end() {
        // Friday 2026-12-25 + 3: Mon 28, the office is closed 29 Dec – 3 Jan, then
        // Mon 4 and Tue 5 Jan 2027.
        assert_eq!(add_business_days(d("2026-12-25"), 3), d("2027-01-05"));
        // Thursday before Golden Week 2026: Fri 5/1, then 5/2–5/6 are off, Thu 5/7.
        assert_eq!(add_business_days(d("2026-04-30"), 2), d("2026-05-07"));
        // A Monday: Tue, Wed, Thu.
        assert_eq!(add_business_days(d("2026-12-07"), 3), d("2026-12-10"));
        // Silver week 2026: Fri 9/18 + 1 is Thu 9/24.
        assert_eq!(add_business_days(d("2026-09-18"), 1), d("2026-09-24"));
        assert!(!is_business_day(d("2026-12-29")) && !is_business_day(d("2027-01-02")));
        assert!(is_business_day(d("2026-12-28")));
        assert_eq!(add_business_days(d("2026-12-07"), 0), d("2026-12-07"));
    }
}
