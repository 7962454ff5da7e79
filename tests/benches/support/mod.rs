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

mod cases;
mod tours;
mod words;
mod write;

use words::*;
use write::generate;
// Each benchmark includes this module and uses a part of it.
#[allow(unused_imports)]
pub use write::mark_history_sent;

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
