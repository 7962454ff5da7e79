//! `POST /api/v1/inquiries`, black-box through `kujira_intake::router` on a real
//! database: the 201 answer, field errors, JSON of the wrong shape, idempotency,
//! limits, and the OpenAPI document.

mod intake_support;

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use intake_support::{App, inquiry_json};
use kujira_store::Store;

#[tokio::test]
async fn a_valid_inquiry_gets_201_with_the_case_id_and_its_reference() {
    let app = App::new().await;
    let r = app.post_json(&inquiry_json().to_string(), None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let body = r.json();
    let id = body["id"].as_str().unwrap();
    let reference = body["reference"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok());
    assert!(reference.starts_with("2026-"));

    let events = app.events().await;
    let case: Vec<_> = events
        .iter()
        .filter(|e| e.0 == format!("consultation-{id}"))
        .collect();
    assert_eq!(
        case.iter().map(|e| e.1.as_str()).collect::<Vec<_>>(),
        ["InquirySubmitted", "MailQueued", "MailQueued"]
    );
    let d = &case[0].2;
    assert_eq!(d["reference"], reference);
    assert_eq!(d["channel"], "api");
    assert_eq!(d["personal"]["name_kana"], "カシワザキ ハナコ");
    assert_eq!(d["preferred_dates"][0], "2026-12-01T05:00:00Z");
    assert_eq!(d["newsletter"], true);
    let mails = app.rendered_mails(&case[0].0).await;
    assert!(mails[0].1.text.contains(&format!("/desk/cases/{id}")));
    assert_eq!(mails[1].1.to, ["hanako@example.jp"]);

    let second = app.post_json(&inquiry_json().to_string(), None).await;
    assert_eq!(second.status, StatusCode::CREATED);
    assert_ne!(second.json()["id"], body["id"]);
    assert_ne!(second.json()["reference"], body["reference"]);
}

#[tokio::test]
async fn the_log_holds_no_personal_data_and_one_address_is_one_person() {
    let app = App::new().await;
    let mut j = inquiry_json();
    j["phone"] = "090-8765-4321".into();
    j["postal_code"] = "945-0051".into();
    j["city"] = "柏崎市東本町".into();
    j["message"] = "雪国の冬の暮らしについて相談したいです".into();
    let first = app.post_json(&j.to_string(), None).await.json();
    // The same person again, the address typed in capitals.
    j["email"] = "HANAKO@example.jp".into();
    let second = app.post_json(&j.to_string(), None).await.json();
    let mut other = inquiry_json();
    other["email"] = "jiro@example.jp".into();
    let third = app.post_json(&other.to_string(), None).await.json();

    let raw = app.raw_events().await;
    let everything: String = raw.iter().map(|e| e.2.to_string()).collect();
    for personal in [
        "柏崎 花子",
        "カシワザキ",
        "hanako@example.jp",
        "HANAKO",
        "090-8765-4321",
        "945-0051",
        "東本町",
        "雪国の冬",
        "jiro@example.jp",
    ] {
        assert!(
            !everything.contains(personal),
            "{personal} stands in the event log in plaintext"
        );
    }
    // Statistics stay readable without any key.
    let opened = |id: &serde_json::Value| {
        raw.iter()
            .find(|e| {
                e.0 == format!("consultation-{}", id.as_str().unwrap()) && e.1 == "InquirySubmitted"
            })
            .map(|e| e.2.clone())
            .unwrap()
    };
    let (a, b, c) = (
        opened(&first["id"]),
        opened(&second["id"]),
        opened(&third["id"]),
    );
    assert_eq!(a["prefecture"], "大阪府");
    assert_eq!(a["topics"][0], "housing");
    assert_eq!(a["personal"]["sealed"], 1);
    assert_eq!(a["person_id"], b["person_id"], "one address, one person");
    assert_ne!(a["person_id"], c["person_id"]);
    // Every mail names its person, and holds nothing else about them.
    for e in raw.iter().filter(|e| e.1 == "MailQueued") {
        assert!(e.2["person_id"].is_string(), "{}", e.2);
        assert!(e.2.get("personal").is_none(), "{}", e.2);
    }
}

/// A submission's person is chosen without asking the database and checked by the
/// append itself. When the choice no longer holds (another process erased the
/// person, or created one for the address first), the inquiry is neither lost nor
/// sealed with a destroyed key: it goes to the right person.
#[tokio::test]
async fn an_inquiry_finds_its_person_even_when_another_process_changed_it_meanwhile() {
    let app = App::new().await;
    let elsewhere = Store::open(app.db.pool.clone(), &app.config.master_key)
        .await
        .unwrap();
    let person_of = |case: serde_json::Value| {
        let app = &app;
        async move {
            let stream = kujira_eventlog::StreamName::new(
                "consultation",
                uuid::Uuid::parse_str(case["id"].as_str().unwrap()).unwrap(),
            );
            let read = app.store.read_stream(&stream, 0, 1).await.unwrap();
            assert_eq!(read[0].data["personal"]["name"], "柏崎 花子", "readable");
            uuid::Uuid::parse_str(read[0].data["person_id"].as_str().unwrap()).unwrap()
        }
    };
    let body = inquiry_json().to_string();
    let first = app.post_json(&body, None).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let p1 = person_of(first.json()).await;

    // Erased by another process, before this one heard of it.
    elsewhere.vault().destroy(p1).await.unwrap();
    let second = app.post_json(&body, None).await;
    assert_eq!(second.status, StatusCode::CREATED, "{}", second.body);
    let p2 = person_of(second.json()).await;
    assert_ne!(p2, p1, "a new person, not the erased one");

    // A new address that another process gave a person first.
    let mut j = inquiry_json();
    j["email"] = "jiro@example.jp".into();
    let theirs = elsewhere
        .vault()
        .person_for_email(&kujira_domain::values::Email::parse("jiro@example.jp").unwrap())
        .await
        .unwrap();
    let third = app.post_json(&j.to_string(), None).await;
    assert_eq!(third.status, StatusCode::CREATED, "{}", third.body);
    assert_eq!(person_of(third.json()).await, theirs.person_id);
    let keys: i64 = sqlx::query_scalar("SELECT count(*) FROM person_keys")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(keys, 2, "no key left behind by the choice that lost");
}

#[tokio::test]
async fn references_run_on_without_gaps_across_a_restart_and_beside_the_desk() {
    // Staff read the 連番 as a count: a restarted process, or the desk's own intake
    // beside the public one, must not skip the numbers another one fetched ahead.
    let mut app = App::new().await;
    let reference = |r: &intake_support::Resp| {
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.json()["reference"].as_str().unwrap().to_owned()
    };
    let first = reference(&app.post_json(&inquiry_json().to_string(), None).await);
    let before = std::mem::replace(
        &mut app.router,
        kujira_intake::router(kujira_intake::IntakeState::new(
            app.config.clone(),
            app.store.clone(),
            std::sync::Arc::new(app.clock.clone()),
        )),
    );
    let second = reference(&app.post_json(&inquiry_json().to_string(), None).await);
    app.router = before;
    let third = reference(&app.post_json(&inquiry_json().to_string(), None).await);
    assert_eq!(
        [first, second, third],
        ["2026-0001", "2026-0002", "2026-0003"]
    );
}

#[tokio::test]
async fn references_count_afresh_each_year_after_the_ones_already_given() {
    let app = App::new().await;
    let mut j = inquiry_json();
    for k in ["preferred_date_1", "preferred_date_2", "preferred_date_3"] {
        j.as_object_mut().unwrap().remove(k);
    }
    let body = j.to_string();
    let submit = || async {
        let r = app.post_json(&body, None).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.json()["reference"].as_str().unwrap().to_owned()
    };
    // 23:59 on New Year's Eve in Tokyo.
    app.clock.set("2026-12-31T14:59:00Z".parse().unwrap());
    assert_eq!(submit().await, "2026-0001");
    // A database whose sequence of the year is gone (cases numbered before yearly
    // counting, or a restore without it) goes on after the year's highest 連番.
    sqlx::query("DROP SEQUENCE consultation_reference_2026")
        .execute(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(submit().await, "2026-0002");
    // Midnight in Tokyo: the new year counts from 1.
    app.clock.set("2026-12-31T15:00:00Z".parse().unwrap());
    assert_eq!(submit().await, "2027-0001");
    assert_eq!(submit().await, "2027-0002");
}

#[tokio::test]
async fn the_first_submissions_of_a_year_at_once_all_get_their_own_number() {
    // The year's sequence is created by the first of them; the others must neither
    // fail on the twin creation nor get a number twice.
    let app = App::new().await;
    let body = inquiry_json().to_string();
    let answers = futures::future::join_all((0..16).map(|_| app.post_json(&body, None))).await;
    let mut refs: Vec<String> = answers
        .iter()
        .map(|r| {
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
            r.json()["reference"].as_str().unwrap().to_owned()
        })
        .collect();
    refs.sort();
    let expected: Vec<String> = (1..=16).map(|n| format!("2026-{n:04}")).collect();
    assert_eq!(refs, expected);
}

/// Submissions that arrive together open their cases together (group commit: one
/// statement, each submission's own person check). From one new address at once,
/// one of them creates the person and every other finds it: one person, every case.
#[tokio::test]
async fn submissions_from_one_new_address_at_once_make_one_person_and_every_case() {
    let app = App::new().await;
    let mut j = inquiry_json();
    j["email"] = "together@example.jp".into();
    let body = j.to_string();
    let answers = futures::future::join_all((0..16).map(|_| app.post_json(&body, None))).await;
    let mut ids = std::collections::HashSet::new();
    for r in &answers {
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        ids.insert(r.json()["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 16, "every submission opens a case of its own");
    let persons: std::collections::HashSet<String> = app
        .raw_events()
        .await
        .iter()
        .filter(|e| e.1 == "InquirySubmitted")
        .map(|e| e.2["person_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(persons.len(), 1, "one address, one person: {persons:?}");
}

#[tokio::test]
async fn bad_fields_get_422_with_one_message_per_field() {
    let app = App::new().await;
    let mut j = inquiry_json();
    j["email"] = "not-an-address".into();
    j["name_kana"] = "はなこ".into();
    j["postal_code"] = "12-345".into();
    j["prefecture"] = "Tokyo".into();
    j["topics"] = serde_json::json!([]);
    j["consent"] = false.into();
    j["preferred_date_2"] = "2026-11-20T10:00".into();
    j["message"] = "あ".repeat(2001).into();
    j["segment"] = serde_json::Value::Null;
    let r = app.post_json(&j.to_string(), None).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let errors = r.json()["errors"].as_object().unwrap().clone();
    let mut fields: Vec<&str> = errors.keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "consent",
            "email",
            "message",
            "name_kana",
            "postal_code",
            "prefecture",
            "preferred_date_2",
            "segment",
            "topics"
        ]
    );
    assert_eq!(errors["segment"], "入力してください。");
    assert_eq!(errors["preferred_date_2"], "過去の日時は指定できません。");
    assert!(errors["email"].as_str().unwrap().contains("メールアドレス"));
    assert!(app.streams("consultation").await.is_empty());
}

#[tokio::test]
async fn json_of_the_wrong_shape_gets_a_clear_4xx() {
    let app = App::new().await;
    let mut j = inquiry_json();
    j["consent"] = "yes".into();
    j["topics"] = 3.into();
    j["name"] = serde_json::json!({"first": "花子"});
    j["favourite_colour"] = "blue".into();
    let r = app.post_json(&j.to_string(), None).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let e = &r.json()["errors"];
    assert_eq!(e["consent"], "true または falseで指定してください。");
    assert_eq!(e["topics"], "文字列の配列で指定してください。");
    assert_eq!(e["name"], "文字列で指定してください。");
    assert_eq!(e["favourite_colour"], "この項目は受け付けていません。");

    let cases: [(&[u8], StatusCode); 4] = [
        (b"{\"name\": ", StatusCode::BAD_REQUEST),
        (b"[1, 2]", StatusCode::UNPROCESSABLE_ENTITY),
        (b"\"text\"", StatusCode::UNPROCESSABLE_ENTITY),
        (b"{\"name\": \"\xff\xfe\"}", StatusCode::BAD_REQUEST),
    ];
    for (body, status) in cases {
        let req = Request::post("/api/v1/inquiries")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_vec()))
            .unwrap();
        let r = app.send(req).await;
        assert_eq!(r.status, status, "{}", String::from_utf8_lossy(body));
        assert!(r.json()["errors"]["body"].is_string(), "{}", r.body);
    }

    let req = Request::post("/api/v1/inquiries")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from("name=x"))
        .unwrap();
    let r = app.send(req).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(r.json()["errors"]["body"].is_string());

    let mut big = inquiry_json();
    big["message"] = "x".repeat(70 * 1024).into();
    let r = app.post_json(&big.to_string(), None).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        r.json()["errors"]["body"]
            .as_str()
            .unwrap()
            .contains("64 KB")
    );

    let r = app
        .post_json(&inquiry_json().to_string(), Some("bad key with spaces"))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.json()["errors"]["Idempotency-Key"].is_string());
    assert!(app.streams("consultation").await.is_empty());
}

#[tokio::test]
async fn the_same_idempotency_key_and_body_give_the_same_answer_and_one_case() {
    let app = App::new().await;
    let body = inquiry_json().to_string();
    let first = app.post_json(&body, Some("retry-0001")).await;
    assert_eq!(first.status, StatusCode::CREATED);

    // Retries, some concurrent, one with the fields in another order.
    let mut reordered: Vec<(String, serde_json::Value)> = inquiry_json()
        .as_object()
        .unwrap()
        .clone()
        .into_iter()
        .collect();
    reordered.reverse();
    let reordered = format!(
        "{{{}}}",
        reordered
            .iter()
            .map(|(k, v)| format!("{}:{v}", serde_json::Value::from(k.as_str())))
            .collect::<Vec<_>>()
            .join(",")
    );
    let retries = futures::future::join_all((0..8).map(|i| {
        let b = if i == 0 {
            reordered.clone()
        } else {
            body.clone()
        };
        let app = &app;
        async move { app.post_json(&b, Some("retry-0001")).await }
    }))
    .await;
    for r in &retries {
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        assert_eq!(r.json(), first.json());
    }
    assert_eq!(app.streams("consultation").await.len(), 1);

    // The same key with another body is refused, and changes nothing.
    let mut other = inquiry_json();
    other["message"] = "別の内容".into();
    let r = app.post_json(&other.to_string(), Some("retry-0001")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.json()["errors"]["Idempotency-Key"]
            .as_str()
            .unwrap()
            .contains("別の内容")
    );
    assert_eq!(app.streams("consultation").await.len(), 1);

    // Concurrent first use of a fresh key with two different bodies: one wins, the other is refused.
    let other = other.to_string();
    let (a, b) = tokio::join!(
        app.post_json(&body, Some("race-1")),
        app.post_json(&other, Some("race-1"))
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::CREATED, StatusCode::UNPROCESSABLE_ENTITY]
    );
    assert_eq!(app.streams("consultation").await.len(), 2);

    // Another key is another case.
    let r = app.post_json(&body, Some("retry-0002")).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_ne!(r.json()["id"], first.json()["id"]);
}

#[tokio::test]
async fn the_api_honours_the_per_ip_limit_and_zero_turns_it_off() {
    let app = App::with(|c| c.submissions_per_ip_per_hour = 1).await;
    let send = |ip: &str| {
        let ip: SocketAddr = ip.parse().unwrap();
        let mut req = Request::post("/api/v1/inquiries")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(inquiry_json().to_string()))
            .unwrap();
        req.extensions_mut().insert(ConnectInfo(ip));
        app.send(req)
    };
    assert_eq!(send("203.0.113.1:1").await.status, StatusCode::CREATED);
    let r = send("203.0.113.1:2").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.json()["errors"]["request"].is_string());
    assert!(r.headers.contains_key(header::RETRY_AFTER));
    assert_eq!(send("203.0.113.2:1").await.status, StatusCode::CREATED);

    let open = App::with(|c| c.submissions_per_ip_per_hour = 0).await;
    for _ in 0..5 {
        assert_eq!(
            open.post_json(&inquiry_json().to_string(), None)
                .await
                .status,
            StatusCode::CREATED
        );
    }
}

#[tokio::test]
async fn the_lead_time_follows_the_clock_and_the_city_time_zone() {
    let app = App::new().await;
    let mut j = inquiry_json();
    // 2026-11-24 10:00 JST now; three days ahead means 11-27 at the earliest.
    j["preferred_date_1"] = "2026-11-26T23:59".into();
    let r = app.post_json(&j.to_string(), None).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        r.json()["errors"]["preferred_date_1"],
        "本日から3日以降の日時を指定してください。"
    );
    j["preferred_date_1"] = "2026-11-27T09:00".into();
    let r = app.post_json(&j.to_string(), None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    app.clock.advance(chrono::Duration::days(1));
    let r = app.post_json(&j.to_string(), None).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[test]
fn the_openapi_document_describes_the_inquiry_endpoint_from_the_code() {
    let doc = serde_json::to_value(kujira_intake::openapi()).unwrap();
    let op = &doc["paths"]["/api/v1/inquiries"]["post"];
    assert!(op.is_object(), "{doc:#}");
    for status in ["201", "400", "413", "415", "422", "429"] {
        assert!(op["responses"][status].is_object(), "{status}");
    }
    assert_eq!(op["parameters"][0]["name"], "Idempotency-Key");
    let schema = &doc["components"]["schemas"]["InquiryRequest"];
    let topics = schema["properties"]["topics"]["items"]["enum"]
        .as_array()
        .unwrap();
    assert_eq!(topics.len(), 8);
    assert!(topics.contains(&"snow_climate".into()));
    assert_eq!(
        schema["properties"]["prefecture"]["enum"]
            .as_array()
            .unwrap()
            .len(),
        47
    );
    let required = schema["required"].as_array().unwrap();
    assert!(required.contains(&"consent".into()) && required.contains(&"topics".into()));
    assert!(doc["components"]["schemas"]["InquiryCreated"]["properties"]["reference"].is_object());
}
