//! `GET /desk/cases/{id}`: one case: its state, the person, what they asked, the
//! actions (for staff who act on cases), the person's other cases, and the whole
//! timeline. Read from the case's and the person's streams through the Store (the
//! source of truth, decrypted on demand), so a case is complete the moment it is
//! opened, whatever the projections' lag; the projections add the person's current
//! details and their other cases.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use chrono::NaiveDate;
use kujira_domain::casework::{CloseReason, ContactChannel};
use kujira_domain::decider::Decider;
use kujira_domain::inquiry::{
    Consultation, ConsultationEvent, ConsultationKind, ConsultationState, InquirySubmitted,
    TourRequestSubmitted,
};
use kujira_domain::person::{Person, PersonEvent, PersonState};
use kujira_domain::values::{ConsultationMethod, Household, MoveTiming, PostalCode, TourInterest};
use kujira_eventlog::RecordedEvent;
use kujira_web::FormData;
use kujira_web::fields::{self, Field, InputOpts};
use maud::{Markup, html};
use sqlx::Row;
use uuid::Uuid;

use super::query::{self, CaseRow};
use super::{PHASES, Shown, timeline};
use crate::DeskState;
use crate::audit::{self, AuditAction};
use crate::auth::{Right, Staff};
use crate::error::AppError;
use crate::form::FormErrors;
use crate::layout::{self, Section};
use crate::persons::{self, PersonView};

mod forms;
mod submission;

use forms::actions;
use submission::submission_section;

/// The form name of the case page's one-time tokens.
pub const TOKEN_FORM: &str = "desk_case";

/// Everything the case page shows.
#[derive(Debug)]
pub struct Loaded {
    pub case_id: Uuid,
    pub events: Vec<RecordedEvent>,
    pub state: ConsultationState,
    pub version: u64,
    pub person_id: Uuid,
    pub person_events: Vec<RecordedEvent>,
    pub person_state: PersonState,
    pub person_version: u64,
    /// The person's current details (the projection; `None` until it has seen them).
    pub person: Option<PersonView>,
    pub submission: Submission,
    /// The cases of this person and of the persons merged with them, this one aside.
    pub others: Vec<CaseRow>,
    /// Cases merged into this one.
    pub merged_here: Vec<CaseRow>,
    pub staff_names: HashMap<Uuid, String>,
    pub concierges: Vec<(Uuid, String)>,
    pub references: HashMap<Uuid, String>,
    /// The delivery state of the case's queued mails, by idempotency key.
    pub mails: HashMap<String, kujira_scheduler::MailDelivery>,
}

#[derive(Debug, Clone)]
pub enum Submission {
    Inquiry(Box<InquirySubmitted>),
    TourRequest(Box<TourRequestSubmitted>),
}

/// The current contact details, as far as they can be read.
#[derive(Debug, Clone, Default)]
pub struct Contact {
    pub name: Option<String>,
    pub name_kana: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub postal_code: Option<String>,
    pub address: Option<String>,
}

impl Loaded {
    pub fn erased(&self) -> bool {
        self.person_state.erased.is_some() || self.person.as_ref().is_some_and(|p| p.erased)
    }

    /// The person's details now: the projection's, else the latest correction, else
    /// what this case's submission said.
    pub fn contact(&self) -> Contact {
        if let Some(p) = self.person.as_ref().filter(|p| p.name.is_some()) {
            return Contact {
                name: p.name.clone(),
                name_kana: p.name_kana.clone(),
                email: p.email.clone(),
                phone: p.phone.clone(),
                postal_code: p.postal_code.clone(),
                address: p.address.clone(),
            };
        }
        if let Some(c) = &self.person_state.corrected {
            return Contact {
                name: Some(c.name.to_string()),
                name_kana: Some(c.name_kana.to_string()),
                email: Some(c.email.to_string()),
                phone: c.phone.as_ref().map(|x| x.to_string()),
                postal_code: c.postal_code.as_ref().map(|x| x.digits().to_owned()),
                address: c.address.as_ref().map(|x| x.to_string()),
            };
        }
        match &self.submission {
            Submission::Inquiry(s) => {
                s.inquiry
                    .personal
                    .known()
                    .map_or_else(Contact::default, |p| Contact {
                        name: Some(p.name.to_string()),
                        name_kana: Some(p.name_kana.to_string()),
                        email: Some(p.email.to_string()),
                        phone: p.phone.as_ref().map(|x| x.to_string()),
                        postal_code: p.postal_code.as_ref().map(|x| x.digits().to_owned()),
                        address: p.city.as_ref().map(|x| x.to_string()),
                    })
            }
            Submission::TourRequest(s) => {
                s.request
                    .personal
                    .known()
                    .map_or_else(Contact::default, |p| Contact {
                        name: Some(p.name.to_string()),
                        name_kana: Some(p.name_kana.to_string()),
                        email: Some(p.email.to_string()),
                        phone: Some(p.phone.to_string()),
                        postal_code: None,
                        address: None,
                    })
            }
        }
    }

    pub fn reference(&self) -> &str {
        self.state
            .opened
            .as_ref()
            .map_or("", |o| o.reference.as_str())
    }
}

/// Loads a case; `None` when there is no such case.
pub async fn load(state: &DeskState, case_id: Uuid) -> Result<Option<Loaded>, AppError> {
    let store = state.store();
    let events = store
        .read_whole_stream(&super::stream(case_id))
        .await
        .map_err(AppError::internal)?;
    let Some(first) = events.first() else {
        return Ok(None);
    };
    let submission = match first.decode::<ConsultationEvent>()? {
        ConsultationEvent::InquirySubmitted(s) => Submission::Inquiry(Box::new(s)),
        ConsultationEvent::TourRequestSubmitted(s) => Submission::TourRequest(Box::new(s)),
        _ => {
            return Err(AppError::internal(format!(
                "case {case_id} starts without a submission"
            )));
        }
    };
    let decoded = events
        .iter()
        .map(RecordedEvent::decode::<ConsultationEvent>)
        .collect::<Result<Vec<_>, _>>()?;
    let cstate = Consultation::replay(&decoded);
    let version = events.last().map_or(0, |e| e.stream_version);
    let Some(opened) = cstate.opened.clone() else {
        return Ok(None);
    };
    let person_id = opened.person_id;
    let person_events = store
        .read_whole_stream(&super::person_stream(person_id))
        .await
        .map_err(AppError::internal)?;
    let pdecoded = person_events
        .iter()
        .map(RecordedEvent::decode::<PersonEvent>)
        .collect::<Result<Vec<_>, _>>()?;
    let person_state = Person::replay(&pdecoded);
    let person_version = person_events.last().map_or(0, |e| e.stream_version);
    let pool = state.pool();
    let person = persons::find(pool, person_id).await?;
    let mut people = persons::linked(pool, person_id).await?;
    people.push(person_id);
    let others: Vec<CaseRow> = query::of_persons(pool, &people)
        .await?
        .into_iter()
        .filter(|c| c.case_id != case_id)
        .collect();
    let merged_here = query::merged_into(pool, case_id).await?;
    let staff_rows = sqlx::query("SELECT user_id, display_name FROM staff_users")
        .fetch_all(pool)
        .await?;
    let mut staff_names = HashMap::new();
    for r in &staff_rows {
        staff_names.insert(r.try_get("user_id")?, r.try_get("display_name")?);
    }
    let concierges = query::concierges(pool).await?;
    // The 連番 of every case the timeline names (merge targets).
    let mut ids: Vec<Uuid> = decoded
        .iter()
        .filter_map(|e| match e {
            ConsultationEvent::CaseMerged(m) => Some(m.into),
            ConsultationEvent::CaseMergeUndone(u) => Some(u.into),
            _ => None,
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let mut references = HashMap::new();
    if !ids.is_empty() {
        let rows = sqlx::query("SELECT case_id, reference FROM desk_cases WHERE case_id = ANY($1)")
            .bind(&ids)
            .fetch_all(pool)
            .await?;
        for r in &rows {
            references.insert(r.try_get("case_id")?, r.try_get("reference")?);
        }
    }
    let keys: Vec<String> = decoded
        .iter()
        .filter_map(|e| match e {
            ConsultationEvent::MailQueued(m) => Some(m.key.clone()),
            ConsultationEvent::MailRequested(m) => Some(m.key.clone()),
            _ => None,
        })
        .collect();
    let mails = kujira_scheduler::deliveries_of_keys(pool, &keys)
        .await
        .map_err(AppError::internal)?
        .into_iter()
        .map(|d| (d.key.clone(), d))
        .collect();
    Ok(Some(Loaded {
        case_id,
        events,
        state: cstate,
        version,
        person_id,
        person_events,
        person_state,
        person_version,
        person,
        submission,
        others,
        merged_here,
        staff_names,
        concierges,
        references,
        mails,
    }))
}

/// What the page shows beside the case: an action's form with its values and
/// errors, a notice, or the news that someone else changed the case.
#[derive(Debug, Clone, Default)]
pub struct Ui {
    /// The action whose form failed, with the values sent and the errors.
    pub failed: Option<(String, FormData, FormErrors)>,
    pub notice: Option<String>,
    /// Another staff member changed the case (or the person) after the page was drawn.
    pub stale: bool,
}

#[derive(Debug, serde::Deserialize)]
pub struct ShowParams {
    #[serde(default)]
    pub done: String,
}

/// What a finished action's notice says.
pub fn done_ja(action: &str) -> Option<&'static str> {
    Some(match action {
        "assign" => "担当を変更しました。",
        "phase" => "フェーズを変更しました。",
        "contact" => "対応を記録しました。",
        "consultation" => {
            "相談の予定を登録しました。ご本人にカレンダー付きの案内メールを送ります。"
        }
        "next-action" => "次回対応日を更新しました。",
        "move" => "移住を記録しました。",
        "close" => "対応終了にしました。",
        "reopen" => "対応を再開しました。",
        "merge" => "案件を統合しました。",
        "unmerge" => "統合を取り消しました。",
        "correct" => "個人情報を訂正しました。",
        "opt-out" => "フォローアップメールの配信を停止しました。",
        "opt-in" => "フォローアップメールの配信を再開しました。",
        "clear-bounce" => "メール不達の記録を解除しました。",
        "suspend" => "利用停止にしました。",
        "lift-suspension" => "利用停止を解除しました。",
        "created" => "相談を登録しました。",
        "erased" => {
            "個人情報を消去しました（この方と、統合でつながった方のすべての案件・ツアーの申込が対象です）。消去記録は「個人情報」のページで確認できます。"
        }
        "erased-already" => "この方の個人情報はすでに消去済みです。",
        "nothing" => "変更はありませんでした（すでにその状態です）。",
        _ => return None,
    })
}

pub async fn show(
    State(state): State<DeskState>,
    staff: Staff,
    Path(id): Path<String>,
    Query(params): Query<ShowParams>,
) -> Result<Response, AppError> {
    staff.require(Right::ViewAggregates)?;
    let case_id = Uuid::parse_str(&id).map_err(|_| AppError::NotFound)?;
    let Some(loaded) = load(&state, case_id).await? else {
        return Err(AppError::NotFound);
    };
    let ui = Ui {
        notice: done_ja(&params.done).map(str::to_owned),
        ..Ui::default()
    };
    render(&state, &staff, &loaded, &ui, StatusCode::OK).await
}

/// Records the view in the audit trail (for staff who see personal data), then
/// draws the page.
pub async fn render(
    state: &DeskState,
    staff: &Staff,
    loaded: &Loaded,
    ui: &Ui,
    status: StatusCode,
) -> Result<Response, AppError> {
    if staff.can(Right::ViewPersonalData) {
        let mut persons = vec![loaded.person_id];
        persons.extend(loaded.others.iter().map(|c| c.person_id));
        persons.extend(loaded.merged_here.iter().map(|c| c.person_id));
        audit::record(
            state.pool(),
            staff.id,
            state.now(),
            AuditAction::ViewCase,
            &persons,
            &format!("page=/desk/cases/{}", loaded.case_id),
        )
        .await?;
    }
    let token = state
        .kit()
        .form_tokens()
        .issue(TOKEN_FORM, state.now())
        .token;
    let title = format!("案件 {}", loaded.reference());
    let body = body(state, staff, loaded, ui, &token);
    Ok((
        status,
        Html(layout::page(staff, Section::Cases, &title, body).into_string()),
    )
        .into_response())
}

/// A queued mail's delivery state, as the timeline says it; `true` when it needs
/// someone to look at it (it failed for good).
fn mail_state_ja(d: Option<&kujira_scheduler::MailDelivery>, tz: chrono_tz::Tz) -> (String, bool) {
    use kujira_scheduler::DeliveryStatus as S;
    let Some(d) = d else {
        // The outbox has not read the event yet (it does within moments).
        return ("送信状況：送信待ち".into(), false);
    };
    match d.status {
        S::Pending if d.attempts > 0 => {
            (format!("送信状況：再送待ち（{}回失敗）", d.attempts), false)
        }
        S::Pending => ("送信状況：送信待ち".into(), false),
        S::Sent => (
            format!(
                "送信状況：送信済み（{}）",
                layout::datetime_ja(d.sent_at, tz)
            ),
            false,
        ),
        S::Failed => (
            format!(
                "送信状況：送信できませんでした（{}）。宛先を確認してください。",
                layout::datetime_ja(d.failed_at, tz)
            ),
            true,
        ),
        S::Cancelled => (
            format!(
                "送信状況：{}",
                d.cancel_reason.map_or("送信中止", |r| r.label_ja())
            ),
            false,
        ),
    }
}

fn dl_row(label: &str, value: Markup) -> Markup {
    html! { dt { (label) } dd { (value) } }
}

fn opt_label<T: Copy>(v: Option<T>, label: fn(T) -> &'static str) -> &'static str {
    v.map_or("—", label)
}

fn body(state: &DeskState, staff: &Staff, l: &Loaded, ui: &Ui, token: &str) -> Markup {
    let tz = state.config().timezone;
    let now = state.now();
    let today = query::today(now, tz);
    let Some(open) = l.state.opened.as_ref() else {
        return html! {};
    };
    let work = &l.state.work;
    let erased = l.erased();
    let contact = l.contact();
    let shown = |v: &Option<String>| Shown::of(staff, v.as_deref(), erased);
    let merged_ref = work.merged_into.map(|m| {
        l.references
            .get(&m)
            .cloned()
            .unwrap_or_else(|| m.to_string())
    });
    let status = if let Some(r) = &merged_ref {
        format!("統合済み（{r} に統合）")
    } else if let Some((reason, _)) = work.closed {
        format!("対応終了（{}）", reason.label_ja())
    } else {
        open.stage.label_ja().to_owned()
    };
    // The same person's other cases still being worked (not closed, not merged): a
    // duplicate from a fair and the web, most often, to be merged.
    let open_others = l
        .others
        .iter()
        .filter(|c| c.merged_into.is_none() && c.closed_reason.is_none())
        .count();
    let overdue = work.closed.is_none()
        && work.merged_into.is_none()
        && work.next_action.is_some_and(|d| d < today);
    let first_due = (open.channel != kujira_domain::inquiry::Channel::Desk).then(|| {
        kujira_domain::calendar::add_business_days(
            open.opened_at.with_timezone(&tz).date_naive(),
            super::projection::FIRST_CONTACT_DAYS,
        )
    });
    let awaiting = work.closed.is_none()
        && work.merged_into.is_none()
        && work.contacts == 0
        && first_due.is_some_and(|d| d < today);
    let person_flags: Vec<&str> = [
        (erased, "削除済み"),
        (l.person_state.suspended, "利用停止中"),
        (l.person_state.opted_out, "フォローアップ配信停止中"),
        (l.person_state.bouncing.is_some(), "メール不達"),
    ]
    .into_iter()
    .filter_map(|(on, label)| on.then_some(label))
    .collect();
    let entries = timeline::build(
        staff,
        tz,
        &l.events,
        &l.person_events,
        &l.staff_names,
        &l.references,
    );
    let concierge_name = work
        .concierge
        .and_then(|c| l.staff_names.get(&c).cloned())
        .unwrap_or_else(|| "未割当".into());
    let (channel_label, kind_label) = (
        super::intake_ja(
            super::projection::channel_str(open.channel),
            match &l.submission {
                Submission::Inquiry(s) => s.opening.desk_source.map(|d| d.as_str()),
                Submission::TourRequest(s) => s.opening.desk_source.map(|d| d.as_str()),
            },
        ),
        match open.kind {
            ConsultationKind::Inquiry => "移住相談",
            ConsultationKind::TourRequest => "オーダーメイドツアーの申込",
        },
    );
    html! {
        (page_css())
        p { a href="/desk/cases" { "← 案件一覧へ" } }
        h1 { "案件 " (open.reference) }
        @if ui.stale {
            div.error-summary role="alert" tabindex="-1" {
                h2 { "ほかの職員がこの案件を更新しました" }
                p { "このページを開いた後に、ほかの職員がこの案件（またはこの方の情報）を変更したため、操作は記録していません。下に最新の状態を表示しています。内容を確認して、必要ならもう一度操作してください（入力した内容は残しています）。" }
            }
        }
        @if let Some(n) = &ui.notice { (layout::notice(n)) }
        ul.badges aria-label="状態" {
            li.badge-phase { (status) }
            @if overdue { li.badge-alert { "次回対応日を過ぎています" } }
            @if awaiting { li.badge-alert { "初回連絡が未記録です（期限 " (first_due.map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_default()) "）" } }
            @for f in &person_flags { li.badge-person { (f) } }
            @if open_others > 0 && work.merged_into.is_none() {
                li.badge-person {
                    a href="#others-heading" { "この方の対応中の案件がほかに" (open_others) "件あります" }
                }
            }
        }
        section.panel aria-labelledby="summary-heading" {
            h2 id="summary-heading" { "案件の概要" }
            dl.facts {
                (dl_row("連番", html! { (open.reference) }))
                (dl_row("種類", html! { (kind_label) }))
                (dl_row("受付日時", html! { (layout::datetime_ja(Some(open.opened_at), tz)) }))
                (dl_row("受付経路", html! { (channel_label) }))
                (dl_row("ステータス", html! { (status) }))
                (dl_row("担当", html! { (concierge_name) }))
                (dl_row("次回対応日", html! { (work.next_action.map_or("—".to_owned(), |d| d.format("%Y-%m-%d").to_string())) }))
                (dl_row("最終対応日時", html! { (layout::datetime_ja(work.last_contact_at, tz)) }))
                (dl_row("対応回数", html! { (work.contacts) "回" }))
                @if let Some(m) = work.moved {
                    (dl_row("移住", html! {
                        "転入日 " (m.move_in.format("%Y-%m-%d")) "、大人" (m.adults) "人・子ども" (m.children) "人、移住支援金："
                        (if m.applies_for_support { "申請予定" } else { "申請しない" })
                    }))
                }
            }
        }
        section.panel aria-labelledby="person-heading" {
            h2 id="person-heading" { "相談者" }
            dl.facts {
                (dl_row("氏名", html! { (shown(&contact.name).page_text()) }))
                (dl_row("フリガナ", html! { (shown(&contact.name_kana).page_text()) }))
                (dl_row("メールアドレス", html! { (shown(&contact.email).page_text()) }))
                (dl_row("電話番号", html! { (shown(&contact.phone).page_text()) }))
                (dl_row("郵便番号", html! {
                    (Shown::of(staff, contact.postal_code.as_deref().map(|p| PostalCode::parse(p).map(|x| x.to_string()).unwrap_or_else(|_| p.to_owned())).as_deref(), erased).page_text())
                }))
                (dl_row("住所", html! { (shown(&contact.address).page_text()) }))
                (dl_row("配信・利用の状態", html! {
                    @if person_flags.is_empty() { "通常" } @else { (person_flags.join("、")) }
                }))
            }
        }
        (submission_section(staff, l, erased, tz))
        @if staff.can(Right::ActOnCases) {
            (actions(staff, l, ui, token, today, &state.config().words.mover_definition))
        }
        @if staff.can(Right::ManagePrivacy) {
            (crate::privacy::case_panel(staff, l, ui))
        }
        @if !l.merged_here.is_empty() || !l.others.is_empty() {
            section.panel aria-labelledby="others-heading" {
                h2 id="others-heading" { "この方の他の案件" }
                ul {
                    @for c in l.merged_here.iter() {
                        li { a href=(format!("/desk/cases/{}", c.case_id)) { (c.reference) } "（この案件に統合済み）" }
                    }
                    @for c in l.others.iter().filter(|c| c.merged_into != Some(l.case_id)) {
                        li {
                            a href=(format!("/desk/cases/{}", c.case_id)) { (c.reference) }
                            "（" (query::month_ja(c.opened_at, tz)) "・"
                            (super::status_ja(&c.phase, c.closed_reason.as_deref(), c.merged_into.is_some()))
                            @if c.person_id != l.person_id { "・統合でつながった方" }
                            "）"
                        }
                    }
                }
            }
        }
        section.panel aria-labelledby="timeline-heading" id="timeline" {
            h2 id="timeline-heading" { "経過（新しい順）" }
            ol.timeline {
                @for e in &entries {
                    li {
                        p.meta {
                            time datetime=(e.at.to_rfc3339()) { (layout::datetime_ja(Some(e.at), tz)) }
                            "　" span.who { (e.who) }
                        }
                        p.what { (e.text) }
                        @if let Some(key) = &e.mail_key {
                            @let (state, failed) = mail_state_ja(l.mails.get(key), tz);
                            p.mail-state.failed[failed] { (state) }
                        }
                        @if let Some(n) = &e.note {
                            p.note { (n.page_text()) }
                        }
                    }
                }
            }
        }
    }
}

/// The labels of the action forms' fields, for their error summaries.
pub fn label_ja(field: &str) -> String {
    match field {
        "concierge" => "担当",
        "phase" => "フェーズ",
        "contact_channel" => "対応方法",
        "contact_date" => "対応日",
        "contact_time" => "対応時刻",
        "contact_note" => "対応内容メモ",
        "consult_date" => "相談日",
        "consult_time" => "開始時刻",
        "consult_minutes" => "相談時間（分）",
        "consult_method" => "相談方法",
        "consult_place" => "場所・接続先",
        "consult_note" => "ご本人へのご案内",
        "next_action" => "次回対応日",
        "move_in" => "転入日",
        "move_adults" => "大人の人数",
        "move_children" => "子どもの人数",
        "close_reason" => "終了の理由",
        "close_note" => "メモ",
        "merge_into" => "統合先の連番",
        "c_name" => "氏名",
        "c_kana" => "フリガナ",
        "c_email" => "メールアドレス",
        "c_phone" => "電話番号",
        "c_postal" => "郵便番号",
        "c_address" => "住所",
        "from" => "引き継ぐ担当者",
        "to" => "引き継ぎ先",
        "form" => "操作",
        other => other,
    }
    .to_owned()
}

fn page_css() -> Markup {
    html! {
        style {
            ".badges{list-style:none;display:flex;flex-wrap:wrap;gap:.5rem;padding:0;margin:0 0 1rem}"
            ".badges li{padding:.2rem .6rem;border-radius:4px;font-weight:700;font-size:.9rem}"
            ".badge-phase{background:#00387a;color:#fff}"
            ".badge-alert{background:#8a1c1c;color:#fff}"
            ".badge-person{background:#fff3cd;color:#1a1a1a;border:1px solid #8a4b00}"
            "dl.facts{display:grid;grid-template-columns:minmax(8rem,max-content) 1fr;gap:.35rem 1rem;margin:0 0 1rem}"
            "dl.facts dt{font-weight:700;color:#4a4a4a}"
            "dl.facts dd{margin:0;overflow-wrap:anywhere}"
            ".pre,.note{white-space:pre-wrap}"
            "details.action{border-top:1px solid #e4e4e0;padding:.25rem 0}"
            "details.action form{padding:.5rem 0 1rem}"
            "ol.timeline{list-style:none;padding:0;margin:0}"
            "ol.timeline li{border-left:4px solid #c9c9c5;padding:.25rem 0 .5rem .75rem;margin-bottom:.5rem}"
            "ol.timeline .meta{margin:0;font-size:.85rem;color:#4a4a4a}"
            "ol.timeline .what{margin:.1rem 0}"
            "ol.timeline .mail-state{margin:0;font-size:.9rem;color:#4a4a4a}"
            "ol.timeline .mail-state.failed{color:#8a1c1c;font-weight:700}"
            "ol.timeline .note{margin:.25rem 0;padding:.5rem;background:#f5f5f3;border-radius:4px}"
            ".warning{border-left:6px solid #8a1c1c;background:#fdf0f0;padding:.5rem 1rem;margin:.5rem 0 1rem;border-radius:4px}"
            ".button.danger{background:#8a1c1c;border-color:#8a1c1c;color:#fff}"
            "@media (max-width:40rem){dl.facts{grid-template-columns:1fr}}"
        }
    }
}

/// Today's date for a form default.
pub fn today_of(state: &DeskState) -> NaiveDate {
    query::today(state.now(), state.config().timezone)
}
