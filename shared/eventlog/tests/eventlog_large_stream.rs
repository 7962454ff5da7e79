//! Reading a 100k-event stream in batches keeps memory flat. Its own test binary,
//! because it installs a counting global allocator.

use futures::TryStreamExt;
use kujira_eventlog::{EventStore, ExpectedVersion, Metadata, NewEvent, StreamName};
use kujira_pgembed::testing::TestDb;
use uuid::Uuid;

#[global_allocator]
static ALLOCATOR: cap::Cap<std::alloc::System> = cap::Cap::new(std::alloc::System, usize::MAX);

#[tokio::test]
async fn reading_a_100k_event_stream_in_batches_keeps_memory_flat() {
    let db = TestDb::new(&[&kujira_eventlog::MIGRATOR]).await;
    let store = EventStore::new(db.pool.clone());
    let s = StreamName::new("big", Uuid::now_v7());
    const TOTAL: u64 = 100_000;
    const CHUNK: u64 = 2_000;
    let payload = "x".repeat(200);
    let mut version = 0;
    while version < TOTAL {
        let evs: Vec<NewEvent> = (0..CHUNK)
            .map(|i| NewEvent {
                id: Uuid::now_v7(),
                event_type: "Filled".into(),
                data: serde_json::json!({ "n": version + i, "pad": payload }),
                metadata: Metadata::new("test", Uuid::nil()),
            })
            .collect();
        version = store
            .append(&s, ExpectedVersion::Exact(version), evs)
            .await
            .unwrap()
            .stream_version;
    }

    let baseline = ALLOCATOR.allocated();
    let mut peak = 0usize;
    let mut count = 0u64;
    let mut expected = 1u64;
    let mut events = std::pin::pin!(store.stream_events(&s, 1_000));
    while let Some(e) = events.try_next().await.unwrap() {
        assert_eq!(e.stream_version, expected, "in order, no gap");
        expected += 1;
        count += 1;
        if count.is_multiple_of(1_000) {
            peak = peak.max(ALLOCATOR.allocated().saturating_sub(baseline));
        }
    }
    assert_eq!(count, TOTAL);
    // The whole stream is over 30 MB decoded; a batch of 1,000 is well under 8 MB.
    let whole_stream_bytes = (TOTAL as usize) * 300;
    assert!(
        peak < 8 * 1024 * 1024 && peak < whole_stream_bytes / 4,
        "memory grew with the stream: peak {peak} bytes above the baseline"
    );
}
