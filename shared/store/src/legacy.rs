//! Sealing the events written before personal data was encrypted.
//!
//! Until this change, events held their personal part in plaintext and named no
//! person. The vault's migration records the last position written before it
//! (`vault_legacy.upto_position`); `kujira privacy seal-legacy` then, in ONE
//! transaction, attributes each of those events to a person (by the email address
//! it holds, or by the case or sign-up it belongs to) and seals its personal part.
//! Either every legacy event is sealed or none is: the log is never left half
//! protected, and `serve` refuses to start while any is left ([`ensure_sealed`]).
//!
//! This is the one place where stored events are rewritten: the facts stay the
//! same, only their personal part is sealed, which is what erasure needs.

use std::collections::HashMap;

use kujira_domain::values::Email;
use serde_json::Value;
use sqlx::Row;
use uuid::Uuid;

use crate::vault::{Vault, VaultError};

#[derive(Debug, thiserror::Error)]
pub enum LegacyError {
    #[error(
        "{0} events written before encryption still hold personal data in plaintext; run \
         `kujira privacy seal-legacy` (it seals them all in one transaction), then start again"
    )]
    Unsealed(i64),
    #[error(
        "legacy event at position {position} ({event_type}) cannot be attributed to a person: {why}"
    )]
    Unattributable {
        position: i64,
        event_type: String,
        why: String,
    },
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// What [`seal_legacy`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct LegacyReport {
    pub sealed: u64,
    pub persons: u64,
    /// True when there was nothing left to seal.
    pub already_done: bool,
}

const UNSEALED: &str = "FROM events e, vault_legacy v \
     WHERE v.sealed_at IS NULL AND e.position <= v.upto_position \
       AND jsonb_typeof(e.data->'personal') = 'object' AND NOT (e.data->'personal' ? 'sealed')";

/// How many legacy events still hold plaintext personal data.
pub async fn unsealed(pool: &sqlx::PgPool) -> Result<i64, LegacyError> {
    let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) {UNSEALED}"))
        .fetch_one(pool)
        .await?;
    Ok(n)
}

/// Refuses to go on while legacy events hold plaintext personal data.
pub async fn ensure_sealed(pool: &sqlx::PgPool) -> Result<(), LegacyError> {
    let done: Option<bool> =
        sqlx::query_scalar("SELECT sealed_at IS NOT NULL FROM vault_legacy WHERE id = 1")
            .fetch_optional(pool)
            .await?;
    if done == Some(true) {
        return Ok(());
    }
    match unsealed(pool).await? {
        0 => Ok(()),
        n => Err(LegacyError::Unsealed(n)),
    }
}

struct Legacy {
    position: i64,
    event_id: Uuid,
    stream_name: String,
    event_type: String,
    data: Value,
}

fn email_of(data: &Value) -> Option<Email> {
    data.get("personal")?
        .get("email")?
        .as_str()
        .and_then(|s| Email::parse(s).ok())
}

/// Seals every legacy event (see the module docs).
pub async fn seal_legacy(vault: &Vault) -> Result<LegacyReport, LegacyError> {
    let pool = vault.pool();
    let mut tx = pool.begin().await?;
    let sealed_at: Option<Option<chrono::DateTime<chrono::Utc>>> =
        sqlx::query_scalar("SELECT sealed_at FROM vault_legacy WHERE id = 1 FOR UPDATE")
            .fetch_optional(&mut *tx)
            .await?;
    if matches!(sealed_at, Some(Some(_)) | None) {
        return Ok(LegacyReport {
            already_done: true,
            ..LegacyReport::default()
        });
    }
    let rows = sqlx::query(&format!(
        "SELECT e.position, e.event_id, e.stream_name, e.event_type, e.data {UNSEALED} \
         ORDER BY e.position"
    ))
    .fetch_all(&mut *tx)
    .await?;
    let mut events = Vec::with_capacity(rows.len());
    for r in rows {
        events.push(Legacy {
            position: r.try_get("position")?,
            event_id: r.try_get("event_id")?,
            stream_name: r.try_get("stream_name")?,
            event_type: r.try_get("event_type")?,
            data: r.try_get("data")?,
        });
    }

    // First the facts that carry an address: they name their person, and through them
    // their case or sign-up does.
    let mut by_stream: HashMap<String, Uuid> = HashMap::new();
    let mut by_sign_up: HashMap<String, Uuid> = HashMap::new();
    let mut persons = std::collections::HashSet::new();
    let mut attributed: HashMap<i64, Uuid> = HashMap::new();
    for e in &events {
        let opening = matches!(
            e.event_type.as_str(),
            "InquirySubmitted" | "TourRequestSubmitted" | "TourSignUpReceived"
        );
        if !opening {
            continue;
        }
        let email = email_of(&e.data).ok_or_else(|| LegacyError::Unattributable {
            position: e.position,
            event_type: e.event_type.clone(),
            why: "no valid email address in its personal part".into(),
        })?;
        let person = vault.person_for_email(&email).await?.person_id;
        persons.insert(person);
        attributed.insert(e.position, person);
        if e.event_type == "TourSignUpReceived" {
            if let Some(id) = e.data.get("sign_up_id").and_then(Value::as_str) {
                by_sign_up.insert(id.to_owned(), person);
            }
        } else {
            by_stream.insert(e.stream_name.clone(), person);
        }
    }
    // Then the facts that belong to one: feedback to its sign-up, mails to the case
    // or sign-up their key names, else to their first recipient.
    for e in &events {
        if attributed.contains_key(&e.position) {
            continue;
        }
        let sign_up_of_key = || {
            let key = e.data.get("key")?.as_str()?;
            let rest = key.split("/sign-up/").nth(1)?;
            by_sign_up.get(rest.split('/').next()?).copied()
        };
        let person = match e.event_type.as_str() {
            "TourFeedbackRecorded" => e
                .data
                .get("sign_up_id")
                .and_then(Value::as_str)
                .and_then(|id| by_sign_up.get(id).copied()),
            "MailRequested" => match by_stream.get(&e.stream_name) {
                Some(p) => Some(*p),
                None => match sign_up_of_key() {
                    Some(p) => Some(p),
                    None => {
                        let to = e.data["personal"]["to"][0]
                            .as_str()
                            .and_then(|s| Email::parse(s).ok());
                        match to {
                            Some(email) => Some(vault.person_for_email(&email).await?.person_id),
                            None => None,
                        }
                    }
                },
            },
            _ => match email_of(&e.data) {
                Some(email) => Some(vault.person_for_email(&email).await?.person_id),
                None => by_stream.get(&e.stream_name).copied(),
            },
        };
        let person = person.ok_or_else(|| LegacyError::Unattributable {
            position: e.position,
            event_type: e.event_type.clone(),
            why: "no person found for it".into(),
        })?;
        persons.insert(person);
        attributed.insert(e.position, person);
    }

    let mut sealed = 0u64;
    for mut e in events {
        let person = attributed[&e.position];
        if let Some(obj) = e.data.as_object_mut() {
            obj.insert("person_id".into(), Value::String(person.to_string()));
        }
        vault.seal(e.event_id, &mut e.data).await?;
        sqlx::query("UPDATE events SET data = $1 WHERE position = $2")
            .bind(&e.data)
            .bind(e.position)
            .execute(&mut *tx)
            .await?;
        sealed += 1;
    }
    sqlx::query("UPDATE vault_legacy SET sealed_at = now() WHERE id = 1")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    tracing::info!(sealed, persons = persons.len(), "sealed the legacy events");
    Ok(LegacyReport {
        sealed,
        persons: persons.len() as u64,
        already_done: false,
    })
}
