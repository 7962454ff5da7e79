//! Runs tour commands through the one command path (`kujira_store::execute`): load
//! the tour's stream, decide, append the facts and the mails they cause with the
//! expected version, and on a lost race load again and decide again.
//!
//! Every tour this process has touched stays in a [`StateCache`], and the commands
//! of one tour are serialised behind it, so that concurrent sign-ups in one process
//! do not race each other into a storm of conflicts. The cache is only an
//! optimisation: the expected version on every append is what keeps two processes
//! from ever over-booking a tour.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use kujira_config::{Clock, Config};
use kujira_domain::decider::Decider;
use kujira_domain::tour::{self, Tour, TourCommand, TourError, TourEvent, TourState};
use kujira_eventlog::StreamName;
use kujira_store::{CommandContext, StateCache, Store};
use uuid::Uuid;

use crate::mail;

/// Sign-up ids are v5 uuids in this namespace, so that a retried request produces the
/// very same ids.
const NAMESPACE: Uuid = Uuid::from_u128(0x6b75_6a69_7261_2d74_6f75_7273_0000_0001);

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

/// Why a command did not go through.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The tour refused: a clear answer for the person who asked.
    #[error(transparent)]
    Refused(#[from] TourError),
    #[error("the tour stream stays contended after {0} attempts")]
    Contended(usize),
    /// Somebody else changed the tour after the version the staff member saw
    /// ([`Actor::seen`]); nothing was recorded.
    #[error("the tour changed since version {seen}; it is at {current}")]
    Stale { seen: u64, current: u64 },
    #[error(transparent)]
    Store(#[from] kujira_store::StoreError),
}

impl From<kujira_store::CommandError<TourError>> for CommandError {
    fn from(e: kujira_store::CommandError<TourError>) -> Self {
        use kujira_store::CommandError as E;
        match e {
            E::Refused(r) => Self::Refused(r),
            E::Contended(n) => Self::Contended(n),
            E::Store(s) => Self::Store(s),
            E::Stale { seen, current } => Self::Stale { seen, current },
        }
    }
}

impl From<kujira_eventlog::Error> for CommandError {
    fn from(e: kujira_eventlog::Error) -> Self {
        Self::Store(e.into())
    }
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
    /// The tour's version the person acting looked at: a staff edit is refused as
    /// [`CommandError::Stale`] when someone else changed the tour since.
    pub seen_version: Option<u64>,
}

impl Actor {
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            correlation_id: Uuid::now_v7(),
            extra: serde_json::Map::new(),
            seen_version: None,
        }
    }

    /// The tour's version the person acting looked at (see [`Actor::seen_version`]).
    pub fn seen(mut self, version: u64) -> Self {
        self.seen_version = Some(version);
        self
    }

    /// Records `key: value` in the metadata of every event of the command.
    pub fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.extra.insert(key.to_owned(), value.into());
        self
    }
}

/// The command side of tours, shared by the web handlers, the desk and the CLI.
#[derive(Clone)]
pub struct Tours {
    config: Arc<Config>,
    store: Store,
    clock: Arc<dyn Clock>,
    cache: Arc<StateCache<Tour>>,
}

impl std::fmt::Debug for Tours {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tours").finish_non_exhaustive()
    }
}

impl Tours {
    pub fn new(config: Arc<Config>, store: Store, clock: Arc<dyn Clock>) -> Self {
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

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The tour as its stream says now. `None` when it was never scheduled.
    pub async fn load(&self, tour_id: Uuid) -> Result<Option<TourState>, CommandError> {
        let (state, version) =
            kujira_store::load::<Tour>(&self.store, &stream(tour_id), Some(&self.cache)).await?;
        Ok((version > 0 && state.details.is_some()).then_some(state))
    }

    /// The tour and its stream's version (for a staff form's stale check).
    pub async fn load_versioned(
        &self,
        tour_id: Uuid,
    ) -> Result<Option<(TourState, u64)>, CommandError> {
        let (state, version) =
            kujira_store::load::<Tour>(&self.store, &stream(tour_id), Some(&self.cache)).await?;
        Ok((version > 0 && state.details.is_some()).then_some((state, version)))
    }

    /// Decides `command` on the tour's stream and appends the facts and the mails
    /// they cause in one append, retrying on a lost race. A sign-up not yet
    /// attributed to a person is attributed here, by its email address.
    pub async fn execute(
        &self,
        tour_id: Uuid,
        mut command: TourCommand,
        actor: &Actor,
    ) -> Result<Executed, CommandError> {
        if let TourCommand::SignUp { sign_up, .. } = &mut command
            && sign_up.person_id.is_nil()
        {
            let person = self
                .store
                .vault()
                .person_for_email(&sign_up.personal.email)
                .await
                .map_err(kujira_store::StoreError::from)?;
            sign_up.person_id = person.person_id;
        }
        let mut ctx = CommandContext::new(actor.name.clone()).correlation(actor.correlation_id);
        if let Some(seen) = actor.seen_version {
            ctx = ctx.seen(seen);
        }
        for (k, v) in &actor.extra {
            ctx = ctx.with(k, v.clone());
        }
        let executed = kujira_store::execute::<Tour>(
            &self.store,
            &stream(tour_id),
            &ctx,
            Some(&self.cache),
            |state| {
                let decided = Tour::decide(state, &command)?;
                if decided.is_empty() {
                    return Ok(decided);
                }
                let after = decided.iter().fold(state.clone(), Tour::evolve);
                let mails = mail::mails_for(tour_id, &after, &decided);
                Ok(decided
                    .into_iter()
                    .chain(mails.into_iter().map(TourEvent::MailQueued))
                    .collect())
            },
        )
        .await?;
        Ok(Executed {
            state: executed.state,
            recorded: executed.recorded,
        })
    }

    /// Every tour ever scheduled, in the order they were scheduled, read from the
    /// streams themselves (the CLI runs without the projector).
    pub async fn all_tours(&self) -> Result<Vec<(Uuid, TourState)>, CommandError> {
        let mut ids = Vec::new();
        let mut from = kujira_eventlog::Checkpoint::START;
        loop {
            let page = self
                .store
                .events()
                .read_all(from, 1000, Some(&["TourScheduled"]))
                .await?;
            let Some(last) = page.last() else { break };
            from = last.checkpoint();
            for e in &page {
                if let Some(id) = e
                    .data
                    .get("tour_id")
                    .and_then(|v| v.as_str())
                    .and_then(|s| Uuid::parse_str(s).ok())
                {
                    ids.push(id);
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
