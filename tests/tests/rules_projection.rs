//! The rules' projection: it follows the cases, tours and persons as their
//! deciders do, and a rebuild from the log gives the same tables as the live run.

mod mail_support;
mod rules_support;

use kujira_domain::casework::{CaseCommand, CloseReason, Move};
use kujira_domain::inquiry::Stage;
use kujira_projector::testing::projection_contents;
use kujira_scheduler::RulesProjection;
use rules_support::*;
use sqlx::Row;

#[tokio::test]
async fn the_projection_follows_the_facts_and_rebuilds_to_the_same_tables() {
    let w = World::new().await;
    let a = w.a().user_id;
    let case = w.case(jst("2026-09-01T10:00"), Some(a)).await;
    w.contact(case, jst("2026-09-02T11:00")).await;
    // A contact logged later but that happened earlier does not move the clock back.
    w.work(
        case,
        CaseCommand::LogContact {
            contact_id: uuid::Uuid::new_v4(),
            channel: kujira_domain::casework::ContactChannel::Email,
            occurred_at: jst("2026-09-01T12:00"),
            note: None,
        },
        jst("2026-09-03T09:00"),
    )
    .await;
    w.work(
        case,
        CaseCommand::ChangePhase {
            to: Stage::Considering,
        },
        jst("2026-09-04T09:00"),
    )
    .await;
    w.work(
        case,
        CaseCommand::SetNextAction {
            due: Some(date("2026-09-20")),
        },
        jst("2026-09-04T09:05"),
    )
    .await;
    w.work(
        case,
        CaseCommand::RecordMove(Move {
            move_in: date("2026-10-01"),
            adults: 2,
            children: 2,
            applies_for_support: true,
        }),
        jst("2026-10-02T09:00"),
    )
    .await;
    let closed = w.case(jst("2026-09-01T10:00"), None).await;
    w.work(
        closed,
        CaseCommand::Close {
            reason: CloseReason::GaveUp,
            note: None,
        },
        jst("2026-09-05T10:00"),
    )
    .await;
    let tour = w
        .tour(
            jst("2026-12-04T10:00"),
            jst("2026-12-04T16:00"),
            1,
            jst("2026-11-01T09:00"),
        )
        .await;
    let (first, _) = w.sign_up(tour, jst("2026-11-20T10:00")).await;
    let (second, _) = w.sign_up(tour, jst("2026-11-20T11:00")).await;
    w.cancel_sign_up(tour, first, jst("2026-11-21T10:00")).await;
    w.attendance(tour, second, true, jst("2026-12-04T09:30"))
        .await;
    w.projector.catch_up().await.unwrap();

    let row = sqlx::query(
        "SELECT phase, concierge, last_contact_at, moved_at, move_in, applies_for_support, \
           next_action, nurture_from, last_activity_at FROM rule_cases WHERE case_id = $1",
    )
    .bind(case.id)
    .fetch_one(&w.db.pool)
    .await
    .unwrap();
    assert_eq!(row.get::<String, _>("phase"), "moved");
    assert_eq!(row.get::<Option<uuid::Uuid>, _>("concierge"), Some(a));
    assert_eq!(
        row.get::<Option<chrono::DateTime<chrono::Utc>>, _>("last_contact_at"),
        Some(jst("2026-09-02T11:00"))
    );
    assert_eq!(
        row.get::<Option<chrono::DateTime<chrono::Utc>>, _>("moved_at"),
        Some(jst("2026-10-02T09:00"))
    );
    assert!(row.get::<bool, _>("applies_for_support"));
    assert_eq!(
        row.get::<chrono::DateTime<chrono::Utc>, _>("nurture_from"),
        jst("2026-10-02T09:00")
    );
    let closed_at: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT closed_at FROM rule_cases WHERE case_id = $1")
            .bind(closed.id)
            .fetch_one(&w.db.pool)
            .await
            .unwrap();
    assert_eq!(closed_at, Some(jst("2026-09-05T10:00")));
    let t = sqlx::query(
        "SELECT confirmed_parties, waitlist_length, attendance_recorded FROM rule_tours \
         WHERE tour_id = $1",
    )
    .bind(tour)
    .fetch_one(&w.db.pool)
    .await
    .unwrap();
    assert_eq!(
        (
            t.get::<i32, _>("confirmed_parties"),
            t.get::<i32, _>("waitlist_length"),
            t.get::<bool, _>("attendance_recorded")
        ),
        (1, 0, true)
    );
    let promoted: Option<chrono::DateTime<chrono::Utc>> = sqlx::query_scalar(
        "SELECT promoted_at FROM rule_tour_parties WHERE tour_id = $1 AND sign_up_id = $2",
    )
    .bind(tour)
    .bind(second)
    .fetch_one(&w.db.pool)
    .await
    .unwrap();
    assert_eq!(promoted, Some(jst("2026-11-21T10:00")));

    let live = projection_contents(&w.db.pool, &RulesProjection::new())
        .await
        .unwrap();
    let report = w.projector.rebuild(RulesProjection::NAME).await.unwrap();
    let rebuilt = projection_contents(&w.db.pool, &RulesProjection::new())
        .await
        .unwrap();
    assert_eq!(live, rebuilt, "{report:?}");
}
