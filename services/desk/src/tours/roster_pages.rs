//! The roster of a tour: the printable page (`/desk/tours/<id>/roster`), check-in
//! on the day (`POST /desk/tours/<id>/attendance`), and the CSV export
//! (`/desk/tours/<id>/roster.csv`).
//!
//! Every role may open a roster. Staff without the `ViewPersonalData` right (city
//! viewers) read 非表示 in place of the name, kana, email, phone, needs and
//! children's ages, on the page and in the CSV alike; what remains (head counts,
//! standing, transport, check-in) is what the city reports anyway.
//!
//! The audit trail records every roster view with personal columns (the parties'
//! persons) and every CSV export (with the persons when it holds their data).

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Redirect, Response};
use kujira_domain::personal::{ERASED_JA, HIDDEN_JA};
use kujira_domain::tour::{TourCommand, TourError, Transport};
use kujira_tours::mail::{ja_datetime, ja_span};
use kujira_tours::{Actor, CommandError};
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

use super::roster::{self, PartyRow, TourRow};
use super::{kind_ja, status_ja, tour_id};
use crate::DeskState;
use crate::audit::{self, AuditAction};
use crate::auth::{Right, Staff};
use crate::error::AppError;
use crate::form::CsrfForm;
use crate::layout::{self, Section, cell_label};

/// Check-in opens this long before the start (the tour aggregate's own rule).
const CHECK_IN_OPENS_HOURS: i64 = 12;

const ROSTER_CSS: &str = "
.roster-head dl{display:grid;grid-template-columns:max-content 1fr;gap:.1rem 1rem;margin:0 0 1rem}
.roster-head dt{font-weight:700}
.roster-head dd{margin:0}
td.att form{display:inline-block;margin:0 .25rem .25rem 0}
.att-yes{color:#1d7a33;font-weight:700}
.att-no{color:#8a1c1c;font-weight:700}
.hidden-value{color:#4a4a4a}
@media print{
@page{size:A4 landscape;margin:12mm}
body{font-size:10pt;line-height:1.4}
h1{font-size:14pt;margin:0 0 .25rem}
h2{font-size:12pt;margin:.75rem 0 .25rem}
table{font-size:9pt}
th,td{padding:.2rem .35rem;border:1px solid #999}
thead{display:table-header-group}
tr{break-inside:avoid}
.print-only{display:inline !important}
}
.print-only{display:none}
";

#[derive(Debug, Deserialize)]
pub struct Done {
    done: Option<String>,
}

/// What a cell of a personal column shows to this staff member.
fn personal<'a>(
    staff: &Staff,
    p: &'a PartyRow,
    pick: impl Fn(&'a roster::PartyPersonal) -> Option<&'a str>,
) -> String {
    if !staff.can(Right::ViewPersonalData) {
        return HIDDEN_JA.to_owned();
    }
    match &p.personal {
        None => ERASED_JA.to_owned(),
        Some(pp) => pick(pp).unwrap_or("").to_owned(),
    }
}

fn transport_ja(t: Option<&str>) -> &'static str {
    match t.and_then(Transport::parse) {
        Some(Transport::Car) => "自家用車",
        Some(Transport::Train) => "電車（駅送迎）",
        None => "—",
    }
}

fn standing_ja(p: &PartyRow) -> String {
    match p.status.as_str() {
        "confirmed" if p.promoted_at.is_some() => "参加確定（繰り上げ）".into(),
        "confirmed" => "参加確定".into(),
        "waitlisted" => format!("キャンセル待ち {}番", p.position.unwrap_or_default()),
        "cancelled" => "キャンセル".into(),
        _ => "受付中".into(),
    }
}

async fn tour_and_parties(
    state: &DeskState,
    id: Uuid,
) -> Result<(TourRow, Vec<PartyRow>), AppError> {
    let tour = roster::tour(state.pool(), id)
        .await?
        .ok_or(AppError::NotFound)?;
    let mut parties = roster::parties(state.pool(), id).await?;
    // Check-in is what staff change on this very page: take it from the tour's
    // stream, so that the page shows a click at once even while the roster
    // projection is a moment behind.
    if let Ok(Some((live, _))) = state.tours().load_versioned(id).await {
        for p in &mut parties {
            if let Some(s) = live.sign_up(p.sign_up_id) {
                p.attended = s.attended;
            }
        }
    }
    Ok((tour, parties))
}

pub async fn page(
    State(state): State<DeskState>,
    staff: Staff,
    Path(id): Path<String>,
    Query(q): Query<Done>,
) -> Result<Response, AppError> {
    staff.require(Right::ViewAggregates)?;
    let id = tour_id(&id)?;
    let (tour, parties) = tour_and_parties(&state, id).await?;
    // Recorded before the page is drawn, for staff who see the parties' personal
    // columns (a viewer's roster holds none).
    if staff.can(Right::ViewPersonalData) {
        record(&state, &staff, AuditAction::ViewRoster, id, &parties).await?;
    }
    let tz = state.config().timezone;
    let now = state.now();
    let check_in_open = tour.status != "cancelled"
        && now >= tour.starts_at - chrono::Duration::hours(CHECK_IN_OPENS_HOURS);
    let can_check_in = staff.can(Right::ActOnCases) && check_in_open;
    let groups = [
        ("confirmed", "参加確定"),
        ("waitlisted", "キャンセル待ち"),
        ("cancelled", "キャンセル"),
    ];
    let title = format!("参加者名簿：{}", tour.title);
    let body = html! {
        p.no-print { a href=(format!("/desk/tours/{id}")) { "ツアーの詳細へ戻る" } }
        h1 { (title) }
        @if q.done.as_deref() == Some("attendance") { (layout::notice("参加の記録を保存しました。")) }
        div.roster-head {
            dl {
                dt { "日時" } dd { (ja_span(tz, tour.starts_at, tour.ends_at)) "（" (kind_ja(&tour.kind)) "）" }
                dt { "集合場所" } dd { @if tour.meeting_place.is_empty() { "—" } @else { (tour.meeting_place) } }
                dt { "状態" } dd { (status_ja(&tour.status)) }
                dt { "参加確定" } dd { (tour.confirmed_parties) "組（" (tour.confirmed_people) "人）／ 定員" (tour.capacity_parties) "組" }
                dt { "キャンセル待ち" } dd { (tour.waitlisted_parties) "組（" (tour.waitlisted_people) "人）" }
                dt { "印刷日時" } dd { (ja_datetime(tz, now)) }
            }
        }
        @if !staff.can(Right::ViewPersonalData) {
            p { "閲覧者の役割では、氏名・連絡先・配慮事項などの個人情報は「" (HIDDEN_JA) "」と表示されます。" }
        }
        p.no-print {
            a href=(format!("/desk/tours/{id}/roster.csv")) download { "名簿をCSVでダウンロード" }
            " ／ 印刷はブラウザの印刷機能をお使いください（操作ボタンは印刷されません）。"
        }
        @if staff.can(Right::ActOnCases) && !check_in_open && tour.status != "cancelled" {
            p.no-print { "参加の記録（受付）は、ツアー当日（開始の" (CHECK_IN_OPENS_HOURS) "時間前）から入力できます。" }
        }
        @for (status, label) in groups {
            @let rows: Vec<&PartyRow> = parties.iter().filter(|p| p.status == status).collect();
            h2 id=(format!("g-{status}")) { (label) "（" (rows.len()) "組・" (rows.iter().map(|p| p.people()).sum::<i32>()) "人）" }
            @if rows.is_empty() {
                p { "該当する申込はありません。" }
            } @else {
                (party_table(&staff, id, label, &rows, status == "confirmed" && can_check_in, state.config().timezone))
            }
        }
    };
    let page = layout::page_with_css(&staff, Section::Tours, &title, ROSTER_CSS, body);
    Ok(Html(page.into_string()).into_response())
}

fn party_table(
    staff: &Staff,
    tour_id: Uuid,
    label: &str,
    rows: &[&PartyRow],
    check_in: bool,
    tz: chrono_tz::Tz,
) -> Markup {
    let headers = [
        "No.",
        "状態",
        "代表者",
        "連絡先",
        "人数",
        "子どもの年齢",
        "配慮事項",
        "来場方法",
        "都道府県",
        "出欠",
        "満足度",
    ];
    layout::table_region(
        label,
        html! {
            table.stack role="table" {
                caption.vh { (label) "の名簿" }
                thead role="rowgroup" { tr role="row" {
                    @for h in headers { th scope="col" role="columnheader" { (h) } }
                } }
                tbody role="rowgroup" {
                    @for p in rows {
                        @let name = personal(staff, p, |pp| Some(pp.name.as_str()));
                        tr role="row" id=(format!("p-{}", p.sign_up_id)) {
                            td role="cell" { (cell_label("No.")) (p.arrival) }
                            td role="cell" { (cell_label("状態")) (standing_ja(p))
                                @if let Some(c) = p.cancelled_at { br; small { (layout::datetime_ja(Some(c), tz)) } } }
                            th scope="row" role="rowheader" {
                                (cell_label("代表者")) (name) " 様"
                                br; small { (personal(staff, p, |pp| Some(pp.name_kana.as_str()))) }
                            }
                            td role="cell" {
                                (cell_label("連絡先"))
                                (personal(staff, p, |pp| Some(pp.phone.as_str())))
                                br; small { (personal(staff, p, |pp| Some(pp.email.as_str()))) }
                            }
                            td role="cell" { (cell_label("人数")) "大人" (p.adults) "・子ども" (p.children) }
                            td role="cell" { (cell_label("子どもの年齢")) (personal(staff, p, |pp| pp.children_ages.as_deref())) }
                            td role="cell" { (cell_label("配慮事項")) (personal(staff, p, |pp| pp.needs.as_deref())) }
                            td role="cell" { (cell_label("来場方法")) (transport_ja(p.transport.as_deref())) }
                            td role="cell" { (cell_label("都道府県")) (p.prefecture) }
                            td.att role="cell" {
                                (cell_label("出欠"))
                                @match p.attended {
                                    Some(true) => span.att-yes { "参加" },
                                    Some(false) => span.att-no { "不参加" },
                                    None => { span.no-print { "未記録" } span.print-only aria-hidden="true" { "□参加　□不参加" } },
                                }
                                @if check_in {
                                    div.no-print {
                                        @for (value, text) in [("yes", "参加"), ("no", "不参加")] {
                                            @if p.attended != Some(value == "yes") {
                                                form method="post" action=(format!("/desk/tours/{tour_id}/attendance")) {
                                                    (staff.csrf_field())
                                                    input type="hidden" name="sign_up_id" value=(p.sign_up_id);
                                                    input type="hidden" name="attended" value=(value);
                                                    button.button.secondary.small type="submit" {
                                                        (text) "にする" span.vh { "（" (name) " 様）" }
                                                    }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                            td role="cell" { (cell_label("満足度")) @if let Some(s) = p.satisfaction { (s) " / 5" } @else { "—" } }
                        }
                    }
                }
            }
        },
    )
}

pub async fn attendance(
    State(state): State<DeskState>,
    staff: Staff,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm,
) -> Result<Response, AppError> {
    staff.require(Right::ActOnCases)?;
    let id = tour_id(&id)?;
    let bad = || {
        AppError::BadRequest(
            "送信内容が正しくありません。名簿を開き直して、もう一度操作してください。".into(),
        )
    };
    let sign_up_id = Uuid::parse_str(form.get("sign_up_id").trim()).map_err(|_| bad())?;
    let attended = match form.get("attended") {
        "yes" => true,
        "no" => false,
        _ => return Err(bad()),
    };
    let (live, _) = state
        .tours()
        .load_versioned(id)
        .await
        .map_err(|e| AppError::Internal(e.into()))?
        .ok_or(AppError::NotFound)?;
    if live.sign_up(sign_up_id).is_none() {
        return Err(AppError::NotFound);
    }
    let cmd = TourCommand::RecordAttendance {
        sign_up_id,
        attended,
        at: state.now(),
    };
    // No stale check: each party's check-in is its own fact, and the last click
    // for a party is the one that counts (a mis-click at the door is corrected).
    match state
        .tours()
        .execute(id, cmd, &Actor::new(staff.actor()))
        .await
    {
        Ok(_) | Err(CommandError::Refused(TourError::NoChange)) => Ok(Redirect::to(&format!(
            "/desk/tours/{id}/roster?done=attendance#p-{sign_up_id}"
        ))
        .into_response()),
        Err(CommandError::Refused(e)) => {
            let msg = match e {
                TourError::TourCancelled => {
                    "このツアーは中止されているため、参加を記録できません。"
                }
                other => other.message_ja(),
            };
            Err(AppError::Conflict(msg.to_owned()))
        }
        Err(e) => Err(AppError::Internal(e.into())),
    }
}

/// Records a roster's view or export in the audit trail: the tour and the number of
/// parties (never a value from the roster), and the parties' persons for staff who
/// see their personal columns.
async fn record(
    state: &DeskState,
    staff: &Staff,
    action: AuditAction,
    tour_id: Uuid,
    parties: &[PartyRow],
) -> Result<(), AppError> {
    let personal = staff.can(Right::ViewPersonalData);
    let persons: Vec<Uuid> = if personal {
        parties.iter().map(|p| p.person_id).collect()
    } else {
        Vec::new()
    };
    let page = match action {
        AuditAction::ExportRoster => "roster.csv",
        _ => "roster",
    };
    audit::record(
        state.pool(),
        staff.id,
        state.now(),
        action,
        &persons,
        &format!(
            "page=/desk/tours/{tour_id}/{page} tour={tour_id} parties={} personal_columns={personal}",
            parties.len()
        ),
    )
    .await?;
    Ok(())
}

/// A text cell as Excel must not mistake for a formula (CSV injection): a leading
/// `=`, `+`, `-`, `@`, tab or carriage return is escaped with an apostrophe.
pub(crate) fn text_cell(s: &str) -> String {
    match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{s}"),
        _ => s.to_owned(),
    }
}

/// UTF-8 with a BOM, CRLF line ends: what Excel in Japan opens as it is.
pub(crate) fn csv_response(filename: &str, rows: Vec<Vec<String>>) -> Result<Response, AppError> {
    let mut out = Vec::with_capacity(4096);
    out.extend_from_slice(b"\xEF\xBB\xBF");
    {
        let mut w = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(&mut out);
        for r in rows {
            w.write_record(&r).map_err(AppError::internal)?;
        }
        w.flush().map_err(AppError::internal)?;
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        out,
    )
        .into_response())
}

/// The roster's CSV columns, in order.
pub const CSV_HEADER: &[&str] = &[
    "status",
    "waitlist_position",
    "arrival",
    "received_at",
    "name",
    "name_kana",
    "email",
    "phone",
    "adults",
    "children",
    "people",
    "children_ages",
    "needs",
    "transport",
    "prefecture",
    "attended",
    "satisfaction",
    "promoted_at",
    "cancelled_at",
];

pub async fn csv(
    State(state): State<DeskState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    staff.require(Right::ViewAggregates)?;
    let id = tour_id(&id)?;
    let (tour, parties) = tour_and_parties(&state, id).await?;
    // Every export is recorded; with the parties' persons when it holds their data.
    record(&state, &staff, AuditAction::ExportRoster, id, &parties).await?;
    let tz = state.config().timezone;
    let when = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map(|t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default()
    };
    let mut rows = vec![CSV_HEADER.iter().map(|s| (*s).to_owned()).collect()];
    for p in &parties {
        let cell = |pick: &dyn Fn(&roster::PartyPersonal) -> Option<&str>| {
            text_cell(&personal(&staff, p, pick))
        };
        rows.push(vec![
            p.status.clone(),
            p.position.map(|n| n.to_string()).unwrap_or_default(),
            p.arrival.to_string(),
            when(Some(p.received_at)),
            cell(&|pp| Some(pp.name.as_str())),
            cell(&|pp| Some(pp.name_kana.as_str())),
            cell(&|pp| Some(pp.email.as_str())),
            cell(&|pp| Some(pp.phone.as_str())),
            p.adults.to_string(),
            p.children.to_string(),
            p.people().to_string(),
            cell(&|pp| pp.children_ages.as_deref()),
            cell(&|pp| pp.needs.as_deref()),
            p.transport.clone().unwrap_or_default(),
            p.prefecture.clone(),
            match p.attended {
                Some(true) => "attended".into(),
                Some(false) => "no_show".into(),
                None => String::new(),
            },
            p.satisfaction.map(|s| s.to_string()).unwrap_or_default(),
            when(p.promoted_at),
            when(p.cancelled_at),
        ]);
    }
    let date = tour.starts_at.with_timezone(&tz).format("%Y%m%d");
    csv_response(&format!("roster-{date}-{}.csv", tour.tour_id), rows)
}
