//! Opening a consultation case: one append of the submission and its mails to
//! `consultation-<case id>`, idempotent by construction.
//!
//! The case id is derived from the one-time form token (HTML) or the
//! `Idempotency-Key` (API), and every event id from the case id, so a second
//! submission of the same form appends the very same events: the event log
//! recognises them and answers with the first append (`replayed`). The reference
//! number shown is then read back from the stored case, never the fresh one.

use chrono::Datelike;
use kujira_domain::casework::ContactChannel;
use kujira_domain::decider::Decider;
use kujira_domain::inquiry::{
    CATEGORY, CaseOpening, Channel, Consultation, ConsultationCommand, ConsultationError,
    ConsultationEvent,
};
use kujira_domain::values::Email;
use kujira_eventlog::StreamName;
use kujira_store::CommandContext;
use uuid::Uuid;

use crate::IntakeState;

/// Namespace of every id intake derives.
const NAMESPACE: Uuid = Uuid::from_u128(0x6b75_6a69_7261_2f69_6e74_616b_652f_0001);

/// The metadata key holding a keyed hash of an API request body.
const FINGERPRINT: &str = "request_fingerprint";

/// The case id a form token or an idempotency key stands for.
pub fn derived_case_id(scope: &str, key: &str) -> Uuid {
    Uuid::new_v5(&NAMESPACE, format!("case/{scope}/{key}").as_bytes())
}

pub fn stream(case_id: Uuid) -> StreamName {
    StreamName::new(CATEGORY, case_id)
}

/// A case that exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub case_id: Uuid,
    pub reference: String,
    /// True when an earlier submission had already opened it.
    pub replayed: bool,
    fingerprint: Option<String>,
}

impl Opened {
    /// Whether a request with `fingerprint` is the one that opened the case.
    pub fn same_request(&self, fingerprint: Option<&str>) -> bool {
        self.fingerprint.as_deref() == fingerprint
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Store(#[from] kujira_store::StoreError),
    #[error("the case stream stays contended")]
    Contended,
    #[error(transparent)]
    Decide(#[from] ConsultationError),
    #[error("reference sequence: {0}")]
    Sequence(#[from] sqlx::Error),
    #[error("the case stream exists but holds no submission")]
    Corrupt,
}

/// The case `case_id`, if it has been opened.
pub async fn find(state: &IntakeState, case_id: Uuid) -> Result<Option<Opened>, OpenError> {
    let first = state.store().read_stream(&stream(case_id), 0, 1).await?;
    let Some(first) = first.first() else {
        return Ok(None);
    };
    let decoded = first
        .decode::<ConsultationEvent>()
        .map_err(kujira_store::StoreError::from)?;
    let opening = match decoded {
        ConsultationEvent::InquirySubmitted(e) => e.opening,
        ConsultationEvent::TourRequestSubmitted(e) => e.opening,
        // A case's first event is always the submission that opened it.
        _ => return Err(OpenError::Corrupt),
    };
    Ok(Some(Opened {
        case_id,
        reference: opening.reference,
        replayed: true,
        fingerprint: first
            .metadata
            .extra
            .get(FINGERPRINT)
            .and_then(|v| v.as_str())
            .map(str::to_owned),
    }))
}

/// Hands out the number of a 連番 (`2026-0001`): counted afresh each calendar year,
/// from a sequence of that year (`consultation_reference_<year>`), so that the number
/// after the year says how many cases that year has had.
///
/// While submissions come one by one (a city's everyday: a few a day), each takes
/// exactly the number it uses, so a restart, or the desk's own intake beside the
/// public one, leaves no gap: staff read the 連番 as a count, and 2026-0001,
/// 2026-0009, 2026-0017 would tell them of cases that never were. Under a burst
/// (misses less than [`BURST`] apart) each fetch takes twice as many as the one
/// before, up to [`REFERENCE_BATCH`], so that most submissions need one round trip
/// (the append) instead of two; the numbers a burst leaves unused when the process
/// stops are the only gap, and they are few.
#[derive(Debug, Default)]
pub struct References {
    inner: std::sync::Mutex<Cached>,
    /// One fetch at a time: submissions that miss together wait for it and take
    /// what it brought, instead of each fetching numbers of its own (which handed
    /// out 2026-0001, 2026-0009, 2026-0017… to the first submissions of a burst).
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Debug, Default)]
struct Cached {
    /// Numbers fetched ahead, and the year they count in.
    numbers: std::collections::VecDeque<i64>,
    year: i32,
    /// When the last fetch was made, and how many it took.
    last_fetch: Option<(std::time::Instant, i32)>,
}

/// The most numbers one fetch takes.
const REFERENCE_BATCH: i32 = 8;
/// Misses closer together than this are a burst.
const BURST: std::time::Duration = std::time::Duration::from_secs(1);

impl References {
    /// The next number of `year`.
    pub async fn next(&self, pool: &sqlx::PgPool, year: i32) -> Result<i64, sqlx::Error> {
        if let Some(n) = self.take(year) {
            return Ok(n);
        }
        let _turn = self.fetching.lock().await;
        // Whoever fetched while this one waited may have brought enough.
        if let Some(n) = self.take(year) {
            return Ok(n);
        }
        let size = {
            let mut c = self.lock();
            let now = std::time::Instant::now();
            let size = match c.last_fetch {
                Some((at, size)) if now.duration_since(at) < BURST => {
                    (size * 2).min(REFERENCE_BATCH)
                }
                _ => 1,
            };
            c.last_fetch = Some((now, size));
            size
        };
        let mut batch = match fetch(pool, year, size).await {
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P01") => {
                create_year(pool, year).await?;
                fetch(pool, year, size).await?
            }
            other => other?,
        };
        batch.sort_unstable();
        let first = batch.remove(0);
        let mut c = self.lock();
        if c.year == year {
            c.numbers.extend(batch);
        }
        Ok(first)
    }

    /// A number fetched ahead for `year`; numbers of another year are dropped (they
    /// counted in a year that is over).
    fn take(&self, year: i32) -> Option<i64> {
        let mut c = self.lock();
        if c.year != year {
            c.numbers.clear();
            c.year = year;
        }
        c.numbers.pop_front()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cached> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The sequence of `year`'s numbers. The year is an integer, so the name is safe to
/// write into SQL.
fn sequence_of(year: i32) -> String {
    format!("consultation_reference_{year}")
}

async fn fetch(pool: &sqlx::PgPool, year: i32, size: i32) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT nextval($1::regclass) FROM generate_series(1, $2)")
        .bind(sequence_of(year))
        .bind(size)
        .fetch_all(pool)
        .await
}

/// Creates `year`'s sequence on its first submission, after the highest number of
/// that year already in the log (cases numbered before yearly counting, or by a
/// sequence lost in a restore). `CREATE SEQUENCE IF NOT EXISTS` is not safe against
/// a concurrent twin (the loser fails on the catalogue's unique index), so the
/// first submissions of a year, which may come at once, take turns on an advisory
/// lock; the later ones find the sequence there.
async fn create_year(pool: &sqlx::PgPool, year: i32) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('kujira.consultation_reference'))")
        .execute(&mut *tx)
        .await?;
    let top: i64 = sqlx::query_scalar(
        "SELECT coalesce(max(split_part(data->>'reference', '-', 2)::bigint), 0) FROM events \
         WHERE event_type IN ('InquirySubmitted', 'TourRequestSubmitted') \
           AND data->>'reference' LIKE $1",
    )
    .bind(format!("{year}-%"))
    .fetch_one(&mut *tx)
    .await?;
    let create = format!(
        "CREATE SEQUENCE IF NOT EXISTS {} AS bigint START WITH {} NO CYCLE",
        sequence_of(year),
        top + 1
    );
    sqlx::query(&create).execute(&mut *tx).await?;
    tx.commit().await
}

/// Everything about a submission besides its content.
#[derive(Debug, Clone)]
pub struct Submission {
    pub case_id: Uuid,
    pub channel: Channel,
    /// Ties the case to the form journey (the form token's id) or the API request.
    pub correlation_id: Uuid,
    /// A keyed hash of the API body, to tell a retry from a reused key.
    pub fingerprint: Option<String>,
    /// For a case entered by staff (`Channel::Desk`): how the inquiry came in, which
    /// decides whether it counts as 窓口 or イベント.
    pub desk_source: Option<ContactChannel>,
    /// Who submits, in the events' metadata: `applicant`, or `staff:<user id>`.
    pub actor: String,
}

impl Submission {
    /// A submission by the applicant through the public form or the API.
    pub fn by_applicant(case_id: Uuid, channel: Channel, correlation_id: Uuid) -> Self {
        Self {
            case_id,
            channel,
            correlation_id,
            fingerprint: None,
            desk_source: None,
            actor: "applicant".into(),
        }
    }

    /// An inquiry entered by a staff member on the desk (a fair booth, the phone,
    /// the counter): channel `Desk`, with how it came in.
    pub fn by_staff(case_id: Uuid, actor: String, desk_source: ContactChannel) -> Self {
        Self {
            case_id,
            channel: Channel::Desk,
            correlation_id: case_id,
            fingerprint: None,
            desk_source: Some(desk_source),
            actor,
        }
    }
}

/// Opens the case: finds (or creates) the person by `email`, allocates its 連番,
/// lets `make` build the command from the opening (the mails need the reference and
/// the person), decides, and appends everything at once through the one command path.
///
/// The person is chosen without a round trip ([`kujira_store::Vault::person_guard`]:
/// the one this process last found for the address, or a new one) and checked in
/// the statement that appends the case, which for a new person also writes their
/// lookup and key. When the check fails (the address found somebody else meanwhile,
/// or the person was erased), nothing was written: the person is looked up in the
/// database and the case appended again, still checked. `make` may so be called
/// more than once.
///
/// The public form and the API open cases with [`Submission::by_applicant`]; the
/// staff desk with [`Submission::by_staff`] (channel `Desk`, its `desk_source`, the
/// staff member as the actor). The case id makes it idempotent either way.
pub async fn open(
    state: &IntakeState,
    sub: Submission,
    email: &Email,
    make: impl Fn(CaseOpening) -> ConsultationCommand,
) -> Result<Opened, OpenError> {
    let vault = state.store().vault();
    let now = state.kit().now();
    let year = now.with_timezone(&state.config().timezone).year();
    let number = state
        .inner
        .references
        .next(state.store().pool(), year)
        .await?;
    let reference = format!("{year}-{number:04}");
    let mut person = vault
        .person_guard(email)
        .map_err(kujira_store::StoreError::from)?;
    for attempt in 1..=GUARD_ATTEMPTS {
        match open_as(state, &sub, &person, &reference, now, &make).await {
            Err(OpenError::Store(kujira_store::StoreError::Log(
                kujira_eventlog::Error::GuardFailed,
            ))) => {
                vault.guard_failed(&person);
                if attempt < GUARD_ATTEMPTS {
                    let found = vault
                        .person_for_email(email)
                        .await
                        .map_err(kujira_store::StoreError::from)?;
                    person = vault.known_guard(email, found.person_id);
                }
            }
            Err(e) => return Err(e),
            Ok(opened) => {
                if opened.replayed {
                    // A twin request opened the case, with the person it chose.
                    vault.guard_failed(&person);
                } else {
                    vault.guard_held(&person);
                }
                return Ok(opened);
            }
        }
    }
    Err(OpenError::Contended)
}

/// How often a case is appended again after its person's guard failed: each
/// failure means that the address or the person changed within milliseconds.
const GUARD_ATTEMPTS: u32 = 3;

async fn open_as(
    state: &IntakeState,
    sub: &Submission,
    person: &kujira_store::PersonGuard,
    reference: &str,
    now: chrono::DateTime<chrono::Utc>,
    make: &impl Fn(CaseOpening) -> ConsultationCommand,
) -> Result<Opened, OpenError> {
    let opening = CaseOpening {
        case_id: sub.case_id,
        person_id: person.person.person_id,
        reference: reference.to_owned(),
        channel: sub.channel,
        submitted_at: now,
        privacy_purpose: state.config().words.privacy_purpose.clone(),
        desk_source: sub.desk_source,
    };
    let reference = opening.reference.clone();
    let command = make(opening);

    // The case id derives from the form token or the idempotency key, and the event
    // ids from the case id: a second submission of the same form appends the very
    // same events, which the log recognises.
    let mut ctx = CommandContext::new(sub.actor.as_str())
        .command_id(Uuid::new_v5(
            &NAMESPACE,
            format!("open/{}", sub.case_id).as_bytes(),
        ))
        .correlation(sub.correlation_id)
        .new_stream()
        .guard(person.guard.clone())
        .with(
            "channel",
            match sub.channel {
                Channel::Form => "form",
                Channel::Api => "api",
                Channel::Desk => "desk",
            },
        );
    if let Some(f) = &sub.fingerprint {
        ctx = ctx.with(FINGERPRINT, f.as_str());
    }
    let executed = kujira_store::execute::<Consultation>(
        state.store(),
        &stream(sub.case_id),
        &ctx,
        None,
        |current| {
            if current.opened.is_some() {
                // A twin request (double click, retry) got there first.
                return Ok(vec![]);
            }
            Consultation::decide(current, &command)
        },
    )
    .await;
    match executed {
        Ok(done) if !done.recorded.is_empty() => Ok(Opened {
            case_id: sub.case_id,
            reference,
            replayed: false,
            fingerprint: sub.fingerprint.clone(),
        }),
        // Answer with the case the twin opened, and its reference.
        Ok(_) => find(state, sub.case_id).await?.ok_or(OpenError::Corrupt),
        Err(kujira_store::CommandError::Refused(e)) => Err(e.into()),
        Err(kujira_store::CommandError::Store(e)) => Err(e.into()),
        Err(
            kujira_store::CommandError::Contended(_) | kujira_store::CommandError::Stale { .. },
        ) => Err(OpenError::Contended),
    }
}
