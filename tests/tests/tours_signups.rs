//! Tours end to end, through the router (`oneshot`) on a real PostgreSQL from the
//! harness: the CLI schedules, the public pages and the JSON API sign up, the
//! personal link cancels, and every answer is checked against the tour's stream.
//! Time is a `FixedClock`; nothing sleeps.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use chrono::{DateTime, Duration, Utc};
use clap::Parser;
use http_body_util::BodyExt;
use kujira_config::{Config, FixedClock};
use kujira_domain::decider::Decider;
use kujira_domain::tour::{SignUpStatus, Standing, Tour, TourEvent, TourState, TourStatus};
use kujira_eventlog::StreamName;
use kujira_pgembed::testing::TestDb;
use kujira_projector::Projector;
use kujira_store::Store;
use kujira_tours::{TourCatalogueProjection, ToursCommand, ToursState, router, run_cli, token};
use serde_json::{Value, json};
use tower::ServiceExt;
use uuid::Uuid;

fn t0() -> DateTime<Utc> {
    "2026-12-01T00:00:00Z".parse().unwrap()
}

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: ToursCommand,
}

/// One test's world: a database, a clock, and the tours service on top.
struct World {
    _db: TestDb,
    _dir: tempfile::TempDir,
    config: Arc<Config>,
    clock: FixedClock,
    store: Store,
    state: ToursState,
}

impl World {
    async fn new() -> Self {
        let db = TestDb::new(&[
            &kujira_eventlog::MIGRATOR,
            &kujira_store::MIGRATOR,
            &kujira_tours::MIGRATOR,
        ])
        .await;
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::for_tests(dir.path());
        // The tests send far more than a person would; the limit has its own tests.
        config.submissions_per_ip_per_hour = 0;
        let config = Arc::new(config);
        let clock = FixedClock::new(t0());
        let store = Store::open(db.pool.clone(), &config.master_key)
            .await
            .unwrap();
        let state = ToursState::new(config.clone(), store.clone(), Arc::new(clock.clone()));
        Self {
            _db: db,
            _dir: dir,
            config,
            clock,
            store,
            state,
        }
    }

    /// Another server process on the same database: its own cache and locks.
    fn another_process(&self) -> ToursState {
        ToursState::new(
            self.config.clone(),
            self.store.clone(),
            Arc::new(self.clock.clone()),
        )
    }

    async fn cli(&self, args: &[&str]) -> anyhow::Result<String> {
        let cli = Cli::try_parse_from(std::iter::once("tours").chain(args.iter().copied()))?;
        let mut out = Vec::new();
        run_cli(&self.state, cli.cmd, &mut out).await?;
        Ok(String::from_utf8(out)?)
    }

    /// Schedules and publishes a tour 30 days ahead, closing 10 days before.
    async fn tour(&self, capacity: u32, max_people: Option<u32>) -> Uuid {
        let starts = (t0() + Duration::days(30)).to_rfc3339();
        let ends = (t0() + Duration::days(30) + Duration::hours(7)).to_rfc3339();
        let deadline = (t0() + Duration::days(20)).to_rfc3339();
        let capacity = capacity.to_string();
        let max = max_people.map(|m| m.to_string());
        let mut args = vec![
            "add",
            "--title",
            "親子で体験！柏崎の保育園・学校めぐり",
            "--kind",
            "day_trip",
            "--starts-at",
            &starts,
            "--ends-at",
            &ends,
            "--capacity-parties",
            &capacity,
            "--deadline",
            &deadline,
            "--meeting-place",
            "JR柏崎駅 改札前",
            "--description",
            "保育園、小学校、住宅、先輩移住者との交流。",
            "--publish",
        ];
        if let Some(m) = &max {
            args.extend(["--max-people", m.as_str()]);
        }
        let out = self.cli(&args).await.unwrap();
        // `add` prints the id and nothing else.
        assert_eq!(out.lines().count(), 1, "{out:?}");
        Uuid::parse_str(out.trim()).unwrap()
    }

    async fn events(&self, tour_id: Uuid) -> Vec<TourEvent> {
        self.store
            .load::<TourEvent>(&StreamName::new("tour", tour_id))
            .await
            .unwrap()
            .0
    }

    async fn rebuilt(&self, tour_id: Uuid) -> TourState {
        Tour::replay(&self.events(tour_id).await)
    }

    /// Runs the catalogue projection until it has passed the tour's last event.
    /// Readers are gap-safe: a transaction running anywhere in the cluster (another
    /// test's) holds them back for a moment, so one `catch_up` may stop short.
    async fn project(&self, tour_id: Uuid) {
        let projector =
            Projector::new(self.store.events().clone()).with(TourCatalogueProjection::new());
        let stream = StreamName::new("tour", tour_id);
        // The projection reads only tour facts, so its checkpoint stops at the last one.
        let last = self
            .store
            .read_stream(&stream, 0, 10_000)
            .await
            .unwrap()
            .iter()
            .rfind(|e| TourEvent::TYPES.contains(&e.event_type.as_str()))
            .unwrap()
            .checkpoint();
        let give_up = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            projector.catch_up().await.unwrap();
            let row: Option<(i64, i64)> = sqlx::query_as(
                "SELECT transaction_id, position FROM reader_checkpoints WHERE reader = $1",
            )
            .bind(TourCatalogueProjection::NAME)
            .fetch_optional(self.store.pool())
            .await
            .unwrap();
            if row.is_some_and(|(t, p)| (t, p) >= (last.transaction_id, last.position)) {
                return;
            }
            assert!(
                std::time::Instant::now() < give_up,
                "the projection never caught up"
            );
            tokio::task::yield_now().await;
        }
    }

    fn link_token(&self, tour_id: Uuid, sign_up_id: Uuid) -> String {
        token::sign(self.config.secret.expose(), tour_id, sign_up_id)
    }
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    fn location(&self) -> String {
        self.headers[header::LOCATION].to_str().unwrap().to_owned()
    }

    /// The value of the hidden input `name`.
    fn hidden(&self, name: &str) -> String {
        let needle = format!("name=\"{name}\" value=\"");
        let start = self
            .body
            .find(&needle)
            .unwrap_or_else(|| panic!("no {name} in {}", self.body))
            + needle.len();
        let end = start + self.body[start..].find('"').unwrap();
        self.body[start..end].to_owned()
    }

    fn csrf_cookie(&self) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with("kujira_csrf="))
            .map(|c| c.split(';').next().unwrap().to_owned())
    }
}

async fn send(state: &ToursState, req: Request<Body>) -> Answer {
    let res = router(state.clone()).oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        body: String::from_utf8(bytes.to_vec()).unwrap(),
    }
}

async fn get(state: &ToursState, uri: &str, cookie: Option<&str>) -> Answer {
    let mut req = Request::get(uri);
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    send(state, req.body(Body::empty()).unwrap()).await
}

async fn post_form(state: &ToursState, uri: &str, cookie: &str, fields: &[(&str, &str)]) -> Answer {
    let body = serde_urlencoded::to_string(fields).unwrap();
    let req = Request::post(uri)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, cookie)
        .body(Body::from(body))
        .unwrap();
    send(state, req).await
}

async fn post_json(state: &ToursState, uri: &str, body: Value, key: Option<&str>) -> Answer {
    let mut req = Request::post(uri).header(header::CONTENT_TYPE, "application/json");
    if let Some(k) = key {
        req = req.header("Idempotency-Key", k);
    }
    send(state, req.body(Body::from(body.to_string())).unwrap()).await
}

fn party(n: usize, adults: u8, children: u8) -> Value {
    json!({
        "name": format!("柏崎 太郎{n}"),
        "name_kana": "カシワザキ タロウ",
        "email": format!("family{n}@example.jp"),
        "phone": "090-1234-5678",
        "prefecture": "東京都",
        "adults": adults,
        "children": children,
        "children_ages": "5歳、小学2年",
        "transport": "train",
        "needs": "卵アレルギーがあります",
        "source": "instagram",
        "consent": true
    })
}

async fn sign_up_api(state: &ToursState, tour_id: Uuid, body: Value) -> (Uuid, String) {
    let a = post_json(
        state,
        &format!("/api/v1/tours/{tour_id}/signups"),
        body,
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let j = a.json();
    (
        Uuid::parse_str(j["id"].as_str().unwrap()).unwrap(),
        j["status"].as_str().unwrap().to_owned(),
    )
}

/// A queued mail, rendered as the mailer renders it when it sends it.
struct Rendered {
    template: String,
    personal: kujira_domain::mail::MailContent,
}

/// Every mail the tour queued, rendered from the facts up to it.
fn mails(config: &Arc<Config>, events: &[TourEvent]) -> Vec<Rendered> {
    use kujira_domain::mail::{MailFacts, RenderMail};
    let templates = kujira_tours::TourMailTemplates::new(config.clone());
    let facts: Vec<(String, Value)> = events
        .iter()
        .map(|e| {
            let v = serde_json::to_value(e).unwrap();
            (v["type"].as_str().unwrap().to_owned(), v["data"].clone())
        })
        .collect();
    events
        .iter()
        .enumerate()
        .filter_map(|(i, e)| match e {
            TourEvent::MailQueued(m) => Some(Rendered {
                template: m.template.clone(),
                personal: templates
                    .render(
                        m,
                        &MailFacts {
                            stream: &facts[..=i],
                            person: &[],
                        },
                    )
                    .unwrap_or_else(|e| panic!("{} does not render: {e}", m.key)),
            }),
            _ => None,
        })
        .collect()
}

/// Cancels through the personal page: GET it for the CSRF token, POST the cancel.
async fn cancel_via_link(state: &ToursState, token: &str) -> Answer {
    let page = get(state, &format!("/signups/{token}"), None).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let cookie = page.csrf_cookie().unwrap();
    let csrf = page.hidden("csrf_token");
    post_form(
        state,
        &format!("/signups/{token}/cancel"),
        &cookie,
        &[("csrf_token", &csrf)],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_concurrent_sign_ups_fill_five_places_and_the_rest_wait_in_order() {
    let w = World::new().await;
    let tour_id = w.tour(5, None).await;
    // Four "processes", each with its own cache, race on the same stream.
    let processes: Vec<ToursState> = (0..4).map(|_| w.another_process()).collect();
    let mut tasks = Vec::new();
    for n in 0..100 {
        let state = processes[n % 4].clone();
        tasks.push(tokio::spawn(async move {
            let (id, status) = sign_up_api(&state, tour_id, party(n, 1, 1)).await;
            (n, id, status)
        }));
    }
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    let confirmed: Vec<Uuid> = answers
        .iter()
        .filter(|a| a.2 == "confirmed")
        .map(|a| a.1)
        .collect();
    let waitlisted = answers.iter().filter(|a| a.2 == "waitlisted").count();
    assert_eq!(confirmed.len(), 5);
    assert_eq!(waitlisted, 95);

    let events = w.events(tour_id).await;
    let received = events
        .iter()
        .filter(|e| matches!(e, TourEvent::TourSignUpReceived(_)))
        .count();
    assert_eq!(received, 100, "every sign-up is recorded, none lost");
    // Every sign-up got its own mail and the concierges a notice.
    assert_eq!(mails(&w.config, &events).len(), 200);
    let state = Tour::replay(&events);
    assert_eq!(state.confirmed_parties(), 5);
    let order: Vec<Uuid> = state.waitlist().map(|s| s.id).collect();
    assert_eq!(order.len(), 95);
    let positions: Vec<u32> = events
        .iter()
        .filter_map(|e| match e {
            TourEvent::TourSignUpWaitlisted(x) => Some(x.position),
            _ => None,
        })
        .collect();
    assert_eq!(positions, (1..=95).collect::<Vec<u32>>(), "arrival order");

    // Cancelling two confirmed parties promotes the first two waiting, in order.
    for id in &confirmed[..2] {
        let a = cancel_via_link(&processes[1], &w.link_token(tour_id, *id)).await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    }
    let events = w.events(tour_id).await;
    let promoted: Vec<Uuid> = events
        .iter()
        .filter_map(|e| match e {
            TourEvent::TourSignUpPromoted(p) => Some(p.sign_up_id),
            _ => None,
        })
        .collect();
    assert_eq!(promoted, order[..2].to_vec());
    let promotion_mails: Vec<_> = mails(&w.config, &events)
        .into_iter()
        .filter(|m| m.template == "tour_sign_up_promoted")
        .collect();
    assert_eq!(promotion_mails.len(), 2);
    assert!(
        promotion_mails[0].personal.attachments[0]
            .content
            .contains("BEGIN:VCALENDAR")
    );

    let state = Tour::replay(&events);
    assert_eq!(state.confirmed_parties(), 5);
    assert_eq!(state.waitlist_length(), 93);

    // The catalogue follows the stream.
    w.project(tour_id).await;
    let list = get(&w.state, "/api/v1/tours", None).await;
    assert_eq!(list.status, StatusCode::OK);
    let tours = list.json();
    let t = &tours.as_array().unwrap()[0];
    assert_eq!(t["id"], tour_id.to_string());
    assert_eq!(t["confirmed_parties"], 5);
    assert_eq!(t["places_left"], 0);
    assert_eq!(t["waitlist_length"], 93);
    assert_eq!(t["capacity_parties"], 5);
    assert_eq!(t["status"], "published");
    assert_eq!(t["kind"], "day_trip");
    for key in ["title", "starts_at", "ends_at", "deadline"] {
        assert!(t[key].is_string(), "{key}: {t}");
    }
    let html = get(&w.state, "/tours", None).await;
    assert!(
        html.body.contains("満席（キャンセル待ち受付中）"),
        "{}",
        html.body
    );
}

#[tokio::test]
async fn the_html_flow_signs_up_once_however_often_it_is_submitted() {
    let w = World::new().await;
    let tour_id = w.tour(2, None).await;

    let page = get(&w.state, &format!("/tours/{tour_id}"), None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("※必須") && page.body.contains("※任意"));
    let cookie = page.csrf_cookie().unwrap();
    let csrf = page.hidden("csrf_token");
    let form_token = page.hidden("form_token");
    let mut fields = vec![
        ("csrf_token", csrf.as_str()),
        ("form_token", form_token.as_str()),
        ("name", "柏崎 <b>花子</b>"),
        ("name_kana", "ｶｼﾜｻﾞｷ ﾊﾅｺ"),
        ("email", "hanako@example.jp"),
        ("email_confirm", "hanako@example.jp"),
        ("phone", "0257-21-2334"),
        ("prefecture", "新潟県"),
        ("adults", "2"),
        ("children", "1"),
        ("transport", "car"),
        ("consent", "on"),
        ("website", ""),
    ];

    // Without the CSRF cookie: 403.
    let forged = post_form(&w.state, &format!("/tours/{tour_id}/confirm"), "", &fields).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    // A fault comes back as 422 with every value kept and the field marked.
    fields[9].1 = "11";
    let bad = post_form(
        &w.state,
        &format!("/tours/{tour_id}/confirm"),
        &cookie,
        &fields,
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("aria-invalid=\"true\""));
    assert!(bad.body.contains("href=\"#f-children\""));
    assert!(bad.body.contains("hanako@example.jp"));
    assert!(
        bad.body.contains("柏崎 &lt;b&gt;花子&lt;/b&gt;"),
        "markup is shown as text"
    );
    fields[9].1 = "1";

    let confirm = post_form(
        &w.state,
        &format!("/tours/{tour_id}/confirm"),
        &cookie,
        &fields,
    )
    .await;
    assert_eq!(confirm.status, StatusCode::OK, "{}", confirm.body);
    assert!(confirm.body.contains("送信する") && confirm.body.contains("修正する"));
    assert!(confirm.body.contains("カシワザキ ハナコ"));

    let submit = post_form(
        &w.state,
        &format!("/tours/{tour_id}/submit"),
        &cookie,
        &fields,
    )
    .await;
    assert_eq!(submit.status, StatusCode::SEE_OTHER, "{}", submit.body);
    let complete_url = submit.location();
    // A reload, a back-and-resubmit: the same sign-up, the same page.
    let again = post_form(
        &w.state,
        &format!("/tours/{tour_id}/submit"),
        &cookie,
        &fields,
    )
    .await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);
    assert_eq!(again.location(), complete_url);

    let complete = get(&w.state, &complete_url, None).await;
    assert_eq!(complete.status, StatusCode::OK);
    assert!(complete.body.contains("参加確定"), "{}", complete.body);

    let events = w.events(tour_id).await;
    let received: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            TourEvent::TourSignUpReceived(r) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(
        received.len(),
        1,
        "a double submit never creates a second sign-up"
    );
    let r = received[0];
    assert_eq!((r.adults, r.children), (2, 1));
    // As stored, the party's personal part is sealed: no name, address or phone.
    let raw: Vec<String> =
        sqlx::query_scalar("SELECT data::text FROM events WHERE stream_name = $1")
            .bind(format!("tour-{tour_id}"))
            .fetch_all(w.store.pool())
            .await
            .unwrap();
    let raw = raw.concat();
    for personal in ["hanako@example.jp", "花子", "ハナコ"] {
        assert!(!raw.contains(personal), "{personal} stands in the log");
    }
    assert_eq!(
        r.personal.known().unwrap().name_kana.as_str(),
        "カシワザキ ハナコ"
    );

    // The confirmation mail: Japanese, text and HTML, an .ics, a working personal link.
    let all_mails = mails(&w.config, &events);
    let confirmation = all_mails
        .iter()
        .find(|m| m.template == "tour_sign_up_confirmed")
        .unwrap();
    assert_eq!(confirmation.personal.to, ["hanako@example.jp"]);
    assert!(confirmation.personal.subject.contains("参加が確定しました"));
    assert!(
        confirmation
            .personal
            .html
            .as_ref()
            .unwrap()
            .contains("&lt;b&gt;")
    );
    let ics = &confirmation.personal.attachments[0];
    assert!(ics.filename.ends_with(".ics"));
    assert!(
        ics.content.contains("DTSTART:20261231T000000Z"),
        "{}",
        ics.content
    );
    let link = confirmation
        .personal
        .text
        .lines()
        .find(|l| l.starts_with("https://kujira.example.jp/signups/"))
        .unwrap();
    let personal = get(
        &w.state,
        link.trim_start_matches("https://kujira.example.jp"),
        None,
    )
    .await;
    assert_eq!(personal.status, StatusCode::OK);
    assert!(personal.body.contains("参加確定"));
    assert_eq!(personal.headers[header::REFERRER_POLICY], "no-referrer");
    let notice = all_mails
        .iter()
        .find(|m| m.template == "tour_concierge_notice")
        .unwrap();
    assert_eq!(notice.personal.to, ["concierge@example.jp"]);
    assert!(notice.personal.text.contains("大人2名・子ども1名"));
}

#[tokio::test]
async fn the_deadline_closes_sign_ups_with_a_clear_message() {
    let w = World::new().await;
    let tour_id = w.tour(5, None).await;
    let page = get(&w.state, &format!("/tours/{tour_id}"), None).await;
    let cookie = page.csrf_cookie().unwrap();
    let (csrf, form_token) = (page.hidden("csrf_token"), page.hidden("form_token"));

    // Ten days before the start, sign-ups close.
    w.clock.set(t0() + Duration::days(20));
    let late = post_json(
        &w.state,
        &format!("/api/v1/tours/{tour_id}/signups"),
        party(1, 1, 0),
        None,
    )
    .await;
    // The tour's state, not the body, is at fault: 409, as the HTML flow answers.
    assert_eq!(late.status, StatusCode::CONFLICT);
    assert!(
        late.json()["errors"]["tour"]
            .as_str()
            .unwrap()
            .contains("締切")
    );

    let form = [
        ("csrf_token", csrf.as_str()),
        ("form_token", form_token.as_str()),
        ("name", "柏崎 太郎"),
        ("name_kana", "カシワザキ タロウ"),
        ("email", "taro@example.jp"),
        ("email_confirm", "taro@example.jp"),
        ("phone", "0257-21-2334"),
        ("prefecture", "東京都"),
        ("adults", "1"),
        ("consent", "on"),
    ];
    let submit = post_form(
        &w.state,
        &format!("/tours/{tour_id}/submit"),
        &cookie,
        &form,
    )
    .await;
    assert_eq!(submit.status, StatusCode::CONFLICT);
    assert!(
        submit.body.contains("申込締切を過ぎています"),
        "{}",
        submit.body
    );
    let shown = get(&w.state, &format!("/tours/{tour_id}"), None).await;
    assert!(shown.body.contains("申込締切を過ぎています"));
    assert!(
        !shown.body.contains("name=\"form_token\""),
        "no form after the deadline"
    );

    // After the start, a clear "already started".
    w.clock.set(t0() + Duration::days(31));
    let past = post_json(
        &w.state,
        &format!("/api/v1/tours/{tour_id}/signups"),
        party(2, 1, 0),
        None,
    )
    .await;
    assert_eq!(past.status, StatusCode::CONFLICT);
    assert!(
        past.json()["errors"]["tour"]
            .as_str()
            .unwrap()
            .contains("開始")
    );
    assert!(w.rebuilt(tour_id).await.sign_ups.is_empty());
}

#[tokio::test]
async fn a_cancelled_tour_refuses_sign_ups_and_emails_every_party() {
    let w = World::new().await;
    let tour_id = w.tour(1, None).await;
    let (first, s1) = sign_up_api(&w.state, tour_id, party(1, 2, 0)).await;
    let (_, s2) = sign_up_api(&w.state, tour_id, party(2, 1, 0)).await;
    let (third, _) = sign_up_api(&w.state, tour_id, party(3, 1, 0)).await;
    assert_eq!((s1.as_str(), s2.as_str()), ("confirmed", "waitlisted"));
    // The third leaves the waiting list first: it gets no tour-cancelled mail.
    let left = cancel_via_link(&w.state, &w.link_token(tour_id, third)).await;
    assert_eq!(left.status, StatusCode::SEE_OTHER);

    let out = w
        .cli(&["cancel", &tour_id.to_string(), "--reason", "大雪のため"])
        .await
        .unwrap();
    assert!(out.contains(&tour_id.to_string()));
    assert!(w.cli(&["cancel", &tour_id.to_string()]).await.is_err());

    let events = w.events(tour_id).await;
    let cancelled_mails: Vec<_> = mails(&w.config, &events)
        .into_iter()
        .filter(|m| m.template == "tour_cancelled")
        .collect();
    let mut to: Vec<&str> = cancelled_mails
        .iter()
        .map(|m| m.personal.to[0].as_str())
        .collect();
    to.sort();
    assert_eq!(to, ["family1@example.jp", "family2@example.jp"]);
    assert!(cancelled_mails[0].personal.text.contains("大雪のため"));

    let refused = post_json(
        &w.state,
        &format!("/api/v1/tours/{tour_id}/signups"),
        party(4, 1, 0),
        None,
    )
    .await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert!(
        refused.json()["errors"]["tour"]
            .as_str()
            .unwrap()
            .contains("中止")
    );
    let page = get(&w.state, &format!("/tours/{tour_id}"), None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("中止"));
    let personal = get(
        &w.state,
        &format!("/signups/{}", w.link_token(tour_id, first)),
        None,
    )
    .await;
    assert!(personal.body.contains("ツアー中止"));
    assert!(
        !personal.body.contains("/cancel\""),
        "nothing left to cancel"
    );

    let list = w.cli(&["list"]).await.unwrap();
    assert!(list.contains(&format!("{tour_id}\tcancelled")), "{list}");
    assert_eq!(w.rebuilt(tour_id).await.status, TourStatus::Cancelled);
}

#[tokio::test]
async fn a_tampered_or_unknown_token_gets_a_japanese_404() {
    let w = World::new().await;
    let tour_id = w.tour(2, None).await;
    let (id, _) = sign_up_api(&w.state, tour_id, party(1, 1, 0)).await;
    let good = w.link_token(tour_id, id);
    assert_eq!(
        get(&w.state, &format!("/signups/{good}"), None)
            .await
            .status,
        StatusCode::OK
    );

    let mut chars: Vec<char> = good.chars().collect();
    let last = chars.len() - 1;
    chars[last] = if chars[last] == 'A' { 'B' } else { 'A' };
    let tampered: String = chars.into_iter().collect();
    let unknown = w.link_token(tour_id, Uuid::now_v7());
    for token in [tampered.as_str(), unknown.as_str(), "nonsense", "%00"] {
        let a = get(&w.state, &format!("/signups/{token}"), None).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{token}");
        assert!(a.body.contains("lang=\"ja\"") && a.body.contains("見つかりません"));
    }
    // The cancel form with a genuine CSRF token but a tampered link: 404, nothing cancelled.
    let page = get(&w.state, &format!("/signups/{good}"), None).await;
    let cookie = page.csrf_cookie().unwrap();
    let csrf = page.hidden("csrf_token");
    let a = post_form(
        &w.state,
        &format!("/signups/{tampered}/cancel"),
        &cookie,
        &[("csrf_token", &csrf)],
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    // And a genuine link without the CSRF token: 403.
    let a = post_form(&w.state, &format!("/signups/{good}/cancel"), &cookie, &[]).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let state = w.rebuilt(tour_id).await;
    assert_eq!(state.sign_up(id).unwrap().status, SignUpStatus::Confirmed);
}

#[tokio::test]
async fn the_api_validates_and_honours_idempotency_keys() {
    let w = World::new().await;
    let tour_id = w.tour(1, Some(4)).await;
    let uri = format!("/api/v1/tours/{tour_id}/signups");

    let mut bad = party(1, 0, 11);
    bad["email"] = json!("not-an-email");
    bad["surprise"] = json!(1);
    let a = post_json(&w.state, &uri, bad, None).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    let errors = &a.json()["errors"];
    for field in ["email", "adults", "children", "surprise"] {
        assert!(errors[field].is_string(), "{field}: {errors}");
    }
    // Larger than the tour could ever take.
    let a = post_json(&w.state, &uri, party(1, 3, 2), None).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    let a = post_json(
        &w.state,
        &format!("/api/v1/tours/{}/signups", Uuid::now_v7()),
        party(1, 1, 0),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);

    let first = post_json(&w.state, &uri, party(1, 2, 0), Some("k-1")).await;
    let retry = post_json(&w.state, &uri, party(1, 2, 0), Some("k-1")).await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(retry.status, StatusCode::CREATED);
    assert_eq!(first.json(), retry.json());
    let other = post_json(&w.state, &uri, party(2, 2, 0), Some("k-1")).await;
    assert_eq!(other.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(w.rebuilt(tour_id).await.sign_ups.len(), 1);

    let doc = serde_json::to_value(kujira_tours::openapi()).unwrap();
    assert!(doc["paths"]["/api/v1/tours"]["get"].is_object());
    assert!(doc["paths"]["/api/v1/tours/{id}/signups"]["post"].is_object());
}

#[tokio::test]
async fn every_sign_up_state_is_rebuilt_from_the_tour_events_alone() {
    let w = World::new().await;
    let tour_id = w.tour(2, None).await;
    let mut said = Vec::new();
    for n in 0..4 {
        said.push(sign_up_api(&w.state, tour_id, party(n, 1, 0)).await);
    }
    // 0, 1 confirmed; 2, 3 waiting. 0 cancels → 2 is promoted; 3 leaves the list.
    for n in [0, 3] {
        let a = cancel_via_link(&w.state, &w.link_token(tour_id, said[n].0)).await;
        assert_eq!(a.status, StatusCode::SEE_OTHER);
    }

    // A fresh process with an empty cache sees exactly the same, from the stream.
    let fresh = w.another_process();
    let page = |n: usize| {
        let fresh = fresh.clone();
        let token = w.link_token(tour_id, said[n].0);
        async move { get(&fresh, &format!("/signups/{token}"), None).await.body }
    };
    assert!(page(0).await.contains("キャンセル済み"));
    assert!(page(1).await.contains("参加確定"));
    assert!(page(2).await.contains("キャンセル待ちから繰り上げ"));
    assert!(page(3).await.contains("キャンセル済み"));

    let state = w.rebuilt(tour_id).await;
    let s = |n: usize| state.sign_up(said[n].0).unwrap();
    assert_eq!(
        said.iter().map(|x| x.1.as_str()).collect::<Vec<_>>(),
        ["confirmed", "confirmed", "waitlisted", "waitlisted"]
    );
    assert_eq!(s(0).status, SignUpStatus::Cancelled);
    assert_eq!(s(0).cancelled.map(|c| c.0), Some(Standing::Confirmed));
    assert_eq!(s(1).status, SignUpStatus::Confirmed);
    assert!(s(1).promoted_at.is_none());
    assert_eq!(s(2).status, SignUpStatus::Confirmed);
    assert!(s(2).promoted_at.is_some());
    assert_eq!(s(3).status, SignUpStatus::Cancelled);
    assert_eq!(s(3).cancelled.map(|c| c.0), Some(Standing::Waitlisted));
    assert_eq!(state.confirmed_parties(), 2);
    assert_eq!(state.waitlist_length(), 0);
}

/// The form fields of a valid sign-up, behind the given guards.
fn form_fields<'a>(csrf: &'a str, form_token: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("csrf_token", csrf),
        ("form_token", form_token),
        ("name", "柏崎 次郎"),
        ("name_kana", "カシワザキ ジロウ"),
        ("email", "jiro@example.jp"),
        ("email_confirm", "jiro@example.jp"),
        ("phone", "0257-21-2334"),
        ("prefecture", "長野県"),
        ("adults", "1"),
        ("children", "2"),
        ("children_ages", "3歳、6歳"),
        ("needs", "チャイルドシートが2つ必要です"),
        ("consent", "on"),
    ]
}

#[tokio::test]
async fn edit_keeps_every_value_and_a_filled_honeypot_goes_nowhere() {
    let w = World::new().await;
    let tour_id = w.tour(2, None).await;
    let page = get(&w.state, &format!("/tours/{tour_id}"), None).await;
    let cookie = page.csrf_cookie().unwrap();
    let (csrf, form_token) = (page.hidden("csrf_token"), page.hidden("form_token"));

    // 修正する on the confirm page: the form again, every value in place.
    let mut fields = form_fields(&csrf, &form_token);
    fields.push(("edit", "1"));
    let edit = post_form(
        &w.state,
        &format!("/tours/{tour_id}/confirm"),
        &cookie,
        &fields,
    )
    .await;
    assert_eq!(edit.status, StatusCode::OK);
    assert_eq!(edit.hidden("form_token"), form_token);
    for value in [
        "柏崎 次郎",
        "jiro@example.jp",
        "3歳、6歳",
        "チャイルドシートが2つ必要です",
    ] {
        assert!(edit.body.contains(value), "{value}");
    }
    assert!(edit.body.contains("value=\"長野県\" selected"));

    // A bot fills the hidden `website` field: it sees success, nothing is signed up.
    let mut fields = form_fields(&csrf, &form_token);
    fields.push(("website", "https://spam.example"));
    let spam = post_form(
        &w.state,
        &format!("/tours/{tour_id}/submit"),
        &cookie,
        &fields,
    )
    .await;
    assert_eq!(spam.status, StatusCode::SEE_OTHER);
    let done = get(&w.state, &spam.location(), None).await;
    assert_eq!(done.status, StatusCode::OK);
    assert!(done.body.contains("受け付けました"));
    assert!(w.rebuilt(tour_id).await.sign_ups.is_empty());
    let journey = kujira_web::FormTokens::new(w.config.secret.expose())
        .verify(&format!("tour_signup:{tour_id}"), &form_token)
        .unwrap()
        .id;
    let (steps, _) = w
        .store
        .load::<kujira_domain::funnel::FunnelEvent>(&StreamName::new("funnel", journey))
        .await
        .unwrap();
    let kinds: Vec<&str> = steps.iter().map(|s| s.event_type()).collect();
    assert_eq!(kinds, ["FormViewed", "SpamFlagged"]);
}

#[tokio::test]
async fn a_participant_records_feedback_once_after_the_tour() {
    let w = World::new().await;
    let tour_id = w.tour(2, None).await;
    let (id, _) = sign_up_api(&w.state, tour_id, party(1, 1, 0)).await;
    let token = w.link_token(tour_id, id);
    let url = format!("/signups/{token}/feedback");
    assert_eq!(get(&w.state, &url, None).await.status, StatusCode::CONFLICT);

    w.clock.set(t0() + Duration::days(31));
    let form = get(&w.state, &url, None).await;
    assert_eq!(form.status, StatusCode::OK);
    let cookie = form.csrf_cookie().unwrap();
    let csrf = form.hidden("csrf_token");
    let bad = post_form(
        &w.state,
        &url,
        &cookie,
        &[("csrf_token", &csrf), ("satisfaction", "9")],
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("aria-invalid=\"true\""));
    let comments = "先輩移住者の話で、冬の暮らしが具体的にわかりました。";
    let ok = post_form(
        &w.state,
        &url,
        &cookie,
        &[
            ("csrf_token", &csrf),
            ("satisfaction", "5"),
            ("comments", comments),
        ],
    )
    .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    let again = post_form(
        &w.state,
        &url,
        &cookie,
        &[("csrf_token", &csrf), ("satisfaction", "1")],
    )
    .await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);
    assert!(
        get(&w.state, &url, None)
            .await
            .body
            .contains("ご回答ありがとうございました")
    );

    let feedback: Vec<_> = w
        .events(tour_id)
        .await
        .into_iter()
        .filter_map(|e| match e {
            TourEvent::TourFeedbackRecorded(f) => Some(f),
            _ => None,
        })
        .collect();
    assert_eq!(feedback.len(), 1);
    assert_eq!(feedback[0].satisfaction, 5);
    assert_eq!(
        feedback[0]
            .personal
            .known()
            .unwrap()
            .comments
            .as_ref()
            .unwrap()
            .as_str(),
        comments
    );
}

#[tokio::test]
async fn a_second_sign_up_from_the_same_address_is_refused_with_the_way_to_the_first() {
    let w = World::new().await;
    let tour_id = w.tour(3, None).await;
    let uri = format!("/api/v1/tours/{tour_id}/signups");
    let (first, status) = sign_up_api(&w.state, tour_id, party(1, 2, 0)).await;
    assert_eq!(status, "confirmed");
    // The same address again, as a change of numbers: 409, and nothing recorded.
    let again = post_json(&w.state, &uri, party(1, 3, 1), None).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    let message = again.json()["errors"]["tour"].as_str().unwrap().to_owned();
    assert!(
        message.contains("すでにお申し込みいただいています"),
        "{message}"
    );
    assert!(message.contains("メールのリンク"), "{message}");

    // Through the form, with the address in other capitals: the confirm page is
    // fine, the submit explains.
    let page = get(&w.state, &format!("/tours/{tour_id}"), None).await;
    let cookie = page.csrf_cookie().unwrap();
    let (csrf, form_token) = (page.hidden("csrf_token"), page.hidden("form_token"));
    let fields = [
        ("csrf_token", csrf.as_str()),
        ("form_token", form_token.as_str()),
        ("name", "柏崎 太郎1"),
        ("name_kana", "かしわざき たろう"),
        ("email", "Family1@example.jp"),
        ("email_confirm", "family1@example.jp"),
        ("phone", "090-1234-5678"),
        ("prefecture", "東京都"),
        ("adults", "1"),
        ("children", "0"),
        ("consent", "on"),
        ("website", ""),
    ];
    let confirm = post_form(
        &w.state,
        &format!("/tours/{tour_id}/confirm"),
        &cookie,
        &fields,
    )
    .await;
    assert_eq!(confirm.status, StatusCode::OK, "{}", confirm.body);
    let submit = post_form(
        &w.state,
        &format!("/tours/{tour_id}/submit"),
        &cookie,
        &fields,
    )
    .await;
    assert_eq!(submit.status, StatusCode::CONFLICT, "{}", submit.body);
    assert!(submit.body.contains("すでにお申し込みいただいています"));
    let state = w.rebuilt(tour_id).await;
    assert_eq!(
        state.sign_ups.iter().map(|s| s.id).collect::<Vec<_>>(),
        [first],
        "one party for the person"
    );
}
