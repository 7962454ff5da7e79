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
pub async fn mail_counts(
    pool: &PgPool,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    tz: &str,
) -> sqlx::Result<Vec<MonthlyMail>> {
    let rows = sqlx::query(
        "SELECT month, sum(sent)::bigint AS sent, sum(failed)::bigint AS failed FROM ( \
           SELECT date_trunc('month', sent_at AT TIME ZONE $3)::date AS month, \
                  count(*) AS sent, 0 AS failed \
           FROM mail_deliveries WHERE status = 'sent' AND sent_at >= $1 AND sent_at < $2 \
           GROUP BY 1 \
           UNION ALL \
           SELECT date_trunc('month', failed_at AT TIME ZONE $3)::date, 0, count(*) \
           FROM mail_deliveries WHERE status = 'failed' AND failed_at >= $1 AND failed_at < $2 \
           GROUP BY 1 \
         ) m GROUP BY month ORDER BY month",
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
