//! `kujira privacy seal-legacy`: events written before per-person encryption are
//! sealed in one go, against a real PostgreSQL.

mod support;

use kujira_eventlog::{EventStore, ExpectedVersion, Metadata, NewEvent, StreamName};
use kujira_store::legacy;
use serde_json::json;
use support::*;
use uuid::Uuid;

#[tokio::test]
async fn legacy_events_are_sealed_in_one_go_and_serve_refuses_until_then() {
    let db = db().await;
    let events = EventStore::new(db.pool.clone());
    let case = Uuid::now_v7();
    let case_stream = StreamName::new("consultation", case);
    let sign_up = Uuid::now_v7();
    let tour_stream = StreamName::new("tour", Uuid::now_v7());
    let legacy = |t: &str, data: serde_json::Value| NewEvent {
        id: Uuid::now_v7(),
        event_type: t.into(),
        data,
        metadata: Metadata::new("applicant", Uuid::now_v7()),
    };
    events
        .append(&case_stream, ExpectedVersion::NoStream, vec![
            legacy("InquirySubmitted", json!({"case_id": case, "segment": "u_turn",
                "personal": {"name": "旧 太郎", "email": "old@example.jp"}})),
            legacy("MailRequested", json!({"key": format!("inquiry-received/{case}/concierge"), "template": "t",
                "personal": {"to": ["concierge@example.jp"], "subject": "旧 太郎 様", "text": "旧 太郎"}})),
        ])
        .await
        .unwrap();
    events
        .append(
            &tour_stream,
            ExpectedVersion::NoStream,
            vec![
                legacy(
                    "TourSignUpReceived",
                    json!({"sign_up_id": sign_up, "adults": 2,
                "personal": {"name": "旧 花子", "email": "hana@example.jp"}}),
                ),
                legacy(
                    "TourFeedbackRecorded",
                    json!({"sign_up_id": sign_up, "satisfaction": 5,
                "personal": {"comments": "旧 楽しかった"}}),
                ),
            ],
        )
        .await
        .unwrap();
    // As if the vault's migration had run after these were written.
    sqlx::query("UPDATE vault_legacy SET upto_position = (SELECT max(position) FROM events), sealed_at = NULL")
        .execute(&db.pool)
        .await
        .unwrap();
    let err = legacy::ensure_sealed(&db.pool).await.unwrap_err();
    assert!(
        err.to_string().contains("kujira privacy seal-legacy") && err.to_string().contains('4'),
        "{err}"
    );

    let store = store(&db).await;
    let report = legacy::seal_legacy(store.vault()).await.unwrap();
    assert_eq!((report.sealed, report.persons), (4, 2));
    legacy::ensure_sealed(&db.pool).await.unwrap();
    let all: Vec<String> = sqlx::query_scalar("SELECT data::text FROM events")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    assert!(
        all.iter()
            .all(|d| !d.contains('旧') && !d.contains("@example.jp")),
        "{all:?}"
    );
    // Readable again, attributed: the case's mail and the feedback to their persons.
    let case_events = store.read_stream(&case_stream, 0, 10).await.unwrap();
    assert_eq!(case_events[1].data["personal"]["subject"], "旧 太郎 様");
    assert_eq!(
        case_events[0].data["person_id"],
        case_events[1].data["person_id"]
    );
    let tour_events = store.read_stream(&tour_stream, 0, 10).await.unwrap();
    assert_eq!(
        tour_events[0].data["person_id"],
        tour_events[1].data["person_id"]
    );
    assert_eq!(tour_events[1].data["personal"]["comments"], "旧 楽しかった");
    // Running it again does nothing.
    assert!(
        legacy::seal_legacy(store.vault())
            .await
            .unwrap()
            .already_done
    );
}
