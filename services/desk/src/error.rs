//! [`AppError`]: every way a desk request can fail, answered as a Japanese page.
//! Internal errors are logged with their detail and shown only as an apology.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::html;

use crate::auth::next::login_url;
use crate::layout;

/// The one error type of the desk's handlers.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Not logged in (or the session ended): 303 to the login page, then back to `next`.
    #[error("login required")]
    LoginRequired { next: Option<String> },
    /// 403: the role lacks the right.
    #[error("forbidden")]
    Forbidden,
    /// 403: a POST without a valid CSRF token.
    #[error("CSRF token missing or forged")]
    Csrf,
    /// 404: an unknown page or id.
    #[error("not found")]
    NotFound,
    /// 400 with the message shown.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// 409 with the message shown: the state changed (another staff member acted
    /// first, or the action contradicts the current state).
    #[error("conflict: {0}")]
    Conflict(String),
    /// 422 with the message shown, for a value that has no form to go back to.
    #[error("unprocessable: {0}")]
    Unprocessable(String),
    /// 429: too many attempts; try again after the given seconds.
    #[error("too many requests")]
    TooManyRequests { retry_after_secs: u64 },
    /// Any other status with its own title and message (413, 415, ...).
    #[error("{status}: {title}")]
    Status {
        status: StatusCode,
        title: &'static str,
        message: String,
    },
    /// 500. The detail is logged, never shown.
    #[error("internal error: {0:#}")]
    Internal(anyhow::Error),
}

impl AppError {
    /// A 500 from anything displayable (logged when answered).
    pub fn internal(error: impl std::fmt::Display) -> Self {
        Self::Internal(anyhow::anyhow!("{error}"))
    }

    pub fn status(status: StatusCode, title: &'static str, message: impl Into<String>) -> Self {
        Self::Status {
            status,
            title,
            message: message.into(),
        }
    }

    /// The HTTP status this error answers with.
    pub fn status_code(&self) -> StatusCode {
        match self {
            Self::LoginRequired { .. } => StatusCode::SEE_OTHER,
            Self::Forbidden | Self::Csrf => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Status { status, .. } => *status,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn title_and_message(&self) -> (&str, String) {
        match self {
            Self::LoginRequired { .. } => ("ログインしてください", String::new()),
            Self::Forbidden => (
                "この操作を行う権限がありません",
                "お使いのアカウントの役割では、このページを表示したり、この操作を行ったりすることはできません。必要な場合は管理者に依頼してください。".into(),
            ),
            Self::Csrf => (
                "送信を受け付けられませんでした",
                "ページの有効性を確認できませんでした（Cookie が無効になっているか、ページを開いてから時間が経ったか、別のサイトから送信された可能性があります）。ページを開き直して、もう一度操作してください。".into(),
            ),
            Self::NotFound => (
                "ページが見つかりません",
                "お探しのページ、または指定された案件・ユーザーは見つかりませんでした。URL をご確認いただくか、メニューからたどってください。".into(),
            ),
            Self::BadRequest(m) => ("リクエストを処理できませんでした", m.clone()),
            Self::Conflict(m) => ("操作を完了できませんでした", m.clone()),
            Self::Unprocessable(m) => ("入力内容を確認してください", m.clone()),
            Self::TooManyRequests { retry_after_secs } => (
                "しばらくしてからお試しください",
                format!(
                    "短時間に多くの試行がありました。{}後に、もう一度お試しください。",
                    wait_ja(*retry_after_secs)
                ),
            ),
            Self::Status { title, message, .. } => (title, message.clone()),
            Self::Internal(_) => (
                "システムエラー",
                "申し訳ありません。システムで問題が発生しました。時間をおいてもう一度お試しください。続く場合はシステム管理者に連絡してください。".into(),
            ),
        }
    }
}

/// "約3分" / "約40秒".
pub(crate) fn wait_ja(secs: u64) -> String {
    if secs >= 60 {
        format!("約{}分", secs.div_ceil(60))
    } else {
        format!("約{}秒", secs.max(1))
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if let Self::LoginRequired { next } = &self {
            return Redirect::to(&login_url(next.as_deref())).into_response();
        }
        if let Self::Internal(e) = &self {
            tracing::error!(error = format!("{e:#}"), "internal error on a desk page");
        }
        let status = self.status_code();
        let (title, message) = self.title_and_message();
        let body = html! {
            h1 { (title) }
            p { (message) }
            p { a href="/desk" { "デスクのトップへ戻る" } }
        };
        let mut res = (status, Html(layout::bare_page(title, body).into_string())).into_response();
        if let Self::TooManyRequests { retry_after_secs } = self
            && let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string())
        {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        res
    }
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        Self::Internal(e.into())
    }
}

impl From<anyhow::Error> for AppError {
    fn from(e: anyhow::Error) -> Self {
        Self::Internal(e)
    }
}

impl From<kujira_eventlog::Error> for AppError {
    fn from(e: kujira_eventlog::Error) -> Self {
        match e {
            kujira_eventlog::Error::Conflict { .. } => Self::Conflict(
                "ほかの職員が同時に同じ内容を更新しました。ページを開き直して、最新の状態を確認してから、もう一度操作してください。".into(),
            ),
            other => Self::Internal(other.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body(e: AppError) -> (StatusCode, String) {
        let res = e.into_response();
        let status = res.status();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn every_status_is_a_japanese_page_that_leaks_nothing() {
        let cases = [
            (AppError::BadRequest("不正です".into()), 400),
            (AppError::Forbidden, 403),
            (AppError::Csrf, 403),
            (AppError::NotFound, 404),
            (AppError::Conflict("先に更新されました".into()), 409),
            (AppError::Unprocessable("値が不正です".into()), 422),
            (
                AppError::TooManyRequests {
                    retry_after_secs: 90,
                },
                429,
            ),
            (
                AppError::internal("password authentication failed for user \"kujira\""),
                500,
            ),
        ];
        for (error, code) in cases {
            let (status, html) = body(error).await;
            assert_eq!(status.as_u16(), code);
            assert!(html.contains("lang=\"ja\""), "{code}: {html}");
            assert!(html.contains("<h1>"), "{code}");
            assert!(!html.contains("kujira\""), "{code} leaks internals: {html}");
            assert!(!html.contains("password authentication"), "{code}");
        }
        let res = AppError::TooManyRequests {
            retry_after_secs: 90,
        }
        .into_response();
        assert_eq!(res.headers()[header::RETRY_AFTER], "90");
    }

    #[tokio::test]
    async fn login_required_redirects_with_next() {
        let res = AppError::LoginRequired {
            next: Some("/desk/users".into()),
        }
        .into_response();
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert_eq!(
            res.headers()[header::LOCATION],
            "/desk/login?next=%2Fdesk%2Fusers"
        );
    }
}
