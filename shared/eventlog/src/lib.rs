//! The append-only PostgreSQL event log that everything in kujira stands on.
//!
//! One `events` table holds every fact. Writers append to a named stream
//! (`<category>-<id>`) with an expected version; readers either read one stream,
//! or walk the whole log from a durable [`Checkpoint`].
//!
//! # Group commit of guarded appends
//!
//! An append's cost at the database is mostly its statement and commit, not its
//! rows. Guarded appends that open a stream (a submission opening its case, see
//! [`Guard`]) and arrive while others are being written therefore go in together:
//! one statement holds every member's guard and the events of those whose guard
//! holds, and each member gets its own outcome. A batch that fails as a whole (a
//! replay, a conflict) wrote nothing and is written member by member. A lone append
//! is written at once, by its own statement. See `store/batch.rs`.
//!
//! # Gap-safe global reading without a global write lock
//!
//! Identity values are handed out at INSERT but become visible at COMMIT, so two
//! concurrent transactions can commit their positions out of order. A reader that
//! remembered "last position = N" could skip an event with position < N that
//! commits a moment later (Marten #1629, Eventuous #222, SQLStreamStore #121).
//!
//! The usual fix, one global advisory lock around every append, makes commits
//! serial: on a 2-core machine it caps appends at about 1,000/s against about
//! 4,100/s for a plain INSERT at 32 clients.
//!
//! We use a **transaction-id watermark** instead (the technique of Emmett):
//!
//! * every row stores the 64-bit id of the transaction that wrote it
//!   (`pg_current_xact_id()`, in `transaction_id`);
//! * a reader only returns rows whose transaction id is below the *watermark*
//!   `pg_snapshot_xmin(pg_current_snapshot())`, the oldest transaction still
//!   running when its statement started (both shifted by the clock's offset: see
//!   "Restored databases");
//! * rows come in `(transaction_id, position)` order and the checkpoint is that pair.
//!
//! Why this is correct: a transaction id below the snapshot's xmin belongs to a
//! transaction that has finished, so every row it wrote is already visible (or was
//! rolled back and never will be). Any transaction still running, or not yet
//! started, has an id at or above xmin, so none of its rows can later appear below
//! the reader's checkpoint. Every row is therefore seen exactly once, in one order
//! that is the same for every reader.
//!
//! The trade-off: a long-running transaction *anywhere in the cluster* that holds
//! an xid keeps xmin down, and so holds every reader back until it ends. Appenders
//! are never blocked. [`EventStore::reader_lag`] exposes how far readers are held
//! back, so that operations can see it (it is part of `/readyz`).
//!
//! # Filtered readers
//!
//! A reader that wants a few event types (the mail outbox wants mail events only)
//! must still move its checkpoint past the events it does not want; otherwise every
//! read re-scans everything since the last event it wanted, a cost that grows with
//! the log. Moving it to "wherever the scan stopped" is only sound if nothing can
//! appear behind that point later, which is exactly what the watermark gives:
//!
//! * [`EventStore::read_batch`] is one statement, so one snapshot and one watermark
//!   `W`. It returns the wanted events after the checkpoint below `W` (at most
//!   `limit`), and also the highest `(transaction_id, position)` of *any* event below
//!   `W`;
//! * when fewer than `limit` events came back, the scan considered every row between
//!   the checkpoint and `W`, so the reader resumes at that highest row
//!   ([`Batch::next`]). No row can later appear at or below it: rows with an id below
//!   `W` are final, and every transaction still able to append has an id `>= W`.
//!   When the batch is full, it resumes at the last event returned, as before.
//!
//! The watermark is the one thing computed once per read; anything else (the type
//! filter, the limit) only decides which of the final rows come back.
//!
//! # Restored databases
//!
//! Transaction ids belong to a cluster, not to a database. A database dumped with
//! `pg_dump` and restored into another cluster keeps the ids its events and
//! checkpoints were stamped with, while the new cluster hands out its own, usually
//! far smaller ones. Left alone, readers would stop for good: old events sit above
//! the new cluster's watermark until its xids catch up (months, maybe never), and new
//! events, stamped with small ids, sort *behind* every checkpoint and are never read.
//!
//! So the stored id is not the raw xid but `xid + offset`, and the watermark is
//! `xmin + offset`, both read from one place (`eventlog_clock`, the SQL function
//! `eventlog_watermark()`, and the column default of `events.transaction_id`). The
//! offset is 0 until [`rebase_if_restored`] notices a restore and raises it. Let `M`
//! be the highest id stored (in `events` and `reader_checkpoints`), `off` the offset,
//! and `xmax` the cluster's next xid.
//!
//! * **Detection.** An id is stored by a transaction that already had its xid, so on
//!   a database that never left its cluster every stored id is `< xmax + off`. An id
//!   `>= xmax + off` therefore proves the data came from elsewhere. The test is one
//!   index probe; it never fires falsely, so it runs on every start.
//! * **Rebase.** Under an `ACCESS EXCLUSIVE` lock on `events` (which waits for every
//!   transaction that has appended and not finished, and holds off new ones), take a
//!   snapshot with oldest running xid `xmin` and set `off' = M + 1 - xmin`, in the
//!   clock row and in the column default, then commit.
//! * **No skip.** Every transaction that can append after the commit has an xid
//!   `x >= xmin` (it is running now or starts later), so it stamps `x + off' >= M + 1`:
//!   every new event sorts after every restored event and every restored checkpoint.
//!   A reader at checkpoint `c <= M` therefore meets all restored events above `c`
//!   first, then the new ones; none is behind it.
//! * **No stall.** Right after the commit the watermark is `xmin_now + off' >= M + 1`,
//!   above every restored event, and all of them are committed: they are readable at
//!   once. From then on `off'` is constant, so the argument of the previous section
//!   holds unchanged on the shifted clock: `x + off' < xmin + off'` iff `x < xmin`.
//! * **Monotone.** A restore is detected only when `M >= xmax + off`, so
//!   `off' = M + 1 - xmin > off`: the clock only moves forward, and a database
//!   restored again (into a third cluster) is handled the same way.
//!
//! What it needs: nothing may append between the restore and the first start of
//! kujira (SQL migrations never append events), and the dump must be one consistent
//! snapshot (`pg_dump` takes one).
//!
//! # Wake-ups
//!
//! Readers poll, and a NOTIFY on [`NOTIFY_CHANNEL`] wakes them early. NOTIFY takes a
//! global lock at commit (factcast #3911), so appenders never send it inside their
//! own transaction: a single background task coalesces appends and sends at most
//! one empty NOTIFY per [`NOTIFY_COALESCE`] interval.

mod clock;
mod store;
mod types;

pub use clock::{Rebase, rebase_if_restored};
pub use store::{
    EventStore, NOTIFY_CHANNEL, NOTIFY_COALESCE, ReaderLag, Subscription, Transaction,
    read_batch_with,
};
pub use types::{
    AppendResult, Batch, Checkpoint, Error, ExpectedVersion, Guard, GuardValue, Metadata, NewEvent,
    RecordedEvent, StreamName,
};

/// The migrations that create the event log's tables.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();
