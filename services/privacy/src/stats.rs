//! `kujira privacy stats`: how many persons the service holds data on, for the
//! register of personal-information files (個人情報ファイル簿), and how many were erased,
//! by fiscal year (April–March, in the city's time zone).

use chrono::{DateTime, Datelike, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use sqlx::Row;

/// One fiscal year's figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct YearFigures {
    /// The fiscal year that starts in April of this year.
    pub fiscal_year: i32,
    /// Persons first seen in the year.
    pub new_persons: i64,
    /// Persons erased in the year, on request or by retention.
    pub erased_on_request: i64,
    pub erased_by_retention: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Persons whose data the service holds now (a data key exists).
    pub held: i64,
    pub erased: i64,
    pub years: Vec<YearFigures>,
}

fn fiscal_year(at: DateTime<Utc>, tz: Tz) -> i32 {
    let local = at.with_timezone(&tz);
    if local.month() >= 4 {
        local.year()
    } else {
        local.year() - 1
    }
}

pub async fn stats(pool: &sqlx::PgPool, tz: Tz) -> anyhow::Result<Stats> {
    let held: i64 = sqlx::query_scalar("SELECT count(*) FROM person_keys")
        .fetch_one(pool)
        .await?;
    let mut years: std::collections::BTreeMap<i32, YearFigures> = Default::default();
    let year = |years: &mut std::collections::BTreeMap<i32, YearFigures>, fy| {
        years.entry(fy).or_insert(YearFigures {
            fiscal_year: fy,
            new_persons: 0,
            erased_on_request: 0,
            erased_by_retention: 0,
        });
    };
    for r in sqlx::query("SELECT first_seen_at FROM privacy_persons")
        .fetch_all(pool)
        .await?
    {
        let fy = fiscal_year(r.try_get("first_seen_at")?, tz);
        year(&mut years, fy);
        if let Some(y) = years.get_mut(&fy) {
            y.new_persons += 1;
        }
    }
    let mut erased = 0;
    for r in sqlx::query("SELECT erased_at, rule FROM erasure_records")
        .fetch_all(pool)
        .await?
    {
        erased += 1;
        let fy = fiscal_year(r.try_get("erased_at")?, tz);
        year(&mut years, fy);
        let by_retention = r
            .try_get::<Option<String>, _>("rule")?
            .is_some_and(|rule| rule.starts_with("retention:"));
        if let Some(y) = years.get_mut(&fy) {
            if by_retention {
                y.erased_by_retention += 1;
            } else {
                y.erased_on_request += 1;
            }
        }
    }
    Ok(Stats {
        held,
        erased,
        years: years.into_values().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fiscal_years_turn_on_april_first_in_the_city() {
        let tz = chrono_tz::Asia::Tokyo;
        // 2027-03-31 23:30 in Tokyo is still FY 2026; 2027-04-01 00:30 is FY 2027.
        assert_eq!(
            fiscal_year("2027-03-31T14:30:00Z".parse().unwrap(), tz),
            2026
        );
        assert_eq!(
            fiscal_year("2027-03-31T15:30:00Z".parse().unwrap(), tz),
            2027
        );
    }
}
