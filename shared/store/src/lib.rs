//! The personal event store: the event log as every service uses it.
//!
//! * [`vault`]: per-person data keys wrapped by the master key, the keyed-hash
//!   lookup of persons by email, sealing and opening of the personal part of events.
//!   It is the only place in kujira that decrypts.
//! * [`Store`]: the log with the vault in front: appends seal, reads open.
//! * [`command`]: the one command path (load, decide, append with the version read,
//!   retry on conflict) that every service runs its commands through.
//! * [`legacy`]: the one-off, explicit sealing of events written before encryption.

pub mod command;
pub mod legacy;
mod store;
pub mod vault;

pub use command::{Aggregate, CommandContext, CommandError, Executed, StateCache, execute, load};
pub use store::{Store, StoreError};
pub use vault::{Destroyed, FoundPerson, PersonGuard, Vault, VaultError};

/// Decodes an event read from the raw log without opening its personal part: a
/// sealed part reads as erased. For readers that keep only statistics (catalogues,
/// counts), which must never depend on, or hold, anyone's personal data.
pub fn decode_without_personal<E: serde::de::DeserializeOwned>(
    event: &kujira_eventlog::RecordedEvent,
) -> Result<E, kujira_eventlog::Error> {
    use kujira_domain::personal::PERSONAL_FIELD;
    let mut data = event.data.clone();
    if let Some(obj) = data.as_object_mut()
        && obj.contains_key(PERSONAL_FIELD)
    {
        obj.insert(PERSONAL_FIELD.to_owned(), serde_json::Value::Null);
    }
    serde_json::from_value(serde_json::json!({ "type": event.event_type, "data": data })).map_err(
        |e| kujira_eventlog::Error::Decode {
            position: event.position,
            event_type: event.event_type.clone(),
            message: e.to_string(),
        },
    )
}

/// The vault's tables (versions 20261201003000–20261201003999).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();
