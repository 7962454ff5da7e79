//! The figures of one fiscal year (年度: April 1 of N to March 31 of N+1, in the
//! city's time zone), month by month, beside the same months of the year before
//! and the year's targets. Read from the `desk.kpi` tables and the mail outbox.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use sqlx::{PgPool, Row as _};

use super::metrics::{self, FORMS, Make, MetricDef, Unit};

/// The fiscal year a moment falls in.
pub fn fiscal_year_of(at: DateTime<Utc>, tz: Tz) -> i32 {
    let d = at.with_timezone(&tz).date_naive();
    if d.month() >= 4 {
        d.year()
    } else {
        d.year() - 1
    }
}

/// The first days of the year's twelve months, April first.
pub fn months(fy: i32) -> [NaiveDate; 12] {
    std::array::from_fn(|i| {
        let m = 4 + i as u32;
        let (y, m) = if m > 12 { (fy + 1, m - 12) } else { (fy, m) };
        NaiveDate::from_ymd_opt(y, m, 1).unwrap_or_default()
    })
}

/// Midnight of April 1 of `fy`, in `tz`, as an instant.
pub fn fy_start(fy: i32, tz: Tz) -> DateTime<Utc> {
    let d = NaiveDate::from_ymd_opt(fy, 4, 1)
        .unwrap_or_default()
        .and_hms_opt(0, 0, 0)
        .unwrap_or_default();
    tz.from_local_datetime(&d)
        .earliest()
        .map_or_else(|| Utc.from_utc_datetime(&d), |t| t.with_timezone(&Utc))
}

fn index(fy: i32, month: NaiveDate) -> Option<usize> {
    let i = (month.year() - fy) * 12 + month.month() as i32 - 4;
    (0..12).contains(&i).then_some(i as usize)
}

type Series = HashMap<String, [f64; 12]>;

/// One figure of the year.
#[derive(Debug, Clone)]
pub struct Row {
    pub def: &'static MetricDef,
    /// This year's months; `None` for months still to come (or a rate without a
    /// denominator).
    pub this: [Option<f64>; 12],
    /// The same months of the year before.
    pub last: [Option<f64>; 12],
    /// The year so far (sum, last month's stock, or the rate over the months).
    pub total: Option<f64>,
    /// The year before over the same months.
    pub last_total: Option<f64>,
    pub target: Option<f64>,
    /// total / target, in percent.
    pub achievement: Option<f64>,
}

/// Everything the dashboard and the CSV show for one year.
#[derive(Debug, Clone)]
pub struct Figures {
    pub fy: i32,
    pub months: [NaiveDate; 12],
    /// How many months have begun (12 for a past year, 0 for a future one).
    pub shown: usize,
    pub rows: Vec<Row>,
    /// Moves between phases in the year so far: (from, to, this year, year before).
    pub moves: Vec<(String, String, i64, i64)>,
    /// The funnel per form in the year so far: (form, views, confirms, completions).
    pub funnel: Vec<(&'static str, i64, i64, i64)>,
}

impl Figures {
    pub fn row(&self, key: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.def.key == key)
    }
}

async fn flows(
    pool: &PgPool,
    from: NaiveDate,
    to: NaiveDate,
) -> sqlx::Result<Vec<(String, NaiveDate, i64)>> {
    let rows = sqlx::query(
        "SELECT metric, month, n FROM kpi_monthly \
         WHERE month >= $1 AND month < $2 AND metric NOT LIKE 'stock:%'",
    )
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("metric")?, r.try_get("month")?, r.try_get("n")?)))
        .collect()
}

async fn stocks(pool: &PgPool, to: NaiveDate) -> sqlx::Result<Vec<(String, NaiveDate, i64)>> {
    let rows = sqlx::query(
        "SELECT metric, month, n FROM kpi_monthly \
         WHERE metric LIKE 'stock:%' AND month < $1 ORDER BY month",
    )
    .bind(to)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("metric")?, r.try_get("month")?, r.try_get("n")?)))
        .collect()
}

/// Per tour that has started (and was not cancelled): its month and its figures.
async fn tours(
    pool: &PgPool,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    now: DateTime<Utc>,
    tz: Tz,
) -> sqlx::Result<Vec<(NaiveDate, [i64; 7])>> {
    let rows = sqlx::query(
        "SELECT t.starts_at, \
           bool_or(p.attended IS NOT NULL) AS checked, \
           count(*) FILTER (WHERE p.status = 'confirmed') AS conf_parties, \
           coalesce(sum(p.adults + p.children) FILTER (WHERE p.status = 'confirmed'), 0) AS conf_people, \
           count(*) FILTER (WHERE p.status = 'confirmed' AND p.attended) AS att_parties, \
           coalesce(sum(p.adults + p.children) FILTER (WHERE p.status = 'confirmed' AND p.attended), 0) AS att_people, \
           count(*) FILTER (WHERE p.status = 'confirmed' AND p.attended IS NOT NULL) AS checked_parties, \
           count(p.satisfaction) AS fb_n, coalesce(sum(p.satisfaction), 0) AS fb_sum \
         FROM kpi_tours t LEFT JOIN kpi_tour_parties p ON p.tour_id = t.tour_id \
         WHERE NOT t.cancelled AND t.starts_at >= $1 AND t.starts_at < $2 AND t.starts_at <= $3 \
         GROUP BY t.tour_id, t.starts_at",
    )
    .bind(from)
    .bind(to)
    .bind(now)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            let starts: DateTime<Utc> = r.try_get("starts_at")?;
            let checked: Option<bool> = r.try_get("checked")?;
            let (parties, people) = if checked.unwrap_or(false) {
                (
                    r.try_get::<i64, _>("att_parties")?,
                    r.try_get::<i64, _>("att_people")?,
                )
            } else {
                (
                    r.try_get::<i64, _>("conf_parties")?,
                    r.try_get::<i64, _>("conf_people")?,
                )
            };
            Ok((
                super::projection::month_of(starts, tz),
                [
                    parties,
                    people,
                    r.try_get("att_parties")?,
                    r.try_get("checked_parties")?,
                    r.try_get("fb_sum")?,
                    r.try_get("fb_n")?,
                    0,
                ],
            ))
        })
        .collect()
}

/// The cohort figures of the cases opened from `from` to before `to`.
async fn cohort(
    pool: &PgPool,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> sqlx::Result<HashMap<&'static str, f64>> {
    // A person "took a tour" when they hold a confirmed place, on a tour that was
    // not cancelled, and were not recorded as a no-show: desk.kpi keeps the size
    // of that party on the person's cases (`tour_people`). People: the household of
    // the move, else the tour party, else the order-made request's party, else 1.
    // Read from `kpi_cases_cohort` alone (an index-only scan).
    let r = sqlx::query(
        "SELECT count(*) AS cases, \
           coalesce(sum(coalesce(move_people::int, tour_people::int, request_people::int, 1)), 0) AS cases_people, \
           count(*) FILTER (WHERE tour_people IS NOT NULL) AS toured, \
           coalesce(sum(tour_people::int) FILTER (WHERE tour_people IS NOT NULL), 0) AS toured_people, \
           count(*) FILTER (WHERE reached_decided) AS decided, \
           coalesce(sum(coalesce(move_people::int, tour_people::int, request_people::int, 1)) \
             FILTER (WHERE reached_decided), 0) AS decided_people, \
           count(*) FILTER (WHERE move_in IS NOT NULL) AS moved, \
           coalesce(sum(coalesce(move_people::int, 0)) FILTER (WHERE move_in IS NOT NULL), 0) AS moved_people \
         FROM kpi_cases WHERE opened_at >= $1 AND opened_at < $2 AND NOT merged",
    )
    .bind(from)
    .bind(to)
    .fetch_one(pool)
    .await?;
    let mut out = HashMap::new();
    for k in [
        "cases",
        "cases_people",
        "toured",
        "toured_people",
        "decided",
        "decided_people",
        "moved",
        "moved_people",
    ] {
        out.insert(k, r.try_get::<i64, _>(k)? as f64);
    }
    Ok(out)
}

/// Computes the figures of `fy`, with `targets` (metric → target) and the year
/// before, as of `now`.
pub async fn compute(
    pool: &PgPool,
    tz: Tz,
    fy: i32,
    now: DateTime<Utc>,
    targets: &std::collections::BTreeMap<String, f64>,
) -> anyhow::Result<Figures> {
    let this_months = months(fy);
    let now_month = super::projection::month_of(now, tz);
    let shown = this_months.iter().filter(|m| **m <= now_month).count();
    let (last_from, this_from, this_to) =
        (fy_start(fy - 1, tz), fy_start(fy, tz), fy_start(fy + 1, tz));
    let (d_last, d_to) = (months(fy - 1)[0], months(fy + 1)[0]);

    // The queries are independent: they run at once, each on its own connection, so
    // that the page waits for the slowest (the cohorts) rather than for their sum.
    let (flows, stocks, tours, mails, cohort_this, cohort_last) = tokio::try_join!(
        flows(pool, d_last, d_to),
        stocks(pool, d_to),
        tours(pool, last_from, this_to, now, tz),
        kujira_scheduler::stats::mail_counts(pool, last_from, this_to, tz.name()),
        cohort(pool, this_from, this_to),
        cohort(pool, last_from, this_from),
    )?;

    let mut this: Series = HashMap::new();
    let mut last: Series = HashMap::new();
    let mut put = |key: &str, month: NaiveDate, n: f64| {
        if let Some(i) = index(fy, month) {
            this.entry(key.to_owned()).or_insert([0.0; 12])[i] += n;
        } else if let Some(i) = index(fy - 1, month) {
            last.entry(key.to_owned()).or_insert([0.0; 12])[i] += n;
        }
    };
    for (k, m, n) in flows {
        put(&k, m, n as f64);
    }
    // Stocks: the running sum of the changes up to each month's end.
    let mut running: HashMap<String, i64> = HashMap::new();
    let mut by_month: HashMap<(String, NaiveDate), i64> = HashMap::new();
    for (k, m, n) in stocks {
        let total = running.entry(k.clone()).or_default();
        *total += n;
        by_month.insert((k, m), *total);
    }
    for key in [
        "stock:gathering",
        "stock:considering",
        "stock:decided",
        "stock:moved",
        "stock:closed",
    ] {
        let mut level = 0i64;
        // Months with no change carry the level of the month before.
        let mut changes: Vec<(NaiveDate, i64)> = by_month
            .iter()
            .filter(|((k, _), _)| k == key)
            .map(|((_, m), v)| (*m, *v))
            .collect();
        changes.sort();
        let mut it = changes.into_iter().peekable();
        for month in months(fy - 1).into_iter().chain(months(fy)) {
            while let Some((m, v)) = it.peek().copied() {
                if m <= month {
                    level = v;
                    it.next();
                } else {
                    break;
                }
            }
            put(key, month, level as f64);
        }
    }
    for (month, v) in tours {
        for (k, n) in [
            ("tour_participant_parties", v[0]),
            ("tour_participants", v[1]),
            ("tour_attended", v[2]),
            ("tour_checked", v[3]),
            ("tour_feedback_sum", v[4]),
            ("tour_feedback_n", v[5]),
        ] {
            put(k, month, n as f64);
        }
    }
    for m in mails {
        put("emails_sent", m.month, m.sent as f64);
        put("emails_failed", m.month, m.failed as f64);
    }

    let rows = metrics::METRICS
        .iter()
        .map(|def| {
            let (this_v, total) = make(
                def,
                &this,
                shown,
                cohort_this.get(cohort_key(def)).copied(),
                fy <= fiscal_year_of(now, tz),
            );
            let (last_v, last_total) = make(
                def,
                &last,
                12,
                cohort_last.get(cohort_key(def)).copied(),
                true,
            );
            // The year before over the same months, for a fair comparison.
            let last_total = match def.make {
                Make::Cohort(_) => last_total,
                _ => make(def, &last, shown, None, true).1,
            };
            let target = targets.get(def.key).copied();
            let achievement = match (total, target) {
                (Some(t), Some(g)) if g > 0.0 => Some(t / g * 100.0),
                _ => None,
            };
            Row {
                def,
                this: this_v,
                last: last_v,
                total,
                last_total,
                target,
                achievement,
            }
        })
        .collect();

    let mut moves = Vec::new();
    for from in metrics::PHASES {
        for to in metrics::PHASES {
            if from == to {
                continue;
            }
            let key = format!("move:{from}:{to}");
            let sum =
                |s: &Series| s.get(&key).map_or(0.0, |v| v[..shown].iter().sum::<f64>()) as i64;
            let (a, b) = (sum(&this), sum(&last));
            if a != 0 || b != 0 {
                moves.push((from.to_owned(), to.to_owned(), a, b));
            }
        }
    }
    let funnel = FORMS
        .iter()
        .map(|f| {
            let sum = |k: &str| {
                this.get(&format!("{k}:{f}"))
                    .map_or(0.0, |v| v[..shown].iter().sum::<f64>()) as i64
            };
            let form: &'static str = f;
            (
                form,
                sum("funnel_views"),
                sum("funnel_confirms"),
                sum("funnel_completions"),
            )
        })
        .collect();
    Ok(Figures {
        fy,
        months: this_months,
        shown,
        rows,
        moves,
        funnel,
    })
}

fn cohort_key(def: &MetricDef) -> &'static str {
    match def.make {
        Make::Cohort(k) => k,
        _ => "",
    }
}

/// A figure's months (the first `shown`) and its year value.
fn make(
    def: &MetricDef,
    s: &Series,
    shown: usize,
    cohort: Option<f64>,
    begun: bool,
) -> ([Option<f64>; 12], Option<f64>) {
    let get = |k: &str, i: usize| s.get(k).map_or(0.0, |v| v[i]);
    let sum_of = |keys: &[&str], i: usize| keys.iter().map(|k| get(k, i)).sum::<f64>();
    let mut months = [None; 12];
    let total = match def.make {
        Make::Sum(keys) => {
            for (i, m) in months.iter_mut().enumerate().take(shown) {
                *m = Some(sum_of(keys, i));
            }
            (shown > 0).then(|| (0..shown).map(|i| sum_of(keys, i)).sum())
        }
        Make::Stock(key) => {
            for (i, m) in months.iter_mut().enumerate().take(shown) {
                *m = Some(get(key, i));
            }
            shown.checked_sub(1).map(|i| get(key, i))
        }
        Make::Rate(num, den) => {
            let rate = |n: f64, d: f64| (d > 0.0).then(|| n / d * 100.0);
            for (i, m) in months.iter_mut().enumerate().take(shown) {
                *m = rate(sum_of(num, i), sum_of(den, i));
            }
            let n: f64 = (0..shown).map(|i| sum_of(num, i)).sum();
            let d: f64 = (0..shown).map(|i| sum_of(den, i)).sum();
            rate(n, d)
        }
        Make::Mean(num, den) => {
            let mean = |n: f64, d: f64| (d > 0.0).then(|| n / d);
            for (i, m) in months.iter_mut().enumerate().take(shown) {
                *m = mean(get(num, i), get(den, i));
            }
            let n: f64 = (0..shown).map(|i| get(num, i)).sum();
            let d: f64 = (0..shown).map(|i| get(den, i)).sum();
            mean(n, d)
        }
        Make::Cohort(_) => cohort.filter(|_| begun),
    };
    (months, total)
}

/// A value as the CSV writes it, empty when there is none.
pub fn csv_value(unit: Unit, v: Option<f64>) -> String {
    v.map(|v| unit.plain(v)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fiscal_years_turn_on_april_first_in_tokyo() {
        let tz = chrono_tz::Asia::Tokyo;
        // 2027-03-31 23:59 JST is FY2026; 2027-04-01 00:00 JST is FY2027.
        let before: DateTime<Utc> = "2027-03-31T14:59:00Z".parse().unwrap();
        let after: DateTime<Utc> = "2027-03-31T15:00:00Z".parse().unwrap();
        assert_eq!(fiscal_year_of(before, tz), 2026);
        assert_eq!(fiscal_year_of(after, tz), 2027);
        assert_eq!(fy_start(2027, tz), after);
        assert_eq!(
            months(2026)[0],
            NaiveDate::from_ymd_opt(2026, 4, 1).unwrap()
        );
        assert_eq!(
            months(2026)[11],
            NaiveDate::from_ymd_opt(2027, 3, 1).unwrap()
        );
        assert_eq!(
            index(2026, NaiveDate::from_ymd_opt(2027, 3, 1).unwrap()),
            Some(11)
        );
        assert_eq!(
            index(2026, NaiveDate::from_ymd_opt(2027, 4, 1).unwrap()),
            None
        );
    }
}
