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
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use maud::{Markup, html};
use uuid::Uuid;

use super::AuditAction;
use super::query::*;
use crate::DeskState;
use crate::auth::{Right, Staff};
use crate::error::AppError;
use crate::form::FormErrors;
use crate::layout::{self, Section, cell_label};

/// A list of persons longer than this is folded into a disclosure.
const PERSONS_SHOWN: usize = 3;

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
    let page = Page::from_params(&params.after, &params.before)?;
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
