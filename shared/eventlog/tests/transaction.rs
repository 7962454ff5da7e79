//! Appending inside a transaction that also writes other tables: both commit
//! together or not at all, a lost race leaves the transaction usable, and readers
//! see the events only after the commit.

use kujira_eventlog::{
    Checkpoint, Error, EventStore, ExpectedVersion, Metadata, NewEvent, StreamName,
};
use kujira_pgembed::testing::TestDb;
use uuid::Uuid;

async fn store() -> (TestDb, EventStore) {
    let db = TestDb::new(&[&kujira_eventlog::MIGRATOR]).await;
    sqlx::query("CREATE TABLE side (n int NOT NULL)")
        .execute(&db.pool)
        .await
        .unwrap();
    let store = EventStore::new(db.pool.clone());
    (db, store)
}

fn event(n: u64) -> NewEvent {
    NewEvent {
        id: Uuid::now_v7(),
        event_type: "Counted".into(),
        data: serde_json::json!({ "n": n }),
        metadata: Metadata::new("test", Uuid::nil()),
    }
}

async fn side_rows(store: &EventStore) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM side")
        .fetch_one(store.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn rows_and_events_commit_together_and_readers_see_them_only_after() {
    let (_db, store) = store().await;
    let s = StreamName::new("counter", Uuid::now_v7());
    let mut tx = store.begin().await.unwrap();
    sqlx::query("INSERT INTO side VALUES (1)")
        .execute(tx.conn())
        .await
        .unwrap();
    let r = tx
        .append(&s, ExpectedVersion::NoStream, vec![event(1), event(2)])
        .await
        .unwrap();
    assert_eq!(r.stream_version, 2);
    assert!(!r.replayed);
    let r = tx
        .append(&s, ExpectedVersion::Exact(2), vec![event(3)])
        .await
        .unwrap();
    assert_eq!(r.stream_version, 3);
    // Not visible before the commit, neither to stream nor to global readers.
    assert_eq!(store.stream_version(&s).await.unwrap(), 0);
    assert!(
        store
            .read_all(Checkpoint::START, 10, None)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(side_rows(&store).await, 0);
    tx.commit().await.unwrap();
    assert_eq!(store.stream_version(&s).await.unwrap(), 3);
    assert_eq!(
        store
            .read_all(Checkpoint::START, 10, None)
            .await
            .unwrap()
            .len(),
        3
    );
    assert_eq!(side_rows(&store).await, 1);
}

#[tokio::test]
async fn dropping_the_transaction_rolls_back_both() {
    let (_db, store) = store().await;
    let s = StreamName::new("counter", Uuid::now_v7());
    {
        let mut tx = store.begin().await.unwrap();
        sqlx::query("INSERT INTO side VALUES (1)")
            .execute(tx.conn())
            .await
            .unwrap();
        tx.append(&s, ExpectedVersion::NoStream, vec![event(1)])
            .await
            .unwrap();
    }
    assert_eq!(store.stream_version(&s).await.unwrap(), 0);
    assert_eq!(side_rows(&store).await, 0);
}

#[tokio::test]
async fn a_lost_race_is_a_conflict_and_the_transaction_stays_usable() {
    let (_db, store) = store().await;
    let s = StreamName::new("counter", Uuid::now_v7());
    store
        .append(&s, ExpectedVersion::NoStream, vec![event(1)])
        .await
        .unwrap();
    let mut tx = store.begin().await.unwrap();
    // Expected "no stream", but it exists: the unique version key refuses it.
    let err = tx
        .append(&s, ExpectedVersion::NoStream, vec![event(2)])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict { actual: 1, .. }), "{err:?}");
    // Ahead of the stream: refused without a gap.
    let err = tx
        .append(&s, ExpectedVersion::Exact(5), vec![event(2)])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict { actual: 1, .. }), "{err:?}");
    // A reused event id elsewhere.
    let used = event(3);
    store
        .append(
            &StreamName::new("counter", Uuid::now_v7()),
            ExpectedVersion::NoStream,
            vec![used.clone()],
        )
        .await
        .unwrap();
    let err = tx
        .append(&s, ExpectedVersion::Exact(1), vec![used])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DuplicateEventId(_)), "{err:?}");
    // Still usable.
    sqlx::query("INSERT INTO side VALUES (1)")
        .execute(tx.conn())
        .await
        .unwrap();
    tx.append(&s, ExpectedVersion::Exact(1), vec![event(4)])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.stream_version(&s).await.unwrap(), 2);
    assert_eq!(side_rows(&store).await, 1);
}
