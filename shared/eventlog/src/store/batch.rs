//! Group commit for guarded appends that open a stream (a submission opening its
//! case): the appends that arrive while others are being written go in together,
//! in one statement and one commit.
//!
//! Why: at the database, what an append costs is mostly the statement and its
//! commit, not its rows (three events of a case cost 1.5 single-event appends).
//! Under a burst of submissions each one paid for its own statement; now a handful
//! share one. Nothing waits to fill a batch: a lone append is written at once, by
//! the very statement [`EventStore::append_guarded`] always used, and a batch is
//! only what queued up while up to [`IN_FLIGHT`] statements were running.
//!
//! A batch is one statement: every member's guard, then the events of those whose
//! guard holds. Members do not depend on each other: a member whose guard finds
//! nothing gets [`Error::GuardFailed`] and the others go in. When the statement
//! fails as a whole (a stream that exists already: a replay, a twin request, a
//! conflict; or the database), it wrote nothing, and every member is appended on
//! its own, which tells each its own outcome exactly as before. Appends to one
//! stream (twin requests: a double click) never share a statement: the first goes
//! in with the batch, the others on their own after it.
//!
//! A member whose caller gave up waiting (a dropped request) is still written, as
//! an append whose statement was already sent would be: appends that open a case
//! are idempotent by their event ids, so a retry finds it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use sqlx::Row;
use tokio::sync::{Semaphore, mpsc, oneshot};
use uuid::Uuid;

use super::EventStore;
use crate::types::{AppendResult, Error, ExpectedVersion, Guard, GuardValue, NewEvent, StreamName};

/// The most appends one statement takes.
pub(super) const MAX_BATCH: usize = 8;
/// How many batch statements run at once: enough to keep a small server busy while
/// the next batch gathers, few enough that batches form at all.
pub(super) const IN_FLIGHT: usize = 4;

/// One guarded append waiting for its statement.
pub(super) struct Member {
    pub stream: StreamName,
    pub events: Vec<NewEvent>,
    pub guard: Guard,
    pub reply: oneshot::Sender<Result<AppendResult, Error>>,
}

/// The queue in front of the batch writer of one [`EventStore`] and its clones.
/// The writer task starts with the first guarded append and ends when the last
/// clone is dropped.
#[derive(Default)]
pub(super) struct Batcher {
    /// Off: every guarded append writes its own statement.
    pub off: bool,
    queue: OnceLock<mpsc::UnboundedSender<Member>>,
}

impl Batcher {
    pub fn off() -> Self {
        Self {
            off: true,
            queue: OnceLock::new(),
        }
    }

    /// Queues `member` for `store`'s writer, starting it if need be. Gives the member
    /// back when there is no writer to take it (batching off, or the runtime is
    /// shutting down).
    pub fn submit(&self, store: &EventStore, member: Member) -> Result<(), Member> {
        if self.off {
            return Err(member);
        }
        let queue = self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            // The writer holds a store of its own whose batching is off: it appends the
            // members on their own through it, and it does not keep its own queue open.
            let writer = EventStore {
                pool: store.pool.clone(),
                appended: store.appended.clone(),
                batcher: Arc::new(Batcher::off()),
            };
            tokio::spawn(write(writer, rx));
            tx
        });
        queue.send(member).map_err(|e| e.0)
    }
}

/// Takes what queued while the statements in flight ran, up to [`MAX_BATCH`] at a
/// time, and writes it.
async fn write(store: EventStore, mut queue: mpsc::UnboundedReceiver<Member>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    while let Some(first) = queue.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        let store = store.clone();
        tokio::spawn(async move {
            write_batch(&store, batch).await;
            drop(slot);
        });
    }
}

async fn write_batch(store: &EventStore, batch: Vec<Member>) {
    // Twins (a double click that reached the log at once: the same stream, the same
    // event ids) never share a statement: the rows it returns could not tell whose
    // they are, and a twin whose guard failed would be told that it wrote them. The
    // first goes in with the batch, the others on their own after it, as they would
    // have without group commit.
    let mut streams = std::collections::HashSet::with_capacity(batch.len());
    let (batch, twins): (Vec<Member>, Vec<Member>) = batch
        .into_iter()
        .partition(|m| streams.insert(m.stream.clone()));
    write_members(store, batch).await;
    if !twins.is_empty() {
        write_alone(store, twins).await;
    }
}

async fn write_members(store: &EventStore, batch: Vec<Member>) {
    if batch.len() > 1 {
        match append_together(store, &batch).await {
            Ok(outcomes) => {
                store.appended.send_modify(|n| *n = n.wrapping_add(1));
                for (m, outcome) in batch.into_iter().zip(outcomes) {
                    let _ = m.reply.send(outcome);
                }
                return;
            }
            Err(e) => {
                tracing::debug!(members = batch.len(), error = %e,
                    "a batch of appends failed as a whole; appending each on its own");
            }
        }
    }
    write_alone(store, batch).await;
}

/// Each member by a statement of its own, which tells each its own outcome.
async fn write_alone(store: &EventStore, batch: Vec<Member>) {
    let alone = batch.into_iter().map(|m| async move {
        let outcome = store
            .append_with(
                &m.stream,
                ExpectedVersion::NoStream,
                m.events,
                Some(&m.guard),
            )
            .await;
        let _ = m.reply.send(outcome);
    });
    futures::future::join_all(alone).await;
}

/// One statement for the whole batch: each member's outcome, in order, or an error
/// when the statement failed (and so wrote nothing).
async fn append_together(
    store: &EventStore,
    batch: &[Member],
) -> Result<Vec<Result<AppendResult, Error>>, sqlx::Error> {
    // Members with the same guard next to each other, so that a batch of the same
    // guards in any order is the same statement (planned once per connection).
    let mut order: Vec<usize> = (0..batch.len()).collect();
    order.sort_by_key(|&i| guard_key(&batch[i].guard));
    let shape: Vec<(usize, usize)> = order.iter().map(|&i| guard_key(&batch[i].guard)).collect();
    let sql = batch_sql(
        &shape,
        &order.iter().map(|&i| &batch[i].guard).collect::<Vec<_>>(),
    );

    let mut query = sqlx::query(sql);
    for &i in &order {
        let m = &batch[i];
        let ids: Vec<Uuid> = m.events.iter().map(|e| e.id).collect();
        let types: Vec<&str> = m.events.iter().map(|e| e.event_type.as_str()).collect();
        let data: Vec<&serde_json::Value> = m.events.iter().map(|e| &e.data).collect();
        let metadata = m
            .events
            .iter()
            .map(|e| serde_json::to_value(&e.metadata))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        query = query
            .bind(m.stream.as_str())
            .bind(ids)
            .bind(types)
            .bind(data)
            .bind(metadata);
        for v in &m.guard.values {
            query = match v {
                GuardValue::Uuid(u) => query.bind(*u),
                GuardValue::Bytes(b) => query.bind(b.as_slice()),
            };
        }
    }
    let rows = query.fetch_all(&store.pool).await?;
    // By event and stream: a member whose guard failed finds nothing of its own, even
    // where another member's events carry the same ids.
    let mut written: HashMap<(Uuid, String), i64> = HashMap::with_capacity(rows.len());
    for row in &rows {
        written.insert(
            (row.try_get("event_id")?, row.try_get("stream_name")?),
            row.try_get("position")?,
        );
    }
    Ok(batch
        .iter()
        .map(|m| {
            let positions: Vec<i64> = m
                .events
                .iter()
                .filter_map(|e| written.get(&(e.id, m.stream.as_str().to_owned())).copied())
                .collect();
            if positions.is_empty() {
                return Err(Error::GuardFailed);
            }
            Ok(AppendResult {
                stream_version: m.events.len() as u64,
                first_position: positions.iter().copied().min().unwrap_or_default(),
                last_position: positions.iter().copied().max().unwrap_or_default(),
                replayed: false,
            })
        })
        .collect())
}

/// Guards are `'static` texts: the text's address and length name the guard.
fn guard_key(g: &Guard) -> (usize, usize) {
    (g.ctes.as_ptr() as usize, g.ctes.len())
}

/// The statement of a batch of `guards.len()` members, built once per shape and
/// kept (there are as many shapes as ways to fill a batch with the guards in the
/// code: with two guards and [`MAX_BATCH`] of 8, 42).
fn batch_sql(shape: &[(usize, usize)], guards: &[&Guard]) -> &'static str {
    type Built = HashMap<Vec<(usize, usize)>, &'static str>;
    static BUILT: OnceLock<Mutex<Built>> = OnceLock::new();
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    built
        .entry(shape.to_vec())
        .or_insert_with(|| Box::leak(build_batch_sql(guards).into_boxed_str()))
}

/// Member `i`'s parameters are its stream, event ids, types, data and metadata,
/// then its guard's values; its guard's CTEs are renamed `m<i>_guard…` and their
/// parameters renumbered. The events of every member whose guard returns a row go
/// in by one `INSERT`, member after member and each in its order, so that their
/// positions follow their versions as in a single append.
fn build_batch_sql(guards: &[&Guard]) -> String {
    let mut ctes = Vec::new();
    let mut selects = Vec::new();
    let mut next = 1;
    for (i, g) in guards.iter().enumerate() {
        let p = next;
        next += 5;
        let first_value = next;
        next += g.values.len();
        ctes.push(member_ctes(g.ctes, i, first_value));
        selects.push(format!(
            "SELECT {i} AS member, e.ord, e.id, ${p}::text AS stream, e.t, e.d, e.m \
             FROM unnest(${}::uuid[], ${}::text[], ${}::jsonb[], ${}::jsonb[]) \
                  WITH ORDINALITY AS e(id, t, d, m, ord) \
             WHERE EXISTS (SELECT 1 FROM m{i}_guard)",
            p + 1,
            p + 2,
            p + 3,
            p + 4
        ));
    }
    format!(
        "WITH {} INSERT INTO events \
           (event_id, stream_name, stream_version, event_type, data, metadata) \
         SELECT b.id, b.stream, b.ord, b.t, b.d, b.m FROM ({}) b \
         ORDER BY b.member, b.ord \
         RETURNING event_id, stream_name, position",
        ctes.join(", "),
        selects.join(" UNION ALL ")
    )
}

/// A guard's CTEs as member `i`'s: every name that starts with `guard` (the
/// [`Guard`] contract) prefixed with `m<i>_`, and `$7`, `$8`… counted from
/// `first_value`.
fn member_ctes(ctes: &str, i: usize, first_value: usize) -> String {
    let bytes = ctes.as_bytes();
    let mut out = String::with_capacity(ctes.len() + 32);
    let mut at = 0;
    while at < bytes.len() {
        let c = bytes[at];
        if c == b'$' && bytes.get(at + 1).is_some_and(u8::is_ascii_digit) {
            let end = (at + 1..bytes.len())
                .find(|&j| !bytes[j].is_ascii_digit())
                .unwrap_or(bytes.len());
            let n: usize = ctes[at + 1..end].parse().expect("digits");
            assert!(n >= 7, "a guard's parameters start at $7");
            out.push_str(&format!("${}", first_value + n - 7));
            at = end;
        } else if is_ident(c) {
            let end = (at..bytes.len())
                .find(|&j| !is_ident(bytes[j]))
                .unwrap_or(bytes.len());
            let word = &ctes[at..end];
            if word.starts_with("guard") {
                out.push_str(&format!("m{i}_"));
            }
            out.push_str(word);
            at = end;
        } else {
            let end = (at + 1..bytes.len())
                .find(|&j| is_ident(bytes[j]) || bytes[j] == b'$')
                .unwrap_or(bytes.len());
            out.push_str(&ctes[at..end]);
            at = end;
        }
    }
    out
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guard_becomes_a_members_with_its_names_and_parameters_moved() {
        let ctes = "guard_lookup AS (INSERT INTO person_lookup (email_hash, person_id) \
                    VALUES ($7, $8) ON CONFLICT (email_hash) DO NOTHING RETURNING person_id), \
                    guard AS (INSERT INTO person_keys (person_id, wrapped_key) \
                    SELECT person_id, $9 FROM guard_lookup RETURNING 1)";
        assert_eq!(
            member_ctes(ctes, 3, 20),
            "m3_guard_lookup AS (INSERT INTO person_lookup (email_hash, person_id) \
                    VALUES ($20, $21) ON CONFLICT (email_hash) DO NOTHING RETURNING person_id), \
                    m3_guard AS (INSERT INTO person_keys (person_id, wrapped_key) \
                    SELECT person_id, $22 FROM m3_guard_lookup RETURNING 1)"
        );
    }

    #[test]
    fn a_batch_numbers_each_members_parameters_after_the_last() {
        let known = Guard {
            ctes: "guard AS (SELECT 1 FROM t WHERE a = $7 AND b = $8)",
            values: vec![GuardValue::Uuid(Uuid::nil()), GuardValue::Uuid(Uuid::nil())],
        };
        let sql = build_batch_sql(&[&known, &known]);
        assert!(sql.contains("m0_guard AS (SELECT 1 FROM t WHERE a = $6 AND b = $7)"));
        assert!(sql.contains("$8::text AS stream"));
        assert!(sql.contains("m1_guard AS (SELECT 1 FROM t WHERE a = $13 AND b = $14)"));
        assert!(!sql.contains("$15"));
    }
}
