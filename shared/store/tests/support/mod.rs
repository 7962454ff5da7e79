//! What the store's tests share: a database with the log and the vault, a master
//! key, a store, and a sealed inquiry-shaped event.
#![allow(dead_code)] // each test file uses its own part

use kujira_config::{MasterKeySetting, Secret};
use kujira_domain::values::Email;
use kujira_eventlog::{EventStore, ExpectedVersion, Metadata, NewEvent, StreamName};
use kujira_pgembed::testing::TestDb;
use kujira_store::{Store, Vault};
use serde_json::json;
use uuid::Uuid;

pub async fn db() -> TestDb {
    TestDb::new(&[&kujira_eventlog::MIGRATOR, &kujira_store::MIGRATOR]).await
}

pub fn key(byte: u8) -> MasterKeySetting {
    MasterKeySetting::Given {
        bytes: Secret::new(vec![byte; 32]),
        origin: "KUJIRA_MASTER_KEY".into(),
    }
}

pub async fn store(db: &TestDb) -> Store {
    let vault = Vault::unlock(db.pool.clone(), &key(7)).await.unwrap();
    Store::new(EventStore::new(db.pool.clone()), vault)
}

pub fn email(s: &str) -> Email {
    Email::parse(s).unwrap()
}

pub fn inquiry(person: Uuid, name: &str, mail: &str) -> serde_json::Value {
    json!({
        "case_id": Uuid::now_v7(),
        "person_id": person,
        "segment": "i_turn",
        "personal": {"name": name, "email": mail, "message": "海の近くに住みたい"}
    })
}

pub async fn append_one(store: &Store, stream: &StreamName, data: serde_json::Value) -> Uuid {
    let id = Uuid::now_v7();
    store
        .append(
            stream,
            ExpectedVersion::Any,
            vec![NewEvent {
                id,
                event_type: "InquirySubmitted".into(),
                data,
                metadata: Metadata::new("test", id),
            }],
        )
        .await
        .unwrap();
    id
}

pub async fn raw_data(db: &TestDb, event_id: Uuid) -> serde_json::Value {
    sqlx::query_scalar("SELECT data FROM events WHERE event_id = $1")
        .bind(event_id)
        .fetch_one(&db.pool)
        .await
        .unwrap()
}
