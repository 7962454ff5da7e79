//! Erasure (消去): crypto-shredding a person, and the record of it (消去記録).
//!
//! [`erase`] appends `PersonErased` to the person's stream (and to every person a
//! merge joined to them). The event is the durable instruction: the
//! [`ErasureProjection`] carries it out, in whichever process reads it first, in one
//! transaction with its record: the person's data key and email lookups are
//! destroyed, their pending mail is cancelled and their `.eml` files are deleted.
//! Every other reader acts on the same event: each process's vault drops the cached
//! key, and each projection that keeps personal data scrubs it. A crash anywhere
//! loses nothing: the event stays, and the projection applies it on its next run.
//!
//! The statistics stay: the facts remain in the log with their plaintext statistics
//! fields, and only the sealed personal parts become unreadable.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use kujira_domain::person::{Person, PersonCommand, PersonContext, PersonEvent};
use kujira_domain::values::Email;
use kujira_eventlog::{RecordedEvent, StreamName};
use kujira_projector::{Projection, Rebuild};
use kujira_store::{CommandContext, Store};
use serde::Serialize;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use crate::PrivacyError;

/// Whom an operator names: a case, or an email address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Case(Uuid),
    Email(Email),
}

impl std::str::FromStr for Target {
    type Err = PrivacyError;

    fn from_str(s: &str) -> Result<Self, PrivacyError> {
        let s = s.trim();
        if let Ok(id) = Uuid::parse_str(s) {
            return Ok(Self::Case(id));
        }
        Email::parse(s)
            .map(Self::Email)
            .map_err(|_| PrivacyError::BadTarget(s.to_owned()))
    }
}

/// The person a target names (not yet the persons joined to them).
pub async fn person_of(store: &Store, target: &Target) -> Result<Uuid, PrivacyError> {
    match target {
        Target::Email(email) => store
            .vault()
            .find_person(email)
            .await
            .map_err(|e| PrivacyError::Internal(e.into()))?
            .ok_or(PrivacyError::NotFound),
        Target::Case(case_id) => {
            let stream = StreamName::new(kujira_domain::inquiry::CATEGORY, case_id);
            let first = store
                .events()
                .read_stream(&stream, 0, 1)
                .await
                .map_err(|e| PrivacyError::Internal(e.into()))?;
            first
                .first()
                .and_then(|e| e.data.get("person_id"))
                .and_then(|v| v.as_str())
                .and_then(|s| Uuid::parse_str(s).ok())
                .ok_or(PrivacyError::NotFound)
        }
    }
}

/// Records the erasure of the person `target` names, and of every person a merge
/// joined to them. Returns the persons. Erasing twice records nothing new.
pub async fn erase(
    store: &Store,
    target: &Target,
    actor: &str,
    rule: Option<String>,
    at: DateTime<Utc>,
) -> Result<Vec<Uuid>, PrivacyError> {
    let person = person_of(store, target).await?;
    let persons = crate::index::group(store.pool(), person)
        .await
        .map_err(PrivacyError::Internal)?;
    for p in &persons {
        erase_person(store, *p, actor, rule.clone(), at).await?;
    }
    Ok(persons)
}

/// Appends `PersonErased` for one person.
pub async fn erase_person(
    store: &Store,
    person_id: Uuid,
    actor: &str,
    rule: Option<String>,
    at: DateTime<Utc>,
) -> Result<(), PrivacyError> {
    let ctx = CommandContext::new(actor);
    kujira_store::execute::<Person>(
        store,
        &StreamName::new(kujira_domain::person::CATEGORY, person_id),
        &ctx,
        None,
        |state| {
            Person::decide_for(
                PersonContext { person_id, at },
                state,
                &PersonCommand::Erase { rule: rule.clone() },
            )
        },
    )
    .await
    .map_err(|e| PrivacyError::Internal(anyhow::anyhow!("{e}")))?;
    Ok(())
}

/// Carries out every `PersonErased` and keeps `erasure_records`.
#[derive(Debug, Clone)]
pub struct ErasureProjection {
    store: Store,
    outbox_dir: Option<PathBuf>,
}

impl ErasureProjection {
    pub const NAME: &'static str = "privacy.erasure";

    /// `outbox_dir`: where `.eml` files are written (their copies of a mail's text
    /// are deleted with the person).
    pub fn new(store: Store, outbox_dir: Option<PathBuf>) -> Self {
        Self { store, outbox_dir }
    }
}

#[async_trait::async_trait]
impl Projection for ErasureProjection {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn event_types(&self) -> Option<&'static [&'static str]> {
        Some(&[PersonEvent::ERASED])
    }

    async fn apply(&self, tx: &mut PgConnection, event: &RecordedEvent) -> anyhow::Result<()> {
        let person_id = event
            .data
            .get("person_id")
            .and_then(|v| v.as_str())
            .and_then(|s| Uuid::parse_str(s).ok())
            .ok_or_else(|| anyhow::anyhow!("PersonErased without a person_id"))?;
        let rule = event.data.get("rule").and_then(|r| r.as_str());
        let destroyed = self.store.vault().destroy_in(tx, person_id).await?;
        let mail = kujira_scheduler::erase_person_mail(
            tx,
            self.outbox_dir.as_deref(),
            person_id,
            event.recorded_at,
        )
        .await?;
        // What was erased, by its non-personal names: the 連番 of the cases.
        let row = sqlx::query(
            "SELECT coalesce(array_agg(e.data->>'reference' ORDER BY e.position) \
                       FILTER (WHERE e.stream_name LIKE 'consultation-%'), '{}') AS cases, \
                    count(*) FILTER (WHERE e.event_type = 'TourSignUpReceived' \
                                       AND e.data->>'person_id' = $1::text) AS sign_ups \
             FROM privacy_person_streams s \
             JOIN events e ON e.stream_name = s.stream_name \
               AND (e.stream_version = 1 OR e.event_type = 'TourSignUpReceived') \
             WHERE s.person_id = $1",
        )
        .bind(person_id)
        .fetch_one(&mut *tx)
        .await?;
        let cases: Vec<String> = row
            .try_get::<Option<Vec<String>>, _>("cases")?
            .unwrap_or_default();
        let sign_ups: i64 = row.try_get("sign_ups")?;
        sqlx::query(
            "INSERT INTO erasure_records (person_id, position, erased_at, actor, rule, cases, \
               tour_sign_ups, key_destroyed, lookups_removed, mails_cancelled, mail_files_deleted) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (person_id) DO NOTHING",
        )
        .bind(person_id)
        .bind(event.position)
        .bind(event.recorded_at)
        .bind(&event.metadata.actor)
        .bind(rule)
        .bind(&cases)
        .bind(i32::try_from(sign_ups).unwrap_or(i32::MAX))
        .bind(destroyed.key)
        .bind(i32::try_from(destroyed.lookups).unwrap_or(i32::MAX))
        .bind(i32::try_from(mail.cancelled).unwrap_or(i32::MAX))
        .bind(i32::try_from(mail.files_deleted).unwrap_or(i32::MAX))
        .execute(&mut *tx)
        .await?;
        tracing::info!(%person_id, rule, "erased a person's data");
        Ok(())
    }

    fn rebuild(&self) -> Rebuild {
        Rebuild::Refused(
            "it carries out erasures (keys, mail files) and its records hold what was done then",
        )
    }
}

/// One 消去記録, for admins.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErasureRecord {
    pub person_id: Uuid,
    pub position: i64,
    pub erased_at: DateTime<Utc>,
    /// `staff:<id>`, `cli`, `system:retention`.
    pub actor: String,
    pub rule: Option<String>,
    pub cases: Vec<String>,
    pub tour_sign_ups: i32,
    pub key_destroyed: bool,
    pub lookups_removed: i32,
    pub mails_cancelled: i32,
    pub mail_files_deleted: i32,
}

/// Every erasure record, newest first.
pub async fn records(pool: &sqlx::PgPool) -> anyhow::Result<Vec<ErasureRecord>> {
    records_page(pool, None, i64::MAX).await
}

/// Up to `limit` erasure records, newest first (by `erased_at`, then `person_id`),
/// after the record `after` names as `(erased_at, person_id)`: keyset paging.
pub async fn records_page(
    pool: &sqlx::PgPool,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> anyhow::Result<Vec<ErasureRecord>> {
    let rows = sqlx::query(
        "SELECT person_id, position, erased_at, actor, rule, cases, tour_sign_ups, \
                key_destroyed, lookups_removed, mails_cancelled, mail_files_deleted \
         FROM erasure_records \
         WHERE $1::timestamptz IS NULL OR erased_at < $1 OR (erased_at = $1 AND person_id > $2) \
         ORDER BY erased_at DESC, person_id LIMIT $3",
    )
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1))
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(ErasureRecord {
                person_id: r.try_get("person_id")?,
                position: r.try_get("position")?,
                erased_at: r.try_get("erased_at")?,
                actor: r.try_get("actor")?,
                rule: r.try_get("rule")?,
                cases: r.try_get("cases")?,
                tour_sign_ups: r.try_get("tour_sign_ups")?,
                key_destroyed: r.try_get("key_destroyed")?,
                lookups_removed: r.try_get("lookups_removed")?,
                mails_cancelled: r.try_get("mails_cancelled")?,
                mail_files_deleted: r.try_get("mail_files_deleted")?,
            })
        })
        .collect()
}

/// The projections that have scrubbed an erasure (their checkpoint is past its
/// event), and those that have not yet.
pub async fn scrubbed_by(
    pool: &sqlx::PgPool,
    record: &ErasureRecord,
    projections: &[&str],
) -> anyhow::Result<Vec<(String, bool)>> {
    Ok(
        scrubbed_by_each(pool, std::slice::from_ref(record), projections)
            .await?
            .pop()
            .unwrap_or_default(),
    )
}

/// [`scrubbed_by`] for many records at once (the admins' list of 消去記録): one
/// query for the events' transactions and one per projection, whatever the number
/// of records. The result is in the order of `records`.
pub async fn scrubbed_by_each(
    pool: &sqlx::PgPool,
    records: &[ErasureRecord],
    projections: &[&str],
) -> anyhow::Result<Vec<Vec<(String, bool)>>> {
    let positions: Vec<i64> = records.iter().map(|r| r.position).collect();
    let rows = sqlx::query("SELECT position, transaction_id FROM events WHERE position = ANY($1)")
        .bind(&positions)
        .fetch_all(pool)
        .await?;
    let mut txids = std::collections::HashMap::with_capacity(rows.len());
    for r in &rows {
        txids.insert(
            r.try_get::<i64, _>("position")?,
            r.try_get::<i64, _>("transaction_id")?,
        );
    }
    let mut checkpoints = Vec::with_capacity(projections.len());
    for name in projections {
        checkpoints.push((
            (*name).to_owned(),
            kujira_eventlog::EventStore::checkpoint(pool, name).await?,
        ));
    }
    Ok(records
        .iter()
        .map(|record| {
            let txid = txids.get(&record.position);
            checkpoints
                .iter()
                .map(|(name, at)| {
                    let done = txid
                        .is_some_and(|t| (at.transaction_id, at.position) >= (*t, record.position));
                    (name.clone(), done)
                })
                .collect()
        })
        .collect())
}
