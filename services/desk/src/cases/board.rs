//! `GET /desk`: the pipeline board. The four phases with their counts, 対応終了
//! beside them, and the cases that need action: past their next-action date, and
//! new cases with no contact logged within 3 business days of opening.

use axum::extract::State;
use axum::response::Html;
use maud::{Markup, html};

use super::query::{self, CaseRow};
use super::{PHASES, Shown};
use crate::DeskState;
use crate::audit::{self, AuditAction};
use crate::auth::{Right, Staff};
use crate::error::AppError;
use crate::layout::{self, Section};

/// Flagged cases listed on the board, per flag.
const FLAGGED_SHOWN: i64 = 10;

pub async fn show(State(state): State<DeskState>, staff: Staff) -> Result<Html<String>, AppError> {
    staff.require(Right::ViewAggregates)?;
    let tz = state.config().timezone;
    let today = query::today(state.now(), tz);
    let pool = state.pool();
    let counts = query::counts(pool, today).await?;
    let overdue = query::flagged(pool, today, true, FLAGGED_SHOWN).await?;
    let awaiting = query::flagged(pool, today, false, FLAGGED_SHOWN).await?;
    if staff.can(Right::ViewPersonalData) {
        let persons: Vec<_> = overdue
            .iter()
            .chain(&awaiting)
            .map(|c| c.person_id)
            .collect();
        audit::record(
            pool,
            staff.id,
            state.now(),
            AuditAction::ViewBoard,
            &persons,
            "page=/desk",
        )
        .await?;
    }
    let phase_card = |label: &str, count: i64, href: String| {
        html! {
            li.phase-card {
                a href=(href) {
                    span.phase-name { (label) }
                    span.phase-count { (count) span.unit { "件" } }
                }
            }
        }
    };
    let body = html! {
        h1 { "パイプライン" }
        @if staff.can(Right::ActOnCases) {
            p { (staff.display_name) " さんの担当は "
                a href=(format!("/desk/cases?phase=open&concierge={}", staff.id)) { "こちら" } "。"
                " 窓口・電話・イベントで受けた相談は "
                a href="/desk/cases/new" { "相談の登録" } " から記録できます。"
            }
        } @else {
            // A viewer is never assigned a case: a link to "their" cases would list none.
            p { "閲覧者の役割では件数と集計を確認できます。氏名・連絡先などの個人情報は「非表示」と表示されます。" }
        }
        h2 id="phases" { "フェーズ別の件数" }
        ul.phases aria-labelledby="phases" {
            @for (stage, count) in PHASES.iter().zip(counts.phases) {
                (phase_card(stage.label_ja(), count,
                    format!("/desk/cases?phase={}", super::projection::stage_str(*stage))))
            }
            li.phase-card.closed {
                a href="/desk/cases?phase=closed" {
                    span.phase-name { "対応終了" }
                    span.phase-count { (counts.closed) span.unit { "件" } }
                }
            }
        }
        p.help { "対応終了と統合済みの案件は、各フェーズの件数に含みません。" }
        (flag_section(
            &staff, "overdue", "次回対応日を過ぎた案件", counts.overdue, &overdue,
            "/desk/cases?overdue=1", today, true,
        ))
        (flag_section(
            &staff, "no-contact", "初回連絡が記録されていない新規案件（受付から3営業日超）",
            counts.awaiting_contact, &awaiting, "/desk/cases?no_contact=1", today, false,
        ))
    };
    Ok(Html(
        layout::page(
            &staff,
            Section::Cases,
            "パイプライン",
            html! { (board_css()) (body) },
        )
        .into_string(),
    ))
}

#[allow(clippy::too_many_arguments)]
fn flag_section(
    staff: &Staff,
    id: &str,
    title: &str,
    count: i64,
    rows: &[CaseRow],
    all_href: &str,
    today: chrono::NaiveDate,
    overdue: bool,
) -> Markup {
    let heading = format!("{id}-heading");
    html! {
        section.panel aria-labelledby=(heading) {
            h2 id=(heading) { (title) "：" strong { (count) "件" } }
            @if rows.is_empty() {
                p { "該当する案件はありません。" }
            } @else {
                (layout::table_region(title, html! {
                    table.stack role="table" {
                        thead role="rowgroup" {
                            tr role="row" {
                                th role="columnheader" scope="col" { "連番" }
                                th role="columnheader" scope="col" { "相談者氏名" }
                                th role="columnheader" scope="col" { "担当" }
                                th role="columnheader" scope="col" {
                                    @if overdue { "次回対応日" } @else { "初回連絡の期限" }
                                }
                            }
                        }
                        tbody role="rowgroup" {
                            @for c in rows {
                                tr role="row" {
                                    th role="rowheader" scope="row" {
                                        (layout::cell_label("連番"))
                                        a href=(format!("/desk/cases/{}", c.case_id)) { (c.reference) }
                                    }
                                    td role="cell" {
                                        (layout::cell_label("相談者氏名"))
                                        (Shown::of(staff, c.name.as_deref(), c.erased).page_text())
                                    }
                                    td role="cell" {
                                        (layout::cell_label("担当"))
                                        (c.concierge_name.as_deref().unwrap_or("未割当"))
                                    }
                                    td role="cell" {
                                        (layout::cell_label(if overdue { "次回対応日" } else { "初回連絡の期限" }))
                                        @let due = if overdue { c.next_action } else { c.first_contact_due };
                                        @if let Some(d) = due {
                                            (d.format("%Y-%m-%d")) "（" ((today - d).num_days()) "日超過）"
                                        }
                                    }
                                }
                            }
                        }
                    }
                }))
                @if count > rows.len() as i64 {
                    p { a href=(all_href) { "すべて表示（" (count) "件）" } }
                }
            }
        }
    }
}

fn board_css() -> Markup {
    html! {
        style {
            ".phases{list-style:none;display:grid;grid-template-columns:repeat(auto-fit,minmax(9rem,1fr));gap:.75rem;padding:0;margin:0 0 .5rem}"
            ".phase-card a{display:flex;flex-direction:column;gap:.25rem;padding:1rem;border:2px solid #00387a;border-radius:6px;background:#fff;color:#00387a;text-decoration:none}"
            ".phase-card.closed a{border-color:#4a4a4a;color:#1a1a1a;background:#f5f5f3}"
            ".phase-card a:hover,.phase-card a:focus{text-decoration:underline}"
            ".phase-name{font-weight:700}"
            ".phase-count{font-size:2rem;font-weight:700;line-height:1.1}"
            ".phase-count .unit{font-size:1rem;margin-left:.2rem}"
        }
    }
}
