//! Erasure, export and retention across the whole service: a person who inquired and
//! signed up for a tour, their mail written as `.eml` files, then erased. After it,
//! nothing of them can be read anywhere — the event log, a `pg_dump` of the whole
//! database, the data directory — while every statistic stays as it was.

use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use chrono::{DateTime, Duration, Utc};
use http_body_util::BodyExt;
use kujira_config::{Config, FixedClock};
use kujira_pgembed::testing::TestDb;
use kujira_privacy::Target;
use kujira_store::Store;
use serde_json::{Value, json};
use tower::ServiceExt;
use uuid::Uuid;

const NAME: &str = "柏崎 花子";
const EMAIL: &str = "hanako.erase@example.jp";
const PHONE: &str = "090-5555-1234";
const MESSAGE: &str = "雪国の冬の暮らしについて相談したいです";
const NEEDS: &str = "そばアレルギー";
const KANA: &str = "カシワザキ ハナコ";

fn t0() -> DateTime<Utc> {
    "2026-11-24T01:00:00Z".parse().unwrap()
}

struct World {
    db: TestDb,
    dir: tempfile::TempDir,
    config: Arc<Config>,
    clock: FixedClock,
    store: Store,
    app: axum::Router,
}

impl World {
    async fn new() -> Self {
        let db = TestDb::new(&[&kujira::db::migrator().unwrap()]).await;
        kujira_desk::setup(&db.pool).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::for_tests(dir.path());
        config.submissions_per_ip_per_hour = 0;
        let config = Arc::new(config);
        let clock = FixedClock::new(t0());
        let store = Store::open(db.pool.clone(), &config.master_key)
            .await
            .unwrap();
        let app = kujira::serve::app(config.clone(), store.clone(), Arc::new(clock.clone()));
        Self {
            db,
            dir,
            config,
            clock,
            store,
            app,
        }
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let req = Request::post(path)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let res = self.app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// Every projection and the mailer (writing `.eml` files), until all is done.
    async fn settle(&self) {
        kujira::serve::projector(&self.config, &self.store)
            .catch_up()
            .await
            .unwrap();
        let mailer =
            kujira::serve::mailer(&self.config, &self.store, Arc::new(self.clock.clone())).unwrap();
        while mailer.deliver_due().await.unwrap().attempted() > 0 {}
        kujira::serve::projector(&self.config, &self.store)
            .catch_up()
            .await
            .unwrap();
    }

    async fn open_tour(&self) -> Uuid {
        let state = kujira_tours::ToursState::new(
            self.config.clone(),
            self.store.clone(),
            Arc::new(self.clock.clone()),
        );
        let id = Uuid::now_v7();
        let details = kujira_domain::tour::TourDetails {
            title: "冬の柏崎 暮らし体験".into(),
            kind: kujira_domain::tour::TourKind::DayTrip,
            starts_at: t0() + Duration::days(30),
            ends_at: t0() + Duration::days(30) + Duration::hours(6),
            meeting_place: "JR柏崎駅".into(),
            capacity_parties: 5,
            max_people: None,
            fee_yen: 0,
            deadline: None,
            description: String::new(),
            audience: String::new(),
        };
        state
            .tours()
            .execute(
                id,
                kujira_domain::tour::TourCommand::Schedule {
                    tour_id: id,
                    details,
                    publish: true,
                    at: t0(),
                },
                &kujira_tours::Actor::new("cli"),
            )
            .await
            .unwrap();
        self.settle().await;
        id
    }

    /// A person who inquired and signed up for a tour with one address.
    async fn person(&self, email: &str, tour: Uuid) -> (Uuid, String) {
        self.person_named(email, NAME, PHONE, tour).await
    }

    async fn person_named(
        &self,
        email: &str,
        name: &str,
        phone: &str,
        tour: Uuid,
    ) -> (Uuid, String) {
        // The person under test writes texts of their own; anybody else writes
        // others, so that finding a text means finding this person.
        let (kana, message, needs) = if email == EMAIL {
            (KANA, MESSAGE, NEEDS)
        } else {
            (
                "カリワ ジロウ",
                "子育て支援について知りたいです",
                "車いすで参加します",
            )
        };
        let (status, created) = self
            .post(
                "/api/v1/inquiries",
                json!({
                    "name": name, "name_kana": kana, "email": email,
                    "phone": phone, "prefecture": "新潟県", "segment": "u_turn",
                    "topics": ["housing"], "method": "email", "message": message,
                    "consent": true
                }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let (status, body) = self
            .post(
                &format!("/api/v1/tours/{tour}/signups"),
                json!({
                    "name": name, "name_kana": kana, "email": email,
                    "phone": phone, "prefecture": "新潟県", "adults": 2, "children": 1,
                    "needs": needs, "consent": true
                }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        (
            Uuid::parse_str(created["id"].as_str().unwrap()).unwrap(),
            created["reference"].as_str().unwrap().to_owned(),
        )
    }

    /// Every event's data without its personal part, and every mail's outcome: what
    /// statistics are made of.
    async fn statistics(&self) -> Vec<String> {
        let mut rows: Vec<String> = sqlx::query_scalar(
            "SELECT concat_ws('|', position, stream_name, event_type, (data - 'personal')::text) \
             FROM events WHERE event_type <> 'PersonErased' ORDER BY position",
        )
        .fetch_all(&self.db.pool)
        .await
        .unwrap();
        rows.extend(
            sqlx::query_scalar::<_, String>(
                "SELECT concat_ws('|', key, template, sent_at, failed_at) FROM mail_deliveries \
                 WHERE status <> 'pending' ORDER BY key",
            )
            .fetch_all(&self.db.pool)
            .await
            .unwrap(),
        );
        rows.extend(
            sqlx::query_scalar::<_, String>(
                "SELECT to_jsonb(c)::text FROM tour_catalogue c ORDER BY tour_id",
            )
            .fetch_all(&self.db.pool)
            .await
            .unwrap(),
        );
        rows
    }

    /// A plain-text dump of the whole database, as a backup would take it.
    fn pg_dump(&self) -> String {
        let o = &self.db.options;
        let bindir = kujira_pgembed::find_bindir().expect("the PostgreSQL binaries");
        let mut cmd = std::process::Command::new(bindir.join("pg_dump"));
        cmd.arg("--no-owner")
            .arg("-d")
            .arg(&self.db.name)
            .arg("-U")
            .arg(o.get_username())
            .arg("-p")
            .arg(o.get_port().to_string());
        if let Some(socket) = o.get_socket() {
            cmd.arg("-h").arg(socket);
        } else {
            cmd.arg("-h").arg(o.get_host());
        }
        let out = cmd.output().expect("pg_dump runs");
        assert!(
            out.status.success(),
            "pg_dump: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

/// Every file under `dir`, as text.
fn files_under(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                out.push((
                    path.display().to_string(),
                    String::from_utf8_lossy(&bytes).into_owned(),
                ));
            }
        }
    }
    out
}

fn holds_person(text: &str) -> bool {
    [EMAIL, NAME, KANA, PHONE, MESSAGE, NEEDS]
        .iter()
        .any(|p| text.contains(p))
}

#[tokio::test]
async fn after_an_erasure_nothing_of_the_person_can_be_read_and_the_statistics_stay() {
    let w = World::new().await;
    let tour = w.open_tour().await;
    let (case_id, reference) = w.person(EMAIL, tour).await;
    // Somebody else, who must stay untouched.
    let other = w
        .person_named("jiro.stays@example.jp", "刈羽 次郎", "080-1111-2222", tour)
        .await;
    w.settle().await;
    let outbox = w.config.outbox_dir();
    assert!(
        files_under(&outbox).iter().any(|(_, t)| t.contains(EMAIL)),
        "the person's mail was written to the outbox"
    );

    // The export holds everything that was submitted, decrypted.
    let export = kujira_privacy::export::export(&w.store, &Target::Case(case_id), t0())
        .await
        .unwrap();
    let text = export.to_string();
    for submitted in [NAME, EMAIL, PHONE, MESSAGE, NEEDS, KANA, &reference] {
        assert!(
            text.contains(submitted),
            "{submitted} missing from the export"
        );
    }
    let person = &export["persons"][0];
    assert_eq!(person["cases"].as_array().unwrap().len(), 1);
    assert_eq!(person["tour_sign_ups"].as_array().unwrap().len(), 1);
    assert!(!person["consents"].as_array().unwrap().is_empty());
    let mails = person["mails"].as_array().unwrap();
    assert!(mails.len() >= 2, "{mails:?}");
    assert!(
        mails
            .iter()
            .all(|m| m["subject"].is_string() && m["sent_at"].is_string())
    );

    let before = w.statistics().await;
    w.clock.advance(Duration::hours(1));
    let erased = kujira_privacy::erasure::erase(
        &w.store,
        &Target::Case(case_id),
        "staff:admin",
        None,
        w.clock_now(),
    )
    .await
    .unwrap();
    assert_eq!(erased.len(), 1);
    w.settle().await;

    // The record, without personal data.
    let records = kujira_privacy::erasure::records(w.store.pool())
        .await
        .unwrap();
    let r = &records[0];
    assert_eq!(r.cases, vec![reference.clone()]);
    assert_eq!((r.tour_sign_ups, r.key_destroyed), (1, true));
    assert!(r.mail_files_deleted >= 4, "{r:?}");
    assert_eq!(r.actor, "staff:admin");

    // Nowhere: the raw log, a dump of the whole database, the data directory.
    let raw: Vec<String> = sqlx::query_scalar("SELECT data::text FROM events")
        .fetch_all(&w.db.pool)
        .await
        .unwrap();
    assert!(raw.iter().all(|d| !holds_person(d)));
    let dump = w.pg_dump();
    let leaks: Vec<&str> = dump.lines().filter(|l| holds_person(l)).collect();
    let tables: Vec<&str> = dump
        .lines()
        .filter(|l| l.starts_with("COPY "))
        .filter(|l| {
            let start = dump.find(l).unwrap();
            let end = dump[start..].find("\\.").map_or(dump.len(), |e| start + e);
            holds_person(&dump[start..end])
        })
        .collect();
    assert!(
        leaks.is_empty(),
        "the dump holds the person in {tables:?}: {leaks:?}"
    );
    for (path, text) in files_under(w.dir.path()) {
        assert!(!holds_person(&text), "{path} holds the person");
    }
    // The other person's mail is still there.
    assert!(
        files_under(&outbox)
            .iter()
            .any(|(_, t)| t.contains("jiro.stays@example.jp"))
    );

    // Read through the store, the personal parts are gone; the statistics are not.
    let case = w
        .store
        .read_whole_stream(&kujira_eventlog::StreamName::new("consultation", case_id))
        .await
        .unwrap();
    assert!(case[0].data["personal"].is_null());
    assert_eq!(case[0].data["prefecture"], "新潟県");
    assert_eq!(
        w.statistics().await,
        before,
        "statistics change with an erasure"
    );

    // Nobody is found by the address any more; exporting gets "not found".
    assert!(
        w.store
            .vault()
            .find_person(&kujira_domain::values::Email::parse(EMAIL).unwrap())
            .await
            .unwrap()
            .is_none()
    );
    let by_case = kujira_privacy::export::export(&w.store, &Target::Case(case_id), t0())
        .await
        .unwrap();
    assert_eq!(by_case["persons"][0]["erased"], true);
    assert!(!holds_person(&by_case.to_string()));
    // The other person's export is whole.
    let theirs = kujira_privacy::export::export(&w.store, &Target::Case(other.0), t0())
        .await
        .unwrap();
    assert!(theirs.to_string().contains("jiro.stays@example.jp"));

    // Rebuilding the privacy index from the log gives the same state.
    let projector = kujira::serve::projector(&w.config, &w.store);
    let index = kujira_privacy::PersonIndexProjection;
    let live = kujira_projector::testing::projection_contents(&w.db.pool, &index)
        .await
        .unwrap();
    projector.rebuild("privacy.persons").await.unwrap();
    let rebuilt = kujira_projector::testing::projection_contents(&w.db.pool, &index)
        .await
        .unwrap();
    assert_eq!(live, rebuilt);

    // Erasing again records nothing new.
    kujira_privacy::erasure::erase(
        &w.store,
        &Target::Case(case_id),
        "staff:admin",
        None,
        w.clock_now(),
    )
    .await
    .unwrap();
    w.settle().await;
    assert_eq!(
        kujira_privacy::erasure::records(w.store.pool())
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn retention_erases_persons_inactive_for_five_years_and_names_the_rule() {
    let w = World::new().await;
    let tour = w.open_tour().await;
    let (old_case, _) = w.person(EMAIL, tour).await;
    // The log stamps events with the database's clock: make this person's facts six
    // years old, as if they had been written then, before anything reads them.
    sqlx::query(
        "UPDATE events SET recorded_at = recorded_at - interval '6 years' \
         WHERE stream_name = $1 OR (stream_name = $2 AND event_type <> 'TourScheduled' \
                                    AND event_type <> 'TourPublished')",
    )
    .bind(format!("consultation-{old_case}"))
    .bind(format!("tour-{tour}"))
    .execute(&w.db.pool)
    .await
    .unwrap();
    let (status, recent) = w
        .post(
            "/api/v1/inquiries",
            json!({
                "name": "新しい 人", "name_kana": "アタラシイ ヒト", "email": "new@example.jp",
                "prefecture": "東京都", "segment": "i_turn", "topics": ["work"],
                "method": "email", "consent": true
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{recent}");
    w.settle().await;

    let erased = kujira_privacy::retention::run(&w.store, w.config.retention, Utc::now())
        .await
        .unwrap();
    w.settle().await;
    assert_eq!(erased.len(), 1);
    let records = kujira_privacy::erasure::records(w.store.pool())
        .await
        .unwrap();
    assert_eq!(records[0].rule.as_deref(), Some("retention:5y"));
    assert_eq!(records[0].actor, "system:retention");
    let old = kujira_privacy::export::export(&w.store, &Target::Case(old_case), t0())
        .await
        .unwrap();
    assert_eq!(old["persons"][0]["erased"], true);
    // Running it again erases nobody else.
    assert!(
        kujira_privacy::retention::run(&w.store, w.config.retention, Utc::now())
            .await
            .unwrap()
            .is_empty()
    );
    let stats = kujira_privacy::stats::stats(w.store.pool(), w.config.timezone)
        .await
        .unwrap();
    assert_eq!((stats.held, stats.erased), (1, 1));
}

impl World {
    fn clock_now(&self) -> DateTime<Utc> {
        use kujira_config::Clock;
        self.clock.now()
    }
}
