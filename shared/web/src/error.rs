//! Error answers: a Japanese HTML page for pages, `{"errors": {...}}` for `/api`.
//! Neither ever shows an internal message: internals go to the log only.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use kujira_config::CityWords;
use kujira_domain::values::FieldErrors;
use maud::html;

use crate::layout;

/// An error shown as a whole Japanese page.
#[derive(Debug, Clone)]
pub struct PageError {
    pub status: StatusCode,
    pub title: String,
    pub message: String,
    pub retry_after_secs: Option<u64>,
    words: Arc<CityWords>,
}

impl PageError {
    pub fn new(
        words: Arc<CityWords>,
        status: StatusCode,
        title: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            title: title.into(),
            message: message.into(),
            retry_after_secs: None,
            words,
        }
    }

    /// Logs `error` and answers 500 with a page that only apologises.
    pub fn internal(words: Arc<CityWords>, error: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %error, "internal error on a page");
        Self::new(
            words,
            StatusCode::INTERNAL_SERVER_ERROR,
            "システムエラー",
            "申し訳ありません。システムで問題が発生しました。時間をおいてもう一度お試しいただくか、お電話でお問い合わせください。",
        )
    }

    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let w = &self.words;
        let body = html! {
            h1 { (self.title) }
            p { (self.message) }
            p {
                "お困りの場合は " (w.desk_name) "（電話 " (w.desk_phone) "、" (w.desk_hours) "）までご連絡ください。"
            }
            p { a href="/" { "トップページへ戻る" } }
        };
        let mut res = (
            self.status,
            Html(layout::page(w, &self.title, body).into_string()),
        )
            .into_response();
        if let Some(secs) = self.retry_after_secs
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        res
    }
}

/// The body of every 4xx/5xx answer of the JSON API, for the OpenAPI document.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// One Japanese message per field at fault. Problems that are not a field's are
    /// under `body` (the request body as a whole), `request` (too many requests, a
    /// server error), `tour` (the tour) or `Idempotency-Key`.
    #[schema(example = json!({"email": "メールアドレスの形式で入力してください（例：taro@example.jp）。"}))]
    pub errors: BTreeMap<String, String>,
}

/// An error of the JSON API: `{"errors": {"<field>": "<message>"}}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub errors: BTreeMap<String, String>,
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    /// One error under `field` (`body`, `request` or a field name).
    pub fn new(status: StatusCode, field: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            errors: BTreeMap::from([(field.to_owned(), message.into())]),
            retry_after_secs: None,
        }
    }

    /// 422 with one message per field at fault.
    pub fn fields(errors: &FieldErrors) -> Self {
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            errors: errors
                .iter()
                .map(|(f, e)| (f.to_owned(), e.message_ja()))
                .collect(),
            retry_after_secs: None,
        }
    }

    /// Logs `error` and answers 500 without detail.
    pub fn internal(error: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %error, "internal error on the API");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "request",
            "システムで問題が発生しました。時間をおいて再度お試しください。",
        )
    }

    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (
            self.status,
            Json(serde_json::json!({ "errors": self.errors })),
        )
            .into_response();
        if let Some(secs) = self.retry_after_secs
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        res
    }
}
