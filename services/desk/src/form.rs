//! Desk forms: CSRF on every POST, and field errors shown beside their fields.
//!
//! * A middleware makes sure every desk response leaves the browser with the CSRF
//!   cookie (kujira_web's signed double-submit [`kujira_web::Csrf`]) and hands the
//!   matching token to the handler ([`CsrfToken`], also inside [`crate::Staff`]).
//! * Every form carries [`csrf_field`] (`staff.csrf_field()`).
//! * Every POST handler takes [`CsrfForm`] as its body: a form without the token,
//!   or with a forged one, never reaches the handler (403 page).
//! * [`FormErrors`] collects per-field messages; render fields with
//!   `kujira_web::fields` and `errors.get(name)`, and [`FormErrors::summary`] above.

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use kujira_domain::values::ValueError;
use kujira_web::{CSRF_COOKIE, CSRF_FIELD, FormData};
use maud::Markup;

use crate::DeskState;
use crate::error::AppError;

/// The CSRF token that matches this browser's cookie, for the hidden field.
#[derive(Debug, Clone)]
pub struct CsrfToken(pub String);

impl<S: Send + Sync> FromRequestParts<S> for CsrfToken {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<CsrfToken>()
            .cloned()
            .ok_or_else(|| AppError::internal("the desk CSRF layer is missing"))
    }
}

/// The hidden field with the CSRF token; put it inside every `<form method="post">`.
pub fn csrf_field(token: &str) -> Markup {
    kujira_web::fields::hidden(CSRF_FIELD, token)
}

/// Gives the browser a CSRF cookie when it has none, and the handler its token.
pub(crate) async fn csrf_cookie(
    State(state): State<DeskState>,
    jar: CookieJar,
    mut req: Request,
    next: Next,
) -> Response {
    let had_cookie = jar.get(CSRF_COOKIE).is_some();
    let (jar, token) = state.kit().csrf().issue(jar);
    req.extensions_mut().insert(CsrfToken(token));
    let res = next.run(req).await;
    if had_cookie {
        res
    } else {
        (jar, res).into_response()
    }
}

/// The urlencoded body of a staff POST whose CSRF token matched the cookie.
/// Rejections: 415 (not a form), 413 (over 64 KiB), 400 (not UTF-8), 403 (CSRF).
#[derive(Debug, Clone)]
pub struct CsrfForm(pub FormData);

impl std::ops::Deref for CsrfForm {
    type Target = FormData;
    fn deref(&self) -> &FormData {
        &self.0
    }
}

impl<S> FromRequest<S> for CsrfForm
where
    S: Send + Sync,
    DeskState: FromRef<S>,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let desk = DeskState::from_ref(state);
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                v.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !is_form {
            return Err(AppError::status(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "送信できませんでした",
                "フォームの送信形式が正しくありません。ページを開き直して、もう一度お試しください。",
            ));
        }
        let jar = CookieJar::from_headers(req.headers());
        let body = Bytes::from_request(req, state).await.map_err(|r| {
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                AppError::status(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "送信内容が大きすぎます",
                    format!(
                        "一度に送信できるのは {} KB までです。入力内容を短くして、もう一度お試しください。",
                        kujira_web::BODY_LIMIT / 1024
                    ),
                )
            } else {
                AppError::BadRequest("送信内容を受け取れませんでした。もう一度お試しください。".into())
            }
        })?;
        let form = FormData::parse(&body).ok_or_else(|| {
            AppError::BadRequest(
                "送信された文字を読み取れませんでした（文字コードが UTF-8 ではありません）。"
                    .into(),
            )
        })?;
        if !desk.kit().csrf().verify(&jar, form.get(CSRF_FIELD)) {
            tracing::info!("desk POST refused: missing or forged CSRF token");
            return Err(AppError::Csrf);
        }
        Ok(Self(form))
    }
}

/// The errors of one submitted desk form: `(field name, Japanese message)`, in the
/// order of the fields; the first message of a field wins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FormErrors(Vec<(String, String)>);

impl FormErrors {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        let field = field.into();
        if self.get(&field).is_none() {
            self.0.push((field, message.into()));
        }
    }

    /// Records a value type's refusal under `field`.
    pub fn value(&mut self, field: impl Into<String>, error: &ValueError) {
        self.add(field, error.message_ja());
    }

    /// `result`'s value, or `None` with its error recorded under `field`.
    pub fn check<T>(&mut self, field: &str, result: Result<T, ValueError>) -> Option<T> {
        result.map_err(|e| self.value(field, &e)).ok()
    }

    pub fn get(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, m)| m.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(f, m)| (f.as_str(), m.as_str()))
    }

    /// The error summary (each item links to its field `#f-<name>`), with each
    /// message prefixed by its field's label.
    pub fn summary(&self, label_of: impl Fn(&str) -> String) -> Markup {
        let items: Vec<(String, String)> = self
            .0
            .iter()
            .map(|(f, m)| (f.clone(), format!("{}：{}", label_of(f), m)))
            .collect();
        kujira_web::fields::error_summary(&items)
    }
}
