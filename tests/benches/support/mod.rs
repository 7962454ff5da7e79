//! Shared by the desk and rules benchmarks: a database holding a realistic event log
//! of about `BENCH_EVENTS` events (default 1,000,000), written through the real
//! store, with every projection `kujira serve` runs caught up.
//!
//! # The log
//!
//! Years of a city's desk (4.5 years up to the moment of generation): about 100,000
//! consultation cases and 1,000 tours for a million events.
//!
//! * Cases open through the public form (with its funnel journey, and abandoned
//!   journeys beside it), the API, or the desk (counter, phone, fairs); 6% are
//!   order-made tour requests; 8% come from a person who inquired before.
//! * Households average about 1.8 people (inquiries' household field, moves, tour
//!   parties).
//! * Case work spread over months and years, through the consultation decider
//!   itself: assignment, contacts with notes, next-action dates, consultations with
//!   their mail, phase changes; of the default log's cases 48% reached 移住検討中, 17%
//!   移住確定 and 8.3% moved (the issue asks for 5–30% moving); old cases that went
//!   nowhere are closed (31%); a few duplicates are merged.
//! * The rules' follow-ups as the scheduler would have queued them (nurture at 30
//!   and 90 days without contact, post-move check-ins, tour reminders and
//!   thank-yous), and the tours' own sign-up, waiting-list and cancellation mails.
//! * Tours with sign-ups, waiting lists, cancellations, check-in and feedback,
//!   through the tour decider.
//! * Person facts: opt-outs, bounces, corrections, and a few erasures.
//!
//! Every person has a data key made by the vault (`person_for_email`), and every
//! personal part is sealed with it (`Vault::seal`) before it is appended through the
//! event log's own transactional append: the rows are exactly those
//! `Store::append` writes, with many streams per commit so that generating a
//! million events takes minutes, not an hour. Events are appended in the order
//! they happened (each writer walks its streams' events by time, four writers at
//! once), so the log interleaves cases as a real one does: a batch of 1,000 events
//! touches hundreds of cases, not a handful. Each event's `recorded_at` is set to
//! the moment it happened, in the same transaction, as a live log would have it.
//!
//! # Caching
//!
//! Generating takes minutes, so the result is kept as a template database on the
//! benchmark cluster (`target/kujira-bench-pg`, never in git), named after the
//! event count and [`GENERATOR`]. Each run works on its own clone, to which the
//! migrations added since the cache was generated are applied, as an upgrade of a
//! running desk would apply them (a migration that was edited since makes the run
//! fail with a hint). `BENCH_FRESH=1` generates again.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Datelike, Days, NaiveDate, TimeZone, Timelike, Utc};
use futures::StreamExt;
use kujira_config::{Config, SystemClock};
use kujira_domain::casework::{CaseCommand, CloseReason, ContactChannel, Move};
use kujira_domain::decider::{Aggregate, Decider};
use kujira_domain::funnel::{FunnelEvent, FunnelForm};
use kujira_domain::inquiry::{
    Channel, Consultation, ConsultationCommand, ConsultationEvent, ConsultationState, DateRules,
    InquiryInput, InquirySubmitted, Stage, TourRequestInput, TourRequestSubmitted,
    validate_inquiry, validate_tour_request,
};
use kujira_domain::mail::MailQueued;
use kujira_domain::person::{
    AddressBounced, ContactDetails, MailOptedOut, OptOutVia, PersonDetailsCorrected, PersonErased,
    PersonEvent,
};
use kujira_domain::personal::Personal;
use kujira_domain::tour::form::SignUpInput;
use kujira_domain::tour::{
    CancelledBy, Tour, TourCommand, TourDetails, TourEvent, TourKind, TourState,
};
use kujira_domain::values::{
    ConsultationMethod, Email, FreeText, Kana, PersonName, Phone, PostalCode,
};
use kujira_eventlog::{ExpectedVersion, Metadata, NewEvent, StreamName};
use kujira_pgembed::testing::TestDb;
use kujira_store::Store;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, Row};
use uuid::Uuid;

/// Changes whenever the generator's output changes, so that a cached database made
/// by an older generator is never reused.
pub const GENERATOR: &str = "g6";
/// The password of every staff account of the generated desk.
pub const PASSWORD: &str = "bench-password-kujira";
pub const ADMIN: &str = "bench-admin@example.jp";
pub const CONCIERGES: usize = 8;
/// Writers appending the generated log at once.
const WRITERS: usize = 4;
/// Events per commit while generating.
const TX_EVENTS: usize = 500;

fn env_count(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.replace(['_', ','], "").parse().ok())
        .unwrap_or(default)
}

/// At least this many events: `BENCH_EVENTS`, default 1,000,000.
pub fn events_target() -> u64 {
    env_count("BENCH_EVENTS", 1_000_000)
}

/// At least this many cases: `BENCH_CASES`, default 100,000 (the page
/// figures are for 100,000 cases; with the realistic shape they take about 1.2
/// million events, so the default log is that size).
pub fn cases_target() -> u64 {
    env_count("BENCH_CASES", 100_000)
}

/// Every crate's migrations, as `kujira migrate` applies them.
pub fn migrators() -> Vec<&'static sqlx::migrate::Migrator> {
    vec![
        &kujira_eventlog::MIGRATOR,
        &kujira_store::MIGRATOR,
        &kujira_intake::MIGRATOR,
        &kujira_tours::MIGRATOR,
        &kujira_scheduler::MIGRATOR,
        &kujira_desk::MIGRATOR,
        &kujira_privacy::MIGRATOR,
    ]
}

/// What the generated database holds.
#[derive(Debug, Clone)]
pub struct SeedInfo {
    /// "Now" for the generated history: nothing happened after it.
    pub anchor: DateTime<Utc>,
    pub events: i64,
    pub cases: i64,
    pub tours: i64,
    pub persons: i64,
    /// Seconds to generate and append the log.
    pub generated_secs: f64,
    /// Seconds for every projection of `kujira serve` to catch up on it, live.
    pub caught_up_secs: f64,
    /// Whether this run generated it (else it came from the cache).
    pub fresh: bool,
}

/// One benchmark's own copy of the generated database.
pub struct Bench {
    pub db: TestDb,
    pub store: Store,
    pub config: Arc<Config>,
    pub info: SeedInfo,
    /// The configuration's data directory (mail files, secret).
    pub dir: tempfile::TempDir,
}

/// The configuration the benchmarks run with: the tests' (a fixed master key and
/// secret), without the per-IP submission limit, quiet.
pub fn bench_config(dir: &std::path::Path) -> Config {
    let mut config = Config::for_tests(dir);
    config.submissions_per_ip_per_hour = 0;
    config
}

/// A fresh database holding the generated log, cloned from the cache (generated
/// into the cache first when it is not there).
pub async fn open() -> anyhow::Result<Bench> {
    let target = events_target();
    let min_cases = cases_target();
    let mut db = TestDb::durable(&migrators()).await;
    kujira_desk::setup(&db.pool).await?;
    let dir = tempfile::tempdir()?;
    let config = Arc::new(bench_config(dir.path()));
    let admin = db.options.clone().database("postgres");
    let cache = format!("kujira_bench_{target}_{min_cases}_{}", fingerprint()?);
    let mut conn = PgConnection::connect_with(&admin).await?;
    sqlx::query("SELECT pg_advisory_lock(hashtext($1))")
        .bind(&cache)
        .execute(&mut conn)
        .await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&cache)
            .fetch_one(&mut conn)
            .await?;
    let fresh = !exists || std::env::var("BENCH_FRESH").is_ok_and(|v| v == "1");
    let result = async {
        if fresh {
            eprintln!(
                "generating at least {target} events and {min_cases} cases into {} (cached \
                 afterwards as {cache}) ...",
                db.name
            );
            let store = Store::open(db.pool.clone(), &config.master_key).await?;
            generate(&store, &config, target, min_cases).await?;
            store.pool().close().await;
            db.pool.close().await;
            let building = format!("{cache}_building");
            for sql in [
                format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"),
                format!(
                    "CREATE DATABASE {building} TEMPLATE {} STRATEGY FILE_COPY",
                    db.name
                ),
                format!("DROP DATABASE IF EXISTS {cache} WITH (FORCE)"),
                format!("ALTER DATABASE {building} RENAME TO {cache}"),
            ] {
                sqlx::query(&sql).execute(&mut conn).await?;
            }
        } else {
            db.pool.close().await;
            let started = Instant::now();
            for sql in [
                format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", db.name),
                format!(
                    "CREATE DATABASE {} TEMPLATE {cache} STRATEGY FILE_COPY",
                    db.name
                ),
            ] {
                sqlx::query(&sql).execute(&mut conn).await?;
            }
            eprintln!(
                "cloned the generated database {cache} in {:.1} s",
                started.elapsed().as_secs_f64()
            );
        }
        anyhow::Ok(())
    }
    .await;
    sqlx::query("SELECT pg_advisory_unlock(hashtext($1))")
        .bind(&cache)
        .execute(&mut conn)
        .await?;
    conn.close().await.ok();
    result?;
    db.pool = PgPoolOptions::new()
        .max_connections(32)
        .connect_with(db.options.clone())
        .await?;
    // The migrations added since the cache was generated (their backfills included).
    let started = Instant::now();
    kujira_pgembed::combine(&migrators())?
        .run(&db.pool)
        .await
        .context(
            "cannot bring the cached database up to this tree's migrations; a migration \
             edited since it was generated needs BENCH_FRESH=1",
        )?;
    kujira_desk::setup(&db.pool).await?;
    eprintln!(
        "applied this tree's migrations to the clone in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let store = Store::open(db.pool.clone(), &config.master_key).await?;
    let row = sqlx::query("SELECT * FROM bench_seed")
        .fetch_one(&db.pool)
        .await
        .context("the generated database has no bench_seed row")?;
    let info = SeedInfo {
        anchor: row.try_get("anchor")?,
        events: row.try_get("events")?,
        cases: row.try_get("cases")?,
        tours: row.try_get("tours")?,
        persons: row.try_get("persons")?,
        generated_secs: row.try_get("generated_secs")?,
        caught_up_secs: row.try_get("caught_up_secs")?,
        fresh,
    };
    Ok(Bench {
        db,
        store,
        config,
        info,
        dir,
    })
}

/// The generator's version (the migrations are applied to each clone).
fn fingerprint() -> anyhow::Result<String> {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(GENERATOR.as_bytes());
    Ok(h.finalize()
        .iter()
        .take(5)
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Connection options of the database, as a `DATABASE_URL` for `kujira serve`.
pub fn database_url(options: &PgConnectOptions) -> String {
    let socket = options
        .get_socket()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| options.get_host().to_owned());
    format!(
        "postgres://{}@localhost:{}/{}?host={}",
        options.get_username(),
        options.get_port(),
        options.get_database().unwrap_or("postgres"),
        socket
    )
}

// ---------------------------------------------------------------------------
// Generation

/// Marks every pending delivery as sent when it was requested: the generated
/// history's mails went out long ago, and a service started on this database must
/// not spend the benchmark sending them.
pub async fn mark_history_sent(pool: &sqlx::PgPool) -> anyhow::Result<u64> {
    Ok(sqlx::query(
        "UPDATE mail_deliveries SET status = 'sent', sent_at = requested_at, attempts = 1, \
         last_attempt_at = requested_at, next_attempt_at = NULL, message_id = 'bench' \
         WHERE status = 'pending'",
    )
    .execute(pool)
    .await?
    .rows_affected())
}

async fn generate(
    store: &Store,
    config: &Arc<Config>,
    target: u64,
    min_cases: u64,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let tz = config.timezone;
    let now = Utc::now();
    let anchor = now
        .with_second(0)
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or(now);

    // Staff: an admin and the concierges, through the desk's own accounts.
    let desk = kujira_desk::DeskState::new(config.clone(), store.clone(), Arc::new(SystemClock));
    let meta = Metadata::new("cli", Uuid::now_v7());
    let new = |email: &str, name: &str, role: &str| {
        kujira_desk::users::NewUser::parse(email, name, role, PASSWORD)
            .map_err(|e| anyhow::anyhow!("bad bench account {email}: {e:?}"))
    };
    desk.users()
        .add(new(ADMIN, "管理 花子", "admin")?, &meta)
        .await?;
    let mut concierges = Vec::new();
    for i in 1..=CONCIERGES {
        let (family, _, _) = FAMILY[i % FAMILY.len()];
        let user = desk
            .users()
            .add(
                new(
                    &format!("concierge{i}@example.jp"),
                    &format!("{family} 担当{i}"),
                    "concierge",
                )?,
                &meta,
            )
            .await?;
        concierges.push(user.user_id);
    }
    desk.users()
        .add(new("viewer@example.jp", "市 職員", "viewer")?, &meta)
        .await?;

    // One tour for every hundred cases (1,000 for the default log).
    let tours = (target / 1000).max(min_cases / 100).max(10) as usize;
    let mut g = Generator::new(anchor, tz, concierges, target);
    for _ in 0..tours {
        g.tour();
    }
    while g.emitted() < target || (g.cases as u64) < min_cases {
        g.case();
    }
    g.person_facts();
    eprintln!(
        "  planned {} events: {} cases, {} tours, {} persons ({:.1} s)",
        g.emitted(),
        g.cases,
        g.tours,
        g.persons.len(),
        started.elapsed().as_secs_f64()
    );

    // Every person's key first, as intake and tours create them (by email).
    let vault = store.vault().clone();
    let emails: Vec<(usize, String)> = g
        .persons
        .iter()
        .enumerate()
        .map(|(i, p)| (i, p.email.clone()))
        .collect();
    let ids: Vec<(usize, Uuid)> = futures::stream::iter(emails)
        .map(|(i, email)| {
            let vault = vault.clone();
            async move {
                let email = Email::parse(&email).map_err(|e| anyhow::anyhow!("{email}: {e:?}"))?;
                let found = vault.person_for_email(&email).await?;
                anyhow::Ok((i, found.person_id))
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    let mut person_ids = vec![Uuid::nil(); g.persons.len()];
    for (i, id) in ids {
        person_ids[i] = id;
    }
    eprintln!(
        "  created {} person keys ({:.1} s)",
        person_ids.len(),
        started.elapsed().as_secs_f64()
    );

    // Append, by time, four writers at once.
    let Planned {
        items,
        mut streams,
        person_streams,
        cases,
        tours,
        persons,
    } = g.finish();
    for (stream, person) in person_streams {
        streams[stream as usize] =
            StreamName::new(kujira_domain::person::CATEGORY, person_ids[person]);
    }
    let streams = Arc::new(streams);
    let person_ids = Arc::new(person_ids);
    let mut shards: Vec<Vec<Item>> = (0..WRITERS).map(|_| Vec::new()).collect();
    for item in items {
        shards[item.stream as usize % WRITERS].push(item);
    }
    let mut writers = tokio::task::JoinSet::new();
    for mut shard in shards {
        shard.sort_by_key(|i| i.at);
        let (store, streams, person_ids) = (store.clone(), streams.clone(), person_ids.clone());
        writers.spawn(async move { write(&store, &streams, &person_ids, shard).await });
    }
    let mut events = 0u64;
    while let Some(r) = writers.join_next().await {
        events += r??;
    }
    let generated_secs = started.elapsed().as_secs_f64();
    eprintln!("  appended {events} events ({generated_secs:.1} s)");

    // What the live service would hold: the reference sequence past the generated
    // references, every projection caught up, the history's mail sent, the rules run.
    let max_ref: i64 = sqlx::query_scalar(
        "SELECT coalesce(max(split_part(data->>'reference', '-', 2)::bigint), 0) FROM events \
         WHERE event_type IN ('InquirySubmitted', 'TourRequestSubmitted')",
    )
    .fetch_one(store.pool())
    .await?;
    sqlx::query("SELECT setval('consultation_reference_seq', $1)")
        .bind(max_ref.max(1))
        .execute(store.pool())
        .await?;
    let caught = Instant::now();
    let projector = kujira::serve::projector(config, store);
    let applied = projector.catch_up().await?;
    let caught_up_secs = caught.elapsed().as_secs_f64();
    eprintln!("  every projection caught up: {applied} applications in {caught_up_secs:.1} s");
    let sent = mark_history_sent(store.pool()).await?;
    let rules = kujira::serve::rules(config, store);
    let ran = Instant::now();
    let reports = rules.run_all(anchor).await?;
    let queued: usize = reports.iter().map(|r| r.queued.len()).sum();
    projector.catch_up().await?;
    let sent_after = mark_history_sent(store.pool()).await?;
    eprintln!(
        "  {sent} history mails marked sent; the rules as of {anchor} queued {queued} more \
         in {:.1} s (marked sent: {sent_after})",
        ran.elapsed().as_secs_f64()
    );
    sqlx::raw_sql(
        "CREATE TABLE bench_seed (anchor timestamptz NOT NULL, events bigint NOT NULL, \
         cases bigint NOT NULL, tours bigint NOT NULL, persons bigint NOT NULL, \
         generated_secs float8 NOT NULL, caught_up_secs float8 NOT NULL)",
    )
    .execute(store.pool())
    .await?;
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(store.pool())
        .await?;
    sqlx::query("INSERT INTO bench_seed VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(anchor)
        .bind(total)
        .bind(cases as i64)
        .bind(tours as i64)
        .bind(persons as i64)
        .bind(generated_secs)
        .bind(caught_up_secs)
        .execute(store.pool())
        .await?;
    // Two statements: several in one string run in one transaction, which VACUUM
    // refuses.
    for sql in ["VACUUM FULL events", "VACUUM ANALYZE"] {
        sqlx::raw_sql(sql).execute(store.pool()).await?;
    }
    Ok(())
}

/// Appends one writer's events in order, `TX_EVENTS` to a commit, each stream's
/// consecutive events in one append.
async fn write(
    store: &Store,
    streams: &[StreamName],
    person_ids: &[Uuid],
    items: Vec<Item>,
) -> anyhow::Result<u64> {
    let mut versions: HashMap<u32, u64> = HashMap::new();
    let mut items = items.into_iter().peekable();
    let mut total = 0u64;
    while items.peek().is_some() {
        let mut tx = store.events().begin().await?;
        let mut n = 0;
        // When each event happened, for its `recorded_at` (see below).
        let mut recorded: (Vec<String>, Vec<i64>, Vec<DateTime<Utc>>) = Default::default();
        while n < TX_EVENTS {
            let Some(first) = items.next() else { break };
            let stream = first.stream;
            let mut group = vec![first];
            while let Some(next) = items.peek()
                && next.stream == stream
            {
                group.extend(items.next());
            }
            let mut events = Vec::with_capacity(group.len());
            let v = versions.entry(stream).or_insert(0);
            for (i, item) in group.into_iter().enumerate() {
                recorded
                    .0
                    .push(streams[stream as usize].as_str().to_owned());
                recorded.1.push((*v + i as u64 + 1) as i64);
                recorded.2.push(item.at);
                let mut e = item.encode(person_ids)?;
                store.vault().seal(e.id, &mut e.data).await?;
                events.push(e);
            }
            let expected = if *v == 0 {
                ExpectedVersion::NoStream
            } else {
                ExpectedVersion::Exact(*v)
            };
            let count = events.len();
            tx.append(&streams[stream as usize], expected, events)
                .await
                .with_context(|| format!("cannot append to {}", streams[stream as usize]))?;
            *v += count as u64;
            n += count;
        }
        // A live log records each fact when it happens: give the generated ones their
        // own moment, so that what reads `recorded_at` (the outbox's request times,
        // and so the mails sent per month; the persons' last activity for retention)
        // sees years of history, not one afternoon. The dead row versions this
        // leaves are removed by the `VACUUM FULL` at the end.
        sqlx::query(
            "UPDATE events e SET recorded_at = u.at \
             FROM unnest($1::text[], $2::bigint[], $3::timestamptz[]) AS u(s, v, at) \
             WHERE e.stream_name = u.s AND e.stream_version = u.v",
        )
        .bind(&recorded.0)
        .bind(&recorded.1)
        .bind(&recorded.2)
        .execute(tx.conn())
        .await
        .context("cannot date the generated events")?;
        tx.commit().await?;
        total += n as u64;
    }
    Ok(total)
}

/// One generated fact, waiting for its turn.
struct Item {
    at: DateTime<Utc>,
    stream: u32,
    id: Uuid,
    actor: Actor,
    event: Box<Ev>,
}

#[derive(Clone, Copy)]
enum Actor {
    Applicant,
    Staff(Uuid),
    Scheduler,
    Cli,
}

enum Ev {
    Case(ConsultationEvent),
    Tour(TourEvent),
    Funnel(FunnelEvent),
    Person(PersonEvent),
}

/// Person ids are placeholders until the vault has made the keys: the generator
/// numbers persons, and `Uuid::from_u128(n)` stands for person n.
fn placeholder(n: usize) -> Uuid {
    Uuid::from_u128(n as u128 + 1)
}

impl Item {
    fn encode(self, person_ids: &[Uuid]) -> anyhow::Result<NewEvent> {
        let actor = match self.actor {
            Actor::Applicant => "applicant".to_owned(),
            Actor::Staff(id) => format!("staff:{id}"),
            Actor::Scheduler => "system:scheduler".to_owned(),
            Actor::Cli => "cli".to_owned(),
        };
        let meta = Metadata::new(actor, self.id);
        let mut e = match *self.event {
            Ev::Case(e) => NewEvent::encode(self.id, &e, meta)?,
            Ev::Tour(e) => NewEvent::encode(self.id, &e, meta)?,
            Ev::Funnel(e) => NewEvent::encode(self.id, &e, meta)?,
            Ev::Person(e) => NewEvent::encode(self.id, &e, meta)?,
        };
        replace_placeholders(&mut e.data, person_ids);
        Ok(e)
    }
}

/// Puts the vault's person ids in place of the placeholders, wherever a person id
/// sits (`person_id`, `into_person`).
fn replace_placeholders(v: &mut serde_json::Value, person_ids: &[Uuid]) {
    match v {
        serde_json::Value::String(s) => {
            if s.starts_with("00000000-0000-0000-")
                && let Ok(u) = Uuid::parse_str(s)
                && let Some(id) = (u.as_u128() as usize)
                    .checked_sub(1)
                    .and_then(|n| person_ids.get(n))
            {
                *s = id.to_string();
            }
        }
        serde_json::Value::Array(a) => a
            .iter_mut()
            .for_each(|x| replace_placeholders(x, person_ids)),
        serde_json::Value::Object(o) => o
            .values_mut()
            .for_each(|x| replace_placeholders(x, person_ids)),
        _ => {}
    }
}

struct PersonSpec {
    name: String,
    kana: String,
    email: String,
    phone: String,
    prefecture: &'static str,
    /// The person's cases (indices), for returning persons and merges.
    cases: Vec<usize>,
    /// The last moment anything about them happened.
    last_at: Option<DateTime<Utc>>,
}

struct CaseSummary {
    person: usize,
    case_id: Uuid,
    opened_at: DateTime<Utc>,
    closed_or_merged_at: Option<DateTime<Utc>>,
}

struct Generator {
    rng: StdRng,
    anchor: DateTime<Utc>,
    start: DateTime<Utc>,
    tz: chrono_tz::Tz,
    concierges: Vec<Uuid>,
    target: u64,
    items: Vec<Item>,
    streams: Vec<StreamName>,
    persons: Vec<PersonSpec>,
    case_list: Vec<CaseSummary>,
    reference_seq: i64,
    cases: usize,
    tours: usize,
    /// Person streams, named after the vault's ids once they exist.
    person_streams: Vec<(u32, usize)>,
}

/// What the generator planned.
struct Planned {
    items: Vec<Item>,
    streams: Vec<StreamName>,
    person_streams: Vec<(u32, usize)>,
    cases: usize,
    tours: usize,
    persons: usize,
}

impl Generator {
    fn new(anchor: DateTime<Utc>, tz: chrono_tz::Tz, concierges: Vec<Uuid>, target: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(20261203),
            anchor,
            // 4.5 years: inside the default retention of 5 years.
            start: anchor - chrono::Duration::days(4 * 365 + 182),
            tz,
            concierges,
            target,
            items: Vec::with_capacity(target as usize + 1000),
            streams: Vec::new(),
            persons: Vec::new(),
            case_list: Vec::new(),
            reference_seq: 0,
            cases: 0,
            tours: 0,
            person_streams: Vec::new(),
        }
    }

    fn emitted(&self) -> u64 {
        self.items.len() as u64
    }

    fn finish(self) -> Planned {
        Planned {
            persons: self.persons.len(),
            items: self.items,
            streams: self.streams,
            person_streams: self.person_streams,
            cases: self.cases,
            tours: self.tours,
        }
    }

    fn uuid(&mut self) -> Uuid {
        uuid::Builder::from_random_bytes(self.rng.random()).into_uuid()
    }

    fn stream(&mut self, category: &str, id: Uuid) -> u32 {
        self.streams.push(StreamName::new(category, id));
        (self.streams.len() - 1) as u32
    }

    fn push(&mut self, at: DateTime<Utc>, stream: u32, id: Uuid, actor: Actor, event: Ev) {
        self.items.push(Item {
            at,
            stream,
            id,
            actor,
            event: Box::new(event),
        });
    }

    fn concierge(&mut self) -> Uuid {
        self.concierges[self.rng.random_range(0..self.concierges.len())]
    }

    /// A moment between `from` and `to`, in waking hours in the city.
    fn between(&mut self, from: DateTime<Utc>, to: DateTime<Utc>) -> DateTime<Utc> {
        let span = (to - from).num_seconds().max(1);
        let t = from + chrono::Duration::seconds(self.rng.random_range(0..span));
        // Staff and applicants act from 8:00 to 22:00 city time.
        let local = t.with_timezone(&self.tz);
        if local.hour() < 8 || local.hour() >= 22 {
            let shift = chrono::Duration::hours(if local.hour() < 8 { 9 } else { -8 });
            let moved = t + shift;
            if moved > from && moved < to {
                return moved;
            }
        }
        t
    }

    fn days(&mut self, lo: f64, hi: f64) -> chrono::Duration {
        chrono::Duration::seconds((self.rng.random_range(lo..hi) * 86_400.0) as i64)
    }

    /// 10:00 city time on the day of `t`, or the next day when that has passed:
    /// when a daily rule would have run.
    fn next_ten(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        let local = t.with_timezone(&self.tz);
        let day = if local.hour() < 10 {
            local.date_naive()
        } else {
            local.date_naive() + Days::new(1)
        };
        self.tz
            .from_local_datetime(&day.and_hms_opt(10, 0, 0).expect("10:00"))
            .earliest()
            .map_or(t, |d| d.to_utc())
    }

    fn new_person(&mut self) -> usize {
        let n = self.persons.len();
        let (family, family_kana, romaji) = FAMILY[self.rng.random_range(0..FAMILY.len())];
        let (given, given_kana) = GIVEN[self.rng.random_range(0..GIVEN.len())];
        let prefecture = pick(&mut self.rng, PREFECTURES);
        self.persons.push(PersonSpec {
            name: format!("{family} {given}"),
            kana: format!("{family_kana} {given_kana}"),
            email: format!("{romaji}.{n}@example.jp"),
            phone: format!(
                "0{}0-{:04}-{:04}",
                self.rng.random_range(7..=9),
                self.rng.random_range(0..10_000),
                self.rng.random_range(0..10_000)
            ),
            prefecture,
            cases: Vec::new(),
            last_at: None,
        });
        n
    }

    fn seen(&mut self, person: usize, at: DateTime<Utc>) {
        let p = &mut self.persons[person];
        if p.last_at.is_none_or(|t| t < at) {
            p.last_at = Some(at);
        }
    }

    fn reference(&mut self, at: DateTime<Utc>) -> String {
        self.reference_seq += 1;
        let year = at.with_timezone(&self.tz).year();
        format!("{year}-{:04}", self.reference_seq)
    }

    // -----------------------------------------------------------------------
    // Cases

    fn case(&mut self) {
        self.cases += 1;
        let opened_at = self.between(self.start, self.anchor - chrono::Duration::hours(2));
        // 8% are a person's second case (the same address finds the same person).
        let returning = !self.case_list.is_empty() && self.rng.random_bool(0.08);
        let person = if returning {
            let i = self.rng.random_range(0..self.case_list.len());
            self.case_list[i].person
        } else {
            self.new_person()
        };
        let roll: f64 = self.rng.random();
        let channel = if roll < 0.62 {
            Channel::Form
        } else if roll < 0.72 {
            Channel::Api
        } else {
            Channel::Desk
        };
        let tour_request = channel == Channel::Form && self.rng.random_bool(0.06);
        let case_id = self.uuid();
        let stream = self.stream("consultation", case_id);
        let desk_staff = self.concierge();
        let desk_source = (channel == Channel::Desk).then(|| {
            *pick(
                &mut self.rng,
                &[
                    ContactChannel::Counter,
                    ContactChannel::Counter,
                    ContactChannel::Phone,
                    ContactChannel::Phone,
                    ContactChannel::Fair,
                ],
            )
        });
        let opening = kujira_domain::inquiry::CaseOpening {
            case_id,
            person_id: placeholder(person),
            reference: self.reference(opened_at),
            channel,
            submitted_at: opened_at,
            privacy_purpose: "移住相談への回答、移住に関する情報提供のため".into(),
            desk_source,
        };
        let rules = DateRules {
            now: opened_at,
            timezone: self.tz,
            lead_days: 3,
        };
        let spec = &self.persons[person];
        let (name, kana, email, phone, prefecture) = (
            spec.name.clone(),
            spec.kana.clone(),
            spec.email.clone(),
            spec.phone.clone(),
            spec.prefecture,
        );
        let household_roll: f64 = self.rng.random();
        let household = if household_roll < 0.5 {
            "single"
        } else if household_roll < 0.8 {
            "couple"
        } else if household_roll < 0.97 {
            "with_children"
        } else {
            "other"
        };
        let message = pick(&mut self.rng, MESSAGES).to_string();
        let command = if tour_request {
            let day = (opened_at + chrono::Duration::days(self.rng.random_range(10..40)))
                .with_timezone(&self.tz)
                .date_naive();
            let input = TourRequestInput {
                name,
                name_kana: kana,
                email,
                phone,
                prefecture: prefecture.into(),
                preferred_date_1: day.format("%Y-%m-%d").to_string(),
                interests: vec!["housing".into(), "migrants".into()],
                adults: if household == "single" { "1" } else { "2" }.into(),
                children: if household == "with_children" {
                    "1"
                } else {
                    "0"
                }
                .into(),
                message,
                source: pick(&mut self.rng, SOURCES).to_string(),
                consent: true,
                ..TourRequestInput::default()
            };
            let request = validate_tour_request(&input, &rules)
                .unwrap_or_else(|e| panic!("a generated tour request is invalid: {e:?}"));
            ConsultationCommand::SubmitTourRequest {
                mails: kujira_intake::mail::tour_request_queue(&opening),
                submission: TourRequestSubmitted { opening, request },
            }
        } else {
            let preferred = if self.rng.random_bool(0.3) {
                (opened_at + chrono::Duration::days(self.rng.random_range(7..30)))
                    .with_timezone(&self.tz)
                    .date_naive()
                    .and_hms_opt(10, 0, 0)
                    .map(|d| d.format("%Y-%m-%dT%H:%M").to_string())
                    .unwrap_or_default()
            } else {
                String::new()
            };
            let topics: Vec<String> = (0..self.rng.random_range(1..=3))
                .map(|_| pick(&mut self.rng, TOPICS).to_string())
                .collect();
            let input = InquiryInput {
                name,
                name_kana: kana,
                email,
                phone,
                postal_code: if self.rng.random_bool(0.6) {
                    format!(
                        "{:03}-{:04}",
                        self.rng.random_range(100..999),
                        self.rng.random_range(0..10_000)
                    )
                } else {
                    String::new()
                },
                prefecture: prefecture.into(),
                age_group: pick(&mut self.rng, AGES).to_string(),
                gender: pick(
                    &mut self.rng,
                    &["female", "male", "female", "male", "no_answer"],
                )
                .to_string(),
                segment: pick(&mut self.rng, SEGMENTS).to_string(),
                household: household.into(),
                children_ages: if household == "with_children" {
                    "小学2年生と4歳".into()
                } else {
                    String::new()
                },
                move_timing: pick(&mut self.rng, TIMINGS).to_string(),
                topics,
                method: pick(&mut self.rng, METHODS).to_string(),
                preferred_date_1: preferred,
                message,
                source: pick(&mut self.rng, SOURCES).to_string(),
                consent: true,
                newsletter: self.rng.random_bool(0.4),
                ..InquiryInput::default()
            };
            let inquiry = validate_inquiry(&input, &rules)
                .unwrap_or_else(|e| panic!("a generated inquiry is invalid: {e:?}"));
            ConsultationCommand::SubmitInquiry {
                mails: kujira_intake::mail::inquiry_queue(&opening),
                submission: InquirySubmitted { opening, inquiry },
            }
        };
        let actor = match channel {
            Channel::Desk => Actor::Staff(desk_staff),
            _ => Actor::Applicant,
        };

        // The form's journey, and journeys that were abandoned.
        if channel == Channel::Form {
            let form = if tour_request {
                FunnelForm::TourRequest
            } else {
                FunnelForm::Inquiry
            };
            let viewed = opened_at - self.days(0.003, 0.02);
            let confirmed = opened_at - self.days(0.0005, 0.002);
            self.journey(form, &[viewed, confirmed], Some((opened_at, case_id)));
            if self.rng.random_bool(0.35) {
                let at = self.between(self.start, self.anchor);
                self.journey(form, &[at], None);
            }
            if self.rng.random_bool(0.1) {
                let at = self.between(self.start, self.anchor);
                self.journey(form, &[at, at + chrono::Duration::minutes(4)], None);
            }
        }

        let mut case = CaseRun {
            stream,
            case_id,
            person,
            state: ConsultationState::default(),
            clock_mails: Vec::new(),
            moved_at: None,
        };
        self.apply(&mut case, opened_at, actor, &command);
        let case_index = self.case_list.len();
        self.case_list.push(CaseSummary {
            person,
            case_id,
            opened_at,
            closed_or_merged_at: None,
        });
        self.persons[person].cases.push(case_index);

        // The case's work, planned as (time, staff, command), then applied in order
        // through the decider: what it refuses (work on a closed case) never happens.
        let staff = self.concierge();
        let mut plan: Vec<(DateTime<Utc>, CaseCommand)> = Vec::new();
        if self.rng.random_bool(0.95) {
            let at = opened_at + self.days(0.02, 2.0);
            plan.push((
                at,
                CaseCommand::Assign {
                    concierge: Some(staff),
                },
            ));
        }
        let mut t = if channel == Channel::Desk {
            opened_at + chrono::Duration::minutes(5)
        } else {
            opened_at + self.days(0.1, 6.0)
        };
        let first_contact = channel == Channel::Desk || self.rng.random_bool(0.9);
        if first_contact {
            let ch = desk_source.unwrap_or_else(|| {
                *pick(
                    &mut self.rng,
                    &[
                        ContactChannel::Email,
                        ContactChannel::Phone,
                        ContactChannel::Email,
                    ],
                )
            });
            plan.push((t, self.contact(t, ch)));
            if self.rng.random_bool(0.7) {
                let due = (t + self.days(7.0, 60.0))
                    .with_timezone(&self.tz)
                    .date_naive();
                plan.push((
                    t + chrono::Duration::minutes(1),
                    CaseCommand::SetNextAction { due: Some(due) },
                ));
            }
        }
        if first_contact && self.rng.random_bool(0.2) {
            let at = t + self.days(0.5, 5.0);
            let starts = at + self.days(3.0, 20.0);
            let starts = self.next_ten(starts);
            plan.push((
                at,
                CaseCommand::ScheduleConsultation {
                    consultation_id: self.uuid(),
                    starts_at: starts,
                    minutes: 60,
                    method: ConsultationMethod::parse(pick::<&str>(&mut self.rng, METHODS))
                        .unwrap_or(ConsultationMethod::Online),
                    place: FreeText::parse_line("市役所 2階 移住相談窓口", 100).ok(),
                    note: None,
                },
            ));
        }
        // Follow-up contacts: none for half the cases (one answer, then silence), a
        // few for most of the rest, many for the active ones.
        let r: f64 = self.rng.random();
        let extra = if r < 0.5 {
            0
        } else if r < 0.85 {
            self.rng.random_range(1..=2)
        } else {
            self.rng.random_range(2..=5)
        };
        let mut last = t;
        for _ in 0..extra {
            last += self.days(5.0, 120.0);
            let ch = *pick(&mut self.rng, CONTACT_CHANNELS);
            plan.push((last, self.contact(last, ch)));
        }
        // The pipeline.
        let outcome: f64 = self.rng.random();
        if first_contact && outcome < 0.55 {
            t += self.days(7.0, 150.0);
            plan.push((
                t,
                CaseCommand::ChangePhase {
                    to: Stage::Considering,
                },
            ));
            if self.rng.random_bool(0.6) {
                let ch = *pick(&mut self.rng, CONTACT_CHANNELS);
                plan.push((t, self.contact(t, ch)));
            }
            if outcome < 0.22 {
                t += self.days(30.0, 365.0);
                plan.push((t, CaseCommand::ChangePhase { to: Stage::Decided }));
                let due = (t + self.days(14.0, 90.0))
                    .with_timezone(&self.tz)
                    .date_naive();
                plan.push((
                    t + chrono::Duration::minutes(2),
                    CaseCommand::SetNextAction { due: Some(due) },
                ));
                if outcome < 0.12 {
                    t += self.days(30.0, 240.0);
                    let move_in = (t - self.days(0.0, 30.0))
                        .with_timezone(&self.tz)
                        .date_naive();
                    let (adults, children) = self.household();
                    plan.push((
                        t,
                        CaseCommand::RecordMove(Move {
                            move_in,
                            adults,
                            children,
                            applies_for_support: self.rng.random_bool(0.3),
                        }),
                    ));
                }
            }
        }
        // Cases that went nowhere are closed, once they have been quiet for a while.
        if outcome >= 0.12 && self.rng.random_bool(0.45) {
            let at = t.max(last) + self.days(60.0, 400.0);
            let reason = *pick(
                &mut self.rng,
                &[
                    CloseReason::GaveUp,
                    CloseReason::GaveUp,
                    CloseReason::NoResponse,
                    CloseReason::NoResponse,
                    CloseReason::MovedElsewhere,
                    CloseReason::Other,
                ],
            );
            plan.push((
                at,
                CaseCommand::Close {
                    reason,
                    note: FreeText::parse_multiline(
                        "本人より連絡あり。今回は見送りとのこと。",
                        2000,
                    )
                    .ok(),
                },
            ));
        }
        // A returning person's desk case is sometimes a duplicate of their earlier one.
        if returning && channel == Channel::Desk && self.rng.random_bool(0.3) {
            let earlier = self.persons[person].cases[0];
            let at = opened_at + self.days(0.5, 3.0);
            let e = &self.case_list[earlier];
            if e.case_id != case_id && e.closed_or_merged_at.is_none_or(|c| c > at) {
                plan.push((
                    at,
                    CaseCommand::MergeInto {
                        into: e.case_id,
                        into_person: placeholder(e.person),
                    },
                ));
            }
        }
        plan.sort_by_key(|(at, _)| *at);
        for (at, command) in plan {
            if at >= self.anchor {
                break;
            }
            self.mails_due(&mut case, at);
            let merged = matches!(command, CaseCommand::MergeInto { .. });
            let closed = matches!(command, CaseCommand::Close { .. });
            let actor = Actor::Staff(staff);
            if self.apply(
                &mut case,
                at,
                actor,
                &ConsultationCommand::Work { command, at },
            ) && (merged || closed)
            {
                self.case_list[case_index].closed_or_merged_at = Some(at);
            }
        }
        self.mails_due(&mut case, self.anchor);
    }

    fn contact(&mut self, at: DateTime<Utc>, channel: ContactChannel) -> CaseCommand {
        CaseCommand::LogContact {
            contact_id: self.uuid(),
            channel,
            occurred_at: at - chrono::Duration::minutes(self.rng.random_range(0..90)),
            note: FreeText::parse_multiline(pick::<&str>(&mut self.rng, NOTES), 2000).ok(),
        }
    }

    /// A moving household: about 1.8 people on average.
    fn household(&mut self) -> (u8, u8) {
        let r: f64 = self.rng.random();
        if r < 0.5 {
            (1, 0)
        } else if r < 0.82 {
            (2, 0)
        } else if r < 0.92 {
            (2, 1)
        } else {
            (2, 2)
        }
    }

    /// Decides `command` on the case at `at` and records what it decides; false
    /// when the decider refuses it.
    fn apply(
        &mut self,
        case: &mut CaseRun,
        at: DateTime<Utc>,
        actor: Actor,
        command: &ConsultationCommand,
    ) -> bool {
        let Ok(events) = Consultation::decide(&case.state, command) else {
            return false;
        };
        let command_id = self.uuid();
        let stream = self.streams[case.stream as usize].as_str().to_owned();
        for (i, e) in events.into_iter().enumerate() {
            let id = Consultation::event_id(command_id, &stream, i, &e);
            case.state = Consultation::evolve(std::mem::take(&mut case.state), &e);
            if let ConsultationEvent::CasePhaseChanged(c) = &e
                && c.to == Stage::Moved
            {
                case.moved_at = Some(c.at);
            }
            // The consultation's invitation, queued with it as the desk does.
            let invitation = match &e {
                ConsultationEvent::ConsultationScheduled(s) => {
                    Some(kujira_desk::cases::mail::consultation_mail(
                        case.case_id,
                        placeholder(case.person),
                        s.consultation_id,
                    ))
                }
                _ => None,
            };
            self.push(at, case.stream, id, actor, Ev::Case(e));
            if let Some(m) = invitation {
                let id = m.event_id(&stream);
                let e = ConsultationEvent::MailQueued(m);
                case.state = Consultation::evolve(std::mem::take(&mut case.state), &e);
                self.push(at, case.stream, id, actor, Ev::Case(e));
            }
        }
        self.seen(case.person, at);
        true
    }

    /// The follow-ups the rules would have queued on the case before `until`: the
    /// nurture mails at 30 and 90 days without contact or phase change, and the
    /// check-in 90 days after a move.
    fn mails_due(&mut self, case: &mut CaseRun, until: DateTime<Utc>) {
        let Some(open) = case.state.opened.clone() else {
            return;
        };
        let work = &case.state.work;
        if work.closed.is_some() || work.merged_into.is_some() {
            return;
        }
        let mut due = Vec::new();
        if matches!(open.stage, Stage::Gathering | Stage::Considering)
            && let Some(clock) = work.last_contact_at.max(work.last_phase_change_at)
        {
            for (step, days) in [(1usize, 30i64), (2, 90)] {
                let key = kujira_scheduler::rules::keys::nurture(case.case_id, clock, step);
                let at = self.next_ten(clock + chrono::Duration::days(days));
                if at < until && !case.clock_mails.contains(&key) {
                    let mail = MailQueued::to_applicant(
                        key.clone(),
                        kujira_scheduler::rules::templates::NURTURE,
                        placeholder(case.person),
                    )
                    .follow_up()
                    .with_params(serde_json::json!({ "step": step, "days": days }));
                    due.push((at, key, mail));
                }
            }
        }
        if let Some(moved_at) = case.moved_at
            && open.stage == Stage::Moved
        {
            let key = kujira_scheduler::rules::keys::post_move(case.case_id, moved_at);
            let at = self.next_ten(moved_at + chrono::Duration::days(90));
            if at < until && !case.clock_mails.contains(&key) {
                let mail = MailQueued::to_applicant(
                    key.clone(),
                    kujira_scheduler::rules::templates::POST_MOVE,
                    placeholder(case.person),
                )
                .follow_up()
                .with_params(serde_json::json!({ "days": 90 }));
                due.push((at, key, mail));
            }
        }
        let stream = self.streams[case.stream as usize].as_str().to_owned();
        for (at, key, mail) in due {
            case.clock_mails.push(key);
            let id = mail.event_id(&stream);
            let e = ConsultationEvent::MailQueued(mail);
            case.state = Consultation::evolve(std::mem::take(&mut case.state), &e);
            self.push(at, case.stream, id, Actor::Scheduler, Ev::Case(e));
        }
    }

    fn journey(
        &mut self,
        form: FunnelForm,
        views: &[DateTime<Utc>],
        submitted: Option<(DateTime<Utc>, Uuid)>,
    ) {
        let journey = self.uuid();
        let stream = self.stream(kujira_domain::funnel::CATEGORY, journey);
        for (i, at) in views.iter().enumerate() {
            let e = if i == 0 {
                FunnelEvent::FormViewed { form, at: *at }
            } else {
                FunnelEvent::ConfirmViewed { form, at: *at }
            };
            let id = self.uuid();
            self.push(*at, stream, id, Actor::Applicant, Ev::Funnel(e));
        }
        if let Some((at, case_id)) = submitted {
            let id = self.uuid();
            self.push(
                at,
                stream,
                id,
                Actor::Applicant,
                Ev::Funnel(FunnelEvent::Submitted { form, at, case_id }),
            );
        }
    }

    // -----------------------------------------------------------------------
    // Tours

    fn tour(&mut self) {
        self.tours += 1;
        let tour_id = self.uuid();
        let stream = self.stream(kujira_domain::tour::CATEGORY, tour_id);
        // Most tours are past; a few are coming up (their reminders are due soon).
        let day = if self.rng.random_bool(0.03) {
            self.between(
                self.anchor + chrono::Duration::days(1),
                self.anchor + chrono::Duration::days(60),
            )
        } else {
            self.between(
                self.start + chrono::Duration::days(60),
                self.anchor - chrono::Duration::days(2),
            )
        };
        let starts_at = self.next_ten(day) - chrono::Duration::hours(1);
        let overnight = self.rng.random_bool(0.2);
        let ends_at = starts_at + chrono::Duration::hours(if overnight { 30 } else { 7 });
        let capacity = self.rng.random_range(5..=12u32);
        let details = TourDetails {
            title: pick(&mut self.rng, TOUR_TITLES).to_string(),
            kind: if overnight {
                TourKind::Overnight
            } else {
                TourKind::DayTrip
            },
            starts_at,
            ends_at,
            meeting_place: "JR柏崎駅 改札前".into(),
            capacity_parties: capacity,
            max_people: Some(capacity * 4),
            fee_yen: if overnight { 5000 } else { 0 },
            deadline: Some(starts_at - chrono::Duration::days(7)),
            description: "先輩移住者の住まいや職場を訪ね、暮らしを体験するツアーです。".into(),
            audience: "柏崎市への移住を検討している方".into(),
        };
        // Scheduled a month or two ahead, and never after the end of the history.
        let scheduled_at =
            (starts_at - self.days(30.0, 60.0)).min(self.anchor - self.days(1.0, 20.0));
        let staff = self.concierge();
        let mut run = TourRun {
            stream,
            tour_id,
            state: TourState::default(),
        };
        let schedule = TourCommand::Schedule {
            tour_id,
            details,
            publish: true,
            at: scheduled_at,
        };
        if !self.tour_apply(&mut run, scheduled_at, Actor::Staff(staff), &schedule, None) {
            return;
        }
        // Sign-ups until the deadline, past the capacity now and then (a waiting list).
        let deadline = starts_at - chrono::Duration::days(7);
        let wanted = (f64::from(capacity) * self.rng.random_range(0.5..1.4)).round() as usize;
        let mut plan: Vec<(DateTime<Utc>, TourCommand, Option<usize>, Actor)> = Vec::new();
        let mut parties = Vec::new();
        for _ in 0..wanted {
            let at = self.between(scheduled_at + chrono::Duration::hours(1), deadline);
            // Half the parties are people who inquired before.
            let person = if !self.case_list.is_empty() && self.rng.random_bool(0.5) {
                let i = self.rng.random_range(0..self.case_list.len());
                self.case_list[i].person
            } else {
                self.new_person()
            };
            let (adults, children) = self.household();
            let p = &self.persons[person];
            let input = SignUpInput {
                name: p.name.clone(),
                name_kana: p.kana.clone(),
                email: p.email.clone(),
                email_confirm: None,
                phone: p.phone.clone(),
                prefecture: p.prefecture.into(),
                adults: adults.to_string(),
                children: children.to_string(),
                children_ages: if children > 0 {
                    "5歳".into()
                } else {
                    String::new()
                },
                transport: pick(&mut self.rng, &["car", "train"]).to_string(),
                needs: if self.rng.random_bool(0.1) {
                    "卵アレルギーがあります".into()
                } else {
                    String::new()
                },
                source: pick(&mut self.rng, SOURCES).to_string(),
                consent: true,
            };
            let sign_up_id = self.uuid();
            let sign_up = input
                .validate(sign_up_id)
                .unwrap_or_else(|e| panic!("a generated sign-up is invalid: {e:?}"))
                .for_person(placeholder(person));
            plan.push((
                at,
                TourCommand::SignUp { sign_up, at },
                Some(person),
                Actor::Applicant,
            ));
            parties.push((sign_up_id, person, at));
        }
        for (sign_up_id, _, at) in &parties {
            if self.rng.random_bool(0.1) {
                let when = self.between(*at, starts_at - chrono::Duration::hours(2));
                plan.push((
                    when,
                    TourCommand::CancelSignUp {
                        sign_up_id: *sign_up_id,
                        by: CancelledBy::Party,
                        at: when,
                    },
                    None,
                    Actor::Applicant,
                ));
            }
        }
        plan.sort_by_key(|(at, ..)| *at);
        for (at, command, person, actor) in plan {
            if at >= self.anchor {
                break;
            }
            self.tour_apply(&mut run, at, actor, &command, person);
        }
        // The rules' reminders (3 days before, 10:00) and, after the tour, check-in,
        // thank-yous and feedback.
        let reminder_at =
            self.next_ten(starts_at - chrono::Duration::days(3) - chrono::Duration::hours(1));
        if reminder_at < self.anchor {
            self.tour_mails(&mut run, reminder_at, true);
        }
        if ends_at < self.anchor {
            let confirmed: Vec<(Uuid, Uuid)> =
                run.state.confirmed().map(|s| (s.id, s.person_id)).collect();
            for (sign_up_id, _) in &confirmed {
                let at = starts_at + chrono::Duration::minutes(self.rng.random_range(0..30));
                let attended = self.rng.random_bool(0.9);
                self.tour_apply(
                    &mut run,
                    at,
                    Actor::Staff(staff),
                    &TourCommand::RecordAttendance {
                        sign_up_id: *sign_up_id,
                        attended,
                        at,
                    },
                    None,
                );
            }
            let thanks_at = self.next_ten(ends_at);
            if thanks_at < self.anchor {
                self.tour_mails(&mut run, thanks_at, false);
            }
            for (sign_up_id, _) in &confirmed {
                if self.rng.random_bool(0.5) {
                    let at = ends_at + self.days(1.0, 7.0);
                    if at < self.anchor {
                        let satisfaction = *pick(&mut self.rng, &[3u8, 4, 4, 5, 5, 5]);
                        self.tour_apply(
                            &mut run,
                            at,
                            Actor::Applicant,
                            &TourCommand::RecordFeedback {
                                sign_up_id: *sign_up_id,
                                satisfaction,
                                comments: FreeText::parse_multiline(
                                    "地元の方の話が聞けてよかったです。",
                                    1000,
                                )
                                .ok(),
                                at,
                            },
                            None,
                        );
                    }
                }
            }
        }
    }

    fn tour_apply(
        &mut self,
        run: &mut TourRun,
        at: DateTime<Utc>,
        actor: Actor,
        command: &TourCommand,
        person: Option<usize>,
    ) -> bool {
        let Ok(decided) = Tour::decide(&run.state, command) else {
            return false;
        };
        if decided.is_empty() {
            return true;
        }
        let after = decided.iter().fold(run.state.clone(), Tour::evolve);
        let mails = kujira_tours::mail::mails_for(run.tour_id, &after, &decided);
        run.state = after;
        let stream = self.streams[run.stream as usize].as_str().to_owned();
        let command_id = self.uuid();
        for (i, e) in decided
            .into_iter()
            .chain(mails.into_iter().map(TourEvent::MailQueued))
            .enumerate()
        {
            let id = Tour::event_id(command_id, &stream, i, &e);
            self.push(at, run.stream, id, actor, Ev::Tour(e));
        }
        if let Some(p) = person {
            self.seen(p, at);
        }
        true
    }

    /// The rules' reminders (before) or thank-yous (after) to the tour's parties.
    fn tour_mails(&mut self, run: &mut TourRun, at: DateTime<Utc>, reminder: bool) {
        let parties: Vec<(Uuid, Uuid, Option<bool>)> = run
            .state
            .confirmed()
            .map(|s| (s.id, s.person_id, s.attended))
            .collect();
        let stream = self.streams[run.stream as usize].as_str().to_owned();
        for (sign_up_id, person_id, attended) in parties {
            if !reminder && attended == Some(false) {
                continue;
            }
            let (key, template) = if reminder {
                (
                    kujira_scheduler::rules::keys::tour_reminder(run.tour_id, sign_up_id),
                    kujira_scheduler::rules::templates::TOUR_REMINDER,
                )
            } else {
                (
                    kujira_scheduler::rules::keys::tour_thank_you(run.tour_id, sign_up_id),
                    kujira_scheduler::rules::templates::TOUR_THANK_YOU,
                )
            };
            let mail = MailQueued::to_applicant(key, template, person_id)
                .follow_up()
                .about(sign_up_id);
            let id = mail.event_id(&stream);
            let e = TourEvent::MailQueued(mail);
            run.state = Tour::evolve(std::mem::take(&mut run.state), &e);
            self.push(at, run.stream, id, Actor::Scheduler, Ev::Tour(e));
        }
    }

    // -----------------------------------------------------------------------
    // Persons

    fn person_facts(&mut self) {
        for person in 0..self.persons.len() {
            let Some(last) = self.persons[person].last_at else {
                continue;
            };
            let roll: f64 = self.rng.random();
            let person_id = placeholder(person);
            let mut facts: Vec<(DateTime<Utc>, PersonEvent, Actor)> = Vec::new();
            if roll < 0.02 {
                let at = self.between(last, self.anchor);
                facts.push((
                    at,
                    PersonEvent::MailOptedOut(MailOptedOut {
                        person_id,
                        at,
                        via: OptOutVia::OneClick,
                    }),
                    Actor::Applicant,
                ));
            } else if roll < 0.03 {
                let at = self.between(last, self.anchor);
                facts.push((
                    at,
                    PersonEvent::AddressBounced(AddressBounced {
                        person_id,
                        at,
                        code: 550,
                        delivery_key: format!("bench/bounce/{person}"),
                    }),
                    Actor::Scheduler,
                ));
            } else if roll < 0.04 {
                let at = self.between(last, self.anchor);
                let p = &self.persons[person];
                let details = ContactDetails {
                    name: PersonName::parse(&p.name).expect("a generated name"),
                    name_kana: Kana::parse(&p.kana).expect("a generated kana"),
                    email: Email::parse(&p.email).expect("a generated address"),
                    phone: Phone::parse("025-123-4567").ok(),
                    postal_code: PostalCode::parse("945-0051").ok(),
                    address: FreeText::parse_line("東本町一丁目1番1号", 100).ok(),
                };
                facts.push((
                    at,
                    PersonEvent::PersonDetailsCorrected(PersonDetailsCorrected {
                        person_id,
                        at,
                        fields: vec!["phone".into(), "postal_code".into(), "address".into()],
                        personal: Personal::Known(details),
                    }),
                    Actor::Staff(self.concierges[0]),
                ));
            } else if roll < 0.043 && last < self.anchor - chrono::Duration::days(30) {
                let at = self.between(last + chrono::Duration::days(1), self.anchor);
                facts.push((
                    at,
                    PersonEvent::PersonErased(PersonErased {
                        person_id,
                        at,
                        rule: None,
                    }),
                    Actor::Cli,
                ));
            }
            if facts.is_empty() {
                continue;
            }
            let id = self.uuid();
            let stream = self.stream(kujira_domain::person::CATEGORY, id);
            // The stream is the person's: `person-<person id>`, fixed up below.
            self.person_streams.push((stream, person));
            for (at, e, actor) in facts {
                let id = self.uuid();
                self.push(at, stream, id, actor, Ev::Person(e));
            }
        }
    }
}

struct CaseRun {
    stream: u32,
    case_id: Uuid,
    person: usize,
    state: ConsultationState,
    /// Keys of the rules' mails already queued on the case.
    clock_mails: Vec<String>,
    moved_at: Option<DateTime<Utc>>,
}

struct TourRun {
    stream: u32,
    tour_id: Uuid,
    state: TourState,
}

fn pick<'a, T>(rng: &mut StdRng, from: &'a [T]) -> &'a T {
    &from[rng.random_range(0..from.len())]
}

// ---------------------------------------------------------------------------
// Words

const FAMILY: &[(&str, &str, &str)] = &[
    ("佐藤", "サトウ", "sato"),
    ("鈴木", "スズキ", "suzuki"),
    ("高橋", "タカハシ", "takahashi"),
    ("田中", "タナカ", "tanaka"),
    ("伊藤", "イトウ", "ito"),
    ("渡辺", "ワタナベ", "watanabe"),
    ("山本", "ヤマモト", "yamamoto"),
    ("中村", "ナカムラ", "nakamura"),
    ("小林", "コバヤシ", "kobayashi"),
    ("加藤", "カトウ", "kato"),
    ("吉田", "ヨシダ", "yoshida"),
    ("山田", "ヤマダ", "yamada"),
    ("佐々木", "ササキ", "sasaki"),
    ("山口", "ヤマグチ", "yamaguchi"),
    ("松本", "マツモト", "matsumoto"),
    ("井上", "イノウエ", "inoue"),
    ("木村", "キムラ", "kimura"),
    ("林", "ハヤシ", "hayashi"),
    ("斎藤", "サイトウ", "saito"),
    ("清水", "シミズ", "shimizu"),
    ("柏崎", "カシワザキ", "kashiwazaki"),
    ("長谷川", "ハセガワ", "hasegawa"),
];

const GIVEN: &[(&str, &str)] = &[
    ("太郎", "タロウ"),
    ("花子", "ハナコ"),
    ("健太", "ケンタ"),
    ("美咲", "ミサキ"),
    ("翔", "ショウ"),
    ("陽菜", "ヒナ"),
    ("大輔", "ダイスケ"),
    ("さくら", "サクラ"),
    ("拓也", "タクヤ"),
    ("愛", "アイ"),
    ("誠", "マコト"),
    ("由美", "ユミ"),
    ("直樹", "ナオキ"),
    ("恵", "メグミ"),
    ("亮", "リョウ"),
    ("真由美", "マユミ"),
];

const PREFECTURES: &[&str] = &[
    "東京都",
    "東京都",
    "東京都",
    "神奈川県",
    "神奈川県",
    "埼玉県",
    "千葉県",
    "新潟県",
    "新潟県",
    "大阪府",
    "愛知県",
    "長野県",
    "群馬県",
    "宮城県",
    "北海道",
];

const MESSAGES: &[&str] = &[
    "子どもが小学校に上がる前に移住を考えています。冬の雪の量と除雪について教えてください。",
    "リモートワークで今の仕事を続けながら移住したいです。空き家バンクの物件を見学できますか。",
    "定年後に海の近くで暮らしたいと考えています。病院や買い物の便について知りたいです。",
    "夫婦で就農を考えています。研修制度や農地の借り方について相談したいです。",
    "出身が柏崎で、Uターンを検討しています。地元企業の求人情報はどこで見られますか。",
    "移住支援金の条件と申請の時期について詳しく教えてください。",
    "保育園の空き状況と、子育て支援の制度について知りたいです。",
    "起業を考えています。空き店舗の活用や創業支援について相談させてください。",
    "まずは情報収集の段階です。住まいと仕事の両方について、一度オンラインで話を聞きたいです。",
    "おためし移住体験ツアーに参加したいのですが、家族で参加できる日程はありますか。",
    "車がなくても暮らせる地域はありますか。駅の近くの賃貸物件を探しています。",
    "冬の暮らしが心配です。実際に移住された方の話を聞ける機会はありますか。",
];

const NOTES: &[&str] = &[
    "電話で状況を確認。次回は住まいの候補について連絡する。",
    "メールで空き家バンクの資料を送付。",
    "オンライン相談を実施。仕事探しについて説明した。",
    "窓口に来訪。市内を案内し、先輩移住者を紹介した。",
    "移住フェアのブースで相談を受けた。資料一式を渡した。",
    "返信なし。1か月後に再度連絡する。",
    "支援金の要件を説明。転入時期は未定とのこと。",
];

const TOUR_TITLES: &[&str] = &[
    "親子で体験！柏崎の暮らし日帰りツアー",
    "海と里山の暮らし体験ツアー",
    "先輩移住者と話そう 冬の柏崎ツアー",
    "農業体験と空き家見学ツアー",
    "しごと体験・企業見学ツアー",
];

const SOURCES: &[&str] = &[
    "site",
    "site",
    "instagram",
    "fair",
    "search",
    "referral",
    "other",
];
const TOPICS: &[&str] = &[
    "work",
    "housing",
    "childcare_education",
    "farming",
    "business",
    "support_programs",
    "snow_climate",
    "daily_life",
];
const AGES: &[&str] = &["20s", "30s", "30s", "40s", "40s", "50s", "60s", "70s_plus"];
const SEGMENTS: &[&str] = &["u_turn", "i_turn", "i_turn", "j_turn", "undecided"];
const TIMINGS: &[&str] = &[
    "within_6_months",
    "within_1_year",
    "within_3_years",
    "undecided",
];
const METHODS: &[&str] = &["online", "visit", "phone", "email", "fair"];
const CONTACT_CHANNELS: &[ContactChannel] = &[
    ContactChannel::Email,
    ContactChannel::Email,
    ContactChannel::Phone,
    ContactChannel::Phone,
    ContactChannel::Online,
    ContactChannel::Counter,
    ContactChannel::Line,
    ContactChannel::Fair,
];

// ---------------------------------------------------------------------------
// Measuring

/// The `q` quantile of sorted durations.
pub fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The date of `t` in the city.
pub fn local_date(t: DateTime<Utc>, tz: chrono_tz::Tz) -> NaiveDate {
    t.with_timezone(&tz).date_naive()
}
