//! The board, the case list, search, paging, the CSV and the case page, per role,
//! against a real PostgreSQL: viewers never see personal data, markup is text, and
//! every view of personal data is in the audit trail.

mod cases_support;
mod support;

use axum::http::StatusCode;
use cases_support::{ADMIN, Applicant, CONCIERGE, VIEWER, World};
use chrono::{Duration, NaiveDate};
use kujira_domain::casework::{CaseCommand, CloseReason, ContactChannel, Move};
use kujira_domain::inquiry::Stage;
use kujira_domain::values::FreeText;

fn applicant(i: usize) -> Applicant {
    Applicant {
        phone: format!("090-0000-{i:04}"),
        ..Applicant::new(
            &format!("利用者 {i}号"),
            "リヨウシャ",
            &format!("user{i}@example.jp"),
        )
    }
}

#[tokio::test]
async fn the_board_counts_each_phase_apart_from_closed_and_flags_what_needs_action() {
    let w = World::new().await;
    let staff = format!("staff:{}", w.concierge);
    let mut cases = Vec::new();
    for i in 0..6 {
        cases.push(w.inquiry(&applicant(i)).await.0);
    }
    w.work(
        cases[1],
        &staff,
        CaseCommand::ChangePhase {
            to: Stage::Considering,
        },
    )
    .await;
    w.work(
        cases[2],
        &staff,
        CaseCommand::ChangePhase { to: Stage::Decided },
    )
    .await;
    w.work(
        cases[3],
        &staff,
        CaseCommand::RecordMove(Move {
            move_in: NaiveDate::from_ymd_opt(2027, 3, 1).unwrap(),
            adults: 1,
            children: 0,
            applies_for_support: false,
        }),
    )
    .await;
    w.work(
        cases[4],
        &staff,
        CaseCommand::Close {
            reason: CloseReason::GaveUp,
            note: None,
        },
    )
    .await;
    // Case 5 got a call: it awaits nothing.
    w.work(
        cases[5],
        &staff,
        CaseCommand::LogContact {
            contact_id: uuid::Uuid::now_v7(),
            channel: ContactChannel::Phone,
            occurred_at: w.now(),
            note: None,
        },
    )
    .await;
    w.work(
        cases[1],
        &staff,
        CaseCommand::SetNextAction {
            due: NaiveDate::from_ymd_opt(2026, 12, 3),
        },
    )
    .await;
    w.sync().await;
    let mut b = w.browser(CONCIERGE).await;
    let page = b.get("/desk").await;
    assert_eq!(page.status, StatusCode::OK);
    for (label, n) in [
        ("情報収集中", 2),
        ("移住検討中", 1),
        ("移住確定", 1),
        ("移住済み", 1),
        ("対応終了", 1),
    ] {
        let needle =
            format!("<span class=\"phase-name\">{label}</span><span class=\"phase-count\">{n}<");
        assert!(page.body.contains(&needle), "{needle}");
    }
    assert!(
        page.body
            .contains("次回対応日を過ぎた案件：<strong>0件</strong>")
    );
    assert!(
        page.body
            .contains("受付から3営業日超）：<strong>0件</strong>")
    );

    // Opened Tuesday 1 December: the first contact is due Friday the 4th, so on
    // Monday the 7th the cases without a contact are flagged; on Thursday the 3rd
    // the next action of case 1 has passed.
    w.advance(Duration::days(6));
    let page = b.get("/desk").await;
    assert!(
        page.body
            .contains("次回対応日を過ぎた案件：<strong>1件</strong>"),
        "{}",
        page.body
    );
    // Cases 0, 1, 2 and 3 are open without a contact; 4 is closed, 5 was called.
    assert!(
        page.body
            .contains("受付から3営業日超）：<strong>4件</strong>")
    );
    assert!(page.body.contains("利用者 0号"));
    let flagged = b.get("/desk/cases?no_contact=1").await;
    assert_eq!(flagged.body.matches("初回連絡未</span>").count(), 4);
    let overdue = b.get("/desk/cases?overdue=1").await;
    assert_eq!(overdue.body.matches("期限超過</span>").count(), 1);
}

#[tokio::test]
async fn the_list_filters_searches_and_pages_and_the_csv_follows_it() {
    let w = World::new().await;
    let staff = format!("staff:{}", w.concierge);
    let mut cases = Vec::new();
    for i in 0..52 {
        let a = Applicant {
            segment: if i % 2 == 0 { "u_turn" } else { "i_turn" }.into(),
            source: if i < 5 { "instagram" } else { "site" }.into(),
            ..applicant(i)
        };
        cases.push(w.inquiry(&a).await);
        w.advance(Duration::minutes(1));
    }
    let (taro, taro_ref) = w
        .inquiry(&Applicant {
            phone: "0257-21-9876".into(),
            ..Applicant::new("柏崎 太郎", "カシワザキ タロウ", "Taro.K@example.jp")
        })
        .await;
    w.work(
        taro,
        &staff,
        CaseCommand::Assign {
            concierge: Some(w.concierge),
        },
    )
    .await;
    w.work(
        taro,
        &staff,
        CaseCommand::ChangePhase { to: Stage::Decided },
    )
    .await;
    w.sync().await;
    let mut b = w.browser(CONCIERGE).await;

    // Paging: 53 cases, 50 a page, newest first.
    let first = b.get("/desk/cases").await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.body.matches("role=\"rowheader\"").count(), 50);
    assert!(first.body.contains(&taro_ref), "the newest first");
    let href = first.link("next").expect("a next page");
    let second = b.get(&href).await;
    assert_eq!(second.body.matches("role=\"rowheader\"").count(), 3);
    assert!(
        second.body.contains(&cases[0].1),
        "the oldest on the last page"
    );
    assert!(!second.body.contains("rel=\"next\"") && second.body.contains("rel=\"prev\""));
    let href = second.link("prev").expect("a previous page");
    let back = b.get(&href).await;
    assert_eq!(back.body.matches("role=\"rowheader\"").count(), 50);
    assert!(back.body.contains(&taro_ref));
    // A position cut short or edited by hand is refused in Japanese, not taken
    // silently for the first page (which would look like the page asked for).
    for bad in ["/desk/cases?after=zzz", "/desk/cases?before=12_x"] {
        let r = b.get(bad).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(r.body.contains("ページの指定"), "{bad}");
    }

    // Filters.
    let decided = b.get("/desk/cases?phase=decided").await;
    assert!(decided.body.contains(&taro_ref));
    assert_eq!(decided.body.matches("role=\"rowheader\"").count(), 1);
    let mine = b
        .get(&format!("/desk/cases?concierge={}", w.concierge))
        .await;
    assert_eq!(mine.body.matches("role=\"rowheader\"").count(), 1);
    let insta = b.get("/desk/cases?source=instagram").await;
    assert_eq!(insta.body.matches("role=\"rowheader\"").count(), 5);
    let u = b.get("/desk/cases?segment=u_turn&month=2026-12").await;
    assert_eq!(u.body.matches("role=\"rowheader\"").count(), 26);
    let none = b.get("/desk/cases?month=2027-01").await;
    assert!(none.body.contains("条件に合う案件はありません"));
    let web = b.get("/desk/cases?intake=event").await;
    assert!(web.body.contains("条件に合う案件はありません"));

    // Search: a part of the name, the reading in hiragana or half-width, the e-mail,
    // the phone's last digits, the 連番.
    for q in [
        "太郎",
        "柏崎",
        "かしわざき",
        "ｶｼﾜｻﾞｷ",
        "タロウ",
        "taro.k@",
        "example.jp",
        "9876",
        "0257-21",
        &taro_ref,
    ] {
        let found = b.get(&format!("/desk/cases?q={}", urlencode(q))).await;
        assert_eq!(found.status, StatusCode::OK, "{q}");
        assert!(found.body.contains(&taro_ref), "{q} finds 太郎");
        if q != "example.jp" {
            assert_eq!(
                found.body.matches("role=\"rowheader\"").count(),
                1,
                "{q} finds only 太郎"
            );
        }
    }
    let nobody = b.get("/desk/cases?q=%E5%B1%B1%E7%94%B0").await;
    assert!(nobody.body.contains("条件に合う案件はありません"));

    // Bad filters: the form again with a message by the field, values kept.
    let bad = b.get("/desk/cases?month=2026-13&phase=nowhere").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("対応年月は「2026-12」の形"));
    assert!(bad.body.contains("value=\"2026-13\""));

    // The CSV follows the filters: BOM, CRLF, the header, one row per case.
    let csv = b.get("/desk/cases.csv?phase=decided").await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(
        csv.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert!(csv.body.starts_with('\u{feff}'));
    let lines: Vec<&str> = csv
        .body
        .trim_start_matches('\u{feff}')
        .split("\r\n")
        .collect();
    assert_eq!(
        lines[0],
        "連番,ID,対応年月,氏名,フリガナ,メール,電話,性別,年代,セグメント,都道府県,相談内容,相談概要,ステータス,担当,きっかけ"
    );
    assert_eq!(
        lines.len(),
        3,
        "header, one row, and the final CRLF: {lines:?}"
    );
    let row = lines[1];
    for part in [
        taro_ref.as_str(),
        &taro.to_string(),
        "2026年12月",
        "柏崎 太郎",
        "カシワザキ タロウ",
        "Taro.K@example.jp",
        "0257-21-9876",
        "女性",
        "30代",
        "Iターン",
        "東京都",
        "仕事、住まい",
        "仕事と住まいについて相談したいです。",
        "移住確定",
        "concierge",
        "ウェブサイト",
    ] {
        assert!(row.contains(part), "{part} in {row}");
    }
    let all = b.get("/desk/cases.csv").await;
    assert_eq!(all.body.split("\r\n").count(), 55);
}

fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("q", s)]).unwrap()[2..].to_owned()
}

#[tokio::test]
async fn a_viewer_never_sees_a_name_kana_email_phone_or_message_anywhere() {
    let w = World::new().await;
    let staff = format!("staff:{}", w.concierge);
    let a = Applicant {
        phone: "0257-99-1234".into(),
        message: "秘密の相談メッセージ".into(),
        ..Applicant::new("秘匿 花子", "ヒトク ハナコ", "secret.hanako@example.jp")
    };
    let (case_id, reference) = w.inquiry(&a).await;
    w.work(
        case_id,
        &staff,
        CaseCommand::LogContact {
            contact_id: uuid::Uuid::now_v7(),
            channel: ContactChannel::Counter,
            occurred_at: w.now(),
            note: Some(FreeText::parse_multiline("秘密の対応メモ", 100).unwrap()),
        },
    )
    .await;
    w.work(
        case_id,
        &staff,
        CaseCommand::SetNextAction {
            due: NaiveDate::from_ymd_opt(2026, 12, 2),
        },
    )
    .await;
    w.sync().await;
    w.advance(Duration::days(7));
    let secrets = [
        "秘匿",
        "ヒトク",
        "secret.hanako",
        "0257-99-1234",
        "秘密の相談",
        "秘密の対応メモ",
    ];

    let mut c = w.browser(CONCIERGE).await;
    let page = c.get(&format!("/desk/cases/{case_id}")).await;
    for s in secrets {
        assert!(page.body.contains(s), "a concierge sees {s}");
    }

    let mut v = w.browser(VIEWER).await;
    let pages = [
        "/desk".to_owned(),
        "/desk/cases".to_owned(),
        "/desk/cases?overdue=1".to_owned(),
        format!("/desk/cases?q={reference}"),
        format!("/desk/cases/{case_id}"),
        "/desk/cases.csv".to_owned(),
    ];
    let board = v.get("/desk").await;
    assert!(
        !board.body.contains("さんの担当は"),
        "a viewer is never assigned a case, so the board offers no list of their own"
    );
    assert!(
        board
            .body
            .contains("閲覧者の役割では件数と集計を確認できます")
    );
    for path in &pages {
        let r = v.get(path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        for s in secrets {
            assert!(!r.body.contains(s), "a viewer sees {s} on {path}");
        }
        assert!(
            r.body.contains("非表示") || path == "/desk",
            "{path} says 非表示"
        );
        assert!(
            r.body.contains(&reference) || path == "/desk",
            "{path} lists the case"
        );
    }
    let csv = v.get("/desk/cases.csv").await;
    let row = csv.body.split("\r\n").nth(1).unwrap();
    assert_eq!(
        row.matches("非表示").count(),
        5,
        "氏名, フリガナ, メール, 電話, 相談概要: {row}"
    );
    // No search by personal fields, and no hint of a match.
    for q in ["秘匿", "secret.hanako@example.jp", "ひとく"] {
        let r = v.get(&format!("/desk/cases?q={}", urlencode(q))).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}");
        assert!(r.body.contains(
            "閲覧者の役割では、氏名・フリガナ・メールアドレス・電話番号では検索できません"
        ));
        assert!(!r.body.contains(&reference));
    }
    // A viewer has no actions.
    let page = v.get(&format!("/desk/cases/{case_id}")).await;
    assert!(
        page.body.contains("・閲覧者（集計のみ）</span>"),
        "the header names the role without brackets in brackets"
    );
    assert!(!page.body.contains("/assign\""));
    let refused = v
        .post_form(
            &format!("/desk/cases/{case_id}/assign"),
            &[("concierge", "none")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(v.get("/desk/cases/new").await.status, StatusCode::FORBIDDEN);
    // Viewing nothing personal records no view; the export is recorded all the same.
    assert!(
        w.audit_rows("view_case")
            .await
            .iter()
            .all(|(s, ..)| *s != w.viewer)
    );
    let exports = w.audit_rows("export_cases").await;
    assert!(
        exports
            .iter()
            .any(|(s, p, d)| *s == w.viewer && p.is_none() && d.contains("personal_columns=false"))
    );
}

#[tokio::test]
async fn markup_in_every_field_is_shown_as_text() {
    let w = World::new().await;
    let staff = format!("staff:{}", w.concierge);
    let evil = "<script>alert(1)</script>";
    let a = Applicant {
        message: format!("{evil}<b>太字</b>"),
        ..Applicant::new(&format!("{evil}太郎"), "カシワザキ", "evil@example.jp")
    };
    let (case_id, _) = w.inquiry(&a).await;
    w.work(
        case_id,
        &staff,
        CaseCommand::LogContact {
            contact_id: uuid::Uuid::now_v7(),
            channel: ContactChannel::Phone,
            occurred_at: w.now(),
            note: Some(FreeText::parse_multiline("<img src=x onerror=alert(2)>", 100).unwrap()),
        },
    )
    .await;
    w.work(
        case_id,
        &staff,
        CaseCommand::SetNextAction {
            due: NaiveDate::from_ymd_opt(2026, 12, 2),
        },
    )
    .await;
    w.sync().await;
    w.advance(Duration::days(7));
    let mut b = w.browser(ADMIN).await;
    for path in [
        "/desk".to_owned(),
        "/desk/cases".to_owned(),
        "/desk/cases?q=evil%40example.jp".to_owned(),
        format!("/desk/cases/{case_id}"),
        format!("/desk/cases?q={}", urlencode("<script>")),
    ] {
        let r = b.get(&path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert!(!r.body.contains("<script>alert"), "{path} runs markup");
        assert!(!r.body.contains("<img src=x"), "{path} runs markup");
        assert!(!r.body.contains("<b>太字"), "{path} runs markup");
        assert!(
            r.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{path} shows it as text"
        );
    }
    let page = b.get(&format!("/desk/cases/{case_id}")).await;
    assert!(page.body.contains("&lt;img src=x onerror=alert(2)&gt;"));
}

#[tokio::test]
async fn views_of_personal_data_and_exports_are_audited_without_personal_data() {
    let w = World::new().await;
    let (case_id, _) = w
        .inquiry(&Applicant::new(
            "監査 太郎",
            "カンサ タロウ",
            "audit@example.jp",
        ))
        .await;
    let (_other, _) = w
        .inquiry(&Applicant::new(
            "別人 次郎",
            "ベツジン ジロウ",
            "other@example.jp",
        ))
        .await;
    w.sync().await;
    let person = w.person_of(case_id).await;
    let mut b = w.browser(CONCIERGE).await;
    b.get(&format!("/desk/cases/{case_id}")).await;
    let views = w.audit_rows("view_case").await;
    assert_eq!(views.len(), 1);
    assert_eq!((views[0].0, views[0].1), (w.concierge, Some(person)));

    b.get("/desk/cases").await;
    assert_eq!(
        w.audit_rows("list_cases").await.len(),
        2,
        "one row per person shown"
    );

    b.get(&format!("/desk/cases?q={}", urlencode("監査"))).await;
    let searches = w.audit_rows("search_cases").await;
    assert_eq!(searches.len(), 1);
    assert!(searches[0].2.contains("search=name"));
    assert!(
        !searches[0].2.contains("監査"),
        "the search text is not kept"
    );

    b.get("/desk/cases.csv").await;
    let exports = w.audit_rows("export_cases").await;
    assert_eq!(exports.len(), 3, "the export itself and its two persons");
    assert!(
        exports
            .iter()
            .any(|(_, p, d)| p.is_none() && d.contains("rows=2"))
    );

    // The person's own trail, for a disclosure.
    let trail = kujira_desk::audit::for_person(&w.app.db.pool, person)
        .await
        .unwrap();
    assert!(trail.iter().any(|e| e.action == "view_case"));
    let all: Vec<String> = sqlx::query_scalar("SELECT detail FROM audit_log")
        .fetch_all(&w.app.db.pool)
        .await
        .unwrap();
    for d in all {
        assert!(
            !d.contains("audit@") && !d.contains("監査") && !d.contains("太郎"),
            "{d}"
        );
    }
}

#[tokio::test]
async fn unknown_cases_are_a_japanese_404_and_anonymous_visitors_log_in_first() {
    let w = World::new().await;
    let mut anon = w.app.browser();
    let r = anon.get("/desk/cases").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let mut b = w.browser(CONCIERGE).await;
    for path in [
        "/desk/cases/not-a-case".to_owned(),
        format!("/desk/cases/{}", uuid::Uuid::now_v7()),
    ] {
        let r = b.get(&path).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert!(r.body.contains("ページが見つかりません"));
    }
    let r = b
        .post_form(&format!("/desk/cases/{}/assign", uuid::Uuid::now_v7()), &[])
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // An action's address opened with GET: the desk's own Japanese page (after
    // the login check), not an empty answer or the public site's frame.
    let action = format!("/desk/cases/{}/assign", uuid::Uuid::now_v7());
    let r = b.get(&action).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(r.body.contains("このページは開けません"), "{}", r.body);
    assert!(r.body.contains("移住相談デスク"), "the desk's frame");
    let r = anon.get(&action).await;
    assert_eq!(
        r.status,
        StatusCode::SEE_OTHER,
        "anonymous visitors log in first"
    );
}

#[tokio::test]
async fn an_erased_person_reads_deleted_on_the_page_the_list_and_the_csv() {
    let w = World::new().await;
    let (case_id, reference) = w
        .inquiry(&Applicant::new(
            "削除 予定",
            "サクジョ ヨテイ",
            "erase.me@example.jp",
        ))
        .await;
    w.sync().await;
    w.erase(w.person_of(case_id).await).await;
    w.sync().await;
    let mut b = w.browser(CONCIERGE).await;
    let page = b.get(&format!("/desk/cases/{case_id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("削除済み"));
    assert!(!page.body.contains("erase.me") && !page.body.contains("削除 予定"));
    assert!(page.body.contains("個人情報を削除しました"));
    let list = b.get("/desk/cases").await;
    assert!(list.body.contains(&reference) && list.body.contains("削除済み"));
    let csv = b.get("/desk/cases.csv").await;
    let row = csv.body.split("\r\n").nth(1).unwrap();
    assert_eq!(row.matches("削除済み").count(), 5, "{row}");
}

#[tokio::test]
async fn the_citys_definition_of_a_mover_stands_where_moves_are_recorded_and_counted() {
    // The KPI page also reads the outbox's counters (the scheduler's tables).
    let w = World::with(&[&kujira_scheduler::MIGRATOR], |_| Vec::new()).await;
    let (case_id, _) = w.inquiry(&applicant(1)).await;
    w.sync().await;
    let definition = w.app.config.words.mover_definition.clone();
    assert!(!definition.is_empty());
    let mut b = w.browser(CONCIERGE).await;
    let page = b.get(&format!("/desk/cases/{case_id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    let move_form = &page.body[page.body.find("移住を記録する").expect("the move form")..];
    assert!(
        move_form.contains(&format!("この市の定義：{definition}")),
        "the move form states the definition"
    );
    let kpi = b.get("/desk/kpi").await;
    assert_eq!(kpi.status, StatusCode::OK);
    assert!(
        kpi.body.contains(&format!("移住者の定義：{definition}")),
        "the KPI page states the definition"
    );
}
