//! `Projector::run` against a real PostgreSQL: every projection runs on its own, a
//! failing or panicking one stops at its event (named in its durable status),
//! retries with backoff and never skips, and the others carry on; a stalled one
//! shows its lag.

use std::sync::atomic::Ordering;
use std::time::Duration;

use kujira_eventlog::EventStore;
use kujira_pgembed::testing::TestDb;
use kujira_projector::{ProjectionState, ProjectionStatus, Projector};
use tokio_util::sync::CancellationToken;

mod support;
use support::{Recorder, append, eventually};

async fn status_of(projector: &Projector, name: &str) -> ProjectionStatus {
    projector
        .status()
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.name == name)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_projection_stops_only_itself_and_resumes_without_skipping() {
    let db = TestDb::new(&[&kujira_eventlog::MIGRATOR]).await;
    let store = EventStore::new(db.pool.clone());
    // Registered first: before, the first failing projection stopped every later one.
    let flaky = Recorder::new("flaky", Some(&["Counted"]));
    let panicky = Recorder::new("panicky", None);
    let healthy = Recorder::new("healthy", None);
    let marked = Recorder::new("marked", Some(&["Marked"]));
    for r in [&flaky, &panicky, &healthy, &marked] {
        r.create(&db.pool).await;
    }
    flaky.fail_on.store(13, Ordering::SeqCst);
    panicky.panic_on.store(7, Ordering::SeqCst);
    let (fail_on, panic_on) = (flaky.fail_on.clone(), panicky.panic_on.clone());
    let projector = Projector::new(store.clone())
        .with(flaky)
        .with(panicky)
        .with(healthy)
        .with(marked)
        .retry_backoff(Duration::from_millis(20), Duration::from_millis(100));

    let shutdown = CancellationToken::new();
    let running = tokio::spawn(projector.clone().run(shutdown.clone()));

    let counted = append(&store, "Counted", 1..=20).await;
    let marks = append(&store, "Marked", [100, 101]).await;
    let all: Vec<i64> = counted.iter().chain(&marks).copied().collect();

    // The healthy projections apply everything although two others are failing.
    eventually("the healthy projections apply every event", || async {
        Recorder::seen(&db.pool, "healthy").await == all
            && Recorder::seen(&db.pool, "marked").await == marks
    })
    .await;

    // The failing one stops at its event, names it, and keeps retrying.
    eventually("flaky records its failure, with retries", || async {
        let s = status_of(&projector, "flaky").await;
        s.state == ProjectionState::Failed && s.failure.is_some_and(|f| f.attempts >= 3)
    })
    .await;
    let s = status_of(&projector, "flaky").await;
    let f = s.failure.clone().unwrap();
    let event = f.event.clone().expect("the failure names its event");
    assert_eq!(event.event_type, "Counted");
    assert_eq!(event.position, counted[12], "the event with n = 13");
    assert!(event.stream_name.starts_with("sum-"), "{event:?}");
    assert!(f.error.contains("boom on 13"), "{}", f.error);
    assert!(f.next_retry_at.is_some());
    let problem = s.problem(Duration::from_secs(30)).unwrap();
    assert!(
        problem.contains("flaky") && problem.contains(&format!("position {}", counted[12])),
        "{problem}"
    );
    // Nothing of the failing batch was kept, and the checkpoint did not pass it.
    assert!(Recorder::seen(&db.pool, "flaky").await.is_empty());
    assert!(s.position < counted[12]);

    let p = status_of(&projector, "panicky").await;
    assert_eq!(p.state, ProjectionState::Failed);
    let pf = p.failure.unwrap();
    assert!(pf.error.contains("panicked"), "{}", pf.error);
    assert_eq!(pf.event.map(|e| e.position), None, "a panic names no event");

    // Once fixed, both apply every event exactly once (the primary key would fail
    // on a second application) and report that they are caught up.
    fail_on.store(-1, Ordering::SeqCst);
    panic_on.store(-1, Ordering::SeqCst);
    eventually("the fixed projections catch up", || async {
        Recorder::seen(&db.pool, "flaky").await == counted
            && Recorder::seen(&db.pool, "panicky").await == all
    })
    .await;
    eventually("their status is clean again", || async {
        let s = status_of(&projector, "flaky").await;
        s.state == ProjectionState::CaughtUp && s.failure.is_none()
    })
    .await;
    for s in projector.status().await.unwrap() {
        assert_eq!(s.lag_events, 0, "{s:?}");
        assert_eq!(s.problem(Duration::from_secs(30)), None);
    }

    shutdown.cancel();
    running.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_projection_is_cut_off_and_the_others_carry_on() {
    let db = TestDb::new(&[&kujira_eventlog::MIGRATOR]).await;
    let store = EventStore::new(db.pool.clone());
    let stuck = Recorder::new("stuck", None);
    let free = Recorder::new("free", None);
    stuck.create(&db.pool).await;
    free.create(&db.pool).await;
    stuck.hang_on.store(5, Ordering::SeqCst);
    let hang_on = stuck.hang_on.clone();
    // A hung step holds an xid, and so the watermark of every reader in the
    // cluster: the stall limit is what bounds it.
    let projector = Projector::new(store.clone())
        .with(stuck)
        .with(free)
        .stall_limit(Duration::from_millis(500))
        .retry_backoff(Duration::from_millis(20), Duration::from_millis(100));
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(projector.clone().run(shutdown.clone()));
    let positions = append(&store, "Counted", [5]).await;
    let more = append(&store, "Counted", [6, 7]).await;
    let all: Vec<i64> = positions.iter().chain(&more).copied().collect();

    eventually("the other projection carries on past the stall", || async {
        Recorder::seen(&db.pool, "free").await == all
    })
    .await;
    // The first attempt hangs in a batch; the retries go one event at a time and
    // name the event it hangs on.
    eventually(
        "the stalled projection is recorded as failed on its event",
        || async {
            let s = status_of(&projector, "stuck").await;
            s.state == ProjectionState::Failed
                && s.failure
                    .is_some_and(|f| f.event.map(|e| e.position) == Some(positions[0]))
        },
    )
    .await;
    let s = status_of(&projector, "stuck").await;
    let f = s.failure.clone().unwrap();
    assert!(f.error.contains("stuck for"), "{}", f.error);
    assert!(
        s.problem(Duration::from_secs(30))
            .unwrap()
            .contains("stuck")
    );

    hang_on.store(-1, Ordering::SeqCst);
    eventually(
        "the stalled projection carries on once the cause is gone",
        || async { Recorder::seen(&db.pool, "stuck").await == all },
    )
    .await;
    shutdown.cancel();
    running.await.unwrap().unwrap();
}
