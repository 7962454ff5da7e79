//! `KUJIRA_RETENTION`: how long a person's data is kept after their last activity.

use chrono::{DateTime, Months, Utc};

/// A retention period: `5y` (the default), `18m`, `400d`, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    Off,
    Months(u32),
    Days(u32),
}

impl Retention {
    pub const DEFAULT: Retention = Retention::Months(60);

    /// Reads `5y`, `18m`, `400d` or `off`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("off") {
            return Ok(Self::Off);
        }
        let bad = || format!("{s:?} is not a period like 5y, 18m, 400d or off");
        let (n, unit) = s.split_at(s.len().saturating_sub(1));
        let n: u32 = n.parse().map_err(|_| bad())?;
        if n == 0 {
            return Err(bad());
        }
        match unit {
            "y" => Ok(Self::Months(n.checked_mul(12).ok_or_else(bad)?)),
            "m" => Ok(Self::Months(n)),
            "d" => Ok(Self::Days(n)),
            _ => Err(bad()),
        }
    }

    /// Data whose last activity is before this moment is past its retention.
    pub fn cutoff(self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Self::Off => None,
            Self::Months(m) => now.checked_sub_months(Months::new(m)),
            Self::Days(d) => Some(now - chrono::Duration::days(i64::from(d))),
        }
    }

    /// The name erasures record as their rule: `retention:5y`.
    pub fn rule(self) -> String {
        format!("retention:{self}")
    }
}

impl std::fmt::Display for Retention {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Self::Off => f.write_str("off"),
            Self::Months(m) if m % 12 == 0 => write!(f, "{}y", m / 12),
            Self::Months(m) => write!(f, "{m}m"),
            Self::Days(d) => write!(f, "{d}d"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_read_and_print_alike() {
        for s in ["5y", "18m", "400d", "off"] {
            assert_eq!(Retention::parse(s).unwrap().to_string(), s);
        }
        assert_eq!(Retention::parse("12m").unwrap().to_string(), "1y");
        for bad in ["", "5", "0y", "y", "5w", "-1y"] {
            assert!(Retention::parse(bad).is_err(), "{bad}");
        }
        let now: DateTime<Utc> = "2031-03-31T00:00:00Z".parse().unwrap();
        assert_eq!(
            Retention::DEFAULT.cutoff(now).unwrap(),
            "2026-03-31T00:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(Retention::Off.cutoff(now), None);
        assert_eq!(Retention::DEFAULT.rule(), "retention:5y");
    }
}
