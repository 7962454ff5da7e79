//! The public tour catalogue (`tour_catalogue`): what `/tours` and `/api/v1/tours`
//! list, kept by [`TourCatalogueProjection`] from the tour streams.
//!
//! Only counts live here. Every fact the counts follow carries its party's head
//! counts, so each event is applied on its own, without reading anything back.

use chrono::{DateTime, Utc};
use kujira_domain::tour::{Standing, TourEvent, TourStatus};
use kujira_eventlog::RecordedEvent;
use serde::Serialize;
use sqlx::{PgConnection, PgPool, Row};
use utoipa::ToSchema;
use uuid::Uuid;

/// Keeps `tour_catalogue`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TourCatalogueProjection;

impl TourCatalogueProjection {
    /// The name its checkpoint is stored under.
    pub const NAME: &'static str = "tours.catalogue";

    pub fn new() -> Self {
        Self
    }

    /// What the projector's `apply` does.
    pub async fn record(conn: &mut PgConnection, event: &RecordedEvent) -> anyhow::Result<()> {
        use anyhow::Context;
        if !TourEvent::TYPES.contains(&event.event_type.as_str()) {
            return Ok(());
        }
        let Some(tour_id) = event
            .stream_name
            .strip_prefix("tour-")
            .and_then(|id| Uuid::parse_str(id).ok())
        else {
            return Ok(());
        };
        // The catalogue counts places; it never needs, or keeps, anyone's data.
        let e: TourEvent = kujira_store::decode_without_personal(event)?;
        let q = match &e {
            TourEvent::TourScheduled(s) => {
                let d = &s.details;
                sqlx::query(
                    "INSERT INTO tour_catalogue (tour_id, title, kind, starts_at, ends_at, deadline, \
                       meeting_place, fee_yen, description, audience, capacity_parties, max_people, \
                       status, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'draft', $13) \
                     ON CONFLICT (tour_id) DO NOTHING",
                )
                .bind(tour_id)
                .bind(&d.title)
                .bind(d.kind.as_str())
                .bind(d.starts_at)
                .bind(d.ends_at)
                .bind(d.sign_up_closes_at())
                .bind(&d.meeting_place)
                .bind(i32::try_from(d.fee_yen).unwrap_or(i32::MAX))
                .bind(&d.description)
                .bind(&d.audience)
                .bind(i32::try_from(d.capacity_parties).unwrap_or(i32::MAX))
                .bind(d.max_people.map(|m| i32::try_from(m).unwrap_or(i32::MAX)))
                .bind(s.at)
            }
            TourEvent::TourDetailsChanged(c) => {
                let d = &c.details;
                sqlx::query(
                    "UPDATE tour_catalogue SET title = $2, kind = $3, starts_at = $4, ends_at = $5, \
                       deadline = $6, meeting_place = $7, fee_yen = $8, description = $9, \
                       audience = $10, capacity_parties = $11, max_people = $12, updated_at = $13 \
                     WHERE tour_id = $1",
                )
                .bind(tour_id)
                .bind(&d.title)
                .bind(d.kind.as_str())
                .bind(d.starts_at)
                .bind(d.ends_at)
                .bind(d.sign_up_closes_at())
                .bind(&d.meeting_place)
                .bind(i32::try_from(d.fee_yen).unwrap_or(i32::MAX))
                .bind(&d.description)
                .bind(&d.audience)
                .bind(i32::try_from(d.capacity_parties).unwrap_or(i32::MAX))
                .bind(d.max_people.map(|m| i32::try_from(m).unwrap_or(i32::MAX)))
                .bind(c.at)
            }
            TourEvent::TourPublished(p) => sqlx::query(
                "UPDATE tour_catalogue SET status = 'published', updated_at = $2 \
                 WHERE tour_id = $1 AND status = 'draft'",
            )
            .bind(tour_id)
            .bind(p.at),
            TourEvent::TourCancelled(c) => sqlx::query(
                "UPDATE tour_catalogue SET status = 'cancelled', updated_at = $2 WHERE tour_id = $1",
            )
            .bind(tour_id)
            .bind(c.at),
            TourEvent::TourSignUpConfirmed(c) => sqlx::query(
                "UPDATE tour_catalogue SET confirmed_parties = confirmed_parties + 1, \
                   confirmed_people = confirmed_people + $2, updated_at = $3 WHERE tour_id = $1",
            )
            .bind(tour_id)
            .bind(i32::from(c.adults) + i32::from(c.children))
            .bind(c.at),
            TourEvent::TourSignUpWaitlisted(w) => sqlx::query(
                "UPDATE tour_catalogue SET waitlist_length = waitlist_length + 1, updated_at = $2 \
                 WHERE tour_id = $1",
            )
            .bind(tour_id)
            .bind(w.at),
            TourEvent::TourSignUpPromoted(p) => sqlx::query(
                "UPDATE tour_catalogue SET confirmed_parties = confirmed_parties + 1, \
                   confirmed_people = confirmed_people + $2, waitlist_length = waitlist_length - 1, \
                   updated_at = $3 WHERE tour_id = $1",
            )
            .bind(tour_id)
            .bind(i32::from(p.adults) + i32::from(p.children))
            .bind(p.at),
            TourEvent::TourSignUpCancelled(c) => match c.was {
                Standing::Confirmed => sqlx::query(
                    "UPDATE tour_catalogue SET confirmed_parties = confirmed_parties - 1, \
                       confirmed_people = confirmed_people - $2, updated_at = $3 WHERE tour_id = $1",
                )
                .bind(tour_id)
                .bind(i32::from(c.adults) + i32::from(c.children))
                .bind(c.at),
                Standing::Waitlisted => sqlx::query(
                    "UPDATE tour_catalogue SET waitlist_length = waitlist_length - 1, \
                       updated_at = $2 WHERE tour_id = $1",
                )
                .bind(tour_id)
                .bind(c.at),
            },
            _ => return Ok(()),
        };
        q.execute(&mut *conn)
            .await
            .with_context(|| format!("cannot apply {} to tour_catalogue", event.event_type))?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl kujira_projector::Projection for TourCatalogueProjection {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn event_types(&self) -> Option<&'static [&'static str]> {
        Some(TourEvent::TYPES)
    }

    async fn apply(&self, tx: &mut PgConnection, event: &RecordedEvent) -> anyhow::Result<()> {
        Self::record(tx, event).await
    }

    /// Only counts derived from the tour streams: rebuildable from the log. The
    /// table was created by one migration, which is therefore its DDL; a later
    /// migration that changes the table must change this too (a rebuild compares
    /// the two and refuses while they differ).
    fn rebuild(&self) -> kujira_projector::Rebuild {
        kujira_projector::Rebuild::Tables {
            tables: &["tour_catalogue"],
            ddl: include_str!("../migrations/20261124000200_tour_catalogue.sql"),
        }
    }
}

/// One tour as the public catalogue shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TourSummary {
    pub id: Uuid,
    pub title: String,
    /// `day_trip` or `overnight`.
    #[schema(example = "day_trip")]
    pub kind: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// When sign-ups close (the start of the tour when no earlier deadline is set).
    pub deadline: DateTime<Utc>,
    pub capacity_parties: i32,
    pub confirmed_parties: i32,
    /// Parties that can still be confirmed; 0 when full (sign-ups then join the waiting list).
    pub places_left: i32,
    pub waitlist_length: i32,
    /// `published` or `cancelled` (drafts are never listed).
    #[schema(example = "published")]
    pub status: String,
    /// Optional maximum of people, children included.
    pub max_people: Option<i32>,
    pub fee_yen: i32,
    pub meeting_place: String,
    pub description: String,
    pub audience: String,
}

impl TourSummary {
    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        self.status == TourStatus::Published.as_str() && now < self.deadline
    }
}

const COLUMNS: &str = "tour_id, title, kind, starts_at, ends_at, deadline, capacity_parties, \
    confirmed_parties, waitlist_length, status, max_people, fee_yen, meeting_place, description, audience";

fn summary(row: &sqlx::postgres::PgRow) -> TourSummary {
    let capacity: i32 = row.get("capacity_parties");
    let confirmed: i32 = row.get("confirmed_parties");
    TourSummary {
        id: row.get("tour_id"),
        title: row.get("title"),
        kind: row.get("kind"),
        starts_at: row.get("starts_at"),
        ends_at: row.get("ends_at"),
        deadline: row.get("deadline"),
        capacity_parties: capacity,
        confirmed_parties: confirmed,
        places_left: (capacity - confirmed).max(0),
        waitlist_length: row.get("waitlist_length"),
        status: row.get("status"),
        max_people: row.get("max_people"),
        fee_yen: row.get("fee_yen"),
        meeting_place: row.get("meeting_place"),
        description: row.get("description"),
        audience: row.get("audience"),
    }
}

/// Published tours that have not started yet, soonest first (`GET /tours`).
pub async fn upcoming(pool: &PgPool, now: DateTime<Utc>) -> sqlx::Result<Vec<TourSummary>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM tour_catalogue \
         WHERE status = 'published' AND starts_at > $1 ORDER BY starts_at, tour_id"
    );
    let rows = sqlx::query(&sql).bind(now).fetch_all(pool).await?;
    Ok(rows.iter().map(summary).collect())
}

/// Tours the public may know of that have not started yet, cancelled ones included
/// so that an API client learns of a cancellation (`GET /api/v1/tours`).
pub async fn public_list(pool: &PgPool, now: DateTime<Utc>) -> sqlx::Result<Vec<TourSummary>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM tour_catalogue \
         WHERE status IN ('published', 'cancelled') AND starts_at > $1 ORDER BY starts_at, tour_id"
    );
    let rows = sqlx::query(&sql).bind(now).fetch_all(pool).await?;
    Ok(rows.iter().map(summary).collect())
}
