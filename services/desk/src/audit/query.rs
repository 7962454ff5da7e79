//! The audit trail as the page and the CSV read it: the filters (parsed from the
//! query string, with Japanese errors), keyset cursors, one entry per request, and
//! the names and case numbers shown beside them. Reads `audit_log`, `staff_users`
//! and `desk_cases` only.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use sqlx::{PgPool, Postgres, QueryBuilder, Row};
use unicode_normalization::UnicodeNormalization;
use uuid::Uuid;

use super::AuditAction;
use crate::form::FormErrors;

/// Entries per page.
pub const PAGE_SIZE: i64 = 50;

/// The query string of the page and the CSV, as sent.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct AuditParams {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub staff: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub action: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub from: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub to: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub after: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub before: String,
}

impl AuditParams {
    /// The filters as a query string (without the paging cursor).
    pub fn query_string(&self) -> String {
        serde_urlencoded::to_string(AuditParams {
            after: String::new(),
            before: String::new(),
            ..self.clone()
        })
        .unwrap_or_default()
    }
}

/// The filters, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilters {
    pub staff: Option<Uuid>,
    pub action: Option<String>,
    /// From the start of this day in the city (inclusive).
    pub from: Option<NaiveDate>,
    /// To the end of this day in the city (inclusive).
    pub to: Option<NaiveDate>,
}

/// A staff member as the trail names them.
#[derive(Debug, Clone)]
pub struct StaffName {
    pub user_id: Uuid,
    pub display_name: String,
    pub email: String,
}

/// Reads a date as typed: `2026-12-01` (also with full-width digits or slashes).
fn parse_date(s: &str) -> Result<Option<NaiveDate>, &'static str> {
    let s: String = s.trim().nfkc().collect();
    if s.is_empty() {
        return Ok(None);
    }
    NaiveDate::parse_from_str(&s.replace('/', "-"), "%Y-%m-%d")
        .map(Some)
        .map_err(|_| "日付は「2026-12-01」の形で入力してください。")
}

impl AuditParams {
    /// The filters, or the errors by field.
    pub fn parse(&self, staff: &[StaffName]) -> Result<AuditFilters, FormErrors> {
        let mut errors = FormErrors::new();
        let mut f = AuditFilters::default();
        let who = self.staff.trim();
        if !who.is_empty() {
            match Uuid::parse_str(who)
                .ok()
                .filter(|id| staff.iter().any(|s| s.user_id == *id))
            {
                Some(id) => f.staff = Some(id),
                None => errors.add("staff", "職員を一覧から選んでください。"),
            }
        }
        let action = self.action.trim();
        if !action.is_empty() {
            match AuditAction::parse(action) {
                Some(a) => f.action = Some(a.as_str().to_owned()),
                None => errors.add("action", "操作の種類を一覧から選んでください。"),
            }
        }
        match parse_date(&self.from) {
            Ok(d) => f.from = d,
            Err(m) => errors.add("from", m),
        }
        match parse_date(&self.to) {
            Ok(d) => f.to = d,
            Err(m) => errors.add("to", m),
        }
        if let (Some(from), Some(to)) = (f.from, f.to)
            && from > to
        {
            errors.add(
                "to",
                "終了日は開始日と同じ日か、それより後の日付にしてください。",
            );
        }
        if errors.is_empty() {
            Ok(f)
        } else {
            Err(errors)
        }
    }
}

pub use crate::keyset::{Cursor, Page};

/// One request's entry in the trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub request_id: Uuid,
    pub at: DateTime<Utc>,
    pub staff_id: Uuid,
    pub action: String,
    pub detail: String,
    /// The persons whose data was seen, in the order recorded.
    pub persons: Vec<Uuid>,
}

impl Entry {
    fn cursor(&self) -> Cursor {
        Cursor {
            at: self.at,
            id: self.request_id,
        }
    }

    /// The action's Japanese label (its key when this version does not know it).
    pub fn label(&self) -> &str {
        match AuditAction::parse(&self.action) {
            Some(a) => a.label_ja(),
            None => &self.action,
        }
    }
}

/// A page of entries and its neighbours.
#[derive(Debug, Clone)]
pub struct Listed {
    pub entries: Vec<Entry>,
    pub next: Option<Cursor>,
    pub prev: Option<Cursor>,
}

fn local_midnight(tz: Tz, d: NaiveDate) -> DateTime<Utc> {
    let midnight = d.and_hms_opt(0, 0, 0).unwrap_or_default();
    tz.from_local_datetime(&midnight)
        .earliest()
        .map_or_else(|| Utc.from_utc_datetime(&midnight), |t| t.to_utc())
}

fn push_filters(qb: &mut QueryBuilder<'_, Postgres>, f: &AuditFilters, tz: Tz) {
    if let Some(s) = f.staff {
        qb.push(" AND a.staff_id = ").push_bind(s);
    }
    if let Some(a) = &f.action {
        qb.push(" AND a.action = ").push_bind(a.clone());
    }
    if let Some(d) = f.from {
        qb.push(" AND a.at >= ").push_bind(local_midnight(tz, d));
    }
    if let Some(d) = f.to.and_then(|d| d.succ_opt()) {
        qb.push(" AND a.at < ").push_bind(local_midnight(tz, d));
    }
}

const SELECT: &str = "SELECT a.request_id, a.at, a.staff_id, a.action, a.detail, \
     coalesce(array_agg(a.person_id ORDER BY a.id) FILTER (WHERE a.person_id IS NOT NULL), \
              '{}') AS persons \
     FROM audit_log a WHERE true";

/// The rows of one request share its time, staff member, action and detail.
const GROUP: &str = " GROUP BY a.at, a.request_id, a.staff_id, a.action, a.detail";

fn entry(r: &sqlx::postgres::PgRow) -> Result<Entry, sqlx::Error> {
    Ok(Entry {
        request_id: r.try_get("request_id")?,
        at: r.try_get("at")?,
        staff_id: r.try_get("staff_id")?,
        action: r.try_get("action")?,
        detail: r.try_get("detail")?,
        persons: r.try_get("persons")?,
    })
}

/// One page of the trail, newest first.
pub async fn list(
    pool: &PgPool,
    f: &AuditFilters,
    tz: Tz,
    page: Page,
) -> Result<Listed, sqlx::Error> {
    let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(SELECT);
    push_filters(&mut qb, f, tz);
    page.push_bound(&mut qb, "a.at", "a.request_id");
    qb.push(GROUP);
    page.push_order(&mut qb, "a.at", "a.request_id", PAGE_SIZE);
    let rows = qb.build().fetch_all(pool).await?;
    let entries = rows.iter().map(entry).collect::<Result<Vec<_>, _>>()?;
    let (entries, next, prev) = page.finish(entries, PAGE_SIZE, Entry::cursor);
    Ok(Listed {
        entries,
        next,
        prev,
    })
}

/// Every entry the filters select, newest first (the CSV).
pub async fn all(pool: &PgPool, f: &AuditFilters, tz: Tz) -> Result<Vec<Entry>, sqlx::Error> {
    let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(SELECT);
    push_filters(&mut qb, f, tz);
    qb.push(GROUP);
    qb.push(" ORDER BY a.at DESC, a.request_id DESC");
    let rows = qb.build().fetch_all(pool).await?;
    rows.iter().map(entry).collect()
}

/// Every staff account (disabled ones too: their past actions stay in the trail).
pub async fn staff_names(pool: &PgPool) -> Result<Vec<StaffName>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT user_id, display_name, email FROM staff_users ORDER BY display_name, email",
    )
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(StaffName {
                user_id: r.try_get("user_id")?,
                display_name: r.try_get("display_name")?,
                email: r.try_get("email")?,
            })
        })
        .collect()
}

/// The cases of each person (`(case id, 連番)`, oldest first): how the trail names
/// persons without naming them.
pub async fn cases_of(
    pool: &PgPool,
    entries: &[Entry],
) -> Result<HashMap<Uuid, Vec<(Uuid, String)>>, sqlx::Error> {
    let mut persons: Vec<Uuid> = entries
        .iter()
        .flat_map(|e| e.persons.iter().copied())
        .collect();
    persons.sort_unstable();
    persons.dedup();
    let mut out: HashMap<Uuid, Vec<(Uuid, String)>> = HashMap::new();
    if persons.is_empty() {
        return Ok(out);
    }
    let rows = sqlx::query(
        "SELECT person_id, case_id, reference FROM desk_cases WHERE person_id = ANY($1) \
         ORDER BY opened_at, case_id",
    )
    .bind(&persons)
    .fetch_all(pool)
    .await?;
    for r in &rows {
        out.entry(r.try_get("person_id")?)
            .or_default()
            .push((r.try_get("case_id")?, r.try_get("reference")?));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn staff() -> Vec<StaffName> {
        vec![StaffName {
            user_id: Uuid::from_u128(7),
            display_name: "柏崎 花子".into(),
            email: "hanako@example.jp".into(),
        }]
    }

    #[test]
    fn filters_parse_or_name_the_field() {
        let ok = AuditParams {
            staff: Uuid::from_u128(7).to_string(),
            action: "view_case".into(),
            from: "２０２６/12/01".into(),
            to: "2026-12-31".into(),
            ..AuditParams::default()
        }
        .parse(&staff())
        .unwrap();
        assert_eq!(ok.staff, Some(Uuid::from_u128(7)));
        assert_eq!(ok.action.as_deref(), Some("view_case"));
        assert_eq!(ok.from, NaiveDate::from_ymd_opt(2026, 12, 1));
        let bad = AuditParams {
            staff: Uuid::from_u128(8).to_string(),
            action: "drop_table".into(),
            from: "2026-13-01".into(),
            to: "yesterday".into(),
            ..AuditParams::default()
        }
        .parse(&staff())
        .unwrap_err();
        for f in ["staff", "action", "from", "to"] {
            assert!(bad.get(f).is_some(), "{f}");
        }
        let reversed = AuditParams {
            from: "2026-12-02".into(),
            to: "2026-12-01".into(),
            ..AuditParams::default()
        }
        .parse(&staff())
        .unwrap_err();
        assert!(reversed.get("to").is_some() && reversed.get("from").is_none());
    }

    #[test]
    fn every_action_has_a_key_and_a_label() {
        for a in AuditAction::ALL {
            assert_eq!(AuditAction::parse(a.as_str()), Some(a));
            assert!(!a.label_ja().is_empty());
        }
    }
}
