//! [`Store`]: the event log as services use it, sealing personal parts on the way in
//! and opening them on the way out.

use kujira_eventlog::{
    AppendResult, EventStore, ExpectedVersion, Guard, NewEvent, RecordedEvent, StreamName,
};
use std::borrow::Cow;

use serde::de::DeserializeOwned;

use crate::vault::{Vault, VaultError};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Log(#[from] kujira_eventlog::Error),
    #[error(transparent)]
    Vault(#[from] VaultError),
}

impl StoreError {
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Log(e) if e.is_conflict())
    }
}

/// The event log with the vault in front of it. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    events: EventStore,
    vault: Vault,
}

impl Store {
    pub fn new(events: EventStore, vault: Vault) -> Self {
        Self { events, vault }
    }

    /// The store on `pool`, its vault unlocked with the configured master key.
    /// Must be called inside a Tokio runtime (the log starts its notifier).
    pub async fn open(
        pool: sqlx::PgPool,
        master_key: &kujira_config::MasterKeySetting,
    ) -> Result<Self, VaultError> {
        let vault = Vault::unlock(pool.clone(), master_key).await?;
        Ok(Self::new(EventStore::new(pool), vault))
    }

    /// The raw log, for readers that need no personal data (statistics, the outbox).
    pub fn events(&self) -> &EventStore {
        &self.events
    }

    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    pub fn pool(&self) -> &sqlx::PgPool {
        self.events.pool()
    }

    /// Seals every event's personal part, then appends (see [`EventStore::append`]).
    pub async fn append(
        &self,
        stream: &StreamName,
        expected: ExpectedVersion,
        mut events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        for e in &mut events {
            self.vault.seal(e.id, &mut e.data).await?;
        }
        Ok(self.events.append(stream, expected, events).await?)
    }

    /// Seals every event's personal part, then appends them to the new stream
    /// `stream` in the same statement as `guard` (see [`EventStore::append_guarded`]).
    pub async fn append_guarded(
        &self,
        stream: &StreamName,
        mut events: Vec<NewEvent>,
        guard: &Guard,
    ) -> Result<AppendResult, StoreError> {
        for e in &mut events {
            self.vault.seal(e.id, &mut e.data).await?;
        }
        Ok(self.events.append_guarded(stream, events, guard).await?)
    }

    /// Up to `limit` events of one stream after `after_version`, opened.
    pub async fn read_stream(
        &self,
        stream: &StreamName,
        after_version: u64,
        limit: i64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut page = self
            .events
            .read_stream(stream, after_version, limit)
            .await?;
        self.vault.open_events(&mut page).await?;
        Ok(page)
    }

    /// Every event of one stream, opened.
    pub async fn read_whole_stream(
        &self,
        stream: &StreamName,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut all = Vec::new();
        loop {
            let after = all.last().map_or(0, |e: &RecordedEvent| e.stream_version);
            let page = self.read_stream(stream, after, 1000).await?;
            let done = page.len() < 1000;
            all.extend(page);
            if done {
                return Ok(all);
            }
        }
    }

    /// Loads and decodes a whole stream, opened; returns its events and version.
    pub async fn load<E: DeserializeOwned>(
        &self,
        stream: &StreamName,
    ) -> Result<(Vec<E>, u64), StoreError> {
        let recorded = self.read_whole_stream(stream).await?;
        let version = recorded.last().map_or(0, |e| e.stream_version);
        let events = recorded
            .iter()
            .map(RecordedEvent::decode)
            .collect::<Result<Vec<E>, _>>()?;
        Ok((events, version))
    }

    /// Opens the personal part of one event read from the raw log.
    pub async fn open_event(&self, mut event: RecordedEvent) -> Result<RecordedEvent, StoreError> {
        self.vault.open(event.event_id, &mut event.data).await?;
        Ok(event)
    }

    /// Opens the personal parts of events read from the raw log, in place.
    pub async fn open_all(&self, events: &mut [RecordedEvent]) -> Result<(), StoreError> {
        Ok(self.vault.open_events(events).await?)
    }

    /// `events` in order, those `wanted` opened (their keys loaded in one query)
    /// and the others borrowed as they are: a projection opens only the personal
    /// parts it keeps, and copies nothing else.
    pub async fn open_where<'a>(
        &self,
        events: &'a [RecordedEvent],
        wanted: impl Fn(&RecordedEvent) -> bool,
    ) -> Result<Vec<Cow<'a, RecordedEvent>>, StoreError> {
        let slots: Vec<usize> = (0..events.len()).filter(|&i| wanted(&events[i])).collect();
        let mut picked: Vec<RecordedEvent> = slots.iter().map(|&i| events[i].clone()).collect();
        if !picked.is_empty() {
            self.vault.open_events(&mut picked).await?;
        }
        let mut out: Vec<Cow<'a, RecordedEvent>> = events.iter().map(Cow::Borrowed).collect();
        for (i, e) in slots.into_iter().zip(picked) {
            out[i] = Cow::Owned(e);
        }
        Ok(out)
    }
}
