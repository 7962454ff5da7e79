//! How intake names a new case's person without a round trip: the choice, and the
//! guard that checks it in the statement that appends the case (see the module
//! docs of [`super`]).

use std::time::Instant;

use kujira_domain::values::Email;
use uuid::Uuid;

use super::{Cached, FoundPerson, Vault, VaultError};

/// The person a new case will name, chosen without asking the database, and the
/// guard that checks the choice in the very statement that appends the case
/// ([`CommandContext::guard`](crate::CommandContext::guard)). See
/// [`Vault::person_guard`].
#[derive(Debug, Clone)]
pub struct PersonGuard {
    pub person: FoundPerson,
    pub guard: kujira_eventlog::Guard,
    hash: [u8; 32],
}

/// The known person: the address still finds them, and their key is there.
///
/// No row lock: an erasure that destroys the key while the append commits erases
/// the new case with the rest, as it does for every case appended between the
/// erasure's request (`PersonErased`) and the key's destruction. A lock would
/// gain nothing over that, and would make concurrent cases of one person queue on
/// one row.
const KNOWN_PERSON_GUARD: &str = "guard AS ( \
       SELECT 1 FROM person_lookup l JOIN person_keys k ON k.person_id = l.person_id \
       WHERE l.email_hash = $7 AND l.person_id = $8)";

/// A new person: the address finds nobody yet; its lookup and the wrapped key go
/// in with the case's events, or nothing does.
const NEW_PERSON_GUARD: &str = "guard_lookup AS ( \
       INSERT INTO person_lookup (email_hash, person_id) VALUES ($7, $8) \
       ON CONFLICT (email_hash) DO NOTHING RETURNING person_id), \
     guard AS ( \
       INSERT INTO person_keys (person_id, wrapped_key) \
       SELECT person_id, $9 FROM guard_lookup RETURNING 1)";

impl Vault {
    /// The person a submission from `email` names, without a round trip: the person
    /// this process last found for the address, when it still holds their key;
    /// otherwise a new person with a new key (held in this process until the append
    /// says whether it went in). Either way the guard checks it in the append's own
    /// statement, so an erasure, a merge or another process's new person in between
    /// makes the append fail with `GuardFailed`, having written nothing; then call
    /// [`Vault::guard_failed`] and fall back to [`Vault::person_for_email`] and
    /// [`Vault::known_guard`].
    pub fn person_guard(&self, email: &Email) -> Result<PersonGuard, VaultError> {
        let hash = self.email_hash(email);
        let hinted = {
            let seen = self.0.seen.lock().unwrap_or_else(|p| p.into_inner());
            seen.get(&hash).copied()
        };
        if let Some(person_id) = hinted
            && let Some(Some(_)) = self.cached(person_id)
        {
            return Ok(self.known_guard_of(hash, person_id));
        }
        let person_id = Uuid::now_v7();
        let (key, wrapped) = self.new_data_key(person_id)?;
        self.remember(person_id, Cached::Key(key, Instant::now()));
        Ok(PersonGuard {
            person: FoundPerson {
                person_id,
                created: true,
            },
            guard: kujira_eventlog::Guard {
                ctes: NEW_PERSON_GUARD,
                values: vec![
                    kujira_eventlog::GuardValue::Bytes(hash.to_vec()),
                    kujira_eventlog::GuardValue::Uuid(person_id),
                    kujira_eventlog::GuardValue::Bytes(wrapped),
                ],
            },
            hash,
        })
    }

    /// The guard for a person [`Vault::person_for_email`] found: the address still
    /// finds them and their key is there when the case is appended.
    pub fn known_guard(&self, email: &Email, person_id: Uuid) -> PersonGuard {
        self.known_guard_of(self.email_hash(email), person_id)
    }

    fn known_guard_of(&self, hash: [u8; 32], person_id: Uuid) -> PersonGuard {
        PersonGuard {
            person: FoundPerson {
                person_id,
                created: false,
            },
            guard: kujira_eventlog::Guard {
                ctes: KNOWN_PERSON_GUARD,
                values: vec![
                    kujira_eventlog::GuardValue::Bytes(hash.to_vec()),
                    kujira_eventlog::GuardValue::Uuid(person_id),
                ],
            },
            hash,
        }
    }

    /// The append under `g` went in (or replayed): the address finds that person.
    pub fn guard_held(&self, g: &PersonGuard) {
        self.note_seen(g.hash, g.person.person_id);
    }

    /// The append under `g` failed its guard: forget the choice it was made on.
    pub fn guard_failed(&self, g: &PersonGuard) {
        self.forget_seen(&g.hash);
        if g.person.created {
            // The new person's key never reached the database.
            let mut cache = self.0.cache.lock().unwrap_or_else(|p| p.into_inner());
            cache.remove(&g.person.person_id);
        }
    }
}
