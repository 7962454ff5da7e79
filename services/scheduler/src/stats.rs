//! Statistics of the outbox for the desk's KPI: no content, no person, only counts.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{PgPool, Row};

/// Mails sent and mails that failed for good in one month.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonthlyMail {
    /// The first day of the month, in the zone asked for.
    pub month: NaiveDate,
    pub sent: i64,
    pub failed: i64,
}

/// Mails sent (by `sent_at`) and failed (by `failed_at`) from `from` to before
/// `to`, by month in the time zone `tz` (an IANA name such as `Asia/Tokyo`).
/// Cancelled deliveries (erased, suspended, opted out, bouncing) are neither.
///
/// Summed from the hourly counters a trigger keeps beside the outbox
/// (`mail_counts`), not by counting deliveries. So `from` and `to` count by the
/// hour they fall in (the desk asks for whole months), and a zone whose offset is
/// not whole hours would see the mails of a month's first half hour in the month
/// before.
pub async fn mail_counts(
    pool: &PgPool,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    tz: &str,
) -> sqlx::Result<Vec<MonthlyMail>> {
    let rows = sqlx::query(
        "SELECT date_trunc('month', hour AT TIME ZONE $3)::date AS month, \
                sum(sent)::bigint AS sent, sum(failed)::bigint AS failed \
         FROM mail_counts WHERE hour >= date_trunc('hour', $1::timestamptz, 'UTC') \
           AND hour < $2 \
         GROUP BY 1 HAVING sum(sent) > 0 OR sum(failed) > 0 ORDER BY 1",
    )
    .bind(from)
    .bind(to)
    .bind(tz)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(MonthlyMail {
                month: r.try_get("month")?,
                sent: r.try_get("sent")?,
                failed: r.try_get("failed")?,
            })
        })
        .collect()
}
