//! The JSON APIs against their OpenAPI document, through the real app
//! (`kujira::serve::app`) on a real database: the API accepts exactly what the
//! document's schemas accept, the document lists every answer, and both APIs follow
//! one `Idempotency-Key` rule.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use chrono::{DateTime, Utc};
use http_body_util::BodyExt;
use kujira_config::{Config, FixedClock};
use kujira_pgembed::testing::TestDb;
use kujira_store::Store;
use serde_json::{Value, json};
use tower::ServiceExt;
use uuid::Uuid;

/// 2026-11-24 10:00 in Tokyo.
fn t0() -> DateTime<Utc> {
    "2026-11-24T01:00:00Z".parse().unwrap()
}

struct App {
    db: TestDb,
    router: Router,
    tour_id: Uuid,
    _dir: tempfile::TempDir,
}

struct Answer {
    status: StatusCode,
    body: Value,
}

impl App {
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
        let tour_id = open_tour(&config, &store, &clock).await;
        Self {
            router: kujira::serve::app(config, store, Arc::new(clock)),
            db,
            tour_id,
            _dir: dir,
        }
    }

    async fn send(&self, req: Request<Body>) -> Answer {
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    async fn post(&self, uri: &str, body: &Value, key: Option<&str>) -> Answer {
        let mut req = Request::post(uri).header(header::CONTENT_TYPE, "application/json");
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        self.send(req.body(Body::from(body.to_string())).unwrap())
            .await
    }

    async fn document(&self) -> Value {
        self.send(
            Request::get("/api/openapi.json")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .body
    }

    fn sign_ups(&self) -> String {
        format!("/api/v1/tours/{}/signups", self.tour_id)
    }
}

async fn open_tour(config: &Arc<Config>, store: &Store, clock: &FixedClock) -> Uuid {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        cmd: kujira_tours::ToursCommand,
    }
    let state =
        kujira_tours::ToursState::new(config.clone(), store.clone(), Arc::new(clock.clone()));
    let starts = (t0() + chrono::Duration::days(30)).to_rfc3339();
    let ends = (t0() + chrono::Duration::days(30) + chrono::Duration::hours(7)).to_rfc3339();
    let cli = Cli::try_parse_from([
        "tours",
        "add",
        "--title",
        "日帰りツアー",
        "--kind",
        "day_trip",
        "--starts-at",
        &starts,
        "--ends-at",
        &ends,
        "--capacity-parties",
        "1",
        "--meeting-place",
        "JR柏崎駅",
        "--publish",
    ])
    .unwrap();
    let mut out = Vec::new();
    kujira_tours::run_cli(&state, cli.cmd, &mut out)
        .await
        .unwrap();
    Uuid::parse_str(String::from_utf8(out).unwrap().trim()).unwrap()
}

fn inquiry() -> Value {
    json!({
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

fn party(n: usize) -> Value {
    json!({
        "name": format!("柏崎 太郎{n}"),
        "name_kana": "カシワザキ タロウ",
        "email": format!("family{n}@example.jp"),
        "phone": "090-1234-5678",
        "prefecture": "東京都",
        "adults": 2,
        "children": 1,
        "children_ages": "5歳",
        "transport": "train",
        "needs": "卵アレルギー",
        "source": "instagram",
        "consent": true
    })
}

/// The request body schema of `POST <path>` in the served document, compiled.
fn request_schema(doc: &Value, path: &str) -> jsonschema::Validator {
    let reference =
        doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .unwrap_or_else(|| panic!("{path} has a JSON body: {doc:#}"));
    let name = reference.rsplit('/').next().unwrap();
    jsonschema::draft202012::new(&doc["components"]["schemas"][name]).unwrap()
}

fn with(base: &Value, field: &str, value: Value) -> Value {
    let mut b = base.clone();
    if value == json!("<absent>") {
        b.as_object_mut().unwrap().remove(field);
    } else {
        b[field] = value;
    }
    b
}

#[tokio::test]
async fn the_apis_accept_exactly_what_their_schemas_accept() {
    let app = App::new().await;
    let doc = app.document().await;
    let inquiries = request_schema(&doc, "/api/v1/inquiries");
    let sign_ups = request_schema(&doc, "/api/v1/tours/{id}/signups");

    let inquiry_cases = [
        with(&inquiry(), "topics", json!("housing")),
        with(&inquiry(), "topics", json!(["housing", "housing"])),
        with(&inquiry(), "name", json!("")),
        with(&inquiry(), "name", json!("   ")),
        with(&inquiry(), "name", json!("a\u{7}b")),
        with(&inquiry(), "name", json!("x".repeat(51))),
        with(&inquiry(), "consent", json!(false)),
        with(&inquiry(), "consent", json!("true")),
        with(&inquiry(), "consent", json!("<absent>")),
        with(&inquiry(), "name_kana", json!("ｶｼﾜｻﾞｷ ﾊﾅｺ")),
        with(&inquiry(), "name_kana", json!("カシワザキ ハナコ")),
        with(&inquiry(), "email", json!("ｈａｎａｋｏ@example.jp")),
        with(&inquiry(), "email", json!(" hanako@example.jp")),
        with(&inquiry(), "email_confirm", json!("hanako@example.jp")),
        with(&inquiry(), "phone", json!("０２５７-２１-２３３４")),
        with(&inquiry(), "phone", json!("0257-21-2334")),
        with(&inquiry(), "phone", json!(null)),
        with(&inquiry(), "postal_code", json!("〒945-8511")),
        with(&inquiry(), "postal_code", json!("945-8511")),
        with(&inquiry(), "city", json!("")),
        with(&inquiry(), "city", json!("柏崎市")),
        with(&inquiry(), "gender", json!("")),
        with(&inquiry(), "gender", json!(null)),
        with(&inquiry(), "prefecture", json!(" 大阪府")),
        with(&inquiry(), "preferred_date_1", json!("2026-12-01 14:00")),
        with(&inquiry(), "preferred_date_1", json!("2027-02-30T10:00")),
        with(&inquiry(), "preferred_date_1", json!("2027-02-28T10:00")),
        with(&inquiry(), "message", json!("一行目\r\n二行目")),
        with(&inquiry(), "newsletter", json!("yes")),
        with(&inquiry(), "favourite_colour", json!("blue")),
        inquiry(),
    ];
    for body in &inquiry_cases {
        let schema_says = inquiries.is_valid(body);
        let a = app.post("/api/v1/inquiries", body, None).await;
        let accepted = a.status == StatusCode::CREATED;
        assert_eq!(
            accepted,
            schema_says,
            "the API answered {} to a body the schema {}: {body}\n{}",
            a.status,
            if schema_says { "accepts" } else { "refuses" },
            a.body
        );
        if !accepted {
            assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
            assert!(a.body["errors"].is_object(), "{}", a.body);
        }
    }

    let sign_up_cases = [
        with(&party(1), "adults", json!("2")),
        with(&party(2), "adults", json!(2.0)),
        with(&party(3), "adults", json!(0)),
        with(&party(4), "children", json!(11)),
        with(&party(5), "children", json!(null)),
        with(&party(6), "phone", json!("<absent>")),
        with(&party(7), "transport", json!("bus")),
        with(&party(8), "transport", json!(null)),
        with(&party(9), "consent", json!(false)),
        with(&party(10), "name", json!("")),
        with(&party(11), "needs", json!("")),
        with(&party(12), "email_confirm", json!("family12@example.jp")),
        party(13),
    ];
    for body in &sign_up_cases {
        let schema_says = sign_ups.is_valid(body);
        let a = app.post(&app.sign_ups(), body, None).await;
        let accepted = a.status == StatusCode::CREATED;
        assert_eq!(
            accepted,
            schema_says,
            "the API answered {} to a body the schema {}: {body}\n{}",
            a.status,
            if schema_says { "accepts" } else { "refuses" },
            a.body
        );
    }

    // The messages stay those of the form: specific where the domain knows better.
    let a = app
        .post(
            "/api/v1/inquiries",
            &with(&inquiry(), "consent", json!(false)),
            None,
        )
        .await;
    assert_eq!(
        a.body["errors"]["consent"],
        "個人情報の取り扱いへの同意が必要です。"
    );
    let a = app
        .post(
            "/api/v1/inquiries",
            &with(&inquiry(), "topics", json!("housing")),
            None,
        )
        .await;
    assert_eq!(
        a.body["errors"]["topics"],
        "文字列の配列で指定してください。"
    );
    let a = app
        .post(
            "/api/v1/inquiries",
            &with(&inquiry(), "name_kana", json!("ｶｼﾜｻﾞｷ")),
            None,
        )
        .await;
    assert!(
        a.body["errors"]["name_kana"]
            .as_str()
            .unwrap()
            .contains("全角カタカナ")
    );
}

#[tokio::test]
async fn the_document_states_every_rule_and_every_answer() {
    let app = App::new().await;
    let doc = app.document().await;
    let schemas = &doc["components"]["schemas"];
    for (schema, names) in [
        ("InquiryRequest", ["name", "name_kana", "email"]),
        ("SignUpRequest", ["name", "name_kana", "email"]),
    ] {
        let s = &schemas[schema];
        assert_eq!(s["additionalProperties"], false, "{schema}");
        assert_eq!(
            s["properties"]["consent"]["enum"],
            json!([true]),
            "{schema}"
        );
        for name in names {
            assert!(
                s["properties"][name]["minLength"].as_u64() >= Some(1),
                "{schema}.{name}: {}",
                s["properties"][name]
            );
            assert!(
                s["properties"][name]["pattern"].is_string(),
                "{schema}.{name}"
            );
        }
    }
    assert_eq!(
        schemas["InquiryRequest"]["properties"]["topics"]["type"],
        "array"
    );
    assert_eq!(
        schemas["InquiryRequest"]["properties"]["topics"]["uniqueItems"],
        true
    );
    assert!(
        schemas["InquiryRequest"]["properties"]["preferred_date_1"]["description"]
            .as_str()
            .unwrap()
            .contains("422")
    );

    for (path, statuses) in [
        (
            "/api/v1/inquiries",
            &["201", "400", "413", "415", "422", "429"][..],
        ),
        (
            "/api/v1/tours/{id}/signups",
            &["201", "400", "404", "409", "413", "415", "422", "429"][..],
        ),
    ] {
        let op = &doc["paths"][path]["post"];
        let listed: Vec<&str> = op["responses"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(listed, statuses, "{path}");
        assert!(
            op["responses"]["429"]["headers"]["Retry-After"].is_object(),
            "{path}"
        );
        let key = op["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "Idempotency-Key")
            .unwrap_or_else(|| panic!("{path} documents Idempotency-Key"));
        assert_eq!(key["in"], "header");
        assert_eq!(key["schema"]["maxLength"], 200);
        assert_eq!(key["schema"]["minLength"], 1);
        assert!(key["description"].as_str().unwrap().contains("422"));
    }
}

#[tokio::test]
async fn one_idempotency_key_rule_for_both_apis() {
    let app = App::new().await;
    for (uri, body, other) in [
        (
            "/api/v1/inquiries".to_owned(),
            inquiry(),
            with(&inquiry(), "message", json!("別の相談")),
        ),
        (
            app.sign_ups(),
            party(1),
            // Only the needs differ: the same address and party, another request.
            with(&party(1), "needs", json!("特になし")),
        ),
    ] {
        // Over 200 characters, or empty: 400, and nothing recorded.
        for bad in ["k".repeat(201), String::new()] {
            let a = app.post(&uri, &body, Some(&bad)).await;
            assert_eq!(a.status, StatusCode::BAD_REQUEST, "{uri} {bad:?}");
            assert!(a.body["errors"]["Idempotency-Key"].is_string());
        }
        let key = "k".repeat(200);
        let first = app.post(&uri, &body, Some(&key)).await;
        assert_eq!(first.status, StatusCode::CREATED, "{uri}: {}", first.body);
        // The same body, its fields in another order: the first answer again.
        let mut reversed: Vec<(String, Value)> =
            body.as_object().unwrap().clone().into_iter().collect();
        reversed.reverse();
        let reordered = format!(
            "{{{}}}",
            reversed
                .iter()
                .map(|(k, v)| format!("{}:{v}", Value::from(k.as_str())))
                .collect::<Vec<_>>()
                .join(",")
        );
        let req = Request::post(uri.as_str())
            .header(header::CONTENT_TYPE, "application/json")
            .header("Idempotency-Key", key.as_str())
            .body(Body::from(reordered))
            .unwrap();
        let again = app.send(req).await;
        assert_eq!(again.status, StatusCode::CREATED, "{uri}");
        assert_eq!(again.body, first.body, "{uri}");
        // Another body under the same key: 422, whichever field differs.
        let refused = app.post(&uri, &other, Some(&key)).await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{uri}");
        assert!(
            refused.body["errors"]["Idempotency-Key"]
                .as_str()
                .unwrap()
                .contains("別の内容"),
            "{uri}: {}",
            refused.body
        );
    }

    // The tour took one party; the sign-up's fingerprint is kept with its events.
    let rows: Vec<(String, Value)> = sqlx::query_as(
        "SELECT event_type, metadata FROM events WHERE stream_name LIKE 'tour-%' \
         AND event_type LIKE 'TourSignUp%' ORDER BY position",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    let types: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(types, ["TourSignUpReceived", "TourSignUpConfirmed"]);
    assert!(
        rows[0].1["request_fingerprint"].is_string(),
        "{}",
        rows[0].1
    );

    // A replay answers what the first answer said, even once the tour is full.
    let waiting = app.post(&app.sign_ups(), &party(2), None).await;
    assert_eq!(waiting.body["status"], "waitlisted");
    let replay = app
        .post(&app.sign_ups(), &party(1), Some(&"k".repeat(200)))
        .await;
    assert_eq!(replay.status, StatusCode::CREATED);
    assert_eq!(replay.body["status"], "confirmed");
}

#[tokio::test]
async fn addresses_nobody_answers_get_a_japanese_page_or_json_never_a_blank_answer() {
    let app = App::new().await;
    let raw = |method: &str, uri: &str| {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .body(Body::empty())
            .unwrap();
        let router = app.router.clone();
        async move {
            let res = router.oneshot(req).await.unwrap();
            let status = res.status();
            let headers = res.headers().clone();
            let bytes = res.into_body().collect().await.unwrap().to_bytes();
            (status, headers, String::from_utf8(bytes.to_vec()).unwrap())
        }
    };
    let content_type = |h: &axum::http::HeaderMap| {
        h.get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };

    // A page address that does not exist: a Japanese page in the site's frame.
    let (status, headers, body) = raw("GET", "/inquiri").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        content_type(&headers).starts_with("text/html"),
        "{headers:?}"
    );
    assert!(body.contains("lang=\"ja\"") && body.contains("ページが見つかりません"));

    // An API address that does not exist: JSON in the API's error shape.
    let (status, headers, body) = raw("GET", "/api/v1/inquiry").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(content_type(&headers), "application/json");
    let json: Value = serde_json::from_str(&body).unwrap();
    assert!(json["errors"]["request"].as_str().unwrap().contains("API"));

    // A method an API route does not take: JSON, and the methods it takes.
    let (status, headers, body) = raw("DELETE", "/api/v1/inquiries").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(content_type(&headers), "application/json");
    assert!(headers[header::ALLOW].to_str().unwrap().contains("POST"));
    let json: Value = serde_json::from_str(&body).unwrap();
    assert!(
        json["errors"]["request"]
            .as_str()
            .unwrap()
            .contains("DELETE")
    );

    // A method a page does not take: a Japanese page, with `Allow`.
    let (status, headers, body) = raw("PUT", "/inquiry").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(
        content_type(&headers).starts_with("text/html"),
        "{headers:?}"
    );
    assert!(headers[header::ALLOW].to_str().unwrap().contains("GET"));
    assert!(body.contains("lang=\"ja\"") && body.contains("このページは開けません"));
}
