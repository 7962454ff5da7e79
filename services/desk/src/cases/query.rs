//! Reading `desk_cases` (with `desk_persons` and `staff_users`): the list's
//! filters, search and keyset paging, the board's counts, and the export.

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use kujira_domain::values::{Segment, Source};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Postgres, QueryBuilder, Row};
use uuid::Uuid;

use crate::form::FormErrors;
use crate::persons;

/// Rows per page of the list.
pub const PAGE_SIZE: i64 = 50;
/// At most this many persons match one search; more asks for a narrower search.
pub const SEARCH_PERSONS_MAX: i64 = 2000;

mod filters;
pub use crate::keyset::{Cursor, Page};
use filters::next_month;
pub use filters::{FilterParams, Filters, Search, month_start, search_persons};

/// One case as the list, the board and the CSV show it.
#[derive(Debug, Clone)]
pub struct CaseRow {
    pub case_id: Uuid,
    pub reference: String,
    pub person_id: Uuid,
    pub kind: String,
    pub channel: String,
    pub desk_source: Option<String>,
    pub opened_at: DateTime<Utc>,
    pub phase: String,
    pub concierge: Option<Uuid>,
    pub concierge_name: Option<String>,
    pub next_action: Option<NaiveDate>,
    pub first_contact_due: Option<NaiveDate>,
    pub contacts: i32,
    pub closed_reason: Option<String>,
    pub merged_into: Option<Uuid>,
    pub segment: Option<String>,
    pub prefecture: Option<String>,
    pub age_group: Option<String>,
    pub gender: Option<String>,
    pub topics: Vec<String>,
    pub source: Option<String>,
    pub summary: Option<String>,
    pub name: Option<String>,
    pub name_kana: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub erased: bool,
}

impl CaseRow {
    fn from_row(r: &PgRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            case_id: r.try_get("case_id")?,
            reference: r.try_get("reference")?,
            person_id: r.try_get("person_id")?,
            kind: r.try_get("kind")?,
            channel: r.try_get("channel")?,
            desk_source: r.try_get("desk_source")?,
            opened_at: r.try_get("opened_at")?,
            phase: r.try_get("phase")?,
            concierge: r.try_get("concierge")?,
            concierge_name: r.try_get("concierge_name")?,
            next_action: r.try_get("next_action")?,
            first_contact_due: r.try_get("first_contact_due")?,
            contacts: r.try_get("contacts")?,
            closed_reason: r.try_get("closed_reason")?,
            merged_into: r.try_get("merged_into")?,
            segment: r.try_get("segment")?,
            prefecture: r.try_get("prefecture")?,
            age_group: r.try_get("age_group")?,
            gender: r.try_get("gender")?,
            topics: r.try_get("topics")?,
            source: r.try_get("source")?,
            summary: r.try_get("summary")?,
            name: r.try_get("name")?,
            name_kana: r.try_get("name_kana")?,
            email: r.try_get("email")?,
            phone: r.try_get("phone")?,
            erased: r.try_get::<Option<bool>, _>("erased")?.unwrap_or(false),
        })
    }

    pub fn is_open(&self) -> bool {
        self.closed_reason.is_none() && self.merged_into.is_none()
    }

    /// Past its next-action date on `today`.
    pub fn overdue(&self, today: NaiveDate) -> bool {
        self.is_open() && self.next_action.is_some_and(|d| d < today)
    }

    /// Still awaiting its first contact after the due date.
    pub fn awaiting_contact(&self, today: NaiveDate) -> bool {
        self.is_open() && self.contacts == 0 && self.first_contact_due.is_some_and(|d| d < today)
    }

    pub fn cursor(&self) -> Cursor {
        Cursor {
            at: self.opened_at,
            id: self.case_id,
        }
    }
}

const SELECT: &str = "SELECT c.case_id, c.reference, c.person_id, c.kind, c.channel, \
     c.desk_source, c.opened_at, c.phase, c.concierge, u.display_name AS concierge_name, \
     c.next_action, c.first_contact_due, c.contacts, c.closed_reason, c.merged_into, \
     c.segment, c.prefecture, c.age_group, c.gender, c.topics, c.source, c.summary, \
     p.name, p.name_kana, p.email, p.phone, p.erased \
     FROM desk_cases c \
     LEFT JOIN desk_persons p ON p.person_id = c.person_id \
     LEFT JOIN staff_users u ON u.user_id = c.concierge \
     WHERE true";

const OPEN: &str = " AND c.closed_at IS NULL AND c.merged_into IS NULL";

fn push_filters(
    qb: &mut QueryBuilder<'_, Postgres>,
    f: &Filters,
    tz: Tz,
    today: NaiveDate,
    found: Option<(&Option<String>, &[Uuid])>,
) {
    match f.phase.as_deref() {
        Some("open") => {
            qb.push(OPEN);
        }
        Some("closed") => {
            qb.push(" AND c.closed_at IS NOT NULL AND c.merged_into IS NULL");
        }
        Some("merged") => {
            qb.push(" AND c.merged_into IS NOT NULL");
        }
        Some(p) => {
            qb.push(OPEN);
            qb.push(" AND c.phase = ").push_bind(p.to_owned());
        }
        None => {}
    }
    if let Some(s) = &f.segment {
        qb.push(" AND c.segment = ").push_bind(s.clone());
    }
    if let Some(c) = f.concierge {
        qb.push(" AND c.concierge = ").push_bind(c);
    }
    if f.unassigned {
        qb.push(" AND c.concierge IS NULL");
    }
    if let Some((y, m)) = f.month {
        let (ny, nm) = next_month(y, m);
        qb.push(" AND c.opened_at >= ")
            .push_bind(month_start(tz, y, m))
            .push(" AND c.opened_at < ")
            .push_bind(month_start(tz, ny, nm));
    }
    if let Some(s) = &f.source {
        qb.push(" AND c.source = ").push_bind(s.clone());
    }
    match f.intake.as_deref() {
        Some("web") => {
            qb.push(" AND c.channel <> 'desk'");
        }
        Some("event") => {
            qb.push(" AND c.channel = 'desk' AND c.desk_source = 'fair'");
        }
        Some("window") => {
            qb.push(" AND c.channel = 'desk' AND c.desk_source IS DISTINCT FROM 'fair'");
        }
        _ => {}
    }
    if f.overdue {
        qb.push(OPEN);
        qb.push(" AND c.next_action < ").push_bind(today);
    }
    if f.no_contact {
        qb.push(OPEN);
        qb.push(" AND c.contacts = 0 AND c.first_contact_due < ")
            .push_bind(today);
    }
    if let Some((reference, persons)) = found {
        qb.push(" AND (false");
        if let Some(r) = reference {
            let escaped = r
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            qb.push(" OR c.reference LIKE ")
                .push_bind(format!("{escaped}%"))
                .push(" ESCAPE '\\'");
        }
        if !persons.is_empty() {
            qb.push(" OR c.person_id = ANY(")
                .push_bind(persons.to_vec())
                .push(")");
        }
        qb.push(")");
    }
}

/// What the list found.
#[derive(Debug, Clone)]
pub struct Listed {
    pub rows: Vec<CaseRow>,
    /// The cursor of the next (older) page, if there is one.
    pub next: Option<Cursor>,
    /// The cursor of the previous (newer) page, if there is one.
    pub prev: Option<Cursor>,
}

/// One page of the list. `search` holds the search's reference prefix and the
/// persons it found (`None` without a search).
pub async fn list(
    pool: &PgPool,
    f: &Filters,
    tz: Tz,
    today: NaiveDate,
    search: Option<(&Option<String>, &[Uuid])>,
    page: Page,
) -> Result<Listed, sqlx::Error> {
    let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(SELECT);
    push_filters(&mut qb, f, tz, today, search);
    page.push_bound(&mut qb, "c.opened_at", "c.case_id");
    page.push_order(&mut qb, "c.opened_at", "c.case_id", PAGE_SIZE);
    let fetched = qb.build().fetch_all(pool).await?;
    let rows = fetched
        .iter()
        .map(CaseRow::from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let (rows, next, prev) = page.finish(rows, PAGE_SIZE, CaseRow::cursor);
    Ok(Listed { rows, next, prev })
}

/// Every case the filters select, newest first (the export).
pub async fn all(
    pool: &PgPool,
    f: &Filters,
    tz: Tz,
    today: NaiveDate,
    search: Option<(&Option<String>, &[Uuid])>,
) -> Result<Vec<CaseRow>, sqlx::Error> {
    let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(SELECT);
    push_filters(&mut qb, f, tz, today, search);
    qb.push(" ORDER BY c.opened_at DESC, c.case_id DESC");
    let fetched = qb.build().fetch_all(pool).await?;
    fetched.iter().map(CaseRow::from_row).collect()
}

/// One case's row, if the projection has it.
pub async fn one(pool: &PgPool, case_id: Uuid) -> Result<Option<CaseRow>, sqlx::Error> {
    let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(SELECT);
    qb.push(" AND c.case_id = ").push_bind(case_id);
    let row = qb.build().fetch_optional(pool).await?;
    row.as_ref().map(CaseRow::from_row).transpose()
}

/// The case with this 連番.
pub async fn by_reference(pool: &PgPool, reference: &str) -> Result<Option<CaseRow>, sqlx::Error> {
    let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(SELECT);
    qb.push(" AND c.reference = ")
        .push_bind(reference.to_owned());
    let row = qb.build().fetch_optional(pool).await?;
    row.as_ref().map(CaseRow::from_row).transpose()
}

/// Every case of these persons, newest first.
pub async fn of_persons(pool: &PgPool, persons: &[Uuid]) -> Result<Vec<CaseRow>, sqlx::Error> {
    let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(SELECT);
    qb.push(" AND c.person_id = ANY(")
        .push_bind(persons.to_vec())
        .push(") ORDER BY c.opened_at DESC");
    let rows = qb.build().fetch_all(pool).await?;
    rows.iter().map(CaseRow::from_row).collect()
}

/// The cases merged into `case_id`.
pub async fn merged_into(pool: &PgPool, case_id: Uuid) -> Result<Vec<CaseRow>, sqlx::Error> {
    let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(SELECT);
    qb.push(" AND c.merged_into = ")
        .push_bind(case_id)
        .push(" ORDER BY c.opened_at");
    let rows = qb.build().fetch_all(pool).await?;
    rows.iter().map(CaseRow::from_row).collect()
}

/// The board's figures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Open cases per phase, in [`super::PHASES`] order.
    pub phases: [i64; 4],
    pub closed: i64,
    pub overdue: i64,
    pub awaiting_contact: i64,
}

/// Read from the counters `desk.cases` keeps (`desk_case_counts`), not by counting
/// the cases: a few hundred rows to sum whatever the number of cases.
pub async fn counts(pool: &PgPool, today: NaiveDate) -> Result<Counts, sqlx::Error> {
    let row = sqlx::query(
        "SELECT \
           coalesce(sum(n) FILTER (WHERE counter = 'gathering'), 0)::int8 AS gathering, \
           coalesce(sum(n) FILTER (WHERE counter = 'considering'), 0)::int8 AS considering, \
           coalesce(sum(n) FILTER (WHERE counter = 'decided'), 0)::int8 AS decided, \
           coalesce(sum(n) FILTER (WHERE counter = 'moved'), 0)::int8 AS moved, \
           coalesce(sum(n) FILTER (WHERE counter = 'closed'), 0)::int8 AS closed, \
           coalesce(sum(n) FILTER (WHERE counter = 'next_action' AND day < $1), 0)::int8 AS overdue, \
           coalesce(sum(n) FILTER (WHERE counter = 'first_contact' AND day < $1), 0)::int8 AS awaiting \
         FROM desk_case_counts",
    )
    .bind(today)
    .fetch_one(pool)
    .await?;
    Ok(Counts {
        phases: [
            row.try_get("gathering")?,
            row.try_get("considering")?,
            row.try_get("decided")?,
            row.try_get("moved")?,
        ],
        closed: row.try_get("closed")?,
        overdue: row.try_get("overdue")?,
        awaiting_contact: row.try_get("awaiting")?,
    })
}

/// The flagged cases the board lists: the most urgent first, at most `limit`.
pub async fn flagged(
    pool: &PgPool,
    today: NaiveDate,
    overdue: bool,
    limit: i64,
) -> Result<Vec<CaseRow>, sqlx::Error> {
    let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(SELECT);
    qb.push(OPEN);
    if overdue {
        qb.push(" AND c.next_action IS NOT NULL AND c.next_action < ")
            .push_bind(today)
            .push(" ORDER BY c.next_action, c.opened_at");
    } else {
        qb.push(
            " AND c.contacts = 0 AND c.first_contact_due IS NOT NULL AND c.first_contact_due < ",
        )
        .push_bind(today)
        .push(" ORDER BY c.first_contact_due, c.opened_at");
    }
    qb.push(" LIMIT ").push_bind(limit);
    let rows = qb.build().fetch_all(pool).await?;
    rows.iter().map(CaseRow::from_row).collect()
}

/// Staff who can be in charge of cases (admins and concierges), active, by name.
pub async fn concierges(pool: &PgPool) -> Result<Vec<(Uuid, String)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT user_id, display_name FROM staff_users \
         WHERE NOT disabled AND role IN ('admin', 'concierge') ORDER BY display_name, email",
    )
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("user_id")?, r.try_get("display_name")?)))
        .collect()
}

/// Today in the city.
pub fn today(now: DateTime<Utc>, tz: Tz) -> NaiveDate {
    now.with_timezone(&tz).date_naive()
}

/// `2026年12月` of a case's opening, in the city's time zone.
pub fn month_ja(t: DateTime<Utc>, tz: Tz) -> String {
    let l = t.with_timezone(&tz);
    format!("{}年{}月", l.year(), l.month())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_text_is_read_by_its_shape() {
        let s = Search::read("taro@Example.jp");
        assert_eq!(s.email.as_deref(), Some("taro@example.jp"));
        assert!(s.name.is_none() && s.reference.is_none());
        let s = Search::read("2026-0012");
        assert_eq!(s.reference.as_deref(), Some("2026-0012"));
        assert_eq!(s.phone.as_deref(), Some("20260012"));
        let s = Search::read("かしわざき");
        assert_eq!(s.kana.as_deref(), Some("カシワザキ"));
        let s = Search::read("柏崎 太郎");
        assert_eq!(s.name.as_deref(), Some("柏崎太郎"));
        assert!(s.kana.is_none() && s.email.is_none());
        assert!(Search::read("  ").is_empty());
        assert!(!Search::read("2026-0012").fields().contains("name"));
    }

    #[test]
    fn filters_refuse_unknown_values_with_a_message_per_field() {
        let p = FilterParams {
            phase: "nowhere".into(),
            month: "2026-13".into(),
            concierge: "x".into(),
            ..FilterParams::default()
        };
        let e = p.parse().unwrap_err();
        assert!(e.get("phase").is_some() && e.get("month").is_some());
        assert!(e.get("concierge").is_some());
        let ok = FilterParams {
            phase: "considering".into(),
            month: "2026-12".into(),
            overdue: "1".into(),
            ..FilterParams::default()
        }
        .parse()
        .unwrap();
        assert_eq!(ok.month, Some((2026, 12)));
        assert!(ok.overdue);
    }
}
