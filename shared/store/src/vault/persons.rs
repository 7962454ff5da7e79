//! Persons found by the keyed hash of an address, created with their data key, and
//! addresses linked to or unlinked from them.

use super::*;

impl Vault {
    /// The keyed hash an address is looked up by.
    pub fn email_hash(&self, email: &Email) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0.lookup_key[..])
            .expect("HMAC takes keys of any length");
        // Addresses arrive NFKC-normalised; case never tells two people apart in
        // practice, however RFC 5321 reads the local part.
        mac.update(email.as_str().to_lowercase().as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The person who used `email` before, or a new person (with a data key) when
    /// nobody did. One statement: the lookup, and for a new person the lookup row and
    /// the wrapped key, so that a submission costs one extra round trip at most. An
    /// address this process has met before is first read with a plain query (see
    /// `Inner::seen`); the database's answer decides either way.
    pub async fn person_for_email(&self, email: &Email) -> Result<FoundPerson, VaultError> {
        let hash = self.email_hash(email);
        if self.seen_before(&hash)
            && let Some(found) = self.known_person(&hash).await?
        {
            return Ok(found);
        }
        for _ in 0..3 {
            let candidate = Uuid::now_v7();
            let (_, wrapped) = self.new_data_key(candidate)?;
            let row = sqlx::query(
                "WITH found AS ( \
                   SELECT l.person_id, k.wrapped_key FROM person_lookup l \
                   LEFT JOIN person_keys k ON k.person_id = l.person_id \
                   WHERE l.email_hash = $1), \
                 ins AS ( \
                   INSERT INTO person_lookup (email_hash, person_id) \
                   SELECT $1, $2 WHERE NOT EXISTS (SELECT 1 FROM found) \
                   ON CONFLICT (email_hash) DO NOTHING RETURNING person_id), \
                 key AS ( \
                   INSERT INTO person_keys (person_id, wrapped_key) \
                   SELECT person_id, $3 FROM ins RETURNING person_id) \
                 SELECT person_id, wrapped_key, false AS created FROM found \
                 UNION ALL SELECT person_id, $3::bytea, true FROM ins",
            )
            .bind(&hash[..])
            .bind(candidate)
            .bind(&wrapped)
            .fetch_optional(&self.0.pool)
            .await?;
            let Some(row) = row else {
                // Another submission with the same address created the person after our
                // snapshot: look again.
                continue;
            };
            let person_id: Uuid = row.try_get("person_id")?;
            let created: bool = row.try_get("created")?;
            let wrapped: Option<Vec<u8>> = row.try_get("wrapped_key")?;
            match wrapped {
                Some(w) => {
                    self.hold_key(person_id, &w)?;
                    self.note_seen(hash, person_id);
                    return Ok(FoundPerson { person_id, created });
                }
                None => {
                    // A lookup left behind by an interrupted erasure: the person is gone,
                    // so the address starts a new person.
                    sqlx::query(
                        "DELETE FROM person_lookup WHERE email_hash = $1 AND person_id = $2",
                    )
                    .bind(&hash[..])
                    .bind(person_id)
                    .execute(&self.0.pool)
                    .await?;
                }
            }
        }
        Err(VaultError::Database(sqlx::Error::Protocol(
            "the person lookup kept changing under us".into(),
        )))
    }

    /// The person behind a lookup row with its key, by a plain read (no write
    /// possible): `None` when there is none, or when the row's key is gone (a lookup
    /// left behind by an interrupted erasure, which the creating statement clears).
    async fn known_person(&self, hash: &[u8; 32]) -> Result<Option<FoundPerson>, VaultError> {
        let row = sqlx::query(
            "SELECT l.person_id, k.wrapped_key FROM person_lookup l \
             LEFT JOIN person_keys k ON k.person_id = l.person_id WHERE l.email_hash = $1",
        )
        .bind(&hash[..])
        .fetch_optional(&self.0.pool)
        .await?;
        let Some(row) = row else {
            self.forget_seen(hash);
            return Ok(None);
        };
        let person_id: Uuid = row.try_get("person_id")?;
        let Some(wrapped) = row.try_get::<Option<Vec<u8>>, _>("wrapped_key")? else {
            return Ok(None);
        };
        self.hold_key(person_id, &wrapped)?;
        Ok(Some(FoundPerson {
            person_id,
            created: false,
        }))
    }

    /// Caches the person's key from its wrapped form, unless it is cached already
    /// (keys never change, so the cached one is the same key).
    fn hold_key(&self, person_id: Uuid, wrapped: &[u8]) -> Result<(), VaultError> {
        if let Some(Some(_)) = self.cached(person_id) {
            return Ok(());
        }
        let key = self.unwrap_data_key(person_id, wrapped)?;
        self.remember(person_id, Cached::Key(key, Instant::now()));
        Ok(())
    }

    fn seen_before(&self, hash: &[u8; 32]) -> bool {
        let seen = self.0.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.contains_key(hash)
    }

    pub(super) fn note_seen(&self, hash: [u8; 32], person_id: Uuid) {
        let mut seen = self.0.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= CACHE_MAX {
            seen.clear();
        }
        seen.insert(hash, person_id);
    }

    pub(super) fn forget_seen(&self, hash: &[u8; 32]) {
        let mut seen = self.0.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.remove(hash);
    }

    /// The person `email` finds, if any (nothing is created).
    pub async fn find_person(&self, email: &Email) -> Result<Option<Uuid>, VaultError> {
        let found: Option<Uuid> =
            sqlx::query_scalar("SELECT person_id FROM person_lookup WHERE email_hash = $1")
                .bind(&self.email_hash(email)[..])
                .fetch_optional(&self.0.pool)
                .await?;
        Ok(found)
    }

    /// A new person with no email to be found by (a phone inquiry taken at the desk).
    pub async fn new_person(&self) -> Result<Uuid, VaultError> {
        let person_id = Uuid::now_v7();
        let (key, wrapped) = self.new_data_key(person_id)?;
        sqlx::query("INSERT INTO person_keys (person_id, wrapped_key) VALUES ($1, $2)")
            .bind(person_id)
            .bind(&wrapped)
            .execute(&self.0.pool)
            .await?;
        self.remember(person_id, Cached::Key(key, Instant::now()));
        Ok(person_id)
    }

    /// Makes `email` find `person_id` (after a correction of the address, or when a
    /// person first given without an address gets one). An address that already finds
    /// another person is refused: merging two persons is the desk's decision.
    pub async fn link_email(&self, person_id: Uuid, email: &Email) -> Result<(), VaultError> {
        let hash = self.email_hash(email);
        let owner: Uuid = sqlx::query_scalar(
            "WITH ins AS (INSERT INTO person_lookup (email_hash, person_id) VALUES ($1, $2) \
                          ON CONFLICT (email_hash) DO NOTHING RETURNING person_id) \
             SELECT person_id FROM ins UNION ALL \
             SELECT person_id FROM person_lookup WHERE email_hash = $1 LIMIT 1",
        )
        .bind(&hash[..])
        .bind(person_id)
        .fetch_one(&self.0.pool)
        .await?;
        if owner == person_id {
            Ok(())
        } else {
            Err(VaultError::EmailTaken(owner))
        }
    }

    /// Stops `email` from finding `person_id` (the address was corrected away).
    pub async fn unlink_email(&self, person_id: Uuid, email: &Email) -> Result<(), VaultError> {
        let hash = self.email_hash(email);
        sqlx::query("DELETE FROM person_lookup WHERE email_hash = $1 AND person_id = $2")
            .bind(&hash[..])
            .bind(person_id)
            .execute(&self.0.pool)
            .await?;
        self.forget_seen(&hash);
        Ok(())
    }
}
