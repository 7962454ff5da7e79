//! [`RulesProjection`]: the rules' own read model (`rule_cases`, `rule_tours`,
//! `rule_tour_parties`, `rule_persons`), so that picking the candidates of every rule
//! over a hundred thousand cases is a few index scans.
//!
//! It decodes every event without its personal part
//! (`kujira_store::decode_without_personal`): it never needs, or holds, anyone's data.

use anyhow::Context;
use kujira_domain::inquiry::{ConsultationEvent, Stage};
use kujira_domain::person::PersonEvent;
use kujira_domain::tour::TourEvent;
use kujira_eventlog::RecordedEvent;
use sqlx::PgConnection;
use uuid::Uuid;

/// Keeps the rules' tables from the case, tour and person streams.
#[derive(Debug, Clone, Copy, Default)]
pub struct RulesProjection;

/// The event types the rules need.
const TYPES: &[&str] = &[
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
    "TourScheduled",
    "TourPublished",
    "TourDetailsChanged",
    "TourCancelled",
    "TourSignUpReceived",
    "TourSignUpConfirmed",
    "TourSignUpWaitlisted",
    "TourSignUpPromoted",
    "TourSignUpCancelled",
    "TourAttendanceRecorded",
    "PersonErased",
    "AddressBounced",
    "BounceCleared",
];

impl RulesProjection {
    /// The name its checkpoint is stored under.
    pub const NAME: &'static str = "scheduler.rules";

    pub fn new() -> Self {
        Self
    }

    /// What the projector's `apply` does.
    pub async fn record(conn: &mut PgConnection, event: &RecordedEvent) -> anyhow::Result<()> {
        let category = event.stream_name.split_once('-').map_or("", |(c, _)| c);
        match category {
            kujira_domain::inquiry::CATEGORY => case(conn, event).await,
            kujira_domain::tour::CATEGORY => tour(conn, event).await,
            kujira_domain::person::CATEGORY => person(conn, event).await,
            _ => Ok(()),
        }
        .with_context(|| {
            format!(
                "cannot apply {} at position {} to the rules' tables",
                event.event_type, event.position
            )
        })
    }
}

fn stage(s: Stage) -> &'static str {
    match s {
        Stage::Gathering => "gathering",
        Stage::Considering => "considering",
        Stage::Decided => "decided",
        Stage::Moved => "moved",
    }
}

/// An update of a case that is also an action on it: `last_activity_at` moves
/// forward only, as `CaseWork::last_activity_at` does. `$1` is the case, `$2` the
/// time of the fact.
macro_rules! acted {
    ($set:literal) => {
        concat!(
            "UPDATE rule_cases SET ",
            $set,
            " last_activity_at = greatest(last_activity_at, $2) WHERE case_id = $1"
        )
    };
}

async fn case(conn: &mut PgConnection, event: &RecordedEvent) -> anyhow::Result<()> {
    let e: ConsultationEvent = kujira_store::decode_without_personal(event)?;
    // Mirrors `casework::evolve`: the same facts move the same clocks.
    let q = match &e {
        ConsultationEvent::InquirySubmitted(s) => opened(&s.opening),
        ConsultationEvent::TourRequestSubmitted(s) => opened(&s.opening),
        ConsultationEvent::CaseAssigned(a) => sqlx::query(acted!("concierge = $3, "))
            .bind(a.case_id)
            .bind(a.at)
            .bind(a.concierge),
        ConsultationEvent::CasePhaseChanged(p) => sqlx::query(acted!(
            "phase = $3, last_phase_change_at = $2, \
             moved_at = CASE WHEN $3 = 'moved' THEN $2 END,"
        ))
        .bind(p.case_id)
        .bind(p.at)
        .bind(stage(p.to)),
        ConsultationEvent::ContactLogged(c) => {
            sqlx::query(acted!("last_contact_at = greatest(last_contact_at, $3),"))
                .bind(c.case_id)
                .bind(c.at)
                .bind(c.occurred_at)
        }
        ConsultationEvent::ConsultationScheduled(c) => {
            sqlx::query(acted!("")).bind(c.case_id).bind(c.at)
        }
        ConsultationEvent::NextActionSet(n) => sqlx::query(acted!("next_action = $3, "))
            .bind(n.case_id)
            .bind(n.at)
            .bind(n.due),
        ConsultationEvent::MoveRecorded(m) => {
            sqlx::query(acted!("move_in = $3, applies_for_support = $4,"))
                .bind(m.case_id)
                .bind(m.at)
                .bind(m.move_in)
                .bind(m.applies_for_support)
        }
        ConsultationEvent::CaseClosed(c) => sqlx::query(acted!("closed_at = $2, "))
            .bind(c.case_id)
            .bind(c.at),
        ConsultationEvent::CaseReopened(c) => sqlx::query(acted!("closed_at = NULL, "))
            .bind(c.case_id)
            .bind(c.at),
        ConsultationEvent::CaseMerged(m) => sqlx::query(acted!("merged_into = $3, "))
            .bind(m.case_id)
            .bind(m.at)
            .bind(m.into),
        ConsultationEvent::CaseMergeUndone(m) => sqlx::query(acted!("merged_into = NULL, "))
            .bind(m.case_id)
            .bind(m.at),
        ConsultationEvent::MailRequested(_) | ConsultationEvent::MailQueued(_) => return Ok(()),
    };
    q.execute(&mut *conn).await?;
    Ok(())
}

fn opened(
    o: &kujira_domain::inquiry::CaseOpening,
) -> sqlx::query::Query<'static, sqlx::Postgres, sqlx::postgres::PgArguments> {
    // A case the desk entered was taken by staff who met the person (a fair booth,
    // the phone, the counter): it does not wait for a first contact, as on the
    // desk's board.
    sqlx::query(
        "INSERT INTO rule_cases (case_id, person_id, reference, opened_at, phase, \
           last_phase_change_at, last_activity_at, awaits_first_contact) \
         VALUES ($1, $2, $3, $4, 'gathering', $4, $4, $5)",
    )
    .bind(o.case_id)
    .bind(o.person_id)
    .bind(o.reference.clone())
    .bind(o.submitted_at)
    .bind(o.channel != kujira_domain::inquiry::Channel::Desk)
}

async fn tour(conn: &mut PgConnection, event: &RecordedEvent) -> anyhow::Result<()> {
    let Some(tour_id) = Uuid::parse_str(event.stream_name.split_once('-').map_or("", |x| x.1)).ok()
    else {
        anyhow::bail!("{} is not a tour stream", event.stream_name);
    };
    let e: TourEvent = kujira_store::decode_without_personal(event)?;
    let party = |sql: &'static str| sqlx::query(sql).bind(tour_id);
    let q = match &e {
        TourEvent::TourScheduled(s) => sqlx::query(
            "INSERT INTO rule_tours (tour_id, title, starts_at, ends_at, status, \
               capacity_parties, max_people) \
             VALUES ($1, $2, $3, $4, 'draft', $5, $6)",
        )
        .bind(tour_id)
        .bind(s.details.title.clone())
        .bind(s.details.starts_at)
        .bind(s.details.ends_at)
        .bind(i32::try_from(s.details.capacity_parties).unwrap_or(i32::MAX))
        .bind(
            s.details
                .max_people
                .map(|m| i32::try_from(m).unwrap_or(i32::MAX)),
        ),
        // A moved tour moves its reminder and thank-you with it; raised capacity
        // arrives as promotions of their own.
        TourEvent::TourDetailsChanged(c) => sqlx::query(
            "UPDATE rule_tours SET title = $2, starts_at = $3, ends_at = $4, \
               capacity_parties = $5, max_people = $6 WHERE tour_id = $1",
        )
        .bind(tour_id)
        .bind(c.details.title.clone())
        .bind(c.details.starts_at)
        .bind(c.details.ends_at)
        .bind(i32::try_from(c.details.capacity_parties).unwrap_or(i32::MAX))
        .bind(
            c.details
                .max_people
                .map(|m| i32::try_from(m).unwrap_or(i32::MAX)),
        ),
        TourEvent::TourPublished(_) => sqlx::query(
            "UPDATE rule_tours SET status = 'published' WHERE tour_id = $1 AND status = 'draft'",
        )
        .bind(tour_id),
        TourEvent::TourCancelled(_) => {
            sqlx::query("UPDATE rule_tours SET status = 'cancelled' WHERE tour_id = $1")
                .bind(tour_id)
        }
        TourEvent::TourSignUpReceived(r) => party(
            "INSERT INTO rule_tour_parties (tour_id, sign_up_id, person_id, received_at, status) \
             VALUES ($1, $2, $3, $4, 'received')",
        )
        .bind(r.sign_up_id)
        .bind(r.person_id)
        .bind(r.at),
        TourEvent::TourSignUpConfirmed(c) => {
            counts(conn, tour_id, 1, people(c.adults, c.children), 0).await?;
            party(
                "UPDATE rule_tour_parties SET status = 'confirmed' \
                 WHERE tour_id = $1 AND sign_up_id = $2",
            )
            .bind(c.sign_up_id)
        }
        TourEvent::TourSignUpWaitlisted(w) => {
            counts(conn, tour_id, 0, 0, 1).await?;
            party(
                "UPDATE rule_tour_parties SET status = 'waitlisted' \
                 WHERE tour_id = $1 AND sign_up_id = $2",
            )
            .bind(w.sign_up_id)
        }
        TourEvent::TourSignUpPromoted(p) => {
            counts(conn, tour_id, 1, people(p.adults, p.children), -1).await?;
            party(
                "UPDATE rule_tour_parties SET status = 'confirmed', promoted_at = $3 \
                 WHERE tour_id = $1 AND sign_up_id = $2",
            )
            .bind(p.sign_up_id)
            .bind(p.at)
        }
        TourEvent::TourSignUpCancelled(c) => {
            match c.was {
                kujira_domain::tour::Standing::Confirmed => {
                    counts(conn, tour_id, -1, -people(c.adults, c.children), 0).await?
                }
                kujira_domain::tour::Standing::Waitlisted => {
                    counts(conn, tour_id, 0, 0, -1).await?
                }
            }
            party(
                "UPDATE rule_tour_parties SET status = 'cancelled' \
                 WHERE tour_id = $1 AND sign_up_id = $2",
            )
            .bind(c.sign_up_id)
        }
        TourEvent::TourAttendanceRecorded(a) => {
            sqlx::query("UPDATE rule_tours SET attendance_recorded = true WHERE tour_id = $1")
                .bind(tour_id)
                .execute(&mut *conn)
                .await?;
            party(
                "UPDATE rule_tour_parties SET attended = $3 \
                 WHERE tour_id = $1 AND sign_up_id = $2",
            )
            .bind(a.sign_up_id)
            .bind(a.attended)
        }
        TourEvent::TourFeedbackRecorded(_)
        | TourEvent::MailRequested(_)
        | TourEvent::MailQueued(_) => return Ok(()),
    };
    q.execute(&mut *conn).await?;
    Ok(())
}

fn people(adults: u8, children: u8) -> i32 {
    i32::from(adults) + i32::from(children)
}

async fn counts(
    conn: &mut PgConnection,
    tour_id: Uuid,
    parties: i32,
    people: i32,
    waitlist: i32,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE rule_tours SET confirmed_parties = confirmed_parties + $2, \
           confirmed_people = confirmed_people + $3, waitlist_length = waitlist_length + $4 \
         WHERE tour_id = $1",
    )
    .bind(tour_id)
    .bind(parties)
    .bind(people)
    .bind(waitlist)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn person(conn: &mut PgConnection, event: &RecordedEvent) -> anyhow::Result<()> {
    let e: PersonEvent = kujira_store::decode_without_personal(event)?;
    let q = match &e {
        PersonEvent::AddressBounced(b) => sqlx::query(
            "INSERT INTO rule_persons (person_id, bouncing_since) VALUES ($1, $2) \
             ON CONFLICT (person_id) DO UPDATE \
               SET bouncing_since = coalesce(rule_persons.bouncing_since, $2)",
        )
        .bind(b.person_id)
        .bind(b.at),
        PersonEvent::BounceCleared(b) => {
            sqlx::query("UPDATE rule_persons SET bouncing_since = NULL WHERE person_id = $1")
                .bind(b.person_id)
        }
        PersonEvent::PersonErased(x) => sqlx::query(
            "INSERT INTO rule_persons (person_id, erased_at) VALUES ($1, $2) \
             ON CONFLICT (person_id) DO UPDATE SET erased_at = $2",
        )
        .bind(x.person_id)
        .bind(x.at),
        _ => return Ok(()),
    };
    q.execute(&mut *conn).await?;
    Ok(())
}

#[async_trait::async_trait]
impl kujira_projector::Projection for RulesProjection {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn event_types(&self) -> Option<&'static [&'static str]> {
        Some(TYPES)
    }

    async fn apply(&self, tx: &mut PgConnection, event: &RecordedEvent) -> anyhow::Result<()> {
        Self::record(tx, event).await
    }

    /// Derived from the log alone: rebuildable. Migrations made the tables.
    fn rebuild(&self) -> kujira_projector::Rebuild {
        kujira_projector::Rebuild::Tables {
            tables: &[
                "rule_cases",
                "rule_tours",
                "rule_tour_parties",
                "rule_persons",
            ],
            ddl: concat!(
                include_str!("../../migrations/20261201005100_rule_projection.sql"),
                include_str!("../../migrations/20261203005400_rule_cases_first_contact.sql")
            ),
        }
    }
}
