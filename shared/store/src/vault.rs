//! The vault: the one module that holds keys and decrypts personal data.
//!
//! Every person has a data key of their own (AES-256-GCM), stored wrapped by the
//! master key in `person_keys`. The personal part of each event is sealed with the
//! key of the person it belongs to, with the event id bound as associated data, so
//! that a sealed part cannot be moved to another event. Destroying a person's key
//! erases every personal part about them at once, in every event, whatever copies
//! of the log exist, while the plaintext statistics stay (crypto-shredding).
//!
//! A returning person is found by a keyed hash of their email address
//! (`person_lookup`), never by the address itself; erasure deletes those rows too.
//! Intake names a new case's person without asking the database ([`PersonGuard`]:
//! the person this process last found for the address, or a new one) and lets the
//! case's own append check the choice in the same statement, which for a new person
//! also writes the lookup and the key: one statement and one commit per submission.
//!
//! Keys are cached in memory for speed. A cached key outlives its row, so every
//! process that caches keys watches the log for `PersonErased` and drops the
//! person's key as soon as it reads the event ([`Vault::watch_erasures`]); cached
//! entries also expire, so that a process whose watcher is stuck cannot go on
//! decrypting for long.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use kujira_config::{MASTER_KEY_LEN, MasterKeySetting, keyfile};
use kujira_domain::personal::{PERSON_FIELD, PERSONAL_FIELD};
use kujira_domain::values::Email;
use kujira_eventlog::{Checkpoint, EventStore, RecordedEvent};
use serde_json::Value;
use sha2::Sha256;
use sqlx::{PgPool, Row};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use zeroize::Zeroizing;

const NONCE_LEN: usize = 12;
/// The text the key check encrypts.
const CHECK_TEXT: &[u8] = b"kujira master key check v1";
/// The envelope's marker field; no plaintext personal part has it.
const SEALED: &str = "sealed";

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error(
        "the database holds personal data encrypted with a master key, but the key file {path} \
         does not exist. Restore it from your backup (or set KUJIRA_MASTER_KEY or \
         KUJIRA_MASTER_KEY_FILE to the key in use); a new key would make every person's data \
         unreadable"
    )]
    MissingMasterKey { path: String },
    #[error(
        "the master key from {origin} is not the key this database's personal data was \
         encrypted with. Set KUJIRA_MASTER_KEY or KUJIRA_MASTER_KEY_FILE to the right key (or \
         restore the key file from your backup)"
    )]
    WrongMasterKey { origin: String },
    #[error("master key: {0:#}")]
    KeyFile(anyhow::Error),
    #[error("event {event_id} has a personal part but no valid person_id")]
    NoPerson { event_id: Uuid },
    #[error("person {0} has no data key (unknown, or erased)")]
    NoKey(Uuid),
    #[error("the sealed personal part of event {event_id} cannot be opened: it was altered")]
    Tampered { event_id: Uuid },
    #[error("the sealed personal part of event {event_id} is malformed: {message}")]
    Malformed { event_id: Uuid, message: String },
    #[error("cannot encode a personal part: {0}")]
    Encode(String),
    #[error("email {0} is already linked to another person")]
    EmailTaken(Uuid),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Log(#[from] kujira_eventlog::Error),
}

/// A person found (or created) by email.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FoundPerson {
    pub person_id: Uuid,
    /// True when this call created the person (no earlier submission had the address).
    pub created: bool,
}

mod cache;
mod erasure;
mod guard;
mod persons;
pub use guard::PersonGuard;

use cache::{CACHE_MAX, CACHE_TTL, Cached};

/// What destroying a person's key removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Destroyed {
    /// Whether a key was there to destroy (false when it was already gone).
    pub key: bool,
    /// Email lookups removed.
    pub lookups: u64,
}

struct Inner {
    pool: PgPool,
    master: Aes256Gcm,
    lookup_key: Zeroizing<[u8; 32]>,
    cache: Mutex<HashMap<Uuid, Cached>>,
    /// [`CACHE_TTL`], shorter in tests ([`Vault::with_cache_ttl`]).
    cache_ttl: Duration,
    /// When the cache was last swept of keys past their time.
    swept: Mutex<Instant>,
    /// Addresses (keyed hashes) this process has found or created a person for: a
    /// hint only, never trusted. [`Vault::person_guard`] names that person for a new
    /// case, and the case's append checks it; [`Vault::person_for_email`] first tries
    /// a plain read for them, which the database answers faster than the statement
    /// that may create the person (measured: 14,100 against 11,100 lookups/s at 32
    /// clients). Dropped with the person's key on erasure.
    seen: Mutex<HashMap<[u8; 32], Uuid>>,
    /// Bumped on every erasure seen, so that caches of decrypted state can tell
    /// that they may hold an erased person's data.
    erasures: AtomicU64,
}

/// Handle on the vault. Cheap to clone.
#[derive(Clone)]
pub struct Vault(Arc<Inner>);

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vault(..)")
    }
}

impl Vault {
    /// Opens the vault with the configured master key, checking that it is the key
    /// the database's data keys were wrapped with. With no key configured and none in
    /// the data directory, a key is generated there, but only for a database that
    /// holds no keys yet.
    pub async fn unlock(pool: PgPool, setting: &MasterKeySetting) -> Result<Self, VaultError> {
        let has_check: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM vault_meta WHERE id = 1)")
                .fetch_one(&pool)
                .await?;
        let (bytes, origin) = match setting {
            MasterKeySetting::Given { bytes, origin } => {
                (Zeroizing::new(bytes.expose().to_vec()), origin.clone())
            }
            MasterKeySetting::DataDir(path) => {
                let shown = path.display().to_string();
                if !path.exists() && has_check {
                    return Err(VaultError::MissingMasterKey { path: shown });
                }
                let (bytes, created) =
                    keyfile::load_or_generate(path, MASTER_KEY_LEN).map_err(VaultError::KeyFile)?;
                if created == keyfile::Created::Written {
                    tracing::warn!(
                        path = %shown,
                        "generated a new master key; it protects every person's data: keep a \
                         copy somewhere safe, and in production keep it outside the data \
                         directory (KUJIRA_MASTER_KEY_FILE)"
                    );
                }
                (Zeroizing::new(bytes), format!("the key file {shown}"))
            }
        };
        if bytes.len() != MASTER_KEY_LEN {
            return Err(VaultError::KeyFile(anyhow::anyhow!(
                "{origin} must hold exactly {MASTER_KEY_LEN} bytes"
            )));
        }
        let vault = Self::with_master_key(pool, &bytes);
        vault.check_master_key(&origin).await?;
        Ok(vault)
    }

    /// A vault on `master` without checking it against the database: for tests that
    /// never reach the database (a router built to check its routes). Everything else
    /// uses [`Vault::unlock`].
    pub fn unchecked(pool: PgPool, master: &[u8; 32]) -> Self {
        Self::with_master_key(pool, master)
    }

    fn with_master_key(pool: PgPool, master: &[u8]) -> Self {
        let hk = hkdf::Hkdf::<Sha256>::new(Some(b"kujira/vault/v1"), master);
        let mut wrap = Zeroizing::new([0u8; 32]);
        let mut lookup = Zeroizing::new([0u8; 32]);
        // Separate keys for separate jobs: the hash of an address must not be
        // computable from anything the wrapping key ever produced, and vice versa.
        hk.expand(b"wrap data keys", &mut wrap[..])
            .expect("32 bytes is a valid HKDF length");
        hk.expand(b"email lookup", &mut lookup[..])
            .expect("32 bytes is a valid HKDF length");
        Self(Arc::new(Inner {
            pool,
            master: Aes256Gcm::new_from_slice(&wrap[..]).expect("32-byte key"),
            lookup_key: lookup,
            cache: Mutex::new(HashMap::new()),
            cache_ttl: CACHE_TTL,
            swept: Mutex::new(Instant::now()),
            seen: Mutex::new(HashMap::new()),
            erasures: AtomicU64::new(0),
        }))
    }

    async fn check_master_key(&self, origin: &str) -> Result<(), VaultError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::fill(&mut nonce);
        let sealed = self.wrap(&nonce, CHECK_TEXT, b"kujira/vault/check")?;
        // First start: store the check. A concurrent first start with another key
        // loses the insert and fails the check below, as it should.
        sqlx::query("INSERT INTO vault_meta (id, key_check) VALUES (1, $1) ON CONFLICT DO NOTHING")
            .bind(&sealed)
            .execute(&self.0.pool)
            .await?;
        let stored: Vec<u8> = sqlx::query_scalar("SELECT key_check FROM vault_meta WHERE id = 1")
            .fetch_one(&self.0.pool)
            .await?;
        match self.unwrap_bytes(&stored, b"kujira/vault/check") {
            Some(t) if t.as_slice() == CHECK_TEXT => Ok(()),
            _ => Err(VaultError::WrongMasterKey {
                origin: origin.to_owned(),
            }),
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.0.pool
    }

    /// Counts the erasures this process has seen (see the module docs).
    pub fn erasure_generation(&self) -> u64 {
        self.0.erasures.load(Ordering::Acquire)
    }

    fn wrap(
        &self,
        nonce: &[u8; NONCE_LEN],
        plain: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, VaultError> {
        let ct = self
            .0
            .master
            .encrypt(Nonce::from_slice(nonce), Payload { msg: plain, aad })
            .map_err(|_| VaultError::Encode("wrapping failed".into()))?;
        Ok([nonce.as_slice(), &ct].concat())
    }

    fn unwrap_bytes(&self, wrapped: &[u8], aad: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        if wrapped.len() <= NONCE_LEN {
            return None;
        }
        let (nonce, ct) = wrapped.split_at(NONCE_LEN);
        self.0
            .master
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
            .ok()
            .map(Zeroizing::new)
    }

    /// A fresh data key for `person_id`: the key and its wrapped form.
    fn new_data_key(&self, person_id: Uuid) -> Result<(Arc<Aes256Gcm>, Vec<u8>), VaultError> {
        let mut key = Zeroizing::new([0u8; 32]);
        rand::fill(&mut key[..]);
        let mut nonce = [0u8; NONCE_LEN];
        rand::fill(&mut nonce);
        let wrapped = self.wrap(&nonce, &key[..], person_id.as_bytes())?;
        let cipher = Aes256Gcm::new_from_slice(&key[..]).expect("32-byte key");
        Ok((Arc::new(cipher), wrapped))
    }

    fn unwrap_data_key(
        &self,
        person_id: Uuid,
        wrapped: &[u8],
    ) -> Result<Arc<Aes256Gcm>, VaultError> {
        let key = self
            .unwrap_bytes(wrapped, person_id.as_bytes())
            .filter(|k| k.len() == 32)
            // The master key was checked at start-up: a key that does not open was
            // altered (or copied from another person's row).
            .ok_or(VaultError::Tampered {
                event_id: person_id,
            })?;
        Ok(Arc::new(
            Aes256Gcm::new_from_slice(&key).expect("32-byte key"),
        ))
    }

    /// Whether the person's data can still be read.
    pub async fn holds(&self, person_id: Uuid) -> Result<bool, VaultError> {
        let held: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM person_keys WHERE person_id = $1)")
                .bind(person_id)
                .fetch_one(&self.0.pool)
                .await?;
        Ok(held)
    }

    /// Seals the `personal` part of an event's `data` in place, with the key of the
    /// person named by its `person_id`, binding `event_id`. Data without a personal
    /// part (or an already sealed one) is left as it is.
    pub async fn seal(&self, event_id: Uuid, data: &mut Value) -> Result<(), VaultError> {
        let Some(obj) = data.as_object_mut() else {
            return Ok(());
        };
        match obj.get(PERSONAL_FIELD) {
            Some(Value::Object(p)) if !p.contains_key(SEALED) => {}
            _ => return Ok(()),
        }
        let person_id = obj
            .get(PERSON_FIELD)
            .and_then(Value::as_str)
            .and_then(|s| Uuid::parse_str(s).ok())
            .filter(|p| !p.is_nil())
            .ok_or(VaultError::NoPerson { event_id })?;
        let key = self
            .key(person_id)
            .await?
            .ok_or(VaultError::NoKey(person_id))?;
        let plain = Zeroizing::new(
            serde_json::to_vec(&obj[PERSONAL_FIELD])
                .map_err(|e| VaultError::Encode(e.to_string()))?,
        );
        let mut nonce = [0u8; NONCE_LEN];
        rand::fill(&mut nonce);
        let ct = key
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &plain,
                    aad: event_id.as_bytes(),
                },
            )
            .map_err(|_| VaultError::Encode("encryption failed".into()))?;
        obj.insert(
            PERSONAL_FIELD.to_owned(),
            serde_json::json!({ SEALED: 1, "nonce": B64.encode(nonce), "ciphertext": B64.encode(ct) }),
        );
        Ok(())
    }

    /// Opens the sealed `personal` part of an event's `data` in place: the plaintext,
    /// or `null` when the person was erased. Anything else is left as it is.
    pub async fn open(&self, event_id: Uuid, data: &mut Value) -> Result<(), VaultError> {
        let Some(person_id) = sealed_person(event_id, data)? else {
            return Ok(());
        };
        let key = self.key(person_id).await?;
        open_with(key.as_deref(), event_id, data)
    }

    /// Opens every sealed part of `events` in place, loading the keys they need in one
    /// query.
    pub async fn open_events(&self, events: &mut [RecordedEvent]) -> Result<(), VaultError> {
        let mut persons = Vec::new();
        for e in events.iter() {
            if let Some(p) = sealed_person(e.event_id, &e.data)?
                && !persons.contains(&p)
            {
                persons.push(p);
            }
        }
        let keys = self.keys_of(&persons).await?;
        for e in events.iter_mut() {
            if let Some(p) = sealed_person(e.event_id, &e.data)? {
                let key = keys.get(&p).cloned().flatten();
                open_with(key.as_deref(), e.event_id, &mut e.data)?;
            }
        }
        Ok(())
    }
}

/// The person whose key sealed `data.personal`, when it is sealed.
fn sealed_person(event_id: Uuid, data: &Value) -> Result<Option<Uuid>, VaultError> {
    match data.get(PERSONAL_FIELD) {
        Some(Value::Object(p)) if p.contains_key(SEALED) => {}
        _ => return Ok(None),
    }
    data.get(PERSON_FIELD)
        .and_then(Value::as_str)
        .and_then(|s| Uuid::parse_str(s).ok())
        .map(Some)
        .ok_or(VaultError::NoPerson { event_id })
}

fn open_with(key: Option<&Aes256Gcm>, event_id: Uuid, data: &mut Value) -> Result<(), VaultError> {
    let Some(obj) = data.as_object_mut() else {
        return Ok(());
    };
    let Some(key) = key else {
        obj.insert(PERSONAL_FIELD.to_owned(), Value::Null);
        return Ok(());
    };
    let malformed = |message: &str| VaultError::Malformed {
        event_id,
        message: message.to_owned(),
    };
    let field = |name: &str| -> Result<Vec<u8>, VaultError> {
        let s = obj[PERSONAL_FIELD]
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| malformed(&format!("no {name}")))?;
        B64.decode(s)
            .map_err(|_| malformed(&format!("{name} is not base64")))
    };
    let nonce = field("nonce")?;
    let ct = field("ciphertext")?;
    if nonce.len() != NONCE_LEN {
        return Err(malformed("bad nonce length"));
    }
    let plain = Zeroizing::new(
        key.decrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: &ct,
                aad: event_id.as_bytes(),
            },
        )
        .map_err(|_| VaultError::Tampered { event_id })?,
    );
    let value: Value =
        serde_json::from_slice(&plain).map_err(|_| malformed("the plaintext is not JSON"))?;
    obj.insert(PERSONAL_FIELD.to_owned(), value);
    Ok(())
}
