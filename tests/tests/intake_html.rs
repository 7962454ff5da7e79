//! The HTML flows of intake (移住相談 and オーダーメイドツアー), black-box through
//! `kujira_intake::router` on a real database: 入力 → 確認 → 完了, CSRF, the one-time
//! token, and every class of bad input.

mod intake_support;

use std::net::SocketAddr;

use axum::http::StatusCode;
use intake_support::{App, Guards, inquiry_pairs};

fn pairs_of(v: &[(String, String)]) -> Vec<(&str, &str)> {
    v.iter()
        .map(|(k, val)| (k.as_str(), val.as_str()))
        .collect()
}

/// Walks the form to the confirm page; returns the confirm page.
async fn to_confirm(
    b: &mut intake_support::Browser<'_>,
    base: &str,
    pairs: &[(&str, &str)],
) -> intake_support::Resp {
    let form = b.get(base).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    let g = Guards::of(&form);
    b.post(&format!("{base}/confirm"), &g.with(pairs)).await
}

#[tokio::test]
async fn the_inquiry_flow_opens_one_case_with_both_mails_and_a_funnel() {
    let app = App::new().await;
    let mut b = app.browser();

    let form = b.get("/inquiry").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("<html lang=\"ja\">"));
    assert!(form.body.contains("※必須") && form.body.contains("※任意"));
    assert!(
        form.body.contains(&app.config.words.privacy_purpose),
        "the purpose is shown"
    );
    assert!(form.body.contains("<label for=\"f-name_kana\">"));
    assert!(b.cookies.contains_key("kujira_csrf"));

    let g = Guards::of(&form);
    let confirm = b.post("/inquiry/confirm", &g.with(&inquiry_pairs())).await;
    assert_eq!(confirm.status, StatusCode::OK, "{}", confirm.body);
    assert!(confirm.body.contains("入力内容の確認"));
    assert!(confirm.body.contains("送信する") && confirm.body.contains("修正する"));
    assert!(confirm.body.contains("仕事、子育て・教育"));
    assert!(
        confirm.body.contains("<dd>カシワザキ タロウ</dd>"),
        "the normalised kana is shown"
    );
    assert!(
        confirm.body.contains("<dd>2026年11月28日（土）10:00</dd>"),
        "dates are written the Japanese way: {}",
        confirm.body
    );

    let hidden = confirm.hidden_inputs();
    let submit = b.post("/inquiry/submit", &pairs_of(&hidden)).await;
    assert_eq!(submit.status, StatusCode::SEE_OTHER, "{}", submit.body);
    assert_eq!(submit.location(), Some("/inquiry/complete"));

    let complete = b.get("/inquiry/complete").await;
    assert_eq!(complete.status, StatusCode::OK);
    assert!(complete.body.contains("受付番号"));
    assert!(complete.body.contains("今後の流れ"));

    let events = app.events().await;
    let case: Vec<_> = events
        .iter()
        .filter(|e| e.0.starts_with("consultation-"))
        .collect();
    assert_eq!(case.len(), 3, "{events:?}");
    assert!(case.iter().all(|e| e.0 == case[0].0), "one stream");
    assert_eq!(case[0].1, "InquirySubmitted");
    let data = &case[0].2;
    let reference = data["reference"].as_str().unwrap();
    assert!(reference.starts_with("2026-"), "{reference}");
    assert!(
        complete.body.contains(reference),
        "the complete page shows {reference}"
    );
    assert_eq!(data["segment"], "i_turn");
    assert_eq!(
        data["topics"],
        serde_json::json!(["work", "childcare_education"])
    );
    assert_eq!(data["personal"]["name_kana"], "カシワザキ タロウ");
    assert_eq!(data["personal"]["postal_code"], "1000001");
    assert_eq!(data["preferred_dates"][0], "2026-11-28T01:00:00Z");
    assert!(data.get("name").is_none() && data.get("email").is_none());

    let case_id = data["case_id"].as_str().unwrap();
    assert_eq!(case[0].0, format!("consultation-{case_id}"));
    assert_eq!(
        (case[1].1.as_str(), case[2].1.as_str()),
        ("MailQueued", "MailQueued")
    );
    // The queued mails carry no personal data: they are rendered from the case.
    for queued in [&case[1].2, &case[2].2] {
        assert!(queued.get("personal").is_none(), "{queued}");
    }
    let mails = app.rendered_mails(&case[0].0).await;
    let (notice, reply) = (&mails[0].1, &mails[1].1);
    assert_eq!(notice.to, ["concierge@example.jp"]);
    let link = format!("https://kujira.example.jp/desk/cases/{case_id}");
    assert!(notice.text.contains(&link));
    assert!(notice.html.as_ref().unwrap().contains(&link));
    assert_eq!(reply.to, ["taro@example.jp"]);
    let subject = &reply.subject;
    assert!(
        subject.contains("受け付けました") && subject.contains(reference),
        "{subject}"
    );
    let text = &reply.text;
    assert!(text.contains("受付完了") && text.contains("今後の流れ"));
    assert!(text.contains(&app.config.words.desk_phone));
    assert_ne!(mails[0].0, mails[1].0);

    let funnel: Vec<_> = events
        .iter()
        .filter(|e| e.0.starts_with("funnel-"))
        .collect();
    let steps: Vec<&str> = funnel.iter().map(|e| e.1.as_str()).collect();
    assert_eq!(steps, ["FormViewed", "ConfirmViewed", "Submitted"]);
    assert!(
        funnel.iter().all(|e| e.0 == funnel[0].0),
        "one journey, one stream"
    );
    assert!(funnel.iter().all(|e| e.2["form"] == "inquiry"));
    assert_eq!(funnel[2].2["case_id"], case_id);
}

#[tokio::test]
async fn a_double_click_a_reload_or_a_resubmit_never_opens_a_second_case() {
    let app = App::new().await;
    let mut b = app.browser();
    let confirm = to_confirm(&mut b, "/inquiry", &inquiry_pairs()).await;
    let hidden = confirm.hidden_inputs();
    let pairs = pairs_of(&hidden);

    // A double click: two submits at once.
    let mut b2 = app.browser();
    b2.cookies = b.cookies.clone();
    let (r1, r2) = tokio::join!(
        b.post("/inquiry/submit", &pairs),
        b2.post("/inquiry/submit", &pairs)
    );
    assert_eq!(
        (r1.status, r2.status),
        (StatusCode::SEE_OTHER, StatusCode::SEE_OTHER)
    );
    // Back to the confirm page and 送信する again, later.
    app.clock.advance(chrono::Duration::minutes(30));
    let r3 = b.post("/inquiry/submit", &pairs).await;
    assert_eq!(r3.status, StatusCode::SEE_OTHER);

    assert_eq!(app.streams("consultation").await.len(), 1);
    let events = app.events().await;
    let submitted = events.iter().filter(|e| e.1 == "InquirySubmitted").count();
    let mails = events.iter().filter(|e| e.1 == "MailQueued").count();
    assert_eq!((submitted, mails), (1, 2));
    let reference = events.iter().find(|e| e.1 == "InquirySubmitted").unwrap().2["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    let complete = b2.get("/inquiry/complete").await;
    assert!(complete.body.contains(&reference));
    let complete = b.get("/inquiry/complete").await;
    assert!(
        complete.body.contains(&reference),
        "the resubmit shows the first reference"
    );
    let submitted_steps = events.iter().filter(|e| e.1 == "Submitted").count();
    assert_eq!(submitted_steps, 1, "the funnel counts the journey once");
}

#[tokio::test]
async fn two_forms_get_two_cases_with_increasing_references() {
    let app = App::new().await;
    let mut refs = Vec::new();
    for _ in 0..2 {
        let mut b = app.browser();
        let confirm = to_confirm(&mut b, "/inquiry", &inquiry_pairs()).await;
        let hidden = confirm.hidden_inputs();
        let r = b.post("/inquiry/submit", &pairs_of(&hidden)).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
    }
    for e in app
        .events()
        .await
        .iter()
        .filter(|e| e.1 == "InquirySubmitted")
    {
        refs.push(e.2["reference"].as_str().unwrap().to_owned());
    }
    assert_eq!(refs.len(), 2);
    assert_ne!(refs[0], refs[1]);
    assert!(refs[0] < refs[1], "{refs:?}");
}

#[tokio::test]
async fn invalid_input_comes_back_as_422_with_every_value_kept_and_linked_errors() {
    let app = App::new().await;
    let mut b = app.browser();
    let mut pairs = inquiry_pairs();
    pairs.retain(|(k, _)| {
        !matches!(
            *k,
            "name" | "name_kana" | "email_confirm" | "topics" | "consent" | "preferred_date_1"
        )
    });
    pairs.extend([
        ("name", ""),
        ("name_kana", "柏崎"),
        ("email_confirm", "other@example.jp"),
        ("preferred_date_1", "2026-11-25T10:00"),
    ]);
    let r = to_confirm(&mut b, "/inquiry", &pairs).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body.contains("入力内容に6件の誤りがあります"),
        "{}",
        r.body
    );
    for field in [
        "name",
        "name_kana",
        "email_confirm",
        "topics",
        "preferred_date_1",
        "consent",
    ] {
        assert!(
            r.body.contains(&format!("href=\"#f-{field}\"")),
            "summary links {field}"
        );
        assert!(
            r.body.contains(&format!("id=\"f-{field}-error\"")),
            "error beside {field}"
        );
    }
    assert!(
        r.body
            .contains("aria-describedby=\"f-name_kana-help f-name_kana-error\"")
    );
    assert!(r.body.contains("aria-invalid=\"true\""));
    assert!(r.body.contains("全角カタカナで入力してください"));
    assert!(r.body.contains("本日から3日以降の日時を指定してください"));
    assert!(r.body.contains("個人情報の取り扱いへの同意が必要です"));
    // Every value is kept.
    assert_eq!(r.input_value("name_kana").as_deref(), Some("柏崎"));
    assert_eq!(r.input_value("email").as_deref(), Some("taro@example.jp"));
    assert_eq!(
        r.input_value("preferred_date_1").as_deref(),
        Some("2026-11-25T10:00")
    );
    assert!(r.body.contains("雪の多い冬の暮らしについて知りたいです。"));
    assert!(r.body.contains("value=\"i_turn\" checked"));
    assert!(app.streams("consultation").await.is_empty());
}

#[tokio::test]
async fn a_reading_typed_in_hiragana_is_taken_as_katakana() {
    // People often type the フリガナ in hiragana out of habit: the form takes it,
    // shows the katakana on the confirm page and stores the katakana.
    let app = App::new().await;
    let mut b = app.browser();
    let mut pairs = inquiry_pairs();
    pairs.retain(|(k, _)| *k != "name_kana");
    pairs.push(("name_kana", "かしわざき　ﾀﾛｳ"));
    let confirm = to_confirm(&mut b, "/inquiry", &pairs).await;
    assert_eq!(confirm.status, StatusCode::OK, "{}", confirm.body);
    assert!(
        confirm.body.contains("<dd>カシワザキ タロウ</dd>"),
        "{}",
        confirm.body
    );
    let hidden = confirm.hidden_inputs();
    let submit = b.post("/inquiry/submit", &pairs_of(&hidden)).await;
    assert_eq!(submit.status, StatusCode::SEE_OTHER, "{}", submit.body);
    let events = app.events().await;
    let case = events
        .iter()
        .find(|e| e.1 == "InquirySubmitted")
        .expect("a case");
    assert_eq!(case.2["personal"]["name_kana"], "カシワザキ タロウ");
}

#[tokio::test]
async fn an_address_confirmed_in_other_capitals_is_the_same_address() {
    let app = App::new().await;
    let mut b = app.browser();
    let mut pairs = inquiry_pairs();
    pairs.retain(|(k, _)| *k != "email_confirm");
    pairs.push(("email_confirm", "TARO@example.jp"));
    let confirm = to_confirm(&mut b, "/inquiry", &pairs).await;
    assert_eq!(confirm.status, StatusCode::OK, "{}", confirm.body);
    assert!(
        confirm.body.contains("<dd>taro@example.jp</dd>"),
        "{}",
        confirm.body
    );
}

#[tokio::test]
async fn edit_on_the_confirm_page_brings_back_the_form_with_every_value() {
    let app = App::new().await;
    let mut b = app.browser();
    let confirm = to_confirm(&mut b, "/inquiry", &inquiry_pairs()).await;
    let mut hidden = confirm.hidden_inputs();
    hidden.push(("action".into(), "edit".into()));
    let form = b.post("/inquiry/confirm", &pairs_of(&hidden)).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("入力内容を確認する"));
    assert_eq!(form.input_value("name").as_deref(), Some("柏崎 太郎"));
    assert_eq!(
        form.input_value("children_ages").as_deref(),
        Some("5歳、小学2年")
    );
    assert!(form.body.contains("value=\"work\" checked"));
    assert!(form.body.contains("value=\"childcare_education\" checked"));
    assert!(form.body.contains("name=\"consent\" value=\"on\" checked"));
    assert!(form.body.contains("<option value=\"東京都\" selected>"));
    // The same token rides along: submitting after editing still opens one case.
    assert_eq!(
        form.input_value("form_token"),
        confirm.input_value("form_token")
    );
}

#[tokio::test]
async fn a_missing_or_forged_csrf_token_gets_403() {
    let app = App::new().await;
    let mut b = app.browser();
    let form = b.get("/inquiry").await;
    let g = Guards::of(&form);

    let mut no_field: Vec<(&str, &str)> = vec![("form_token", g.token.as_str())];
    no_field.extend(inquiry_pairs());
    let forged = Guards {
        csrf: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into(),
        token: g.token.clone(),
    };
    for path in ["/inquiry/confirm", "/inquiry/submit"] {
        let r = b.post(path, &no_field).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}: no field");
        assert!(r.body.contains("送信を受け付けられませんでした"));
        let r = b.post(path, &forged.with(&inquiry_pairs())).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}: forged");
        // No cookie at all (a cross-site post without the browser's cookie).
        let mut stranger = app.browser();
        let r = stranger.post(path, &g.with(&inquiry_pairs())).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}: no cookie");
    }
    // A token from another browser's cookie does not fit this one.
    let mut other = app.browser();
    let other_form = other.get("/inquiry").await;
    let og = Guards::of(&other_form);
    let mixed = Guards {
        csrf: og.csrf,
        token: g.token.clone(),
    };
    let r = b
        .post("/inquiry/confirm", &mixed.with(&inquiry_pairs()))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // And the genuine pair works.
    let r = b.post("/inquiry/confirm", &g.with(&inquiry_pairs())).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(app.streams("consultation").await.is_empty());
}

#[tokio::test]
async fn a_forged_form_token_or_one_from_the_other_form_gets_400() {
    let app = App::new().await;
    let mut b = app.browser();
    let form = b.get("/inquiry").await;
    let g = Guards::of(&form);
    let forged = Guards {
        csrf: g.csrf.clone(),
        token: format!("{}x", g.token),
    };
    let r = b
        .post("/inquiry/submit", &forged.with(&inquiry_pairs()))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("フォームのページを開き直して"));
    // A tour request token is not an inquiry token.
    let tr = b.get("/tours/request").await;
    let tg = Guards::of(&tr);
    let r = b.post("/inquiry/submit", &tg.with(&inquiry_pairs())).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(app.streams("consultation").await.is_empty());
}

#[tokio::test]
async fn a_filled_honeypot_looks_accepted_but_stays_out_of_the_pipeline_and_is_flagged() {
    let app = App::new().await;
    let mut b = app.browser();
    let form = b.get("/inquiry").await;
    assert!(form.body.contains("name=\"website\""));
    let g = Guards::of(&form);
    let mut pairs = inquiry_pairs();
    pairs.retain(|(k, _)| *k != "website");
    pairs.push(("website", "http://spam.example"));
    let r = b.post("/inquiry/submit", &g.with(&pairs)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), Some("/inquiry/complete"));
    let complete = b.get("/inquiry/complete").await;
    assert_eq!(complete.status, StatusCode::OK);
    assert!(!complete.body.contains("class=\"reference\""));

    assert!(app.streams("consultation").await.is_empty(), "no case");
    let events = app.events().await;
    let flagged: Vec<_> = events.iter().filter(|e| e.1 == "SpamFlagged").collect();
    assert_eq!(flagged.len(), 1);
    assert!(flagged[0].0.starts_with("funnel-"));
    assert_eq!(flagged[0].2["reason"], "honeypot");
    let text = flagged[0].2.to_string();
    assert!(
        !text.contains("taro") && !text.contains("spam.example"),
        "no personal data: {text}"
    );
    assert!(
        !events
            .iter()
            .any(|e| e.1 == "MailRequested" || e.1 == "MailQueued")
    );
}

#[tokio::test]
async fn too_many_submissions_from_one_address_get_429() {
    let app = App::with(|c| c.submissions_per_ip_per_hour = 2).await;
    let ip: SocketAddr = "198.51.100.7:50000".parse().unwrap();
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let mut b = app.browser();
        b.ip = Some(ip);
        let confirm = to_confirm(&mut b, "/inquiry", &inquiry_pairs()).await;
        let hidden = confirm.hidden_inputs();
        let r = b.post("/inquiry/submit", &pairs_of(&hidden)).await;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            assert!(r.body.contains("送信回数の上限"));
            assert!(r.headers.contains_key("retry-after"));
        }
        statuses.push(r.status);
    }
    assert_eq!(
        statuses,
        [
            StatusCode::SEE_OTHER,
            StatusCode::SEE_OTHER,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    assert_eq!(app.streams("consultation").await.len(), 2);

    // Another address is not affected, and an hour later this one may send again.
    let mut other = app.browser();
    other.ip = Some("198.51.100.8:50000".parse().unwrap());
    let confirm = to_confirm(&mut other, "/inquiry", &inquiry_pairs()).await;
    let r = other
        .post("/inquiry/submit", &pairs_of(&confirm.hidden_inputs()))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    app.clock.advance(chrono::Duration::minutes(61));
    let mut again = app.browser();
    again.ip = Some(ip);
    let confirm = to_confirm(&mut again, "/inquiry", &inquiry_pairs()).await;
    let r = again
        .post("/inquiry/submit", &pairs_of(&confirm.hidden_inputs()))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn oversized_bodies_invalid_utf8_and_wrong_content_types_get_clear_4xx_pages() {
    let app = App::new().await;
    let mut b = app.browser();
    let form = b.get("/inquiry").await;
    let g = Guards::of(&form);

    let huge = "あ".repeat(30_000);
    let mut pairs = g.with(&inquiry_pairs());
    pairs.push(("message", &huge));
    let r = b.post("/inquiry/confirm", &pairs).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(r.body.contains("送信内容が大きすぎます"));

    let mut raw = serde_urlencoded::to_string(g.with(&inquiry_pairs()))
        .unwrap()
        .into_bytes();
    raw.extend_from_slice(b"&city=%E6%9F%8F%FF");
    let r = b.post_raw("/inquiry/confirm", raw).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("UTF-8"));

    let req = axum::http::Request::post("/inquiry/confirm")
        .header("content-type", "text/plain")
        .body(axum::body::Body::from("hello"))
        .unwrap();
    let r = app.send(req).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(r.body.contains("<html lang=\"ja\">"));
}

#[tokio::test]
async fn control_characters_and_over_long_values_are_refused_with_messages() {
    let app = App::new().await;
    let mut b = app.browser();
    let long = "あ".repeat(2001);
    let mut pairs = inquiry_pairs();
    pairs.retain(|(k, _)| !matches!(*k, "name" | "message" | "city"));
    pairs.extend([
        ("name", "柏崎\u{7}太郎"),
        ("message", long.as_str()),
        ("city", "千代田区\n"),
    ]);
    let r = to_confirm(&mut b, "/inquiry", &pairs).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body
            .contains("お名前：使用できない文字（制御文字）が含まれています。")
    );
    assert!(r.body.contains("2000文字以内で入力してください"));
    assert!(r.body.contains("id=\"f-message-error\""));
    // A trailing newline is trimmed away; only the name and the message are at fault.
    assert!(!r.body.contains("id=\"f-city-error\""));
}

#[tokio::test]
async fn markup_in_any_field_is_shown_as_text_on_every_page_and_in_the_mail() {
    let app = App::new().await;
    let mut b = app.browser();
    let evil = "<script>alert(1)</script>";
    let mut pairs = inquiry_pairs();
    pairs.retain(|(k, _)| !matches!(*k, "name" | "message"));
    pairs.extend([
        ("name", evil),
        ("message", "\"><img src=x onerror=alert(2)>"),
    ]);
    let confirm = to_confirm(&mut b, "/inquiry", &pairs).await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(!confirm.body.contains("<script>alert"));
    assert!(!confirm.body.contains("<img src=x"));
    assert!(
        confirm
            .body
            .contains("&lt;script&gt;alert(1)&lt;/script&gt;")
    );

    // The 422 page as well.
    let mut bad = pairs.clone();
    bad.retain(|(k, _)| *k != "email");
    bad.push(("email", "<b>x"));
    let r = to_confirm(&mut app.browser(), "/inquiry", &bad).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!r.body.contains("<script>alert") && !r.body.contains("<b>x"));

    let hidden = confirm.hidden_inputs();
    assert!(
        hidden.iter().any(|(k, v)| k == "name" && v == evil),
        "the value survives intact"
    );
    let r = b.post("/inquiry/submit", &pairs_of(&hidden)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let events = app.events().await;
    let submitted = events.iter().find(|e| e.1 == "InquirySubmitted").unwrap();
    assert_eq!(submitted.2["personal"]["name"], evil, "stored as typed");
    let mails = app.rendered_mails(&submitted.0).await;
    assert_eq!(mails.len(), 2);
    for (_, mail) in &mails {
        let html = mail.html.as_deref().unwrap();
        assert!(
            !html.contains("<script>alert") && !html.contains("<img src=x"),
            "{html}"
        );
    }
}

#[tokio::test]
async fn the_order_made_tour_request_opens_a_tour_request_case() {
    let app = App::new().await;
    let mut b = app.browser();
    let form = b.get("/tours/request").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("オーダーメイドツアー"));
    assert!(form.body.contains("先輩移住者との交流"));
    let pairs = [
        ("name", "柏崎 花子"),
        ("name_kana", "カシワザキ ハナコ"),
        ("email", "hanako@example.jp"),
        ("email_confirm", "hanako@example.jp"),
        ("phone", "0257-21-2334"),
        ("prefecture", "埼玉県"),
        ("preferred_date_1", "2026-12-05"),
        ("preferred_date_2", "2026-12-06"),
        ("interests", "housing"),
        ("interests", "schools"),
        ("adults", "2"),
        ("children", "2"),
        ("children_ages", "3歳、小学1年"),
        ("message", "保育園を見学したいです。"),
        ("consent", "on"),
    ];
    let g = Guards::of(&form);
    let confirm = b.post("/tours/request/confirm", &g.with(&pairs)).await;
    assert_eq!(confirm.status, StatusCode::OK, "{}", confirm.body);
    assert!(confirm.body.contains("住宅、保育園・学校"));
    assert!(confirm.body.contains("<dd>2026年12月5日（土）</dd>"));
    let r = b
        .post("/tours/request/submit", &pairs_of(&confirm.hidden_inputs()))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), Some("/tours/request/complete"));
    let complete = b.get("/tours/request/complete").await;
    assert!(
        complete
            .body
            .contains("オーダーメイドツアーのお申し込みが完了しました")
    );

    let events = app.events().await;
    let case: Vec<_> = events
        .iter()
        .filter(|e| e.0.starts_with("consultation-"))
        .collect();
    assert_eq!(
        case.iter().map(|e| e.1.as_str()).collect::<Vec<_>>(),
        ["TourRequestSubmitted", "MailQueued", "MailQueued"]
    );
    let d = &case[0].2;
    assert!(complete.body.contains(d["reference"].as_str().unwrap()));
    assert_eq!(
        d["preferred_dates"],
        serde_json::json!(["2026-12-05", "2026-12-06"])
    );
    assert_eq!(d["interests"], serde_json::json!(["housing", "schools"]));
    assert_eq!(
        (d["adults"].as_u64(), d["children"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(d["personal"]["children_ages"], "3歳、小学1年");
    let funnel: Vec<&str> = events
        .iter()
        .filter(|e| e.0.starts_with("funnel-"))
        .map(|e| e.2["form"].as_str().unwrap())
        .collect();
    assert_eq!(funnel, ["tour_request"; 3]);

    // Without a date, interests or adults: 422 with the messages.
    let mut b = app.browser();
    let bad = [
        ("name", "x"),
        ("adults", "0"),
        ("preferred_date_1", "2026-11-25"),
    ];
    let r = to_confirm(&mut b, "/tours/request", &bad).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("1から10までの数字で入力してください"));
    assert!(r.body.contains("href=\"#f-interests\""));
    assert!(r.body.contains("本日から3日以降の日時を指定してください"));
}

#[tokio::test]
async fn page_views_record_funnel_steps_only_up_to_a_cap_per_address() {
    // One submission an hour allows FUNNEL_STEPS_PER_SUBMISSION recorded steps.
    let app = App::with(|c| c.submissions_per_ip_per_hour = 1).await;
    let cap = kujira_web::FUNNEL_STEPS_PER_SUBMISSION as usize;
    let ip: SocketAddr = "198.51.100.9:50000".parse().unwrap();
    for _ in 0..cap + 5 {
        let mut b = app.browser();
        b.ip = Some(ip);
        let page = b.get("/inquiry").await;
        assert_eq!(page.status, StatusCode::OK, "the page is always served");
    }
    let viewed = |events: &[(String, String, serde_json::Value)]| {
        events.iter().filter(|(_, t, _)| t == "FormViewed").count()
    };
    assert_eq!(viewed(&app.events().await), cap);

    // Another address still counts.
    let mut other = app.browser();
    other.ip = Some("198.51.100.10:50000".parse().unwrap());
    other.get("/inquiry").await;
    assert_eq!(viewed(&app.events().await), cap + 1);
}
