//! Guarded appends made at the same moment share one statement (group commit):
//! each still gets its own outcome, and a batch that fails as a whole is written
//! member by member.
//!
//! The tests hold the batch writer's statements on an advisory lock that every
//! guard takes, so that the appends behind them queue up and go in together when
//! the lock is let go.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use kujira_eventlog::{
    AppendResult, Error, EventStore, ExpectedVersion, Guard, GuardValue, Metadata, NewEvent,
    StreamName,
};
use kujira_pgembed::testing::TestDb;
use sqlx::Row;
use uuid::Uuid;

const LOCK: i64 = 7_342_001;

/// Holds while the test holds [`LOCK`].
const GATED: &str = "guard_gate AS (SELECT pg_advisory_xact_lock_shared(7342001)), \
     guard AS (SELECT 1 FROM guard_gate)";
/// Never holds, once the lock is let go.
const GATED_NEVER: &str = "guard_gate AS (SELECT pg_advisory_xact_lock_shared(7342001)), \
     guard AS (SELECT 1 FROM guard_gate WHERE false)";
/// Holds for the first append that claims `$7`.
const GATED_CLAIM: &str = "guard_gate AS (SELECT pg_advisory_xact_lock_shared(7342001)), \
     guard AS (INSERT INTO claims (k) SELECT $7 FROM guard_gate \
               ON CONFLICT (k) DO NOTHING RETURNING 1)";

fn events(n: usize) -> Vec<NewEvent> {
    (1..=n)
        .map(|i| NewEvent {
            id: Uuid::now_v7(),
            event_type: "Counted".into(),
            data: serde_json::json!({ "n": i }),
            metadata: Metadata::new("test", Uuid::nil()),
        })
        .collect()
}

/// A database with the table [`GATED_CLAIM`] claims rows in.
async fn with_claims() -> TestDb {
    let db = TestDb::new(&[&kujira_eventlog::MIGRATOR]).await;
    sqlx::query("CREATE TABLE claims (k uuid PRIMARY KEY)")
        .execute(&db.pool)
        .await
        .unwrap();
    db
}

/// A guard that holds for the first append that claims `k`.
fn claim(k: Uuid) -> Guard {
    Guard {
        ctes: GATED_CLAIM,
        values: vec![GuardValue::Uuid(k)],
    }
}

fn guard(ctes: &'static str) -> Guard {
    Guard {
        ctes,
        values: vec![],
    }
}

/// Waits, with a deadline, until `n` statements wait on [`LOCK`]. On a connection of
/// its own: the appends may hold every other one.
async fn until_waiting(conn: &mut sqlx::PgConnection, n: i64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted \
             AND objid::bigint = $1 \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .bind(LOCK)
        .fetch_one(&mut *conn)
        .await
        .unwrap();
        if waiting >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {waiting} of {n} statements came to wait on the lock"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

type Outcome = Result<AppendResult, Error>;

/// Starts every append in `plan`, each past its queueing before this returns, the
/// lock held meanwhile; lets the lock go once the writer's statements wait on it;
/// returns every outcome by stream.
async fn together(
    db: &TestDb,
    store: &EventStore,
    plan: Vec<(StreamName, Vec<NewEvent>, Guard)>,
) -> HashMap<StreamName, Vec<Outcome>> {
    let mut lock = db.pool.acquire().await.unwrap();
    let mut watch = db.pool.acquire().await.unwrap();
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(LOCK)
        .execute(&mut *lock)
        .await
        .unwrap();
    let queued = Arc::new(AtomicUsize::new(0));
    let total = plan.len();
    let mut tasks = Vec::new();
    for (stream, evs, g) in plan {
        let store = store.clone();
        let queued = queued.clone();
        tasks.push(tokio::spawn(async move {
            let mut append = Box::pin(store.append_guarded(&stream, evs, &g));
            // The first poll puts the append in the writer's queue.
            let first = futures::poll!(&mut append);
            queued.fetch_add(1, Ordering::SeqCst);
            let outcome = match first {
                std::task::Poll::Ready(o) => o,
                std::task::Poll::Pending => append.await,
            };
            (stream.clone(), outcome)
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while queued.load(Ordering::SeqCst) < total {
        assert!(Instant::now() < deadline, "the appends were not all queued");
        tokio::task::yield_now().await;
    }
    // The writer's statements in flight wait on the lock; the rest queue behind them.
    until_waiting(&mut watch, 1).await;
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(LOCK)
        .execute(&mut *lock)
        .await
        .unwrap();
    let mut out: HashMap<StreamName, Vec<Outcome>> = HashMap::new();
    for t in tasks {
        let (stream, outcome) = tokio::time::timeout(Duration::from_secs(30), t)
            .await
            .expect("an append never answered")
            .unwrap();
        out.entry(stream).or_default().push(outcome);
    }
    out
}

/// The transaction of each event of `stream`, with its version and position.
async fn written(pool: &sqlx::PgPool, stream: &StreamName) -> Vec<(i64, i64, i64)> {
    sqlx::query(
        "SELECT transaction_id, stream_version, position FROM events \
         WHERE stream_name = $1 ORDER BY stream_version",
    )
    .bind(stream.as_str())
    .fetch_all(pool)
    .await
    .unwrap()
    .iter()
    .map(|r| {
        (
            r.get("transaction_id"),
            r.get("stream_version"),
            r.get("position"),
        )
    })
    .collect()
}

#[tokio::test]
async fn appends_made_together_share_a_statement_and_each_gets_its_own_outcome() {
    let db = TestDb::new(&[&kujira_eventlog::MIGRATOR]).await;
    let store = EventStore::new(db.pool.clone());
    let mut plan = Vec::new();
    let mut holding = Vec::new();
    for i in 0..40 {
        let stream = StreamName::new("counter", Uuid::now_v7());
        let g = if i % 4 == 3 { GATED_NEVER } else { GATED };
        if g == GATED {
            holding.push(stream.clone());
        }
        plan.push((stream, events(1 + i % 3), guard(g)));
    }
    let sizes: HashMap<StreamName, usize> =
        plan.iter().map(|(s, e, _)| (s.clone(), e.len())).collect();
    let outcomes = together(&db, &store, plan).await;

    let mut transactions = HashSet::new();
    for (stream, outcome) in &outcomes {
        let size = sizes[stream];
        let rows = written(&db.pool, stream).await;
        if holding.contains(stream) {
            let r = outcome[0].as_ref().expect("a holding guard appends");
            assert_eq!(r.stream_version, size as u64);
            assert!(!r.replayed);
            assert_eq!(rows.len(), size, "{stream}: every event, once");
            assert_eq!(r.first_position, rows[0].2);
            assert_eq!(r.last_position, rows[size - 1].2);
            // Positions follow versions, as in an append of its own.
            assert!(
                rows.windows(2)
                    .all(|w| w[0].2 < w[1].2 && w[0].1 + 1 == w[1].1)
            );
            transactions.extend(rows.iter().map(|r| r.0));
        } else {
            assert!(
                matches!(outcome[0], Err(Error::GuardFailed)),
                "{stream}: {:?}",
                outcome[0]
            );
            assert!(rows.is_empty(), "{stream}: a failed guard writes nothing");
        }
    }
    assert!(
        transactions.len() < holding.len(),
        "the {} appends went in as {} transactions: none were written together",
        holding.len(),
        transactions.len()
    );
}

#[tokio::test]
async fn a_batch_that_fails_as_a_whole_is_written_append_by_append() {
    let db = TestDb::new(&[&kujira_eventlog::MIGRATOR]).await;
    let store = EventStore::new(db.pool.clone());
    // A stream opened before, and the very same append again (a retried request);
    // a stream that exists, opened again with other events (a conflict).
    let replayed = StreamName::new("counter", Uuid::now_v7());
    let first = events(2);
    let earlier = store
        .append(&replayed, ExpectedVersion::NoStream, first.clone())
        .await
        .unwrap();
    let taken = StreamName::new("counter", Uuid::now_v7());
    store
        .append(&taken, ExpectedVersion::NoStream, events(1))
        .await
        .unwrap();
    let mut plan = vec![
        (replayed.clone(), first, guard(GATED)),
        (taken.clone(), events(2), guard(GATED)),
    ];
    let fresh: Vec<StreamName> = (0..12)
        .map(|_| StreamName::new("counter", Uuid::now_v7()))
        .collect();
    plan.extend(fresh.iter().map(|s| (s.clone(), events(2), guard(GATED))));
    // The replay and the conflict queue behind the first statements, with others.
    plan.rotate_left(2);
    let outcomes = together(&db, &store, plan).await;

    let again = outcomes[&replayed][0].as_ref().expect("a replay answers");
    assert!(again.replayed);
    assert_eq!(again.first_position, earlier.first_position);
    assert!(
        matches!(outcomes[&taken][0], Err(Error::Conflict { actual: 1, .. })),
        "{:?}",
        outcomes[&taken][0]
    );
    assert_eq!(written(&db.pool, &taken).await.len(), 1);
    for s in &fresh {
        assert!(outcomes[s][0].is_ok(), "{s}: {:?}", outcomes[s][0]);
        assert_eq!(written(&db.pool, s).await.len(), 2);
    }
}

#[tokio::test]
async fn two_appends_of_one_batch_that_claim_the_same_thing_get_one_claim() {
    let db = with_claims().await;
    let store = EventStore::new(db.pool.clone());
    let claimed = Uuid::now_v7();
    let streams: Vec<StreamName> = (0..10)
        .map(|_| StreamName::new("counter", Uuid::now_v7()))
        .collect();
    let plan = streams
        .iter()
        .map(|s| (s.clone(), events(1), claim(claimed)))
        .collect();
    let outcomes = together(&db, &store, plan).await;

    let won: Vec<&StreamName> = streams.iter().filter(|s| outcomes[*s][0].is_ok()).collect();
    assert_eq!(won.len(), 1, "one append claims it: {outcomes:?}");
    for s in &streams {
        if outcomes[s][0].is_err() {
            assert!(matches!(outcomes[s][0], Err(Error::GuardFailed)));
            assert!(written(&db.pool, s).await.is_empty());
        }
    }
    let claims: i64 = sqlx::query_scalar("SELECT count(*) FROM claims")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(claims, 1);
}

#[tokio::test]
async fn twin_appends_in_one_batch_write_once_and_only_the_writer_is_told_it_wrote() {
    let db = with_claims().await;
    let store = EventStore::new(db.pool.clone());
    // A double click: the same case opened by requests that each chose a new person
    // for the address (the claim) and carry the very same event ids.
    let claimed = Uuid::now_v7();
    let twin = events(3);
    let stream = StreamName::new("counter", Uuid::now_v7());
    let plan = (0..6)
        .map(|_| (stream.clone(), twin.clone(), claim(claimed)))
        .collect();
    let outcomes = together(&db, &store, plan).await;

    let outcomes = &outcomes[&stream];
    let wrote: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(r) if !r.replayed))
        .collect();
    assert_eq!(wrote.len(), 1, "one twin wrote the events: {outcomes:?}");
    for o in outcomes {
        assert!(
            matches!(o, Ok(_) | Err(Error::GuardFailed)),
            "a twin is told it wrote, it replayed, or its guard failed: {o:?}"
        );
    }
    assert_eq!(written(&db.pool, &stream).await.len(), 3);
}
