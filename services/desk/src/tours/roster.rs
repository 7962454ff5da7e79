//! The tour rosters (名簿): the `desk.rosters` projection and its queries.
//!
//! For each tour: its details and counts (`roster_tours`), and every party that
//! signed up (`roster_parties`), confirmed, waitlisted or cancelled, with head
//! counts, transport, check-in and feedback score. The personal columns (name,
//! kana, email, phone, needs, children's ages) are opened through the vault
//! ([`kujira_store::Store::open_all`]), follow the person's corrections (訂正), and
//! are scrubbed when the person is erased (`PersonErased`). A rebuild from the log
//! gives the same scrubbed rows: an erased person's sign-ups open to `null`.
//!
//! Free text that is not needed on the day (feedback comments) stays in the events.

use anyhow::Context;
use chrono::{DateTime, Utc};
use kujira_domain::person::PersonEvent;
use kujira_domain::tour::{Standing, TourDetails, TourEvent};
use kujira_eventlog::RecordedEvent;
use kujira_store::Store;
use sqlx::{PgConnection, PgPool, Row};
use uuid::Uuid;

/// Keeps `roster_tours` and `roster_parties`.
#[derive(Clone, Debug)]
pub struct RosterProjection {
    store: Store,
}

/// Every event type the rosters follow.
const TYPES: &[&str] = &[
    "TourScheduled",
    "TourPublished",
    "TourCancelled",
    "TourDetailsChanged",
    "TourSignUpReceived",
    "TourSignUpConfirmed",
    "TourSignUpWaitlisted",
    "TourSignUpPromoted",
    "TourSignUpCancelled",
    "TourFeedbackRecorded",
    "TourAttendanceRecorded",
    "PersonDetailsCorrected",
    "PersonErased",
];

/// The events whose personal part the roster keeps.
fn needs_opening(event_type: &str) -> bool {
    matches!(event_type, "TourSignUpReceived" | "PersonDetailsCorrected")
}

impl RosterProjection {
    pub const NAME: &'static str = "desk.rosters";

    /// The projection opens sign-ups with `store`'s vault.
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

fn tour_of(event: &RecordedEvent) -> anyhow::Result<Uuid> {
    event
        .stream_name
        .strip_prefix("tour-")
        .and_then(|id| Uuid::parse_str(id).ok())
        .with_context(|| format!("{} on stream {}", event.event_type, event.stream_name))
}

fn people(adults: u8, children: u8) -> i32 {
    i32::from(adults) + i32::from(children)
}

fn int(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

async fn apply_one(conn: &mut PgConnection, event: &RecordedEvent) -> anyhow::Result<()> {
    if event.event_type.starts_with("Person") {
        return apply_person(conn, event).await;
    }
    let tour_id = tour_of(event)?;
    // Opened events decode with their personal part; the others never need it.
    let e: TourEvent = if needs_opening(&event.event_type) {
        event.decode()?
    } else {
        kujira_store::decode_without_personal(event)?
    };
    match &e {
        TourEvent::TourScheduled(s) => {
            sqlx::query(
                "INSERT INTO roster_tours (tour_id, title, kind, starts_at, ends_at, closes_at, \
                   deadline_set, meeting_place, fee_yen, capacity_parties, max_people, description, \
                   audience, status, scheduled_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'draft', $14, $14)",
            )
            .bind(tour_id)
            .bind(&s.details.title)
            .bind(s.details.kind.as_str())
            .bind(s.details.starts_at)
            .bind(s.details.ends_at)
            .bind(s.details.sign_up_closes_at())
            .bind(s.details.deadline.is_some())
            .bind(&s.details.meeting_place)
            .bind(int(s.details.fee_yen))
            .bind(int(s.details.capacity_parties))
            .bind(s.details.max_people.map(int))
            .bind(&s.details.description)
            .bind(&s.details.audience)
            .bind(s.at)
            .execute(&mut *conn)
            .await?;
        }
        TourEvent::TourDetailsChanged(c) => {
            let d: &TourDetails = &c.details;
            sqlx::query(
                "UPDATE roster_tours SET title = $2, kind = $3, starts_at = $4, ends_at = $5, \
                   closes_at = $6, deadline_set = $7, meeting_place = $8, fee_yen = $9, \
                   capacity_parties = $10, max_people = $11, description = $12, audience = $13, \
                   revision = $14, updated_at = $15 WHERE tour_id = $1",
            )
            .bind(tour_id)
            .bind(&d.title)
            .bind(d.kind.as_str())
            .bind(d.starts_at)
            .bind(d.ends_at)
            .bind(d.sign_up_closes_at())
            .bind(d.deadline.is_some())
            .bind(&d.meeting_place)
            .bind(int(d.fee_yen))
            .bind(int(d.capacity_parties))
            .bind(d.max_people.map(int))
            .bind(&d.description)
            .bind(&d.audience)
            .bind(int(c.revision))
            .bind(c.at)
            .execute(&mut *conn)
            .await?;
        }
        TourEvent::TourPublished(p) => {
            sqlx::query(
                "UPDATE roster_tours SET status = 'published', updated_at = $2 \
                 WHERE tour_id = $1 AND status = 'draft'",
            )
            .bind(tour_id)
            .bind(p.at)
            .execute(&mut *conn)
            .await?;
        }
        TourEvent::TourCancelled(c) => {
            sqlx::query(
                "UPDATE roster_tours SET status = 'cancelled', cancel_reason = $2, updated_at = $3 \
                 WHERE tour_id = $1",
            )
            .bind(tour_id)
            .bind(&c.reason)
            .bind(c.at)
            .execute(&mut *conn)
            .await?;
        }
        TourEvent::TourSignUpReceived(r) => {
            let p = r.personal.known();
            sqlx::query(
                "INSERT INTO roster_parties (sign_up_id, tour_id, person_id, arrival, received_at, \
                   adults, children, prefecture, transport, source, status, name, name_kana, email, \
                   phone, needs, children_ages, erased) \
                 VALUES ($1, $2, $3, \
                   (SELECT coalesce(max(arrival), 0) + 1 FROM roster_parties WHERE tour_id = $2), \
                   $4, $5, $6, $7, $8, $9, 'received', $10, $11, $12, $13, $14, $15, $16)",
            )
            .bind(r.sign_up_id)
            .bind(tour_id)
            .bind(r.person_id)
            .bind(r.at)
            .bind(i16::from(r.adults))
            .bind(i16::from(r.children))
            .bind(r.prefecture.to_string())
            .bind(r.transport.map(|t| t.as_str()))
            .bind(r.source.map(|s| s.as_str()))
            .bind(p.map(|p| p.name.to_string()))
            .bind(p.map(|p| p.name_kana.to_string()))
            .bind(p.map(|p| p.email.to_string()))
            .bind(p.map(|p| p.phone.to_string()))
            .bind(p.and_then(|p| p.needs.as_ref()).map(|n| n.to_string()))
            .bind(p.and_then(|p| p.children_ages.as_ref()).map(|n| n.to_string()))
            .bind(p.is_none())
            .execute(&mut *conn)
            .await?;
        }
        TourEvent::TourSignUpConfirmed(c) => {
            party(conn, c.sign_up_id, "status = 'confirmed'", None).await?;
            tour_counts(conn, tour_id, "confirmed", 1, people(c.adults, c.children)).await?;
        }
        TourEvent::TourSignUpWaitlisted(w) => {
            party(conn, w.sign_up_id, "status = 'waitlisted'", None).await?;
            tour_counts(conn, tour_id, "waitlisted", 1, people(w.adults, w.children)).await?;
        }
        TourEvent::TourSignUpPromoted(p) => {
            party(
                conn,
                p.sign_up_id,
                "status = 'confirmed', promoted_at = $2",
                Some(p.at),
            )
            .await?;
            let n = people(p.adults, p.children);
            tour_counts(conn, tour_id, "waitlisted", -1, -n).await?;
            tour_counts(conn, tour_id, "confirmed", 1, n).await?;
        }
        TourEvent::TourSignUpCancelled(c) => {
            let (was, by) = (
                match c.was {
                    Standing::Confirmed => "confirmed",
                    Standing::Waitlisted => "waitlisted",
                },
                match c.by {
                    kujira_domain::tour::CancelledBy::Party => "party",
                    kujira_domain::tour::CancelledBy::Staff => "staff",
                },
            );
            sqlx::query(
                "UPDATE roster_parties SET status = 'cancelled', cancelled_at = $2, \
                   cancelled_was = $3, cancelled_by = $4 WHERE sign_up_id = $1",
            )
            .bind(c.sign_up_id)
            .bind(c.at)
            .bind(was)
            .bind(by)
            .execute(&mut *conn)
            .await?;
            tour_counts(conn, tour_id, was, -1, -people(c.adults, c.children)).await?;
            sqlx::query(
                "UPDATE roster_tours SET cancelled_parties = cancelled_parties + 1, updated_at = $2 \
                 WHERE tour_id = $1",
            )
            .bind(tour_id)
            .bind(c.at)
            .execute(&mut *conn)
            .await?;
        }
        TourEvent::TourFeedbackRecorded(f) => {
            sqlx::query("UPDATE roster_parties SET satisfaction = $2 WHERE sign_up_id = $1")
                .bind(f.sign_up_id)
                .bind(i16::from(f.satisfaction))
                .execute(&mut *conn)
                .await?;
        }
        TourEvent::TourAttendanceRecorded(a) => {
            sqlx::query(
                "UPDATE roster_parties SET attended = $2, attendance_at = $3 WHERE sign_up_id = $1",
            )
            .bind(a.sign_up_id)
            .bind(a.attended)
            .bind(a.at)
            .execute(&mut *conn)
            .await?;
        }
        TourEvent::MailRequested(_) | TourEvent::MailQueued(_) => {}
    }
    Ok(())
}

/// Sets `set` on one party; `$2` is `at` when given.
async fn party(
    conn: &mut PgConnection,
    sign_up_id: Uuid,
    set: &str,
    at: Option<DateTime<Utc>>,
) -> anyhow::Result<()> {
    let sql = format!("UPDATE roster_parties SET {set} WHERE sign_up_id = $1");
    let mut q = sqlx::query(&sql).bind(sign_up_id);
    if let Some(at) = at {
        q = q.bind(at);
    }
    let done = q.execute(&mut *conn).await?;
    anyhow::ensure!(
        done.rows_affected() == 1,
        "sign-up {sign_up_id} is not in the roster"
    );
    Ok(())
}

/// Adds to a tour's counts of `which` (`confirmed` or `waitlisted`).
async fn tour_counts(
    conn: &mut PgConnection,
    tour_id: Uuid,
    which: &str,
    parties: i32,
    people: i32,
) -> anyhow::Result<()> {
    let sql = format!(
        "UPDATE roster_tours SET {which}_parties = {which}_parties + $2, \
           {which}_people = {which}_people + $3 WHERE tour_id = $1"
    );
    sqlx::query(&sql)
        .bind(tour_id)
        .bind(parties)
        .bind(people)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn apply_person(conn: &mut PgConnection, event: &RecordedEvent) -> anyhow::Result<()> {
    let e: PersonEvent = if needs_opening(&event.event_type) {
        event.decode()?
    } else {
        kujira_store::decode_without_personal(event)?
    };
    match e {
        PersonEvent::PersonDetailsCorrected(c) => {
            // An erased person's correction opens to nothing; their rows stay scrubbed.
            let Some(d) = c.personal.known() else {
                return Ok(());
            };
            sqlx::query(
                "UPDATE roster_parties SET name = $2, name_kana = $3, email = $4, \
                   phone = coalesce($5, phone) WHERE person_id = $1 AND NOT erased",
            )
            .bind(c.person_id)
            .bind(d.name.to_string())
            .bind(d.name_kana.to_string())
            .bind(d.email.to_string())
            .bind(d.phone.as_ref().map(|p| p.to_string()))
            .execute(&mut *conn)
            .await?;
        }
        PersonEvent::PersonErased(e) => {
            sqlx::query(
                "UPDATE roster_parties SET name = NULL, name_kana = NULL, email = NULL, \
                   phone = NULL, needs = NULL, children_ages = NULL, erased = true \
                 WHERE person_id = $1",
            )
            .bind(e.person_id)
            .execute(&mut *conn)
            .await?;
        }
        _ => {}
    }
    Ok(())
}

#[async_trait::async_trait]
impl kujira_projector::Projection for RosterProjection {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn event_types(&self) -> Option<&'static [&'static str]> {
        Some(TYPES)
    }

    async fn apply(&self, tx: &mut PgConnection, event: &RecordedEvent) -> anyhow::Result<()> {
        self.apply_batch(tx, std::slice::from_ref(event)).await
    }

    /// Opens the batch's sign-ups and corrections with one key lookup, then applies
    /// each event in order.
    async fn apply_batch(
        &self,
        tx: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> anyhow::Result<()> {
        let opened = self
            .store
            .open_where(events, |e| needs_opening(&e.event_type))
            .await?;
        for (event, opened) in events.iter().zip(&opened) {
            let result = apply_one(tx, opened).await;
            result.map_err(|e| e.context(kujira_projector::EventRef::of(event)))?;
        }
        Ok(())
    }

    fn rebuild(&self) -> kujira_projector::Rebuild {
        kujira_projector::Rebuild::Tables {
            tables: &["roster_tours", "roster_parties"],
            ddl: include_str!("../../migrations/20261201004500_tour_rosters.sql"),
        }
    }
}

// ---------------------------------------------------------------------------
// Queries
// ---------------------------------------------------------------------------

/// One tour as the desk lists it.
#[derive(Debug, Clone)]
pub struct TourRow {
    pub tour_id: Uuid,
    pub title: String,
    pub kind: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub closes_at: DateTime<Utc>,
    pub deadline_set: bool,
    pub meeting_place: String,
    pub fee_yen: i32,
    pub capacity_parties: i32,
    pub max_people: Option<i32>,
    pub description: String,
    pub audience: String,
    pub status: String,
    pub cancel_reason: Option<String>,
    pub revision: i32,
    pub confirmed_parties: i32,
    pub confirmed_people: i32,
    pub waitlisted_parties: i32,
    pub waitlisted_people: i32,
    pub cancelled_parties: i32,
}

const TOUR_COLUMNS: &str = "tour_id, title, kind, starts_at, ends_at, closes_at, deadline_set, \
    meeting_place, fee_yen, capacity_parties, max_people, description, audience, status, \
    cancel_reason, revision, confirmed_parties, confirmed_people, waitlisted_parties, \
    waitlisted_people, cancelled_parties";

fn tour_row(r: &sqlx::postgres::PgRow) -> sqlx::Result<TourRow> {
    Ok(TourRow {
        tour_id: r.try_get("tour_id")?,
        title: r.try_get("title")?,
        kind: r.try_get("kind")?,
        starts_at: r.try_get("starts_at")?,
        ends_at: r.try_get("ends_at")?,
        closes_at: r.try_get("closes_at")?,
        deadline_set: r.try_get("deadline_set")?,
        meeting_place: r.try_get("meeting_place")?,
        fee_yen: r.try_get("fee_yen")?,
        capacity_parties: r.try_get("capacity_parties")?,
        max_people: r.try_get("max_people")?,
        description: r.try_get("description")?,
        audience: r.try_get("audience")?,
        status: r.try_get("status")?,
        cancel_reason: r.try_get("cancel_reason")?,
        revision: r.try_get("revision")?,
        confirmed_parties: r.try_get("confirmed_parties")?,
        confirmed_people: r.try_get("confirmed_people")?,
        waitlisted_parties: r.try_get("waitlisted_parties")?,
        waitlisted_people: r.try_get("waitlisted_people")?,
        cancelled_parties: r.try_get("cancelled_parties")?,
    })
}

/// Tours that have not ended (soonest first), then the rest (latest first, at most
/// `past_limit`).
pub async fn tours(
    pool: &PgPool,
    now: DateTime<Utc>,
    past_limit: i64,
) -> sqlx::Result<(Vec<TourRow>, Vec<TourRow>)> {
    let upcoming = sqlx::query(&format!(
        "SELECT {TOUR_COLUMNS} FROM roster_tours WHERE ends_at > $1 ORDER BY starts_at, tour_id"
    ))
    .bind(now)
    .fetch_all(pool)
    .await?
    .iter()
    .map(tour_row)
    .collect::<sqlx::Result<Vec<_>>>()?;
    let past = sqlx::query(&format!(
        "SELECT {TOUR_COLUMNS} FROM roster_tours WHERE ends_at <= $1 \
         ORDER BY starts_at DESC, tour_id LIMIT $2"
    ))
    .bind(now)
    .bind(past_limit)
    .fetch_all(pool)
    .await?
    .iter()
    .map(tour_row)
    .collect::<sqlx::Result<Vec<_>>>()?;
    Ok((upcoming, past))
}

pub async fn tour(pool: &PgPool, tour_id: Uuid) -> sqlx::Result<Option<TourRow>> {
    sqlx::query(&format!(
        "SELECT {TOUR_COLUMNS} FROM roster_tours WHERE tour_id = $1"
    ))
    .bind(tour_id)
    .fetch_optional(pool)
    .await?
    .as_ref()
    .map(tour_row)
    .transpose()
}

/// One party on a roster.
#[derive(Debug, Clone)]
pub struct PartyRow {
    pub sign_up_id: Uuid,
    /// Whose sign-up it is (for the audit trail of who saw the roster).
    pub person_id: Uuid,
    pub arrival: i32,
    pub received_at: DateTime<Utc>,
    pub adults: i16,
    pub children: i16,
    pub prefecture: String,
    pub transport: Option<String>,
    pub source: Option<String>,
    /// `confirmed`, `waitlisted` or `cancelled`.
    pub status: String,
    /// 1-based place on the waiting list, for waitlisted parties.
    pub position: Option<i64>,
    pub promoted_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub cancelled_was: Option<String>,
    pub attended: Option<bool>,
    pub satisfaction: Option<i16>,
    pub personal: Option<PartyPersonal>,
}

impl PartyRow {
    pub fn people(&self) -> i32 {
        i32::from(self.adults) + i32::from(self.children)
    }
}

/// A party's personal columns; `None` on [`PartyRow`] once the person was erased.
#[derive(Debug, Clone)]
pub struct PartyPersonal {
    pub name: String,
    pub name_kana: String,
    pub email: String,
    pub phone: String,
    pub needs: Option<String>,
    pub children_ages: Option<String>,
}

/// Every party of a tour: confirmed first, then the waiting list in order, then the
/// cancelled ones; each group in order of arrival.
pub async fn parties(pool: &PgPool, tour_id: Uuid) -> sqlx::Result<Vec<PartyRow>> {
    let rows = sqlx::query(
        "SELECT sign_up_id, person_id, arrival, received_at, adults, children, prefecture, transport, source, \
           status, promoted_at, cancelled_at, cancelled_was, attended, satisfaction, erased, \
           name, name_kana, email, phone, needs, children_ages, \
           CASE WHEN status = 'waitlisted' THEN \
             row_number() OVER (PARTITION BY status = 'waitlisted' ORDER BY arrival) END AS position \
         FROM roster_parties WHERE tour_id = $1 AND status <> 'received' \
         ORDER BY CASE status WHEN 'confirmed' THEN 0 WHEN 'waitlisted' THEN 1 ELSE 2 END, arrival",
    )
    .bind(tour_id)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            let erased: bool = r.try_get("erased")?;
            let personal = if erased {
                None
            } else {
                Some(PartyPersonal {
                    name: r.try_get::<Option<String>, _>("name")?.unwrap_or_default(),
                    name_kana: r
                        .try_get::<Option<String>, _>("name_kana")?
                        .unwrap_or_default(),
                    email: r.try_get::<Option<String>, _>("email")?.unwrap_or_default(),
                    phone: r.try_get::<Option<String>, _>("phone")?.unwrap_or_default(),
                    needs: r.try_get("needs")?,
                    children_ages: r.try_get("children_ages")?,
                })
            };
            Ok(PartyRow {
                sign_up_id: r.try_get("sign_up_id")?,
                person_id: r.try_get("person_id")?,
                arrival: r.try_get("arrival")?,
                received_at: r.try_get("received_at")?,
                adults: r.try_get("adults")?,
                children: r.try_get("children")?,
                prefecture: r.try_get("prefecture")?,
                transport: r.try_get("transport")?,
                source: r.try_get("source")?,
                status: r.try_get("status")?,
                position: r.try_get("position")?,
                promoted_at: r.try_get("promoted_at")?,
                cancelled_at: r.try_get("cancelled_at")?,
                cancelled_was: r.try_get("cancelled_was")?,
                attended: r.try_get("attended")?,
                satisfaction: r.try_get("satisfaction")?,
                personal,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tour event added to the domain and not to this list would leave the rosters
    /// silently stale (as `TourDetailsChanged` once did for the rules).
    #[test]
    fn the_rosters_follow_every_tour_event() {
        for t in TourEvent::TYPES {
            assert!(TYPES.contains(t), "desk.rosters does not read {t}");
        }
    }
}
