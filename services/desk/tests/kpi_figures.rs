//! The KPI figures for a hand-built scenario over two fiscal years (with March 31
//! and April 1 in Tokyo time), the CSV's shape, a CSV that stays byte-identical
//! through an erasure, the targets page, each role's access, and the projection
//! rebuilt equal to the live one.

mod support;

use std::sync::Arc;

use axum::http::StatusCode;
use chrono::{DateTime, NaiveDate, Utc};
use kujira_desk::Role;
use kujira_desk::kpi::KpiProjection;
use kujira_domain::casework::{CaseCommand, CloseReason, ContactChannel, Move};
use kujira_domain::decider::Decider;
use kujira_domain::funnel::{FunnelEvent, FunnelForm};
use kujira_domain::inquiry::{
    CaseOpening, Channel, Consultation, ConsultationCommand, Inquiry, InquiryPersonal,
    InquirySubmitted, Stage,
};
use kujira_domain::person::{Person, PersonCommand, PersonContext};
use kujira_domain::personal::Personal;
use kujira_domain::tour::form::SignUpInput;
use kujira_domain::tour::{TourCommand, TourDetails, TourKind};
use kujira_domain::values::{
    ConsultationMethod, Email, Kana, PersonName, Prefecture, Segment, Topic,
};
use kujira_eventlog::StreamName;
use kujira_projector::Projector;
use kujira_store::CommandContext;
use kujira_tours::Actor;
use support::{App, Browser, PASSWORD};
use uuid::Uuid;

fn jst(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&format!("{s}+09:00"))
        .unwrap()
        .to_utc()
}

async fn app() -> App {
    App::new().await
}

fn projector(app: &App) -> Projector {
    Projector::new(app.store.events().clone())
        .with_shared(Arc::new(KpiProjection::new(app.config.timezone)))
}

async fn logged_in<'a>(app: &'a App, email: &str, role: Role) -> Browser<'a> {
    app.user(email, role).await;
    let mut b = app.browser();
    b.login(email, PASSWORD).await;
    b
}

/// Opens a case for a new person; returns (case id, person id).
async fn open_case(
    app: &App,
    n: u32,
    channel: Channel,
    desk_source: Option<ContactChannel>,
    at: DateTime<Utc>,
) -> (Uuid, Uuid) {
    let person_id = app.store.vault().new_person().await.unwrap();
    let case_id = Uuid::new_v4();
    let submission = InquirySubmitted {
        opening: CaseOpening {
            case_id,
            person_id,
            reference: format!("2026-{n:04}"),
            channel,
            submitted_at: at,
            privacy_purpose: "目的".into(),
            desk_source,
        },
        inquiry: Inquiry {
            segment: Segment::parse("i_turn").unwrap(),
            age_group: None,
            gender: None,
            prefecture: Prefecture::parse("東京都").unwrap(),
            household: None,
            move_timing: None,
            topics: vec![Topic::parse("work").unwrap()],
            method: ConsultationMethod::parse("online").unwrap(),
            preferred_dates: vec![],
            source: None,
            newsletter: false,
            personal: Personal::Known(InquiryPersonal {
                name: PersonName::parse(&format!("移住 希望{n}")).unwrap(),
                name_kana: Kana::parse("イジュウ キボウ").unwrap(),
                email: Email::parse(&format!("case{n}@example.jp")).unwrap(),
                phone: None,
                postal_code: None,
                city: None,
                hometown: None,
                children_ages: None,
                message: None,
            }),
        },
    };
    let cmd = ConsultationCommand::SubmitInquiry {
        submission,
        mails: vec![],
    };
    kujira_store::execute::<Consultation>(
        &app.store,
        &StreamName::new("consultation", case_id),
        &CommandContext::new("applicant"),
        None,
        |s| Consultation::decide(s, &cmd),
    )
    .await
    .unwrap();
    (case_id, person_id)
}

async fn work(app: &App, case_id: Uuid, command: CaseCommand, at: DateTime<Utc>) {
    let cmd = ConsultationCommand::Work { command, at };
    kujira_store::execute::<Consultation>(
        &app.store,
        &StreamName::new("consultation", case_id),
        &CommandContext::new("staff:test"),
        None,
        |s| Consultation::decide(s, &cmd),
    )
    .await
    .unwrap();
}

async fn schedule_tour(app: &App, starts: DateTime<Utc>, capacity: u32, at: DateTime<Utc>) -> Uuid {
    let id = Uuid::new_v4();
    let details = TourDetails {
        title: "体験ツアー".into(),
        kind: TourKind::DayTrip,
        starts_at: starts,
        ends_at: starts + chrono::Duration::hours(6),
        meeting_place: String::new(),
        capacity_parties: capacity,
        max_people: None,
        fee_yen: 0,
        deadline: None,
        description: String::new(),
        audience: String::new(),
    };
    app.state
        .tours()
        .execute(
            id,
            TourCommand::Schedule {
                tour_id: id,
                details,
                publish: true,
                at,
            },
            &Actor::new("cli"),
        )
        .await
        .unwrap();
    id
}

async fn sign_up(
    app: &App,
    tour: Uuid,
    person: Uuid,
    adults: u8,
    children: u8,
    at: DateTime<Utc>,
) -> Uuid {
    let id = Uuid::new_v4();
    let input = SignUpInput {
        name: "参加 太郎".into(),
        name_kana: "サンカ タロウ".into(),
        email: format!("p{id}@example.jp"),
        email_confirm: None,
        phone: "090-0000-0000".into(),
        prefecture: "東京都".into(),
        adults: adults.to_string(),
        children: children.to_string(),
        children_ages: String::new(),
        transport: String::new(),
        needs: String::new(),
        source: String::new(),
        consent: true,
    };
    let sign_up = input.validate(id).unwrap().for_person(person);
    app.state
        .tours()
        .execute(
            tour,
            TourCommand::SignUp { sign_up, at },
            &Actor::new("applicant"),
        )
        .await
        .unwrap();
    id
}

async fn tour_cmd(app: &App, tour: Uuid, cmd: TourCommand) {
    app.state
        .tours()
        .execute(tour, cmd, &Actor::new("staff:test"))
        .await
        .unwrap();
}

async fn mail(app: &App, n: i64, status: &str, at: DateTime<Utc>) {
    sqlx::query(
        "INSERT INTO mail_deliveries (key, stream_name, stream_version, position, template, \
           status, requested_at, sent_at, failed_at) \
         VALUES ($1, 'consultation-x', 1, $2, 't', $3, $4, \
           CASE WHEN $3 = 'sent' THEN $4 END, CASE WHEN $3 = 'failed' THEN $4 END)",
    )
    .bind(format!("k{n}"))
    .bind(n)
    .bind(status)
    .bind(at)
    .execute(&app.db.pool)
    .await
    .unwrap();
}

struct Scenario {
    erasable: Uuid,
}

async fn scenario(app: &App) -> Scenario {
    // FY2025.
    open_case(app, 1, Channel::Form, None, jst("2026-03-31T23:30:00")).await;
    let (_, b_person) = open_case(
        app,
        2,
        Channel::Desk,
        Some(ContactChannel::Fair),
        jst("2025-06-10T10:00:00"),
    )
    .await;
    let (c, _) = open_case(
        app,
        3,
        Channel::Desk,
        Some(ContactChannel::Phone),
        jst("2025-06-20T10:00:00"),
    )
    .await;
    let m = Move {
        move_in: NaiveDate::from_ymd_opt(2026, 3, 31).unwrap(),
        adults: 2,
        children: 1,
        applies_for_support: true,
    };
    work(
        app,
        c,
        CaseCommand::RecordMove(m),
        jst("2026-03-31T10:00:00"),
    )
    .await;
    // FY2026: one minute past midnight on April 1 is the new year.
    open_case(app, 4, Channel::Api, None, jst("2026-04-01T00:10:00")).await;
    let (e, e_person) = open_case(
        app,
        5,
        Channel::Desk,
        Some(ContactChannel::Counter),
        jst("2026-04-15T10:00:00"),
    )
    .await;
    work(
        app,
        e,
        CaseCommand::ChangePhase {
            to: Stage::Considering,
        },
        jst("2026-05-01T10:00:00"),
    )
    .await;
    work(
        app,
        e,
        CaseCommand::ChangePhase { to: Stage::Decided },
        jst("2026-06-01T10:00:00"),
    )
    .await;
    for (channel, at) in [
        (ContactChannel::Fair, "2026-05-01T11:00:00"),
        (ContactChannel::Phone, "2026-05-02T11:00:00"),
    ] {
        work(
            app,
            e,
            CaseCommand::LogContact {
                contact_id: Uuid::new_v4(),
                channel,
                occurred_at: jst(at),
                note: None,
            },
            jst("2026-05-03T09:00:00"),
        )
        .await;
    }
    let first = Move {
        move_in: NaiveDate::from_ymd_opt(2026, 8, 20).unwrap(),
        adults: 1,
        children: 0,
        applies_for_support: false,
    };
    work(
        app,
        e,
        CaseCommand::RecordMove(first),
        jst("2026-08-21T10:00:00"),
    )
    .await;
    // Corrected: it was September, and two people.
    let corrected = Move {
        move_in: NaiveDate::from_ymd_opt(2026, 9, 5).unwrap(),
        adults: 2,
        ..first
    };
    work(
        app,
        e,
        CaseCommand::RecordMove(corrected),
        jst("2026-09-06T10:00:00"),
    )
    .await;
    let (f, _) = open_case(app, 6, Channel::Form, None, jst("2026-05-10T10:00:00")).await;
    work(
        app,
        f,
        CaseCommand::Close {
            reason: CloseReason::GaveUp,
            note: None,
        },
        jst("2026-07-01T10:00:00"),
    )
    .await;

    // Tours: one in November 2025 without check-in, one in July 2026 with it.
    let t0 = schedule_tour(
        app,
        jst("2025-11-15T09:00:00"),
        5,
        jst("2025-10-01T09:00:00"),
    )
    .await;
    sign_up(app, t0, b_person, 1, 0, jst("2025-10-10T09:00:00")).await;
    let t1 = schedule_tour(
        app,
        jst("2026-07-18T09:00:00"),
        2,
        jst("2026-06-01T09:00:00"),
    )
    .await;
    let e_party = sign_up(app, t1, e_person, 2, 0, jst("2026-06-20T09:00:00")).await;
    let p2 = app.store.vault().new_person().await.unwrap();
    let p2_party = sign_up(app, t1, p2, 1, 1, jst("2026-06-20T10:00:00")).await;
    let p3 = app.store.vault().new_person().await.unwrap();
    sign_up(app, t1, p3, 1, 0, jst("2026-06-20T11:00:00")).await;
    for (s, attended) in [(e_party, true), (p2_party, false)] {
        tour_cmd(
            app,
            t1,
            TourCommand::RecordAttendance {
                sign_up_id: s,
                attended,
                at: jst("2026-07-18T08:50:00"),
            },
        )
        .await;
    }
    tour_cmd(
        app,
        t1,
        TourCommand::RecordFeedback {
            sign_up_id: e_party,
            satisfaction: 4,
            comments: None,
            at: jst("2026-07-19T10:00:00"),
        },
    )
    .await;

    // The form funnel.
    let events = app.store.events();
    let j1 = Uuid::new_v4();
    let at = jst("2026-04-02T10:00:00");
    for e in [
        FunnelEvent::FormViewed {
            form: FunnelForm::Inquiry,
            at,
        },
        FunnelEvent::ConfirmViewed {
            form: FunnelForm::Inquiry,
            at,
        },
        FunnelEvent::ConfirmViewed {
            form: FunnelForm::Inquiry,
            at,
        },
        FunnelEvent::Submitted {
            form: FunnelForm::Inquiry,
            at,
            case_id: Uuid::new_v4(),
        },
    ] {
        kujira_web::funnel::record(events, j1, &e).await;
    }
    kujira_web::funnel::record(
        events,
        Uuid::new_v4(),
        &FunnelEvent::FormViewed {
            form: FunnelForm::TourSignup,
            at: jst("2026-04-03T10:00:00"),
        },
    )
    .await;
    kujira_web::funnel::record(
        events,
        Uuid::new_v4(),
        &FunnelEvent::FormViewed {
            form: FunnelForm::Inquiry,
            at: jst("2026-03-31T23:50:00"),
        },
    )
    .await;

    // The outbox.
    mail(app, 1, "sent", jst("2026-04-01T00:05:00")).await;
    mail(app, 2, "sent", jst("2026-03-31T23:55:00")).await;
    mail(app, 3, "failed", jst("2026-05-03T10:00:00")).await;
    mail(app, 4, "pending", jst("2026-05-03T10:00:00")).await;

    projector(app).catch_up().await.unwrap();
    Scenario { erasable: e_person }
}

/// The CSV's rows by metric key.
fn rows(body: &str) -> (Vec<String>, std::collections::HashMap<String, Vec<String>>) {
    let text = body.strip_prefix('\u{feff}').expect("a BOM");
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let header = r.headers().unwrap().iter().map(str::to_owned).collect();
    let rows = r
        .records()
        .map(|rec| {
            let rec = rec.unwrap();
            (rec[0].to_owned(), rec.iter().map(str::to_owned).collect())
        })
        .collect();
    (header, rows)
}

/// Months April..March, then total, target, achievement.
fn line(rows: &std::collections::HashMap<String, Vec<String>>, key: &str) -> Vec<String> {
    rows.get(key).unwrap_or_else(|| panic!("no row {key}"))[2..].to_vec()
}

fn expect(months: [&str; 12], total: &str, target: &str, achievement: &str) -> Vec<String> {
    months
        .iter()
        .chain([total, target, achievement].iter())
        .map(|s| (*s).to_owned())
        .collect()
}

#[tokio::test]
async fn figures_of_two_fiscal_years_split_on_april_first_in_tokyo() {
    let app = app().await;
    scenario(&app).await;
    let mut admin = logged_in(&app, "a@example.jp", Role::Admin).await;

    // A target for FY2026, set on the settings page.
    let form = admin.get("/desk/kpi/targets?fy=2026").await;
    assert_eq!(form.status, StatusCode::OK);
    let version = form.input_value("version").unwrap();
    let bad = admin
        .post_form(
            "/desk/kpi/targets",
            &[
                ("fy", "2026"),
                ("version", &version),
                ("t_moved_households", "4.5"),
                ("t_tour_attendance_rate", "120"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad.body
            .contains("0以上の整数（半角数字）で入力してください。")
    );
    assert!(bad.body.contains("0〜100の数値"));
    assert!(bad.body.contains("value=\"4.5\""), "values kept");
    let ok = admin
        .post_form(
            "/desk/kpi/targets",
            &[
                ("fy", "2026"),
                ("version", &version),
                ("t_moved_households", "４"),
                ("t_funnel_overall_rate", "40"),
            ],
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
    // The same form again is stale.
    let stale = admin
        .post_form(
            "/desk/kpi/targets",
            &[
                ("fy", "2026"),
                ("version", &version),
                ("t_moved_households", "9"),
            ],
        )
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT);
    assert!(stale.body.contains("ほかの職員が先に"));

    let res = admin.get("/desk/kpi.csv?fy=2026").await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(res.body.contains("\r\n") && !res.body.replace("\r\n", "").contains('\n'));
    let (header, r) = rows(&res.body);
    let months = [
        "4月", "5月", "6月", "7月", "8月", "9月", "10月", "11月", "12月", "1月", "2月", "3月",
    ];
    let mut want = vec!["metric".to_owned(), "label".to_owned()];
    want.extend(months.iter().map(|m| (*m).to_owned()));
    want.extend(["total", "target", "achievement"].map(str::to_owned));
    assert_eq!(header, want);
    // Now is 2026-12-01: April to December are shown, January to March are to come.
    assert_eq!(
        line(&r, "inquiries_web"),
        expect(
            ["1", "1", "0", "0", "0", "0", "0", "0", "0", "", "", ""],
            "2",
            "",
            ""
        )
    );
    assert_eq!(
        line(&r, "inquiries_window"),
        expect(
            ["1", "0", "0", "0", "0", "0", "0", "0", "0", "", "", ""],
            "1",
            "",
            ""
        )
    );
    assert_eq!(
        line(&r, "inquiries_event"),
        expect(
            ["0", "0", "0", "0", "0", "0", "0", "0", "0", "", "", ""],
            "0",
            "",
            ""
        )
    );
    assert_eq!(line(&r, "contacts_event")[1], "1");
    assert_eq!(line(&r, "contacts_window")[1], "1");
    assert_eq!(
        line(&r, "moved_households"),
        expect(
            ["0", "0", "0", "0", "0", "1", "0", "0", "0", "", "", ""],
            "1",
            "4",
            "25.0"
        )
    );
    assert_eq!(
        line(&r, "moved_people"),
        expect(
            ["0", "0", "0", "0", "0", "2", "0", "0", "0", "", "", ""],
            "2",
            "",
            ""
        )
    );
    assert_eq!(line(&r, "tour_signups")[2], "3");
    assert_eq!(line(&r, "tour_signup_people")[2], "5");
    assert_eq!(
        line(&r, "tour_participants"),
        expect(
            ["0", "0", "0", "2", "0", "0", "0", "0", "0", "", "", ""],
            "2",
            "",
            ""
        )
    );
    assert_eq!(line(&r, "tour_participant_parties")[3], "1");
    assert_eq!(line(&r, "tour_attendance_rate")[3], "50.0");
    assert_eq!(
        line(&r, "tour_attendance_rate")[0],
        "",
        "no check-in in April"
    );
    assert_eq!(line(&r, "tour_feedback_avg")[3], "4.00");
    assert_eq!(line(&r, "funnel_form_views")[0], "2");
    assert_eq!(
        line(&r, "funnel_confirm_views")[0],
        "1",
        "a reload counts once"
    );
    assert_eq!(line(&r, "funnel_completions")[0], "1");
    assert_eq!(
        line(&r, "funnel_overall_rate")[12..],
        ["50.0", "40.0", "125.0"]
    );
    assert_eq!(line(&r, "emails_sent")[0], "1");
    assert_eq!(line(&r, "emails_failed")[1], "1");
    assert_eq!(line(&r, "emails_sent")[12], "1");
    assert_eq!(
        line(&r, "phase_gathering")[..9],
        ["4", "4", "4", "3", "3", "3", "3", "3", "3"]
    );
    assert_eq!(
        line(&r, "phase_moved")[..9],
        ["1", "1", "1", "1", "2", "2", "2", "2", "2"]
    );
    assert_eq!(line(&r, "phase_closed")[3], "1");
    assert_eq!(line(&r, "phase_entered_decided")[2], "1");
    // The cohort of FY2026: D, E, F; E toured, decided and moved (2 people).
    for (k, v) in [
        ("cohort_cases", "3"),
        ("cohort_cases_people", "4"),
        ("cohort_toured", "1"),
        ("cohort_toured_people", "2"),
        ("cohort_decided", "1"),
        ("cohort_moved", "1"),
        ("cohort_moved_people", "2"),
    ] {
        assert_eq!(line(&r, k)[12], v, "{k}");
        assert!(line(&r, k)[..12].iter().all(String::is_empty));
    }

    // FY2025: March 31 late evening belongs to it.
    let res = admin.get("/desk/kpi.csv?fy=2025").await;
    let (_, r) = rows(&res.body);
    let z = "0";
    assert_eq!(
        line(&r, "inquiries_web"),
        expect([z, z, z, z, z, z, z, z, z, z, z, "1"], "1", "", "")
    );
    assert_eq!(
        line(&r, "inquiries_event"),
        expect([z, z, "1", z, z, z, z, z, z, z, z, z], "1", "", ""),
        "June is the third month"
    );
    assert_eq!(line(&r, "inquiries_window")[2], "1");
    assert_eq!(line(&r, "moved_households")[11], "1");
    assert_eq!(line(&r, "moved_people")[11], "3");
    assert_eq!(
        line(&r, "tour_participants")[7],
        "1",
        "no check-in: the confirmed party"
    );
    assert_eq!(line(&r, "funnel_form_views")[11], "1");
    assert_eq!(line(&r, "emails_sent")[11], "1");
    assert_eq!(line(&r, "cohort_cases")[12], "3");
    assert_eq!(line(&r, "cohort_toured")[12], "1");
    assert_eq!(line(&r, "cohort_moved_people")[12], "3");

    // The dashboard: charts with titles, tables with the same figures.
    let page = admin.get("/desk/kpi?fy=2026").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("role=\"img\""));
    assert!(page.body.contains("<title id=\"chart-kgi-title\">"));
    assert!(page.body.contains("<caption>移住の実績（KGI）の月別の数値"));
    assert!(!page.body.contains("<script"));
    // Bad input: the page for this year, with a Japanese message.
    let bad = admin.get("/desk/kpi?fy=20x6").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.body
            .contains("年度は2000〜2100の西暦4桁で指定してください")
    );
    assert_eq!(
        admin.get("/desk/kpi.csv?fy=1").await.status,
        StatusCode::BAD_REQUEST
    );
}

/// `kpi_cases.tour_people`, kept by the projection, is what joining each case with
/// its person's tour parties gives (the cohort query did that join at every view).
async fn assert_tour_people_follow_the_parties(app: &App) {
    let rows: Vec<(uuid::Uuid, Option<i16>, Option<i16>)> = sqlx::query_as(
        "SELECT c.case_id, c.tour_people, took.people FROM kpi_cases c LEFT JOIN ( \
           SELECT p.person_id, max(p.adults + p.children) AS people \
           FROM kpi_tour_parties p JOIN kpi_tours t ON t.tour_id = p.tour_id \
           WHERE p.status = 'confirmed' AND p.attended IS DISTINCT FROM false AND NOT t.cancelled \
           GROUP BY p.person_id) took ON took.person_id = c.person_id ORDER BY c.case_id",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert!(
        rows.iter().any(|r| r.1.is_some()),
        "the scenario has a case whose person took a tour"
    );
    for (case, kept, joined) in rows {
        assert_eq!(kept, joined, "tour_people of case {case}");
    }
}

#[tokio::test]
async fn the_csv_is_byte_identical_before_and_after_an_erasure_and_a_rebuild_equals_live() {
    let app = app().await;
    let s = scenario(&app).await;
    let mut viewer = logged_in(&app, "v@example.jp", Role::Viewer).await;
    let before_26 = viewer.get("/desk/kpi.csv?fy=2026").await.body;
    let before_25 = viewer.get("/desk/kpi.csv?fy=2025").await.body;

    app.store.vault().destroy(s.erasable).await.unwrap();
    let now = app.clock_now();
    kujira_store::execute::<Person>(
        &app.store,
        &StreamName::new("person", s.erasable),
        &CommandContext::new("cli"),
        None,
        |state| {
            Person::decide(
                state,
                &(
                    PersonContext {
                        person_id: s.erasable,
                        at: now,
                    },
                    PersonCommand::Erase { rule: None },
                ),
            )
        },
    )
    .await
    .unwrap();
    let p = projector(&app);
    p.catch_up().await.unwrap();
    assert_eq!(viewer.get("/desk/kpi.csv?fy=2026").await.body, before_26);
    assert_eq!(viewer.get("/desk/kpi.csv?fy=2025").await.body, before_25);
    assert_tour_people_follow_the_parties(&app).await;

    let projection = KpiProjection::new(app.config.timezone);
    let live = kujira_projector::testing::projection_contents(&app.db.pool, &projection)
        .await
        .unwrap();
    p.rebuild(KpiProjection::NAME).await.unwrap();
    let rebuilt = kujira_projector::testing::projection_contents(&app.db.pool, &projection)
        .await
        .unwrap();
    assert_eq!(live, rebuilt);
    assert_eq!(viewer.get("/desk/kpi.csv?fy=2026").await.body, before_26);
}

#[tokio::test]
async fn every_role_sees_the_dashboard_and_only_admins_set_targets() {
    let app = app().await;
    for (email, role) in [
        ("a@example.jp", Role::Admin),
        ("c@example.jp", Role::Concierge),
        ("v@example.jp", Role::Viewer),
    ] {
        let mut b = logged_in(&app, email, role).await;
        let page = b.get("/desk/kpi").await;
        assert_eq!(page.status, StatusCode::OK, "{role:?}");
        assert!(page.body.contains("KPI（2026年度）"));
        let csv = b.get("/desk/kpi.csv?fy=2026").await;
        assert_eq!(csv.status, StatusCode::OK);
        assert!(
            csv.body
                .as_bytes()
                .starts_with(b"\xEF\xBB\xBFmetric,label,4\xE6\x9C\x88")
        );
        let targets = b.get("/desk/kpi/targets?fy=2026").await;
        let post = b
            .post_form(
                "/desk/kpi/targets",
                &[("fy", "2026"), ("version", "0"), ("t_emails_sent", "10")],
            )
            .await;
        if role == Role::Admin {
            assert_eq!(targets.status, StatusCode::OK);
            assert_eq!(post.status, StatusCode::SEE_OTHER);
            assert!(page.body.contains("目標値を設定する"));
        } else {
            assert_eq!(targets.status, StatusCode::FORBIDDEN);
            assert_eq!(post.status, StatusCode::FORBIDDEN);
            assert!(!page.body.contains("目標値を設定する"));
        }
    }
    // Anonymous: to the login page.
    let res = app.browser().get("/desk/kpi.csv").await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn the_mail_counters_follow_every_change_of_a_delivery() {
    let app = app().await;
    let pool = &app.db.pool;
    let at = jst("2026-05-31T23:40:00");
    mail(&app, 1, "sent", at).await;
    mail(&app, 2, "failed", at).await;
    mail(&app, 3, "pending", at).await;
    mail(&app, 4, "failed", jst("2026-06-02T09:00:00")).await;
    // A failed mail retried, then sent in June; a pending one sent; another cancelled.
    sqlx::query("UPDATE mail_deliveries SET status = 'pending', failed_at = NULL WHERE key = 'k4'")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE mail_deliveries SET status = 'sent', sent_at = $1 WHERE key IN ('k3', 'k4')",
    )
    .bind(jst("2026-06-03T10:00:00"))
    .execute(pool)
    .await
    .unwrap();
    // Claims and attempts leave the counters alone.
    sqlx::query("UPDATE mail_deliveries SET attempts = attempts + 1")
        .execute(pool)
        .await
        .unwrap();
    let counts = |from: &str, to: &str| {
        let (from, to) = (jst(from), jst(to));
        async move {
            kujira_scheduler::stats::mail_counts(pool, from, to, "Asia/Tokyo")
                .await
                .unwrap()
                .into_iter()
                .map(|m| (m.month.to_string(), m.sent, m.failed))
                .collect::<Vec<_>>()
        }
    };
    let by_rows = |from: &str, to: &str| {
        let (from, to) = (jst(from), jst(to));
        async move {
            sqlx::query_as::<_, (String, i64, i64)>(
                "SELECT to_char(m, 'YYYY-MM-DD'), sum(s)::int8, sum(f)::int8 FROM ( \
                   SELECT date_trunc('month', sent_at AT TIME ZONE 'Asia/Tokyo') m, 1 s, 0 f \
                   FROM mail_deliveries WHERE status = 'sent' AND sent_at >= $1 AND sent_at < $2 \
                   UNION ALL \
                   SELECT date_trunc('month', failed_at AT TIME ZONE 'Asia/Tokyo'), 0, 1 \
                   FROM mail_deliveries WHERE status = 'failed' AND failed_at >= $1 \
                     AND failed_at < $2) x GROUP BY 1 ORDER BY 1",
            )
            .bind(from)
            .bind(to)
            .fetch_all(pool)
            .await
            .unwrap()
        }
    };
    let year = ("2026-04-01T00:00:00", "2027-04-01T00:00:00");
    assert_eq!(
        counts(year.0, year.1).await,
        vec![
            ("2026-05-01".to_owned(), 1, 1),
            ("2026-06-01".to_owned(), 2, 0)
        ],
        "May: one sent and one failed at 23:40 in Tokyo; June: the retried and the pending one"
    );
    assert_eq!(counts(year.0, year.1).await, by_rows(year.0, year.1).await);
    sqlx::query("DELETE FROM mail_deliveries WHERE key = 'k1'")
        .execute(pool)
        .await
        .unwrap();
    assert_eq!(counts(year.0, year.1).await, by_rows(year.0, year.1).await);
    assert_eq!(
        counts("2026-06-01T00:00:00", "2026-07-01T00:00:00").await,
        vec![("2026-06-01".to_owned(), 2, 0)]
    );
}
