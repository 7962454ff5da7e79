//! The projector against a real PostgreSQL: exactly-once application, a failing
//! projection that stops without skipping, and two projectors racing.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use kujira_eventlog::{EventStore, ExpectedVersion, Metadata, NewEvent, RecordedEvent, StreamName};
use kujira_pgembed::testing::TestDb;
use kujira_projector::{Projection, Projector};
use uuid::Uuid;

/// Sums `n` of every `Counted` event into a table. Fails on the event whose `n`
/// equals `fail_on` (while it is set), to simulate a bug.
struct Sum {
    fail_on: Arc<AtomicI64>,
}

#[async_trait::async_trait]
impl Projection for Sum {
    fn name(&self) -> &'static str {
        "test_sum"
    }
    fn event_types(&self) -> Option<&'static [&'static str]> {
        Some(&["Counted"])
    }
    async fn apply(&self, tx: &mut sqlx::PgConnection, e: &RecordedEvent) -> anyhow::Result<()> {
        let n = e.data["n"].as_i64().unwrap_or_default();
        sqlx::query("UPDATE test_sum SET total = total + $1, events = events + 1")
            .bind(n)
            .execute(&mut *tx)
            .await?;
        anyhow::ensure!(n != self.fail_on.load(Ordering::SeqCst), "boom on {n}");
        Ok(())
    }
}

async fn setup() -> (TestDb, EventStore, Arc<AtomicI64>) {
    let db = TestDb::new(&[&kujira_eventlog::MIGRATOR]).await;
    sqlx::query("CREATE TABLE test_sum (total bigint NOT NULL, events bigint NOT NULL)")
        .execute(&db.pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO test_sum VALUES (0, 0)")
        .execute(&db.pool)
        .await
        .unwrap();
    let store = EventStore::new(db.pool.clone());
    (db, store, Arc::new(AtomicI64::new(-1)))
}

async fn append(store: &EventStore, ty: &str, ns: impl IntoIterator<Item = i64>) {
    let evs: Vec<NewEvent> = ns
        .into_iter()
        .map(|n| NewEvent {
            id: Uuid::now_v7(),
            event_type: ty.into(),
            data: serde_json::json!({ "n": n }),
            metadata: Metadata::new("test", Uuid::nil()),
        })
        .collect();
    store
        .append(
            &StreamName::new("sum", Uuid::now_v7()),
            ExpectedVersion::NoStream,
            evs,
        )
        .await
        .unwrap();
}

async fn totals(db: &TestDb) -> (i64, i64) {
    sqlx::query_as("SELECT total, events FROM test_sum")
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn applies_each_event_once_and_resumes_from_its_checkpoint() {
    let (db, store, fail_on) = setup().await;
    append(&store, "Counted", 1..=10).await;
    append(&store, "Ignored", [1000]).await;
    let projector = Projector::new(store.clone()).with(Sum {
        fail_on: fail_on.clone(),
    });
    assert_eq!(projector.catch_up().await.unwrap(), 10);
    assert_eq!(totals(&db).await, (55, 10));
    // Nothing new: nothing applied again.
    assert_eq!(projector.catch_up().await.unwrap(), 0);
    // A new projector (a restart) resumes from the durable checkpoint.
    append(&store, "Counted", [100]).await;
    let restarted = Projector::new(store.clone()).with(Sum { fail_on });
    assert_eq!(restarted.catch_up().await.unwrap(), 1);
    assert_eq!(totals(&db).await, (155, 11));
}

#[tokio::test]
async fn a_failing_projection_stops_loudly_and_never_skips() {
    let (db, store, fail_on) = setup().await;
    append(&store, "Counted", [1, 2, 3]).await;
    fail_on.store(2, Ordering::SeqCst);
    let projector = Projector::new(store.clone()).with(Sum {
        fail_on: fail_on.clone(),
    });
    let err = projector.catch_up().await.unwrap_err();
    let err = format!("{err:#}");
    assert!(err.contains("boom on 2"), "{err}");
    assert!(
        err.contains("projection test_sum failed: event Counted at position 2 of stream sum-"),
        "the error names the event: {err}"
    );
    // The whole batch rolled back with the checkpoint: no half-applied state.
    assert_eq!(totals(&db).await, (0, 0));
    // Once fixed, it applies everything exactly once.
    fail_on.store(-1, Ordering::SeqCst);
    assert_eq!(projector.catch_up().await.unwrap(), 3);
    assert_eq!(totals(&db).await, (6, 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_projectors_racing_never_apply_an_event_twice() {
    let (db, store, fail_on) = setup().await;
    let a = Projector::new(store.clone()).with(Sum {
        fail_on: fail_on.clone(),
    });
    let b = Projector::new(store.clone()).with(Sum { fail_on });
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for i in 0..200 {
                append(&store, "Counted", [i]).await;
            }
        })
    };
    let (ra, rb) = tokio::join!(
        async {
            let mut n = 0;
            for _ in 0..50 {
                n += a.catch_up().await.unwrap();
                tokio::task::yield_now().await;
            }
            n
        },
        async {
            let mut n = 0;
            for _ in 0..50 {
                n += b.catch_up().await.unwrap();
                tokio::task::yield_now().await;
            }
            n
        }
    );
    writer.await.unwrap();
    let rest = a.catch_up().await.unwrap();
    assert_eq!(ra + rb + rest, 200);
    assert_eq!(totals(&db).await, ((0..200).sum::<i64>(), 200));
}

/// A filtered projection moves its checkpoint past the events it does not want, so
/// it never scans them again, and still applies a later event it wants, once.
#[tokio::test]
async fn a_filtered_projection_moves_past_what_it_skips_and_misses_nothing() {
    let (db, store, fail_on) = setup().await;
    append(&store, "Counted", [1]).await;
    for _ in 0..10 {
        append(&store, "Ignored", 0..100).await;
    }
    let last_ignored: i64 = sqlx::query_scalar("SELECT max(position) FROM events")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    let projector = Projector::new(store.clone()).with(Sum { fail_on });
    assert_eq!(projector.catch_up().await.unwrap(), 1);
    let at = EventStore::checkpoint(&db.pool, "test_sum").await.unwrap();
    assert_eq!(
        at.position, last_ignored,
        "the checkpoint is past the 1,000 skipped events, not at the last wanted one"
    );
    // Nothing new: the next read starts after the skipped run and finds nothing.
    let batch = store.read_batch(at, 500, Some(&["Counted"])).await.unwrap();
    assert!(batch.events.is_empty());
    assert_eq!(batch.next, at);

    append(&store, "Counted", [10]).await;
    assert_eq!(projector.catch_up().await.unwrap(), 1);
    assert_eq!(
        totals(&db).await,
        (11, 2),
        "each wanted event applied exactly once"
    );
}

/// `status` reports the position, the lag in events and in seconds, and the state.
#[tokio::test]
async fn status_reports_position_lag_and_state() {
    use kujira_projector::ProjectionState;
    use std::time::Duration;

    let (db, store, fail_on) = setup().await;
    let projector = Projector::new(store.clone()).with(Sum { fail_on });
    let s = &projector.status().await.unwrap()[0];
    assert_eq!(s.state, ProjectionState::NotStarted);
    assert_eq!((s.position, s.lag_events, s.lag_seconds), (0, 0, 0.0));

    append(&store, "Counted", [1, 2, 3]).await;
    append(&store, "Ignored", [4]).await;
    // Recorded an hour ago, not applied yet.
    sqlx::query("UPDATE events SET recorded_at = now() - interval '1 hour'")
        .execute(&db.pool)
        .await
        .unwrap();
    let s = &projector.status().await.unwrap()[0];
    assert_eq!(s.lag_events, 3, "only the events of its types count");
    assert!(s.lag_seconds > 3500.0, "{s:?}");
    let problem = s.problem(Duration::from_secs(30)).unwrap();
    assert!(
        problem.contains("test_sum") && problem.contains("lags"),
        "{problem}"
    );

    projector.catch_up().await.unwrap();
    let s = &projector.status().await.unwrap()[0];
    assert_eq!(s.state, ProjectionState::CaughtUp);
    assert_eq!((s.lag_events, s.lag_seconds), (0, 0.0));
    assert_eq!(s.position, 4, "past the ignored event too");
    assert!(s.failure.is_none() && s.updated_at.is_some());
    assert_eq!(s.problem(Duration::from_secs(30)), None);
}

/// A projection that applies whole batches and fails without saying on which event
/// still gets an error, and a status, that name the event.
#[tokio::test]
async fn a_failing_batch_is_narrowed_down_to_its_event() {
    struct Batched;
    #[async_trait::async_trait]
    impl Projection for Batched {
        fn name(&self) -> &'static str {
            "batched"
        }
        async fn apply(&self, _: &mut sqlx::PgConnection, e: &RecordedEvent) -> anyhow::Result<()> {
            anyhow::ensure!(e.data["n"] != 3, "three is not allowed");
            Ok(())
        }
        async fn apply_batch(
            &self,
            _: &mut sqlx::PgConnection,
            events: &[RecordedEvent],
        ) -> anyhow::Result<()> {
            anyhow::ensure!(events.iter().all(|e| e.data["n"] != 3), "a batch failed");
            Ok(())
        }
    }
    let (_db, store, _) = setup().await;
    append(&store, "Counted", [1, 2, 3, 4]).await;
    let projector = Projector::new(store.clone()).with(Batched);
    let err = format!("{:#}", projector.catch_up().await.unwrap_err());
    assert!(
        err.contains("projection batched failed: event Counted at position 3 of stream sum-"),
        "{err}"
    );
    assert!(err.contains("three is not allowed"), "{err}");
    let s = &projector.status().await.unwrap()[0];
    let f = s.failure.as_ref().unwrap();
    assert_eq!(f.event.as_ref().map(|e| e.position), Some(3));
    assert_eq!(f.attempts, 1);
}
