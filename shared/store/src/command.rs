//! The one path every command takes: load the stream (opened), decide, append with
//! the version read, and on a lost race load again and decide again.
//!
//! Every service runs its commands through [`execute`]: intake opening a case, a
//! tour sign-up, a concierge changing a phase, the scheduler queueing a mail, an
//! erasure. What differs between them is only the decider and the context:
//!
//! * event ids are deterministic ([`Aggregate::event_id`]: from the command id by
//!   default), so a retried request with the same command id is recognised by the
//!   log and replays instead of writing twice;
//! * a staff action carries the version the person saw ([`CommandContext::seen`]):
//!   when someone else changed the stream since (an event the aggregate calls
//!   [`Aggregate::significant`]), it is refused as [`CommandError::Stale`] instead of
//!   being decided again, so that nobody's change is overwritten silently;
//! * a command that usually opens a new stream ([`CommandContext::new_stream`])
//!   appends without reading first, and only reads on a conflict;
//! * a [`StateCache`] keeps streams that many commands hit (a tour during sign-up)
//!   in memory and serialises their commands in one process, so that concurrent
//!   requests do not race each other into a storm of conflicts. It is only an
//!   optimisation: the expected version on every append is what keeps two processes
//!   from ever deciding on a stale state.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kujira_eventlog::{ExpectedVersion, Guard, Metadata, NewEvent, StreamName};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::store::{Store, StoreError};

/// A command gives up after this many lost races in a row. With a [`StateCache`]
/// only other processes can win one, so this is not reached in practice.
const MAX_ATTEMPTS: usize = 500;
/// Past this many cached streams, the idle ones are dropped.
const CACHE_MAX: usize = 10_000;

/// What the command path needs of an aggregate: [`kujira_domain::decider::Aggregate`]
/// whose state and events can be kept and stored.
pub trait Aggregate:
    kujira_domain::decider::Aggregate<
        State: Send + Sync + 'static,
        Event: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
        Error: Send,
    > + Send
    + Sync
    + 'static
{
}

impl<A> Aggregate for A where
    A: kujira_domain::decider::Aggregate<
            State: Send + Sync + 'static,
            Event: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
            Error: Send,
        > + Send
        + Sync
        + 'static
{
}

/// Who asks, and how.
#[derive(Debug, Clone)]
pub struct CommandContext {
    /// `applicant`, `staff:<user id>`, `system:scheduler`, `cli`.
    pub actor: String,
    pub correlation_id: Uuid,
    /// Makes the event ids: the same command id, the same events.
    pub command_id: Uuid,
    /// The stream version the person acting saw.
    pub seen_version: Option<u64>,
    /// The command usually opens the stream: append first, read only on a conflict.
    pub new_stream: bool,
    /// Checked in the statement that opens the stream (see
    /// [`kujira_eventlog::Guard`]); appends to an existing stream ignore it.
    pub guard: Option<Guard>,
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl CommandContext {
    /// A context with a fresh command id.
    pub fn new(actor: impl Into<String>) -> Self {
        let id = Uuid::now_v7();
        Self {
            actor: actor.into(),
            correlation_id: id,
            command_id: id,
            seen_version: None,
            new_stream: false,
            guard: None,
            extra: serde_json::Map::new(),
        }
    }

    /// The opening append must meet `guard`, or fail with
    /// `kujira_eventlog::Error::GuardFailed` having written nothing.
    pub fn guard(mut self, guard: Guard) -> Self {
        self.guard = Some(guard);
        self
    }

    /// The same command id for every retry of one request (a form token, an
    /// idempotency key): a retry then replays instead of writing again.
    pub fn command_id(mut self, id: Uuid) -> Self {
        self.command_id = id;
        self
    }

    pub fn correlation(mut self, id: Uuid) -> Self {
        self.correlation_id = id;
        self
    }

    /// The version of the stream the person acting looked at.
    pub fn seen(mut self, version: u64) -> Self {
        self.seen_version = Some(version);
        self
    }

    pub fn new_stream(mut self) -> Self {
        self.new_stream = true;
        self
    }

    pub fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.extra.insert(key.to_owned(), value.into());
        self
    }

    fn metadata(&self) -> Metadata {
        let mut m = Metadata::new(self.actor.clone(), self.correlation_id)
            .with("command_id", self.command_id.to_string());
        for (k, v) in &self.extra {
            m = m.with(k, v.clone());
        }
        m
    }
}

/// Why a command did not go through.
#[derive(Debug, thiserror::Error)]
pub enum CommandError<E> {
    /// The aggregate refused: a clear answer for the person who asked.
    #[error("refused: {0}")]
    Refused(E),
    /// Somebody else changed the stream after the version the person acting saw.
    #[error("the stream changed since version {seen}; it is at {current}")]
    Stale { seen: u64, current: u64 },
    #[error("the stream stays contended after {0} attempts")]
    Contended(usize),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl<E> From<kujira_eventlog::Error> for CommandError<E> {
    fn from(e: kujira_eventlog::Error) -> Self {
        Self::Store(StoreError::Log(e))
    }
}

/// What a command did.
#[derive(Debug, Clone)]
pub struct Executed<A: Aggregate> {
    /// The stream's state after the command.
    pub state: A::State,
    pub version: u64,
    /// What this command appended; empty when it changed nothing.
    pub recorded: Vec<A::Event>,
    /// True when the same command had been appended before (a retried request).
    pub replayed: bool,
}

struct Entry<A: Aggregate> {
    state: A::State,
    version: u64,
    /// The vault's erasure generation the state was built at: a state folded before
    /// an erasure may hold the erased person's data, and is rebuilt.
    generation: u64,
}

impl<A: Aggregate> Entry<A> {
    fn empty(generation: u64) -> Self {
        Self {
            state: A::State::default(),
            version: 0,
            generation,
        }
    }
}

/// Streams kept in memory between commands (see the module docs).
pub struct StateCache<A: Aggregate> {
    entries: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Entry<A>>>>>,
}

impl<A: Aggregate> Default for StateCache<A> {
    fn default() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<A: Aggregate> std::fmt::Debug for StateCache<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StateCache(..)")
    }
}

impl<A: Aggregate> StateCache<A> {
    fn entry(&self, stream: &StreamName, generation: u64) -> Arc<tokio::sync::Mutex<Entry<A>>> {
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= CACHE_MAX {
            // Entries in use are held elsewhere too; idle ones can be rebuilt.
            map.retain(|_, e| Arc::strong_count(e) > 1);
        }
        map.entry(stream.to_string())
            .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(Entry::empty(generation))))
            .clone()
    }

    /// Drops the entry of a stream that does not exist, so that requests for
    /// made-up ids cannot grow the cache.
    fn forget_if_empty(&self, stream: &StreamName) {
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let empty = map
            .get(stream.as_str())
            .is_some_and(|e| e.try_lock().is_ok_and(|c| c.version == 0));
        if empty {
            map.remove(stream.as_str());
        }
    }
}

fn cell<A: Aggregate>(
    store: &Store,
    stream: &StreamName,
    cache: Option<&StateCache<A>>,
) -> Arc<tokio::sync::Mutex<Entry<A>>> {
    let generation = store.vault().erasure_generation();
    match cache {
        Some(c) => c.entry(stream, generation),
        None => Arc::new(tokio::sync::Mutex::new(Entry::empty(generation))),
    }
}

/// Folds in whatever was appended since the entry's version.
async fn catch_up<A: Aggregate>(
    store: &Store,
    stream: &StreamName,
    entry: &mut Entry<A>,
) -> Result<(), StoreError> {
    let generation = store.vault().erasure_generation();
    if entry.generation != generation {
        *entry = Entry::empty(generation);
    }
    loop {
        let page = store.read_stream(stream, entry.version, 1000).await?;
        let done = page.len() < 1000;
        for recorded in &page {
            let event: A::Event = recorded.decode()?;
            entry.state = A::evolve(std::mem::take(&mut entry.state), &event);
            entry.version = recorded.stream_version;
        }
        if done {
            return Ok(());
        }
    }
}

/// The stream's state and version now.
pub async fn load<A: Aggregate>(
    store: &Store,
    stream: &StreamName,
    cache: Option<&StateCache<A>>,
) -> Result<(A::State, u64), StoreError>
where
    A::State: Clone,
{
    let cell = cell(store, stream, cache);
    let mut entry = cell.lock().await;
    catch_up(store, stream, &mut entry).await?;
    let out = (entry.state.clone(), entry.version);
    drop(entry);
    if out.1 == 0
        && let Some(c) = cache
    {
        c.forget_if_empty(stream);
    }
    Ok(out)
}

async fn in_stream(store: &Store, stream: &StreamName, event_id: Uuid) -> Result<bool, StoreError> {
    let found: Option<String> =
        sqlx::query_scalar("SELECT stream_name FROM events WHERE event_id = $1")
            .bind(event_id)
            .fetch_optional(store.pool())
            .await
            .map_err(kujira_eventlog::Error::from)?;
    Ok(found.as_deref() == Some(stream.as_str()))
}

/// Runs one command on `stream` (see the module docs). `decide` is called with the
/// current state, possibly more than once; it returns the events to append, and may
/// add to what the decider decided (the mails the facts cause).
pub async fn execute<A: Aggregate>(
    store: &Store,
    stream: &StreamName,
    ctx: &CommandContext,
    cache: Option<&StateCache<A>>,
    mut decide: impl FnMut(&A::State) -> Result<Vec<A::Event>, A::Error>,
) -> Result<Executed<A>, CommandError<A::Error>>
where
    A::State: Clone,
{
    let cell = cell(store, stream, cache);
    let mut entry = cell.lock().await;
    let mut read_first = !(ctx.new_stream && entry.version == 0);
    let forget = |entry: tokio::sync::MutexGuard<'_, Entry<A>>| {
        let empty = entry.version == 0;
        drop(entry);
        if empty && let Some(c) = cache {
            c.forget_if_empty(stream);
        }
    };
    for attempt in 1..=MAX_ATTEMPTS {
        if read_first {
            catch_up(store, stream, &mut entry).await?;
        }
        read_first = true;
        if let Some(seen) = ctx.seen_version
            && entry.version > seen
        {
            let since = store.read_stream(stream, seen, 1000).await?;
            let command_id = ctx.command_id.to_string();
            // The same command appended since the version seen (a double click, a
            // retried request): not someone else's change, but this command's replay.
            if since.iter().any(|r| {
                r.metadata.extra.get("command_id").and_then(|v| v.as_str())
                    == Some(command_id.as_str())
            }) {
                return Ok(Executed {
                    state: entry.state.clone(),
                    version: entry.version,
                    recorded: vec![],
                    replayed: true,
                });
            }
            for recorded in &since {
                if A::significant(&recorded.decode::<A::Event>()?) {
                    return Err(CommandError::Stale {
                        seen,
                        current: entry.version,
                    });
                }
            }
        }
        let decided = match decide(&entry.state) {
            Ok(d) => d,
            Err(e) => {
                forget(entry);
                return Err(CommandError::Refused(e));
            }
        };
        if decided.is_empty() {
            let done = Executed {
                state: entry.state.clone(),
                version: entry.version,
                recorded: vec![],
                replayed: false,
            };
            forget(entry);
            return Ok(done);
        }
        let after = decided.iter().fold(entry.state.clone(), A::evolve);
        let metadata = ctx.metadata();
        let new_events = decided
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let id = A::event_id(ctx.command_id, stream.as_str(), i, e);
                NewEvent::encode(id, e, metadata.clone())
            })
            .collect::<Result<Vec<_>, _>>()?;
        let expected = match entry.version {
            0 => ExpectedVersion::NoStream,
            n => ExpectedVersion::Exact(n),
        };
        let appended = match (&ctx.guard, expected) {
            (Some(guard), ExpectedVersion::NoStream) => {
                store.append_guarded(stream, new_events, guard).await
            }
            _ => store.append(stream, expected, new_events).await,
        };
        match appended {
            Ok(r) if r.replayed => {
                // A twin request (a double submit that reached another process)
                // recorded these very events: take the stored ones as they are.
                catch_up(store, stream, &mut entry).await?;
                return Ok(Executed {
                    state: entry.state.clone(),
                    version: entry.version,
                    recorded: vec![],
                    replayed: true,
                });
            }
            Ok(r) => {
                entry.state = after.clone();
                entry.version = r.stream_version;
                return Ok(Executed {
                    state: after,
                    version: r.stream_version,
                    recorded: decided,
                    replayed: false,
                });
            }
            // These very events are already in the stream, at another version: the
            // same command (a retried request) went through before.
            Err(StoreError::Log(kujira_eventlog::Error::DuplicateEventId(id)))
                if in_stream(store, stream, id).await? =>
            {
                catch_up(store, stream, &mut entry).await?;
                return Ok(Executed {
                    state: entry.state.clone(),
                    version: entry.version,
                    recorded: vec![],
                    replayed: true,
                });
            }
            // Somebody else appended first: read again, decide again.
            Err(StoreError::Log(e @ kujira_eventlog::Error::Conflict { .. })) => {
                tracing::debug!(%stream, attempt, error = %e, "lost a race; deciding again");
                tokio::task::yield_now().await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(CommandError::Contended(MAX_ATTEMPTS))
}
