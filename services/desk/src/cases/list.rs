//! `GET /desk/cases`: the case list with the seed spreadsheet's columns, filters,
//! search and keyset paging; `GET /desk/cases.csv`: the same cases as CSV.

use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use chrono::NaiveDate;
use kujira_domain::values::{Segment, Source};
use maud::{Markup, html};
use uuid::Uuid;

use super::query::{self, CaseRow, FilterParams, Filters, Page, Search};
use super::{PHASES, Shown};
use crate::DeskState;
use crate::audit::{self, AuditAction};
use crate::auth::{Right, Staff};
use crate::error::AppError;
use crate::form::FormErrors;
use crate::layout::{self, Section};

/// What a list request selects: the filters, and the search's matches.
struct Selection {
    filters: Filters,
    search: Search,
    persons: Vec<Uuid>,
}

/// Why a list request selects nothing.
enum Refusal {
    Errors(FormErrors),
}

async fn select(
    state: &DeskState,
    staff: &Staff,
    params: &FilterParams,
) -> Result<Result<Selection, Refusal>, AppError> {
    let filters = match params.parse() {
        Ok(f) => f,
        Err(e) => return Ok(Err(Refusal::Errors(e))),
    };
    let search = Search::read(&filters.q);
    if search.is_personal() && !staff.can(Right::ViewPersonalData) {
        if search.reference.is_some() {
            // Digits a viewer types are read as a 連番 only.
            let search = Search {
                reference: search.reference,
                ..Search::default()
            };
            return Ok(Ok(Selection {
                filters,
                search,
                persons: Vec::new(),
            }));
        }
        let mut e = FormErrors::new();
        e.add(
            "q",
            "閲覧者の役割では、氏名・フリガナ・メールアドレス・電話番号では検索できません（個人情報のため）。連番で検索してください。",
        );
        return Ok(Err(Refusal::Errors(e)));
    }
    let persons = match query::search_persons(state.pool(), &search).await? {
        Ok(p) => p,
        Err(_) => {
            let mut e = FormErrors::new();
            e.add(
                "q",
                format!(
                    "該当する方が{}人を超えました。もう少し詳しく入力してください（例：氏名の全体、メールアドレスの全体）。",
                    query::SEARCH_PERSONS_MAX
                ),
            );
            return Ok(Err(Refusal::Errors(e)));
        }
    };
    Ok(Ok(Selection {
        filters,
        search,
        persons,
    }))
}

fn audit_detail(page: &str, params: &FilterParams, search: &Search) -> String {
    // The filters are not personal; the search text may be, so only its fields go in.
    let filters = FilterParams {
        q: String::new(),
        after: String::new(),
        before: String::new(),
        ..params.clone()
    }
    .query_string();
    let mut d = format!("page={page}");
    if !filters.is_empty() {
        d.push_str(&format!(" filters={filters}"));
    }
    if !search.is_empty() {
        d.push_str(&format!(" search={}", search.fields()));
    }
    d
}

pub async fn show(
    State(state): State<DeskState>,
    staff: Staff,
    Query(params): Query<FilterParams>,
) -> Result<Response, AppError> {
    staff.require(Right::ViewAggregates)?;
    let tz = state.config().timezone;
    let today = query::today(state.now(), tz);
    let concierges = query::concierges(state.pool()).await?;
    let selection = match select(&state, &staff, &params).await? {
        Ok(s) => s,
        Err(Refusal::Errors(errors)) => {
            let body = page_body(&staff, &params, &errors, &concierges, None, today, tz);
            let html = layout::page(&staff, Section::Cases, "【入力エラー】案件一覧", body);
            return Ok((StatusCode::BAD_REQUEST, Html(html.into_string())).into_response());
        }
    };
    let page = Page::from_params(&params.after, &params.before)?;
    let search = (!selection.search.is_empty())
        .then_some((&selection.search.reference, selection.persons.as_slice()));
    let listed = query::list(state.pool(), &selection.filters, tz, today, search, page).await?;
    if staff.can(Right::ViewPersonalData) && !listed.rows.is_empty() {
        let action = if selection.search.is_personal() {
            AuditAction::SearchCases
        } else {
            AuditAction::ListCases
        };
        let persons: Vec<Uuid> = listed.rows.iter().map(|r| r.person_id).collect();
        audit::record(
            state.pool(),
            staff.id,
            state.now(),
            action,
            &persons,
            &audit_detail("/desk/cases", &params, &selection.search),
        )
        .await?;
    }
    let body = page_body(
        &staff,
        &params,
        &FormErrors::new(),
        &concierges,
        Some(&listed),
        today,
        tz,
    );
    Ok(Html(layout::page(&staff, Section::Cases, "案件一覧", body).into_string()).into_response())
}

fn options<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>, selected: &str) -> Markup {
    html! {
        option value="" { "すべて" }
        @for (v, l) in pairs {
            option value=(v) selected[v == selected] { (l) }
        }
    }
}

fn filter_field(name: &str, label: &str, errors: &FormErrors, control: Markup) -> Markup {
    let id = format!("f-{name}");
    let err = errors.get(name);
    html! {
        div.filter {
            label for=(id) { (label) }
            @if let Some(e) = err {
                p.error-text id=(format!("{id}-error")) { "エラー：" (e) }
            }
            (control)
        }
    }
}

fn page_body(
    staff: &Staff,
    params: &FilterParams,
    errors: &FormErrors,
    concierges: &[(Uuid, String)],
    listed: Option<&query::Listed>,
    today: NaiveDate,
    tz: chrono_tz::Tz,
) -> Markup {
    let label_of = |f: &str| {
        match f {
            "phase" => "ステータス",
            "segment" => "セグメント",
            "concierge" => "担当",
            "month" => "対応年月",
            "source" => "きっかけ",
            "intake" => "受付経路",
            "q" => "検索",
            _ => f,
        }
        .to_owned()
    };
    let invalid = |f: &str| errors.get(f).map(|_| "true");
    let described = |f: &str| errors.get(f).map(|_| format!("f-{f}-error"));
    let phases: Vec<(&str, &str)> = [("open", "対応中（すべてのフェーズ）")]
        .into_iter()
        .chain(
            PHASES
                .iter()
                .map(|p| (super::projection::stage_str(*p), p.label_ja())),
        )
        .chain([("closed", "対応終了"), ("merged", "統合済み")])
        .collect();
    let segments: Vec<(&str, &str)> = Segment::ALL
        .iter()
        .map(|s| (s.as_str(), super::segment_short_ja(Some(s.as_str()))))
        .collect();
    let sources: Vec<(&str, &str)> = Source::ALL
        .iter()
        .map(|s| (s.as_str(), s.label_ja()))
        .collect();
    let mut staff_options: Vec<(String, String)> = vec![("none".into(), "未割当".into())];
    staff_options.extend(concierges.iter().map(|(id, n)| (id.to_string(), n.clone())));
    let qs = params.query_string();
    let csv_href = if qs.is_empty() {
        "/desk/cases.csv".to_owned()
    } else {
        format!("/desk/cases.csv?{qs}")
    };
    let personal = staff.can(Right::ViewPersonalData);
    html! {
        h1 { "案件一覧" }
        (errors.summary(label_of))
        form.filters method="get" action="/desk/cases" role="search" aria-label="案件の絞り込みと検索" {
            div.filter-grid {
                (filter_field("q", "検索", errors, html! {
                    p.help id="f-q-help" {
                        @if personal { "氏名・フリガナ（ひらがな可）・メールアドレス・電話番号・連番の一部" }
                        @else { "連番（閲覧者は個人情報で検索できません）" }
                    }
                    input type="search" id="f-q" name="q" value=(params.q) maxlength="100"
                        aria-invalid=[invalid("q")]
                        aria-describedby=(described("q").map_or("f-q-help".to_owned(), |e| format!("f-q-help {e}")));
                }))
                (filter_field("phase", "ステータス", errors, html! {
                    select id="f-phase" name="phase" aria-invalid=[invalid("phase")] aria-describedby=[described("phase")] {
                        (options(phases.iter().copied(), &params.phase))
                    }
                }))
                (filter_field("segment", "セグメント", errors, html! {
                    select id="f-segment" name="segment" aria-invalid=[invalid("segment")] aria-describedby=[described("segment")] {
                        (options(segments.iter().copied(), &params.segment))
                    }
                }))
                (filter_field("concierge", "担当", errors, html! {
                    select id="f-concierge" name="concierge" aria-invalid=[invalid("concierge")] aria-describedby=[described("concierge")] {
                        (options(staff_options.iter().map(|(a, b)| (a.as_str(), b.as_str())), &params.concierge))
                    }
                }))
                (filter_field("month", "対応年月", errors, html! {
                    input type="month" id="f-month" name="month" value=(params.month)
                        placeholder="2026-12" aria-invalid=[invalid("month")] aria-describedby=[described("month")];
                }))
                (filter_field("source", "きっかけ", errors, html! {
                    select id="f-source" name="source" aria-invalid=[invalid("source")] aria-describedby=[described("source")] {
                        (options(sources.iter().copied(), &params.source))
                    }
                }))
                (filter_field("intake", "受付経路", errors, html! {
                    select id="f-intake" name="intake" aria-invalid=[invalid("intake")] aria-describedby=[described("intake")] {
                        (options([("web", "ウェブ"), ("window", "窓口"), ("event", "イベント")], &params.intake))
                    }
                }))
            }
            fieldset.flags {
                legend { "要対応" }
                div.choice {
                    input type="checkbox" id="f-overdue" name="overdue" value="1" checked[!params.overdue.is_empty()];
                    label for="f-overdue" { "次回対応日を過ぎた案件" }
                }
                div.choice {
                    input type="checkbox" id="f-no_contact" name="no_contact" value="1" checked[!params.no_contact.is_empty()];
                    label for="f-no_contact" { "初回連絡が未記録（受付から3営業日超）" }
                }
            }
            div.actions {
                button.button.small type="submit" { "絞り込む" }
                " "
                a href="/desk/cases" { "条件をクリア" }
            }
        }
        @if let Some(listed) = listed {
            p.list-tools {
                a href=(csv_href) download { "この条件でCSVをダウンロード" }
                @if staff.can(Right::ManageUsers) {
                    " ・ " a href="/desk/cases/reassign" { "担当の一括引き継ぎ" }
                }
                @if staff.can(Right::ActOnCases) {
                    " ・ " a href="/desk/cases/new" { "相談の登録" }
                }
            }
            @if listed.rows.is_empty() {
                p role="status" { "条件に合う案件はありません。" }
            } @else {
                (table(staff, &listed.rows, today, tz))
                (layout::pager(
                    "/desk/cases",
                    &qs,
                    listed.prev.map(|c| ("← 新しい案件", c.encode())),
                    listed.prev.is_some().then_some("最初のページ"),
                    listed.next.map(|c| ("古い案件 →", c.encode())),
                ))
            }
        }
        (list_css())
    }
}

/// The seed spreadsheet's columns: 連番, 対応年月, 相談者氏名, 性別, 年代, セグメント,
/// 相談概要, ステータス, 担当 (and the flags).
fn table(staff: &Staff, rows: &[CaseRow], today: NaiveDate, tz: chrono_tz::Tz) -> Markup {
    let cols = [
        "連番",
        "対応年月",
        "相談者氏名",
        "性別",
        "年代",
        "セグメント",
        "相談概要",
        "ステータス",
        "担当",
    ];
    layout::table_region(
        "案件一覧",
        html! {
            table.stack role="table" {
                caption.vh { "案件一覧（新しい順）" }
                thead role="rowgroup" {
                    tr role="row" {
                        @for c in cols { th role="columnheader" scope="col" { (c) } }
                    }
                }
                tbody role="rowgroup" {
                    @for r in rows {
                        tr role="row" {
                            th role="rowheader" scope="row" {
                                (layout::cell_label("連番"))
                                a href=(format!("/desk/cases/{}", r.case_id)) { (r.reference) }
                                @if r.overdue(today) { " " span.flag { "期限超過" } }
                                @if r.awaiting_contact(today) { " " span.flag { "初回連絡未" } }
                            }
                            td role="cell" { (layout::cell_label("対応年月")) (query::month_ja(r.opened_at, tz)) }
                            td role="cell" { (layout::cell_label("相談者氏名")) (Shown::of(staff, r.name.as_deref(), r.erased).page_text()) }
                            td role="cell" { (layout::cell_label("性別")) (super::gender_ja(r.gender.as_deref())) }
                            td role="cell" { (layout::cell_label("年代")) (super::age_ja(r.age_group.as_deref())) }
                            td role="cell" { (layout::cell_label("セグメント")) (super::segment_short_ja(r.segment.as_deref())) }
                            td role="cell" { (layout::cell_label("相談概要")) (Shown::of(staff, r.summary.as_deref(), r.erased).page_text()) }
                            td role="cell" { (layout::cell_label("ステータス")) (super::status_ja(&r.phase, r.closed_reason.as_deref(), r.merged_into.is_some())) }
                            td role="cell" { (layout::cell_label("担当")) (r.concierge_name.as_deref().unwrap_or("未割当")) }
                        }
                    }
                }
            }
        },
    )
}

fn list_css() -> Markup {
    html! {
        style {
            ".filter-grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(12rem,1fr));gap:.5rem 1rem}"
            ".filter label{display:block;font-weight:700;margin-bottom:.25rem}"
            ".filter select,.filter input{width:100%}"
            "fieldset.flags{border:0;padding:0;margin:.75rem 0;display:flex;flex-wrap:wrap;gap:.25rem 1.5rem}"
            "fieldset.flags legend{font-weight:700}"
            ".flag{display:inline-block;background:#8a1c1c;color:#fff;font-size:.75rem;padding:0 .35rem;border-radius:3px}"
            ".pager{display:flex;gap:1rem;margin:1rem 0}"
            ".list-tools{margin:1rem 0 .5rem}"
        }
    }
}

/// The CSV's columns, exactly as the issue names them.
pub const CSV_COLUMNS: [&str; 16] = [
    "連番",
    "ID",
    "対応年月",
    "氏名",
    "フリガナ",
    "メール",
    "電話",
    "性別",
    "年代",
    "セグメント",
    "都道府県",
    "相談内容",
    "相談概要",
    "ステータス",
    "担当",
    "きっかけ",
];

/// `GET /desk/cases.csv`: the list's cases (every page) with the current filters,
/// UTF-8 with a BOM, CRLF, a header row. Viewers read 非表示 in the personal columns.
pub async fn csv(
    State(state): State<DeskState>,
    staff: Staff,
    Query(params): Query<FilterParams>,
) -> Result<Response, AppError> {
    staff.require(Right::ViewAggregates)?;
    let tz = state.config().timezone;
    let today = query::today(state.now(), tz);
    let selection = match select(&state, &staff, &params).await? {
        Ok(s) => s,
        Err(Refusal::Errors(errors)) => {
            let message = errors
                .iter()
                .map(|(_, m)| m.to_owned())
                .collect::<Vec<_>>()
                .join(" ");
            return Err(AppError::BadRequest(format!(
                "CSVの条件に誤りがあります。{message}"
            )));
        }
    };
    let search = (!selection.search.is_empty())
        .then_some((&selection.search.reference, selection.persons.as_slice()));
    let rows = query::all(state.pool(), &selection.filters, tz, today, search).await?;
    // Every export is recorded, with the persons whose data it holds when it holds any.
    let persons: Vec<Uuid> = if staff.can(Right::ViewPersonalData) {
        rows.iter().map(|r| r.person_id).collect()
    } else {
        Vec::new()
    };
    let personal_columns = staff.can(Right::ViewPersonalData);
    audit::record(
        state.pool(),
        staff.id,
        state.now(),
        AuditAction::ExportCases,
        &persons,
        &format!(
            "{} rows={} personal_columns={personal_columns}",
            audit_detail("/desk/cases.csv", &params, &selection.search),
            rows.len()
        ),
    )
    .await?;
    let bytes = write_csv(&staff, &rows, tz).map_err(AppError::internal)?;
    let name = format!(
        "cases-{}.csv",
        state.now().with_timezone(&tz).format("%Y%m%d-%H%M")
    );
    let mut res = (StatusCode::OK, bytes).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}

/// The CSV bytes: BOM, header, one CRLF-terminated record per case.
pub fn write_csv(staff: &Staff, rows: &[CaseRow], tz: chrono_tz::Tz) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(rows.len() * 200 + 256);
    out.extend_from_slice("\u{feff}".as_bytes());
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(out);
    w.write_record(CSV_COLUMNS)?;
    for r in rows {
        let p = |v: &Option<String>| Shown::of(staff, v.as_deref(), r.erased).text().to_owned();
        w.write_record([
            r.reference.clone(),
            r.case_id.to_string(),
            query::month_ja(r.opened_at, tz),
            p(&r.name),
            p(&r.name_kana),
            p(&r.email),
            p(&r.phone),
            super::gender_ja(r.gender.as_deref()).to_owned(),
            super::age_ja(r.age_group.as_deref()).to_owned(),
            super::segment_short_ja(r.segment.as_deref()).to_owned(),
            r.prefecture.clone().unwrap_or_default(),
            super::topics_ja(&r.kind, &r.topics),
            p(&r.summary),
            super::status_ja(
                &r.phase,
                r.closed_reason.as_deref(),
                r.merged_into.is_some(),
            ),
            r.concierge_name.clone().unwrap_or_default(),
            super::source_ja(r.source.as_deref()).to_owned(),
        ])?;
    }
    w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))
}
