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
            let ran = last.get(&rule).and_then(|r| r.0);
            if ran.is_none_or(|ran| ran < due) {
                tracing::info!(rule = rule.as_str(), %due, "catching up a missed run");
                reports.push(self.run(rule, now).await?);
            }
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

    async fn plan_reminders(&self, s: &Schedule, now: DateTime<Utc>) -> anyhow::Result<Work> {
        let days = i64::from(self.settings().tour_reminder_days_before);
        let tours = sqlx::query(
            "SELECT tour_id, starts_at FROM rule_tours \
             WHERE status = 'published' AND starts_at > $1 AND starts_at <= $2",
        )
        .bind(now)
        .bind(now + Duration::days(days + 2))
        .fetch_all(self.pool())
        .await?;
        let mut moments = HashMap::new();
        for t in &tours {
            let starts_at: DateTime<Utc> = t.try_get("starts_at")?;
            let day = s.date(starts_at) - Duration::days(days);
            // The reminder's moment: the rule's first run on that day (or after);
            // none at all when the rule would first run after the start.
            if let Some(m) = s.first_run_on_or_after(day)
                && m < starts_at
                && m <= now
            {
                moments.insert(t.try_get::<Uuid, _>("tour_id")?, m);
            }
        }
        let ids: Vec<Uuid> = moments.keys().copied().collect();
        let parties = sqlx::query(
            "SELECT p.tour_id, p.sign_up_id, p.received_at, p.promoted_at \
             FROM rule_tour_parties p \
             WHERE p.tour_id = ANY($1) AND p.status = 'confirmed' \
               AND NOT EXISTS (SELECT 1 FROM mail_deliveries d WHERE d.key = \
                   'tour/' || p.tour_id || '/sign-up/' || p.sign_up_id || '/reminder') \
               AND NOT EXISTS (SELECT 1 FROM rule_persons x \
                   WHERE x.person_id = p.person_id AND x.erased_at IS NOT NULL)",
        )
        .bind(&ids)
        .fetch_all(self.pool())
        .await?;
        let mut by_tour: BTreeMap<Uuid, Vec<TourCandidate>> = BTreeMap::new();
        for p in parties {
            let tour_id: Uuid = p.try_get("tour_id")?;
            let moment = moments[&tour_id];
            let received: DateTime<Utc> = p.try_get("received_at")?;
            let promoted: Option<DateTime<Utc>> = p.try_get("promoted_at")?;
            if reminder_due(moment, received, promoted, now) {
                by_tour.entry(tour_id).or_default().push(TourCandidate {
                    sign_up_id: p.try_get("sign_up_id")?,
                    kind: TourMailKind::Reminder { moment },
                });
            }
        }
        Ok(Work::Tours(by_tour))
    }

    async fn plan_thank_yous(&self, s: &Schedule, now: DateTime<Utc>) -> anyhow::Result<Work> {
        let days = i64::from(self.settings().tour_thank_you_days_after);
        let tours = sqlx::query(
            "SELECT tour_id, ends_at FROM rule_tours \
             WHERE status = 'published' AND ends_at <= $1 AND ends_at > $2",
        )
        .bind(now)
        .bind(now - Duration::days(days + THANK_YOU_LATE_DAYS + 2))
        .fetch_all(self.pool())
        .await?;
        let mut due = Vec::new();
        for t in &tours {
            let ends_at: DateTime<Utc> = t.try_get("ends_at")?;
            let day = s.date(ends_at) + Duration::days(days);
            let from = start_of_day(self.inner.config.timezone, day).max(ends_at);
            if let Some(m) = s.first_run_from(from)
                && m <= now
                && now < m + Duration::days(THANK_YOU_LATE_DAYS)
            {
                due.push(t.try_get::<Uuid, _>("tour_id")?);
            }
        }
        // With check-in data, those who came; without, every confirmed party.
        let parties = sqlx::query(
            "SELECT p.tour_id, p.sign_up_id FROM rule_tour_parties p \
             JOIN rule_tours t ON t.tour_id = p.tour_id \
             WHERE p.tour_id = ANY($1) \
               AND CASE WHEN t.attendance_recorded THEN p.attended IS TRUE \
                        ELSE p.status = 'confirmed' END \
               AND NOT EXISTS (SELECT 1 FROM mail_deliveries d WHERE d.key = \
                   'tour/' || p.tour_id || '/sign-up/' || p.sign_up_id || '/thank-you') \
               AND NOT EXISTS (SELECT 1 FROM rule_persons x \
                   WHERE x.person_id = p.person_id AND x.erased_at IS NOT NULL)",
        )
        .bind(&due)
        .fetch_all(self.pool())
        .await?;
        let mut by_tour: BTreeMap<Uuid, Vec<TourCandidate>> = BTreeMap::new();
        for p in parties {
            by_tour
                .entry(p.try_get("tour_id")?)
                .or_default()
                .push(TourCandidate {
                    sign_up_id: p.try_get("sign_up_id")?,
                    kind: TourMailKind::ThankYou,
                });
        }
        Ok(Work::Tours(by_tour))
    }

    async fn plan_nurture(&self, s: &Schedule, now: DateTime<Utc>) -> anyhow::Result<Work> {
        // Due at the rule's first run after the offset: there was a run in
        // [clock + days, now] exactly when clock + days <= the last run.
        let Some(last) = s.last_run(now) else {
            return Ok(Work::Nothing);
        };
        let steps = &self.settings().nurture_days;
        let mut out = Vec::new();
        for (i, days) in steps.iter().enumerate() {
            let until = nurture_until(steps, i);
            let rows = sqlx::query(
                "SELECT case_id, nurture_from FROM rule_cases c \
                 WHERE phase IN ('gathering', 'considering') AND closed_at IS NULL \
                   AND merged_into IS NULL \
                   AND nurture_from <= $1 AND nurture_from > $2 \
                   AND NOT EXISTS (SELECT 1 FROM mail_deliveries d WHERE d.key = \
                       'case/' || c.case_id || '/nurture/' \
                       || floor(extract(epoch FROM c.nurture_from))::bigint || '/' || $3) \
                   AND NOT EXISTS (SELECT 1 FROM rule_persons x \
                       WHERE x.person_id = c.person_id AND x.erased_at IS NOT NULL)",
            )
            .bind(last - Duration::days(i64::from(*days)))
            .bind(now - Duration::days(until))
            .bind((i + 1).to_string())
            .fetch_all(self.pool())
            .await?;
            for r in rows {
                out.push(CaseCandidate {
                    case_id: r.try_get("case_id")?,
                    kind: CaseMailKind::Nurture {
                        step: i + 1,
                        days: *days,
                        clock: r.try_get("nurture_from")?,
                    },
                });
            }
        }
        Ok(Work::Cases(out))
    }

    async fn plan_post_move(&self, s: &Schedule, now: DateTime<Utc>) -> anyhow::Result<Work> {
        let Some(last) = s.last_run(now) else {
            return Ok(Work::Nothing);
        };
        let days = i64::from(self.settings().post_move_days);
        let rows = sqlx::query(
            "SELECT case_id, moved_at FROM rule_cases c \
             WHERE moved_at IS NOT NULL AND closed_at IS NULL AND merged_into IS NULL \
               AND moved_at <= $1 AND moved_at > $2 \
               AND NOT EXISTS (SELECT 1 FROM mail_deliveries d WHERE d.key = \
                   'case/' || c.case_id || '/post-move/' \
                   || floor(extract(epoch FROM c.moved_at))::bigint) \
               AND NOT EXISTS (SELECT 1 FROM rule_persons x \
                   WHERE x.person_id = c.person_id AND x.erased_at IS NOT NULL)",
        )
        .bind(last - Duration::days(days))
        .bind(now - Duration::days(days + LATE_LIMIT_DAYS))
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(CaseCandidate {
                    case_id: r.try_get("case_id")?,
                    kind: CaseMailKind::PostMove {
                        moved_at: r.try_get("moved_at")?,
                    },
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()
            .map(Work::Cases)
    }

    async fn plan_support(&self, s: &Schedule, now: DateTime<Utc>) -> anyhow::Result<Work> {
        let Some(last) = s.last_run(now) else {
            return Ok(Work::Nothing);
        };
        let months = self.settings().support_window_months;
        let last_day = s.date(last);
        let today = s.date(now);
        let rows = sqlx::query(
            "SELECT case_id, person_id, reference, move_in, concierge FROM rule_cases c \
             WHERE applies_for_support AND moved_at IS NOT NULL AND closed_at IS NULL \
               AND merged_into IS NULL \
               AND move_in + make_interval(months => $1) <= $2 \
               AND move_in + interval '12 months' > $3 \
               AND NOT EXISTS (SELECT 1 FROM rule_persons x \
                   WHERE x.person_id = c.person_id AND x.erased_at IS NOT NULL)",
        )
        .bind(i32::try_from(months).unwrap_or(9))
        .bind(last_day)
        .bind(today)
        .fetch_all(self.pool())
        .await?;
        if rows.is_empty() {
            return Ok(Work::Support(Vec::new()));
        }
        let concierges = self.inner.staff.concierges().await?;
        let mut candidates = Vec::new();
        let mut keys_wanted = Vec::new();
        for r in rows {
            let case_id: Uuid = r.try_get("case_id")?;
            let move_in: NaiveDate = r.try_get("move_in")?;
            let holder: Option<Uuid> = r.try_get("concierge")?;
            // To its concierge; a case nobody holds goes to every concierge.
            let recipients: Vec<(Concierge, bool)> =
                match concierges.iter().find(|c| Some(c.user_id) == holder) {
                    Some(c) => vec![(c.clone(), true)],
                    None => concierges.iter().map(|c| (c.clone(), false)).collect(),
                };
            keys_wanted.extend(
                recipients
                    .iter()
                    .map(|(c, _)| keys::support_window(case_id, move_in, c.user_id)),
            );
            candidates.push(SupportCandidate {
                case_id,
                person_id: r.try_get("person_id")?,
                reference: r.try_get("reference")?,
                move_in,
                recipients,
            });
        }
        let known = self.known_keys(&keys_wanted).await?;
        for c in &mut candidates {
            let (case_id, move_in) = (c.case_id, c.move_in);
            c.recipients.retain(|(r, _)| {
                !known.contains(&keys::support_window(case_id, move_in, r.user_id))
            });
        }
        candidates.retain(|c| !c.recipients.is_empty());
        Ok(Work::Support(candidates))
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

    async fn plan_digest(&self, s: &Schedule, now: DateTime<Utc>) -> anyhow::Result<Work> {
        let today = s.date(now);
        // Business days only, and only on the day itself: no digest for a past day.
        let Some(moment) = s.last_run(now).filter(|m| s.date(*m) == today) else {
            return Ok(Work::Nothing);
        };
        if !calendar::is_business_day(today) {
            return Ok(Work::Nothing);
        }
        let concierges = self.inner.staff.concierges().await?;
        if concierges.is_empty() {
            return Ok(Work::Nothing);
        }
        let previous = calendar::previous_business_day(today);
        let since = s
            .first_run_on_or_after(previous)
            .filter(|t| *t < moment)
            .unwrap_or_else(|| start_of_day(self.inner.config.timezone, previous));
        let wanted: Vec<String> = concierges
            .iter()
            .map(|c| keys::digest(today, c.user_id))
            .collect();
        let known = self.known_keys(&wanted).await?;
        let pending: Vec<&Concierge> = concierges
            .iter()
            .filter(|c| !known.contains(&keys::digest(today, c.user_id)))
            .collect();
        if pending.is_empty() {
            return Ok(Work::Nothing);
        }
        let lists = self.digest_lists(today, since, moment, now).await?;
        let tours = self.digest_tours(now).await?;
        let active: HashSet<Uuid> = concierges.iter().map(|c| c.user_id).collect();
        let digests = pending
            .into_iter()
            .map(|c| DigestCompiled {
                key: keys::digest(today, c.user_id),
                date: today,
                at: moment,
                since,
                recipient: c.clone(),
                sections: lists
                    .iter()
                    .map(|(item, rows)| section(*item, rows, c.user_id, &active))
                    .collect(),
                tours: tours.clone(),
            })
            .filter(|d| !d.is_empty())
            .collect();
        Ok(Work::Digest {
            date: today,
            digests,
        })
    }

    async fn digest_lists(
        &self,
        today: NaiveDate,
        since: DateTime<Utc>,
        moment: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Vec<(DigestItem, Vec<ListRow>)>> {
        let settings = self.settings();
        let tz = self.inner.config.timezone;
        let pool = self.pool();
        let no_contact_cutoff = start_of_day(
            tz,
            calendar::sub_business_days(today, settings.digest_no_contact_business_days),
        );
        let idle_cutoff = now - Duration::days(i64::from(settings.digest_idle_days));
        // The nurture steps that came due in [since, moment): one range of the
        // clock per step. The day counts are numbers from the configuration.
        let follow_ups = settings
            .nurture_days
            .iter()
            .map(|d| {
                format!(
                    "(c.nurture_from >= $1 - interval '{d} days' \
                      AND c.nurture_from < $2 - interval '{d} days')"
                )
            })
            .collect::<Vec<_>>()
            .join(" OR ");
        let mut out = Vec::new();
        for item in DigestItem::ALL {
            let (filter, at, date, order, join) = match item {
                DigestItem::NewCases => (
                    "c.opened_at >= $1 AND c.opened_at < $2".to_owned(),
                    "c.opened_at",
                    "NULL::date",
                    "c.opened_at",
                    "",
                ),
                DigestItem::NoFirstContact => (
                    "c.last_contact_at IS NULL AND c.phase <> 'moved' AND c.opened_at < $1"
                        .to_owned(),
                    "c.opened_at",
                    "NULL::date",
                    "c.opened_at",
                    "",
                ),
                DigestItem::FollowUpsDue => (
                    format!("c.phase IN ('gathering', 'considering') AND ({follow_ups})"),
                    "c.nurture_from",
                    "NULL::date",
                    "c.nurture_from",
                    "",
                ),
                DigestItem::PastNextAction => (
                    "c.next_action < $1".to_owned(),
                    "NULL::timestamptz",
                    "c.next_action",
                    "c.next_action",
                    "",
                ),
                DigestItem::Idle => (
                    "c.phase <> 'moved' AND c.last_activity_at < $1".to_owned(),
                    "c.last_activity_at",
                    "NULL::date",
                    "c.last_activity_at",
                    "",
                ),
                DigestItem::Bouncing => (
                    "p.bouncing_since IS NOT NULL AND p.erased_at IS NULL".to_owned(),
                    "p.bouncing_since",
                    "NULL::date",
                    "p.bouncing_since",
                    "JOIN rule_persons p ON p.person_id = c.person_id",
                ),
            };
            let sql = list_sql(&filter, at, date, order, join);
            let q = sqlx::query_as::<_, ListRow>(&sql);
            let q = match item {
                DigestItem::NewCases | DigestItem::FollowUpsDue => q.bind(since).bind(moment),
                DigestItem::NoFirstContact => q.bind(no_contact_cutoff),
                DigestItem::PastNextAction => q.bind(today),
                DigestItem::Idle => q.bind(idle_cutoff),
                DigestItem::Bouncing => q,
            };
            let rows = q
                .fetch_all(pool)
                .await
                .with_context(|| format!("cannot list {item:?} for the digest"))?;
            out.push((item, rows));
        }
        Ok(out)
    }

    async fn digest_tours(&self, now: DateTime<Utc>) -> anyhow::Result<Vec<DigestTour>> {
        let days = i64::from(self.settings().digest_tours_days);
        let rows = sqlx::query(
            "SELECT tour_id, title, starts_at, ends_at, capacity_parties, max_people, \
               confirmed_parties, confirmed_people, waitlist_length FROM rule_tours \
             WHERE status = 'published' AND starts_at >= $1 AND starts_at < $2 \
             ORDER BY starts_at, tour_id",
        )
        .bind(now)
        .bind(now + Duration::days(days))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DigestTour {
                    tour_id: r.try_get("tour_id")?,
                    title: r.try_get("title")?,
                    starts_at: r.try_get("starts_at")?,
                    ends_at: r.try_get("ends_at")?,
                    capacity_parties: r.try_get("capacity_parties")?,
                    max_people: r.try_get("max_people")?,
                    confirmed_parties: r.try_get("confirmed_parties")?,
                    confirmed_people: r.try_get("confirmed_people")?,
                    waitlist_length: r.try_get("waitlist_length")?,
                })
            })
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

    async fn queue_tour(
        &self,
        rule: RuleName,
        tour_id: Uuid,
        parties: &[TourCandidate],
        now: DateTime<Utc>,
    ) -> anyhow::Result<Outcome> {
        let stream = StreamName::new(kujira_domain::tour::CATEGORY, tour_id);
        let mut outcome = Outcome::default();
        let done = kujira_store::execute::<TourMails>(
            self.store(),
            &stream,
            &self.context(rule),
            None,
            |state: &TourMailState| {
                outcome = Outcome::default();
                let mut events = Vec::new();
                for c in parties {
                    let (key, template) = match c.kind {
                        TourMailKind::Reminder { .. } => (
                            keys::tour_reminder(tour_id, c.sign_up_id),
                            templates::TOUR_REMINDER,
                        ),
                        TourMailKind::ThankYou => (
                            keys::tour_thank_you(tour_id, c.sign_up_id),
                            templates::TOUR_THANK_YOU,
                        ),
                    };
                    if state.mail_keys.contains(&key) {
                        outcome.already += 1;
                        continue;
                    }
                    match tour_recipient(state, c, now) {
                        Some(person_id) => {
                            outcome.queued.push(key.clone());
                            events.push(TourEvent::MailQueued(
                                MailQueued::to_applicant(key, template, person_id)
                                    .follow_up()
                                    .about(c.sign_up_id),
                            ));
                        }
                        None => outcome.declined += 1,
                    }
                }
                Ok(events)
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("cannot queue on {stream}: {e}"))?;
        Ok(outcome.settled(done.replayed))
    }

    async fn queue_case(
        &self,
        rule: RuleName,
        c: &CaseCandidate,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Outcome> {
        let stream = StreamName::new(kujira_domain::inquiry::CATEGORY, c.case_id);
        let settings = self.settings();
        let mut outcome = Outcome::default();
        let done = kujira_store::execute::<Consultation>(
            self.store(),
            &stream,
            &self.context(rule),
            None,
            |state: &ConsultationState| {
                outcome = Outcome::default();
                let Some(open) = &state.opened else {
                    outcome.declined += 1;
                    return Ok(vec![]);
                };
                let work = &state.work;
                let (key, mail) = match c.kind {
                    CaseMailKind::Nurture { step, days, clock } => {
                        let key = keys::nurture(c.case_id, clock, step);
                        // The clock on the stream itself: a contact logged or a
                        // phase changed a moment ago wins over the projection.
                        let current = work.last_contact_at.max(work.last_phase_change_at);
                        let fits = matches!(open.stage, Stage::Gathering | Stage::Considering)
                            && current.map(|t| t.timestamp()) == Some(clock.timestamp())
                            && clock + Duration::days(i64::from(days)) <= now
                            && now
                                < clock
                                    + Duration::days(nurture_until(
                                        &settings.nurture_days,
                                        step - 1,
                                    ));
                        let mail = fits.then(|| {
                            MailQueued::to_applicant(
                                key.clone(),
                                templates::NURTURE,
                                open.person_id,
                            )
                            .follow_up()
                            .with_params(serde_json::json!({ "step": step, "days": days }))
                        });
                        (key, mail)
                    }
                    CaseMailKind::PostMove { moved_at } => {
                        let key = keys::post_move(c.case_id, moved_at);
                        let fits = open.stage == Stage::Moved
                            && work.last_phase_change_at.map(|t| t.timestamp())
                                == Some(moved_at.timestamp());
                        let mail = fits.then(|| {
                            MailQueued::to_applicant(
                                key.clone(),
                                templates::POST_MOVE,
                                open.person_id,
                            )
                            .follow_up()
                            .with_params(serde_json::json!({
                                "days": settings.post_move_days
                            }))
                        });
                        (key, mail)
                    }
                };
                if state.mail_keys.contains(&key) {
                    outcome.already += 1;
                    return Ok(vec![]);
                }
                let open_case = work.closed.is_none() && work.merged_into.is_none();
                match mail.filter(|_| open_case) {
                    Some(m) => {
                        outcome.queued.push(key);
                        Ok(vec![ConsultationEvent::MailQueued(m)])
                    }
                    None => {
                        outcome.declined += 1;
                        Ok(vec![])
                    }
                }
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("cannot queue on {stream}: {e}"))?;
        Ok(outcome.settled(done.replayed))
    }

    async fn queue_support(
        &self,
        rule: RuleName,
        c: SupportCandidate,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Outcome> {
        // The case's own stream says whether the household still applies.
        let case_stream = StreamName::new(kujira_domain::inquiry::CATEGORY, c.case_id);
        let (case, _) = kujira_store::load::<Consultation>(self.store(), &case_stream, None)
            .await
            .with_context(|| format!("cannot load {case_stream}"))?;
        let still = case
            .opened
            .as_ref()
            .is_some_and(|o| o.stage == Stage::Moved)
            && case.work.closed.is_none()
            && case.work.merged_into.is_none()
            && case
                .work
                .moved
                .is_some_and(|m| m.applies_for_support && m.move_in == c.move_in);
        if !still {
            return Ok(Outcome {
                declined: c.recipients.len(),
                ..Outcome::default()
            });
        }
        let closes_on = c
            .move_in
            .checked_add_months(Months::new(12))
            .unwrap_or(c.move_in);
        let stream = StreamName::new(SUPPORT_WINDOW_CATEGORY, c.case_id);
        let mut outcome = Outcome::default();
        let done = kujira_store::execute::<StaffMail>(
            self.store(),
            &stream,
            &self.context(rule),
            None,
            |state| {
                outcome = Outcome::default();
                let mut events = Vec::new();
                for (recipient, assigned) in &c.recipients {
                    let key = keys::support_window(c.case_id, c.move_in, recipient.user_id);
                    if state.keys.contains(&key) {
                        outcome.already += 1;
                        continue;
                    }
                    events.push(StaffMailEvent::SupportWindowNoted(SupportWindowNoted {
                        key: key.clone(),
                        case_id: c.case_id,
                        person_id: c.person_id,
                        reference: c.reference.clone(),
                        move_in: c.move_in,
                        closes_on,
                        at: now,
                        recipient: recipient.clone(),
                        assigned: *assigned,
                    }));
                    events.push(StaffMailEvent::MailQueued(MailQueued::to_staff(
                        key.clone(),
                        templates::SUPPORT_WINDOW,
                        Some(c.person_id),
                    )));
                    outcome.queued.push(key);
                }
                Ok(events)
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("cannot queue on {stream}: {e}"))?;
        Ok(outcome.settled(done.replayed))
    }

    async fn queue_digests(
        &self,
        rule: RuleName,
        date: NaiveDate,
        digests: Vec<DigestCompiled>,
    ) -> anyhow::Result<Outcome> {
        let stream = StreamName::new(DIGEST_CATEGORY, date);
        let mut outcome = Outcome::default();
        let done = kujira_store::execute::<StaffMail>(
            self.store(),
            &stream,
            &self.context(rule),
            None,
            |state| {
                outcome = Outcome::default();
                let mut events = Vec::new();
                for d in &digests {
                    if state.keys.contains(&d.key) {
                        outcome.already += 1;
                        continue;
                    }
                    outcome.queued.push(d.key.clone());
                    events.push(StaffMailEvent::DigestCompiled(d.clone()));
                    events.push(StaffMailEvent::MailQueued(MailQueued::to_staff(
                        d.key.clone(),
                        templates::DIGEST,
                        None,
                    )));
                }
                Ok(events)
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("cannot queue on {stream}: {e}"))?;
        Ok(outcome.settled(done.replayed))
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

/// Whether a confirmed party gets the reminder as of `now`: confirmed by the
/// reminder's moment (signed up, or promoted, by then), or promoted after it (a
/// reminder at promotion). A party that signed up after the moment already has its
/// confirmation, and gets no stale "in three days".
fn reminder_due(
    moment: DateTime<Utc>,
    received: DateTime<Utc>,
    promoted: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> bool {
    match promoted {
        Some(p) => p <= now && moment <= now,
        None => received <= moment && moment <= now,
    }
}

/// The person to send a tour mail to, if the tour's own stream still says so.
fn tour_recipient(state: &TourMailState, c: &TourCandidate, now: DateTime<Utc>) -> Option<Uuid> {
    let tour = &state.tour;
    let d = tour.details.as_ref()?;
    if tour.status != TourStatus::Published {
        return None;
    }
    let s = tour.sign_up(c.sign_up_id)?;
    match c.kind {
        TourMailKind::Reminder { moment } => {
            let fits = s.status == SignUpStatus::Confirmed
                && now < d.starts_at
                && reminder_due(moment, s.received_at, s.promoted_at, now);
            fits.then_some(s.person_id)
        }
        TourMailKind::ThankYou => {
            let checked_in = tour.sign_ups.iter().any(|x| x.attended.is_some());
            let fits = now >= d.ends_at
                && if checked_in {
                    s.attended == Some(true)
                } else {
                    s.status == SignUpStatus::Confirmed
                };
            fits.then_some(s.person_id)
        }
    }
}

/// Days after the clock until which step `i` (0-based) may still go: the next
/// step's offset, or the last one's plus the late limit.
fn nurture_until(steps: &[u32], i: usize) -> i64 {
    steps
        .get(i + 1)
        .map_or(i64::from(steps[i]) + LATE_LIMIT_DAYS, |next| {
            i64::from(*next)
        })
}

/// One case in a digest list, with the size of its concierge's list.
#[derive(Debug, Clone, sqlx::FromRow)]
struct ListRow {
    case_id: Uuid,
    reference: String,
    phase: String,
    concierge: Option<Uuid>,
    at: Option<DateTime<Utc>>,
    date: Option<NaiveDate>,
    total: i64,
}

/// The first few cases of each concierge (and of nobody) matching `filter`, with
/// the size of each list.
fn list_sql(filter: &str, at: &str, date: &str, order: &str, join: &str) -> String {
    format!(
        "SELECT case_id, reference, phase, concierge, at, date, total FROM ( \
           SELECT c.case_id, c.reference, c.phase, c.concierge, {at} AS at, {date} AS date, \
             row_number() OVER (PARTITION BY c.concierge ORDER BY {order}, c.case_id) AS n, \
             count(*) OVER (PARTITION BY c.concierge) AS total \
           FROM rule_cases c {join} \
           WHERE c.closed_at IS NULL AND c.merged_into IS NULL AND ({filter})) x \
         WHERE n <= {DIGEST_LIST_MAX} ORDER BY n"
    )
}

/// One concierge's share of a list: their cases, and those nobody active holds.
fn section(item: DigestItem, rows: &[ListRow], me: Uuid, active: &HashSet<Uuid>) -> DigestSection {
    let as_ref = |r: &ListRow| CaseRef {
        case_id: r.case_id,
        reference: r.reference.clone(),
        phase: r.phase.clone(),
        at: r.at,
        date: r.date,
    };
    let mut mine = Vec::new();
    let mut mine_total = 0;
    let mut unassigned = Vec::new();
    let mut unassigned_total = 0;
    // Totals are per concierge partition: count each partition once.
    let mut counted: HashSet<Option<Uuid>> = HashSet::new();
    for r in rows {
        let first = counted.insert(r.concierge);
        let total = if first {
            u32::try_from(r.total).unwrap_or(u32::MAX)
        } else {
            0
        };
        if r.concierge == Some(me) {
            mine.push(as_ref(r));
            mine_total += total;
        } else if r.concierge.is_none_or(|c| !active.contains(&c)) {
            unassigned.push(as_ref(r));
            unassigned_total += total;
        }
    }
    unassigned.truncate(usize::try_from(DIGEST_LIST_MAX).unwrap_or(30));
    DigestSection {
        item,
        mine,
        mine_total,
        unassigned,
        unassigned_total,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn the_reminder_goes_to_parties_confirmed_by_its_moment_or_promoted_after() {
        let moment = t("2026-12-01T10:00:00+09:00");
        let now = t("2026-12-01T10:00:00+09:00");
        let just_before = t("2026-12-01T09:59:59+09:00");
        let just_after = t("2026-12-01T10:00:01+09:00");
        assert!(reminder_due(moment, just_before, None, now));
        assert!(reminder_due(moment, moment, None, now));
        let later = t("2026-12-01T15:00:00+09:00");
        assert!(!reminder_due(moment, just_after, None, later));
        // Promoted after the moment: at promotion, not before.
        assert!(reminder_due(moment, just_before, Some(later), later));
        assert!(!reminder_due(moment, just_before, Some(later), just_after));
        // Not before the moment, whatever happened.
        assert!(!reminder_due(moment, just_before, None, just_before));
    }

    #[test]
    fn a_nurture_step_may_go_until_the_next_one_is_due() {
        assert_eq!(nurture_until(&[30, 90], 0), 90);
        assert_eq!(nurture_until(&[30, 90], 1), 90 + LATE_LIMIT_DAYS);
    }
}
