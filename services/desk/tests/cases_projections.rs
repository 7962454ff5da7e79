//! The desk's case projections (`desk.persons`, `desk.cases`) against a real
//! PostgreSQL: what they keep, erasure, and rebuilds equal to the live tables.

mod cases_support;
mod support;

use cases_support::{Applicant, World};
use chrono::NaiveDate;
use kujira_domain::casework::{CaseCommand, CloseReason, ContactChannel, Move};
use kujira_domain::inquiry::Stage;
use kujira_domain::person::{ContactDetails, OptOutVia, PersonCommand};
use kujira_domain::values::{Email, Kana, PersonName, Phone};
use kujira_projector::Projection;
use kujira_projector::testing::projection_contents;

async fn contents(w: &World) -> Vec<std::collections::BTreeMap<String, Vec<serde_json::Value>>> {
    let (persons, cases) = kujira_desk::case_projections(&w.app.store, w.app.config.timezone);
    vec![
        projection_contents(&w.app.db.pool, &persons).await.unwrap(),
        projection_contents(&w.app.db.pool, &cases).await.unwrap(),
    ]
}

async fn rebuild_all(w: &World) {
    for name in [
        kujira_desk::PersonsProjection::NAME,
        kujira_desk::CasesProjection::NAME,
    ] {
        w.projector.rebuild(name).await.unwrap();
    }
}

/// The board's counters (`desk_case_counts`) hold what counting `desk_cases` gives.
async fn assert_counters_match_the_cases(w: &World) {
    let rows = |sql: &'static str| async move {
        let mut v: Vec<(String, chrono::NaiveDate, i64)> =
            sqlx::query_as(sql).fetch_all(&w.app.db.pool).await.unwrap();
        v.sort();
        v
    };
    let kept = rows("SELECT counter, day, n FROM desk_case_counts").await;
    let counted = rows(
        "SELECT counter, day, count(*) FROM ( \
           SELECT CASE WHEN closed_at IS NOT NULL THEN 'closed' ELSE phase END AS counter, \
                  DATE '1970-01-01' AS day FROM desk_cases WHERE merged_into IS NULL \
           UNION ALL SELECT 'next_action', next_action FROM desk_cases \
             WHERE closed_at IS NULL AND merged_into IS NULL AND next_action IS NOT NULL \
           UNION ALL SELECT 'first_contact', first_contact_due FROM desk_cases \
             WHERE closed_at IS NULL AND merged_into IS NULL AND contacts = 0 \
               AND first_contact_due IS NOT NULL) c GROUP BY counter, day",
    )
    .await;
    assert!(!kept.is_empty(), "the counters were never written");
    assert_eq!(kept, counted, "the board's counters drifted from the cases");
}

#[tokio::test]
async fn the_projections_follow_cases_and_persons_and_a_rebuild_gives_the_same_tables() {
    let w = World::new().await;
    let taro = Applicant::new("柏崎 太郎", "カシワザキ タロウ", "taro@example.jp");
    let hanako = Applicant::new("新潟 花子", "ニイガタ ハナコ", "hanako@example.jp");
    let (a, ref_a) = w.inquiry(&taro).await;
    let (b, _) = w.inquiry(&hanako).await;
    // Taro comes back with a new phone number: the same person, the latest details.
    let (a2, _) = w
        .inquiry(&Applicant {
            phone: "0257-21-2334".into(),
            ..taro.clone()
        })
        .await;
    let staff = format!("staff:{}", w.concierge);
    w.work(
        a,
        &staff,
        CaseCommand::Assign {
            concierge: Some(w.concierge),
        },
    )
    .await;
    w.work(
        a,
        &staff,
        CaseCommand::ChangePhase {
            to: Stage::Considering,
        },
    )
    .await;
    w.work(
        a,
        &staff,
        CaseCommand::LogContact {
            contact_id: uuid::Uuid::now_v7(),
            channel: ContactChannel::Phone,
            occurred_at: w.now(),
            note: None,
        },
    )
    .await;
    let due = NaiveDate::from_ymd_opt(2026, 12, 10).unwrap();
    w.work(a, &staff, CaseCommand::SetNextAction { due: Some(due) })
        .await;
    w.work(
        b,
        &staff,
        CaseCommand::RecordMove(Move {
            move_in: NaiveDate::from_ymd_opt(2027, 4, 1).unwrap(),
            adults: 2,
            children: 1,
            applies_for_support: true,
        }),
    )
    .await;
    // The second case of Taro is a duplicate: closed, then merged into the first.
    w.work(
        a2,
        &staff,
        CaseCommand::Close {
            reason: CloseReason::Duplicate,
            note: None,
        },
    )
    .await;
    let person_a = w.person_of(a).await;
    w.work(
        a2,
        &staff,
        CaseCommand::MergeInto {
            into: a,
            into_person: person_a,
        },
    )
    .await;
    w.sync().await;
    assert_counters_match_the_cases(&w).await;

    let row = w.case_row(a).await;
    assert_eq!(row["reference"], ref_a.as_str());
    assert_eq!(row["phase"], "considering");
    assert_eq!(row["concierge"], w.concierge.to_string());
    assert_eq!(row["contacts"], 1);
    assert_eq!(row["next_action"], "2026-12-10");
    assert_eq!(row["segment"], "i_turn");
    assert_eq!(row["topics"], serde_json::json!(["work", "housing"]));
    assert_eq!(row["summary"], "仕事と住まいについて相談したいです。");
    // Opened Tuesday 2026-12-01: due three business days later, Friday the 4th.
    assert_eq!(row["first_contact_due"], "2026-12-04");
    let moved = w.case_row(b).await;
    assert_eq!(
        (moved["phase"].as_str(), moved["moved_adults"].as_i64()),
        (Some("moved"), Some(2))
    );
    let dup = w.case_row(a2).await;
    assert_eq!(dup["merged_into"], a.to_string());
    assert_eq!(dup["closed_reason"], "duplicate");

    let p = w.person_row(person_a).await;
    assert_eq!(p["name"], "柏崎 太郎");
    assert_eq!(p["phone"], "0257-21-2334", "the latest submission's phone");
    assert_eq!(p["name_key"], "柏崎太郎");
    assert_eq!(p["kana_key"], "カシワザキタロウ");
    assert_eq!(p["phone_key"], "0257212334");
    assert!(
        p["search_grams"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("n:太郎"))
    );
    // The two cases of Taro are the same person here; a merge link names the case.
    let links: i64 =
        sqlx::query_scalar("SELECT count(*) FROM desk_person_links WHERE case_id = $1")
            .bind(a2)
            .fetch_one(&w.app.db.pool)
            .await
            .unwrap();
    assert_eq!(links, 1);

    // A correction wins over the submissions before it; flags follow the person.
    let person_b = w.person_of(b).await;
    w.on_person(
        person_b,
        PersonCommand::Correct {
            details: ContactDetails {
                name: PersonName::parse("新潟 華子").unwrap(),
                name_kana: Kana::parse("ニイガタ ハナコ").unwrap(),
                email: Email::parse("hanako@example.com").unwrap(),
                phone: Some(Phone::parse("025-123-4567").unwrap()),
                postal_code: None,
                address: None,
            },
            before: None,
        },
    )
    .await;
    w.on_person(
        person_b,
        PersonCommand::OptOut {
            via: OptOutVia::Staff,
        },
    )
    .await;
    w.on_person(
        person_b,
        PersonCommand::RecordBounce {
            code: 550,
            delivery_key: "k".into(),
        },
    )
    .await;
    w.on_person(person_b, PersonCommand::Suspend).await;
    w.work(a2, &staff, CaseCommand::UndoMerge).await;
    w.sync().await;
    let p = w.person_row(person_b).await;
    assert_eq!(
        (p["name"].as_str(), p["email"].as_str()),
        (Some("新潟 華子"), Some("hanako@example.com"))
    );
    assert_eq!(
        (
            p["opted_out"].as_bool(),
            p["bouncing"].as_bool(),
            p["suspended"].as_bool()
        ),
        (Some(true), Some(true), Some(true))
    );
    assert!(w.case_row(a2).await["merged_into"].is_null());
    assert_counters_match_the_cases(&w).await;

    let live = contents(&w).await;
    rebuild_all(&w).await;
    assert_eq!(
        contents(&w).await,
        live,
        "a rebuild from the log gives the same tables"
    );
}

#[tokio::test]
async fn an_erased_person_is_scrubbed_live_and_after_a_rebuild() {
    let w = World::new().await;
    let (case_id, _) = w
        .inquiry(&Applicant::new(
            "消去 される",
            "ショウキョ サレル",
            "gone@example.jp",
        ))
        .await;
    let (kept, _) = w
        .inquiry(&Applicant::new("残る 人", "ノコル ヒト", "kept@example.jp"))
        .await;
    w.sync().await;
    let person = w.person_of(case_id).await;
    assert_eq!(w.person_row(person).await["email"], "gone@example.jp");
    w.erase(person).await;
    w.sync().await;
    let p = w.person_row(person).await;
    for col in [
        "name",
        "name_kana",
        "email",
        "phone",
        "postal_code",
        "address",
        "name_key",
        "kana_key",
        "email_key",
        "phone_key",
    ] {
        assert!(p[col].is_null(), "{col} is scrubbed: {p}");
    }
    assert_eq!(p["erased"], true);
    assert_eq!(p["search_grams"], serde_json::json!([]));
    let row = w.case_row(case_id).await;
    assert!(row["summary"].is_null());
    assert_eq!(row["segment"], "i_turn", "statistics stay");
    assert!(
        w.case_row(kept).await["summary"].is_string(),
        "others keep theirs"
    );

    let live = contents(&w).await;
    rebuild_all(&w).await;
    assert_eq!(
        contents(&w).await,
        live,
        "the rebuild is as scrubbed as the live tables"
    );
    let dump = serde_json::to_string(&contents(&w).await).unwrap();
    assert!(!dump.contains("gone@example.jp") && !dump.contains("消去"));
}

#[tokio::test]
async fn the_declared_ddl_is_the_migration() {
    let w = World::new().await;
    let (persons, cases) = kujira_desk::case_projections(&w.app.store, w.app.config.timezone);
    for p in [&persons as &dyn Projection, &cases] {
        // A rebuild of an empty log compares the DDL with the live tables first.
        w.projector.rebuild(p.name()).await.unwrap();
    }
}
