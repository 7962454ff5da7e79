//! Shared by the desk tests: the desk router on a fresh database with a controlled
//! clock, accounts made through the real `Users`, and a tiny browser that keeps
//! cookies (and drops the ones the server removes) between requests.
//!
//! Logging in from a test:
//! ```ignore
//! let app = App::new().await;
//! app.user("admin@example.jp", Role::Admin).await;
//! let mut b = app.browser();
//! b.login("admin@example.jp", PASSWORD).await;   // asserts the 303
//! let page = b.get("/desk/users").await;
//! b.post_form("/desk/users", &[("email", "...")]).await; // adds the CSRF token
//! ```

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request, StatusCode, header};
use chrono::{DateTime, Utc};
use http_body_util::BodyExt;
use kujira_config::{Config, FixedClock};
use kujira_desk::users::{NewUser, StaffUser};
use kujira_desk::{DeskState, Role};
use kujira_eventlog::Metadata;
use kujira_pgembed::testing::TestDb;
use tower::ServiceExt;
use uuid::Uuid;

/// The password of every account [`App::user`] makes.
pub const PASSWORD: &str = "correct horse battery";

/// 2026-12-01 09:00 in Tokyo.
pub fn t0() -> DateTime<Utc> {
    "2026-12-01T00:00:00Z".parse().unwrap()
}

pub struct App {
    pub db: TestDb,
    pub store: kujira_store::Store,
    pub state: DeskState,
    pub router: Router,
    pub clock: FixedClock,
    pub config: Arc<Config>,
    _dir: tempfile::TempDir,
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Resp {
    /// The value of the first `<input ... name="<name>" value="...">`.
    pub fn input_value(&self, name: &str) -> Option<String> {
        let needle = format!("name=\"{name}\" value=\"");
        let start = self.body.find(&needle)? + needle.len();
        let end = self.body[start..].find('"')? + start;
        Some(unescape(&self.body[start..end]))
    }

    pub fn location(&self) -> Option<&str> {
        self.headers.get(header::LOCATION)?.to_str().ok()
    }

    /// The `href` of the pager link `rel="<rel>"` (next, prev), unescaped.
    pub fn link(&self, rel: &str) -> Option<String> {
        let (before, _) = self.body.split_once(&format!("rel=\"{rel}\""))?;
        let (_, href) = before.rsplit_once("href=\"")?;
        Some(href.split('"').next()?.replace("&amp;", "&"))
    }

    /// Every `Set-Cookie` header.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    /// The `Set-Cookie` header of the cookie `name`.
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.set_cookies()
            .into_iter()
            .find(|c| c.starts_with(&format!("{name}=")))
    }
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

impl App {
    pub async fn new() -> Self {
        Self::with(|_| {}).await
    }

    pub async fn with(tune: impl FnOnce(&mut Config)) -> Self {
        Self::build(&[], tune).await
    }

    /// With the tables of more crates.
    pub async fn with_migrators(extra: &[&'static sqlx::migrate::Migrator]) -> Self {
        Self::build(extra, |_| {}).await
    }

    async fn build(
        extra: &[&'static sqlx::migrate::Migrator],
        tune: impl FnOnce(&mut Config),
    ) -> Self {
        // The desk reads the scheduler's mail outbox (a case's mail states, the KPI's
        // mail counts), so its tables are always there, as in `serve`.
        let mut migrators: Vec<&sqlx::migrate::Migrator> = vec![
            &kujira_eventlog::MIGRATOR,
            &kujira_store::MIGRATOR,
            &kujira_scheduler::MIGRATOR,
            &kujira_desk::MIGRATOR,
        ];
        for m in extra {
            if !migrators.iter().any(|have| std::ptr::eq(*have, *m)) {
                migrators.push(m);
            }
        }
        let db = TestDb::new(&migrators).await;
        kujira_desk::setup(&db.pool).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::for_tests(dir.path());
        tune(&mut config);
        let config = Arc::new(config);
        let store = kujira_store::Store::open(db.pool.clone(), &config.master_key)
            .await
            .unwrap();
        let clock = FixedClock::new(t0());
        let state = DeskState::new(config.clone(), store.clone(), Arc::new(clock.clone()));
        Self {
            router: kujira_desk::router(state.clone()),
            state,
            db,
            store,
            clock,
            config,
            _dir: dir,
        }
    }

    pub fn clock_now(&self) -> DateTime<Utc> {
        use kujira_config::Clock;
        self.clock.now()
    }

    /// An active account with [`PASSWORD`], added by the CLI actor.
    pub async fn user(&self, email: &str, role: Role) -> StaffUser {
        let name = email.split('@').next().unwrap();
        let new = NewUser::parse(email, name, role.as_str(), PASSWORD).unwrap();
        self.state
            .users()
            .add(new, &Metadata::new("cli", Uuid::now_v7()))
            .await
            .unwrap()
    }

    pub async fn send(&self, req: Request<Body>) -> Resp {
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        Resp {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    pub fn browser(&self) -> Browser<'_> {
        Browser {
            app: self,
            cookies: BTreeMap::new(),
            ip: None,
        }
    }

    /// `(stream, type, data, actor)` of every event, in order.
    pub async fn events(&self) -> Vec<(String, String, serde_json::Value, String)> {
        sqlx::query_as(
            "SELECT stream_name, event_type, data, metadata->>'actor' FROM events ORDER BY position",
        )
        .fetch_all(&self.db.pool)
        .await
        .unwrap()
    }

    /// The ids of the sessions stored now.
    pub async fn session_ids(&self) -> Vec<String> {
        sqlx::query_scalar("SELECT id FROM tower_sessions.session ORDER BY id")
            .fetch_all(&self.db.pool)
            .await
            .unwrap()
    }
}

/// Keeps cookies like a browser does, and optionally claims a client address.
pub struct Browser<'a> {
    pub app: &'a App,
    pub cookies: BTreeMap<String, String>,
    pub ip: Option<SocketAddr>,
}

impl Browser<'_> {
    pub fn at_ip(mut self, ip: &str) -> Self {
        self.ip = Some(SocketAddr::new(ip.parse().unwrap(), 40000));
        self
    }

    pub fn session_cookie(&self) -> Option<&str> {
        self.cookies
            .get(kujira_desk::SESSION_COOKIE)
            .map(String::as_str)
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub async fn send(&mut self, mut req: Request<Body>) -> Resp {
        if !self.cookies.is_empty() {
            req.headers_mut()
                .insert(header::COOKIE, self.cookie_header().parse().unwrap());
        }
        if let Some(ip) = self.ip {
            req.extensions_mut().insert(ConnectInfo(ip));
        }
        let res = self.app.send(req).await;
        for v in res.set_cookies() {
            let pair = v.split(';').next().unwrap();
            let (k, val) = pair.split_once('=').unwrap();
            let removed = val.trim().is_empty()
                || v.to_ascii_lowercase().contains("max-age=0")
                || v.contains("1970");
            if removed {
                self.cookies.remove(k.trim());
            } else {
                self.cookies
                    .insert(k.trim().to_owned(), val.trim().to_owned());
            }
        }
        res
    }

    pub async fn get(&mut self, path: &str) -> Resp {
        self.send(Request::get(path).body(Body::empty()).unwrap())
            .await
    }

    /// Posts `pairs` exactly as given (no CSRF token added).
    pub async fn post(&mut self, path: &str, pairs: &[(&str, &str)]) -> Resp {
        let body = serde_urlencoded::to_string(pairs).unwrap();
        let req = Request::post(path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap();
        self.send(req).await
    }

    /// The CSRF token a desk page gives this browser (loads the login page for it).
    pub async fn csrf_token(&mut self) -> String {
        let page = self.get("/desk/login").await;
        match page.input_value("csrf_token") {
            Some(t) => t,
            // Logged in: the login page redirects; any desk page carries the token.
            None => self
                .get("/desk")
                .await
                .input_value("csrf_token")
                .expect("a CSRF field on /desk"),
        }
    }

    /// Posts `pairs` with this browser's CSRF token, as a desk form does.
    pub async fn post_form(&mut self, path: &str, pairs: &[(&str, &str)]) -> Resp {
        let token = self.csrf_token().await;
        let mut all = vec![("csrf_token", token.as_str())];
        all.extend_from_slice(pairs);
        self.post(path, &all).await
    }

    /// Submits the login form.
    pub async fn try_login(&mut self, email: &str, password: &str) -> Resp {
        self.post_form("/desk/login", &[("email", email), ("password", password)])
            .await
    }

    /// Logs in and checks that it worked.
    pub async fn login(&mut self, email: &str, password: &str) -> Resp {
        let res = self.try_login(email, password).await;
        assert_eq!(
            res.status,
            StatusCode::SEE_OTHER,
            "login of {email} failed: {}",
            res.body
        );
        assert!(self.session_cookie().is_some(), "a session cookie is set");
        res
    }
}
