//! The admins' privacy pieces of the desk, through its routes against a real
//! PostgreSQL: the audit trail (`/desk/audit`, its filters, paging and CSV), the
//! disclosure (`export.json`) and the erasure of a case's person end to end (the
//! privacy projections carry it out), the erasure records (`/desk/privacy`), the
//! roster's views and exports in the trail, each role's access, markup as text.

mod cases_support;
mod support;

use std::sync::Arc;

use axum::http::{StatusCode, header};
use cases_support::{ADMIN, Applicant, CONCIERGE, VIEWER, World};
use chrono::{DateTime, Duration, Utc};
use kujira_desk::Role;
use kujira_desk::audit::{self, AuditAction};
use kujira_desk::tours::RosterProjection;
use kujira_domain::tour::form::SignUpInput;
use kujira_domain::tour::{TourCommand, TourDetails, TourKind};
use kujira_tours::Actor;
use support::{Browser, PASSWORD, Resp};
use uuid::Uuid;

/// The desk with the privacy crate's tables and projections (the person index, the
/// erasure that destroys keys and writes the records) and the roster projection.
async fn world() -> World {
    World::with(
        &[&kujira_scheduler::MIGRATOR, &kujira_privacy::MIGRATOR],
        |app| {
            vec![
                Arc::new(kujira_privacy::PersonIndexProjection),
                Arc::new(kujira_privacy::ErasureProjection::new(
                    app.store.clone(),
                    None,
                )),
                Arc::new(RosterProjection::new(app.store.clone())),
            ]
        },
    )
    .await
}

fn taro() -> Applicant {
    Applicant {
        phone: "090-5555-0101".into(),
        message: "雪下ろしが心配です。".into(),
        ..Applicant::new("消去 太郎", "ショウキョ タロウ", "shoukyo.taro@example.jp")
    }
}

/// Everything personal about [`taro`], as it could leak into a page or a file.
const TARO_VALUES: [&str; 5] = [
    "消去 太郎",
    "ショウキョ タロウ",
    "shoukyo.taro@example.jp",
    "090-5555-0101",
    "雪下ろし",
];

fn assert_no_taro(what: &str, body: &str) {
    for v in TARO_VALUES {
        assert!(!body.contains(v), "{what} still shows {v:?}");
    }
}

async fn erase_count(w: &World) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'PersonErased'")
        .fetch_one(&w.app.db.pool)
        .await
        .unwrap()
}

fn header_of(r: &Resp, name: header::HeaderName) -> &str {
    r.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// The CSV's records (BOM stripped), checking the BOM and CRLF line ends.
fn csv_records(r: &Resp) -> Vec<Vec<String>> {
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(header_of(r, header::CONTENT_TYPE).starts_with("text/csv"));
    assert!(header_of(r, header::CONTENT_DISPOSITION).starts_with("attachment"));
    let body = r.body.strip_prefix('\u{feff}').expect("a BOM");
    assert!(body.ends_with("\r\n"), "CRLF at the end");
    assert_eq!(
        body.matches('\n').count(),
        body.matches("\r\n").count(),
        "every line ends with CRLF"
    );
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(body.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

#[tokio::test]
async fn each_new_route_answers_each_role_as_it_may() {
    let w = world().await;
    let (case_id, _) = w.inquiry(&taro()).await;
    w.sync().await;
    let gets = [
        "/desk/audit".to_owned(),
        "/desk/audit?action=view_case".to_owned(),
        "/desk/audit.csv".to_owned(),
        "/desk/privacy".to_owned(),
        format!("/desk/cases/{case_id}/export.json"),
    ];
    let erase = format!("/desk/cases/{case_id}/erase");

    // Anonymous: to the login page, and back to the page asked for afterwards.
    let mut anon = w.app.browser();
    for path in &gets {
        let r = anon.get(path).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{path}");
        assert!(
            r.location().unwrap().starts_with("/desk/login?next="),
            "{path}: {:?}",
            r.location()
        );
    }
    let r = anon
        .post_form(&erase, &[("erase_reference", "2026-0001")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(r.location().unwrap().starts_with("/desk/login"));

    // Viewers and concierges: 403, and no link to the admins' pages in their menu.
    for who in [VIEWER, CONCIERGE] {
        let mut b = w.browser(who).await;
        for path in &gets {
            let r = b.get(path).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{who} {path}");
            assert!(r.body.contains("権限がありません"), "{who} {path}");
        }
        let reference = w.case_row(case_id).await["reference"]
            .as_str()
            .unwrap()
            .to_owned();
        let r = b
            .post_form(&erase, &[("erase_reference", reference.as_str())])
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{who} erase");
        let home = b.get("/desk").await;
        assert!(!home.body.contains("href=\"/desk/audit\""), "{who}");
        assert!(!home.body.contains("href=\"/desk/privacy\""), "{who}");
        let case = b.get(&format!("/desk/cases/{case_id}")).await;
        assert!(!case.body.contains("/export.json"), "{who}");
        assert!(!case.body.contains("/erase\""), "{who}");
    }
    assert_eq!(erase_count(&w).await, 0, "nobody but an admin erases");
    assert!(
        w.audit_rows("export_person").await.is_empty(),
        "a refused export is no export"
    );

    // Admins: every page, and the menu links to the new ones.
    let mut admin = w.browser(ADMIN).await;
    for path in &gets {
        let r = admin.get(path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
    }
    let home = admin.get("/desk").await;
    assert!(home.body.contains("href=\"/desk/audit\""));
    assert!(home.body.contains("href=\"/desk/privacy\""));
    let r = admin.get("/desk/privacy").await;
    assert!(r.body.contains("aria-current=\"page\""));
    // A CSRF-less POST never erases.
    let r = admin.post(&erase, &[("erase_reference", "x")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Unknown cases are a Japanese 404.
    for path in [
        format!("/desk/cases/{}/export.json", Uuid::now_v7()),
        "/desk/cases/not-a-case/export.json".to_owned(),
    ] {
        let r = admin.get(&path).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert!(r.body.contains("見つかりません"));
    }
    let r = admin
        .post_form(
            &format!("/desk/cases/{}/erase", Uuid::now_v7()),
            &[("erase_reference", "2026-0001")],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_admin_erases_a_person_and_their_name_is_gone_everywhere() {
    let w = world().await;
    let (case_id, reference) = w.inquiry(&taro()).await;
    let (other_id, other_ref) = w
        .inquiry(&Applicant::new(
            "残る 花子",
            "ノコル ハナコ",
            "nokoru@example.jp",
        ))
        .await;
    w.sync().await;
    let person = w.person_of(case_id).await;
    let mut b = w.browser(ADMIN).await;

    // Before: the name is on the case page, the list and the CSV.
    let page = b.get(&format!("/desk/cases/{case_id}")).await;
    assert!(page.body.contains("消去 太郎"));
    assert!(page.body.contains("個人情報を消去する"));
    assert!(b.get("/desk/cases").await.body.contains("消去 太郎"));
    assert!(b.get("/desk/cases.csv").await.body.contains("消去 太郎"));

    // A missing or wrong 連番: the page again, the form open, the message by the field.
    for (typed, message) in [
        ("", "確認のため、この案件の連番を入力してください。"),
        (
            other_ref.as_str(),
            "入力された連番がこの案件の連番と一致しません。",
        ),
    ] {
        let r = b
            .post_form(
                &format!("/desk/cases/{case_id}/erase"),
                &[("erase_reference", typed)],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{typed:?}");
        assert!(r.body.contains(message), "{typed:?}: no message");
        assert!(r.body.contains("id=\"f-erase_reference-error\""));
        assert!(r.body.contains("aria-invalid=\"true\""));
        assert!(
            r.body
                .contains("<details class=\"action\" open id=\"a-erase\">"),
            "the form is open"
        );
        assert!(r.body.contains(&format!("value=\"{typed}\"")), "kept");
        assert!(r.body.contains("消去 太郎"), "nothing erased yet");
    }
    assert_eq!(erase_count(&w).await, 0);

    // The 連番 as typed, full-width digits too: erased, back to the case page.
    let typed: String = reference
        .chars()
        .map(|c| match c {
            '0'..='9' => char::from_u32(c as u32 - '0' as u32 + '０' as u32).unwrap(),
            c => c,
        })
        .collect();
    let r = b
        .post_form(
            &format!("/desk/cases/{case_id}/erase"),
            &[("erase_reference", typed.as_str())],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(
        r.location(),
        Some(format!("/desk/cases/{case_id}?done=erased").as_str())
    );
    let events = w.app.events().await;
    let erased: Vec<_> = events
        .iter()
        .filter(|(_, t, ..)| t == "PersonErased")
        .collect();
    assert_eq!(erased.len(), 1);
    assert_eq!(erased[0].0, format!("person-{person}"));
    assert_eq!(
        erased[0].3,
        format!("staff:{}", w.admin),
        "the admin erased"
    );
    assert_eq!(erased[0].2["rule"], serde_json::Value::Null, "on request");

    // The projections carry it out: the key is destroyed, the record written.
    w.sync().await;
    assert!(!w.app.store.vault().holds(person).await.unwrap());
    let page = b.get(r.location().unwrap()).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("削除済み"));
    assert!(page.body.contains("個人情報を消去しました"));
    assert!(page.body.contains("この方の個人情報は消去済みです。"));
    assert!(!page.body.contains("個人情報を消去する<"), "no second form");
    assert_no_taro("the case page", &page.body);
    let list = b.get("/desk/cases").await;
    assert_no_taro("the case list", &list.body);
    assert!(list.body.contains(&reference), "the case itself stays");
    assert!(list.body.contains("残る 花子"), "others stay");
    let csv = b.get("/desk/cases.csv").await;
    assert_no_taro("cases.csv", &csv.body);
    assert!(csv.body.contains("残る 花子"));
    // A search by the address finds nothing (the box keeps what was typed).
    let search = b.get("/desk/cases?q=shoukyo.taro%40example.jp").await;
    assert!(search.body.contains("条件に合う案件はありません。"));
    assert!(!search.body.contains("消去 太郎"));

    // The trail names the case, never the person.
    let trail = b.get("/desk/audit").await;
    assert_eq!(trail.status, StatusCode::OK);
    assert_no_taro("the audit trail", &trail.body);
    assert!(!trail.body.contains("残る 花子") && !trail.body.contains("nokoru@"));
    assert!(trail.body.contains("個人情報の消去"));
    assert!(
        trail
            .body
            .contains(&format!("href=\"/desk/cases/{case_id}\""))
    );
    assert!(
        trail
            .body
            .contains(&format!("href=\"/desk/cases/{other_id}\""))
    );
    let rows = w.audit_rows("erase_person").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, w.admin);
    assert_eq!(rows[0].1, Some(person));
    assert_no_taro("the erasure's audit detail", &rows[0].2);

    // The 消去記録: when, by whom, why, what each store did.
    let privacy = b.get("/desk/privacy").await;
    assert_eq!(privacy.status, StatusCode::OK);
    assert_no_taro("the erasure records", &privacy.body);
    assert!(privacy.body.contains(&reference));
    assert!(privacy.body.contains("請求・管理者の判断"));
    assert!(privacy.body.contains("admin（admin@example.jp）"));
    assert!(privacy.body.contains("暗号鍵：破棄しました"));
    assert!(privacy.body.contains("案件一覧の相談概要：消去済み"));
    assert!(!privacy.body.contains("処理待ち"));
    assert!(privacy.body.contains("消去した人数（累計）</dt><dd>1人"));

    // Erasing twice is harmless: nothing new in the log, a notice that says so.
    let r = b
        .post_form(
            &format!("/desk/cases/{case_id}/erase"),
            &[("erase_reference", reference.as_str())],
        )
        .await;
    assert_eq!(
        r.location(),
        Some(format!("/desk/cases/{case_id}?done=erased-already").as_str())
    );
    assert_eq!(erase_count(&w).await, 1);
    w.sync().await;
    let again = b.get(r.location().unwrap()).await;
    assert!(again.body.contains("すでに消去済みです"));
    assert_no_taro("the case page, again", &again.body);
    // The other person was not touched.
    let other = w.person_of(other_id).await;
    assert!(w.app.store.vault().holds(other).await.unwrap());
}

#[tokio::test]
async fn an_erasure_shows_as_pending_until_the_projections_carry_it_out() {
    let w = world().await;
    let (case_id, reference) = w.inquiry(&taro()).await;
    w.sync().await;
    let mut b = w.browser(ADMIN).await;
    let r = b
        .post_form(
            &format!("/desk/cases/{case_id}/erase"),
            &[("erase_reference", reference.as_str())],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    // Before any projection ran, the case page already reads 削除済み (the person's
    // stream says so), and no personal value shows.
    let page = b.get(r.location().unwrap()).await;
    assert!(page.body.contains("削除済み"));
    assert_no_taro("the case page before the projections", &page.body);

    // The person index has seen it, the erasure projection not yet: 処理中.
    let only = |p: Arc<dyn kujira_projector::Projection>| {
        kujira_projector::Projector::new(w.app.store.events().clone()).with_shared(p)
    };
    only(Arc::new(kujira_privacy::PersonIndexProjection))
        .catch_up()
        .await
        .unwrap();
    let privacy = b.get("/desk/privacy").await;
    assert!(privacy.body.contains("消去の処理中</dt><dd>1人"));
    assert!(privacy.body.contains("消去の記録はまだありません。"));
    // The key is destroyed and the record written; the desk's projections lag.
    only(Arc::new(kujira_privacy::ErasureProjection::new(
        w.app.store.clone(),
        None,
    )))
    .catch_up()
    .await
    .unwrap();
    let privacy = b.get("/desk/privacy").await;
    assert!(!privacy.body.contains("消去の処理中"));
    assert!(privacy.body.contains(&reference));
    assert_eq!(privacy.body.matches("処理待ち").count(), 3, "three stores");
    // Then they catch up.
    w.sync().await;
    let privacy = b.get("/desk/privacy").await;
    assert!(!privacy.body.contains("処理待ち"));
    assert_eq!(privacy.body.matches("：消去済み").count(), 3);
}

#[tokio::test]
async fn the_erasure_records_page_by_keyset_a_hundred_at_a_time() {
    let w = world().await;
    // 105 records (as retention leaves them over years), two of them at the same
    // moment so that the keyset needs its second column.
    let base = w.now();
    for i in 0..105i64 {
        let at = base - chrono::Duration::minutes(if i == 50 { 49 } else { i });
        sqlx::query(
            "INSERT INTO erasure_records (person_id, position, erased_at, actor, rule, cases, \
               key_destroyed, lookups_removed, mails_cancelled, mail_files_deleted) \
             VALUES ($1, $2, $3, 'system:retention', 'retention:5y', $4, true, 1, 0, 0)",
        )
        .bind(Uuid::now_v7())
        .bind(i + 1)
        .bind(at)
        .bind(vec![format!("2020-R{i:03}")])
        .execute(&w.app.db.pool)
        .await
        .unwrap();
    }
    let mut b = w.browser(ADMIN).await;
    let shown = |body: &str| {
        (0..105)
            .filter(|i| body.contains(&format!("2020-R{i:03}")))
            .collect::<Vec<_>>()
    };
    let first = b.get("/desk/privacy").await;
    assert_eq!(first.status, StatusCode::OK);
    let on_first = shown(&first.body);
    assert_eq!(on_first.len(), 100, "a hundred on the first page");
    assert!(on_first.contains(&0), "the newest first");
    let next = first.link("next").expect("a next page");
    assert!(next.starts_with("/desk/privacy?after="), "{next}");
    let second = b.get(&next).await;
    let on_second = shown(&second.body);
    assert_eq!(on_second.len(), 5, "the five oldest: {on_second:?}");
    assert!(
        on_second.iter().all(|i| !on_first.contains(i)),
        "no record on both pages"
    );
    assert!(!second.body.contains("rel=\"next\"") && second.body.contains("最新の記録"));

    let bad = b.get("/desk/privacy?after=yesterday").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("ページの指定"), "a Japanese message");
}

#[tokio::test]
async fn the_export_holds_the_persons_data_and_leaves_an_audit_row() {
    let w = world().await;
    let (case_id, reference) = w.inquiry(&taro()).await;
    w.sync().await;
    let person = w.person_of(case_id).await;
    let mut b = w.browser(ADMIN).await;
    let r = b.get(&format!("/desk/cases/{case_id}/export.json")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        header_of(&r, header::CONTENT_TYPE),
        "application/json; charset=utf-8"
    );
    assert_eq!(
        header_of(&r, header::CONTENT_DISPOSITION),
        format!("attachment; filename=\"disclosure-{reference}.json\"")
    );
    assert_eq!(header_of(&r, header::CACHE_CONTROL), "no-store");
    let json: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let persons = json["persons"].as_array().unwrap();
    assert_eq!(persons.len(), 1);
    assert_eq!(persons[0]["person_id"], person.to_string());
    assert_eq!(persons[0]["erased"], false);
    assert_eq!(persons[0]["cases"][0]["reference"], reference.as_str());
    for v in TARO_VALUES {
        assert!(r.body.contains(v), "the export holds {v:?}");
    }
    assert_eq!(persons[0]["consents"].as_array().unwrap().len(), 1);

    // Recorded: the export itself, and the person it disclosed.
    let rows = w.audit_rows("export_person").await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows.iter().all(|(staff, ..)| *staff == w.admin));
    assert!(rows.iter().any(|(_, p, _)| *p == Some(person)));
    assert!(rows.iter().any(|(_, p, _)| p.is_none()));
    for (.., detail) in &rows {
        assert_no_taro("the export's audit detail", detail);
        assert!(detail.contains(&reference));
    }
    let trail = b.get("/desk/audit?action=export_person").await;
    assert!(trail.body.contains("個人情報の開示（JSON出力）"));
    assert!(trail.body.contains(&format!(">{reference}</a>")));
    assert_no_taro("the audit trail", &trail.body);

    // After an erasure the export still answers, and says the data is gone.
    w.erase(person).await;
    w.sync().await;
    let r = b.get(&format!("/desk/cases/{case_id}/export.json")).await;
    assert_eq!(r.status, StatusCode::OK);
    let json: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(json["persons"][0]["erased"], true);
    assert_no_taro("an erased person's export", &r.body);
}

/// Records `n` views of a case by `staff` at `at` (directly, as the pages do).
async fn views(w: &World, staff: Uuid, person: Uuid, at: DateTime<Utc>, n: usize) {
    for i in 0..n {
        audit::record(
            &w.app.db.pool,
            staff,
            at + Duration::seconds(i as i64),
            AuditAction::ViewCase,
            &[person],
            "page=/desk/cases/x",
        )
        .await
        .unwrap();
    }
}

fn rows_on(page: &Resp) -> usize {
    page.body.matches("<tr role=\"row\">").count() - 1
}

fn link(page: &Resp, rel: &str) -> Option<String> {
    let needle = format!("rel=\"{rel}\"");
    let at = page.body.find(&needle)?;
    let start = page.body[..at].rfind("href=\"")? + 6;
    let end = page.body[start..].find('"')? + start;
    Some(page.body[start..end].replace("&amp;", "&"))
}

#[tokio::test]
async fn the_trail_filters_by_staff_action_and_dates_and_pages_by_keyset() {
    let w = world().await;
    let (case_id, reference) = w.inquiry(&taro()).await;
    w.sync().await;
    let person = w.person_of(case_id).await;
    // 2026-11-30 23:59:30 in Tokyo, then the next morning: the day turns in Tokyo.
    let late: DateTime<Utc> = "2026-11-30T14:59:30Z".parse().unwrap();
    let morning: DateTime<Utc> = "2026-12-01T00:00:00Z".parse().unwrap();
    views(&w, w.concierge, person, late, 3).await;
    views(&w, w.concierge2, person, morning, 2).await;
    audit::record(
        &w.app.db.pool,
        w.admin,
        morning + Duration::minutes(5),
        AuditAction::ExportCases,
        &[person],
        "page=/desk/cases.csv rows=1",
    )
    .await
    .unwrap();
    let mut b = w.browser(ADMIN).await;

    let all = b.get("/desk/audit").await;
    assert_eq!(rows_on(&all), 6);
    assert!(
        all.body
            .contains("concierge2<br><span class=\"email\">concierge2@example.jp</span>")
    );
    // Newest first, in Japan time.
    let first = all.body.find("2026-12-01 09:05:00").unwrap();
    let last = all.body.find("2026-11-30 23:59:30").unwrap();
    assert!(first < last);
    assert!(all.body.contains(&format!(">{reference}</a>")));

    let by_staff = b.get(&format!("/desk/audit?staff={}", w.concierge2)).await;
    assert_eq!(rows_on(&by_staff), 2);
    assert!(!by_staff.body.contains("2026-11-30"));
    let by_action = b.get("/desk/audit?action=export_cases").await;
    assert_eq!(rows_on(&by_action), 1);
    assert!(by_action.body.contains("案件のCSV出力"));
    // 2026-11-30 ends at midnight in Tokyo, not in UTC.
    let day = b.get("/desk/audit?from=2026-11-30&to=2026-11-30").await;
    assert_eq!(rows_on(&day), 3, "23:59:30 to :32 in Tokyo, 14:59 in UTC");
    let day = b.get("/desk/audit?from=2026-12-01").await;
    assert_eq!(rows_on(&day), 3);
    let combined = b
        .get(&format!(
            "/desk/audit?staff={}&action=view_case&from=2026-12-01&to=2026-12-01",
            w.concierge2
        ))
        .await;
    assert_eq!(rows_on(&combined), 2);
    assert!(
        combined.body.contains("selected"),
        "the filters stay chosen"
    );

    // Bad values: the form again, a Japanese message by each field, values kept.
    for (query, field, message) in [
        ("staff=nobody", "staff", "職員を一覧から選んでください。"),
        (
            &format!("staff={}", Uuid::now_v7()) as &str,
            "staff",
            "職員を一覧から選んでください。",
        ),
        (
            "action=drop_table",
            "action",
            "操作の種類を一覧から選んでください。",
        ),
        (
            "from=2026-13-40",
            "from",
            "日付は「2026-12-01」の形で入力してください。",
        ),
        (
            "to=tomorrow",
            "to",
            "日付は「2026-12-01」の形で入力してください。",
        ),
        (
            "from=2026-12-02&to=2026-12-01",
            "to",
            "終了日は開始日と同じ日か、それより後の日付にしてください。",
        ),
    ] {
        let r = b.get(&format!("/desk/audit?{query}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}");
        assert!(r.body.contains(message), "{query}: {message}");
        assert!(
            r.body.contains(&format!("id=\"f-{field}-error\"")),
            "{query}: the message is tied to the field"
        );
        assert!(
            r.body.contains(&format!("href=\"#f-{field}\"")),
            "{query}: summary"
        );
        assert!(r.body.contains("【入力エラー】"), "{query}");
        let r = b.get(&format!("/desk/audit.csv?{query}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "csv {query}");
        assert!(r.body.contains(message), "csv {query}");
    }
    let kept = b.get("/desk/audit?from=2026-12-02&to=2026-12-01").await;
    assert!(kept.body.contains("value=\"2026-12-02\""));

    // Keyset paging: 50 a page, newest first, forward and back.
    views(&w, w.concierge, person, morning + Duration::hours(1), 60).await;
    let p1 = b.get("/desk/audit").await;
    assert_eq!(rows_on(&p1), 50);
    assert!(link(&p1, "prev").is_none());
    let next = link(&p1, "next").expect("a next page");
    let p2 = b.get(&next).await;
    assert_eq!(rows_on(&p2), 16);
    assert!(link(&p2, "next").is_none());
    assert!(
        p2.body.contains("2026-11-30 23:59:30"),
        "the oldest is last"
    );
    let back = b.get(&link(&p2, "prev").expect("a previous page")).await;
    assert_eq!(rows_on(&back), 50);
    assert_eq!(
        back.body.split("<tbody").nth(1),
        p1.body.split("<tbody").nth(1),
        "back is the first page again"
    );
    // Paging keeps the filters.
    let f1 = b
        .get(&format!(
            "/desk/audit?staff={}&action=view_case",
            w.concierge
        ))
        .await;
    assert_eq!(rows_on(&f1), 50);
    let f2 = b.get(&link(&f1, "next").unwrap()).await;
    assert_eq!(rows_on(&f2), 13);
    assert!(
        !f2.body
            .split("<tbody")
            .nth(1)
            .unwrap()
            .contains("concierge2@")
    );
}

#[tokio::test]
async fn the_trail_csv_has_a_bom_crlf_a_header_the_filters_and_is_itself_recorded() {
    let w = world().await;
    let (case_id, reference) = w.inquiry(&taro()).await;
    w.sync().await;
    let person = w.person_of(case_id).await;
    let at: DateTime<Utc> = "2026-11-30T01:00:00Z".parse().unwrap();
    views(&w, w.concierge, person, at, 2).await;
    audit::record(
        &w.app.db.pool,
        w.admin,
        at + Duration::minutes(1),
        AuditAction::ExportCases,
        &[],
        "page=/desk/cases.csv rows=0 personal_columns=false",
    )
    .await
    .unwrap();
    let mut b = w.browser(ADMIN).await;
    let r = b.get("/desk/audit.csv").await;
    assert!(header_of(&r, header::CONTENT_DISPOSITION).contains("audit-"));
    let records = csv_records(&r);
    assert_eq!(records[0], kujira_desk::audit::pages::CSV_COLUMNS.to_vec());
    assert_eq!(records.len(), 4, "{records:?}");
    assert_eq!(
        records[1][0], "2026-11-30 10:01:00",
        "newest first, Japan time"
    );
    assert_eq!(records[1][3], "案件のCSV出力");
    assert_eq!(records[1][4], "export_cases");
    assert_eq!(records[1][5], "0");
    assert_eq!(records[2][1], "concierge");
    assert_eq!(records[2][2], "concierge@example.jp");
    assert_eq!(records[2][3], "案件の閲覧");
    assert_eq!(records[2][6], reference);
    assert_no_taro("the audit CSV", &r.body);

    // Downloading it was recorded, with the filters and without a person.
    let rows = w.audit_rows("export_audit").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, w.admin);
    assert_eq!(rows[0].1, None);
    assert!(rows[0].2.contains("rows=3"), "{}", rows[0].2);

    // The same filters as the page.
    let r = b
        .get(&format!(
            "/desk/audit.csv?staff={}&to=2026-11-30",
            w.concierge
        ))
        .await;
    let records = csv_records(&r);
    assert_eq!(records.len(), 3);
    assert!(records[1..].iter().all(|r| r[4] == "view_case"));
    let rows = w.audit_rows("export_audit").await;
    assert_eq!(rows.len(), 2);
    assert!(rows[1].2.contains(&format!("staff={}", w.concierge)));
    // The download shows in the trail too.
    let page = b.get("/desk/audit?action=export_audit").await;
    assert_eq!(rows_on(&page), 2);
    assert!(page.body.contains("監査ログのCSV出力"));
}

fn tour_details(at: DateTime<Utc>) -> TourDetails {
    TourDetails {
        title: "冬の柏崎 暮らし体験ツアー".into(),
        kind: TourKind::DayTrip,
        starts_at: at,
        ends_at: at + Duration::hours(7),
        meeting_place: "JR柏崎駅 改札前".into(),
        capacity_parties: 5,
        max_people: None,
        fee_yen: 0,
        deadline: None,
        description: "雪国の暮らしを体験します。".into(),
        audience: "子育て世帯".into(),
    }
}

#[tokio::test]
async fn roster_views_and_exports_are_in_the_trail() {
    let w = world().await;
    let tours = w.app.state.tours();
    let tour = Uuid::new_v4();
    tours
        .execute(
            tour,
            TourCommand::Schedule {
                tour_id: tour,
                details: tour_details("2027-01-16T00:00:00Z".parse().unwrap()),
                publish: true,
                at: w.now(),
            },
            &Actor::new("cli"),
        )
        .await
        .unwrap();
    let mut persons = Vec::new();
    for n in 1..=2 {
        let sign_up_id = Uuid::new_v4();
        let sign_up = SignUpInput {
            name: format!("名簿 太郎{n}"),
            name_kana: "メイボ タロウ".into(),
            email: format!("meibo{n}@example.jp"),
            email_confirm: None,
            phone: "090-1234-0000".into(),
            prefecture: "東京都".into(),
            adults: "1".into(),
            children: "0".into(),
            children_ages: String::new(),
            transport: "train".into(),
            needs: String::new(),
            source: "instagram".into(),
            consent: true,
        }
        .validate(sign_up_id)
        .unwrap();
        let done = tours
            .execute(
                tour,
                TourCommand::SignUp {
                    sign_up,
                    at: w.now(),
                },
                &Actor::new("applicant"),
            )
            .await
            .unwrap();
        persons.push(done.state.sign_up(sign_up_id).unwrap().person_id);
    }
    w.sync().await;
    persons.sort();

    let mut c = w.browser(CONCIERGE).await;
    let page = c.get(&format!("/desk/tours/{tour}/roster")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("名簿 太郎1"));
    let csv = c.get(&format!("/desk/tours/{tour}/roster.csv")).await;
    assert!(csv.body.contains("名簿 太郎2"));
    let views = w.audit_rows("view_roster").await;
    let mut seen: Vec<Uuid> = views.iter().filter_map(|(_, p, _)| *p).collect();
    seen.sort();
    assert_eq!(seen, persons, "one row per party's person");
    assert!(views.iter().all(|(s, ..)| *s == w.concierge));
    assert!(views[0].2.contains(&format!("tour={tour}")));
    assert!(views[0].2.contains("parties=2"));
    let exports = w.audit_rows("export_roster").await;
    assert_eq!(exports.len(), 3, "the export and its two persons");
    assert!(exports.iter().any(|(_, p, _)| p.is_none()));
    for (.., d) in views.iter().chain(&exports) {
        assert!(!d.contains("名簿") && !d.contains("meibo"), "{d}");
    }

    // A viewer's roster holds no personal data: the view is not recorded, the
    // export is (without persons).
    let mut v = w.browser(VIEWER).await;
    assert_eq!(
        v.get(&format!("/desk/tours/{tour}/roster")).await.status,
        StatusCode::OK
    );
    v.get(&format!("/desk/tours/{tour}/roster.csv")).await;
    assert_eq!(w.audit_rows("view_roster").await.len(), 2);
    let exports = w.audit_rows("export_roster").await;
    assert_eq!(exports.len(), 4);
    assert_eq!(exports[3].0, w.viewer);
    assert_eq!(exports[3].1, None);
    assert!(exports[3].2.contains("personal_columns=false"));

    // The trail lists them in Japanese; a person without a case reads so.
    let mut a = w.browser(ADMIN).await;
    let trail = a.get("/desk/audit").await;
    assert!(trail.body.contains("ツアー参加者名簿の閲覧"));
    assert!(trail.body.contains("ツアー参加者名簿のCSV出力"));
    assert!(trail.body.contains("案件のない方"));
    assert!(!trail.body.contains("名簿 太郎"));
}

#[tokio::test]
async fn markup_on_the_new_pages_is_shown_as_text() {
    let w = world().await;
    let evil = "<script>alert(1)</script>";
    let (case_id, _) = w
        .inquiry(&Applicant::new(
            &format!("{evil}太郎"),
            "カシワザキ",
            "evil@example.jp",
        ))
        .await;
    w.sync().await;
    let new = kujira_desk::users::NewUser::parse(
        "evil-staff@example.jp",
        "<b>職員</b>",
        Role::Admin.as_str(),
        PASSWORD,
    )
    .unwrap();
    let evil_staff = w
        .app
        .state
        .users()
        .add(new, &kujira_eventlog::Metadata::new("cli", Uuid::now_v7()))
        .await
        .unwrap();
    let mut b: Browser<'_> = w.app.browser();
    b.login("evil-staff@example.jp", PASSWORD).await;
    let page = b.get(&format!("/desk/cases/{case_id}")).await;
    assert!(
        page.body
            .contains("&lt;script&gt;alert(1)&lt;/script&gt;太郎")
    );
    // What the admin typed comes back as text.
    let r = b
        .post_form(
            &format!("/desk/cases/{case_id}/erase"),
            &[("erase_reference", "\"><script>alert(2)</script>")],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!r.body.contains("<script>alert(2)"));
    assert!(
        r.body
            .contains("&quot;&gt;&lt;script&gt;alert(2)&lt;/script&gt;")
    );
    // A query string with markup.
    let r = b
        .get("/desk/audit?from=%3Cscript%3Ealert(3)%3C%2Fscript%3E")
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(!r.body.contains("<script>alert(3)"));
    assert!(r.body.contains("&lt;script&gt;alert(3)&lt;/script&gt;"));
    for path in ["/desk/audit", "/desk/privacy"] {
        let r = b.get(path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert!(!r.body.contains("<b>職員"), "{path} runs markup");
        assert!(r.body.contains("&lt;b&gt;職員&lt;/b&gt;"), "{path}");
        assert!(!r.body.contains("<script>alert"), "{path}");
    }
    // The erasure record names the admin as text, too.
    let reference = w.case_row(case_id).await["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    b.post_form(
        &format!("/desk/cases/{case_id}/erase"),
        &[("erase_reference", reference.as_str())],
    )
    .await;
    w.sync().await;
    let privacy = b.get("/desk/privacy").await;
    assert!(
        privacy
            .body
            .contains("&lt;b&gt;職員&lt;/b&gt;（evil-staff@example.jp）")
    );
    let csv = b.get("/desk/audit.csv").await;
    assert!(csv.body.contains("<b>職員</b>"), "CSV holds the text as is");
    let _ = evil_staff;
}
