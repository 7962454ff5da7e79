//! `Projector::rebuild` against a real PostgreSQL: the rebuilt tables equal the
//! ones built live, table for table; the live tables keep answering during the
//! rebuild while a live runner in another "process" (its own pool) and writers keep
//! going; and what cannot be rebuilt is refused with a clear message.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use kujira_eventlog::{EventStore, RecordedEvent};
use kujira_pgembed::testing::TestDb;
use kujira_projector::testing::projection_contents;
use kujira_projector::{Projection, Projector, Rebuild};
use sqlx::postgres::PgPoolOptions;
use tokio_util::sync::CancellationToken;

mod support;
use support::{LEDGER_DDL, Ledger, append};

async fn ledger_db() -> (TestDb, EventStore) {
    let db = TestDb::new(&[&kujira_eventlog::MIGRATOR]).await;
    // What the projection's migration would do.
    sqlx::raw_sql(LEDGER_DDL).execute(&db.pool).await.unwrap();
    let store = EventStore::new(db.pool.clone());
    (db, store)
}

async fn shadow_schemas(db: &TestDb) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT nspname::text FROM pg_namespace \
         WHERE nspname LIKE 'rebuild\\_%' OR nspname LIKE 'retired\\_%'",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rebuild_equals_the_live_build_and_the_live_tables_keep_answering() {
    let (db, store) = ledger_db().await;
    for i in 0..40 {
        append(&store, "Counted", [i, i * 2, -i]).await;
        append(&store, "Ignored", [i]).await;
    }
    let projector = Projector::new(store.clone()).with(Ledger);
    projector.catch_up().await.unwrap();
    let built_live = projection_contents(&db.pool, &Ledger).await.unwrap();
    assert_eq!(built_live["ledger_entries"].len(), 120);

    let report = projector.rebuild("ledger").await.unwrap();
    assert_eq!(report.events_applied, 120);
    assert_eq!(
        projection_contents(&db.pool, &Ledger).await.unwrap(),
        built_live,
        "the rebuilt tables equal the ones built live, row for row"
    );
    assert!(shadow_schemas(&db).await.is_empty());

    // Now with everything going on at once: `serve` in another process (a pool of
    // its own) runs the live projection, writers append, readers read the live
    // tables through prepared statements.
    let other_pool = PgPoolOptions::new()
        .max_connections(5)
        .connect_with(db.options.clone())
        .await
        .unwrap();
    let serving = Projector::new(EventStore::new(other_pool.clone())).with(Ledger);
    let shutdown = CancellationToken::new();
    let runner = tokio::spawn(serving.run(shutdown.clone()));

    let (started_tx, started) = tokio::sync::oneshot::channel();
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut started_tx = Some(started_tx);
            for i in 0..150 {
                append(&store, "Counted", [1000 + i]).await;
                if i == 20 {
                    started_tx.take().map(|t| t.send(()));
                }
                if i % 3 == 0 {
                    append(&store, "Ignored", [i]).await;
                }
            }
        })
    };
    let stop_reading = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let reader = {
        let pool = other_pool.clone();
        let stop = stop_reading.clone();
        let reads = reads.clone();
        tokio::spawn(async move {
            let mut errors = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let r: Result<(i64, Option<i64>), _> =
                    sqlx::query_as("SELECT count(*), sum(total)::bigint FROM ledger_streams")
                        .fetch_one(&pool)
                        .await;
                let e: Result<i64, _> =
                    sqlx::query_scalar("SELECT count(*) FROM ledger_entries WHERE n >= $1")
                        .bind(-1_000_000i64)
                        .fetch_one(&pool)
                        .await;
                match (r, e) {
                    (Ok(_), Ok(_)) => {
                        reads.fetch_add(1, Ordering::SeqCst);
                    }
                    (r, e) => errors.push(format!("{:?} {:?}", r.err(), e.err())),
                }
                tokio::task::yield_now().await;
            }
            errors
        })
    };

    started.await.unwrap();
    let report = projector.rebuild("ledger").await.unwrap();
    let reads_during = reads.load(Ordering::SeqCst);
    writer.await.unwrap();
    stop_reading.store(true, Ordering::SeqCst);
    let errors = reader.await.unwrap();
    assert!(
        errors.is_empty(),
        "the live tables kept answering: {errors:?}"
    );
    assert!(reads_during > 0, "the readers read during the rebuild");
    assert!(report.events_applied >= 120, "{report}");

    // The live runner carries on from the swapped checkpoint: every event exactly
    // once (the unique position would fail on a second application).
    projector.catch_up().await.unwrap();
    shutdown.cancel();
    runner.await.unwrap().unwrap();
    let expected: Vec<i64> = sqlx::query_scalar(
        "SELECT position FROM events WHERE event_type = 'Counted' ORDER BY position",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let entries: Vec<i64> =
        sqlx::query_scalar("SELECT position FROM ledger_entries ORDER BY position")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(entries, expected);
    let mismatched: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM ledger_streams s FULL JOIN ( \
           SELECT stream_name, sum((data->>'n')::bigint) AS total, count(*) AS events \
           FROM events WHERE event_type = 'Counted' GROUP BY stream_name) e \
         ON e.stream_name = s.stream \
         WHERE s.total IS DISTINCT FROM e.total OR s.events IS DISTINCT FROM e.events",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(mismatched, 0, "every stream's total is right");

    // And what the live runner built on top of the swapped tables equals a rebuild
    // from scratch, identity values included.
    let live_after = projection_contents(&db.pool, &Ledger).await.unwrap();
    projector.rebuild("ledger").await.unwrap();
    assert_eq!(
        projection_contents(&db.pool, &Ledger).await.unwrap(),
        live_after
    );
    assert!(shadow_schemas(&db).await.is_empty());
    other_pool.close().await;
}

/// The same name and tables as [`Ledger`], but a DDL that forgot an index the
/// migrations created: the rebuild must refuse before touching anything.
struct DriftedLedger;

#[async_trait::async_trait]
impl Projection for DriftedLedger {
    fn name(&self) -> &'static str {
        "ledger"
    }
    fn event_types(&self) -> Option<&'static [&'static str]> {
        Some(&["Counted"])
    }
    async fn apply(&self, tx: &mut sqlx::PgConnection, e: &RecordedEvent) -> anyhow::Result<()> {
        Ledger.apply(tx, e).await
    }
    fn rebuild(&self) -> Rebuild {
        Rebuild::Tables {
            tables: &["ledger_streams", "ledger_entries"],
            ddl: "CREATE TABLE ledger_streams (
                    stream text NOT NULL, total bigint NOT NULL DEFAULT 0,
                    events integer NOT NULL, last_at timestamptz NOT NULL,
                    CONSTRAINT ledger_streams_pkey PRIMARY KEY (stream),
                    CONSTRAINT ledger_streams_events_positive CHECK (events > 0));
                  CREATE TABLE ledger_entries (
                    id bigint GENERATED ALWAYS AS IDENTITY, position bigint NOT NULL,
                    stream text NOT NULL, n bigint NOT NULL, kind text NOT NULL DEFAULT 'counted',
                    CONSTRAINT ledger_entries_pkey PRIMARY KEY (id),
                    CONSTRAINT ledger_entries_position_key UNIQUE (position));",
        }
    }
}

struct Outbox;

#[async_trait::async_trait]
impl Projection for Outbox {
    fn name(&self) -> &'static str {
        "outbox"
    }
    async fn apply(&self, _: &mut sqlx::PgConnection, _: &RecordedEvent) -> anyhow::Result<()> {
        Ok(())
    }
    fn rebuild(&self) -> Rebuild {
        Rebuild::Refused("its rows carry delivery state that the event log does not hold")
    }
}

#[tokio::test]
async fn what_cannot_be_rebuilt_is_refused_clearly_and_nothing_changes() {
    let (db, store) = ledger_db().await;
    append(&store, "Counted", [1, 2, 3]).await;
    let live = Projector::new(store.clone()).with(Ledger);
    live.catch_up().await.unwrap();
    let before = projection_contents(&db.pool, &Ledger).await.unwrap();

    let drifted = Projector::new(store.clone())
        .with(DriftedLedger)
        .with(Outbox);
    let err = format!("{:#}", drifted.rebuild("ledger").await.unwrap_err());
    assert!(err.contains("no longer matches its live tables"), "{err}");
    assert!(
        err.ends_with(
            "ledger_entries: live has `index CREATE INDEX ledger_entries_by_n ON \
             ledger_entries USING btree (n, \"position\")`"
        ),
        "names the difference, and only it: {err}"
    );
    assert_eq!(
        projection_contents(&db.pool, &Ledger).await.unwrap(),
        before
    );
    assert!(
        shadow_schemas(&db).await.is_empty(),
        "the shadow is dropped"
    );

    let err = format!("{:#}", drifted.rebuild("outbox").await.unwrap_err());
    assert_eq!(
        err,
        "projection outbox cannot be rebuilt: its rows carry delivery state that the event \
         log does not hold"
    );
    let err = format!("{:#}", drifted.rebuild("nope").await.unwrap_err());
    assert!(
        err.contains("no projection is named \"nope\"; known: ledger, outbox"),
        "{err}"
    );

    // The live projection still runs on its untouched tables.
    append(&store, "Counted", [4]).await;
    live.catch_up().await.unwrap();
    assert_eq!(
        projection_contents(&db.pool, &Ledger).await.unwrap()["ledger_entries"].len(),
        4
    );
}
