//! `GET/POST /desk/login` and `POST /desk/logout`.
//!
//! A failed login answers the same page, status and time for an unknown address, a
//! wrong password, a locked account and a disabled one (see
//! [`crate::Users::authenticate`]), so the page tells nobody which accounts exist.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use kujira_web::ClientIp;
use kujira_web::fields::{self, Field, InputOpts};
use maud::{Markup, html};
use serde::Deserialize;
use tower_sessions::Session;

use super::next::safe_next;
use super::{SESSION_USER, SessionUser};
use crate::DeskState;
use crate::error::AppError;
use crate::form::{CsrfForm, CsrfToken, FormErrors, csrf_field};
use crate::layout;
use crate::users::{LOCKOUT_MINUTES, MAX_FAILED_LOGINS};

/// The one answer to every failed login.
pub const FAILED: &str = "メールアドレスまたはパスワードが正しくありません。";

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    logged_out: Option<String>,
}

/// Whether the session belongs to an active account.
async fn logged_in(state: &DeskState, session: &Session) -> Result<bool, AppError> {
    let Some(held) = session
        .get::<SessionUser>(SESSION_USER)
        .await
        .map_err(AppError::internal)?
    else {
        return Ok(false);
    };
    Ok(state
        .users()
        .find(held.user_id)
        .await?
        .is_some_and(|u| !u.disabled && u.sessions_valid_after.is_none_or(|t| held.since >= t)))
}

pub async fn form(
    State(state): State<DeskState>,
    session: Session,
    CsrfToken(token): CsrfToken,
    Query(q): Query<LoginQuery>,
) -> Result<Response, AppError> {
    let next = q.next.as_deref().and_then(safe_next);
    if logged_in(&state, &session).await? {
        return Ok(Redirect::to(next.as_deref().unwrap_or("/desk")).into_response());
    }
    let notice = q.logged_out.is_some().then_some("ログアウトしました。");
    Ok(page(
        StatusCode::OK,
        &token,
        "",
        next.as_deref(),
        &FormErrors::new(),
        notice,
    ))
}

pub async fn submit(
    State(state): State<DeskState>,
    session: Session,
    ClientIp(ip): ClientIp,
    CsrfToken(token): CsrfToken,
    CsrfForm(form): CsrfForm,
) -> Result<Response, AppError> {
    let next = safe_next(form.get("next"));
    let email = form.get("email");
    let password = form.get("password");
    if let Err(later) = state.login_limiter().check(ip) {
        tracing::warn!(%ip, "login attempts over the per-client limit");
        return Err(AppError::TooManyRequests {
            retry_after_secs: later.retry_after_secs,
        });
    }
    let mut errors = FormErrors::new();
    if email.trim().is_empty() {
        errors.add("email", "メールアドレスを入力してください。");
    }
    if password.is_empty() {
        errors.add("password", "パスワードを入力してください。");
    }
    if !errors.is_empty() {
        return Ok(page(
            StatusCode::UNPROCESSABLE_ENTITY,
            &token,
            email,
            next.as_deref(),
            &errors,
            None,
        ));
    }
    let Some(user) = state
        .users()
        .authenticate(email, password)
        .await
        .map_err(|e| AppError::Internal(e.into()))?
    else {
        tracing::info!(%ip, "failed desk login");
        errors.add("password", FAILED);
        return Ok(page(
            StatusCode::UNPROCESSABLE_ENTITY,
            &token,
            email,
            next.as_deref(),
            &errors,
            None,
        ));
    };
    // A new session id at every login: an id planted or seen before the login
    // (session fixation) is worth nothing after it.
    session.cycle_id().await.map_err(AppError::internal)?;
    session
        .insert(
            SESSION_USER,
            SessionUser {
                user_id: user.user_id,
                since: state.now(),
            },
        )
        .await
        .map_err(AppError::internal)?;
    tracing::info!(user_id = %user.user_id, role = %user.role, "desk login");
    Ok(Redirect::to(next.as_deref().unwrap_or("/desk")).into_response())
}

pub async fn logout(session: Session, CsrfForm(_): CsrfForm) -> Result<Response, AppError> {
    if let Ok(Some(held)) = session.get::<SessionUser>(SESSION_USER).await {
        tracing::info!(user_id = %held.user_id, "desk logout");
    }
    // Deletes the session row and tells the browser to drop the cookie.
    session.flush().await.map_err(AppError::internal)?;
    Ok(Redirect::to("/desk/login?logged_out=1").into_response())
}

fn page(
    status: StatusCode,
    csrf_token: &str,
    email: &str,
    next: Option<&str>,
    errors: &FormErrors,
    notice: Option<&str>,
) -> Response {
    let help = format!(
        "{MAX_FAILED_LOGINS}回続けて誤ると、{LOCKOUT_MINUTES}分間ログインできなくなります。そのときは{LOCKOUT_MINUTES}分待つか、管理者にロックの解除を依頼してください。"
    );
    let email_field = Field::new("email", "メールアドレス", true).error(errors.get("email"));
    let password_field = Field::new("password", "パスワード", true)
        .help(&help)
        .error(errors.get("password"));
    let body: Markup = html! { div.narrow {
        h1 { "ログイン" }
        @if let Some(text) = notice { (layout::notice(text)) }
        (errors.summary(|f| if f == "email" { "メールアドレス".into() } else { "パスワード".into() }))
        form method="post" action="/desk/login" novalidate {
            (csrf_field(csrf_token))
            @if let Some(n) = next { (fields::hidden("next", n)) }
            (fields::input(&email_field, "email", email, InputOpts {
                autocomplete: Some("username"),
                inputmode: Some("email"),
                maxlength: Some(254),
                ..InputOpts::default()
            }))
            (fields::input(&password_field, "password", "", InputOpts {
                autocomplete: Some("current-password"),
                maxlength: Some(256),
                ..InputOpts::default()
            }))
            div.actions { button.button type="submit" { "ログイン" } }
        }
        p { "アカウントをお持ちでない場合や、パスワードを忘れた場合は、管理者に連絡してください。" }
    } };
    (
        status,
        Html(layout::bare_page("ログイン", body).into_string()),
    )
        .into_response()
}
