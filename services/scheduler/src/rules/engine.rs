//! The rules' evaluation: pick the candidates from the projection, re-check each on
//! its own stream, queue its mail with a deterministic key.
//!
//! Every rule is evaluated *as of* a moment `now`, and decides everything that is due
//! by then and not too late to matter. A mail is due at the rule's first scheduled
//! run at or after the moment its offset names (three days before a tour, thirty days
//! after the last contact, ...). So a tick, a catch-up after downtime and `kujira
//! scheduler run-once --at` all decide alike, and running a rule twice decides
//! nothing new.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, Duration, Months, NaiveDate, Utc};
use futures::StreamExt;
use kujira_config::{Config, RuleName, RuleSettings};
use kujira_domain::calendar;
use kujira_domain::inquiry::{Consultation, ConsultationEvent, ConsultationState, Stage};
use kujira_domain::mail::MailQueued;
use kujira_domain::tour::{SignUpStatus, TourEvent, TourStatus};
use kujira_eventlog::StreamName;
use kujira_projector::Projector;
use kujira_store::{CommandContext, Store};
use sqlx::Row;
use uuid::Uuid;

mod cases;
mod digest;
mod tours;

use super::keys;
use super::mail::templates;
use super::projection::RulesProjection;
use super::schedule::{Schedule, start_of_day};
use super::streams::{
    CaseRef, Concierge, DIGEST_CATEGORY, DigestCompiled, DigestItem, DigestSection, DigestTour,
    SUPPORT_WINDOW_CATEGORY, StaffMail, StaffMailEvent, SupportWindowNoted, TourMailState,
    TourMails,
};

/// A follow-up more than this late is not sent: the moment has passed.
pub const LATE_LIMIT_DAYS: i64 = 30;
/// A thank-you more than this late after its moment is not sent.
pub const THANK_YOU_LATE_DAYS: i64 = 7;
/// Entries per list of a digest; the rest is counted.
pub const DIGEST_LIST_MAX: i64 = 30;
/// How many streams the rules append to at once.
const PARALLEL: usize = 4;

/// Who the concierges are. The desk owns the staff accounts; the binary that
/// composes the services implements this on them, so that the scheduler does not
/// depend on the desk.
#[async_trait::async_trait]
pub trait StaffDirectory: Send + Sync + std::fmt::Debug {
    /// Every active staff account with the concierge role.
    async fn concierges(&self) -> anyhow::Result<Vec<Concierge>>;
}

/// A fixed list of concierges (tests, tools).
#[derive(Debug, Clone, Default)]
pub struct FixedStaff(pub Vec<Concierge>);

#[async_trait::async_trait]
impl StaffDirectory for FixedStaff {
    async fn concierges(&self) -> anyhow::Result<Vec<Concierge>> {
        Ok(self.0.clone())
    }
}

/// What one evaluation of one rule did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleReport {
    pub rule: RuleName,
    /// The moment it was evaluated as of.
    pub as_of: DateTime<Utc>,
    /// Keys of the mails queued by this run.
    pub queued: Vec<String>,
    /// Candidates whose mail was already queued (by an earlier run, or another
    /// scheduler a moment ago).
    pub already: usize,
    /// Candidates that the re-check on their own stream turned down (a contact
    /// logged a moment ago, a cancelled sign-up, ...).
    pub declined: usize,
    /// Candidates whose append failed; the next run tries them again.
    pub failed: usize,
}

impl RuleReport {
    fn new(rule: RuleName, as_of: DateTime<Utc>) -> Self {
        Self {
            rule,
            as_of,
            queued: Vec::new(),
            already: 0,
            declined: 0,
            failed: 0,
        }
    }
}

/// A rule as `kujira scheduler status` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleStatus {
    pub rule: RuleName,
    /// The cron expression as configured, or `off`.
    pub schedule: String,
    pub next_run: Option<DateTime<Utc>>,
    /// The moment the last successful run was evaluated as of.
    pub last_run: Option<DateTime<Utc>>,
    pub last_queued: i32,
    pub last_attempt: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

/// What a rule would queue as of a moment, before re-checking and appending.
#[derive(Debug, Clone)]
pub struct Planned {
    rule: RuleName,
    work: Work,
}

impl Planned {
    /// How many mails the plan holds.
    pub fn len(&self) -> usize {
        match &self.work {
            Work::Tours(by_tour) => by_tour.values().map(Vec::len).sum(),
            Work::Cases(c) => c.len(),
            Work::Support(s) => s.iter().map(|s| s.recipients.len()).sum(),
            Work::Digest { digests, .. } => digests.len(),
            Work::Nothing => 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn rule(&self) -> RuleName {
        self.rule
    }
}

#[derive(Debug, Clone)]
enum Work {
    Nothing,
    /// Per tour, its parties.
    Tours(BTreeMap<Uuid, Vec<TourCandidate>>),
    Cases(Vec<CaseCandidate>),
    Support(Vec<SupportCandidate>),
    Digest {
        date: NaiveDate,
        digests: Vec<DigestCompiled>,
    },
}

#[derive(Debug, Clone)]
struct TourCandidate {
    sign_up_id: Uuid,
    kind: TourMailKind,
}

#[derive(Debug, Clone, Copy)]
enum TourMailKind {
    /// The reminder's moment: the parties confirmed by then get it then; a party
    /// promoted later gets it when promoted.
    Reminder {
        moment: DateTime<Utc>,
    },
    ThankYou,
}

#[derive(Debug, Clone)]
struct CaseCandidate {
    case_id: Uuid,
    kind: CaseMailKind,
}

#[derive(Debug, Clone, Copy)]
enum CaseMailKind {
    /// The 1-based `step` of the nurture follow-ups, `days` after `clock`.
    Nurture {
        step: usize,
        days: u32,
        clock: DateTime<Utc>,
    },
    PostMove {
        moved_at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone)]
struct SupportCandidate {
    case_id: Uuid,
    person_id: Uuid,
    reference: String,
    move_in: NaiveDate,
    /// With whether the recipient holds the case.
    recipients: Vec<(Concierge, bool)>,
}

/// The scheduler's rules over one store.
#[derive(Debug, Clone)]
pub struct Rules {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    config: Arc<Config>,
    staff: Arc<dyn StaffDirectory>,
    /// Brings the rules' projection up to date before each evaluation.
    projector: Projector,
    /// One evaluation of a rule at a time in this process (cron ticks that overlap
    /// skip); other processes are kept apart by the keys alone.
    running: HashMap<RuleName, tokio::sync::Mutex<()>>,
}

impl Rules {
    pub fn new(store: Store, config: Arc<Config>, staff: Arc<dyn StaffDirectory>) -> Self {
        let projector = Projector::new(store.events().clone()).with(RulesProjection::new());
        Self {
            inner: Arc::new(Inner {
                store,
                config,
                staff,
                projector,
                running: RuleName::ALL
                    .into_iter()
                    .map(|r| (r, tokio::sync::Mutex::new(())))
                    .collect(),
            }),
        }
    }

    pub fn config(&self) -> &Arc<Config> {
        &self.inner.config
    }

    fn settings(&self) -> &RuleSettings {
        &self.inner.config.rules
    }

    fn store(&self) -> &Store {
        &self.inner.store
    }

    fn pool(&self) -> &sqlx::PgPool {
        self.inner.store.pool()
    }

    pub(crate) fn schedule(&self, rule: RuleName) -> Option<Schedule> {
        self.settings()
            .schedule(rule)
            .cron()
            .map(|c| Schedule::new(c, self.inner.config.timezone))
    }

    /// The rules that are not turned off.
    pub fn enabled(&self) -> Vec<RuleName> {
        RuleName::ALL
            .into_iter()
            .filter(|r| self.settings().schedule(*r).cron().is_some())
            .collect()
    }

    /// Evaluates every enabled rule as of `now` (`kujira scheduler run-once`).
    pub async fn run_all(&self, now: DateTime<Utc>) -> anyhow::Result<Vec<RuleReport>> {
        let mut reports = Vec::new();
        for rule in self.enabled() {
            reports.push(self.run(rule, now).await?);
        }
        Ok(reports)
    }

    /// Evaluates `rule` as of `now`, queues what it decides, and records the run.
    /// A rule that is off does nothing.
    pub async fn run(&self, rule: RuleName, now: DateTime<Utc>) -> anyhow::Result<RuleReport> {
        let outcome = self.evaluate(rule, now).await;
        let (error, queued) = match &outcome {
            Ok(r) if r.failed == 0 => (None, r.queued.len()),
            Ok(r) => (
                Some(format!("{} appends failed; they are tried again", r.failed)),
                r.queued.len(),
            ),
            Err(e) => (Some(format!("{e:#}")), 0),
        };
        self.record_run(rule, now, error.as_deref(), queued)
            .await
            .context("cannot record the run")?;
        outcome
    }

    async fn evaluate(&self, rule: RuleName, now: DateTime<Utc>) -> anyhow::Result<RuleReport> {
        // Candidates come from the projection: first make it see every fact
        // committed until now (a sign-up a second before the reminder's moment).
        self.inner
            .projector
            .catch_up()
            .await
            .context("the rules' projection cannot catch up")?;
        let planned = self.plan(rule, now).await?;
        self.queue(planned, now).await
    }

    /// Runs `rule` unless a run of it is already going on in this process; logs the
    /// outcome. What the cron jobs call.
    pub async fn tick(&self, rule: RuleName, now: DateTime<Utc>) {
        let Some(guard) = self.inner.running.get(&rule) else {
            return;
        };
        let Ok(_running) = guard.try_lock() else {
            tracing::info!(
                rule = rule.as_str(),
                "the previous run is still going; skipped"
            );
            return;
        };
        match self.run(rule, now).await {
            Ok(r) if !r.queued.is_empty() || r.failed > 0 => tracing::info!(
                rule = rule.as_str(),
                queued = r.queued.len(),
                already = r.already,
                declined = r.declined,
                failed = r.failed,
                "rule ran"
            ),
            Ok(r) => tracing::debug!(rule = rule.as_str(), already = r.already, "rule ran"),
            Err(e) => {
                tracing::error!(
                    rule = rule.as_str(),
                    error = format!("{e:#}"),
                    "rule failed"
                )
            }
        }
    }

    /// Runs every enabled rule whose last scheduled run, at or before `now`, came
    /// after its last recorded run: a run missed while the service was down. Each
    /// runs as of `now`, so what has become too late to matter (a reminder for a tour
    /// that has started, the digest of a past day) is not sent.
    pub async fn catch_up_missed(&self, now: DateTime<Utc>) -> anyhow::Result<Vec<RuleReport>> {
        let last = self.last_runs().await?;
        let mut reports = Vec::new();
        for rule in self.enabled() {
            let Some(due) = self.schedule(rule).and_then(|s| s.last_run(now)) else {
                continue;
            };
            match last.get(&rule) {
                // Never tried (a new database, a rule just turned on): not a run
                // the service missed; run it now so that the next start has a
                // last run to compare with.
                None => tracing::debug!(rule = rule.as_str(), "first run of the rule"),
                Some(r) if r.0.is_none_or(|ran| ran < due) => {
                    tracing::info!(rule = rule.as_str(), %due, "catching up a missed run")
                }
                Some(_) => continue,
            }
            reports.push(self.run(rule, now).await?);
        }
        Ok(reports)
    }

    /// Every rule, its schedule, its next run after `now` and its last run.
    pub async fn status(&self, now: DateTime<Utc>) -> anyhow::Result<Vec<RuleStatus>> {
        let last = self.last_runs().await?;
        Ok(RuleName::ALL
            .into_iter()
            .map(|rule| {
                let (last_run, last_queued, last_attempt, last_error) =
                    last.get(&rule).cloned().unwrap_or_default();
                RuleStatus {
                    rule,
                    schedule: self.settings().schedule(rule).to_string(),
                    next_run: self.schedule(rule).and_then(|s| s.next_run(now)),
                    last_run,
                    last_queued,
                    last_attempt,
                    last_error,
                }
            })
            .collect())
    }

    async fn last_runs(&self) -> anyhow::Result<HashMap<RuleName, LastRun>> {
        let rows = sqlx::query(
            "SELECT rule, last_run_at, last_queued, last_attempt_at, last_error FROM rule_runs",
        )
        .fetch_all(self.pool())
        .await
        .context("cannot read rule_runs")?;
        let mut out = HashMap::new();
        for r in rows {
            let name: String = r.try_get("rule")?;
            if let Some(rule) = RuleName::parse(&name) {
                out.insert(
                    rule,
                    (
                        r.try_get("last_run_at")?,
                        r.try_get("last_queued")?,
                        r.try_get("last_attempt_at")?,
                        r.try_get("last_error")?,
                    ),
                );
            }
        }
        Ok(out)
    }

    /// A run never moves the last run back: `run-once --at` a past moment does
    /// not make the schedule catch up again.
    async fn record_run(
        &self,
        rule: RuleName,
        as_of: DateTime<Utc>,
        error: Option<&str>,
        queued: usize,
    ) -> anyhow::Result<()> {
        let ok = error.is_none();
        sqlx::query(
            "INSERT INTO rule_runs (rule, last_run_at, last_queued, last_attempt_at, last_error) \
             VALUES ($1, CASE WHEN $2 THEN $3 END, $4, now(), $5) \
             ON CONFLICT (rule) DO UPDATE SET \
               last_run_at = CASE WHEN $2 \
                 THEN greatest(rule_runs.last_run_at, $3) ELSE rule_runs.last_run_at END, \
               last_queued = CASE WHEN $2 THEN $4 ELSE rule_runs.last_queued END, \
               last_attempt_at = now(), last_error = $5",
        )
        .bind(rule.as_str())
        .bind(ok)
        .bind(as_of)
        .bind(i32::try_from(queued).unwrap_or(i32::MAX))
        .bind(error)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    // ---------------------------------------------------------------------
    // Planning: candidates from the projection.

    /// What `rule` would queue as of `now`, from the projection as it stands, minus
    /// the keys the outbox already holds. Reads only.
    pub async fn plan(&self, rule: RuleName, now: DateTime<Utc>) -> anyhow::Result<Planned> {
        let work = match self.schedule(rule) {
            None => Work::Nothing,
            Some(schedule) => match rule {
                RuleName::TourReminder => self.plan_reminders(&schedule, now).await?,
                RuleName::TourThankYou => self.plan_thank_yous(&schedule, now).await?,
                RuleName::Nurture => self.plan_nurture(&schedule, now).await?,
                RuleName::PostMove => self.plan_post_move(&schedule, now).await?,
                RuleName::SupportWindow => self.plan_support(&schedule, now).await?,
                RuleName::Digest => self.plan_digest(&schedule, now).await?,
            },
        };
        Ok(Planned { rule, work })
    }

    /// The keys among `keys` that the outbox already holds.
    async fn known_keys(&self, keys: &[String]) -> anyhow::Result<HashSet<String>> {
        let rows = sqlx::query("SELECT key FROM mail_deliveries WHERE key = ANY($1)")
            .bind(keys)
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| r.try_get::<String, _>("key").map_err(Into::into))
            .collect()
    }

    // ---------------------------------------------------------------------
    // Queueing: re-check on the stream, append with the key's event id.

    fn context(&self, rule: RuleName) -> CommandContext {
        CommandContext::new("system:scheduler").with("rule", rule.as_str())
    }

    /// Re-checks each candidate of `planned` on its own stream and queues its mail.
    pub async fn queue(&self, planned: Planned, now: DateTime<Utc>) -> anyhow::Result<RuleReport> {
        let rule = planned.rule;
        let mut report = RuleReport::new(rule, now);
        match planned.work {
            Work::Nothing => {}
            Work::Tours(by_tour) => {
                for (tour_id, parties) in by_tour {
                    let outcome = self.queue_tour(rule, tour_id, &parties, now).await;
                    merge(&mut report, outcome, parties.len(), rule);
                }
            }
            Work::Cases(cases) => {
                let outcomes: Vec<_> = futures::stream::iter(cases)
                    .map(|c| async move { self.queue_case(rule, &c, now).await })
                    .buffer_unordered(PARALLEL)
                    .collect()
                    .await;
                for o in outcomes {
                    merge(&mut report, o, 1, rule);
                }
            }
            Work::Support(items) => {
                for item in items {
                    let n = item.recipients.len();
                    let outcome = self.queue_support(rule, item, now).await;
                    merge(&mut report, outcome, n, rule);
                }
            }
            Work::Digest { date, digests } => {
                let n = digests.len();
                let outcome = self.queue_digests(rule, date, digests).await;
                merge(&mut report, outcome, n, rule);
            }
        }
        Ok(report)
    }
}

type LastRun = (
    Option<DateTime<Utc>>,
    i32,
    Option<DateTime<Utc>>,
    Option<String>,
);

/// What queueing on one stream did.
#[derive(Debug, Default)]
struct Outcome {
    queued: Vec<String>,
    already: usize,
    declined: usize,
}

impl Outcome {
    /// A replayed append means another scheduler appended these very events first.
    fn settled(mut self, replayed: bool) -> Self {
        if replayed {
            self.already += self.queued.len();
            self.queued.clear();
        }
        self
    }
}

fn merge(report: &mut RuleReport, outcome: anyhow::Result<Outcome>, size: usize, rule: RuleName) {
    match outcome {
        Ok(o) => {
            report.queued.extend(o.queued);
            report.already += o.already;
            report.declined += o.declined;
        }
        Err(e) => {
            tracing::error!(
                rule = rule.as_str(),
                error = format!("{e:#}"),
                "cannot queue"
            );
            report.failed += size;
        }
    }
}
