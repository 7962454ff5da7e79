//! Missed runs: when the service comes back, each rule whose scheduled run fell in
//! the downtime runs at once, unless it is too late to matter (no reminder after the
//! tour started, no digest for a past day). Runs are recorded for `status`; a rule
//! that is off never runs.

mod mail_support;
mod rules_support;

use std::sync::Arc;
use std::time::Duration;

use kujira_config::{FixedClock, RuleName};
use kujira_scheduler::rules::keys;
use mail_support::DEADLINE;
use rules_support::*;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_missed_while_down_is_caught_up_on_start_unless_too_late() {
    let w = World::with(|k| (k == "KUJIRA_RULE_POST_MOVE").then(|| "off".into())).await;
    let soon = w
        .tour(
            jst("2026-12-03T10:00"),
            jst("2026-12-03T16:00"),
            5,
            jst("2026-11-01T09:00"),
        )
        .await;
    let started = w
        .tour(
            jst("2026-12-01T09:00"),
            jst("2026-12-01T15:00"),
            5,
            jst("2026-11-01T09:00"),
        )
        .await;
    let (in_time, _) = w.sign_up(soon, jst("2026-11-20T10:00")).await;
    let (too_late, _) = w.sign_up(started, jst("2026-11-20T10:00")).await;
    let case = w.case(jst("2026-10-30T09:00"), None).await;

    // The service ran until Thursday 11-26 10:00 ...
    let rules = w.rules();
    rules.run_all(jst("2026-11-26T10:00")).await.unwrap();
    let before = w.outbox_keys().await;
    assert!(
        before.iter().all(|k| k.starts_with("digest/2026-11-26")),
        "{before:?}"
    );

    // ... and comes back on Tuesday 12-01 at 09:30, after the tour that started at
    // 09:00 and after the 08:30 digest.
    let clock = FixedClock::new(jst("2026-12-01T09:30"));
    let shutdown = CancellationToken::new();
    let serving = tokio::spawn(w.rules().serve(Arc::new(clock.clone()), shutdown.clone()));
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let caught: i64 =
            sqlx::query_scalar("SELECT count(*) FROM rule_runs WHERE last_run_at = $1")
                .bind(jst("2026-12-01T09:30"))
                .fetch_one(&w.db.pool)
                .await
                .unwrap();
        if caught == 5 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the missed runs were not caught up ({caught} of 5)"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    tokio::time::timeout(DEADLINE, serving)
        .await
        .expect("the runner stops")
        .unwrap()
        .unwrap();

    let keys_now = w.outbox_keys().await;
    assert!(keys_now.contains(&keys::tour_reminder(soon, in_time)));
    assert!(
        !keys_now.contains(&keys::tour_reminder(started, too_late)),
        "no reminder after the tour started"
    );
    assert!(keys_now.contains(&keys::nurture(case.id, jst("2026-10-30T09:00"), 1)));
    // Today's digest, late but still today's; never Friday's or Monday's.
    assert!(keys_now.contains(&keys::digest(date("2026-12-01"), w.a().user_id)));
    for day in ["2026-11-27", "2026-11-30"] {
        assert!(
            !keys_now
                .iter()
                .any(|k| k.starts_with(&format!("digest/{day}"))),
            "{keys_now:?}"
        );
    }

    // Caught up: a second start runs nothing.
    assert!(
        w.rules()
            .catch_up_missed(jst("2026-12-01T09:31"))
            .await
            .unwrap()
            .is_empty()
    );
    // `status` shows each rule, and that post-move is off.
    let status = w.rules().status(jst("2026-12-01T09:31")).await.unwrap();
    let post_move = status
        .iter()
        .find(|s| s.rule == RuleName::PostMove)
        .unwrap();
    assert_eq!(
        (post_move.schedule.as_str(), post_move.last_run),
        ("off", None)
    );
    let digest = status.iter().find(|s| s.rule == RuleName::Digest).unwrap();
    assert_eq!(digest.last_run, Some(jst("2026-12-01T09:30")));
    assert_eq!(digest.next_run, Some(jst("2026-12-02T08:30")));
}
