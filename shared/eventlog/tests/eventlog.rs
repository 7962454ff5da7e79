//! The event log against a real PostgreSQL: optimistic concurrency, idempotent
//! re-appends, and gap-free global reading under concurrent writers.

use std::collections::HashSet;

use kujira_eventlog::{
    Checkpoint, Error, EventStore, ExpectedVersion, Metadata, NewEvent, StreamName,
};
use kujira_pgembed::testing::TestDb;
use uuid::Uuid;

async fn store() -> (TestDb, EventStore) {
    let db = TestDb::new(&[&kujira_eventlog::MIGRATOR]).await;
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

#[tokio::test]
async fn appends_and_reads_back_a_stream_in_order() {
    let (_db, store) = store().await;
    let s = StreamName::new("counter", Uuid::now_v7());
    let r = store
        .append(&s, ExpectedVersion::NoStream, vec![event(1), event(2)])
        .await
        .unwrap();
    assert_eq!(r.stream_version, 2);
    assert!(!r.replayed);
    let r = store
        .append(&s, ExpectedVersion::Exact(2), vec![event(3)])
        .await
        .unwrap();
    assert_eq!(r.stream_version, 3);
    let read = store.read_stream(&s, 0, 100).await.unwrap();
    let ns: Vec<u64> = read.iter().map(|e| e.data["n"].as_u64().unwrap()).collect();
    assert_eq!(ns, vec![1, 2, 3]);
    let versions: Vec<u64> = read.iter().map(|e| e.stream_version).collect();
    assert_eq!(versions, vec![1, 2, 3]);
    assert_eq!(read[0].metadata.actor, "test");
    assert_eq!(read[0].metadata.schema_version, 1);
}

#[tokio::test]
async fn a_stale_expected_version_is_a_typed_conflict() {
    let (_db, store) = store().await;
    let s = StreamName::new("counter", Uuid::now_v7());
    store
        .append(&s, ExpectedVersion::NoStream, vec![event(1)])
        .await
        .unwrap();
    let err = store
        .append(&s, ExpectedVersion::NoStream, vec![event(2)])
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Conflict { actual: 1, .. }),
        "got {err:?}"
    );
    let err = store
        .append(&s, ExpectedVersion::Exact(5), vec![event(2)])
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "got {err:?}");
    // `Any` appends after whatever is there.
    let r = store
        .append(&s, ExpectedVersion::Any, vec![event(2)])
        .await
        .unwrap();
    assert_eq!(r.stream_version, 2);
}

#[tokio::test]
async fn n_concurrent_writers_with_exact_get_exactly_one_winner_per_version() {
    let (_db, store) = store().await;
    let s = StreamName::new("race", Uuid::now_v7());
    const WRITERS: usize = 16;
    const VERSIONS: u64 = 10;
    let mut wins_per_version = Vec::new();
    for version in 0..VERSIONS {
        let tasks: Vec<_> = (0..WRITERS)
            .map(|w| {
                let store = store.clone();
                let s = s.clone();
                tokio::spawn(async move {
                    store
                        .append(&s, ExpectedVersion::Exact(version), vec![event(w as u64)])
                        .await
                })
            })
            .collect();
        let mut wins = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(r) => {
                    assert_eq!(r.stream_version, version + 1);
                    wins += 1;
                }
                Err(e) => assert!(e.is_conflict(), "a loser must get a conflict, got {e:?}"),
            }
        }
        wins_per_version.push(wins);
    }
    assert_eq!(wins_per_version, vec![1; VERSIONS as usize]);
    assert_eq!(store.stream_version(&s).await.unwrap(), VERSIONS);
}

#[tokio::test]
async fn re_appending_the_same_events_returns_the_earlier_result() {
    let (_db, store) = store().await;
    let s = StreamName::new("idem", Uuid::now_v7());
    let batch = vec![event(1), event(2)];
    let first = store
        .append(&s, ExpectedVersion::NoStream, batch.clone())
        .await
        .unwrap();
    let again = store
        .append(&s, ExpectedVersion::NoStream, batch.clone())
        .await
        .unwrap();
    assert!(again.replayed);
    assert_eq!(
        (
            again.stream_version,
            again.first_position,
            again.last_position
        ),
        (
            first.stream_version,
            first.first_position,
            first.last_position
        )
    );
    // `Any` replays too, and nothing was written twice.
    let any = store
        .append(&s, ExpectedVersion::Any, batch.clone())
        .await
        .unwrap();
    assert!(any.replayed);
    assert_eq!(store.read_stream(&s, 0, 10).await.unwrap().len(), 2);

    // The same ids on another stream are refused, not silently accepted.
    let other = StreamName::new("idem", Uuid::now_v7());
    let err = store
        .append(&other, ExpectedVersion::NoStream, batch)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DuplicateEventId(_)), "got {err:?}");
    assert_eq!(store.stream_version(&other).await.unwrap(), 0);
}

#[tokio::test]
async fn domain_events_round_trip_through_encode_and_decode() {
    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    #[serde(tag = "type", content = "data")]
    enum Ev {
        Opened { by: String },
        Closed,
    }
    let (_db, store) = store().await;
    let s = StreamName::new("door", Uuid::now_v7());
    let m = Metadata::new("test", Uuid::now_v7());
    let evs = vec![
        NewEvent::encode(
            Uuid::now_v7(),
            &Ev::Opened {
                by: "柏崎".into()
            },
            m.clone(),
        )
        .unwrap(),
        NewEvent::encode(Uuid::now_v7(), &Ev::Closed, m).unwrap(),
    ];
    assert_eq!(evs[0].event_type, "Opened");
    store
        .append(&s, ExpectedVersion::NoStream, evs)
        .await
        .unwrap();
    let (loaded, version): (Vec<Ev>, u64) = store.load(&s).await.unwrap();
    assert_eq!(version, 2);
    assert_eq!(
        loaded,
        vec![
            Ev::Opened {
                by: "柏崎".into()
            },
            Ev::Closed
        ]
    );
}

/// Many writers on many streams while one reader tails the global log: the
/// reader must see every event exactly once, in one order, with no gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tailing_reader_sees_every_event_exactly_once_under_concurrent_writers() {
    let (_db, store) = store().await;
    const WRITERS: usize = 24;
    const PER_WRITER: usize = 150; // 3,600 events, some in batches

    let reader = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut sub = store.subscribe().await;
            let mut seen: Vec<(Checkpoint, Uuid)> = Vec::new();
            let mut cp = Checkpoint::START;
            let mut idle_rounds = 0;
            loop {
                let batch = store.read_all(cp, 97, None).await.unwrap();
                if batch.is_empty() {
                    if seen.len() >= WRITERS * PER_WRITER {
                        idle_rounds += 1;
                        if idle_rounds > 3 {
                            return seen;
                        }
                    }
                    sub.wait().await;
                    continue;
                }
                for e in batch {
                    assert!(e.checkpoint() > cp, "the order must be strictly increasing");
                    cp = e.checkpoint();
                    seen.push((cp, e.event_id));
                }
            }
        })
    };

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut written = Vec::new();
                let mut i = 0;
                while i < PER_WRITER {
                    // Mix single events and small batches across several streams.
                    let n = if i % 10 == 0 {
                        3.min(PER_WRITER - i)
                    } else {
                        1
                    };
                    let s = StreamName::new("load", format!("{w}-{}", i % 7));
                    let evs: Vec<NewEvent> = (0..n).map(|k| event((i + k) as u64)).collect();
                    written.extend(evs.iter().map(|e| e.id));
                    store.append(&s, ExpectedVersion::Any, evs).await.unwrap();
                    i += n;
                }
                written
            })
        })
        .collect();
    let mut all_written = HashSet::new();
    for w in writers {
        all_written.extend(w.await.unwrap());
    }
    let seen = reader.await.unwrap();

    let seen_ids: Vec<Uuid> = seen.iter().map(|(_, id)| *id).collect();
    let unique: HashSet<Uuid> = seen_ids.iter().copied().collect();
    assert_eq!(unique.len(), seen_ids.len(), "no duplicates");
    assert_eq!(unique, all_written, "no gaps: every written event was read");

    // A second reader from the start sees exactly the same order.
    let mut again = Vec::new();
    let mut cp = Checkpoint::START;
    loop {
        let batch = store.read_all(cp, 1000, None).await.unwrap();
        let Some(last) = batch.last() else { break };
        cp = last.checkpoint();
        again.extend(batch.iter().map(|e| e.event_id));
    }
    assert_eq!(again, seen_ids, "one consistent order for every reader");
}

#[tokio::test]
async fn a_running_transaction_holds_readers_back_and_the_lag_shows_it() {
    let (db, store) = store().await;
    let s = StreamName::new("lag", Uuid::now_v7());
    store
        .append(&s, ExpectedVersion::NoStream, vec![event(1)])
        .await
        .unwrap();

    // An open transaction that has written (and so holds an xid) ...
    let mut open = db.pool.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO events (event_id, stream_name, stream_version, event_type, data, metadata) \
         VALUES ($1, 'lag-open', 1, 'Counted', '{}', '{\"actor\":\"t\",\"correlation_id\":\"00000000-0000-0000-0000-000000000000\",\"schema_version\":1}')",
    )
    .bind(Uuid::now_v7())
    .execute(&mut *open)
    .await
    .unwrap();
    // ... then a later append commits.
    let later = event(2);
    let later_id = later.id;
    store
        .append(&s, ExpectedVersion::Exact(1), vec![later])
        .await
        .unwrap();

    // xids are cluster-wide: other tests' transactions may hold readers back a little
    // more, so only what must hold is asserted, and waits have a deadline.
    let read = || async { store.read_all(Checkpoint::START, 100, None).await.unwrap() };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let visible = read().await;
        assert!(
            visible.iter().all(|e| e.event_id != later_id),
            "the later commit waits behind the open transaction"
        );
        if visible.len() == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the first event never became readable"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let lag = store.reader_lag().await.unwrap();
    assert!(lag.events_held_back >= 1, "{lag:?}");

    open.commit().await.unwrap();
    let visible = loop {
        let visible = read().await;
        if visible.len() == 3 {
            break visible;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "after the commit, everything becomes readable (saw {})",
            visible.len()
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    // In xid order: the open transaction's event before the later commit's.
    let types: Vec<&str> = visible.iter().map(|e| e.stream_name.as_str()).collect();
    assert_eq!(types[1], "lag-open");
}

#[tokio::test]
async fn invalid_stream_names_are_refused() {
    for bad in ["", "nocategory", "-x", "Upper-1", "tour-"] {
        assert!(StreamName::parse(bad).is_err(), "{bad:?} must be refused");
    }
    let ok = StreamName::parse("tour-123").unwrap();
    assert_eq!((ok.category(), ok.id()), ("tour", "123"));
}

/// Another process (here: another pool and store) is woken by the NOTIFY hint, not
/// by polling: with polling set to an hour, only the hint can end the wait.
#[tokio::test]
async fn an_append_in_another_process_wakes_a_subscriber_through_notify() {
    let (db, writer) = store().await;
    let other_pool = sqlx::PgPool::connect_with(db.options.clone())
        .await
        .unwrap();
    let reader = EventStore::new(other_pool);
    let mut sub = reader
        .subscribe_polling_every(std::time::Duration::from_secs(3600))
        .await;
    let s = StreamName::new("wake", Uuid::now_v7());
    writer
        .append(&s, ExpectedVersion::NoStream, vec![event(1)])
        .await
        .unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(30), sub.wait())
        .await
        .expect("the NOTIFY hint wakes the subscriber");
    let read = reader.read_all(Checkpoint::START, 10, None).await.unwrap();
    assert_eq!(read.len(), 1);
}

/// A filtered read moves past the events it skips, but never past an event that a
/// transaction still running may commit: the watermark bounds the skip.
#[tokio::test]
async fn a_filtered_read_skips_ahead_but_never_past_an_uncommitted_event() {
    let (db, store) = store().await;
    let wanted = Some(&["Wanted"][..]);

    // A transaction that has appended a wanted event and not committed yet ...
    let mut open = db.pool.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO events (event_id, stream_name, stream_version, event_type, data, metadata) \
         VALUES ($1, 'late-1', 1, 'Wanted', '{}', '{\"actor\":\"t\",\"correlation_id\":\"00000000-0000-0000-0000-000000000000\",\"schema_version\":1}')",
    )
    .bind(Uuid::now_v7())
    .execute(&mut *open)
    .await
    .unwrap();
    // ... then many unwanted events that commit.
    for i in 0..5 {
        let s = StreamName::new("noise", i);
        let evs = (0..50).map(event).collect();
        store
            .append(&s, ExpectedVersion::NoStream, evs)
            .await
            .unwrap();
    }
    let b = store
        .read_batch(Checkpoint::START, 100, wanted)
        .await
        .unwrap();
    assert!(b.events.is_empty());
    assert!(
        b.next.transaction_id < b.watermark,
        "the skip stops below the watermark: {b:?}"
    );

    open.commit().await.unwrap();
    // Now it is final: the reader finds it from where it stopped, then skips the
    // noise behind it.
    let mut at = b.next;
    let mut found = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let b = store.read_batch(at, 100, wanted).await.unwrap();
        found.extend(b.events.iter().map(|e| e.stream_name.clone()));
        at = b.next;
        let last: i64 = sqlx::query_scalar("SELECT max(position) FROM events")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        if at.position == last && !b.full {
            break;
        }
        // Other tests' transactions (xids are cluster-wide) may hold the watermark.
        assert!(std::time::Instant::now() < deadline, "stuck at {at:?}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(found, ["late-1"], "the late event is read exactly once");
}
