//! The tour pages: list, show, create, edit, publish, cancel.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use kujira_domain::tour::{TourCommand, TourDetails, TourError, TourKind, TourState, TourStatus};
use kujira_tours::mail::{fee_ja, ja_datetime, ja_span};
use kujira_tours::{Actor, CommandError};
use kujira_web::fields::{self, Field, InputOpts};
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

use super::form::{self, TourValues, label_of};
use super::roster::{self, TourRow};
use super::{kind_ja, status_ja, tour_id};
use crate::DeskState;
use crate::auth::{Require, Right, Staff, need};
use crate::error::AppError;
use crate::form::{CsrfForm, FormErrors};
use crate::layout::{self, Section, cell_label};

type Admin = Require<need::ManageTours>;

/// Past tours shown on the list.
const PAST_SHOWN: i64 = 100;
/// Longest cancellation reason (it goes into every party's mail).
pub const REASON_MAX: usize = 500;

#[derive(Debug, Deserialize)]
pub struct Done {
    done: Option<String>,
}

fn done_text(done: &str) -> Option<&'static str> {
    Some(match done {
        "created" => "ツアーを登録しました。",
        "published" => "ツアーを公開しました。申込ページに表示されます。",
        "updated" => {
            "ツアーの内容を変更しました。日時・集合場所・参加費の変更は、申込者にメールでお知らせします。"
        }
        "cancelled" => "ツアーを中止しました。申込者全員に中止のお知らせをメールで送ります。",
        "attendance" => "参加の記録を保存しました。",
        _ => return None,
    })
}

fn internal(e: CommandError) -> AppError {
    AppError::Internal(anyhow::Error::new(e))
}

/// The tour as its stream says now, with the stream's version.
async fn load(state: &DeskState, id: Uuid) -> Result<(TourState, u64), AppError> {
    state
        .tours()
        .load_versioned(id)
        .await
        .map_err(internal)?
        .ok_or(AppError::NotFound)
}

fn actor(staff: &Staff) -> Actor {
    Actor::new(staff.actor())
}

const STALE_JA: &str = "ほかの職員がこのツアーを更新したため、操作は行われませんでした。最新の状態を表示しています。内容を確認してから、もう一度操作してください。";

// ---------------------------------------------------------------------------
// List
// ---------------------------------------------------------------------------

pub async fn list(
    State(state): State<DeskState>,
    staff: Staff,
    Query(q): Query<Done>,
) -> Result<Response, AppError> {
    staff.require(Right::ViewAggregates)?;
    let now = state.now();
    let (upcoming, past) = roster::tours(state.pool(), now, PAST_SHOWN).await?;
    let tz = state.config().timezone;
    let body = html! {
        h1 { "ツアー" }
        @if let Some(t) = q.done.as_deref().and_then(done_text) { (layout::notice(t)) }
        @if staff.can(Right::ManageTours) {
            p { a.button.small href="/desk/tours/new" { "新しいツアーを登録する" } }
        }
        h2 { "開催前・開催中のツアー" }
        (tour_table("開催前・開催中のツアー", &upcoming, tz))
        h2 { "終了したツアー" }
        (tour_table("終了したツアー", &past, tz))
    };
    Ok(Html(layout::page(&staff, Section::Tours, "ツアー", body).into_string()).into_response())
}

fn tour_table(label: &str, tours: &[TourRow], tz: chrono_tz::Tz) -> Markup {
    if tours.is_empty() {
        return html! { p { "該当するツアーはありません。" } };
    }
    layout::table_region(
        label,
        html! {
            table.stack role="table" {
                caption.vh { (label) "（" (tours.len()) "件）" }
                thead role="rowgroup" { tr role="row" {
                    @for h in ["ツアー", "日時", "状態", "参加確定", "キャンセル待ち", "申込締切"] {
                        th scope="col" role="columnheader" { (h) }
                    }
                } }
                tbody role="rowgroup" {
                    @for t in tours {
                        tr role="row" {
                            th scope="row" role="rowheader" {
                                a href=(format!("/desk/tours/{}", t.tour_id)) { (t.title) }
                                br; small { (kind_ja(&t.kind)) }
                            }
                            td role="cell" { (cell_label("日時")) (ja_span(tz, t.starts_at, t.ends_at)) }
                            td role="cell" { (cell_label("状態")) (status_ja(&t.status)) }
                            td role="cell" {
                                (cell_label("参加確定"))
                                (t.confirmed_parties) "組 / 定員" (t.capacity_parties) "組（" (t.confirmed_people) "人）"
                            }
                            td role="cell" { (cell_label("キャンセル待ち")) (t.waitlisted_parties) "組" }
                            td role="cell" { (cell_label("申込締切")) (ja_datetime(tz, t.closes_at)) }
                        }
                    }
                }
            }
        },
    )
}

// ---------------------------------------------------------------------------
// Show (with publish)
// ---------------------------------------------------------------------------

pub async fn show(
    State(state): State<DeskState>,
    staff: Staff,
    Path(id): Path<String>,
    Query(q): Query<Done>,
) -> Result<Response, AppError> {
    staff.require(Right::ViewAggregates)?;
    let id = tour_id(&id)?;
    let (tour, version) = load(&state, id).await?;
    let notice = q.done.as_deref().and_then(done_text).map(str::to_owned);
    Ok(show_page(
        &state,
        &staff,
        id,
        &tour,
        version,
        StatusCode::OK,
        notice,
        None,
    ))
}

fn details_list(d: &TourDetails, tz: chrono_tz::Tz) -> Markup {
    html! {
        dl.confirm {
            dt { "種類" } dd { (d.kind.label_ja()) }
            dt { "日時" } dd { (ja_span(tz, d.starts_at, d.ends_at)) }
            dt { "申込締切" } dd { (ja_datetime(tz, d.sign_up_closes_at())) @if d.deadline.is_none() { "（開始まで）" } }
            dt { "集合場所" } dd { @if d.meeting_place.is_empty() { "—" } @else { (d.meeting_place) } }
            dt { "参加費" } dd { (fee_ja(d.fee_yen)) }
            dt { "定員" } dd { (d.capacity_parties) "組" @if let Some(m) = d.max_people { "（最大" (m) "人）" } }
            dt { "対象" } dd { @if d.audience.is_empty() { "—" } @else { (d.audience) } }
            dt { "内容" } dd { @if d.description.is_empty() { "—" } @else { (d.description) } }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn show_page(
    state: &DeskState,
    staff: &Staff,
    id: Uuid,
    tour: &TourState,
    version: u64,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
) -> Response {
    let tz = state.config().timezone;
    let now = state.now();
    let Some(d) = tour.details.as_ref() else {
        return AppError::NotFound.into_response();
    };
    let started = now >= d.starts_at;
    let cancelled = tour.status == TourStatus::Cancelled;
    let body = html! {
        p.no-print { a href="/desk/tours" { "ツアーの一覧へ戻る" } }
        h1 { (d.title) }
        @if let Some(n) = &notice { (layout::notice(n)) }
        @if let Some(e) = &error {
            div.error-summary role="alert" { p { (e) } }
        }
        p { "状態：" strong { (status_ja(tour.status.as_str())) }
            @if let Some(r) = &tour.cancel_reason { "（中止の理由：" (r) "）" } }
        section.panel aria-labelledby="counts-heading" {
            h2 id="counts-heading" { "申込の状況" }
            ul {
                li { "参加確定：" (tour.confirmed_parties()) "組（" (tour.confirmed_people()) "人）／ 定員" (d.capacity_parties) "組" }
                li { "キャンセル待ち：" (tour.waitlist_length()) "組" }
                li { "キャンセル：" (tour.sign_ups.iter().filter(|s| s.status == kujira_domain::tour::SignUpStatus::Cancelled).count()) "組" }
            }
            p {
                a href=(format!("/desk/tours/{id}/roster")) { "参加者名簿を見る（印刷用）" }
                " ／ "
                a href=(format!("/desk/tours/{id}/roster.csv")) download { "名簿をCSVでダウンロード" }
            }
        }
        h2 { "ツアーの内容" }
        (details_list(d, tz))
        @if staff.can(Right::ManageTours) && !cancelled {
            section.panel.no-print aria-labelledby="actions-heading" {
                h2 id="actions-heading" { "操作" }
                @if started {
                    p { "開始済みのツアーは変更できません。" }
                } @else {
                    p { a href=(format!("/desk/tours/{id}/edit")) { "内容を変更する" } }
                }
                @if tour.status == TourStatus::Draft {
                    form method="post" action=(format!("/desk/tours/{id}/publish")) {
                        (staff.csrf_field())
                        (fields::hidden("version", &version.to_string()))
                        p.help { "公開すると、申込ページの一覧に表示され、申し込みを受け付けます。" }
                        button.button.small type="submit" { "公開する" }
                    }
                }
                p { a href=(format!("/desk/tours/{id}/cancel")) { "ツアーを中止する" } }
            }
        }
    };
    let page = layout::page(staff, Section::Tours, &d.title, body);
    (status, Html(page.into_string())).into_response()
}

#[derive(Debug)]
struct Seen(u64);

fn seen(form: &kujira_web::FormData) -> Result<Seen, AppError> {
    form.get("version")
        .trim()
        .parse::<u64>()
        .map(Seen)
        .map_err(|_| {
            AppError::BadRequest(
                "フォームの内容が不完全です。ページを開き直して、もう一度操作してください。".into(),
            )
        })
}

pub async fn publish(
    State(state): State<DeskState>,
    Require(staff, _): Admin,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm,
) -> Result<Response, AppError> {
    let id = tour_id(&id)?;
    let Seen(version) = seen(&form)?;
    load(&state, id).await?;
    let cmd = TourCommand::Publish { at: state.now() };
    match state
        .tours()
        .execute(id, cmd, &actor(&staff).seen(version))
        .await
    {
        Ok(_) => Ok(Redirect::to(&format!("/desk/tours/{id}?done=published")).into_response()),
        Err(CommandError::Stale { .. }) => {
            let (tour, v) = load(&state, id).await?;
            Ok(show_page(
                &state,
                &staff,
                id,
                &tour,
                v,
                StatusCode::CONFLICT,
                None,
                Some(STALE_JA.into()),
            ))
        }
        Err(CommandError::Refused(e)) => {
            let (tour, v) = load(&state, id).await?;
            let (_, msg) = form::refusal(&e);
            Ok(show_page(
                &state,
                &staff,
                id,
                &tour,
                v,
                StatusCode::CONFLICT,
                None,
                Some(msg),
            ))
        }
        Err(e) => Err(internal(e)),
    }
}

// ---------------------------------------------------------------------------
// Create and edit
// ---------------------------------------------------------------------------

enum Mode {
    Create {
        tour_id: Uuid,
    },
    Edit {
        tour_id: Uuid,
        version: u64,
        title: String,
    },
}

struct FormView<'a> {
    mode: Mode,
    values: TourValues,
    errors: FormErrors,
    /// A message about the whole form (a lost race, a refusal).
    general: Option<String>,
    /// The tour as it stands now, shown beside a lost race.
    current: Option<&'a TourDetails>,
}

fn render_form(state: &DeskState, staff: &Staff, status: StatusCode, v: FormView) -> Response {
    let tz = state.config().timezone;
    let (title, action, submit) = match &v.mode {
        Mode::Create { .. } => (
            "新しいツアーを登録".to_owned(),
            "/desk/tours".to_owned(),
            "登録する",
        ),
        Mode::Edit { tour_id, title, .. } => (
            format!("ツアーの内容を変更：{title}"),
            format!("/desk/tours/{tour_id}/edit"),
            "変更を保存する",
        ),
    };
    let kinds: Vec<(&str, &str)> = [TourKind::DayTrip, TourKind::Overnight]
        .iter()
        .map(|k| (k.as_str(), k.label_ja()))
        .collect();
    let err = |f: &str| v.errors.get(f).map(str::to_owned);
    let values = &v.values;
    let dt_opts = InputOpts::default();
    let body = html! {
        @if let Mode::Edit { tour_id, .. } = &v.mode {
            p { a href=(format!("/desk/tours/{tour_id}")) { "ツアーの詳細へ戻る" } }
        } @else {
            p { a href="/desk/tours" { "ツアーの一覧へ戻る" } }
        }
        h1 { (title) }
        @if let Some(g) = &v.general {
            div.error-summary role="alert" tabindex="-1" { p { (g) } }
        }
        (v.errors.summary(label_of))
        @if let Some(cur) = v.current {
            section.panel aria-labelledby="current-heading" {
                h2 id="current-heading" { "現在のツアーの内容（ほかの職員による変更後）" }
                (details_list(cur, tz))
            }
        }
        form.narrow method="post" action=(action) novalidate {
            (staff.csrf_field())
            @match &v.mode {
                Mode::Create { tour_id } => { (fields::hidden("tour_id", &tour_id.to_string())) }
                Mode::Edit { version, .. } => { (fields::hidden("version", &version.to_string())) }
            }
            (fields::input(&Field::new("title", "タイトル", true).error(err("title").as_deref()),
                "text", &values.title, InputOpts { maxlength: Some(kujira_domain::tour::TITLE_MAX), ..InputOpts::default() }))
            (fields::select(&Field::new("kind", "種類", true).error(err("kind").as_deref()), &kinds, &values.kind))
            (fields::input(&Field::new("starts_at", "開始日時", true)
                    .help("例：2027-02-14 09:00（市の時刻）").error(err("starts_at").as_deref()),
                "datetime-local", &values.starts_at, dt_opts))
            (fields::input(&Field::new("ends_at", "終了日時", true).error(err("ends_at").as_deref()),
                "datetime-local", &values.ends_at, dt_opts))
            (fields::input(&Field::new("deadline", "申込締切", false)
                    .help("空欄の場合は、開始日時まで申し込みを受け付けます。").error(err("deadline").as_deref()),
                "datetime-local", &values.deadline, dt_opts))
            (fields::input(&Field::new("capacity_parties", "定員（組数）", true)
                    .help("1組（家族・グループ）を1単位として数えます。").error(err("capacity_parties").as_deref()),
                "text", &values.capacity_parties, InputOpts { inputmode: Some("numeric"), maxlength: Some(4), ..InputOpts::default() }))
            (fields::input(&Field::new("max_people", "最大人数", false)
                    .help("子どもを含む合計の上限。空欄なら組数だけで管理します。").error(err("max_people").as_deref()),
                "text", &values.max_people, InputOpts { inputmode: Some("numeric"), maxlength: Some(5), ..InputOpts::default() }))
            (fields::input(&Field::new("fee_yen", "参加費（円）", false)
                    .help("無料の場合は空欄または0。").error(err("fee_yen").as_deref()),
                "text", &values.fee_yen, InputOpts { inputmode: Some("numeric"), maxlength: Some(9), ..InputOpts::default() }))
            (fields::input(&Field::new("meeting_place", "集合場所", false).error(err("meeting_place").as_deref()),
                "text", &values.meeting_place, InputOpts { maxlength: Some(form::LINE_MAX), ..InputOpts::default() }))
            (fields::input(&Field::new("audience", "対象", false)
                    .help("例：子育て世帯、移住を検討中の方").error(err("audience").as_deref()),
                "text", &values.audience, InputOpts { maxlength: Some(form::LINE_MAX), ..InputOpts::default() }))
            (fields::textarea(&Field::new("description", "内容", false).error(err("description").as_deref()),
                &values.description, Some(form::DESCRIPTION_MAX)))
            @if let Mode::Create { .. } = &v.mode {
                (fields::checkbox(&Field::new("publish", "公開", false)
                    .help("チェックしない場合は下書きとして登録し、あとで公開できます。"),
                    "登録と同時に公開する", values.publish))
            }
            div.actions { button.button type="submit" { (submit) } }
        }
    };
    let page = layout::page(staff, Section::Tours, &title, body);
    (status, Html(page.into_string())).into_response()
}

pub async fn new_form(
    State(state): State<DeskState>,
    Require(staff, _): Admin,
) -> Result<Response, AppError> {
    Ok(render_form(
        &state,
        &staff,
        StatusCode::OK,
        FormView {
            mode: Mode::Create {
                tour_id: Uuid::new_v4(),
            },
            values: TourValues {
                kind: TourKind::DayTrip.as_str().into(),
                ..TourValues::default()
            },
            errors: FormErrors::new(),
            general: None,
            current: None,
        },
    ))
}

pub async fn create(
    State(state): State<DeskState>,
    Require(staff, _): Admin,
    CsrfForm(form): CsrfForm,
) -> Result<Response, AppError> {
    // The id comes with the form, so that a double submit lands on the same tour.
    let id = Uuid::parse_str(form.get("tour_id").trim()).map_err(|_| {
        AppError::BadRequest(
            "フォームの内容が不完全です。ページを開き直して、もう一度操作してください。".into(),
        )
    })?;
    let values = TourValues::from_form(&form);
    let tz = state.config().timezone;
    let now = state.now();
    let again = |values: TourValues, errors: FormErrors, general: Option<String>| {
        render_form(
            &state,
            &staff,
            StatusCode::UNPROCESSABLE_ENTITY,
            FormView {
                mode: Mode::Create { tour_id: id },
                values,
                errors,
                general,
                current: None,
            },
        )
    };
    let details = match values.parse(tz, now) {
        Ok(d) => d,
        Err(errors) => return Ok(again(values, errors, None)),
    };
    let cmd = TourCommand::Schedule {
        tour_id: id,
        details,
        publish: values.publish,
        at: now,
    };
    match state.tours().execute(id, cmd, &actor(&staff)).await {
        Ok(_) | Err(CommandError::Refused(TourError::AlreadyScheduled)) => {
            Ok(Redirect::to(&format!("/desk/tours/{id}?done=created")).into_response())
        }
        Err(CommandError::Refused(e)) => {
            let (field, msg) = form::refusal(&e);
            let mut errors = FormErrors::new();
            match field {
                Some(f) => {
                    errors.add(f, msg);
                    Ok(again(values, errors, None))
                }
                None => Ok(again(values, errors, Some(msg))),
            }
        }
        Err(e) => Err(internal(e)),
    }
}

pub async fn edit_form(
    State(state): State<DeskState>,
    Require(staff, _): Admin,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let id = tour_id(&id)?;
    let (tour, version) = load(&state, id).await?;
    let d = tour.details.as_ref().ok_or(AppError::NotFound)?;
    let tz = state.config().timezone;
    let general = if tour.status == TourStatus::Cancelled {
        Some("このツアーは中止されているため、変更できません。".to_owned())
    } else if state.now() >= d.starts_at {
        Some("このツアーはすでに開始・終了しているため、変更できません。".to_owned())
    } else {
        None
    };
    Ok(render_form(
        &state,
        &staff,
        StatusCode::OK,
        FormView {
            mode: Mode::Edit {
                tour_id: id,
                version,
                title: d.title.clone(),
            },
            values: TourValues::from_details(d, tz),
            errors: FormErrors::new(),
            general,
            current: None,
        },
    ))
}

pub async fn edit(
    State(state): State<DeskState>,
    Require(staff, _): Admin,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm,
) -> Result<Response, AppError> {
    let id = tour_id(&id)?;
    let Seen(version) = seen(&form)?;
    let (tour, _) = load(&state, id).await?;
    let title = tour
        .details
        .as_ref()
        .map(|d| d.title.clone())
        .unwrap_or_default();
    let values = TourValues::from_form(&form);
    let tz = state.config().timezone;
    let now = state.now();
    let again = |status: StatusCode,
                 values: TourValues,
                 version: u64,
                 errors: FormErrors,
                 general: Option<String>,
                 current: Option<&TourDetails>| {
        render_form(
            &state,
            &staff,
            status,
            FormView {
                mode: Mode::Edit {
                    tour_id: id,
                    version,
                    title: title.clone(),
                },
                values,
                errors,
                general,
                current,
            },
        )
    };
    let details = match values.parse(tz, now) {
        Ok(d) => d,
        Err(errors) => {
            return Ok(again(
                StatusCode::UNPROCESSABLE_ENTITY,
                values,
                version,
                errors,
                None,
                None,
            ));
        }
    };
    let cmd = TourCommand::ChangeDetails { details, at: now };
    match state
        .tours()
        .execute(id, cmd, &actor(&staff).seen(version))
        .await
    {
        Ok(_) => Ok(Redirect::to(&format!("/desk/tours/{id}?done=updated")).into_response()),
        Err(CommandError::Stale { current, .. }) => {
            let (tour, _) = load(&state, id).await?;
            Ok(again(
                StatusCode::CONFLICT,
                values,
                current,
                FormErrors::new(),
                Some(
                    "ほかの職員がこのツアーを先に変更したため、あなたの変更は保存されていません。下に現在の内容を表示しています。入力内容を見直して、もう一度保存してください。"
                        .into(),
                ),
                tour.details.as_ref(),
            ))
        }
        Err(CommandError::Refused(e)) => {
            let (field, msg) = form::refusal(&e);
            let mut errors = FormErrors::new();
            let status = match e {
                TourError::TourStarted | TourError::TourCancelled => StatusCode::CONFLICT,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            match field {
                Some(f) => {
                    errors.add(f, msg);
                    Ok(again(status, values, version, errors, None, None))
                }
                None => Ok(again(status, values, version, errors, Some(msg), None)),
            }
        }
        Err(e) => Err(internal(e)),
    }
}

// ---------------------------------------------------------------------------
// Cancel
// ---------------------------------------------------------------------------

#[allow(clippy::too_many_arguments)]
fn cancel_page(
    state: &DeskState,
    staff: &Staff,
    id: Uuid,
    tour: &TourState,
    version: u64,
    status: StatusCode,
    reason: &str,
    errors: &FormErrors,
    general: Option<&str>,
) -> Response {
    let tz = state.config().timezone;
    let Some(d) = tour.details.as_ref() else {
        return AppError::NotFound.into_response();
    };
    let affected = tour.active_sign_ups().count();
    let title = format!("ツアーの中止：{}", d.title);
    let body = html! {
        p { a href=(format!("/desk/tours/{id}")) { "ツアーの詳細へ戻る" } }
        h1 { (title) }
        @if let Some(g) = general { div.error-summary role="alert" tabindex="-1" { p { (g) } } }
        (errors.summary(label_of))
        (details_list(d, tz))
        @if tour.status == TourStatus::Cancelled {
            p { "このツアーはすでに中止されています。" }
        } @else {
            form.narrow method="post" action=(format!("/desk/tours/{id}/cancel")) novalidate {
                (staff.csrf_field())
                (fields::hidden("version", &version.to_string()))
                p { "中止すると、参加確定・キャンセル待ちの " strong { (affected) "組" } " 全員に中止のお知らせをメールで送ります。中止は取り消せません。" }
                (fields::textarea(&Field::new("reason", "中止の理由", true)
                    .help("申込者へのメールにそのまま記載されます。個人名などは書かないでください。")
                    .error(errors.get("reason")), reason, Some(REASON_MAX)))
                div.actions { button.button type="submit" { "ツアーを中止する" } }
            }
        }
    };
    let page = layout::page(staff, Section::Tours, &title, body);
    (status, Html(page.into_string())).into_response()
}

pub async fn cancel_form(
    State(state): State<DeskState>,
    Require(staff, _): Admin,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let id = tour_id(&id)?;
    let (tour, version) = load(&state, id).await?;
    Ok(cancel_page(
        &state,
        &staff,
        id,
        &tour,
        version,
        StatusCode::OK,
        "",
        &FormErrors::new(),
        None,
    ))
}

pub async fn cancel(
    State(state): State<DeskState>,
    Require(staff, _): Admin,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm,
) -> Result<Response, AppError> {
    let id = tour_id(&id)?;
    let Seen(version) = seen(&form)?;
    let (tour, _) = load(&state, id).await?;
    let raw = form.get("reason");
    let reason = raw.trim().replace("\r\n", "\n");
    let mut errors = FormErrors::new();
    if reason.is_empty() {
        errors.add("reason", "中止の理由を入力してください。");
    } else if reason.chars().count() > REASON_MAX {
        errors.add(
            "reason",
            format!("中止の理由は{REASON_MAX}文字以内で入力してください。"),
        );
    }
    if !errors.is_empty() {
        return Ok(cancel_page(
            &state,
            &staff,
            id,
            &tour,
            version,
            StatusCode::UNPROCESSABLE_ENTITY,
            raw,
            &errors,
            None,
        ));
    }
    let cmd = TourCommand::Cancel {
        reason: Some(reason),
        at: state.now(),
    };
    match state
        .tours()
        .execute(id, cmd, &actor(&staff).seen(version))
        .await
    {
        Ok(_) => Ok(Redirect::to(&format!("/desk/tours/{id}?done=cancelled")).into_response()),
        Err(CommandError::Stale { current, .. }) => {
            let (tour, _) = load(&state, id).await?;
            Ok(cancel_page(
                &state,
                &staff,
                id,
                &tour,
                current,
                StatusCode::CONFLICT,
                raw,
                &FormErrors::new(),
                Some(STALE_JA),
            ))
        }
        Err(CommandError::Refused(e)) => {
            let (tour, v) = load(&state, id).await?;
            let (_, msg) = form::refusal(&e);
            Ok(cancel_page(
                &state,
                &staff,
                id,
                &tour,
                v,
                StatusCode::CONFLICT,
                raw,
                &FormErrors::new(),
                Some(&msg),
            ))
        }
        Err(e) => Err(internal(e)),
    }
}
