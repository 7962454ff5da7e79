//! Every action of the case page through the desk's routes against a real
//! PostgreSQL: what each records, bad values, a lost race between two staff
//! members, double clicks, merge and its undo, corrections, staff-entered intake
//! and the April rotation.

mod cases_support;
mod support;

use axum::http::StatusCode;
use cases_support::{ADMIN, Applicant, CONCIERGE, CONCIERGE2, World, post_action};
use uuid::Uuid;

/// The event types of a stream, in order.
async fn types(w: &World, stream: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT event_type FROM events WHERE stream_name = $1 ORDER BY stream_version",
    )
    .bind(stream)
    .fetch_all(&w.app.db.pool)
    .await
    .unwrap()
}

async fn last_data(w: &World, stream: &str) -> (String, serde_json::Value, String) {
    sqlx::query_as(
        "SELECT event_type, data, metadata->>'actor' FROM events WHERE stream_name = $1 \
         ORDER BY stream_version DESC LIMIT 1",
    )
    .bind(stream)
    .fetch_one(&w.app.db.pool)
    .await
    .unwrap()
}

fn case_stream(id: Uuid) -> String {
    format!("consultation-{id}")
}

fn location(r: &support::Resp) -> String {
    r.location().unwrap_or_default().to_owned()
}

/// An action, its fields, and what the page must then say (or the field at fault).
type Step<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str, &'a str);

#[tokio::test]
async fn each_case_action_records_its_fact_and_the_page_tells_it() {
    let w = World::new().await;
    let (case_id, _) = w
        .inquiry(&Applicant::new(
            "柏崎 太郎",
            "カシワザキ タロウ",
            "taro@example.jp",
        ))
        .await;
    w.sync().await;
    let mut b = w.browser(CONCIERGE).await;
    let stream = case_stream(case_id);
    let path = format!("/desk/cases/{case_id}");
    let concierge2 = w.concierge2.to_string();
    let steps: Vec<Step> = vec![
        (
            "assign",
            vec![("concierge", concierge2.as_str())],
            "CaseAssigned",
            "担当を変更しました",
        ),
        (
            "phase",
            vec![("phase", "considering")],
            "CasePhaseChanged",
            "フェーズを変更しました",
        ),
        (
            "contact",
            vec![
                ("contact_channel", "counter"),
                ("contact_date", "2026-12-01"),
                ("contact_time", "08:30"),
                ("contact_note", "来庁して相談"),
            ],
            "ContactLogged",
            "対応を記録しました",
        ),
        (
            "next-action",
            vec![("next_action", "2026-12-15")],
            "NextActionSet",
            "次回対応日を更新しました",
        ),
        (
            "move",
            vec![
                ("move_in", "2027-04-01"),
                ("move_adults", "2"),
                ("move_children", "１"),
                ("move_support", "on"),
            ],
            "CasePhaseChanged",
            "移住を記録しました",
        ),
        (
            "close",
            vec![("close_reason", "other"), ("close_note", "転居済み")],
            "CaseClosed",
            "対応終了にしました",
        ),
        ("reopen", vec![], "CaseReopened", "対応を再開しました"),
    ];
    for (action, pairs, fact, notice) in steps {
        let page = b.get(&path).await;
        let r = post_action(&mut b, case_id, &page.body, action, &pairs).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{action}: {}", r.body);
        assert_eq!(location(&r), format!("{path}?done={action}"));
        let (t, _, actor) = last_data(&w, &stream).await;
        assert_eq!(t, fact, "{action}");
        assert_eq!(
            actor,
            format!("staff:{}", w.concierge),
            "who did it is in the metadata"
        );
        let after = b.get(&location(&r)).await;
        assert!(after.body.contains(notice), "{action}");
    }
    let all = types(&w, &stream).await;
    assert!(all.contains(&"MoveRecorded".to_owned()));
    let page = b.get(&path).await;
    for line in [
        "担当をconcierge2さんにしました",
        "フェーズを「情報収集中」から「移住検討中」に変更しました",
        "対応を記録しました（窓口来訪、2026-12-01 08:30）",
        "来庁して相談",
        "次回対応日を2026-12-15に設定しました",
        "移住を記録しました（転入日 2027-04-01、大人2人・子ども1人、移住支援金：申請予定）",
        "対応終了にしました（理由：その他）",
        "対応を再開しました",
        "移住相談フォームから相談を受け付けました",
    ] {
        assert!(page.body.contains(line), "the timeline says {line}");
    }
    assert!(
        page.body.contains("concierge"),
        "who: the staff member's display name"
    );
    w.sync().await;
    let row = w.case_row(case_id).await;
    assert_eq!(
        (row["phase"].as_str(), row["contacts"].as_i64()),
        (Some("moved"), Some(1))
    );
}

#[tokio::test]
async fn bad_values_come_back_with_the_form_values_and_a_message_by_the_field() {
    let w = World::new().await;
    let (case_id, _) = w
        .inquiry(&Applicant::new(
            "柏崎 太郎",
            "カシワザキ タロウ",
            "taro@example.jp",
        ))
        .await;
    let mut b = w.browser(CONCIERGE).await;
    let path = format!("/desk/cases/{case_id}");
    let cases: Vec<Step> = vec![
        (
            "contact",
            vec![
                ("contact_channel", "pigeon"),
                ("contact_date", "2026-12-01"),
                ("contact_note", "鳩で連絡<b>"),
            ],
            "選択肢の中から選んでください",
            "鳩で連絡&lt;b&gt;",
        ),
        (
            "contact",
            vec![("contact_channel", "phone"), ("contact_date", "2027-01-05")],
            "対応日時に未来の日時は指定できません",
            "2027-01-05",
        ),
        (
            "consultation",
            vec![
                ("consult_date", "2026-11-30"),
                ("consult_time", "10:00"),
                ("consult_minutes", "60"),
                ("consult_method", "visit"),
                ("consult_place", "相談室A"),
            ],
            "相談日時は現在より後の日時",
            "相談室A",
        ),
        (
            "consultation",
            vec![
                ("consult_date", "2026-12-10"),
                ("consult_time", "25:00"),
                ("consult_minutes", "5"),
                ("consult_method", "visit"),
            ],
            "10から480までの数字",
            "2026-12-10",
        ),
        (
            "move",
            vec![
                ("move_in", "2027-04-01"),
                ("move_adults", "0"),
                ("move_children", "0"),
            ],
            "1から10までの数字",
            "2027-04-01",
        ),
        (
            "next-action",
            vec![("next_action", "来週")],
            "日付の形式が正しくありません",
            "来週",
        ),
        (
            "phase",
            vec![("phase", "moved")],
            "「移住の記録」から登録してください",
            "",
        ),
        ("close", vec![("close_reason", "")], "入力してください", ""),
        (
            "merge",
            vec![("merge_into", "1999-9999")],
            "連番 1999-9999 の案件は見つかりません",
            "1999-9999",
        ),
    ];
    for (action, pairs, message, kept) in cases {
        let page = b.get(&path).await;
        let r = post_action(&mut b, case_id, &page.body, action, &pairs).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{action} {pairs:?}"
        );
        assert!(r.body.contains(message), "{action}: {message} in the page");
        assert!(r.body.contains(kept), "{action}: the value {kept} is kept");
        assert!(
            r.body.contains(&format!("open id=\"a-{action}\"")),
            "{action}'s form is open"
        );
        assert!(r.body.contains("error-summary"), "{action}");
    }
    assert_eq!(
        types(&w, &case_stream(case_id)).await.len(),
        3,
        "nothing recorded: the submission and its two mails"
    );
}

#[tokio::test]
async fn a_lost_race_says_so_and_shows_the_current_state_and_a_double_click_records_once() {
    let w = World::new().await;
    let (case_id, _) = w
        .inquiry(&Applicant::new(
            "柏崎 太郎",
            "カシワザキ タロウ",
            "taro@example.jp",
        ))
        .await;
    let path = format!("/desk/cases/{case_id}");
    let mut one = w.browser(CONCIERGE).await;
    let mut two = w.browser(CONCIERGE2).await;
    let seen_by_one = one.get(&path).await;
    let seen_by_two = two.get(&path).await;
    let r = post_action(
        &mut two,
        case_id,
        &seen_by_two.body,
        "phase",
        &[("phase", "decided")],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    // The first one's page is stale now: their change is refused, not recorded.
    let r = post_action(
        &mut one,
        case_id,
        &seen_by_one.body,
        "phase",
        &[("phase", "considering")],
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.body.contains("ほかの職員がこの案件を更新しました"));
    assert!(r.body.contains("移住確定"), "the current state is shown");
    assert!(
        r.body.contains("<option value=\"considering\" selected"),
        "the value is kept"
    );
    let phases: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE stream_name = $1 AND event_type = 'CasePhaseChanged'",
    )
    .bind(case_stream(case_id))
    .fetch_one(&w.app.db.pool)
    .await
    .unwrap();
    assert_eq!(phases, 1);
    // Resubmitting from the page that came back works.
    let r = post_action(
        &mut one,
        case_id,
        &r.body,
        "phase",
        &[("phase", "considering")],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);

    // A double click: the same form twice records one contact.
    let page = one.get(&path).await;
    let pairs = [
        ("contact_channel", "phone"),
        ("contact_date", "2026-12-01"),
        ("contact_note", "二度押し"),
    ];
    let first = post_action(&mut one, case_id, &page.body, "contact", &pairs).await;
    let second = post_action(&mut one, case_id, &page.body, "contact", &pairs).await;
    assert_eq!(
        (first.status, second.status),
        (StatusCode::SEE_OTHER, StatusCode::SEE_OTHER)
    );
    let contacts: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE stream_name = $1 AND event_type = 'ContactLogged'",
    )
    .bind(case_stream(case_id))
    .fetch_one(&w.app.db.pool)
    .await
    .unwrap();
    assert_eq!(contacts, 1);
    // A forged token or version is refused.
    let r = one
        .post_form(
            &format!("{path}/phase"),
            &[
                ("form_token", "forged"),
                ("version", "1"),
                ("person_version", "0"),
                ("phase", "decided"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_case_says_at_the_top_when_its_person_has_another_open_case() {
    let w = World::new().await;
    let taro = Applicant::new("柏崎 太郎", "カシワザキ タロウ", "taro@example.jp");
    let (web, web_ref) = w.inquiry(&taro).await;
    let (fair, _) = w.inquiry(&taro).await;
    w.sync().await;
    let mut b = w.browser(CONCIERGE).await;
    let badge = "この方の対応中の案件がほかに1件あります";
    for case in [web, fair] {
        let page = b.get(&format!("/desk/cases/{case}")).await;
        assert!(page.body.contains(badge), "{}", page.body);
        assert!(page.body.contains("href=\"#others-heading\""));
    }
    // Merged, the duplicate is no longer open work on either page.
    let page = b.get(&format!("/desk/cases/{fair}")).await;
    let r = post_action(
        &mut b,
        fair,
        &page.body,
        "merge",
        &[("merge_into", &web_ref)],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    w.sync().await;
    for case in [web, fair] {
        let page = b.get(&format!("/desk/cases/{case}")).await;
        assert!(
            !page.body.contains("この方の対応中の案件がほかに"),
            "{}",
            page.body
        );
    }
}

#[tokio::test]
async fn two_cases_of_one_person_merge_and_the_merge_is_undone() {
    let w = World::new().await;
    let (web, web_ref) = w
        .inquiry(&Applicant::new(
            "柏崎 太郎",
            "カシワザキ タロウ",
            "taro@example.jp",
        ))
        .await;
    let (fair, fair_ref) = w
        .inquiry(&Applicant::new(
            "柏崎 太郎",
            "カシワザキ タロウ",
            "taro.fair@example.jp",
        ))
        .await;
    w.sync().await;
    let mut b = w.browser(CONCIERGE).await;
    let fair_path = format!("/desk/cases/{fair}");
    let page = b.get(&fair_path).await;
    // Not into itself.
    let r = post_action(
        &mut b,
        fair,
        &page.body,
        "merge",
        &[("merge_into", &fair_ref)],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("同じ案件どうしは統合できません"));
    let r = post_action(&mut b, fair, &r.body, "merge", &[("merge_into", &web_ref)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let (t, data, _) = last_data(&w, &case_stream(fair)).await;
    assert_eq!(t, "CaseMerged");
    assert_eq!(data["into"], web.to_string());
    assert_eq!(data["into_person"], w.person_of(web).await.to_string());
    w.sync().await;
    let merged = b.get(&fair_path).await;
    assert!(
        merged
            .body
            .contains(&format!("統合済み（{web_ref} に統合）"))
    );
    assert!(
        merged
            .body
            .contains(&format!("案件 {web_ref} に統合しました"))
    );
    assert!(
        !merged.body.contains("/phase\""),
        "a merged case is read-only"
    );
    let target = b.get(&format!("/desk/cases/{web}")).await;
    assert!(target.body.contains(&fair_ref) && target.body.contains("この案件に統合済み"));
    // The merged case cannot be a merge target.
    let r = post_action(
        &mut b,
        web,
        &target.body,
        "merge",
        &[("merge_into", &fair_ref)],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    // Undo: the case stands on its own again, and nothing was deleted.
    let r = post_action(&mut b, fair, &merged.body, "unmerge", &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        types(&w, &case_stream(fair)).await[3..],
        ["CaseMerged".to_owned(), "CaseMergeUndone".to_owned()]
    );
    w.sync().await;
    let back = b.get(&fair_path).await;
    assert!(
        back.body
            .contains(&format!("案件 {web_ref} への統合を取り消しました"))
    );
    assert!(back.body.contains("/phase\""));
    assert!(w.case_row(fair).await["merged_into"].is_null());
}

#[tokio::test]
async fn person_actions_correct_opt_out_suspend_and_clear_a_bounce() {
    let w = World::new().await;
    let (case_id, _) = w
        .inquiry(&Applicant::new(
            "柏崎 太郎",
            "カシワザキ タロウ",
            "taro@example.jp",
        ))
        .await;
    let (_other, other_ref) = w
        .inquiry(&Applicant::new(
            "新潟 花子",
            "ニイガタ ハナコ",
            "hanako@example.jp",
        ))
        .await;
    w.sync().await;
    let person = w.person_of(case_id).await;
    let pstream = format!("person-{person}");
    let mut b = w.browser(CONCIERGE).await;
    let path = format!("/desk/cases/{case_id}");

    // An address that belongs to someone else is refused, with a pointer to merging.
    let page = b.get(&path).await;
    let correct = |email: &'static str| {
        vec![
            ("c_name", "柏崎 太郎"),
            ("c_kana", "カシワザキ タロウ"),
            ("c_email", email),
            ("c_phone", "090-1234-5678"),
            ("c_postal", ""),
            ("c_address", ""),
        ]
    };
    let r = post_action(
        &mut b,
        case_id,
        &page.body,
        "correct",
        &correct("hanako@example.jp"),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body.contains("別の方の記録で使われています"),
        "{other_ref}"
    );
    assert!(types(&w, &pstream).await.is_empty());

    let r = post_action(
        &mut b,
        case_id,
        &r.body,
        "correct",
        &correct("taro.new@example.jp"),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let (t, data, _) = last_data(&w, &pstream).await;
    assert_eq!(t, "PersonDetailsCorrected");
    assert_eq!(data["fields"], serde_json::json!(["email"]));
    assert!(data["personal"]["sealed"].is_number(), "sealed in the log");
    // The new address finds the person; the old one no longer does.
    let vault = w.app.store.vault();
    let new = vault
        .person_for_email(&kujira_domain::values::Email::parse("taro.new@example.jp").unwrap())
        .await
        .unwrap();
    assert_eq!((new.person_id, new.created), (person, false));
    let old = vault
        .person_for_email(&kujira_domain::values::Email::parse("taro@example.jp").unwrap())
        .await
        .unwrap();
    assert!(old.created && old.person_id != person);
    let page = b.get(&path).await;
    assert!(
        page.body
            .contains("個人情報を訂正しました（メールアドレス）")
    );
    assert!(
        !page.body.contains("訂正しました（taro"),
        "names, not values"
    );

    for (action, fact, badge) in [
        ("opt-out", "MailOptedOut", "フォローアップ配信停止中"),
        ("suspend", "PersonSuspended", "利用停止中"),
    ] {
        let page = b.get(&path).await;
        let r = post_action(&mut b, case_id, &page.body, action, &[]).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{action}");
        assert_eq!(last_data(&w, &pstream).await.0, fact);
        assert!(b.get(&path).await.body.contains(badge));
    }
    for (action, fact) in [
        ("opt-in", "MailOptedIn"),
        ("lift-suspension", "PersonSuspensionLifted"),
    ] {
        let page = b.get(&path).await;
        let r = post_action(&mut b, case_id, &page.body, action, &[]).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{action}");
        assert_eq!(last_data(&w, &pstream).await.0, fact);
    }
    // A bounce, then its clearing through the scheduler's command.
    w.on_person(
        person,
        kujira_domain::person::PersonCommand::RecordBounce {
            code: 550,
            delivery_key: "k".into(),
        },
    )
    .await;
    let page = b.get(&path).await;
    assert!(page.body.contains("メール不達"));
    let r = post_action(&mut b, case_id, &page.body, "clear-bounce", &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(last_data(&w, &pstream).await.0, "BounceCleared");
    let page = b.get(&path).await;
    for line in [
        "フォローアップメールの配信を停止しました（職員による手続き）",
        "利用停止にしました",
        "利用停止を解除しました",
        "メールが届きませんでした（不達、SMTP 550）",
        "メール不達の記録を解除しました",
    ] {
        assert!(page.body.contains(line), "{line}");
    }
    // A viewer cannot; an erased person cannot be acted on.
    w.sync().await;
    w.erase(person).await;
    let page = b.get(&path).await;
    assert!(
        page.body
            .contains("削除済みのため、相談者についての操作はできません")
    );
}

#[tokio::test]
async fn staff_enter_an_inquiry_taken_at_a_fair_with_the_public_forms_rules() {
    let w = World::new().await;
    let mut b = w.browser(CONCIERGE).await;
    let form = b.get("/desk/cases/new").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("お名前") && form.body.contains("相談したい内容"));
    assert!(
        !form.body.contains("name=\"email_confirm\""),
        "staff enter the address once"
    );
    let token = form.input_value("form_token").unwrap();
    let fields = |source: &'static str, consent: &'static str| {
        vec![
            ("desk_source", source),
            ("name", "会場 花子"),
            ("name_kana", "かいじょう はなこ"),
            ("email", "fair@example.jp"),
            ("prefecture", "東京都"),
            ("segment", "u_turn"),
            ("topics", "work"),
            ("method", "fair"),
            ("message", "ブースで相談"),
            ("consent", consent),
        ]
    };
    // The public form's rules, and the desk's own fields.
    let mut bad = vec![("form_token", token.as_str())];
    bad.extend(fields("", ""));
    let r = b.post_form("/desk/cases/new", &bad).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("受付の経路を選んでください"));
    assert!(
        r.body.contains("全角カタカナで入力してください"),
        "the kana rule of the public form"
    );
    assert!(r.body.contains("ご本人の同意を得たことを確認してください"));
    assert!(r.body.contains("value=\"会場 花子\""), "values kept");

    let mut good = vec![("form_token", token.as_str())];
    good.extend(fields("fair", "on"));
    good[3] = ("name_kana", "カイジョウ ハナコ");
    let r = b.post_form("/desk/cases/new", &good).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let loc = location(&r);
    let case_id: Uuid = loc
        .trim_start_matches("/desk/cases/")
        .split('?')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // A second click opens nothing new.
    let again = b.post_form("/desk/cases/new", &good).await;
    assert_eq!(location(&again), loc);
    let evs = types(&w, &case_stream(case_id)).await;
    assert_eq!(evs, ["InquirySubmitted"], "no mail unless asked");
    let (_, data, actor): (String, serde_json::Value, String) = sqlx::query_as(
        "SELECT event_type, data, metadata->>'actor' FROM events WHERE stream_name = $1 AND stream_version = 1",
    )
    .bind(case_stream(case_id))
    .fetch_one(&w.app.db.pool)
    .await
    .unwrap();
    assert_eq!(
        (data["channel"].as_str(), data["desk_source"].as_str()),
        (Some("desk"), Some("fair"))
    );
    assert_eq!(actor, format!("staff:{}", w.concierge));
    let page = b.get(&loc).await;
    assert!(page.body.contains("相談を登録しました"));
    assert!(page.body.contains("イベント"), "counted as イベント");
    assert!(
        page.body
            .contains("イベント・移住フェアで受けた相談を登録しました")
    );
    w.sync().await;
    let row = w.case_row(case_id).await;
    assert!(
        row["first_contact_due"].is_null(),
        "the booth was the first contact"
    );

    // With 受付メールを送る: the applicant's receipt only.
    let form = b.get("/desk/cases/new").await;
    let token = form.input_value("form_token").unwrap();
    let mut with_mail = vec![("form_token", token.as_str()), ("send_receipt", "on")];
    let mut f = fields("phone", "on");
    f[2] = ("name_kana", "デンワ ハナコ");
    f[3] = ("email", "phone@example.jp");
    with_mail.extend(f);
    let r = b.post_form("/desk/cases/new", &with_mail).await;
    let case_id: Uuid = location(&r)
        .trim_start_matches("/desk/cases/")
        .split('?')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let evs = types(&w, &case_stream(case_id)).await;
    assert_eq!(evs, ["InquirySubmitted", "MailQueued"]);
    let (_, mail, _) = last_data(&w, &case_stream(case_id)).await;
    assert_eq!(
        (mail["template"].as_str(), mail["audience"].as_str()),
        (Some("inquiry_received"), Some("applicant"))
    );
    let page = b.get(&location(&r)).await;
    assert!(page.body.contains("窓口"), "a phone inquiry counts as 窓口");
}

#[tokio::test]
async fn an_admin_hands_every_open_case_of_one_concierge_to_another() {
    let w = World::new().await;
    let staff = format!("staff:{}", w.admin);
    let mut cases = Vec::new();
    for i in 0..4 {
        let (id, _) = w
            .inquiry(&Applicant::new(
                &format!("異動 {i}"),
                "イドウ",
                &format!("move{i}@example.jp"),
            ))
            .await;
        w.work(
            id,
            &staff,
            kujira_domain::casework::CaseCommand::Assign {
                concierge: Some(w.concierge),
            },
        )
        .await;
        cases.push(id);
    }
    w.work(
        cases[3],
        &staff,
        kujira_domain::casework::CaseCommand::Close {
            reason: kujira_domain::casework::CloseReason::GaveUp,
            note: None,
        },
    )
    .await;
    w.sync().await;
    let mut c = w.browser(CONCIERGE).await;
    assert_eq!(
        c.get("/desk/cases/reassign").await.status,
        StatusCode::FORBIDDEN
    );
    let mut a = w.browser(ADMIN).await;
    let page = a.get("/desk/cases/reassign").await;
    assert!(page.body.contains("対応中 3件"));
    let token = page.input_value("form_token").unwrap();
    let from = w.concierge.to_string();
    let to = w.concierge2.to_string();
    let bad = a
        .post_form(
            "/desk/cases/reassign",
            &[("form_token", &token), ("from", &from), ("to", &from)],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("同じ人は選べません"));
    let r = a
        .post_form(
            "/desk/cases/reassign",
            &[("form_token", &token), ("from", &from), ("to", &to)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let done = a.get(&location(&r)).await;
    assert!(
        done.body.contains("3件の担当を引き継ぎました"),
        "{}",
        done.body
    );
    // Each open case has its own CaseAssigned; the closed one kept its concierge.
    for id in &cases[..3] {
        let (t, data, _) = last_data(&w, &case_stream(*id)).await;
        assert_eq!(
            (t.as_str(), data["concierge"].as_str()),
            ("CaseAssigned", Some(to.as_str()))
        );
    }
    assert_eq!(last_data(&w, &case_stream(cases[3])).await.0, "CaseClosed");
    // A second click moves nothing twice.
    a.post_form(
        "/desk/cases/reassign",
        &[("form_token", &token), ("from", &from), ("to", &to)],
    )
    .await;
    let assigned: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'CaseAssigned'")
            .fetch_one(&w.app.db.pool)
            .await
            .unwrap();
    assert_eq!(assigned, 7);
}

#[tokio::test]
async fn scheduling_a_consultation_queues_the_applicants_mail_in_the_same_append() {
    let w = World::new().await;
    let (case_id, _) = w
        .inquiry(&Applicant::new(
            "柏崎 太郎",
            "カシワザキ タロウ",
            "taro@example.jp",
        ))
        .await;
    let mut b = w.browser(CONCIERGE).await;
    let page = b.get(&format!("/desk/cases/{case_id}")).await;
    let r = post_action(
        &mut b,
        case_id,
        &page.body,
        "consultation",
        &[
            ("consult_date", "2026-12-10"),
            ("consult_time", "14:00"),
            ("consult_minutes", "90"),
            ("consult_method", "online"),
            ("consult_place", "https://meet.example.jp/abc"),
            ("consult_note", "資料をお送りします"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let rows: Vec<(String, serde_json::Value, i64)> = sqlx::query_as(
        "SELECT event_type, data, transaction_id FROM events WHERE stream_name = $1 ORDER BY stream_version DESC LIMIT 2",
    )
    .bind(case_stream(case_id))
    .fetch_all(&w.app.db.pool)
    .await
    .unwrap();
    assert_eq!(rows[0].0, "MailQueued");
    assert_eq!(rows[1].0, "ConsultationScheduled");
    assert_eq!(rows[0].2, rows[1].2, "one append");
    assert_eq!(rows[0].1["template"], "consultation_scheduled");
    assert_eq!(rows[0].1["about"], rows[1].1["consultation_id"]);
    assert_eq!(rows[1].1["starts_at"], "2026-12-10T05:00:00Z");
    assert!(
        rows[1].1["personal"]["sealed"].is_number(),
        "place and note are sealed"
    );
    let page = b.get(&format!("/desk/cases/{case_id}")).await;
    assert!(
        page.body
            .contains("相談の予定を登録しました（2026-12-10 14:00から90分、オンライン）")
    );
    assert!(page.body.contains("相談日時のご案内（カレンダー添付）"));
}
