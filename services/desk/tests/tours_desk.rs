//! Tours in the desk: create, edit, publish, cancel (admins), rosters and check-in
//! (concierges), counts and anonymised rosters (viewers), the roster CSV, erasure,
//! and the roster projection rebuilt equal to the live one.

mod support;

use std::sync::Arc;

use axum::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use kujira_desk::Role;
use kujira_desk::tours::RosterProjection;
use kujira_domain::decider::Decider;
use kujira_domain::person::{Person, PersonCommand, PersonContext};
use kujira_domain::tour::form::SignUpInput;
use kujira_domain::tour::{TourCommand, TourDetails, TourKind};
use kujira_projector::Projector;
use kujira_tours::Actor;
use support::{App, Browser, PASSWORD};
use uuid::Uuid;

fn projector(app: &App) -> Projector {
    Projector::new(app.store.events().clone())
        .with_shared(Arc::new(RosterProjection::new(app.store.clone())))
}

async fn logged_in<'a>(app: &'a App, email: &str, role: Role) -> Browser<'a> {
    app.user(email, role).await;
    let mut b = app.browser();
    b.login(email, PASSWORD).await;
    b
}

/// 2027-01-16 09:00–16:00 in Tokyo.
fn starts() -> DateTime<Utc> {
    "2027-01-16T00:00:00Z".parse().unwrap()
}

fn details(capacity: u32) -> TourDetails {
    TourDetails {
        title: "冬の柏崎 暮らし体験ツアー".into(),
        kind: TourKind::DayTrip,
        starts_at: starts(),
        ends_at: starts() + Duration::hours(7),
        meeting_place: "JR柏崎駅 改札前".into(),
        capacity_parties: capacity,
        max_people: None,
        fee_yen: 0,
        deadline: None,
        description: "雪国の暮らしを体験します。".into(),
        audience: "子育て世帯".into(),
    }
}

async fn tour(app: &App, capacity: u32) -> Uuid {
    let id = Uuid::new_v4();
    app.state
        .tours()
        .execute(
            id,
            TourCommand::Schedule {
                tour_id: id,
                details: details(capacity),
                publish: true,
                at: app.clock_now(),
            },
            &Actor::new("cli"),
        )
        .await
        .unwrap();
    id
}

/// Signs up party `n`; returns (sign-up id, person id).
async fn sign_up(app: &App, tour: Uuid, n: u32, adults: u8, children: u8) -> (Uuid, Uuid) {
    let input = SignUpInput {
        name: format!("柏崎 太郎{n}"),
        name_kana: "カシワザキ タロウ".into(),
        email: format!("taro{n}@example.jp"),
        email_confirm: None,
        phone: format!("090-1234-{:04}", n),
        prefecture: "東京都".into(),
        adults: adults.to_string(),
        children: children.to_string(),
        children_ages: if children > 0 {
            "5歳".into()
        } else {
            String::new()
        },
        transport: "train".into(),
        needs: format!("卵アレルギー{n}"),
        source: "instagram".into(),
        consent: true,
    };
    let sign_up_id = Uuid::new_v4();
    let sign_up = input.validate(sign_up_id).unwrap();
    let done = app
        .state
        .tours()
        .execute(
            tour,
            TourCommand::SignUp {
                sign_up,
                at: app.clock_now(),
            },
            &Actor::new("applicant"),
        )
        .await
        .unwrap();
    let person = done.state.sign_up(sign_up_id).unwrap().person_id;
    (sign_up_id, person)
}

fn tour_form<'a>(title: &'a str, capacity: &'a str) -> Vec<(&'static str, &'a str)> {
    vec![
        ("title", title),
        ("kind", "day_trip"),
        ("starts_at", "2027-01-16T09:00"),
        ("ends_at", "2027-01-16T16:00"),
        ("deadline", "2027-01-09T23:59"),
        ("capacity_parties", capacity),
        ("max_people", ""),
        ("fee_yen", "0"),
        ("meeting_place", "JR柏崎駅 改札前"),
        ("audience", "子育て世帯"),
        ("description", "雪国の暮らし"),
    ]
}

fn version_of(page: &support::Resp) -> String {
    page.input_value("version").expect("a version field")
}

#[tokio::test]
async fn an_admin_creates_publishes_edits_and_cancels_a_tour_with_the_cli_rules() {
    let app = App::new().await;
    let mut admin = logged_in(&app, "admin@example.jp", Role::Admin).await;
    let form = admin.get("/desk/tours/new").await;
    assert_eq!(form.status, StatusCode::OK);
    let new_id = form.input_value("tour_id").unwrap();

    // Bad input: the form again, Japanese messages on the fields, values kept,
    // markup shown as text.
    let mut bad = tour_form("<script>alert(1)</script>", "0");
    bad.push(("tour_id", &new_id));
    bad[2] = ("starts_at", "2026-11-01T09:00");
    let res = admin.post_form("/desk/tours", &bad).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        res.body
            .contains("開始日時は現在より後の日時を指定してください。")
    );
    assert!(
        res.body
            .contains("定員（組数）は1〜500の半角数字（整数）で入力してください。")
    );
    assert!(res.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!res.body.contains("<script>alert(1)"));
    assert!(res.body.contains("href=\"#f-starts_at\""));

    // A draft, then published.
    let mut good = tour_form("冬の柏崎 <b>暮らし</b>体験", "2");
    good.push(("tour_id", &new_id));
    let res = admin.post_form("/desk/tours", &good).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let id: Uuid = new_id.parse().unwrap();
    assert_eq!(
        res.location().unwrap(),
        format!("/desk/tours/{id}?done=created")
    );
    // A double submit lands on the same tour.
    let again = admin.post_form("/desk/tours", &good).await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);
    let page = admin.get(&format!("/desk/tours/{id}")).await;
    assert!(page.body.contains("下書き"), "{}", page.body);
    assert!(page.body.contains("冬の柏崎 &lt;b&gt;暮らし&lt;/b&gt;体験"));
    let v = version_of(&page);
    let res = admin
        .post_form(&format!("/desk/tours/{id}/publish"), &[("version", &v)])
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    let state = app.state.tours().load(id).await.unwrap().unwrap();
    assert_eq!(state.status.as_str(), "published");

    // Two parties confirmed, one waiting.
    sign_up(&app, id, 1, 2, 1).await;
    sign_up(&app, id, 2, 1, 0).await;
    let (waiting, _) = sign_up(&app, id, 3, 2, 0).await;

    // Edit: the capacity may not drop below the confirmed parties.
    let edit = admin.get(&format!("/desk/tours/{id}/edit")).await;
    assert_eq!(edit.status, StatusCode::OK);
    let v = version_of(&edit);
    let mut form = tour_form("冬の柏崎 暮らし体験", "1");
    form.push(("version", &v));
    let res = admin
        .post_form(&format!("/desk/tours/{id}/edit"), &form)
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        res.body.contains("参加確定済みの2組より少なくできません"),
        "{}",
        res.body
    );
    assert!(res.body.contains("value=\"冬の柏崎 暮らし体験\""));

    // Raising it to 3 promotes the waiting party; a new time tells every party.
    let mut form = tour_form("冬の柏崎 暮らし体験", "3");
    form[2] = ("starts_at", "2027-01-16T10:00");
    form.push(("version", &v));
    let res = admin
        .post_form(&format!("/desk/tours/{id}/edit"), &form)
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let state = app.state.tours().load(id).await.unwrap().unwrap();
    assert!(state.sign_up(waiting).unwrap().is_confirmed());
    let events = app.events().await;
    let changed = events
        .iter()
        .find(|(_, t, _, _)| t == "TourDetailsChanged")
        .unwrap();
    assert!(changed.3.starts_with("staff:"));
    assert_eq!(
        changed.2["changed"],
        serde_json::json!(["title", "starts_at", "capacity_parties"])
    );
    let mails = events
        .iter()
        .filter(|(_, t, d, _)| t == "MailQueued" && d["template"] == "tour_changed")
        .count();
    assert_eq!(mails, 3, "every party is told of the new time");

    // A lost race: the form seen before the edit is stale, and says so.
    let mut form = tour_form("別のタイトル", "3");
    form.push(("version", &v));
    let res = admin
        .post_form(&format!("/desk/tours/{id}/edit"), &form)
        .await;
    assert_eq!(res.status, StatusCode::CONFLICT);
    assert!(
        res.body
            .contains("ほかの職員がこのツアーを先に変更したため")
    );
    assert!(res.body.contains("value=\"別のタイトル\""), "values kept");
    let state = app.state.tours().load(id).await.unwrap().unwrap();
    assert_eq!(state.details.unwrap().title, "冬の柏崎 暮らし体験");

    // Cancel needs a reason.
    let page = admin.get(&format!("/desk/tours/{id}/cancel")).await;
    let v = version_of(&page);
    let res = admin
        .post_form(
            &format!("/desk/tours/{id}/cancel"),
            &[("version", &v), ("reason", "  ")],
        )
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(res.body.contains("中止の理由を入力してください。"));
    let res = admin
        .post_form(
            &format!("/desk/tours/{id}/cancel"),
            &[("version", &v), ("reason", "大雪のため")],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let state = app.state.tours().load(id).await.unwrap().unwrap();
    assert_eq!(state.status.as_str(), "cancelled");
    assert_eq!(state.cancel_reason.as_deref(), Some("大雪のため"));
    // A cancelled tour is not edited.
    let page = admin.get(&format!("/desk/tours/{id}/edit")).await;
    let v = version_of(&page);
    let mut form = tour_form("冬の柏崎 暮らし体験 改", "3");
    form.push(("version", &v));
    let res = admin
        .post_form(&format!("/desk/tours/{id}/edit"), &form)
        .await;
    assert_eq!(res.status, StatusCode::CONFLICT);
    assert!(
        res.body
            .contains("このツアーは中止されているため、変更できません。")
    );
}

#[tokio::test]
async fn each_role_gets_what_it_may_see_and_do() {
    let app = App::new().await;
    let id = tour(&app, 2).await;
    let (first, _) = sign_up(&app, id, 1, 2, 1).await;
    sign_up(&app, id, 2, 1, 0).await;
    sign_up(&app, id, 3, 1, 0).await;
    projector(&app).catch_up().await.unwrap();

    let mut concierge = logged_in(&app, "c@example.jp", Role::Concierge).await;
    let mut viewer = logged_in(&app, "v@example.jp", Role::Viewer).await;
    let mut admin = logged_in(&app, "a@example.jp", Role::Admin).await;

    for b in [&mut concierge, &mut viewer, &mut admin] {
        let list = b.get("/desk/tours").await;
        assert_eq!(list.status, StatusCode::OK);
        assert!(list.body.contains("冬の柏崎 暮らし体験ツアー"));
        assert!(list.body.contains("2組 / 定員2組（4人）"), "{}", list.body);
        assert_eq!(
            b.get(&format!("/desk/tours/{id}")).await.status,
            StatusCode::OK
        );
    }
    // Only admins manage tours.
    for b in [&mut concierge, &mut viewer] {
        assert_eq!(b.get("/desk/tours/new").await.status, StatusCode::FORBIDDEN);
        assert_eq!(
            b.get(&format!("/desk/tours/{id}/edit")).await.status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            b.get(&format!("/desk/tours/{id}/cancel")).await.status,
            StatusCode::FORBIDDEN
        );
        let res = b.post_form("/desk/tours", &tour_form("x", "1")).await;
        assert_eq!(res.status, StatusCode::FORBIDDEN);
        let res = b
            .post_form(&format!("/desk/tours/{id}/publish"), &[("version", "1")])
            .await;
        assert_eq!(res.status, StatusCode::FORBIDDEN);
    }
    // Concierges (and admins) see the roster with names; viewers never.
    let roster = concierge.get(&format!("/desk/tours/{id}/roster")).await;
    assert_eq!(roster.status, StatusCode::OK);
    for s in [
        "柏崎 太郎1",
        "taro1@example.jp",
        "090-1234-0001",
        "卵アレルギー1",
        "キャンセル待ち 1番",
    ] {
        assert!(roster.body.contains(s), "{s}");
    }
    for path in [
        format!("/desk/tours/{id}/roster"),
        format!("/desk/tours/{id}/roster.csv"),
    ] {
        let res = viewer.get(&path).await;
        assert_eq!(res.status, StatusCode::OK);
        for s in [
            "太郎",
            "taro",
            "example.jp",
            "090-",
            "アレルギー",
            "カシワザキ",
            "5歳",
        ] {
            assert!(!res.body.contains(s), "{path} shows {s} to a viewer");
        }
        assert!(res.body.contains("非表示"));
    }
    // Viewers cannot check parties in, even on the day.
    app.clock.set(starts() - Duration::hours(1));
    let res = viewer
        .post_form(
            &format!("/desk/tours/{id}/attendance"),
            &[("sign_up_id", &first.to_string()), ("attended", "yes")],
        )
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    // Unknown or malformed ids: a Japanese 404.
    for path in [
        format!("/desk/tours/{}", Uuid::new_v4()),
        format!("/desk/tours/{}/roster.csv", Uuid::new_v4()),
        "/desk/tours/not-an-id/roster".to_owned(),
    ] {
        let res = concierge.get(&path).await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{path}");
        assert!(res.body.contains("ページが見つかりません"));
    }
}

#[tokio::test]
async fn concierges_check_parties_in_on_the_day_as_events() {
    let app = App::new().await;
    let id = tour(&app, 3).await;
    let (a, _) = sign_up(&app, id, 1, 2, 0).await;
    let (b, _) = sign_up(&app, id, 2, 1, 1).await;
    projector(&app).catch_up().await.unwrap();
    let mut c = logged_in(&app, "c@example.jp", Role::Concierge).await;

    // Before the day: refused, with the reason.
    let res = c
        .post_form(
            &format!("/desk/tours/{id}/attendance"),
            &[("sign_up_id", &a.to_string()), ("attended", "yes")],
        )
        .await;
    assert_eq!(res.status, StatusCode::CONFLICT);
    assert!(
        res.body
            .contains("参加の記録はツアー当日から入力できます。")
    );
    let page = c.get(&format!("/desk/tours/{id}/roster")).await;
    assert!(!page.body.contains("参加にする"));

    app.clock.set(starts() - Duration::minutes(30));
    let page = c.get(&format!("/desk/tours/{id}/roster")).await;
    assert!(page.body.contains("参加にする"));
    for (who, attended) in [(a, "yes"), (b, "no"), (b, "yes")] {
        app.clock.advance(Duration::seconds(5));
        let res = c
            .post_form(
                &format!("/desk/tours/{id}/attendance"),
                &[("sign_up_id", &who.to_string()), ("attended", attended)],
            )
            .await;
        assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    }
    let state = app.state.tours().load(id).await.unwrap().unwrap();
    assert_eq!(state.sign_up(a).unwrap().attended, Some(true));
    assert_eq!(state.sign_up(b).unwrap().attended, Some(true), "corrected");
    let recorded: Vec<_> = app
        .events()
        .await
        .into_iter()
        .filter(|(_, t, _, _)| t == "TourAttendanceRecorded")
        .collect();
    assert_eq!(recorded.len(), 3);
    assert!(
        recorded
            .iter()
            .all(|(_, _, _, actor)| actor.starts_with("staff:"))
    );
    // A bad value, an unknown party.
    let res = c
        .post_form(
            &format!("/desk/tours/{id}/attendance"),
            &[("sign_up_id", &a.to_string()), ("attended", "maybe")],
        )
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    let res = c
        .post_form(
            &format!("/desk/tours/{id}/attendance"),
            &[
                ("sign_up_id", &Uuid::new_v4().to_string()),
                ("attended", "yes"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    projector(&app).catch_up().await.unwrap();
    let page = c.get(&format!("/desk/tours/{id}/roster")).await;
    assert_eq!(page.body.matches("class=\"att-yes\"").count(), 2);
}

#[tokio::test]
async fn the_roster_csv_has_a_bom_crlf_a_header_and_one_row_per_party() {
    let app = App::new().await;
    let id = tour(&app, 1).await;
    let (first, _) = sign_up(&app, id, 1, 2, 1).await;
    sign_up(&app, id, 2, 1, 0).await;
    sign_up(&app, id, 3, 2, 0).await;
    let (fourth, _) = sign_up(&app, id, 4, 1, 0).await;
    // The second waiting party leaves; the first party cancels and the first in line moves up.
    for s in [fourth, first] {
        app.state
            .tours()
            .execute(
                id,
                TourCommand::CancelSignUp {
                    sign_up_id: s,
                    by: kujira_domain::tour::CancelledBy::Party,
                    at: app.clock_now(),
                },
                &Actor::new("applicant"),
            )
            .await
            .unwrap();
    }
    sign_up(&app, id, 5, 1, 0).await;
    projector(&app).catch_up().await.unwrap();
    let mut c = logged_in(&app, "c@example.jp", Role::Concierge).await;
    let res = c.get(&format!("/desk/tours/{id}/roster.csv")).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.headers["content-type"], "text/csv; charset=utf-8");
    assert!(
        res.headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment;")
    );
    let body = res.body.as_bytes();
    assert!(body.starts_with(b"\xEF\xBB\xBF"), "BOM");
    let text = &res.body["\u{feff}".len()..];
    assert!(text.ends_with("\r\n"));
    assert!(!text.replace("\r\n", "").contains('\n'), "CRLF only");
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = r.headers().unwrap().iter().map(str::to_owned).collect();
    assert_eq!(header[0], "status");
    assert_eq!(header[1], "waitlist_position");
    let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 5, "one row per party");
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let summary: Vec<(String, String, String)> = rows
        .iter()
        .map(|r| {
            (
                r[col("status")].to_owned(),
                r[col("waitlist_position")].to_owned(),
                r[col("name")].to_owned(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("confirmed".into(), "".into(), "柏崎 太郎2".into()),
            ("waitlisted".into(), "1".into(), "柏崎 太郎3".into()),
            ("waitlisted".into(), "2".into(), "柏崎 太郎5".into()),
            ("cancelled".into(), "".into(), "柏崎 太郎1".into()),
            ("cancelled".into(), "".into(), "柏崎 太郎4".into()),
        ]
    );
    assert_eq!(&rows[0][col("needs")], "卵アレルギー2");
    assert_eq!(&rows[0][col("people")], "1");
}

#[tokio::test]
async fn an_erased_person_is_scrubbed_from_the_roster_and_a_rebuild_gives_the_same() {
    let app = App::new().await;
    let id = tour(&app, 2).await;
    sign_up(&app, id, 1, 2, 1).await;
    let (_, erased) = sign_up(&app, id, 2, 1, 0).await;
    let p = projector(&app);
    p.catch_up().await.unwrap();
    // Erasure as the privacy service does it: destroy the key, then the fact.
    app.store.vault().destroy(erased).await.unwrap();
    let now = app.clock_now();
    kujira_store::execute::<Person>(
        &app.store,
        &kujira_eventlog::StreamName::new("person", erased),
        &kujira_store::CommandContext::new("cli"),
        None,
        |state| {
            Person::decide(
                state,
                &(
                    PersonContext {
                        person_id: erased,
                        at: now,
                    },
                    PersonCommand::Erase { rule: None },
                ),
            )
        },
    )
    .await
    .unwrap();
    p.catch_up().await.unwrap();
    let mut c = logged_in(&app, "c@example.jp", Role::Concierge).await;
    let page = c.get(&format!("/desk/tours/{id}/roster")).await;
    assert!(page.body.contains("柏崎 太郎1"));
    assert!(!page.body.contains("柏崎 太郎2"));
    assert!(!page.body.contains("taro2@example.jp"));
    assert!(!page.body.contains("卵アレルギー2"));
    assert!(page.body.contains("削除済み"));
    let rows: Vec<(bool, Option<String>)> =
        sqlx::query_as("SELECT erased, name FROM roster_parties WHERE person_id = $1")
            .bind(erased)
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(rows, [(true, None)]);

    let projection = RosterProjection::new(app.store.clone());
    let live = kujira_projector::testing::projection_contents(&app.db.pool, &projection)
        .await
        .unwrap();
    let report = p.rebuild(RosterProjection::NAME).await.unwrap();
    assert!(report.events_applied > 0);
    let rebuilt = kujira_projector::testing::projection_contents(&app.db.pool, &projection)
        .await
        .unwrap();
    assert_eq!(live, rebuilt);
}
