//! The HTML flow 入力 → 確認 → 完了 of both forms: `/inquiry` and `/tours/request`.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use kujira_domain::funnel::{FunnelEvent, FunnelForm, SpamReason};
use kujira_domain::inquiry::{
    Channel, ConsultationCommand, Inquiry, InquirySubmitted, TourRequest, TourRequestSubmitted,
    validate_inquiry, validate_tour_request,
};
use kujira_domain::values::FieldErrors;
use kujira_web::fields::HONEYPOT_FIELD;
use kujira_web::{ClientIp, FormData, FormToken, PageError, funnel};
use maud::html;

use crate::cases::{self, Opened, Submission};
use crate::forms::{self, FormDef};
use crate::{IntakeState, mail};

/// Which of the two forms a request is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Inquiry,
    TourRequest,
}

enum Valid {
    Inquiry(Inquiry),
    TourRequest(TourRequest),
}

impl Which {
    fn def(self, s: &IntakeState) -> &FormDef {
        match self {
            Self::Inquiry => &s.inner.inquiry_form,
            Self::TourRequest => &s.inner.tour_request_form,
        }
    }

    fn funnel(self) -> FunnelForm {
        match self {
            Self::Inquiry => FunnelForm::Inquiry,
            Self::TourRequest => FunnelForm::TourRequest,
        }
    }

    fn validate(self, s: &IntakeState, form: &FormData) -> Result<Valid, FieldErrors> {
        let rules = s.date_rules();
        match self {
            Self::Inquiry => {
                validate_inquiry(&forms::inquiry_from_form(form), &rules).map(Valid::Inquiry)
            }
            Self::TourRequest => {
                validate_tour_request(&forms::tour_request_from_form(form), &rules)
                    .map(Valid::TourRequest)
            }
        }
    }

    fn done_cookie(self) -> &'static str {
        match self {
            Self::Inquiry => "kujira_done_inquiry",
            Self::TourRequest => "kujira_done_tour_request",
        }
    }
}

fn html_response(status: StatusCode, jar: CookieJar, body: maud::Markup) -> Response {
    (status, jar, Html(body.into_string())).into_response()
}

fn form_page(
    s: &IntakeState,
    which: Which,
    status: StatusCode,
    jar: CookieJar,
    values: &FormData,
    errors: &FieldErrors,
    token: &str,
) -> Response {
    let (jar, csrf) = s.kit().csrf().issue(jar);
    let def = which.def(s);
    let title = if errors.is_empty() {
        def.title.to_owned()
    } else {
        format!("【入力エラー】{}", def.title)
    };
    let body = forms::render_form(
        def,
        s.kit().words(),
        values,
        errors,
        &csrf,
        token,
        forms::earliest(&s.date_rules()),
    );
    html_response(status, jar, s.kit().page(&title, body))
}

/// `GET /inquiry`, `GET /tours/request`: a fresh form with a fresh one-time token.
pub async fn show(s: &IntakeState, which: Which, jar: CookieJar, ip: ClientIp) -> Response {
    let now = s.kit().now();
    let token = s.kit().form_tokens().issue(which.def(s).token_name, now);
    if s.kit().funnel_allowed(ip.0) {
        funnel::record(
            s.store().events(),
            token.id,
            &FunnelEvent::FormViewed {
                form: which.funnel(),
                at: now,
            },
        )
        .await;
    }
    form_page(
        s,
        which,
        StatusCode::OK,
        jar,
        &FormData::default(),
        &FieldErrors::new(),
        &token.token,
    )
}

fn guards(
    s: &IntakeState,
    which: Which,
    jar: &CookieJar,
    form: &FormData,
) -> Result<FormToken, PageError> {
    s.kit().check_csrf(jar, form)?;
    s.kit().check_form_token(which.def(s).token_name, form)
}

/// `POST …/confirm`: 422 with the form and its errors, or the confirm page.
/// `action=edit` (修正する) shows the form again with every value kept.
pub async fn confirm(
    s: &IntakeState,
    which: Which,
    jar: CookieJar,
    ip: ClientIp,
    form: FormData,
) -> Result<Response, PageError> {
    let token = guards(s, which, &jar, &form)?;
    if form.get("action") == "edit" {
        return Ok(form_page(
            s,
            which,
            StatusCode::OK,
            jar,
            &form,
            &FieldErrors::new(),
            &token.token,
        ));
    }
    if let Err(errors) = which.validate(s, &form) {
        return Ok(form_page(
            s,
            which,
            StatusCode::UNPROCESSABLE_ENTITY,
            jar,
            &form,
            &errors,
            &token.token,
        ));
    }
    let now = s.kit().now();
    if s.kit().funnel_allowed(ip.0) {
        funnel::record(
            s.store().events(),
            token.id,
            &FunnelEvent::ConfirmViewed {
                form: which.funnel(),
                at: now,
            },
        )
        .await;
    }
    let (jar, csrf) = s.kit().csrf().issue(jar);
    let body = forms::render_confirm(which.def(s), &form, &csrf, &token.token);
    Ok(html_response(
        StatusCode::OK,
        jar,
        s.kit().page("入力内容の確認", body),
    ))
}

fn to_complete(s: &IntakeState, which: Which, jar: CookieJar, opened: Option<&Opened>) -> Response {
    let def = which.def(s);
    let location = format!("{}/complete", def.base);
    let jar = match opened {
        Some(o) => jar.add(
            Cookie::build((
                which.done_cookie(),
                s.inner
                    .done_signer
                    .sign(&format!("{}|{}", o.case_id, o.reference)),
            ))
            .path(def.base)
            .http_only(true)
            .secure(s.config().public_url.starts_with("https://"))
            .same_site(SameSite::Lax)
            .build(),
        ),
        None => jar,
    };
    (jar, Redirect::to(&location)).into_response()
}

/// `POST …/submit`: opens the case (or finds the one this form already opened),
/// then 303 to the complete page.
pub async fn submit(
    s: &IntakeState,
    which: Which,
    jar: CookieJar,
    ip: ClientIp,
    form: FormData,
) -> Result<Response, PageError> {
    let token = guards(s, which, &jar, &form)?;
    s.kit().check_rate_page(ip.0)?;
    let now = s.kit().now();
    if !form.get(HONEYPOT_FIELD).trim().is_empty() {
        let flag = FunnelEvent::SpamFlagged {
            form: which.funnel(),
            at: now,
            reason: SpamReason::Honeypot,
        };
        funnel::record(s.store().events(), token.id, &flag).await;
        tracing::info!(journey = %token.id, form = which.funnel().as_str(), "honeypot filled; submission flagged and dropped");
        return Ok(to_complete(s, which, jar, None));
    }
    let def = which.def(s);
    let case_id = cases::derived_case_id(def.token_name, &token.id.to_string());
    let internal = |e: &dyn std::fmt::Display| s.kit().internal_error(e);
    let existing = cases::find(s, case_id).await.map_err(|e| internal(&e))?;
    let opened = match existing {
        Some(o) => o,
        None => {
            let valid = match which.validate(s, &form) {
                Ok(v) => v,
                Err(errors) => {
                    return Ok(form_page(
                        s,
                        which,
                        StatusCode::UNPROCESSABLE_ENTITY,
                        jar,
                        &form,
                        &errors,
                        &token.token,
                    ));
                }
            };
            let sub = Submission::by_applicant(case_id, Channel::Form, token.id);
            let email = match &valid {
                Valid::Inquiry(i) => i.personal.known().map(|p| p.email.clone()),
                Valid::TourRequest(r) => r.personal.known().map(|p| p.email.clone()),
            }
            .ok_or_else(|| internal(&"a validated submission has no personal part"))?;
            cases::open(s, sub, &email, |opening| match &valid {
                Valid::Inquiry(inquiry) => ConsultationCommand::SubmitInquiry {
                    mails: mail::inquiry_queue(&opening),
                    submission: InquirySubmitted {
                        opening,
                        inquiry: inquiry.clone(),
                    },
                },
                Valid::TourRequest(request) => ConsultationCommand::SubmitTourRequest {
                    mails: mail::tour_request_queue(&opening),
                    submission: TourRequestSubmitted {
                        opening,
                        request: request.clone(),
                    },
                },
            })
            .await
            .map_err(|e| internal(&e))?
        }
    };
    let done = FunnelEvent::Submitted {
        form: which.funnel(),
        at: now,
        case_id: opened.case_id,
    };
    funnel::record(s.store().events(), token.id, &done).await;
    Ok(to_complete(s, which, jar, Some(&opened)))
}

/// `GET …/complete`: the reference number (from the signed cookie the submit set)
/// and what happens next.
pub async fn complete(s: &IntakeState, which: Which, jar: CookieJar) -> Response {
    let reference = jar
        .get(which.done_cookie())
        .and_then(|c| s.inner.done_signer.verify(c.value()))
        .and_then(|p| p.split_once('|').map(|(_, r)| r.to_owned()));
    let w = s.kit().words();
    let (title, what) = match which {
        Which::Inquiry => ("移住相談のお申し込みが完了しました", "ご相談"),
        Which::TourRequest => (
            "オーダーメイドツアーのお申し込みが完了しました",
            "ツアーの日程と行程",
        ),
    };
    let body = html! {
        (kujira_web::layout::steps(2))
        h1 { (title) }
        @if let Some(r) = &reference {
            p { "受付番号" }
            p.reference { (r) }
            p { "お問い合わせの際は、この受付番号をお知らせください。" }
        }
        p { "ご入力いただいたメールアドレスに、受付完了のメール（自動返信）をお送りしました。" }
        h2 { "今後の流れ" }
        ol {
            li { "担当の移住コンシェルジュが内容を確認します。" }
            li { "3営業日以内に、メールまたはお電話で" (what) "についてご連絡します。" }
        }
        p {
            "自動返信メールが届かない場合や、お急ぎの場合は、" (w.desk_name)
            "（電話 " (w.desk_phone) "、" (w.desk_hours) "）までご連絡ください。"
        }
        p { a href="/" { "トップページへ戻る" } }
    };
    let mut res = html_response(StatusCode::OK, jar, s.kit().page(title, body));
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

// Handlers, one per route.

pub async fn inquiry_form(State(s): State<IntakeState>, jar: CookieJar, ip: ClientIp) -> Response {
    show(&s, Which::Inquiry, jar, ip).await
}

pub async fn inquiry_confirm(
    State(s): State<IntakeState>,
    jar: CookieJar,
    ip: ClientIp,
    form: FormData,
) -> Result<Response, PageError> {
    confirm(&s, Which::Inquiry, jar, ip, form).await
}

pub async fn inquiry_submit(
    State(s): State<IntakeState>,
    jar: CookieJar,
    ip: ClientIp,
    form: FormData,
) -> Result<Response, PageError> {
    submit(&s, Which::Inquiry, jar, ip, form).await
}

pub async fn inquiry_complete(State(s): State<IntakeState>, jar: CookieJar) -> Response {
    complete(&s, Which::Inquiry, jar).await
}

pub async fn tour_request_form(
    State(s): State<IntakeState>,
    jar: CookieJar,
    ip: ClientIp,
) -> Response {
    show(&s, Which::TourRequest, jar, ip).await
}

pub async fn tour_request_confirm(
    State(s): State<IntakeState>,
    jar: CookieJar,
    ip: ClientIp,
    form: FormData,
) -> Result<Response, PageError> {
    confirm(&s, Which::TourRequest, jar, ip, form).await
}

pub async fn tour_request_submit(
    State(s): State<IntakeState>,
    jar: CookieJar,
    ip: ClientIp,
    form: FormData,
) -> Result<Response, PageError> {
    submit(&s, Which::TourRequest, jar, ip, form).await
}

pub async fn tour_request_complete(State(s): State<IntakeState>, jar: CookieJar) -> Response {
    complete(&s, Which::TourRequest, jar).await
}
