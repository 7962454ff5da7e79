//! `GET/POST /desk/cases/new`: an inquiry taken at a fair booth, by phone or at the
//! counter, entered by staff. The fields, their checks and the event are the
//! public form's (intake's field definitions, `validate_inquiry`, and intake's one
//! way of opening a case), with `channel: Desk` and how it came in (`desk_source`),
//! so that it counts as 窓口 or イベント and never as web. Staff enter the address
//! once (no confirmation field) and confirm that the person consented. No mail goes
//! to the person unless the staff member ticks 受付メールを送る.
//!
//! Also `GET/POST /desk/cases/reassign`: the April rotation, an admin moving every
//! open case of one concierge to another, each with its own `CaseAssigned`.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use kujira_domain::casework::{CaseCommand, CaseError, ContactChannel};
use kujira_domain::decider::Decider;
use kujira_domain::inquiry::{
    Consultation, ConsultationCommand, ConsultationError, InquirySubmitted, validate_inquiry,
};
use kujira_domain::mail::Audience;
use kujira_intake::Submission;
use kujira_store::{CommandContext, CommandError};
use kujira_web::FormData;
use kujira_web::fields::{self, Field};
use maud::{Markup, html};
use sqlx::Row;
use uuid::Uuid;

use super::query;
use crate::DeskState;
use crate::auth::{Right, Staff};
use crate::error::AppError;
use crate::form::{CsrfForm, FormErrors};
use crate::layout::{self, Section};

/// The form name of the entry form's one-time token (the case id derives from it).
pub const TOKEN_FORM: &str = "desk_new_case";
/// The fields of the public form that the desk's form leaves out or asks otherwise.
const SKIPPED: &[&str] = &["email_confirm", "consent"];

fn sources() -> Vec<(&'static str, &'static str)> {
    [
        ContactChannel::Fair,
        ContactChannel::Phone,
        ContactChannel::Counter,
        ContactChannel::Email,
        ContactChannel::Online,
        ContactChannel::Line,
        ContactChannel::Other,
    ]
    .iter()
    .map(|c| (c.as_str(), c.label_ja()))
    .collect()
}

fn label(state: &DeskState, field: &str) -> String {
    match field {
        "desk_source" => "受付の経路".into(),
        "consent" => "個人情報の取り扱いへの同意".into(),
        other => state.intake().inquiry_form().label(other),
    }
}

fn form_page(
    state: &DeskState,
    staff: &Staff,
    values: &FormData,
    errors: &FormErrors,
    domain_errors: &kujira_domain::values::FieldErrors,
    token: &str,
) -> Markup {
    let intake = state.intake();
    let def = intake.inquiry_form();
    let earliest = intake.date_rules().earliest_date();
    let err = |f: &str| errors.get(f).map(str::to_owned);
    let source_error = err("desk_source");
    let consent_error = err("consent");
    let body = html! {
        p { a href="/desk/cases" { "← 案件一覧へ" } }
        h1 { "相談の登録（窓口・電話・イベント）" }
        (errors.summary(|f| label(state, f)))
        p { "窓口・電話・移住フェアなどで受けた相談を登録します。ウェブの相談フォームと同じ項目です。" }
        form method="post" action="/desk/cases/new" novalidate {
            (staff.csrf_field())
            (fields::hidden(kujira_web::FORM_TOKEN_FIELD, token))
            h2 { "受付" }
            (fields::select(&Field::new("desk_source", "受付の経路", true).error(source_error.as_deref()),
                &sources(), values.get("desk_source")))
            (kujira_intake::forms::render_sections(def, state.words(), values, domain_errors, earliest, SKIPPED))
            h2 { "同意と受付メール" }
            section.privacy aria-labelledby="privacy-heading" {
                h3 id="privacy-heading" { "ご本人に説明する個人情報の取り扱い" }
                p { (state.words().privacy_purpose) }
            }
            (fields::checkbox(&Field::new("consent", "個人情報の取り扱いへの同意", true).error(consent_error.as_deref()),
                "ご本人に上記の取り扱いを説明し、同意を得ました", values.checked("consent")))
            (fields::checkbox(&Field::new("send_receipt", "受付メール", false),
                "ご本人に受付メール（自動返信と同じ内容）を送る", values.checked("send_receipt")))
            div.actions {
                button.button type="submit" { "相談を登録する" }
            }
        }
    };
    layout::page(
        staff,
        Section::Cases,
        if errors.is_empty() {
            "相談の登録"
        } else {
            "【入力エラー】相談の登録"
        },
        body,
    )
}

pub async fn form(State(state): State<DeskState>, staff: Staff) -> Result<Html<String>, AppError> {
    staff.require(Right::ActOnCases)?;
    let token = state.kit().form_tokens().issue(TOKEN_FORM, state.now());
    Ok(Html(
        form_page(
            &state,
            &staff,
            &FormData::default(),
            &FormErrors::new(),
            &kujira_domain::values::FieldErrors::new(),
            &token.token,
        )
        .into_string(),
    ))
}

pub async fn submit(
    State(state): State<DeskState>,
    staff: Staff,
    CsrfForm(form): CsrfForm,
) -> Result<Response, AppError> {
    staff.require(Right::ActOnCases)?;
    let token = state
        .kit()
        .form_tokens()
        .verify(TOKEN_FORM, form.get(kujira_web::FORM_TOKEN_FIELD))
        .ok_or_else(|| {
            AppError::BadRequest(
                "フォームの情報が正しくありません。登録のページを開き直して、もう一度入力してください。"
                    .into(),
            )
        })?;
    let case_id = kujira_intake::derived_case_id("desk", &token.id.to_string());
    // A second click of the same form: the case is there already.
    if kujira_intake::find_case(state.intake(), case_id)
        .await
        .map_err(AppError::internal)?
        .is_some()
    {
        return Ok(Redirect::to(&format!("/desk/cases/{case_id}?done=created")).into_response());
    }
    let mut input = kujira_intake::forms::inquiry_from_form(&form);
    input.email_confirm = None;
    let source = ContactChannel::parse(form.get("desk_source"));
    let validated = validate_inquiry(&input, &state.intake().date_rules());
    if source.is_err() || validated.is_err() {
        let mut errors = FormErrors::new();
        if source.is_err() {
            errors.add("desk_source", "受付の経路を選んでください。");
        }
        let domain = validated.as_ref().err().cloned().unwrap_or_default();
        for (field, e) in domain.iter() {
            if field == "consent" {
                errors.add(field, "ご本人の同意を得たことを確認してください。");
            } else {
                errors.add(field, e.message_ja());
            }
        }
        let mut shown = kujira_domain::values::FieldErrors::new();
        for (field, e) in domain.iter() {
            shown.add(field, e.clone());
        }
        let page = form_page(&state, &staff, &form, &errors, &shown, &token.token);
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, Html(page.into_string())).into_response());
    }
    let (Ok(source), Ok(inquiry)) = (source, validated) else {
        return Err(AppError::internal("validated input went missing"));
    };
    let email = inquiry
        .personal
        .known()
        .map(|p| p.email.clone())
        .ok_or_else(|| AppError::internal("a validated inquiry has no personal part"))?;
    let send_receipt = form.checked("send_receipt");
    let opened = kujira_intake::open_case(
        state.intake(),
        Submission::by_staff(case_id, staff.actor(), source),
        &email,
        |opening| ConsultationCommand::SubmitInquiry {
            // Only the person's receipt, and only when asked: the staff member who
            // entered it needs no notice of it.
            mails: if send_receipt {
                kujira_intake::mail::inquiry_queue(&opening)
                    .into_iter()
                    .filter(|m| m.audience == Audience::Applicant)
                    .collect()
            } else {
                Vec::new()
            },
            submission: InquirySubmitted {
                opening,
                inquiry: inquiry.clone(),
            },
        },
    )
    .await
    .map_err(AppError::internal)?;
    Ok(Redirect::to(&format!("/desk/cases/{}?done=created", opened.case_id)).into_response())
}

/// The April rotation's token form name.
pub const REASSIGN_FORM: &str = "desk_reassign";

#[derive(Debug, Default, serde::Deserialize)]
pub struct ReassignParams {
    #[serde(default)]
    pub moved: Option<u32>,
    #[serde(default)]
    pub skipped: Option<u32>,
    #[serde(default)]
    pub to: String,
}

async fn open_counts(state: &DeskState) -> Result<Vec<(Uuid, i64)>, AppError> {
    let rows = sqlx::query(
        "SELECT concierge, count(*) AS n FROM desk_cases \
         WHERE concierge IS NOT NULL AND closed_at IS NULL AND merged_into IS NULL \
         GROUP BY concierge",
    )
    .fetch_all(state.pool())
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("concierge")?, r.try_get("n")?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(AppError::from)
}

async fn reassign_page(
    state: &DeskState,
    staff: &Staff,
    values: &FormData,
    errors: &FormErrors,
    notice: Option<String>,
) -> Result<Markup, AppError> {
    let token = state.kit().form_tokens().issue(REASSIGN_FORM, state.now());
    let counts = open_counts(state).await?;
    // Everyone who still holds open cases (disabled accounts included: they are
    // the ones whose cases must move), and everyone who can take them.
    let names = sqlx::query(
        "SELECT user_id, display_name, disabled FROM staff_users ORDER BY display_name",
    )
    .fetch_all(state.pool())
    .await?;
    let mut from: Vec<(String, String)> = Vec::new();
    for r in &names {
        let id: Uuid = r.try_get("user_id")?;
        let name: String = r.try_get("display_name")?;
        let disabled: bool = r.try_get("disabled")?;
        if let Some((_, n)) = counts.iter().find(|(c, _)| *c == id) {
            from.push((
                id.to_string(),
                format!(
                    "{name}（対応中 {n}件）{}",
                    if disabled { "・無効" } else { "" }
                ),
            ));
        }
    }
    let to: Vec<(String, String)> = query::concierges(state.pool())
        .await?
        .into_iter()
        .map(|(id, n)| (id.to_string(), n))
        .collect();
    let from_refs = as_str(&from);
    let to_refs = as_str(&to);
    let body = html! {
        p { a href="/desk/cases" { "← 案件一覧へ" } }
        h1 { "担当の一括引き継ぎ" }
        @if let Some(n) = &notice { (layout::notice(n)) }
        (errors.summary(super::page::label_ja))
        p { "異動などで担当が替わるとき、ある担当者の対応中の案件（対応終了・統合済みを除く）を、まとめて別の担当者に引き継ぎます。案件ごとに担当変更の記録が残ります。" }
        form method="post" action="/desk/cases/reassign" novalidate {
            (staff.csrf_field())
            (fields::hidden(kujira_web::FORM_TOKEN_FIELD, &token.token))
            @if from.is_empty() {
                p { "対応中の案件を担当している職員はいません。" }
            } @else {
                (fields::select(&Field::new("from", "引き継ぐ担当者", true).error(errors.get("from")), &from_refs, values.get("from")))
                (fields::select(&Field::new("to", "引き継ぎ先", true).error(errors.get("to")), &to_refs, values.get("to")))
                div.actions { button.button type="submit" { "まとめて引き継ぐ" } }
            }
        }
    };
    Ok(layout::page(
        staff,
        Section::Cases,
        "担当の一括引き継ぎ",
        body,
    ))
}

fn as_str(v: &[(String, String)]) -> Vec<(&str, &str)> {
    v.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect()
}

pub async fn reassign_form(
    State(state): State<DeskState>,
    staff: Staff,
    Query(params): Query<ReassignParams>,
) -> Result<Html<String>, AppError> {
    staff.require(Right::ManageUsers)?;
    let notice = params.moved.map(|moved| {
        let to = Uuid::parse_str(&params.to).ok();
        let _ = to;
        let skipped = params.skipped.unwrap_or(0);
        if skipped > 0 {
            format!("{moved}件の担当を引き継ぎました（{skipped}件は、ほかの職員が先に変更していたため、そのままにしました）。")
        } else {
            format!("{moved}件の担当を引き継ぎました。")
        }
    });
    Ok(Html(
        reassign_page(
            &state,
            &staff,
            &FormData::default(),
            &FormErrors::new(),
            notice,
        )
        .await?
        .into_string(),
    ))
}

pub async fn reassign(
    State(state): State<DeskState>,
    staff: Staff,
    CsrfForm(form): CsrfForm,
) -> Result<Response, AppError> {
    staff.require(Right::ManageUsers)?;
    let token = state
        .kit()
        .form_tokens()
        .verify(REASSIGN_FORM, form.get(kujira_web::FORM_TOKEN_FIELD))
        .ok_or_else(|| {
            AppError::BadRequest(
                "フォームの情報が正しくありません。ページを開き直して、もう一度操作してください。"
                    .into(),
            )
        })?;
    let mut errors = FormErrors::new();
    let from = Uuid::parse_str(form.get("from").trim()).ok();
    if from.is_none() {
        errors.add("from", "引き継ぐ担当者を選んでください。");
    }
    let concierges = query::concierges(state.pool()).await?;
    let to = Uuid::parse_str(form.get("to").trim())
        .ok()
        .filter(|t| concierges.iter().any(|(c, _)| c == t));
    if to.is_none() {
        errors.add("to", "引き継ぎ先を一覧から選んでください。");
    }
    if from.is_some() && from == to {
        errors.add("to", "引き継ぐ担当者と同じ人は選べません。");
    }
    let (Some(from), Some(to), true) = (from, to, errors.is_empty()) else {
        let page = reassign_page(&state, &staff, &form, &errors, None).await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, Html(page.into_string())).into_response());
    };
    let cases: Vec<Uuid> = sqlx::query_scalar(
        "SELECT case_id FROM desk_cases WHERE concierge = $1 \
         AND closed_at IS NULL AND merged_into IS NULL ORDER BY opened_at",
    )
    .bind(from)
    .fetch_all(state.pool())
    .await?;
    let now = state.now();
    let (mut moved, mut skipped) = (0u32, 0u32);
    for case_id in cases {
        // One command per case, its id from the form and the case: a second click
        // moves nothing twice.
        let ctx = CommandContext::new(staff.actor())
            .command_id(Uuid::new_v5(&token.id, case_id.as_bytes()))
            .with("action", "reassign");
        let done = kujira_store::execute::<Consultation>(
            state.store(),
            &super::stream(case_id),
            &ctx,
            None,
            |current| {
                // Only a case still with `from`: another staff member may have
                // changed it since the list was read.
                if current.work.concierge != Some(from) {
                    return Err(ConsultationError::Case(CaseError::NoChange));
                }
                Consultation::decide(
                    current,
                    &ConsultationCommand::Work {
                        command: CaseCommand::Assign {
                            concierge: Some(to),
                        },
                        at: now,
                    },
                )
            },
        )
        .await;
        match done {
            Ok(_) => moved += 1,
            Err(CommandError::Refused(_)) => skipped += 1,
            Err(CommandError::Stale { .. } | CommandError::Contended(_)) => skipped += 1,
            Err(CommandError::Store(e)) => return Err(AppError::internal(e)),
        }
    }
    Ok(Redirect::to(&format!(
        "/desk/cases/reassign?moved={moved}&skipped={skipped}&to={to}"
    ))
    .into_response())
}
