//! `desk.cases`: one row per consultation case in `desk_cases`, for the pipeline
//! board, the case list and its filters, and the CSV export.
//!
//! Each batch is folded in memory: the rows it touches are read in one query,
//! the events applied in order, and the rows written back in one statement, so that
//! a rebuild of a large log is not a round trip per event.
//!
//! Only `summary` (the first words of the message, for 相談概要) is personal; it is
//! read from the opened submission and set to NULL for every case of a person when
//! `PersonErased` is read. A rebuild gives the same, because the erased person's
//! submissions open to null.

use std::collections::{BTreeSet, HashMap};

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use kujira_domain::calendar;
use kujira_domain::inquiry::{Channel, ConsultationEvent, ConsultationKind, Stage};
use kujira_domain::person::PersonEvent;
use kujira_eventlog::RecordedEvent;
use kujira_store::Store;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

/// How many characters of the message the list shows as 相談概要.
pub const SUMMARY_CHARS: usize = 60;
/// Business days within which a new case's first contact is due (the promise on
/// the public form's completion page).
pub const FIRST_CONTACT_DAYS: u32 = 3;

/// The event types the projection reads.
pub const EVENT_TYPES: &[&str] = &[
    "InquirySubmitted",
    "TourRequestSubmitted",
    "CaseAssigned",
    "CasePhaseChanged",
    "ContactLogged",
    "ConsultationScheduled",
    "NextActionSet",
    "MoveRecorded",
    "CaseClosed",
    "CaseReopened",
    "CaseMerged",
    "CaseMergeUndone",
    "PersonErased",
];

/// Keeps `desk_cases`.
#[derive(Debug, Clone)]
pub struct CasesProjection {
    store: Store,
    timezone: Tz,
}

impl CasesProjection {
    pub const NAME: &'static str = "desk.cases";

    /// `timezone` is the city's: the first-contact due date counts its business days.
    pub fn new(store: Store, timezone: Tz) -> Self {
        Self { store, timezone }
    }
}

pub fn stage_str(s: Stage) -> &'static str {
    match s {
        Stage::Gathering => "gathering",
        Stage::Considering => "considering",
        Stage::Decided => "decided",
        Stage::Moved => "moved",
    }
}

pub fn channel_str(c: Channel) -> &'static str {
    match c {
        Channel::Form => "form",
        Channel::Api => "api",
        Channel::Desk => "desk",
    }
}

pub fn kind_str(k: ConsultationKind) -> &'static str {
    match k {
        ConsultationKind::Inquiry => "inquiry",
        ConsultationKind::TourRequest => "tour_request",
    }
}

/// The first `SUMMARY_CHARS` characters of a message, on one line.
pub fn summary_of(message: &str) -> String {
    let one_line: String = message.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out: String = one_line.chars().take(SUMMARY_CHARS).collect();
    if one_line.chars().count() > SUMMARY_CHARS {
        out.push('…');
    }
    out
}

#[derive(Debug, Clone, Default)]
struct CaseRow {
    case_id: Uuid,
    reference: String,
    person_id: Uuid,
    kind: String,
    channel: String,
    desk_source: Option<String>,
    opened_at: Option<DateTime<Utc>>,
    phase: String,
    concierge: Option<Uuid>,
    next_action: Option<NaiveDate>,
    last_contact_at: Option<DateTime<Utc>>,
    contacts: i32,
    first_contact_due: Option<NaiveDate>,
    moved_in: Option<NaiveDate>,
    moved_adults: Option<i16>,
    moved_children: Option<i16>,
    applies_for_support: Option<bool>,
    closed_reason: Option<String>,
    closed_at: Option<DateTime<Utc>>,
    merged_into: Option<Uuid>,
    segment: Option<String>,
    prefecture: Option<String>,
    age_group: Option<String>,
    gender: Option<String>,
    topics: Vec<String>,
    source: Option<String>,
    summary: Option<String>,
    last_activity_at: Option<DateTime<Utc>>,
}

impl CaseRow {
    fn from_row(r: &PgRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            case_id: r.try_get("case_id")?,
            reference: r.try_get("reference")?,
            person_id: r.try_get("person_id")?,
            kind: r.try_get("kind")?,
            channel: r.try_get("channel")?,
            desk_source: r.try_get("desk_source")?,
            opened_at: r.try_get("opened_at")?,
            phase: r.try_get("phase")?,
            concierge: r.try_get("concierge")?,
            next_action: r.try_get("next_action")?,
            last_contact_at: r.try_get("last_contact_at")?,
            contacts: r.try_get("contacts")?,
            first_contact_due: r.try_get("first_contact_due")?,
            moved_in: r.try_get("moved_in")?,
            moved_adults: r.try_get("moved_adults")?,
            moved_children: r.try_get("moved_children")?,
            applies_for_support: r.try_get("applies_for_support")?,
            closed_reason: r.try_get("closed_reason")?,
            closed_at: r.try_get("closed_at")?,
            merged_into: r.try_get("merged_into")?,
            segment: r.try_get("segment")?,
            prefecture: r.try_get("prefecture")?,
            age_group: r.try_get("age_group")?,
            gender: r.try_get("gender")?,
            topics: r.try_get("topics")?,
            source: r.try_get("source")?,
            summary: r.try_get("summary")?,
            last_activity_at: r.try_get("last_activity_at")?,
        })
    }

    fn touch(&mut self, at: DateTime<Utc>) {
        if self.last_activity_at.is_none_or(|t| t < at) {
            self.last_activity_at = Some(at);
        }
    }
}

fn is_submission(event_type: &str) -> bool {
    matches!(event_type, "InquirySubmitted" | "TourRequestSubmitted")
}

fn case_of(event: &RecordedEvent) -> Option<Uuid> {
    event
        .stream_name
        .strip_prefix("consultation-")
        .and_then(|id| Uuid::parse_str(id).ok())
}

impl CasesProjection {
    fn opened(&self, e: &ConsultationEvent) -> Option<CaseRow> {
        let (opening, kind) = match e {
            ConsultationEvent::InquirySubmitted(s) => (&s.opening, ConsultationKind::Inquiry),
            ConsultationEvent::TourRequestSubmitted(s) => {
                (&s.opening, ConsultationKind::TourRequest)
            }
            _ => return None,
        };
        let local = opening
            .submitted_at
            .with_timezone(&self.timezone)
            .date_naive();
        let mut row = CaseRow {
            case_id: opening.case_id,
            reference: opening.reference.clone(),
            person_id: opening.person_id,
            kind: kind_str(kind).to_owned(),
            channel: channel_str(opening.channel).to_owned(),
            desk_source: opening.desk_source.map(|s| s.as_str().to_owned()),
            opened_at: Some(opening.submitted_at),
            phase: stage_str(Stage::Gathering).to_owned(),
            // A case entered on the desk began with a contact: nothing is awaited.
            first_contact_due: (opening.channel != Channel::Desk)
                .then(|| calendar::add_business_days(local, FIRST_CONTACT_DAYS)),
            last_activity_at: Some(opening.submitted_at),
            ..CaseRow::default()
        };
        match e {
            ConsultationEvent::InquirySubmitted(s) => {
                let i = &s.inquiry;
                row.segment = Some(i.segment.as_str().to_owned());
                row.prefecture = Some(i.prefecture.name().to_owned());
                row.age_group = i.age_group.map(|a| a.as_str().to_owned());
                row.gender = i.gender.map(|g| g.as_str().to_owned());
                row.topics = i.topics.iter().map(|t| t.as_str().to_owned()).collect();
                row.source = i.source.map(|s| s.as_str().to_owned());
                row.summary = i
                    .personal
                    .known()
                    .and_then(|p| p.message.as_ref())
                    .map(|m| summary_of(m.as_str()));
            }
            ConsultationEvent::TourRequestSubmitted(s) => {
                let r = &s.request;
                row.prefecture = Some(r.prefecture.name().to_owned());
                row.topics = r.interests.iter().map(|t| t.as_str().to_owned()).collect();
                row.source = r.source.map(|s| s.as_str().to_owned());
                row.summary = r
                    .personal
                    .known()
                    .and_then(|p| p.message.as_ref())
                    .map(|m| summary_of(m.as_str()));
            }
            _ => {}
        }
        Some(row)
    }

    async fn apply_all(
        &self,
        tx: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> anyhow::Result<()> {
        let mut decoded: Vec<(Option<ConsultationEvent>, Option<Uuid>)> =
            Vec::with_capacity(events.len());
        // Only the submissions are opened (for the summary); case work is read
        // without its personal parts, which the table does not keep.
        let opened = self
            .store
            .open_where(events, |e| is_submission(&e.event_type))
            .await
            .context("cannot open the submissions of a batch")?;
        let mut ids = Vec::new();
        for event in opened.iter().map(|e| &**e) {
            let err = |e: kujira_eventlog::Error| {
                anyhow::anyhow!(
                    "cannot read {} at position {}: {e}",
                    event.event_type,
                    event.position
                )
            };
            match event.event_type.as_str() {
                "PersonErased" => {
                    let e: PersonEvent = event.decode().map_err(err)?;
                    decoded.push((None, Some(e.person_id())));
                }
                t if is_submission(t) => {
                    let e: ConsultationEvent = event.decode().map_err(err)?;
                    decoded.push((Some(e), None));
                }
                _ => {
                    let e: ConsultationEvent =
                        kujira_store::decode_without_personal(event).map_err(err)?;
                    decoded.push((Some(e), None));
                }
            }
            if let Some(id) = case_of(event) {
                ids.push(id);
            }
        }
        ids.sort_unstable();
        ids.dedup();
        let mut rows: HashMap<Uuid, CaseRow> = HashMap::with_capacity(ids.len());
        if !ids.is_empty() {
            let found = sqlx::query("SELECT * FROM desk_cases WHERE case_id = ANY($1)")
                .bind(&ids)
                .fetch_all(&mut *tx)
                .await
                .context("cannot read desk_cases")?;
            for r in &found {
                let row = CaseRow::from_row(r)?;
                rows.insert(row.case_id, row);
            }
        }
        // The board's counters move by what the rows count for after the batch less
        // what they counted for before it.
        let mut counts = Counts::default();
        for row in rows.values() {
            counts.add(row, -1);
        }
        let mut touched = BTreeSet::new();
        let mut erased = Vec::new();
        for ((event, person), recorded) in decoded.into_iter().zip(events) {
            if let Some(p) = person {
                for row in rows.values_mut().filter(|r| r.person_id == p) {
                    row.summary = None;
                }
                erased.push(p);
                continue;
            }
            let Some(event) = event else { continue };
            if let Some(row) = self.opened(&event) {
                touched.insert(row.case_id);
                rows.insert(row.case_id, row);
                continue;
            }
            let case_id = case_of(recorded).with_context(|| {
                format!(
                    "{} at position {} is not on a consultation stream",
                    recorded.event_type, recorded.position
                )
            })?;
            let row = rows.get_mut(&case_id).with_context(|| {
                format!(
                    "{} at position {} is about case {case_id}, which was never opened",
                    recorded.event_type, recorded.position
                )
            })?;
            fold(row, &event);
            touched.insert(case_id);
        }
        for row in rows.values() {
            counts.add(row, 1);
        }
        write(tx, touched.iter().filter_map(|c| rows.get(c))).await?;
        counts.write(tx).await?;
        if !erased.is_empty() {
            sqlx::query("UPDATE desk_cases SET summary = NULL WHERE person_id = ANY($1)")
                .bind(&erased)
                .execute(&mut *tx)
                .await
                .context("cannot scrub the summaries of erased persons")?;
        }
        Ok(())
    }
}

/// Folds one case-work fact into its row.
fn fold(row: &mut CaseRow, event: &ConsultationEvent) {
    use ConsultationEvent as E;
    let at = match event {
        E::CaseAssigned(e) => {
            row.concierge = e.concierge;
            e.at
        }
        E::CasePhaseChanged(e) => {
            row.phase = stage_str(e.to).to_owned();
            e.at
        }
        E::ContactLogged(e) => {
            row.contacts += 1;
            if row.last_contact_at.is_none_or(|t| t < e.occurred_at) {
                row.last_contact_at = Some(e.occurred_at);
            }
            e.at
        }
        E::ConsultationScheduled(e) => e.at,
        E::NextActionSet(e) => {
            row.next_action = e.due;
            e.at
        }
        E::MoveRecorded(e) => {
            row.moved_in = Some(e.move_in);
            row.moved_adults = Some(i16::from(e.adults));
            row.moved_children = Some(i16::from(e.children));
            row.applies_for_support = Some(e.applies_for_support);
            e.at
        }
        E::CaseClosed(e) => {
            row.closed_reason = Some(e.reason.as_str().to_owned());
            row.closed_at = Some(e.at);
            e.at
        }
        E::CaseReopened(e) => {
            row.closed_reason = None;
            row.closed_at = None;
            e.at
        }
        E::CaseMerged(e) => {
            row.merged_into = Some(e.into);
            e.at
        }
        E::CaseMergeUndone(e) => {
            row.merged_into = None;
            e.at
        }
        E::InquirySubmitted(_) | E::TourRequestSubmitted(_) => return,
        E::MailRequested(_) | E::MailQueued(_) => return,
    };
    row.touch(at);
}

/// The undated day of the phase counters (`desk_case_counts.day` is part of its key).
const UNDATED: NaiveDate = NaiveDate::from_ymd_opt(1970, 1, 1).expect("a valid date");

/// Changes to `desk_case_counts`, by (counter, day).
#[derive(Default)]
struct Counts(HashMap<(&'static str, NaiveDate), i64>);

impl Counts {
    /// Adds `sign` times what `row` counts for: its phase (or 対応終了), and while
    /// it is open, its next-action date and the day its first contact is due.
    fn add(&mut self, row: &CaseRow, sign: i64) {
        if row.merged_into.is_some() {
            return;
        }
        let mut bump = |counter: &'static str, day: NaiveDate| {
            *self.0.entry((counter, day)).or_default() += sign;
        };
        if row.closed_at.is_some() {
            bump("closed", UNDATED);
            return;
        }
        let phase = match row.phase.as_str() {
            "considering" => "considering",
            "decided" => "decided",
            "moved" => "moved",
            _ => "gathering",
        };
        bump(phase, UNDATED);
        if let Some(d) = row.next_action {
            bump("next_action", d);
        }
        if row.contacts == 0
            && let Some(d) = row.first_contact_due
        {
            bump("first_contact", d);
        }
    }

    async fn write(self, tx: &mut PgConnection) -> anyhow::Result<()> {
        let (mut counter, mut day, mut n) = (Vec::new(), Vec::new(), Vec::new());
        for ((c, d), delta) in self.0 {
            if delta != 0 {
                counter.push(c);
                day.push(d);
                n.push(delta);
            }
        }
        if counter.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO desk_case_counts (counter, day, n) \
             SELECT * FROM unnest($1::text[], $2::date[], $3::int8[]) \
             ON CONFLICT (counter, day) DO UPDATE SET n = desk_case_counts.n + EXCLUDED.n",
        )
        .bind(&counter)
        .bind(&day)
        .bind(&n)
        .execute(&mut *tx)
        .await
        .context("cannot write desk_case_counts")?;
        // A counter that fell to zero goes, so that a rebuild, whose batches differ
        // from the live ones, leaves the very same rows.
        sqlx::query(
            "DELETE FROM desk_case_counts WHERE n = 0 \
             AND (counter, day) IN (SELECT * FROM unnest($1::text[], $2::date[]))",
        )
        .bind(&counter)
        .bind(&day)
        .execute(&mut *tx)
        .await
        .context("cannot write desk_case_counts")?;
        Ok(())
    }
}

async fn write<'a>(
    tx: &mut PgConnection,
    rows: impl Iterator<Item = &'a CaseRow>,
) -> anyhow::Result<()> {
    let mut c = Columns::default();
    for r in rows {
        c.case_id.push(r.case_id);
        c.reference.push(r.reference.clone());
        c.person_id.push(r.person_id);
        c.kind.push(r.kind.clone());
        c.channel.push(r.channel.clone());
        c.desk_source.push(r.desk_source.clone());
        c.opened_at
            .push(r.opened_at.unwrap_or(DateTime::UNIX_EPOCH));
        c.phase.push(r.phase.clone());
        c.concierge.push(r.concierge);
        c.next_action.push(r.next_action);
        c.last_contact_at.push(r.last_contact_at);
        c.contacts.push(r.contacts);
        c.first_contact_due.push(r.first_contact_due);
        c.moved_in.push(r.moved_in);
        c.moved_adults.push(r.moved_adults);
        c.moved_children.push(r.moved_children);
        c.applies_for_support.push(r.applies_for_support);
        c.closed_reason.push(r.closed_reason.clone());
        c.closed_at.push(r.closed_at);
        c.merged_into.push(r.merged_into);
        c.segment.push(r.segment.clone());
        c.prefecture.push(r.prefecture.clone());
        c.age_group.push(r.age_group.clone());
        c.gender.push(r.gender.clone());
        c.topics.push(r.topics.join(","));
        c.source.push(r.source.clone());
        c.summary.push(r.summary.clone());
        c.last_activity_at.push(
            r.last_activity_at
                .or(r.opened_at)
                .unwrap_or(DateTime::UNIX_EPOCH),
        );
    }
    if c.case_id.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO desk_cases (case_id, reference, person_id, kind, channel, desk_source, \
           opened_at, phase, concierge, next_action, last_contact_at, contacts, first_contact_due, \
           moved_in, moved_adults, moved_children, applies_for_support, closed_reason, closed_at, \
           merged_into, segment, prefecture, age_group, gender, topics, source, summary, \
           last_activity_at) \
         SELECT u.case_id, u.reference, u.person_id, u.kind, u.channel, u.desk_source, \
           u.opened_at, u.phase, u.concierge, u.next_action, u.last_contact_at, u.contacts, \
           u.first_contact_due, u.moved_in, u.moved_adults, u.moved_children, \
           u.applies_for_support, u.closed_reason, u.closed_at, u.merged_into, u.segment, \
           u.prefecture, u.age_group, u.gender, \
           CASE WHEN u.topics = '' THEN '{}'::text[] ELSE string_to_array(u.topics, ',') END, \
           u.source, u.summary, u.last_activity_at \
         FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::text[], $6::text[], \
           $7::timestamptz[], $8::text[], $9::uuid[], $10::date[], $11::timestamptz[], \
           $12::int4[], $13::date[], $14::date[], $15::int2[], $16::int2[], $17::bool[], \
           $18::text[], $19::timestamptz[], $20::uuid[], $21::text[], $22::text[], $23::text[], \
           $24::text[], $25::text[], $26::text[], $27::text[], $28::timestamptz[]) \
           AS u(case_id, reference, person_id, kind, channel, desk_source, opened_at, phase, \
                concierge, next_action, last_contact_at, contacts, first_contact_due, moved_in, \
                moved_adults, moved_children, applies_for_support, closed_reason, closed_at, \
                merged_into, segment, prefecture, age_group, gender, topics, source, summary, \
                last_activity_at) \
         ON CONFLICT (case_id) DO UPDATE SET phase = EXCLUDED.phase, \
           concierge = EXCLUDED.concierge, next_action = EXCLUDED.next_action, \
           last_contact_at = EXCLUDED.last_contact_at, contacts = EXCLUDED.contacts, \
           moved_in = EXCLUDED.moved_in, moved_adults = EXCLUDED.moved_adults, \
           moved_children = EXCLUDED.moved_children, \
           applies_for_support = EXCLUDED.applies_for_support, \
           closed_reason = EXCLUDED.closed_reason, closed_at = EXCLUDED.closed_at, \
           merged_into = EXCLUDED.merged_into, summary = EXCLUDED.summary, \
           last_activity_at = EXCLUDED.last_activity_at",
    )
    .bind(&c.case_id)
    .bind(&c.reference)
    .bind(&c.person_id)
    .bind(&c.kind)
    .bind(&c.channel)
    .bind(&c.desk_source)
    .bind(&c.opened_at)
    .bind(&c.phase)
    .bind(&c.concierge)
    .bind(&c.next_action)
    .bind(&c.last_contact_at)
    .bind(&c.contacts)
    .bind(&c.first_contact_due)
    .bind(&c.moved_in)
    .bind(&c.moved_adults)
    .bind(&c.moved_children)
    .bind(&c.applies_for_support)
    .bind(&c.closed_reason)
    .bind(&c.closed_at)
    .bind(&c.merged_into)
    .bind(&c.segment)
    .bind(&c.prefecture)
    .bind(&c.age_group)
    .bind(&c.gender)
    .bind(&c.topics)
    .bind(&c.source)
    .bind(&c.summary)
    .bind(&c.last_activity_at)
    .execute(&mut *tx)
    .await
    .context("cannot write desk_cases")?;
    Ok(())
}

#[derive(Default)]
struct Columns {
    case_id: Vec<Uuid>,
    reference: Vec<String>,
    person_id: Vec<Uuid>,
    kind: Vec<String>,
    channel: Vec<String>,
    desk_source: Vec<Option<String>>,
    opened_at: Vec<DateTime<Utc>>,
    phase: Vec<String>,
    concierge: Vec<Option<Uuid>>,
    next_action: Vec<Option<NaiveDate>>,
    last_contact_at: Vec<Option<DateTime<Utc>>>,
    contacts: Vec<i32>,
    first_contact_due: Vec<Option<NaiveDate>>,
    moved_in: Vec<Option<NaiveDate>>,
    moved_adults: Vec<Option<i16>>,
    moved_children: Vec<Option<i16>>,
    applies_for_support: Vec<Option<bool>>,
    closed_reason: Vec<Option<String>>,
    closed_at: Vec<Option<DateTime<Utc>>>,
    merged_into: Vec<Option<Uuid>>,
    segment: Vec<Option<String>>,
    prefecture: Vec<Option<String>>,
    age_group: Vec<Option<String>>,
    gender: Vec<Option<String>>,
    topics: Vec<String>,
    source: Vec<Option<String>>,
    summary: Vec<Option<String>>,
    last_activity_at: Vec<DateTime<Utc>>,
}

#[async_trait::async_trait]
impl kujira_projector::Projection for CasesProjection {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn event_types(&self) -> Option<&'static [&'static str]> {
        Some(EVENT_TYPES)
    }

    async fn apply(&self, tx: &mut PgConnection, event: &RecordedEvent) -> anyhow::Result<()> {
        self.apply_all(tx, std::slice::from_ref(event)).await
    }

    async fn apply_batch(
        &self,
        tx: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> anyhow::Result<()> {
        self.apply_all(tx, events).await
    }

    fn rebuild(&self) -> kujira_projector::Rebuild {
        kujira_projector::Rebuild::Tables {
            tables: &["desk_cases", "desk_case_counts"],
            ddl: concat!(
                include_str!("../../migrations/20261201004200_desk_cases.sql"),
                include_str!("../../migrations/20261203004210_desk_case_counts.sql")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_is_one_short_line() {
        assert_eq!(summary_of("住まいの\n相談です"), "住まいの 相談です");
        let long = "あ".repeat(SUMMARY_CHARS + 5);
        let s = summary_of(&long);
        assert_eq!(s.chars().count(), SUMMARY_CHARS + 1);
        assert!(s.ends_with('…'));
    }
}
