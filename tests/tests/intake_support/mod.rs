//! Shared by the intake tests: the intake router on a fresh database, a controlled
//! clock, and a tiny "browser" that keeps cookies between requests.

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
use kujira_intake::IntakeState;
use kujira_pgembed::testing::TestDb;
use kujira_store::Store;
use tower::ServiceExt;

/// 2026-11-24 10:00 in Tokyo.
pub fn t0() -> DateTime<Utc> {
    "2026-11-24T01:00:00Z".parse().unwrap()
}

pub struct App {
    pub db: TestDb,
    pub store: Store,
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

    /// Every `<input type="hidden" name=".." value="..">`, in order.
    pub fn hidden_inputs(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut rest = self.body.as_str();
        let open = "<input type=\"hidden\" name=\"";
        while let Some(i) = rest.find(open) {
            rest = &rest[i + open.len()..];
            let name_end = rest.find('"').unwrap();
            let name = unescape(&rest[..name_end]);
            let v = rest.find("value=\"").unwrap() + "value=\"".len();
            let v_end = rest[v..].find('"').unwrap() + v;
            out.push((name, unescape(&rest[v..v_end])));
        }
        out
    }

    pub fn location(&self) -> Option<&str> {
        self.headers.get(header::LOCATION)?.to_str().ok()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
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
        let db = TestDb::new(&[
            &kujira_eventlog::MIGRATOR,
            &kujira_store::MIGRATOR,
            &kujira_intake::MIGRATOR,
        ])
        .await;
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::for_tests(dir.path());
        tune(&mut config);
        let config = Arc::new(config);
        let store = Store::open(db.pool.clone(), &config.master_key)
            .await
            .unwrap();
        let clock = FixedClock::new(t0());
        let state = IntakeState::new(config.clone(), store.clone(), Arc::new(clock.clone()));
        Self {
            router: kujira_intake::router(state),
            db,
            store,
            clock,
            config,
            _dir: dir,
        }
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

    pub async fn post_json(&self, body: &str, key: Option<&str>) -> Resp {
        let mut req =
            Request::post("/api/v1/inquiries").header(header::CONTENT_TYPE, "application/json");
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        self.send(req.body(Body::from(body.to_owned())).unwrap())
            .await
    }

    /// `(stream, type, data)` of every event, in order, personal parts opened.
    pub async fn events(&self) -> Vec<(String, String, serde_json::Value)> {
        let rows: Vec<(String, String, serde_json::Value, uuid::Uuid)> = sqlx::query_as(
            "SELECT stream_name, event_type, data, event_id FROM events ORDER BY position",
        )
        .fetch_all(&self.db.pool)
        .await
        .unwrap();
        let mut out = Vec::with_capacity(rows.len());
        for (stream, event_type, mut data, id) in rows {
            self.store.vault().open(id, &mut data).await.unwrap();
            out.push((stream, event_type, data));
        }
        out
    }

    /// `(stream, type, data)` of every event as stored: personal parts sealed.
    pub async fn raw_events(&self) -> Vec<(String, String, serde_json::Value)> {
        sqlx::query_as("SELECT stream_name, event_type, data FROM events ORDER BY position")
            .fetch_all(&self.db.pool)
            .await
            .unwrap()
    }

    /// The mails a stream queued, rendered as the mailer renders them at send time:
    /// (key, content), in order.
    pub async fn rendered_mails(
        &self,
        stream: &str,
    ) -> Vec<(String, kujira_domain::mail::MailContent)> {
        use kujira_domain::mail::{MailFacts, MailQueued, RenderMail};
        let name = kujira_eventlog::StreamName::parse(stream).unwrap();
        let facts: Vec<(String, serde_json::Value)> = self
            .store
            .read_whole_stream(&name)
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.event_type, e.data))
            .collect();
        let templates = kujira_intake::mail::MailTemplates::new(self.config.clone());
        facts
            .iter()
            .filter(|(t, _)| t == "MailQueued")
            .map(|(_, data)| {
                let queued: MailQueued = serde_json::from_value(data.clone()).unwrap();
                let content = templates
                    .render(
                        &queued,
                        &MailFacts {
                            stream: &facts,
                            person: &[],
                        },
                    )
                    .unwrap_or_else(|e| panic!("{} does not render: {e}", queued.key));
                (queued.key, content)
            })
            .collect()
    }

    pub async fn streams(&self, category: &str) -> Vec<String> {
        sqlx::query_scalar(
            "SELECT DISTINCT stream_name FROM events WHERE stream_name LIKE $1 ORDER BY 1",
        )
        .bind(format!("{category}-%"))
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
    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, mut req: Request<Body>) -> Resp {
        if !self.cookies.is_empty() {
            req.headers_mut()
                .insert(header::COOKIE, self.cookie_header().parse().unwrap());
        }
        if let Some(ip) = self.ip {
            req.extensions_mut().insert(ConnectInfo(ip));
        }
        let res = self.app.send(req).await;
        for v in res.headers.get_all(header::SET_COOKIE) {
            let v = v.to_str().unwrap();
            let pair = v.split(';').next().unwrap();
            let (k, val) = pair.split_once('=').unwrap();
            self.cookies
                .insert(k.trim().to_owned(), val.trim().to_owned());
        }
        res
    }

    pub async fn get(&mut self, path: &str) -> Resp {
        self.send(Request::get(path).body(Body::empty()).unwrap())
            .await
    }

    pub async fn post(&mut self, path: &str, pairs: &[(&str, &str)]) -> Resp {
        let body = serde_urlencoded::to_string(pairs).unwrap();
        self.post_raw(path, body.into_bytes()).await
    }

    pub async fn post_raw(&mut self, path: &str, body: Vec<u8>) -> Resp {
        let req = Request::post(path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap();
        self.send(req).await
    }
}

/// A complete, valid inquiry as form pairs (without the guards).
pub fn inquiry_pairs() -> Vec<(&'static str, &'static str)> {
    vec![
        ("name", "柏崎 太郎"),
        ("name_kana", "ｶｼﾜｻﾞｷ ﾀﾛｳ"),
        ("email", "taro@example.jp"),
        ("email_confirm", "taro@example.jp"),
        ("phone", "090-1234-5678"),
        ("postal_code", "1000001"),
        ("prefecture", "東京都"),
        ("city", "千代田区"),
        ("age_group", "30s"),
        ("gender", "no_answer"),
        ("segment", "i_turn"),
        ("household", "with_children"),
        ("children_ages", "5歳、小学2年"),
        ("move_timing", "within_1_year"),
        ("topics", "work"),
        ("topics", "childcare_education"),
        ("method", "online"),
        ("preferred_date_1", "2026-11-28T10:00"),
        ("message", "雪の多い冬の暮らしについて知りたいです。"),
        ("source", "instagram"),
        ("consent", "on"),
        ("website", ""),
    ]
}

/// A complete, valid inquiry as the API takes it.
pub fn inquiry_json() -> serde_json::Value {
    serde_json::json!({
        "name": "柏崎 花子",
        "name_kana": "カシワザキ　ハナコ",
        "email": "hanako@example.jp",
        "prefecture": "大阪府",
        "segment": "u_turn",
        "topics": ["housing", "support_programs"],
        "method": "email",
        "preferred_date_1": "2026-12-01T14:00:00+09:00",
        "consent": true,
        "newsletter": true
    })
}

/// The CSRF token and the one-time form token a page's form carries.
#[derive(Debug, Clone)]
pub struct Guards {
    pub csrf: String,
    pub token: String,
}

impl Guards {
    pub fn of(page: &Resp) -> Self {
        Self {
            csrf: page.input_value("csrf_token").expect("a CSRF field"),
            token: page.input_value("form_token").expect("a form token"),
        }
    }

    /// `pairs` preceded by the guards.
    pub fn with<'a>(&'a self, pairs: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut all = vec![
            ("csrf_token", self.csrf.as_str()),
            ("form_token", self.token.as_str()),
        ];
        all.extend_from_slice(pairs);
        all
    }
}
