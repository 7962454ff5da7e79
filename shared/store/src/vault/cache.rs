//! The data keys a process holds in memory: for how long, how many, and how they
//! are swept out (see [`CACHE_TTL`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aes_gcm::Aes256Gcm;
use sqlx::Row;
use uuid::Uuid;

use super::{Vault, VaultError};

/// How long a cached key may be used without being read again. Past it, the key is
/// also dropped from memory (zeroized) at the next sweep: a process does not keep
/// the keys of everybody it ever served, only of those it serves now.
pub(super) const CACHE_TTL: Duration = Duration::from_secs(10 * 60);
/// How often, at most, the cache is swept of keys past their time. Sweeps run when
/// a key is cached and whenever the erasure watcher wakes (every few seconds in
/// `serve`), so an idle process drops its keys too.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// Past this many cached keys, those past their time are dropped, and if that is
/// not enough, all (a rebuild touches many persons).
pub(super) const CACHE_MAX: usize = 50_000;

pub(super) enum Cached {
    Key(Arc<Aes256Gcm>, Instant),
    /// No key: the person was erased. Keys are created before the first event that
    /// needs them is appended, so a readable event without a key is an erased one.
    Gone,
}

impl Vault {
    pub(super) fn remember(&self, person_id: Uuid, entry: Cached) {
        self.sweep_if_due();
        let mut cache = self.0.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHE_MAX {
            retain_fresh(&mut cache, self.0.cache_ttl);
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
        }
        cache.insert(person_id, entry);
    }

    /// The same vault with another time-to-live for cached keys. Call it on a vault
    /// nobody else holds yet (right after [`Vault::unlock`]); for tests, which cannot
    /// wait ten minutes.
    pub fn with_cache_ttl(mut self, ttl: Duration) -> Self {
        Arc::get_mut(&mut self.0)
            .expect("with_cache_ttl is called before the vault is shared")
            .cache_ttl = ttl;
        self
    }

    /// How many data keys this process holds in memory now.
    pub fn cached_keys(&self) -> usize {
        let cache = self.0.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .values()
            .filter(|c| matches!(c, Cached::Key(..)))
            .count()
    }

    /// Drops (and so zeroizes) every cached key past its time-to-live; returns how
    /// many. The markers of erased persons stay: they hold nothing.
    pub fn sweep_expired(&self) -> usize {
        let mut cache = self.0.cache.lock().unwrap_or_else(|p| p.into_inner());
        let before = cache.len();
        retain_fresh(&mut cache, self.0.cache_ttl);
        before - cache.len()
    }

    pub(super) fn sweep_if_due(&self) {
        {
            let mut swept = self.0.swept.lock().unwrap_or_else(|p| p.into_inner());
            if swept.elapsed() < SWEEP_EVERY.min(self.0.cache_ttl) {
                return;
            }
            *swept = Instant::now();
        }
        self.sweep_expired();
    }

    pub(super) fn cached(&self, person_id: Uuid) -> Option<Option<Arc<Aes256Gcm>>> {
        let cache = self.0.cache.lock().unwrap_or_else(|p| p.into_inner());
        match cache.get(&person_id)? {
            Cached::Key(k, at) if at.elapsed() < self.0.cache_ttl => Some(Some(k.clone())),
            Cached::Key(..) => None,
            Cached::Gone => Some(None),
        }
    }

    /// The person's key, from the cache or the database; `None` once erased.
    pub(super) async fn key(&self, person_id: Uuid) -> Result<Option<Arc<Aes256Gcm>>, VaultError> {
        Ok(self
            .keys_of(&[person_id])
            .await?
            .remove(&person_id)
            .flatten())
    }

    /// The keys of `persons` (`None` for an erased person): the cached ones, and the
    /// others read in one query and cached. The answer is used as it is, never read
    /// back from the cache: a key that reached its time-to-live between the two
    /// would read as erased, and show a living person's data as gone.
    pub(super) async fn keys_of(
        &self,
        persons: &[Uuid],
    ) -> Result<HashMap<Uuid, Option<Arc<Aes256Gcm>>>, VaultError> {
        let mut keys = HashMap::with_capacity(persons.len());
        let mut missing = Vec::new();
        for &p in persons {
            match self.cached(p) {
                Some(k) => {
                    keys.insert(p, k);
                }
                None => missing.push(p),
            }
        }
        if missing.is_empty() {
            return Ok(keys);
        }
        let rows =
            sqlx::query("SELECT person_id, wrapped_key FROM person_keys WHERE person_id = ANY($1)")
                .bind(&missing)
                .fetch_all(&self.0.pool)
                .await?;
        for row in rows {
            let person_id: Uuid = row.try_get("person_id")?;
            let wrapped: Vec<u8> = row.try_get("wrapped_key")?;
            let key = self.unwrap_data_key(person_id, &wrapped)?;
            self.remember(person_id, Cached::Key(key.clone(), Instant::now()));
            keys.insert(person_id, Some(key));
        }
        for p in missing {
            if let std::collections::hash_map::Entry::Vacant(v) = keys.entry(p) {
                self.remember(p, Cached::Gone);
                v.insert(None);
            }
        }
        Ok(keys)
    }
}

fn retain_fresh(cache: &mut HashMap<Uuid, Cached>, ttl: Duration) {
    cache.retain(|_, c| match c {
        Cached::Key(_, at) => at.elapsed() < ttl,
        Cached::Gone => true,
    });
}
