//! `desk.kpi`: the KPI projection. It reads no personal data: every event is
//! decoded with [`kujira_store::decode_without_personal`], so a sealed part reads as
//! erased and no figure can depend on whether someone was erased.
//!
//! It is written for rebuilds over millions of events: a batch loads the rows of the
//! cases, tours and parties it touches in one query each, folds the events in
//! memory, and writes every changed row and every counter back with one statement
//! per table.

use std::collections::{HashMap, HashSet};

use anyhow::{Context, bail};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use chrono_tz::Tz;
use kujira_domain::funnel::FunnelEvent;
use kujira_domain::inquiry::{CaseOpening, Channel, ConsultationEvent, Stage};
use kujira_domain::tour::TourEvent;
use kujira_eventlog::RecordedEvent;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

/// Keeps `kpi_monthly`, `kpi_cases`, `kpi_funnel_confirmed`, `kpi_tours` and
/// `kpi_tour_parties`.
#[derive(Debug, Clone)]
pub struct KpiProjection {
    tz: Tz,
}

const TYPES: &[&str] = &[
    "InquirySubmitted",
    "TourRequestSubmitted",
    "CasePhaseChanged",
    "ContactLogged",
    "MoveRecorded",
    "CaseClosed",
    "CaseReopened",
    "CaseMerged",
    "CaseMergeUndone",
    "FormViewed",
    "ConfirmViewed",
    "Submitted",
    "TourScheduled",
    "TourDetailsChanged",
    "TourCancelled",
    "TourSignUpReceived",
    "TourSignUpConfirmed",
    "TourSignUpWaitlisted",
    "TourSignUpPromoted",
    "TourSignUpCancelled",
    "TourFeedbackRecorded",
    "TourAttendanceRecorded",
];

impl KpiProjection {
    pub const NAME: &'static str = "desk.kpi";

    /// Months are counted in `tz` (the city's `KUJIRA_TIMEZONE`).
    pub fn new(tz: Tz) -> Self {
        Self { tz }
    }
}

/// The first day of the month of `at`, in `tz`.
pub fn month_of(at: DateTime<Utc>, tz: Tz) -> NaiveDate {
    let d = at.with_timezone(&tz).date_naive();
    NaiveDate::from_ymd_opt(d.year(), d.month(), 1).unwrap_or(d)
}

fn first_of(d: NaiveDate) -> NaiveDate {
    NaiveDate::from_ymd_opt(d.year(), d.month(), 1).unwrap_or(d)
}

pub fn phase_key(s: Stage) -> &'static str {
    match s {
        Stage::Gathering => "gathering",
        Stage::Considering => "considering",
        Stage::Decided => "decided",
        Stage::Moved => "moved",
    }
}

#[derive(Debug, Clone)]
struct CaseRow {
    person_id: Uuid,
    opened_at: DateTime<Utc>,
    channel: &'static str,
    phase: String,
    closed: bool,
    merged: bool,
    reached_decided: bool,
    request_people: Option<i16>,
    move_in: Option<NaiveDate>,
    move_people: Option<i16>,
}

impl CaseRow {
    /// Where the case counts in the phase stocks: its phase, `closed`, or nowhere
    /// once merged into another case.
    fn stock(&self) -> Option<String> {
        if self.merged {
            None
        } else if self.closed {
            Some("closed".into())
        } else {
            Some(self.phase.clone())
        }
    }
}

#[derive(Debug, Clone)]
struct TourRow {
    starts_at: DateTime<Utc>,
    cancelled: bool,
}

#[derive(Debug, Clone)]
struct PartyRow {
    tour_id: Uuid,
    person_id: Uuid,
    adults: i16,
    children: i16,
    status: &'static str,
    attended: Option<bool>,
    satisfaction: Option<i16>,
}

#[derive(Default)]
struct Batch {
    cases: HashMap<Uuid, CaseRow>,
    tours: HashMap<Uuid, TourRow>,
    parties: HashMap<Uuid, PartyRow>,
    dirty_cases: HashSet<Uuid>,
    /// Cases opened in this batch: their `tour_people` is still to be set.
    opened_cases: HashSet<Uuid>,
    dirty_tours: HashSet<Uuid>,
    dirty_parties: HashSet<Uuid>,
    counters: HashMap<(String, NaiveDate), i64>,
}

impl Batch {
    fn count(&mut self, metric: impl Into<String>, month: NaiveDate, n: i64) {
        *self.counters.entry((metric.into(), month)).or_default() += n;
    }

    fn case(&mut self, id: Uuid) -> anyhow::Result<&mut CaseRow> {
        self.dirty_cases.insert(id);
        self.cases
            .get_mut(&id)
            .with_context(|| format!("case {id} was never opened"))
    }

    fn party(&mut self, id: Uuid) -> anyhow::Result<&mut PartyRow> {
        self.dirty_parties.insert(id);
        self.parties
            .get_mut(&id)
            .with_context(|| format!("sign-up {id} was never received"))
    }

    fn tour(&mut self, id: Uuid) -> anyhow::Result<&mut TourRow> {
        self.dirty_tours.insert(id);
        self.tours
            .get_mut(&id)
            .with_context(|| format!("tour {id} was never scheduled"))
    }
}

fn id_of(event: &RecordedEvent, prefix: &str) -> anyhow::Result<Uuid> {
    event
        .stream_name
        .strip_prefix(prefix)
        .and_then(|s| Uuid::parse_str(s).ok())
        .with_context(|| {
            format!(
                "{} on unexpected stream {}",
                event.event_type, event.stream_name
            )
        })
}

enum Decoded {
    Case(Uuid, ConsultationEvent),
    Funnel(Uuid, FunnelEvent),
    Tour(Uuid, TourEvent),
}

fn decode(event: &RecordedEvent) -> anyhow::Result<Decoded> {
    let cat = event.stream_name.split('-').next().unwrap_or("");
    Ok(match cat {
        "consultation" => Decoded::Case(
            id_of(event, "consultation-")?,
            kujira_store::decode_without_personal(event)?,
        ),
        "funnel" => Decoded::Funnel(
            id_of(event, "funnel-")?,
            kujira_store::decode_without_personal(event)?,
        ),
        "tour" => Decoded::Tour(
            id_of(event, "tour-")?,
            kujira_store::decode_without_personal(event)?,
        ),
        _ => bail!(
            "{} on unexpected stream {}",
            event.event_type,
            event.stream_name
        ),
    })
}

fn channel_class(o: &CaseOpening) -> &'static str {
    match o.channel {
        Channel::Form | Channel::Api => "web",
        Channel::Desk => match o.desk_source {
            Some(c) if c.is_event() => "event",
            _ => "window",
        },
    }
}

impl KpiProjection {
    async fn load(
        &self,
        conn: &mut PgConnection,
        decoded: &[Decoded],
        b: &mut Batch,
    ) -> anyhow::Result<()> {
        let mut cases = Vec::new();
        let mut tours = Vec::new();
        let mut parties = Vec::new();
        for d in decoded {
            match d {
                Decoded::Case(id, e) => match e {
                    ConsultationEvent::InquirySubmitted(_)
                    | ConsultationEvent::TourRequestSubmitted(_)
                    | ConsultationEvent::ContactLogged(_) => {}
                    _ => cases.push(*id),
                },
                Decoded::Tour(id, e) => match e {
                    TourEvent::TourScheduled(_) => {}
                    TourEvent::TourDetailsChanged(_) | TourEvent::TourCancelled(_) => {
                        tours.push(*id)
                    }
                    TourEvent::TourSignUpConfirmed(x) => parties.push(x.sign_up_id),
                    TourEvent::TourSignUpWaitlisted(x) => parties.push(x.sign_up_id),
                    TourEvent::TourSignUpPromoted(x) => parties.push(x.sign_up_id),
                    TourEvent::TourSignUpCancelled(x) => parties.push(x.sign_up_id),
                    TourEvent::TourFeedbackRecorded(x) => parties.push(x.sign_up_id),
                    TourEvent::TourAttendanceRecorded(x) => parties.push(x.sign_up_id),
                    _ => {}
                },
                Decoded::Funnel(..) => {}
            }
        }
        if !cases.is_empty() {
            let rows = sqlx::query(
                "SELECT case_id, person_id, opened_at, channel, phase, closed, merged, \
                   reached_decided, request_people, move_in, move_people \
                 FROM kpi_cases WHERE case_id = ANY($1)",
            )
            .bind(&cases)
            .fetch_all(&mut *conn)
            .await?;
            for r in rows {
                let channel: String = r.try_get("channel")?;
                b.cases.insert(
                    r.try_get("case_id")?,
                    CaseRow {
                        person_id: r.try_get("person_id")?,
                        opened_at: r.try_get("opened_at")?,
                        channel: match channel.as_str() {
                            "web" => "web",
                            "event" => "event",
                            _ => "window",
                        },
                        phase: r.try_get("phase")?,
                        closed: r.try_get("closed")?,
                        merged: r.try_get("merged")?,
                        reached_decided: r.try_get("reached_decided")?,
                        request_people: r.try_get("request_people")?,
                        move_in: r.try_get("move_in")?,
                        move_people: r.try_get("move_people")?,
                    },
                );
            }
        }
        if !tours.is_empty() {
            let rows = sqlx::query(
                "SELECT tour_id, starts_at, cancelled FROM kpi_tours WHERE tour_id = ANY($1)",
            )
            .bind(&tours)
            .fetch_all(&mut *conn)
            .await?;
            for r in rows {
                b.tours.insert(
                    r.try_get("tour_id")?,
                    TourRow {
                        starts_at: r.try_get("starts_at")?,
                        cancelled: r.try_get("cancelled")?,
                    },
                );
            }
        }
        if !parties.is_empty() {
            let rows = sqlx::query(
                "SELECT sign_up_id, tour_id, person_id, adults, children, status, attended, \
                   satisfaction FROM kpi_tour_parties WHERE sign_up_id = ANY($1)",
            )
            .bind(&parties)
            .fetch_all(&mut *conn)
            .await?;
            for r in rows {
                let status: String = r.try_get("status")?;
                b.parties.insert(
                    r.try_get("sign_up_id")?,
                    PartyRow {
                        tour_id: r.try_get("tour_id")?,
                        person_id: r.try_get("person_id")?,
                        adults: r.try_get("adults")?,
                        children: r.try_get("children")?,
                        status: party_status(&status),
                        attended: r.try_get("attended")?,
                        satisfaction: r.try_get("satisfaction")?,
                    },
                );
            }
        }
        Ok(())
    }

    fn fold_case(&self, b: &mut Batch, id: Uuid, e: &ConsultationEvent) -> anyhow::Result<()> {
        let tz = self.tz;
        match e {
            ConsultationEvent::InquirySubmitted(s) => self.open(b, &s.opening, None),
            ConsultationEvent::TourRequestSubmitted(s) => self.open(
                b,
                &s.opening,
                Some(i16::from(s.request.adults) + i16::from(s.request.children)),
            ),
            ConsultationEvent::ContactLogged(c) => {
                let class = if c.channel.is_event() {
                    "event"
                } else {
                    "window"
                };
                b.count(format!("contacts_{class}"), month_of(c.occurred_at, tz), 1);
            }
            ConsultationEvent::CasePhaseChanged(c) => {
                let m = month_of(c.at, tz);
                let (from, to) = (phase_key(c.from), phase_key(c.to));
                let case = b.case(id)?;
                let before = case.stock();
                case.phase = to.to_owned();
                case.reached_decided |= matches!(c.to, Stage::Decided | Stage::Moved);
                let after = case.stock();
                restock(b, before, after, m);
                b.count(format!("phase_entered_{to}"), m, 1);
                b.count(format!("move:{from}:{to}"), m, 1);
            }
            ConsultationEvent::MoveRecorded(mv) => {
                let case = b.case(id)?;
                let old = case.move_in.zip(case.move_people);
                case.move_in = Some(mv.move_in);
                let people = i16::from(mv.adults) + i16::from(mv.children);
                case.move_people = Some(people);
                case.reached_decided = true;
                // A move recorded again (a correction) replaces the first.
                if let Some((d, p)) = old {
                    b.count("moved_households", first_of(d), -1);
                    b.count("moved_people", first_of(d), -i64::from(p));
                }
                b.count("moved_households", first_of(mv.move_in), 1);
                b.count("moved_people", first_of(mv.move_in), i64::from(people));
            }
            ConsultationEvent::CaseClosed(c) => {
                let m = month_of(c.at, tz);
                let case = b.case(id)?;
                let before = case.stock();
                case.closed = true;
                let after = case.stock();
                restock(b, before, after, m);
                b.count("cases_closed", m, 1);
            }
            ConsultationEvent::CaseReopened(c) => {
                let case = b.case(id)?;
                let before = case.stock();
                case.closed = false;
                let after = case.stock();
                restock(b, before, after, month_of(c.at, tz));
            }
            ConsultationEvent::CaseMerged(c) => {
                let case = b.case(id)?;
                let before = case.stock();
                case.merged = true;
                let after = case.stock();
                restock(b, before, after, month_of(c.at, tz));
            }
            ConsultationEvent::CaseMergeUndone(c) => {
                let case = b.case(id)?;
                let before = case.stock();
                case.merged = false;
                let after = case.stock();
                restock(b, before, after, month_of(c.at, tz));
            }
            ConsultationEvent::MailRequested(_)
            | ConsultationEvent::MailQueued(_)
            | ConsultationEvent::CaseAssigned(_)
            | ConsultationEvent::ConsultationScheduled(_)
            | ConsultationEvent::NextActionSet(_) => {}
        }
        Ok(())
    }

    fn open(&self, b: &mut Batch, o: &CaseOpening, request_people: Option<i16>) {
        let class = channel_class(o);
        let m = month_of(o.submitted_at, self.tz);
        b.count(format!("inquiries_{class}"), m, 1);
        b.count("stock:gathering", m, 1);
        b.dirty_cases.insert(o.case_id);
        b.opened_cases.insert(o.case_id);
        b.cases.insert(
            o.case_id,
            CaseRow {
                person_id: o.person_id,
                opened_at: o.submitted_at,
                channel: class,
                phase: "gathering".into(),
                closed: false,
                merged: false,
                reached_decided: false,
                request_people,
                move_in: None,
                move_people: None,
            },
        );
    }

    fn fold_tour(&self, b: &mut Batch, tour_id: Uuid, e: &TourEvent) -> anyhow::Result<()> {
        match e {
            TourEvent::TourScheduled(s) => {
                b.dirty_tours.insert(tour_id);
                b.tours.insert(
                    tour_id,
                    TourRow {
                        starts_at: s.details.starts_at,
                        cancelled: false,
                    },
                );
            }
            TourEvent::TourDetailsChanged(c) => b.tour(tour_id)?.starts_at = c.details.starts_at,
            TourEvent::TourCancelled(_) => b.tour(tour_id)?.cancelled = true,
            TourEvent::TourSignUpReceived(r) => {
                let m = month_of(r.at, self.tz);
                b.count("tour_signups", m, 1);
                b.count(
                    "tour_signup_people",
                    m,
                    i64::from(r.adults) + i64::from(r.children),
                );
                b.dirty_parties.insert(r.sign_up_id);
                b.parties.insert(
                    r.sign_up_id,
                    PartyRow {
                        tour_id,
                        person_id: r.person_id,
                        adults: i16::from(r.adults),
                        children: i16::from(r.children),
                        status: "received",
                        attended: None,
                        satisfaction: None,
                    },
                );
            }
            TourEvent::TourSignUpConfirmed(x) => b.party(x.sign_up_id)?.status = "confirmed",
            TourEvent::TourSignUpPromoted(x) => b.party(x.sign_up_id)?.status = "confirmed",
            TourEvent::TourSignUpWaitlisted(x) => b.party(x.sign_up_id)?.status = "waitlisted",
            TourEvent::TourSignUpCancelled(x) => b.party(x.sign_up_id)?.status = "cancelled",
            TourEvent::TourFeedbackRecorded(x) => {
                b.party(x.sign_up_id)?.satisfaction = Some(i16::from(x.satisfaction));
            }
            TourEvent::TourAttendanceRecorded(x) => {
                b.party(x.sign_up_id)?.attended = Some(x.attended);
            }
            TourEvent::TourPublished(_)
            | TourEvent::MailRequested(_)
            | TourEvent::MailQueued(_) => {}
        }
        Ok(())
    }

    async fn write(&self, conn: &mut PgConnection, b: Batch) -> anyhow::Result<()> {
        if !b.dirty_cases.is_empty() {
            let mut ids = Vec::new();
            let mut persons = Vec::new();
            let mut opened = Vec::new();
            let mut channels = Vec::new();
            let mut phases = Vec::new();
            let mut closed = Vec::new();
            let mut merged = Vec::new();
            let mut reached = Vec::new();
            let mut request = Vec::new();
            let mut move_in = Vec::new();
            let mut move_people = Vec::new();
            for id in &b.dirty_cases {
                let c = &b.cases[id];
                ids.push(*id);
                persons.push(c.person_id);
                opened.push(c.opened_at);
                channels.push(c.channel);
                phases.push(c.phase.as_str());
                closed.push(c.closed);
                merged.push(c.merged);
                reached.push(c.reached_decided);
                request.push(c.request_people);
                move_in.push(c.move_in);
                move_people.push(c.move_people);
            }
            sqlx::query(
                "INSERT INTO kpi_cases (case_id, person_id, opened_at, channel, phase, closed, \
                   merged, reached_decided, request_people, move_in, move_people) \
                 SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[], $4::text[], \
                   $5::text[], $6::bool[], $7::bool[], $8::bool[], $9::int2[], $10::date[], $11::int2[]) \
                 ON CONFLICT (case_id) DO UPDATE SET phase = EXCLUDED.phase, \
                   closed = EXCLUDED.closed, merged = EXCLUDED.merged, \
                   reached_decided = EXCLUDED.reached_decided, move_in = EXCLUDED.move_in, \
                   move_people = EXCLUDED.move_people",
            )
            .bind(&ids)
            .bind(&persons)
            .bind(&opened)
            .bind(&channels)
            .bind(&phases)
            .bind(&closed)
            .bind(&merged)
            .bind(&reached)
            .bind(&request)
            .bind(&move_in)
            .bind(&move_people)
            .execute(&mut *conn)
            .await
            .context("cannot write kpi_cases")?;
        }
        if !b.dirty_tours.is_empty() {
            let ids: Vec<Uuid> = b.dirty_tours.iter().copied().collect();
            let starts: Vec<DateTime<Utc>> = ids.iter().map(|i| b.tours[i].starts_at).collect();
            let cancelled: Vec<bool> = ids.iter().map(|i| b.tours[i].cancelled).collect();
            sqlx::query(
                "INSERT INTO kpi_tours (tour_id, starts_at, cancelled) \
                 SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::bool[]) \
                 ON CONFLICT (tour_id) DO UPDATE SET starts_at = EXCLUDED.starts_at, \
                   cancelled = EXCLUDED.cancelled",
            )
            .bind(&ids)
            .bind(&starts)
            .bind(&cancelled)
            .execute(&mut *conn)
            .await
            .context("cannot write kpi_tours")?;
        }
        if !b.dirty_parties.is_empty() {
            let ids: Vec<Uuid> = b.dirty_parties.iter().copied().collect();
            let p = |i: &Uuid| &b.parties[i];
            let tours: Vec<Uuid> = ids.iter().map(|i| p(i).tour_id).collect();
            let persons: Vec<Uuid> = ids.iter().map(|i| p(i).person_id).collect();
            let adults: Vec<i16> = ids.iter().map(|i| p(i).adults).collect();
            let children: Vec<i16> = ids.iter().map(|i| p(i).children).collect();
            let status: Vec<&str> = ids.iter().map(|i| p(i).status).collect();
            let attended: Vec<Option<bool>> = ids.iter().map(|i| p(i).attended).collect();
            let satisfaction: Vec<Option<i16>> = ids.iter().map(|i| p(i).satisfaction).collect();
            sqlx::query(
                "INSERT INTO kpi_tour_parties (sign_up_id, tour_id, person_id, adults, children, \
                   status, attended, satisfaction) \
                 SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::int2[], $5::int2[], \
                   $6::text[], $7::bool[], $8::int2[]) \
                 ON CONFLICT (sign_up_id) DO UPDATE SET status = EXCLUDED.status, \
                   attended = EXCLUDED.attended, satisfaction = EXCLUDED.satisfaction",
            )
            .bind(&ids)
            .bind(&tours)
            .bind(&persons)
            .bind(&adults)
            .bind(&children)
            .bind(&status)
            .bind(&attended)
            .bind(&satisfaction)
            .execute(&mut *conn)
            .await
            .context("cannot write kpi_tour_parties")?;
        }
        // The party size of the tour each touched person took, on their cases: for
        // the persons of the cases opened and parties written, and of every party of
        // a tour written (a cancelled tour takes it away from all of them).
        if !b.opened_cases.is_empty() || !b.dirty_parties.is_empty() || !b.dirty_tours.is_empty() {
            let mut persons: Vec<Uuid> = b
                .opened_cases
                .iter()
                .map(|id| b.cases[id].person_id)
                .chain(b.dirty_parties.iter().map(|id| b.parties[id].person_id))
                .collect();
            persons.sort_unstable();
            persons.dedup();
            let tours: Vec<Uuid> = b.dirty_tours.iter().copied().collect();
            sqlx::query(
                "UPDATE kpi_cases c SET tour_people = took.people \
                 FROM (SELECT a.person_id, \
                         (SELECT max(p.adults + p.children) FROM kpi_tour_parties p \
                          JOIN kpi_tours t ON t.tour_id = p.tour_id \
                          WHERE p.person_id = a.person_id AND p.status = 'confirmed' \
                            AND p.attended IS DISTINCT FROM false AND NOT t.cancelled) AS people \
                       FROM (SELECT unnest($1::uuid[]) \
                             UNION SELECT person_id FROM kpi_tour_parties \
                                   WHERE tour_id = ANY($2)) a(person_id)) took \
                 WHERE c.person_id = took.person_id \
                   AND c.tour_people IS DISTINCT FROM took.people",
            )
            .bind(&persons)
            .bind(&tours)
            .execute(&mut *conn)
            .await
            .context("cannot write kpi_cases.tour_people")?;
        }
        // Zeros are written too: the rows a rebuild makes must not depend on how
        // the events were batched.
        let counters: Vec<_> = b.counters.into_iter().collect();
        if !counters.is_empty() {
            let metrics: Vec<&str> = counters.iter().map(|((m, _), _)| m.as_str()).collect();
            let months: Vec<NaiveDate> = counters.iter().map(|((_, d), _)| *d).collect();
            let ns: Vec<i64> = counters.iter().map(|(_, n)| *n).collect();
            sqlx::query(
                "INSERT INTO kpi_monthly (metric, month, n) \
                 SELECT * FROM unnest($1::text[], $2::date[], $3::int8[]) \
                 ON CONFLICT (metric, month) DO UPDATE SET n = kpi_monthly.n + EXCLUDED.n",
            )
            .bind(&metrics)
            .bind(&months)
            .bind(&ns)
            .execute(&mut *conn)
            .await
            .context("cannot write kpi_monthly")?;
        }
        Ok(())
    }
}

fn party_status(s: &str) -> &'static str {
    match s {
        "confirmed" => "confirmed",
        "waitlisted" => "waitlisted",
        "cancelled" => "cancelled",
        _ => "received",
    }
}

/// Moves a case from one phase stock to another (either may be none).
fn restock(b: &mut Batch, before: Option<String>, after: Option<String>, m: NaiveDate) {
    if before == after {
        return;
    }
    if let Some(p) = before {
        b.count(format!("stock:{p}"), m, -1);
    }
    if let Some(p) = after {
        b.count(format!("stock:{p}"), m, 1);
    }
}

#[async_trait::async_trait]
impl kujira_projector::Projection for KpiProjection {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn event_types(&self) -> Option<&'static [&'static str]> {
        Some(TYPES)
    }

    async fn apply(&self, tx: &mut PgConnection, event: &RecordedEvent) -> anyhow::Result<()> {
        self.apply_batch(tx, std::slice::from_ref(event)).await
    }

    async fn apply_batch(
        &self,
        tx: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> anyhow::Result<()> {
        let decoded = events
            .iter()
            .map(|e| decode(e).map_err(|err| err.context(kujira_projector::EventRef::of(e))))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut b = Batch::default();
        self.load(tx, &decoded, &mut b).await?;
        // Confirm views count once per journey, the first time.
        let mut first_confirms: Vec<Uuid> = Vec::new();
        for d in &decoded {
            if let Decoded::Funnel(j, FunnelEvent::ConfirmViewed { .. }) = d
                && !first_confirms.contains(j)
            {
                first_confirms.push(*j);
            }
        }
        let fresh: HashSet<Uuid> = if first_confirms.is_empty() {
            HashSet::new()
        } else {
            sqlx::query_scalar(
                "INSERT INTO kpi_funnel_confirmed (journey) SELECT unnest($1::uuid[]) \
                 ON CONFLICT DO NOTHING RETURNING journey",
            )
            .bind(&first_confirms)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect()
        };
        let mut counted: HashSet<Uuid> = HashSet::new();
        for (d, event) in decoded.iter().zip(events) {
            let folded = match d {
                Decoded::Case(id, e) => self.fold_case(&mut b, *id, e),
                Decoded::Tour(id, e) => self.fold_tour(&mut b, *id, e),
                Decoded::Funnel(j, e) => {
                    let form = e.form().as_str();
                    match e {
                        FunnelEvent::FormViewed { at, .. } => {
                            b.count(format!("funnel_views:{form}"), month_of(*at, self.tz), 1);
                        }
                        FunnelEvent::ConfirmViewed { at, .. } => {
                            if fresh.contains(j) && counted.insert(*j) {
                                b.count(
                                    format!("funnel_confirms:{form}"),
                                    month_of(*at, self.tz),
                                    1,
                                );
                            }
                        }
                        FunnelEvent::Submitted { at, .. } => {
                            b.count(
                                format!("funnel_completions:{form}"),
                                month_of(*at, self.tz),
                                1,
                            );
                        }
                        FunnelEvent::SpamFlagged { .. } => {}
                    }
                    Ok(())
                }
            };
            folded.map_err(|err| err.context(kujira_projector::EventRef::of(event)))?;
        }
        self.write(tx, b).await
    }

    fn rebuild(&self) -> kujira_projector::Rebuild {
        kujira_projector::Rebuild::Tables {
            tables: &[
                "kpi_monthly",
                "kpi_cases",
                "kpi_funnel_confirmed",
                "kpi_tours",
                "kpi_tour_parties",
            ],
            ddl: concat!(
                include_str!("../../migrations/20261201004600_kpi.sql"),
                include_str!("../../migrations/20261203004610_kpi_cohort_index.sql")
            ),
        }
    }
}
