//! Exactly once per key: two schedulers (two pools, as two processes would have)
//! evaluate every rule at the same instant, twice over, then two mailers send at
//! once. Each key is queued by one event and sent once.

mod mail_support;
mod rules_support;

use std::collections::HashSet;

use kujira_config::RuleName;
use kujira_domain::casework::Move;
use kujira_store::Store;
use rules_support::*;
use sqlx::Row;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_schedulers_at_once_queue_and_send_each_key_once() {
    let w = World::new().await;
    let tour = w
        .tour(
            jst("2026-12-04T10:00"),
            jst("2026-12-04T16:00"),
            5,
            jst("2026-11-01T09:00"),
        )
        .await;
    for h in ["10", "11", "12"] {
        w.sign_up(tour, jst(&format!("2026-11-20T{h}:00"))).await;
    }
    for _ in 0..4 {
        w.case(jst("2026-10-30T09:00"), None).await;
    }
    let moved = w.case(jst("2025-10-01T09:00"), Some(w.a().user_id)).await;
    w.work(
        moved,
        kujira_domain::casework::CaseCommand::RecordMove(Move {
            move_in: date("2026-03-01"),
            adults: 1,
            children: 0,
            applies_for_support: true,
        }),
        jst("2026-03-02T09:00"),
    )
    .await;

    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(8)
        .connect_with(w.db.options.clone())
        .await
        .unwrap();
    let other = Store::open(pool, &master_key()).await.unwrap();
    let at = jst("2026-12-01T10:00");
    let mut runs = tokio::task::JoinSet::new();
    for rules in [w.rules(), w.rules_on(&other), w.rules(), w.rules_on(&other)] {
        runs.spawn(async move { rules.run_all(at).await.unwrap() });
    }
    let mut queued: Vec<String> = Vec::new();
    let mut failed = 0;
    while let Some(r) = runs.join_next().await {
        for report in r.unwrap() {
            queued.extend(report.queued);
            failed += report.failed;
        }
    }
    assert_eq!(failed, 0);
    let unique: HashSet<&String> = queued.iter().collect();
    assert_eq!(unique.len(), queued.len(), "a key queued twice: {queued:?}");
    // 3 reminders, 4 nurture mails, 1 移住支援金 note, 2 digests.
    let outbox = w.outbox_keys().await;
    assert_eq!(outbox.len(), 10, "{outbox:?}");
    let mut sorted = queued.clone();
    sorted.sort();
    assert_eq!(sorted, outbox);

    // The log holds one event per mail.
    let dupes: Vec<String> = sqlx::query(
        "SELECT data->>'key' AS key FROM events \
         WHERE event_type IN ('MailQueued', 'DigestCompiled', 'SupportWindowNoted') \
         GROUP BY event_type, data->>'key' HAVING count(*) > 1",
    )
    .fetch_all(&w.db.pool)
    .await
    .unwrap()
    .iter()
    .map(|r| r.get("key"))
    .collect();
    assert!(dupes.is_empty(), "{dupes:?}");

    // A later tick of both finds everything done.
    for rules in [w.rules(), w.rules_on(&other)] {
        for r in rules.run_all(jst("2026-12-01T10:01")).await.unwrap() {
            assert!(r.queued.is_empty(), "{r:?}");
        }
    }
    assert!(
        w.rules()
            .run(RuleName::Digest, at)
            .await
            .unwrap()
            .queued
            .is_empty()
    );

    // Two mailers at once: each mail arrives once.
    let smtp = SmtpServer::started();
    w.clock.set(jst("2026-12-01T10:02"));
    let (one, two) = (w.mailer(smtp.port), w.mailer(smtp.port));
    let (a, b) = tokio::join!(one.deliver_due(), two.deliver_due());
    let sent = a.unwrap().sent.len() + b.unwrap().sent.len();
    assert_eq!(sent, 10);
    assert_eq!(smtp.received().len(), 10);
}
