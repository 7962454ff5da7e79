//! Runs tour commands against the event log: load, decide, append with the expected
//! version, and on a lost race load again and decide again.
//!
//! Each process keeps every tour it has touched in memory (state and version) and
//! serialises the commands of one tour behind a per-tour lock, so that concurrent
//! requests in one process do not race each other into a storm of conflicts. The
//! lock is only an optimisation: the expected version on every append is what keeps
//! two processes (or a stale cache) from ever over-booking a tour.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use kujira_config::{Clock, Config};
use kujira_domain::decider::Decider;
use kujira_domain::tour::{self, Tour, TourCommand, TourError, TourEvent, TourState};
use kujira_eventlog::{EventStore, ExpectedVersion, Metadata, NewEvent, StreamName};
use uuid::Uuid;

use crate::mail;

/// Ids of events and sign-ups are v5 uuids in this namespace, so that a retried
/// request produces the very same ids.
const NAMESPACE: Uuid = Uuid::from_u128(0x6b75_6a69_7261_2d74_6f75_7273_0000_0001);

/// A command gives up after this many lost races in a row; with the per-tour lock
/// only other processes can win one, so this is never reached in practice.
const MAX_ATTEMPTS: usize = 500;

/// The stream of a tour.
pub fn stream(tour_id: Uuid) -> StreamName {
    StreamName::new(tour::CATEGORY, tour_id)
}

/// The sign-up id a one-time form token (or an API idempotency key) stands for.
pub fn sign_up_id_for(tour_id: Uuid, origin: &str, token: &str) -> Uuid {
    Uuid::new_v5(
        &NAMESPACE,
        format!("tour-sign-up/{tour_id}/{origin}/{token}").as_bytes(),
    )
}

fn event_id(stream: &StreamName, event: &TourEvent) -> Uuid {
    Uuid::new_v5(&NAMESPACE, format!("{stream}/{}", event.key()).as_bytes())
}

/// Why a command did not go through.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The tour refused: a clear answer for the person who asked.
    #[error(transparent)]
    Refused(#[from] TourError),
    #[error("the tour stream stays contended after {0} attempts")]
    Contended(usize),
    #[error(transparent)]
    Store(#[from] kujira_eventlog::Error),
}

/// The outcome of a command.
#[derive(Debug, Clone)]
pub struct Executed {
    /// The tour after the command.
    pub state: TourState,
    /// What this command recorded, mails included; empty when it changed nothing
    /// (a retried sign-up, publishing a published tour).
    pub recorded: Vec<TourEvent>,
}

/// Who asks, for the event metadata.
#[derive(Debug, Clone)]
pub struct Actor {
    pub name: String,
    pub correlation_id: Uuid,
    /// More metadata for every event the command records (an API request's fingerprint).
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Actor {
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            correlation_id: Uuid::now_v7(),
            extra: serde_json::Map::new(),
        }
    }

    /// Records `key: value` in the metadata of every event of the command.
    pub fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.extra.insert(key.to_owned(), value.into());
        self
    }
}

#[derive(Debug, Default)]
struct Cached {
    state: TourState,
    version: u64,
}

/// The command side of tours, shared by the web handlers and the CLI.
#[derive(Clone)]
pub struct Tours {
    config: Arc<Config>,
    store: EventStore,
    clock: Arc<dyn Clock>,
    cache: Arc<Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<Cached>>>>>,
}

impl std::fmt::Debug for Tours {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tours").finish_non_exhaustive()
    }
}

impl Tours {
    pub fn new(config: Arc<Config>, store: EventStore, clock: Arc<dyn Clock>) -> Self {
        Self {
            config,
            store,
            clock,
            cache: Arc::default(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn store(&self) -> &EventStore {
        &self.store
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    fn entry(&self, tour_id: Uuid) -> Arc<tokio::sync::Mutex<Cached>> {
        let mut map = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(tour_id).or_default().clone()
    }

    /// Drops the cache entry of a tour that does not exist, so that requests for
    /// made-up ids cannot grow the cache.
    fn forget_if_unknown(&self, tour_id: Uuid) {
        let mut map = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let unknown = map
            .get(&tour_id)
            .is_some_and(|e| e.try_lock().is_ok_and(|c| c.version == 0));
        if unknown {
            map.remove(&tour_id);
        }
    }

    /// Folds in whatever was appended to the stream since the cached version.
    async fn catch_up(&self, tour_id: Uuid, cached: &mut Cached) -> Result<(), CommandError> {
        let stream = stream(tour_id);
        loop {
            let page = self
                .store
                .read_stream(&stream, cached.version, 1000)
                .await?;
            let done = page.len() < 1000;
            for recorded in &page {
                let event: TourEvent = recorded.decode()?;
                cached.state = Tour::evolve(std::mem::take(&mut cached.state), &event);
                cached.version = recorded.stream_version;
            }
            if done {
                return Ok(());
            }
        }
    }

    /// The tour as its stream says now. `None` when it was never scheduled.
    pub async fn load(&self, tour_id: Uuid) -> Result<Option<TourState>, CommandError> {
        let entry = self.entry(tour_id);
        let mut cached = entry.lock().await;
        self.catch_up(tour_id, &mut cached).await?;
        if cached.version == 0 {
            drop(cached);
            self.forget_if_unknown(tour_id);
            return Ok(None);
        }
        Ok(cached.state.details.is_some().then(|| cached.state.clone()))
    }

    /// Decides `command` on the tour's stream and appends the facts and the mails
    /// they cause in one append, retrying on a lost race.
    pub async fn execute(
        &self,
        tour_id: Uuid,
        command: TourCommand,
        actor: &Actor,
    ) -> Result<Executed, CommandError> {
        let stream = stream(tour_id);
        let entry = self.entry(tour_id);
        let mut cached = entry.lock().await;
        for attempt in 1..=MAX_ATTEMPTS {
            self.catch_up(tour_id, &mut cached).await?;
            let decided = match Tour::decide(&cached.state, &command) {
                Ok(decided) => decided,
                Err(e) => {
                    if cached.version == 0 {
                        drop(cached);
                        self.forget_if_unknown(tour_id);
                    }
                    return Err(e.into());
                }
            };
            if decided.is_empty() {
                return Ok(Executed {
                    state: cached.state.clone(),
                    recorded: vec![],
                });
            }
            let after = decided.iter().fold(cached.state.clone(), Tour::evolve);
            let mails = mail::mails_for(&self.config, tour_id, &after, &decided);
            let recorded: Vec<TourEvent> = decided
                .into_iter()
                .chain(mails.into_iter().map(TourEvent::MailRequested))
                .collect();
            let mut metadata = Metadata::new(actor.name.clone(), actor.correlation_id);
            metadata.extra.extend(actor.extra.clone());
            let new_events = recorded
                .iter()
                .map(|e| NewEvent::encode(event_id(&stream, e), e, metadata.clone()))
                .collect::<Result<Vec<_>, _>>()?;
            let expected = match cached.version {
                0 => ExpectedVersion::NoStream,
                n => ExpectedVersion::Exact(n),
            };
            match self.store.append(&stream, expected, new_events).await {
                Ok(result) if result.replayed => {
                    // The same facts were recorded by a twin request (a double submit
                    // that reached another process): take the stored ones as they are.
                    tracing::debug!(%tour_id, "tour command was already recorded");
                    self.catch_up(tour_id, &mut cached).await?;
                    return Ok(Executed {
                        state: cached.state.clone(),
                        recorded: vec![],
                    });
                }
                Ok(result) => {
                    cached.state = after.clone();
                    cached.version = result.stream_version;
                    return Ok(Executed {
                        state: after,
                        recorded,
                    });
                }
                // Somebody else appended first (another process), or these very
                // facts were recorded at another version: read again, decide again.
                Err(e @ kujira_eventlog::Error::Conflict { .. })
                | Err(e @ kujira_eventlog::Error::DuplicateEventId(_)) => {
                    tracing::debug!(%tour_id, attempt, error = %e, "lost a race; deciding again");
                    tokio::task::yield_now().await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(CommandError::Contended(MAX_ATTEMPTS))
    }

    /// Every tour ever scheduled, in the order they were scheduled, read from the
    /// streams themselves (the CLI runs without the projector).
    pub async fn all_tours(&self) -> Result<Vec<(Uuid, TourState)>, CommandError> {
        let mut ids = Vec::new();
        let mut from = kujira_eventlog::Checkpoint::START;
        loop {
            let page = self
                .store
                .read_all(from, 1000, Some(&["TourScheduled"]))
                .await?;
            let Some(last) = page.last() else { break };
            from = last.checkpoint();
            for e in &page {
                if let Ok(TourEvent::TourScheduled(s)) = e.decode::<TourEvent>() {
                    ids.push(s.tour_id);
                }
            }
        }
        let mut tours = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(state) = self.load(id).await? {
                tours.push((id, state));
            }
        }
        Ok(tours)
    }
}
