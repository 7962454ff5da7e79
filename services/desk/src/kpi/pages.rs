//! `/desk/kpi` (every role), `/desk/kpi.csv`, `/desk/kpi/targets` (admins).

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use kujira_eventlog::StreamName;
use kujira_store::{CommandContext, CommandError};
use maud::{Markup, html};
use serde::Deserialize;
use unicode_normalization::UnicodeNormalization;

use super::chart;
use super::figures::{self, Figures, Row, csv_value};
use super::metrics::{self, Group, Make, Unit};
use super::targets::{KpiTargets, TargetsCommand, TargetsState};
use crate::DeskState;
use crate::auth::{Require, Right, Staff, need};
use crate::error::AppError;
use crate::form::{CsrfForm, FormErrors};
use crate::layout::{self, Section};

/// The fiscal years one can ask for.
const FY_MIN: i32 = 2000;
const FY_MAX: i32 = 2100;

#[derive(Debug, Deserialize)]
pub struct FyQuery {
    fy: Option<String>,
    done: Option<String>,
}

/// The year asked for: `Ok(None)` when none was, `Err` with a message when it is
/// not a year.
fn parse_fy(raw: Option<&str>) -> Result<Option<i32>, String> {
    let Some(raw) = raw else { return Ok(None) };
    let s: String = raw.nfkc().collect::<String>().trim().to_owned();
    if s.is_empty() {
        return Ok(None);
    }
    match s.parse::<i32>() {
        Ok(y) if (FY_MIN..=FY_MAX).contains(&y) => Ok(Some(y)),
        _ => Err(format!(
            "年度は{FY_MIN}〜{FY_MAX}の西暦4桁で指定してください（例：2026 は 2026年4月〜2027年3月）。"
        )),
    }
}

fn stream(fy: i32) -> StreamName {
    StreamName::new(super::targets::CATEGORY, fy)
}

async fn targets(state: &DeskState, fy: i32) -> Result<(TargetsState, u64), AppError> {
    kujira_store::load::<KpiTargets>(state.store(), &stream(fy), None)
        .await
        .map_err(|e| AppError::Internal(e.into()))
}

fn month_labels(f: &Figures) -> [String; 12] {
    std::array::from_fn(|i| {
        use chrono::Datelike;
        format!("{}月", f.months[i].month())
    })
}

fn value(unit: Unit, v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_owned(), |v| unit.display(v))
}

fn percent(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_owned(), |v| format!("{v:.1}%"))
}

async fn figures_for(state: &DeskState, fy: i32) -> Result<Figures, AppError> {
    let (t, _) = targets(state, fy).await?;
    Ok(figures::compute(
        state.pool(),
        state.config().timezone,
        fy,
        state.now(),
        &t.targets,
    )
    .await?)
}

// ---------------------------------------------------------------------------
// Dashboard
// ---------------------------------------------------------------------------

pub async fn dashboard(
    State(state): State<DeskState>,
    staff: Staff,
    Query(q): Query<FyQuery>,
) -> Result<Response, AppError> {
    staff.require(Right::ViewAggregates)?;
    let tz = state.config().timezone;
    let current = figures::fiscal_year_of(state.now(), tz);
    let (fy, error, status) = match parse_fy(q.fy.as_deref()) {
        Ok(fy) => (fy.unwrap_or(current), None, StatusCode::OK),
        Err(e) => (current, Some(e), StatusCode::BAD_REQUEST),
    };
    let f = figures_for(&state, fy).await?;
    let notice = (q.done.as_deref() == Some("targets")).then_some("目標値を保存しました。");
    let title = format!("KPI（{fy}年度）");
    let body = html! {
        h1 { (title) }
        p { (fy) "年4月1日〜" (fy + 1) "年3月31日（" (tz.name()) "）。"
            @if f.shown < 12 && f.shown > 0 { (f.shown) "か月目まで（" (month_labels(&f)[f.shown - 1]) "末まで）の集計です。" }
            @if f.shown == 0 { "この年度はまだ始まっていません。" }
        }
        @if let Some(n) = notice { (layout::notice(n)) }
        (fy_form(fy, current, error.as_deref()))
        p.no-print {
            a href=(format!("/desk/kpi.csv?fy={fy}")) download { (fy) "年度のKPIをCSVでダウンロード" }
            @if staff.can(Right::ManageSettings) {
                " ／ " a href=(format!("/desk/kpi/targets?fy={fy}")) { (fy) "年度の目標値を設定する" }
            }
        }
        (summary(&f))
        nav aria-label="KPIの項目" class="no-print" {
            ul {
                @for g in Group::ALL { li { a href=(format!("#{}", g.anchor())) { (g.title()) } } }
            }
        }
        @for g in Group::ALL { (group(&f, g)) }
        p { small {
            "移住者の定義：" (state.config().words.mover_definition)
            br;
            "数え方：新規相談は受付日、移住は転入日、ツアー申込は申込日、ツアー参加・出席率・満足度は開催日（開始済みで中止でないツアー）の月で数えます。"
            "ツアー参加者は、受付記録のあるツアーは「参加」の記録から、ないツアーは参加確定の申込から数えます。"
            "フォームの各段階は、1回のフォーム利用（再読み込みを含む）を1件と数えます。"
            "コホートの「人」は、移住の世帯人数、なければツアーの参加人数、なければオーダーメイドツアー申込の人数、いずれもなければ1人として数えます。"
            "前年度同期は、前年度の同じ月までの合計です。"
        } }
    };
    let page = layout::page_with_css(&staff, Section::Kpi, &title, chart::CSS, body);
    Ok((status, Html(page.into_string())).into_response())
}

fn fy_form(fy: i32, current: i32, error: Option<&str>) -> Markup {
    let options: Vec<i32> = ((current - 9)..=(current + 1)).rev().collect();
    html! {
        form.fy-form method="get" action="/desk/kpi" {
            div.field {
                label for="f-fy" { "年度" }
                @if let Some(e) = error { p.error-text id="f-fy-error" { "エラー：" (e) } }
                select id="f-fy" name="fy" aria-invalid=[error.map(|_| "true")] aria-describedby=[error.map(|_| "f-fy-error")] {
                    @if !options.contains(&fy) { option value=(fy) selected { (fy) "年度" } }
                    @for y in options {
                        option value=(y) selected[y == fy] { (y) "年度（" (y) "年4月〜" (y + 1) "年3月）" }
                    }
                }
            }
            button.button.small type="submit" { "表示する" }
        }
    }
}

fn summary(f: &Figures) -> Markup {
    let keys = [
        "inquiries_total",
        "moved_households",
        "moved_people",
        "tour_participants",
        "funnel_overall_rate",
    ];
    html! {
        h2 { "主な指標（年度の累計）" }
        ul.kpi-summary {
            @for k in keys {
                @if let Some(r) = f.row(k) {
                    li {
                        (r.def.label)
                        span.big { (value(r.def.unit, r.total)) " " small { (r.def.unit.suffix()) } }
                        "前年度同期 " (value(r.def.unit, r.last_total))
                        @if let Some(t) = r.target { br; "目標 " (r.def.unit.display(t)) "（達成率 " (percent(r.achievement)) "）" }
                    }
                }
            }
        }
    }
}

fn group(f: &Figures, g: Group) -> Markup {
    let rows: Vec<&Row> = f.rows.iter().filter(|r| r.def.group == g).collect();
    let labels = month_labels(f);
    let id = g.anchor();
    html! {
        section.kpi-group aria-labelledby=(format!("{id}")) {
            h2 id=(id) { (g.title()) }
            @match g {
                Group::Cohort => {
                    (cohort_chart(f))
                    (cohort_table(&rows))
                }
                _ => {
                    @if let Some(key) = chart_metric(g) {
                        @if let Some(r) = f.row(key) {
                            (chart::monthly_bars(
                                &format!("chart-{id}"),
                                &format!("{}（月別、今年度と前年度）", r.def.label),
                                &describe(r),
                                &labels, &r.this, &r.last))
                        }
                    }
                    @if g == Group::Funnel { (funnel_chart(f)) }
                    (monthly_table(f, g, &rows, &labels))
                    @if g == Group::Pipeline { (moves_table(f)) }
                    @if g == Group::Funnel { (funnel_table(f)) }
                }
            }
        }
    }
}

fn chart_metric(g: Group) -> Option<&'static str> {
    match g {
        Group::Inquiries => Some("inquiries_total"),
        Group::Kgi => Some("moved_households"),
        Group::Tours => Some("tour_participants"),
        Group::Mail => Some("emails_sent"),
        Group::Pipeline => Some("phase_decided"),
        Group::Funnel | Group::Cohort => None,
    }
}

fn describe(r: &Row) -> String {
    let u = r.def.unit;
    let mut s = format!(
        "今年度の累計 {}{}、前年度同期 {}{}。",
        value(u, r.total),
        u.suffix(),
        value(u, r.last_total),
        u.suffix()
    );
    if let Some(t) = r.target {
        s.push_str(&format!(
            "目標 {}{}、達成率 {}。",
            u.display(t),
            u.suffix(),
            percent(r.achievement)
        ));
    }
    s.push_str("月ごとの数値は次の表のとおりです。");
    s
}

fn monthly_table(f: &Figures, g: Group, rows: &[&Row], labels: &[String; 12]) -> Markup {
    layout::table_region(
        &format!("{}の月別の数値", g.title()),
        html! {
            table.kpi {
                caption { (g.title()) "の月別の数値（上段：今年度、下段：前年度の同じ月）" }
                thead { tr {
                    th scope="col" { "指標" }
                    @for l in labels { th scope="col" { (l) } }
                    th scope="col" { "年度累計" }
                    th scope="col" { "前年度同期" }
                    th scope="col" { "目標" }
                    th scope="col" { "達成率" }
                } }
                tbody {
                    @for r in rows {
                        tr {
                            th scope="row" { (r.def.label) "（" (r.def.unit.suffix()) "）" }
                            @for i in 0..12 {
                                td {
                                    @if i < f.shown { (value(r.def.unit, r.this[i])) } @else { "—" }
                                    span.ly { "前年 " (value(r.def.unit, r.last[i])) }
                                }
                            }
                            td { strong { (value(r.def.unit, r.total)) } }
                            td { (value(r.def.unit, r.last_total)) }
                            td { (r.target.map_or_else(|| "—".to_owned(), |t| r.def.unit.display(t))) }
                            td { (percent(r.achievement)) }
                        }
                    }
                }
            }
        },
    )
}

fn moves_table(f: &Figures) -> Markup {
    html! {
        h3 { "段階の移動（年度累計）" }
        @if f.moves.is_empty() {
            p { "この期間に段階の移動はありません。" }
        } @else {
            (layout::table_region("段階の移動", html! {
                table.kpi {
                    caption { "段階の移動（年度累計と前年度同期）" }
                    thead { tr { th scope="col" { "移動" } th scope="col" { "今年度" } th scope="col" { "前年度同期" } } }
                    tbody {
                        @for (from, to, a, b) in &f.moves {
                            tr { th scope="row" { (metrics::phase_ja(from)) " → " (metrics::phase_ja(to)) } td { (a) "件" } td { (b) "件" } }
                        }
                    }
                }
            }))
        }
    }
}

fn funnel_chart(f: &Figures) -> Markup {
    let get = |k: &str| f.row(k).and_then(|r| r.total).unwrap_or(0.0);
    let last = |k: &str| f.row(k).and_then(|r| r.last_total);
    let stages = vec![
        (
            "フォーム表示".to_owned(),
            get("funnel_form_views"),
            last("funnel_form_views"),
        ),
        (
            "確認画面表示".to_owned(),
            get("funnel_confirm_views"),
            last("funnel_confirm_views"),
        ),
        (
            "送信完了".to_owned(),
            get("funnel_completions"),
            last("funnel_completions"),
        ),
    ];
    let rate = |k: &str| percent(f.row(k).and_then(|r| r.total));
    chart::stage_bars(
        "chart-funnel-stages",
        "フォームの段階（年度累計、今年度と前年度同期）",
        &format!(
            "表示 {} 件、確認 {} 件、完了 {} 件。表示→確認 {}、確認→完了 {}、表示→完了 {}。",
            get("funnel_form_views"),
            get("funnel_confirm_views"),
            get("funnel_completions"),
            rate("funnel_confirm_rate"),
            rate("funnel_completion_rate"),
            rate("funnel_overall_rate"),
        ),
        &stages,
    )
}

fn funnel_table(f: &Figures) -> Markup {
    let rate = |n: i64, d: i64| percent((d > 0).then(|| n as f64 / d as f64 * 100.0));
    html! {
        h3 { "フォーム別（年度累計）" }
        (layout::table_region("フォーム別の利用状況", html! {
            table.kpi {
                caption { "フォーム別の利用状況（年度累計）" }
                thead { tr {
                    th scope="col" { "フォーム" } th scope="col" { "表示" } th scope="col" { "確認" } th scope="col" { "完了" }
                    th scope="col" { "表示→確認" } th scope="col" { "確認→完了" } th scope="col" { "表示→完了" }
                } }
                tbody {
                    @for (form, v, c, d) in &f.funnel {
                        tr {
                            th scope="row" { (metrics::form_ja(form)) }
                            td { (v) } td { (c) } td { (d) }
                            td { (rate(*c, *v)) } td { (rate(*d, *c)) } td { (rate(*d, *v)) }
                        }
                    }
                }
            }
        }))
    }
}

fn cohort_chart(f: &Figures) -> Markup {
    let pick = |k: &str| {
        f.row(k)
            .map_or((0.0, None), |r| (r.total.unwrap_or(0.0), r.last_total))
    };
    let stages: Vec<(String, f64, Option<f64>)> = [
        ("相談", "cohort_cases"),
        ("ツアー参加", "cohort_toured"),
        ("移住確定以上", "cohort_decided"),
        ("移住", "cohort_moved"),
    ]
    .iter()
    .map(|(l, k)| {
        let (a, b) = pick(k);
        ((*l).to_owned(), a, b)
    })
    .collect();
    let desc = stages
        .iter()
        .map(|(l, a, _)| format!("{l} {a}組"))
        .collect::<Vec<_>>()
        .join("、");
    chart::stage_bars(
        "chart-cohort",
        &format!("{}年度に受け付けた相談のその後（組、今年度と前年度）", f.fy),
        &format!("{desc}。人数は次の表のとおりです。"),
        &stages,
    )
}

fn cohort_table(rows: &[&Row]) -> Markup {
    html! {
        (layout::table_region("コホート", html! {
            table.kpi {
                caption { "年度内に受け付けた相談のその後（今年度・前年度）" }
                thead { tr {
                    th scope="col" { "指標" } th scope="col" { "今年度" } th scope="col" { "前年度" }
                    th scope="col" { "目標" } th scope="col" { "達成率" }
                } }
                tbody {
                    @for r in rows {
                        tr {
                            th scope="row" { (r.def.label) }
                            td { strong { (value(r.def.unit, r.total)) } }
                            td { (value(r.def.unit, r.last_total)) }
                            td { (r.target.map_or_else(|| "—".to_owned(), |t| r.def.unit.display(t))) }
                            td { (percent(r.achievement)) }
                        }
                    }
                }
            }
        }))
    }
}

// ---------------------------------------------------------------------------
// CSV
// ---------------------------------------------------------------------------

/// The CSV's header: `metric`, `label`, `4月` … `3月`, `total`, `target`, `achievement`.
pub fn csv_header() -> Vec<String> {
    let mut h = vec!["metric".to_owned(), "label".to_owned()];
    h.extend(figures::months(2000).iter().map(|m| {
        use chrono::Datelike;
        format!("{}月", m.month())
    }));
    h.extend(["total", "target", "achievement"].map(str::to_owned));
    h
}

pub async fn csv(
    State(state): State<DeskState>,
    staff: Staff,
    Query(q): Query<FyQuery>,
) -> Result<Response, AppError> {
    staff.require(Right::ViewAggregates)?;
    let tz = state.config().timezone;
    let fy = parse_fy(q.fy.as_deref())
        .map_err(AppError::BadRequest)?
        .unwrap_or_else(|| figures::fiscal_year_of(state.now(), tz));
    let f = figures_for(&state, fy).await?;
    let mut rows = vec![csv_header()];
    for r in &f.rows {
        let u = r.def.unit;
        let mut row = vec![r.def.key.to_owned(), r.def.label.to_owned()];
        for v in r.this {
            row.push(match r.def.make {
                Make::Cohort(_) => String::new(),
                _ => csv_value(u, v),
            });
        }
        row.push(csv_value(u, r.total));
        row.push(csv_value(u, r.target));
        row.push(csv_value(Unit::Percent, r.achievement));
        rows.push(row);
    }
    crate::tours::csv_response(&format!("kpi-fy{fy}.csv"), rows)
}

// ---------------------------------------------------------------------------
// Targets
// ---------------------------------------------------------------------------

fn field(key: &str) -> String {
    format!("t_{key}")
}

fn targets_page(
    staff: &Staff,
    fy: i32,
    version: u64,
    values: &BTreeMap<String, String>,
    errors: &FormErrors,
    status: StatusCode,
    general: Option<&str>,
) -> Response {
    let title = format!("KPIの目標値（{fy}年度）");
    let label_of = |f: &str| {
        f.strip_prefix("t_")
            .and_then(metrics::find)
            .map_or_else(|| "入力".to_owned(), |m| m.label.to_owned())
    };
    let body = html! {
        p { a href=(format!("/desk/kpi?fy={fy}")) { (fy) "年度のKPIへ戻る" } }
        h1 { (title) }
        p { "年度全体の目標を入力してください。空欄にすると目標なしになります。率（%）は0〜100、満足度は0〜5、そのほかは0以上の整数です。「月末時点」の指標は年度末（または最新月末）の値と比べます。" }
        @if let Some(g) = general { div.error-summary role="alert" tabindex="-1" { p { (g) } } }
        (errors.summary(label_of))
        form method="post" action="/desk/kpi/targets" novalidate {
            (staff.csrf_field())
            (kujira_web::fields::hidden("fy", &fy.to_string()))
            (kujira_web::fields::hidden("version", &version.to_string()))
            @for g in Group::ALL {
                fieldset.panel {
                    legend { strong { (g.title()) } }
                    @for m in metrics::METRICS.iter().filter(|m| m.group == g) {
                        @let name = field(m.key);
                        (kujira_web::fields::input(
                            &kujira_web::fields::Field::new(&name, &format!("{}（{}）", m.label, m.unit.suffix()), false)
                                .error(errors.get(&name)),
                            "text",
                            values.get(m.key).map_or("", String::as_str),
                            kujira_web::fields::InputOpts { inputmode: Some("decimal"), maxlength: Some(12), ..Default::default() },
                        ))
                    }
                }
            }
            div.actions { button.button type="submit" { "目標値を保存する" } }
        }
    };
    let page = layout::page(staff, Section::Kpi, &title, body);
    (status, Html(page.into_string())).into_response()
}

fn shown_target(unit: Unit, t: f64) -> String {
    if unit.whole() {
        format!("{}", t.round() as i64)
    } else {
        unit.plain(t)
    }
}

pub async fn targets_form(
    State(state): State<DeskState>,
    Require(staff, _): Require<need::ManageSettings>,
    Query(q): Query<FyQuery>,
) -> Result<Response, AppError> {
    let tz = state.config().timezone;
    let fy = parse_fy(q.fy.as_deref())
        .map_err(AppError::BadRequest)?
        .unwrap_or_else(|| figures::fiscal_year_of(state.now(), tz));
    let (t, version) = targets(&state, fy).await?;
    let values = t
        .targets
        .iter()
        .filter_map(|(k, v)| metrics::find(k).map(|m| (k.clone(), shown_target(m.unit, *v))))
        .collect();
    Ok(targets_page(
        &staff,
        fy,
        version,
        &values,
        &FormErrors::new(),
        StatusCode::OK,
        None,
    ))
}

pub async fn targets_save(
    State(state): State<DeskState>,
    Require(staff, _): Require<need::ManageSettings>,
    CsrfForm(form): CsrfForm,
) -> Result<Response, AppError> {
    let bad = || {
        AppError::BadRequest(
            "フォームの内容が不完全です。ページを開き直して、もう一度操作してください。".into(),
        )
    };
    let fy = parse_fy(Some(form.get("fy")))
        .ok()
        .flatten()
        .ok_or_else(bad)?;
    let version: u64 = form.get("version").trim().parse().map_err(|_| bad())?;
    let mut values = BTreeMap::new();
    let mut errors = FormErrors::new();
    let mut parsed = Vec::new();
    for m in metrics::METRICS {
        let name = field(m.key);
        let raw = form.get(&name).to_owned();
        let s: String = raw.nfkc().collect::<String>().trim().replace(',', "");
        values.insert(m.key.to_owned(), raw);
        if s.is_empty() {
            parsed.push((m.key.to_owned(), None));
            continue;
        }
        let max = m.unit.max_target();
        match s.parse::<f64>() {
            Ok(v)
                if v.is_finite()
                    && v >= 0.0
                    && max.is_none_or(|x| v <= x)
                    && (!m.unit.whole() || v.fract() == 0.0) =>
            {
                parsed.push((m.key.to_owned(), Some(v)));
            }
            _ => {
                let msg = match m.unit {
                    Unit::Percent => {
                        "0〜100の数値（小数点以下1桁まで）で入力してください。".to_owned()
                    }
                    Unit::Score => "0〜5の数値で入力してください。".to_owned(),
                    _ => "0以上の整数（半角数字）で入力してください。".to_owned(),
                };
                errors.add(name, msg);
            }
        }
    }
    let again = |status, errors: &FormErrors, version, general: Option<&str>| {
        targets_page(&staff, fy, version, &values, errors, status, general)
    };
    if !errors.is_empty() {
        return Ok(again(
            StatusCode::UNPROCESSABLE_ENTITY,
            &errors,
            version,
            None,
        ));
    }
    let ctx = CommandContext::new(staff.actor()).seen(version);
    let cmd = TargetsCommand::Set {
        fy,
        targets: parsed,
        at: state.now(),
    };
    match kujira_store::execute::<KpiTargets>(state.store(), &stream(fy), &ctx, None, |s| {
        <KpiTargets as kujira_domain::decider::Decider>::decide(s, &cmd)
    })
    .await
    {
        Ok(_) => Ok(Redirect::to(&format!("/desk/kpi?fy={fy}&done=targets")).into_response()),
        Err(CommandError::Stale { current, .. }) => Ok(again(
            StatusCode::CONFLICT,
            &FormErrors::new(),
            current,
            Some(
                "ほかの職員が先にこの年度の目標値を変更したため、保存していません。入力内容を確認して、もう一度保存してください（もう一度保存すると、あなたの入力で上書きします）。",
            ),
        )),
        Err(CommandError::Refused(e)) => Err(AppError::Unprocessable(format!(
            "目標値を保存できませんでした（{e}）。"
        ))),
        Err(e) => Err(AppError::Internal(anyhow::anyhow!("{e}"))),
    }
}
