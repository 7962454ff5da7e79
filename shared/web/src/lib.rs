//! The web kit both public services (intake, tours) build their pages on.
//!
//! * [`Kit`]: one handle on everything a public form needs (city words, CSRF,
//!   one-time form tokens, the per-IP submission limit, the clock). Put it in your
//!   state and implement `FromRef<YourState> for Kit`, which the [`FormData`]
//!   extractor needs to render its Japanese rejection pages.
//! * [`layout`]: the page frame (`lang="ja"`, phone first, no JavaScript) and the
//!   入力 → 確認 → 完了 step list.
//! * [`fields`]: accessible fields (label + ※必須/※任意 + help + error with
//!   `aria-describedby`/`aria-invalid`), the error summary, consent, honeypot.
//! * [`security`]: signed double-submit CSRF, signed one-time form tokens, [`Signer`]
//!   for any other signed token (cancel links).
//! * [`extract`]: [`FormData`] (strict urlencoded form, Japanese 4xx pages),
//!   [`JsonObject`] (JSON object body, `{"errors": {...}}` 4xx), [`ClientIp`].
//! * [`error`]: [`PageError`] and [`ApiError`], which never leak internals.
//! * [`contract`]: request-body schemas that the OpenAPI document publishes and the
//!   handlers enforce ([`contract::BodySchema`]).
//! * [`idempotency`]: the one `Idempotency-Key` rule of every JSON API.
//! * [`funnel`]: recording funnel steps (`funnel-<form token id>` streams).
//! * [`mail_body`]: the one layout of the mails rendered at send time (text and HTML
//!   from one body) and the city's signature.
//!
//! A typical HTML flow (see `services/intake` for a complete one):
//!
//! ```ignore
//! async fn show(State(s): State<MyState>, jar: CookieJar) -> impl IntoResponse {
//!     let (jar, csrf) = s.kit.csrf().issue(jar);
//!     let token = s.kit.form_tokens().issue("tour_signup:…", s.kit.now());
//!     (jar, Html(s.kit.page("タイトル", html! { form method="post" action="…" novalidate {
//!         (fields::form_guards(&csrf, &token.token)) … } }).into_string()))
//! }
//! async fn confirm(State(s): State<MyState>, jar: CookieJar, form: FormData) -> Result<…, PageError> {
//!     s.kit.check_csrf(&jar, &form)?;                     // 403 page when missing/forged
//!     let token = s.kit.check_form_token("tour_signup:…", &form)?;  // 400 page when forged
//!     …
//! }
//! ```
//! Wrap the router with [`with_body_limit`] so bodies over 64 KiB get 413.

pub mod contract;
pub mod error;
pub mod extract;
pub mod fields;
pub mod funnel;
pub mod idempotency;
pub mod layout;
pub mod mail_body;
pub mod ratelimit;
pub mod security;

use std::net::IpAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum_extra::extract::cookie::CookieJar;
use chrono::{DateTime, Utc};
use kujira_config::{CityWords, Clock, Config};
use maud::Markup;

pub use error::{ApiError, ErrorBody, PageError};
pub use extract::{ClientIp, FormData, JsonObject, TrustedProxies};
pub use idempotency::{Fingerprints, IdempotencyKey, IdempotencyKeyHeader};
pub use ratelimit::{RateLimited, RateLimiter};
pub use security::{
    CSRF_COOKIE, CSRF_FIELD, Csrf, FORM_TOKEN_FIELD, FormToken, FormTokens, Signer,
};

fn is_api(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/")
}

/// The largest request body accepted; larger ones get 413.
pub const BODY_LIMIT: usize = 64 * 1024;

/// Applies the 64 KiB body limit that the extractors turn into a 413 answer.
pub fn with_body_limit<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    router.layer(DefaultBodyLimit::max(BODY_LIMIT))
}

/// Everything a public form needs. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Kit(Arc<KitInner>);

#[derive(Debug)]
struct KitInner {
    words: Arc<CityWords>,
    csrf: Csrf,
    tokens: FormTokens,
    limiter: RateLimiter,
    /// Caps the funnel steps one address can record, so that page views, which need
    /// no token, cannot be used to make the service write without limit.
    funnel_limiter: RateLimiter,
    clock: Arc<dyn Clock>,
    timezone: chrono_tz::Tz,
}

/// Funnel steps recorded per address per hour, as a multiple of the submission
/// limit: a person views and confirms a form several times for each submission.
pub const FUNNEL_STEPS_PER_SUBMISSION: u32 = 10;

impl Kit {
    /// Builds the kit from the configuration. Cookies are `Secure` when
    /// `KUJIRA_PUBLIC_URL` is https. Services that share one kit also share the
    /// per-IP submission count.
    pub fn new(config: &Config, clock: Arc<dyn Clock>) -> Self {
        let secret = config.secret.expose();
        Self(Arc::new(KitInner {
            words: Arc::new(config.words.clone()),
            csrf: Csrf::new(secret, config.public_url.starts_with("https://")),
            tokens: FormTokens::new(secret),
            limiter: RateLimiter::new(config.submissions_per_ip_per_hour, clock.clone()),
            funnel_limiter: RateLimiter::new(
                config
                    .submissions_per_ip_per_hour
                    .saturating_mul(FUNNEL_STEPS_PER_SUBMISSION),
                clock.clone(),
            ),
            clock,
            timezone: config.timezone,
        }))
    }

    pub fn words(&self) -> &CityWords {
        &self.0.words
    }

    pub fn csrf(&self) -> &Csrf {
        &self.0.csrf
    }

    pub fn form_tokens(&self) -> &FormTokens {
        &self.0.tokens
    }

    pub fn limiter(&self) -> &RateLimiter {
        &self.0.limiter
    }

    /// Whether a funnel step (form or confirm viewed) from `ip` may still be recorded
    /// this hour. Past the cap the page is served as usual and the step is not recorded.
    pub fn funnel_allowed(&self, ip: IpAddr) -> bool {
        self.0.funnel_limiter.check(ip).is_ok()
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.0.clock
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.0.clock.now()
    }

    pub fn timezone(&self) -> chrono_tz::Tz {
        self.0.timezone
    }

    /// A whole page in the site's frame.
    pub fn page(&self, title: &str, body: Markup) -> Markup {
        layout::page(&self.0.words, title, body)
    }

    /// An error answered as a Japanese page.
    pub fn error_page(
        &self,
        status: StatusCode,
        title: impl Into<String>,
        message: impl Into<String>,
    ) -> PageError {
        PageError::new(self.0.words.clone(), status, title, message)
    }

    /// What no route answers: 404, as JSON under `/api/` and as a Japanese page
    /// elsewhere (a mistyped or outdated address, not a blank page).
    pub fn not_found(&self, path: &str) -> axum::response::Response {
        use axum::response::IntoResponse;
        if is_api(path) {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "request",
                "この URL の API はありません。/api/openapi.json をご確認ください。",
            )
            .into_response()
        } else {
            self.error_page(
                StatusCode::NOT_FOUND,
                "ページが見つかりません",
                "お探しのページは見つかりませんでした。アドレスに誤りがないか、ご確認ください。",
            )
            .into_response()
        }
    }

    /// A route that exists, asked with a method it does not take: 405, as JSON under
    /// `/api/` and as a Japanese page elsewhere (axum adds the `Allow` header).
    pub fn method_not_allowed(
        &self,
        path: &str,
        method: &axum::http::Method,
    ) -> axum::response::Response {
        use axum::response::IntoResponse;
        if is_api(path) {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "request",
                format!("この URL では {method} を使えません（使えるメソッドは Allow ヘッダーのとおりです）。"),
            )
            .into_response()
        } else {
            self.error_page(
                StatusCode::METHOD_NOT_ALLOWED,
                "このページは開けません",
                "このアドレスは、フォームの送信などの操作にだけ使われます。前のページに戻るか、ページを開き直してお進みください。",
            )
            .into_response()
        }
    }

    /// Logs `error` and answers a 500 page that shows nothing of it.
    pub fn internal_error(&self, error: &dyn std::fmt::Display) -> PageError {
        PageError::internal(self.0.words.clone(), error)
    }

    /// 403 unless the form's [`CSRF_FIELD`] matches the browser's CSRF cookie.
    pub fn check_csrf(&self, jar: &CookieJar, form: &FormData) -> Result<(), PageError> {
        if self.0.csrf.verify(jar, form.get(CSRF_FIELD)) {
            Ok(())
        } else {
            Err(self.error_page(
                StatusCode::FORBIDDEN,
                "送信を受け付けられませんでした",
                "ページの有効性を確認できませんでした（Cookie が無効になっているか、別のサイトから送信された可能性があります）。お手数ですが、フォームのページを開き直して、もう一度送信してください。",
            ))
        }
    }

    /// The genuine one-time token of `form` from the form's [`FORM_TOKEN_FIELD`],
    /// or a 400 page.
    pub fn check_form_token(
        &self,
        form_name: &str,
        form: &FormData,
    ) -> Result<FormToken, PageError> {
        self.0
            .tokens
            .verify(form_name, form.get(FORM_TOKEN_FIELD))
            .ok_or_else(|| {
                self.error_page(
                    StatusCode::BAD_REQUEST,
                    "送信を受け付けられませんでした",
                    "フォームの情報が正しくありません。お手数ですが、フォームのページを開き直して、もう一度入力してください。",
                )
            })
    }

    /// Counts a submission from `ip`; over the limit, a 429 page.
    pub fn check_rate_page(&self, ip: IpAddr) -> Result<(), PageError> {
        self.0.limiter.check(ip).map_err(|r| {
            self.error_page(
                StatusCode::TOO_MANY_REQUESTS,
                "送信回数の上限に達しました",
                "短時間に多くの送信がありました。しばらく時間をおいてから、もう一度お試しください。お急ぎの場合はお電話でご相談ください。",
            )
            .with_retry_after(r.retry_after_secs)
        })
    }

    /// Counts a submission from `ip`; over the limit, a 429 JSON error.
    pub fn check_rate_api(&self, ip: IpAddr) -> Result<(), ApiError> {
        self.0.limiter.check(ip).map_err(|r| {
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "request",
                "送信回数の上限に達しました。時間をおいて再度お試しください。",
            )
            .with_retry_after(r.retry_after_secs)
        })
    }
}
