//! `privacy.persons`: the index of whose data the log holds, and where.
//!
//! Every fact about a person names them in plaintext (`person_id`, beside the sealed
//! personal part), so this projection needs no key: it notes when each person was
//! first seen and last active (retention runs on it), which streams hold their facts
//! (export and erasure read them), and which persons a merge of two cases joined
//! (erasing or exporting one covers the other).

use chrono::{DateTime, Utc};
use kujira_eventlog::RecordedEvent;
use kujira_projector::{Projection, Rebuild};
use sqlx::PgConnection;
use uuid::Uuid;

/// Facts that are not the person's activity: mail the service queued by itself, a
/// bounce, and the erasure. A nurture mail must not keep a person's data forever.
const NOT_ACTIVITY: &[&str] = &[
    "MailQueued",
    "MailRequested",
    "AddressBounced",
    "PersonErased",
];

/// Keeps `privacy_persons`, `privacy_person_streams` and `privacy_person_links`.
#[derive(Debug, Clone, Copy, Default)]
pub struct PersonIndexProjection;

impl PersonIndexProjection {
    pub const NAME: &'static str = "privacy.persons";
}

fn person_of(event: &RecordedEvent) -> Option<Uuid> {
    event
        .data
        .get(kujira_domain::personal::PERSON_FIELD)
        .and_then(|v| v.as_str())
        .and_then(|s| Uuid::parse_str(s).ok())
}

fn uuid_field(event: &RecordedEvent, field: &str) -> anyhow::Result<Uuid> {
    event
        .data
        .get(field)
        .and_then(|v| v.as_str())
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(|| anyhow::anyhow!("{} has no valid {field}", event.event_type))
}

async fn touch(
    tx: &mut PgConnection,
    person: Uuid,
    at: DateTime<Utc>,
    activity: bool,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO privacy_persons (person_id, first_seen_at, last_activity_at) \
         VALUES ($1, $2, $2) \
         ON CONFLICT (person_id) DO UPDATE SET last_activity_at = \
           CASE WHEN $3 THEN greatest(privacy_persons.last_activity_at, $2) \
                ELSE privacy_persons.last_activity_at END",
    )
    .bind(person)
    .bind(at)
    .bind(activity)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

#[async_trait::async_trait]
impl Projection for PersonIndexProjection {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    async fn apply(&self, tx: &mut PgConnection, event: &RecordedEvent) -> anyhow::Result<()> {
        let at = event.recorded_at;
        let activity = !NOT_ACTIVITY.contains(&event.event_type.as_str());
        match event.event_type.as_str() {
            "PersonErased" => {
                let person = uuid_field(event, "person_id")?;
                touch(tx, person, at, false).await?;
                let rule = event.data.get("rule").and_then(|r| r.as_str());
                sqlx::query(
                    "UPDATE privacy_persons SET erased_at = coalesce(erased_at, $2), \
                       erased_rule = coalesce(erased_rule, $3) WHERE person_id = $1",
                )
                .bind(person)
                .bind(at)
                .bind(rule)
                .execute(&mut *tx)
                .await?;
                return Ok(());
            }
            "CaseMerged" => {
                let case_id = uuid_field(event, "case_id")?;
                let into_person = uuid_field(event, "into_person")?;
                sqlx::query(
                    "INSERT INTO privacy_person_links (case_id, person_id, into_person) \
                     SELECT $1, person_id, $3 FROM privacy_person_streams \
                     WHERE stream_name = $2 \
                     ON CONFLICT (case_id) DO UPDATE SET into_person = $3",
                )
                .bind(case_id)
                .bind(&event.stream_name)
                .bind(into_person)
                .execute(&mut *tx)
                .await?;
            }
            "CaseMergeUndone" => {
                let case_id = uuid_field(event, "case_id")?;
                sqlx::query("DELETE FROM privacy_person_links WHERE case_id = $1")
                    .bind(case_id)
                    .execute(&mut *tx)
                    .await?;
            }
            _ => {}
        }
        match person_of(event) {
            Some(person) => {
                touch(tx, person, at, activity).await?;
                sqlx::query(
                    "INSERT INTO privacy_person_streams (person_id, stream_name) VALUES ($1, $2) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(person)
                .bind(&event.stream_name)
                .execute(&mut *tx)
                .await?;
            }
            // Case work names no person: it is the activity of the case's person.
            None if activity && event.stream_name.starts_with("consultation-") => {
                sqlx::query(
                    "UPDATE privacy_persons SET last_activity_at = greatest(last_activity_at, $2) \
                     WHERE person_id IN (SELECT person_id FROM privacy_person_streams \
                                         WHERE stream_name = $1)",
                )
                .bind(&event.stream_name)
                .bind(at)
                .execute(&mut *tx)
                .await?;
            }
            None => {}
        }
        Ok(())
    }

    fn rebuild(&self) -> Rebuild {
        Rebuild::Tables {
            tables: &[
                "privacy_persons",
                "privacy_person_streams",
                "privacy_person_links",
            ],
            ddl: include_str!("../migrations/20261201006000_privacy_persons.sql"),
        }
    }
}

/// The person and every person a merge joined to them, transitively.
pub async fn group(pool: &sqlx::PgPool, person: Uuid) -> anyhow::Result<Vec<Uuid>> {
    let persons: Vec<Uuid> = sqlx::query_scalar(
        "WITH RECURSIVE g(p) AS ( \
           SELECT $1::uuid \
           UNION \
           SELECT CASE WHEN l.person_id = g.p THEN l.into_person ELSE l.person_id END \
           FROM privacy_person_links l JOIN g ON l.person_id = g.p OR l.into_person = g.p) \
         SELECT p FROM g ORDER BY p",
    )
    .bind(person)
    .fetch_all(pool)
    .await?;
    Ok(persons)
}

/// The streams that hold facts about `person`.
pub async fn streams(pool: &sqlx::PgPool, person: Uuid) -> anyhow::Result<Vec<String>> {
    let streams: Vec<String> = sqlx::query_scalar(
        "SELECT stream_name FROM privacy_person_streams WHERE person_id = $1 ORDER BY stream_name",
    )
    .bind(person)
    .fetch_all(pool)
    .await?;
    Ok(streams)
}
