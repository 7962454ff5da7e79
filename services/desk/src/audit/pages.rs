//! `GET /desk/audit` (admins): the audit trail, newest first, with filters by staff
//! member, action and date range, and keyset paging; `GET /desk/audit.csv`: the
//! same entries as CSV (UTF-8 with a BOM, CRLF), itself recorded as an export.
//!
//! One entry is one request (the rows that share a `request_id`): who, when, what,
//! and which persons, named by the 連番 of their cases with a link to each case,
//! never by a name. The page reads `audit_log`, `staff_users` and `desk_cases`
//! only (never `desk_persons`), so no personal data can reach it.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use maud::{Markup, html};
use serde::{Deserialize, Serialize};
use sqlx::{PgPool, Postgres, QueryBuilder, Row};
use unicode_normalization::UnicodeNormalization;
use uuid::Uuid;

use super::AuditAction;
use crate::DeskState;
use crate::auth::{Right, Staff};
use crate::error::AppError;
use crate::form::FormErrors;
use crate::layout::{self, Section, cell_label};

/// Entries per page.
pub const PAGE_SIZE: i64 = 50;

/// A list of persons longer than this is folded into a disclosure.
const PERSONS_SHOWN: usize = 3;

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

/// A keyset position in the trail's order (newest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub at: DateTime<Utc>,
    pub request_id: Uuid,
}

impl Cursor {
    pub fn encode(&self) -> String {
        format!(
            "{}_{}",
            self.at.timestamp_micros(),
            self.request_id.simple()
        )
    }

    pub fn decode(s: &str) -> Option<Self> {
        let (t, id) = s.trim().split_once('_')?;
        Some(Self {
            at: DateTime::from_timestamp_micros(t.parse().ok()?)?,
            request_id: Uuid::parse_str(id).ok()?,
        })
    }
}

/// Which page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    First,
    After(Cursor),
    Before(Cursor),
}

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
            request_id: self.request_id,
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
    // The plain bound on `at` lets the index on `at` start at the cursor; the row
    // comparison then breaks ties within one microsecond.
    match page {
        Page::First => {}
        Page::After(c) => {
            qb.push(" AND a.at <= ").push_bind(c.at);
            qb.push(" AND (a.at, a.request_id) < (")
                .push_bind(c.at)
                .push(", ")
                .push_bind(c.request_id)
                .push(")");
        }
        Page::Before(c) => {
            qb.push(" AND a.at >= ").push_bind(c.at);
            qb.push(" AND (a.at, a.request_id) > (")
                .push_bind(c.at)
                .push(", ")
                .push_bind(c.request_id)
                .push(")");
        }
    }
    qb.push(GROUP);
    let backwards = matches!(page, Page::Before(_));
    if backwards {
        qb.push(" ORDER BY a.at ASC, a.request_id ASC");
    } else {
        qb.push(" ORDER BY a.at DESC, a.request_id DESC");
    }
    qb.push(" LIMIT ").push_bind(PAGE_SIZE + 1);
    let rows = qb.build().fetch_all(pool).await?;
    let mut entries = rows.iter().map(entry).collect::<Result<Vec<_>, _>>()?;
    let more = entries.len() as i64 > PAGE_SIZE;
    entries.truncate(PAGE_SIZE as usize);
    if backwards {
        entries.reverse();
    }
    let (next, prev) = match page {
        Page::First => (
            more.then(|| entries.last().map(Entry::cursor)).flatten(),
            None,
        ),
        Page::After(_) => (
            more.then(|| entries.last().map(Entry::cursor)).flatten(),
            entries.first().map(Entry::cursor),
        ),
        Page::Before(_) => (
            entries.last().map(Entry::cursor),
            more.then(|| entries.first().map(Entry::cursor)).flatten(),
        ),
    };
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

fn at_ja(at: DateTime<Utc>, tz: Tz) -> String {
    at.with_timezone(&tz)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

fn label_ja(field: &str) -> String {
    match field {
        "staff" => "職員",
        "action" => "操作",
        "from" => "開始日",
        "to" => "終了日",
        other => other,
    }
    .to_owned()
}

pub async fn show(
    State(state): State<DeskState>,
    staff: Staff,
    Query(params): Query<AuditParams>,
) -> Result<Response, AppError> {
    staff.require(Right::ManagePrivacy)?;
    let tz = state.config().timezone;
    let names = staff_names(state.pool()).await?;
    let filters = match params.parse(&names) {
        Ok(f) => f,
        Err(errors) => {
            let body = page_body(&params, &errors, &names, None, &HashMap::new(), tz);
            let html = layout::page(&staff, Section::Audit, "【入力エラー】監査ログ", body);
            return Ok((StatusCode::BAD_REQUEST, Html(html.into_string())).into_response());
        }
    };
    let page = if let Some(c) = Cursor::decode(&params.after) {
        Page::After(c)
    } else if let Some(c) = Cursor::decode(&params.before) {
        Page::Before(c)
    } else {
        Page::First
    };
    let listed = list(state.pool(), &filters, tz, page).await?;
    let cases = cases_of(state.pool(), &listed.entries).await?;
    let body = page_body(
        &params,
        &FormErrors::new(),
        &names,
        Some(&listed),
        &cases,
        tz,
    );
    Ok(Html(layout::page(&staff, Section::Audit, "監査ログ", body).into_string()).into_response())
}

fn filter_field(name: &str, label: &str, errors: &FormErrors, control: Markup) -> Markup {
    let id = format!("f-{name}");
    html! {
        div.filter {
            label for=(id) { (label) }
            @if let Some(e) = errors.get(name) {
                p.error-text id=(format!("{id}-error")) { "エラー：" (e) }
            }
            (control)
        }
    }
}

fn page_body(
    params: &AuditParams,
    errors: &FormErrors,
    names: &[StaffName],
    listed: Option<&Listed>,
    cases: &HashMap<Uuid, Vec<(Uuid, String)>>,
    tz: Tz,
) -> Markup {
    let invalid = |f: &str| errors.get(f).map(|_| "true");
    let described = |f: &str| errors.get(f).map(|_| format!("f-{f}-error"));
    let qs = params.query_string();
    let with_qs = |path: &str| {
        if qs.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?{qs}")
        }
    };
    let by_id: HashMap<Uuid, &StaffName> = names.iter().map(|s| (s.user_id, s)).collect();
    html! {
        h1 { "監査ログ" }
        p.help {
            "個人情報を含む画面の閲覧と、データの出力・開示・消去の記録です（新しい順）。"
            "対象の方は案件の連番で示し、氏名は表示しません。"
        }
        (errors.summary(label_ja))
        form.filters method="get" action="/desk/audit" aria-label="監査ログの絞り込み" {
            div.filter-grid {
                (filter_field("staff", "職員", errors, html! {
                    select id="f-staff" name="staff" aria-invalid=[invalid("staff")] aria-describedby=[described("staff")] {
                        option value="" { "すべて" }
                        @for s in names {
                            @let v = s.user_id.to_string();
                            option value=(v) selected[params.staff.trim() == v] { (s.display_name) "（" (s.email) "）" }
                        }
                    }
                }))
                (filter_field("action", "操作", errors, html! {
                    select id="f-action" name="action" aria-invalid=[invalid("action")] aria-describedby=[described("action")] {
                        option value="" { "すべて" }
                        @for a in AuditAction::ALL {
                            option value=(a.as_str()) selected[params.action.trim() == a.as_str()] { (a.label_ja()) }
                        }
                    }
                }))
                (filter_field("from", "開始日", errors, html! {
                    input type="date" id="f-from" name="from" value=(params.from)
                        aria-invalid=[invalid("from")] aria-describedby=[described("from")];
                }))
                (filter_field("to", "終了日", errors, html! {
                    input type="date" id="f-to" name="to" value=(params.to)
                        aria-invalid=[invalid("to")] aria-describedby=[described("to")];
                }))
            }
            div.actions {
                button.button.small type="submit" { "絞り込む" }
                " "
                a href="/desk/audit" { "条件をクリア" }
            }
        }
        @if let Some(listed) = listed {
            p.list-tools {
                a href=(with_qs("/desk/audit.csv")) download { "この条件でCSVをダウンロード" }
                " ・ " a href="/desk/privacy" { "消去記録と保有状況" }
            }
            @if listed.entries.is_empty() {
                p role="status" { "条件に合う記録はありません。" }
            } @else {
                (layout::table_region("監査ログ", html! {
                    table.stack role="table" {
                        caption.vh { "監査ログ（新しい順）" }
                        thead role="rowgroup" {
                            tr role="row" {
                                @for c in ["日時", "職員", "操作", "対象（案件の連番）", "詳細"] {
                                    th role="columnheader" scope="col" { (c) }
                                }
                            }
                        }
                        tbody role="rowgroup" {
                            @for e in &listed.entries {
                                tr role="row" {
                                    th role="rowheader" scope="row" {
                                        (cell_label("日時"))
                                        time datetime=(e.at.to_rfc3339()) { (at_ja(e.at, tz)) }
                                    }
                                    td role="cell" {
                                        (cell_label("職員"))
                                        @match by_id.get(&e.staff_id) {
                                            Some(s) => { (s.display_name) br; span.email { (s.email) } }
                                            None => { "不明な職員（" (e.staff_id) "）" }
                                        }
                                    }
                                    td role="cell" { (cell_label("操作")) (e.label()) }
                                    td role="cell" { (cell_label("対象")) (subjects(e, cases)) }
                                    td role="cell" { (cell_label("詳細")) span.detail { (e.detail) } }
                                }
                            }
                        }
                    }
                }))
                (layout::pager(
                    "/desk/audit",
                    &qs,
                    listed.prev.map(|c| ("← 新しい記録", c.encode())),
                    listed.prev.is_some().then_some("最初のページ"),
                    listed.next.map(|c| ("古い記録 →", c.encode())),
                ))
            }
        }
        (audit_css())
    }
}

/// The persons of an entry, by the 連番 of their cases.
fn subjects(e: &Entry, cases: &HashMap<Uuid, Vec<(Uuid, String)>>) -> Markup {
    let list = html! {
        ul.refs {
            @for p in &e.persons {
                li {
                    @match cases.get(p).filter(|c| !c.is_empty()) {
                        Some(cs) => {
                            @for (i, (id, reference)) in cs.iter().enumerate() {
                                @if i > 0 { "、" }
                                a href=(format!("/desk/cases/{id}")) { (reference) }
                            }
                        }
                        None => { "案件のない方" }
                    }
                }
            }
        }
    };
    html! {
        @if e.persons.is_empty() {
            "—"
        } @else if e.persons.len() > PERSONS_SHOWN {
            details {
                summary { (e.persons.len()) "人" }
                (list)
            }
        } @else {
            (list)
        }
    }
}

fn audit_css() -> Markup {
    html! {
        style {
            ".filter-grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(12rem,1fr));gap:.5rem 1rem}"
            ".filter label{display:block;font-weight:700;margin-bottom:.25rem}"
            ".filter select,.filter input{width:100%}"
            ".pager{display:flex;gap:1rem;margin:1rem 0}"
            ".list-tools{margin:1rem 0 .5rem}"
            "ul.refs{list-style:none;margin:0;padding:0}"
            ".email,.detail{font-size:.85rem;color:#4a4a4a;overflow-wrap:anywhere}"
        }
    }
}

/// The CSV's columns.
pub const CSV_COLUMNS: [&str; 9] = [
    "日時",
    "職員",
    "職員のメールアドレス",
    "操作",
    "操作コード",
    "人数",
    "連番",
    "詳細",
    "記録ID",
];

/// `GET /desk/audit.csv`: every entry the filters select, newest first. The
/// download is itself recorded (an export that names no person).
pub async fn csv(
    State(state): State<DeskState>,
    staff: Staff,
    Query(params): Query<AuditParams>,
) -> Result<Response, AppError> {
    staff.require(Right::ManagePrivacy)?;
    let tz = state.config().timezone;
    let names = staff_names(state.pool()).await?;
    let filters = params.parse(&names).map_err(|errors| {
        let message = errors
            .iter()
            .map(|(f, m)| format!("{}：{m}", label_ja(f)))
            .collect::<Vec<_>>()
            .join(" ");
        AppError::BadRequest(format!("CSVの条件に誤りがあります。{message}"))
    })?;
    let entries = all(state.pool(), &filters, tz).await?;
    let cases = cases_of(state.pool(), &entries).await?;
    let qs = params.query_string();
    let mut detail = "page=/desk/audit.csv".to_owned();
    if !qs.is_empty() {
        detail.push_str(&format!(" filters={qs}"));
    }
    detail.push_str(&format!(" rows={}", entries.len()));
    super::record(
        state.pool(),
        staff.id,
        state.now(),
        AuditAction::ExportAudit,
        &[],
        &detail,
    )
    .await?;
    let by_id: HashMap<Uuid, &StaffName> = names.iter().map(|s| (s.user_id, s)).collect();
    let cell = crate::tours::text_cell;
    let mut rows: Vec<Vec<String>> = vec![CSV_COLUMNS.iter().map(|c| (*c).to_owned()).collect()];
    for e in &entries {
        let (name, email) = by_id.get(&e.staff_id).map_or_else(
            || (e.staff_id.to_string(), String::new()),
            |s| (s.display_name.clone(), s.email.clone()),
        );
        let references: Vec<String> = e
            .persons
            .iter()
            .map(|p| {
                cases.get(p).filter(|c| !c.is_empty()).map_or_else(
                    || "案件なし".to_owned(),
                    |cs| {
                        cs.iter()
                            .map(|(_, r)| r.as_str())
                            .collect::<Vec<_>>()
                            .join("、")
                    },
                )
            })
            .collect();
        rows.push(vec![
            at_ja(e.at, tz),
            cell(&name),
            cell(&email),
            e.label().to_owned(),
            e.action.clone(),
            e.persons.len().to_string(),
            cell(&references.join(" ")),
            cell(&e.detail),
            e.request_id.to_string(),
        ]);
    }
    let name = format!(
        "audit-{}.csv",
        state.now().with_timezone(&tz).format("%Y%m%d-%H%M")
    );
    crate::tours::csv_response(&name, rows)
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
    fn cursors_survive_the_round_trip_and_refuse_garbage() {
        let c = Cursor {
            at: "2026-12-01T00:00:00.123456Z".parse().unwrap(),
            request_id: Uuid::now_v7(),
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        assert_eq!(Cursor::decode("x_y"), None);
        assert_eq!(Cursor::decode(""), None);
    }

    #[test]
    fn every_action_has_a_key_and_a_label() {
        for a in AuditAction::ALL {
            assert_eq!(AuditAction::parse(a.as_str()), Some(a));
            assert!(!a.label_ja().is_empty());
        }
    }
}
