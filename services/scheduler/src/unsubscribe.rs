//! One-click unsubscribe (RFC 8058) from applicant follow-up mail.
//!
//! Every applicant follow-up carries `List-Unsubscribe: <https://…/unsubscribe/<token>>`
//! and `List-Unsubscribe-Post: List-Unsubscribe=One-Click`, and a footer line with
//! the same link (the mailer adds them; see `build_message_with`). The token is the
//! person's id signed with the project's one signed-token scheme
//! ([`kujira_web::Signer`], purpose `unsubscribe`), with no expiry: a link in a mail
//! read a year later still works.
//!
//! * `GET /unsubscribe/{token}` shows a page with ONE button and changes nothing:
//!   mail scanners and link previews follow links.
//! * `POST /unsubscribe/{token}` with the body `List-Unsubscribe=One-Click` (as
//!   `application/x-www-form-urlencoded` or `multipart/form-data`, RFC 8058 §3.1)
//!   opts out at once. Mail clients send it without cookies, so it cannot carry a
//!   CSRF token: the unguessable link is what authorises it, by the RFC's design.
//! * The page's own buttons post `action=opt_out` or `action=opt_in` with a CSRF
//!   token, then show the page again (303): after opting out it offers 再開する.
//!
//! Opting out or in is a `MailOptedOut` / `MailOptedIn` fact on the person's stream.

use axum::Router;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum_extra::extract::cookie::CookieJar;
use kujira_config::Config;
use kujira_domain::person::{OptOutVia, Person, PersonError, PersonState};
use kujira_eventlog::StreamName;
use kujira_store::{CommandError, Store};
use kujira_web::{CSRF_FIELD, FormData, Kit, PageError, Signer};
use maud::{Markup, html};
use uuid::Uuid;

/// The purpose of the signed unsubscribe tokens.
const PURPOSE: &str = "unsubscribe";
/// The form field and value of RFC 8058's one-click POST.
const ONE_CLICK_FIELD: &str = "List-Unsubscribe";
const ONE_CLICK_VALUE: &str = "One-Click";

/// Makes and reads the unsubscribe links. Cheap to clone.
#[derive(Clone, Debug)]
pub struct UnsubscribeLinks {
    base_url: String,
    signer: Signer,
}

impl UnsubscribeLinks {
    /// Links under `public_url` (no trailing slash), signed with `secret`.
    pub fn new(public_url: &str, secret: &[u8]) -> Self {
        Self {
            base_url: public_url.trim_end_matches('/').to_owned(),
            signer: Signer::new(secret, PURPOSE),
        }
    }

    /// Under `KUJIRA_PUBLIC_URL`, signed with `KUJIRA_SECRET`.
    pub fn from_config(config: &Config) -> Self {
        Self::new(&config.public_url, config.secret.expose())
    }

    /// The person's token: their id, signed.
    pub fn token(&self, person_id: Uuid) -> String {
        self.signer.sign(&person_id.simple().to_string())
    }

    /// The person's one-click link: `<public url>/unsubscribe/<token>`.
    pub fn url(&self, person_id: Uuid) -> String {
        format!("{}/unsubscribe/{}", self.base_url, self.token(person_id))
    }

    /// The person a genuine token stands for.
    pub fn person(&self, token: &str) -> Option<Uuid> {
        Uuid::try_parse(&self.signer.verify(token)?).ok()
    }
}

/// What the unsubscribe pages need.
#[derive(Clone, Debug)]
pub struct UnsubscribeState {
    kit: Kit,
    store: Store,
    links: UnsubscribeLinks,
}

impl UnsubscribeState {
    /// `kit` is the public services' kit (words, CSRF, clock).
    pub fn new(config: &Config, store: Store, kit: Kit) -> Self {
        Self {
            links: UnsubscribeLinks::from_config(config),
            kit,
            store,
        }
    }
}

impl axum::extract::FromRef<UnsubscribeState> for Kit {
    fn from_ref(s: &UnsubscribeState) -> Kit {
        s.kit.clone()
    }
}

/// The unsubscribe routes: `GET` and `POST /unsubscribe/{token}`.
pub fn router(state: UnsubscribeState) -> Router {
    kujira_web::with_body_limit(
        Router::new()
            .route("/unsubscribe/{token}", get(show).post(submit))
            .with_state(state),
    )
}

#[derive(serde::Deserialize)]
struct Shown {
    /// `out` or `in`: what the page's button just did.
    done: Option<String>,
}

fn not_found(kit: &Kit) -> PageError {
    kit.error_page(
        StatusCode::NOT_FOUND,
        "ページが見つかりません",
        "このリンクは無効です。お手数ですが、メールに記載されたリンクをもう一度ご確認ください。",
    )
}

/// The page answers carry the token in their URL: keep it out of referrers, caches
/// and search engines.
fn private(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        "x-robots-tag",
        HeaderValue::from_static("noindex, nofollow"),
    );
    res
}

async fn person_state(s: &UnsubscribeState, person_id: Uuid) -> Result<PersonState, PageError> {
    let stream = StreamName::new(kujira_domain::person::CATEGORY, person_id);
    let (state, _) = kujira_store::load::<Person>(&s.store, &stream, None)
        .await
        .map_err(|e| s.kit.internal_error(&e))?;
    Ok(state)
}

async fn show(
    State(s): State<UnsubscribeState>,
    Path(token): Path<String>,
    Query(shown): Query<Shown>,
    jar: CookieJar,
) -> Result<Response, PageError> {
    let person_id = s.links.person(&token).ok_or_else(|| not_found(&s.kit))?;
    let state = person_state(&s, person_id).await?;
    if state.erased.is_some() {
        return Err(not_found(&s.kit));
    }
    let (jar, csrf) = s.kit.csrf().issue(jar);
    let page = page(
        &s.kit,
        &token,
        &csrf,
        state.opted_out,
        shown.done.as_deref(),
    );
    Ok(private((jar, Html(page.into_string())).into_response()))
}

fn page(kit: &Kit, token: &str, csrf: &str, opted_out: bool, done: Option<&str>) -> Markup {
    let w = kit.words();
    let action = format!("/unsubscribe/{token}");
    let title = if opted_out {
        "ご案内メールの配信を停止しています"
    } else {
        "ご案内メールの配信停止"
    };
    kit.page(
        title,
        html! {
            h1 { (title) }
            @match (done, opted_out) {
                (Some("out"), true) => {
                    p role="status" { strong { "配信を停止しました。" } }
                }
                (Some("in"), false) => {
                    p role="status" { strong { "配信を再開しました。" } }
                }
                _ => {}
            }
            @if opted_out {
                p {
                    (w.site_name) "からのご案内メール（体験ツアーのリマインダーやお礼、"
                    "移住相談のフォローアップなど）は、現在お送りしていません。"
                }
                p {
                    "お申し込みの確認やキャンセルのお知らせなど、お手続きに必要なメールは"
                    "引き続きお送りします。"
                }
                p { "ご案内メールを再びお受け取りになる場合は、下のボタンを押してください。" }
                form method="post" action=(action) {
                    input type="hidden" name=(CSRF_FIELD) value=(csrf);
                    input type="hidden" name="action" value="opt_in";
                    div.actions {
                        button.button type="submit" { "配信を再開する" }
                    }
                }
            } @else {
                p {
                    (w.site_name) "からのご案内メール（体験ツアーのリマインダーやお礼、"
                    "移住相談のフォローアップなど）の配信を停止します。"
                }
                p {
                    "お申し込みの確認やキャンセルのお知らせなど、お手続きに必要なメールは"
                    "配信停止後も引き続きお送りします。"
                }
                form method="post" action=(action) {
                    input type="hidden" name=(CSRF_FIELD) value=(csrf);
                    input type="hidden" name="action" value="opt_out";
                    div.actions {
                        button.button type="submit" { "配信を停止する" }
                    }
                }
                p { "このページを開いただけでは、配信は停止されません。" }
            }
        },
    )
}

fn content_type(req: &Request) -> String {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default()
}

/// The posted fields, urlencoded or (RFC 8058 prefers it) multipart.
async fn fields(kit: &Kit, req: Request) -> Result<FormData, PageError> {
    let bad = || {
        kit.error_page(
            StatusCode::BAD_REQUEST,
            "送信を受け付けられませんでした",
            "送信内容を読み取れませんでした。お手数ですが、ページを開き直して、もう一度お試しください。",
        )
    };
    match content_type(&req).as_str() {
        "application/x-www-form-urlencoded" => {
            let body = axum::body::Bytes::from_request(req, &())
                .await
                .map_err(|_| bad())?;
            FormData::parse(&body).ok_or_else(bad)
        }
        "multipart/form-data" => {
            let mut multipart = axum::extract::Multipart::from_request(req, &())
                .await
                .map_err(|_| bad())?;
            let mut pairs = Vec::new();
            while let Some(field) = multipart.next_field().await.map_err(|_| bad())? {
                let name = field.name().unwrap_or_default().to_owned();
                let value = field.text().await.map_err(|_| bad())?;
                pairs.push((name, value));
            }
            Ok(FormData::from_pairs(pairs))
        }
        _ => Err(kit.error_page(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "送信できませんでした",
            "送信形式が正しくありません。ページを開き直して、もう一度お試しください。",
        )),
    }
}

async fn submit(
    State(s): State<UnsubscribeState>,
    Path(token): Path<String>,
    jar: CookieJar,
    req: Request,
) -> Result<Response, PageError> {
    let person_id = s.links.person(&token).ok_or_else(|| not_found(&s.kit))?;
    let form = fields(&s.kit, req).await?;
    let now = s.kit.now();
    if form.get(ONE_CLICK_FIELD) == ONE_CLICK_VALUE {
        // RFC 8058: from a mail client, without cookies; the link authorises it.
        change(&s, person_id, true, OptOutVia::OneClick, now).await?;
        let done = s.kit.page(
            "配信を停止しました",
            html! {
                h1 { "配信を停止しました" }
                p role="status" {
                    (s.kit.words().site_name) "からのご案内メールの配信を停止しました。"
                    "お手続きに必要なメールは引き続きお送りします。"
                }
            },
        );
        return Ok(private(Html(done.into_string()).into_response()));
    }
    s.kit.check_csrf(&jar, &form)?;
    let (opted_out, done) = match form.get("action") {
        "opt_out" => (true, "out"),
        "opt_in" => (false, "in"),
        _ => {
            return Err(s.kit.error_page(
                StatusCode::BAD_REQUEST,
                "送信を受け付けられませんでした",
                "操作を読み取れませんでした。お手数ですが、ページを開き直して、もう一度お試しください。",
            ));
        }
    };
    change(&s, person_id, opted_out, OptOutVia::Page, now).await?;
    Ok(private(
        Redirect::to(&format!("/unsubscribe/{token}?done={done}")).into_response(),
    ))
}

async fn change(
    s: &UnsubscribeState,
    person_id: Uuid,
    opted_out: bool,
    via: OptOutVia,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), PageError> {
    match crate::person::set_follow_ups_opted_out(
        &s.store,
        person_id,
        opted_out,
        via,
        "applicant",
        now,
    )
    .await
    {
        Ok(_) => Ok(()),
        Err(CommandError::Refused(PersonError::Erased)) => Err(not_found(&s.kit)),
        Err(e) => Err(s.kit.internal_error(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_name_their_person_and_refuse_forgery() {
        let links = UnsubscribeLinks::new(
            "https://kujira.example.jp/",
            b"0123456789abcdef0123456789abcdef",
        );
        let p = Uuid::from_u128(42);
        let url = links.url(p);
        assert!(
            url.starts_with("https://kujira.example.jp/unsubscribe/"),
            "{url}"
        );
        let token = url.rsplit('/').next().unwrap();
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        );
        assert_eq!(links.person(token), Some(p));
        let other = UnsubscribeLinks::new("https://x", b"another-secret-another-secret-xx");
        assert_eq!(other.person(token), None);
        // A token of the same secret for another purpose is not an unsubscribe token.
        let signer = Signer::new(b"0123456789abcdef0123456789abcdef", "cancel");
        assert_eq!(links.person(&signer.sign(&p.simple().to_string())), None);
        assert_eq!(links.person("garbage"), None);
    }
}
