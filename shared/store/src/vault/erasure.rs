//! Erasure in the vault: destroying a person's key and lookups, and every process
//! forgetting the keys of persons erased anywhere, as it reads `PersonErased`.

use super::*;

impl Vault {
    /// Destroys the person's key and email lookups: from now on nothing about them
    /// can be read. Idempotent.
    pub async fn destroy(&self, person_id: Uuid) -> Result<Destroyed, VaultError> {
        let mut tx = self.0.pool.begin().await?;
        let destroyed = self.destroy_in(&mut tx, person_id).await?;
        tx.commit().await?;
        Ok(destroyed)
    }

    /// [`Vault::destroy`] inside the caller's transaction (the erasure projection's,
    /// so that the erasure record and the destruction commit together). The cached
    /// key is dropped at once: dropping it early is harmless, keeping it is not.
    pub async fn destroy_in(
        &self,
        conn: &mut sqlx::PgConnection,
        person_id: Uuid,
    ) -> Result<Destroyed, VaultError> {
        let key = sqlx::query("DELETE FROM person_keys WHERE person_id = $1")
            .bind(person_id)
            .execute(&mut *conn)
            .await?
            .rows_affected()
            > 0;
        let lookups = sqlx::query("DELETE FROM person_lookup WHERE person_id = $1")
            .bind(person_id)
            .execute(&mut *conn)
            .await?
            .rows_affected();
        self.forget(person_id);
        Ok(Destroyed { key, lookups })
    }

    /// Drops the person's cached key (their erasure was read in the log), and the
    /// hints of their addresses.
    pub fn forget(&self, person_id: Uuid) {
        self.remember(person_id, Cached::Gone);
        self.0
            .seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, p| *p != person_id);
        self.0.erasures.fetch_add(1, Ordering::AcqRel);
    }

    /// Reads `PersonErased` events appended after `from`, by any process, and drops
    /// the erased persons' cached keys, until `shutdown`. Every process that
    /// decrypts runs this.
    ///
    /// `from` is the log's head ([`EventStore::head`]) taken *before* this process
    /// caches any key: taken later (as this function once did itself, on its first
    /// poll), an erasure appended between a key's caching and that moment was never
    /// read, and the key stayed until its cache time ran out.
    pub async fn watch_erasures(
        self,
        events: EventStore,
        mut from: Checkpoint,
        shutdown: CancellationToken,
    ) {
        let mut sub = events.subscribe().await;
        loop {
            match self.forget_erased_since(&events, from).await {
                Ok(next) => from = next,
                Err(e) => tracing::warn!(error = %e, "vault: cannot read erasures; retrying"),
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = sub.wait() => {}
            }
        }
    }

    /// Forgets the keys of every person erased after `from`; returns where it got to.
    pub async fn forget_erased_since(
        &self,
        events: &EventStore,
        mut from: Checkpoint,
    ) -> Result<Checkpoint, VaultError> {
        loop {
            let batch = events
                .read_batch(
                    from,
                    500,
                    Some(&[kujira_domain::person::PersonEvent::ERASED]),
                )
                .await?;
            for e in &batch.events {
                if let Some(p) = e
                    .data
                    .get(PERSON_FIELD)
                    .and_then(Value::as_str)
                    .and_then(|s| Uuid::parse_str(s).ok())
                {
                    self.forget(p);
                }
            }
            // A filtered read moves past the events it skipped, so that waking up
            // costs nothing however long the log grows.
            from = batch.next;
            if !batch.full {
                // The watcher wakes every few seconds in `serve`, busy or not.
                self.sweep_if_due();
                return Ok(from);
            }
        }
    }
}
