//! The desk's persons (`desk.persons`): each person's current contact details for
//! lists and search, and their flags (利用停止, 配信停止, 不達, 削除済み).
//!
//! The details are those of the latest submission (an inquiry, an order-made tour
//! request, a tour sign-up) or correction (訂正), whichever came later in the log; a
//! submission that lacks a field (a sign-up has no postal code) leaves the earlier
//! value. The projection opens events through the [`Store`], keeps only what the
//! pages need, and scrubs every personal column when it reads `PersonErased`. A
//! rebuild gives the same scrubbed row, because an erased person's events open to
//! `null`.
//!
//! Search runs on keys normalised the same way on both sides ([`keys`]) through a
//! GIN index on their one- and two-character pieces ([`search_grams`]): substring
//! search that works for Japanese, which pg_trgm does not in a C-locale database.

use std::collections::{BTreeSet, HashMap};

use anyhow::Context;
use chrono::{DateTime, Utc};
use kujira_domain::inquiry::ConsultationEvent;
use kujira_domain::person::PersonEvent;
use kujira_domain::tour::TourEvent;
use kujira_eventlog::RecordedEvent;
use kujira_store::Store;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

mod keys;
pub use keys::{
    Keys, email_key, grams, is_katakana, kana_key, name_key, phone_key, query_grams, search_grams,
};

/// The event types the projection reads.
pub const EVENT_TYPES: &[&str] = &[
    "InquirySubmitted",
    "TourRequestSubmitted",
    "TourSignUpReceived",
    "PersonDetailsCorrected",
    "PersonErased",
    "PersonSuspended",
    "PersonSuspensionLifted",
    "MailOptedOut",
    "MailOptedIn",
    "AddressBounced",
    "BounceCleared",
    "CaseMerged",
    "CaseMergeUndone",
];

/// Keeps `desk_persons` and `desk_person_links`.
#[derive(Debug, Clone)]
pub struct PersonsProjection {
    store: Store,
}

impl PersonsProjection {
    pub const NAME: &'static str = "desk.persons";

    /// Holds the personal store: it opens the submissions' personal parts.
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

/// A person's row as the projection folds it.
#[derive(Debug, Clone, Default)]
struct PersonRow {
    person_id: Uuid,
    name: Option<String>,
    name_kana: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    postal_code: Option<String>,
    address: Option<String>,
    details_at: Option<DateTime<Utc>>,
    first_seen_at: Option<DateTime<Utc>>,
    suspended: bool,
    opted_out: bool,
    bouncing: bool,
    erased: bool,
    erased_at: Option<DateTime<Utc>>,
}

impl PersonRow {
    fn from_row(r: &PgRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            person_id: r.try_get("person_id")?,
            name: r.try_get("name")?,
            name_kana: r.try_get("name_kana")?,
            email: r.try_get("email")?,
            phone: r.try_get("phone")?,
            postal_code: r.try_get("postal_code")?,
            address: r.try_get("address")?,
            details_at: r.try_get("details_at")?,
            first_seen_at: r.try_get("first_seen_at")?,
            suspended: r.try_get("suspended")?,
            opted_out: r.try_get("opted_out")?,
            bouncing: r.try_get("bouncing")?,
            erased: r.try_get("erased")?,
            erased_at: r.try_get("erased_at")?,
        })
    }

    fn seen(&mut self, at: DateTime<Utc>) {
        if self.first_seen_at.is_none_or(|t| at < t) {
            self.first_seen_at = Some(at);
        }
    }

    fn keys(&self) -> Keys {
        Keys {
            name: self.name.as_deref().map(name_key),
            kana: self.name_kana.as_deref().map(kana_key),
            email: self.email.as_deref().map(email_key),
            phone: self.phone.as_deref().map(phone_key),
        }
    }

    /// New details: `Some` fields replace, `None` fields keep what was there,
    /// unless `all` (a correction gives the whole set).
    #[allow(clippy::too_many_arguments)]
    fn details(
        &mut self,
        at: DateTime<Utc>,
        all: bool,
        name: String,
        kana: String,
        email: String,
        phone: Option<String>,
        postal_code: Option<String>,
        address: Option<String>,
    ) {
        if self.erased {
            return;
        }
        self.name = Some(name);
        self.name_kana = Some(kana);
        self.email = Some(email);
        if all || phone.is_some() {
            self.phone = phone;
        }
        if all || postal_code.is_some() {
            self.postal_code = postal_code;
        }
        if all || address.is_some() {
            self.address = address;
        }
        self.details_at = Some(at);
    }

    fn scrub(&mut self, at: DateTime<Utc>) {
        self.name = None;
        self.name_kana = None;
        self.email = None;
        self.phone = None;
        self.postal_code = None;
        self.address = None;
        self.details_at = None;
        self.erased = true;
        self.erased_at.get_or_insert(at);
    }
}

/// A change to one person's row.
type Apply = Box<dyn FnOnce(&mut PersonRow) + Send>;

/// What one event does to persons.
enum Change {
    Row(Uuid, DateTime<Utc>, Apply),
    Link {
        case_id: Uuid,
        into_person: Uuid,
        at: DateTime<Utc>,
    },
    Unlink(Uuid),
}

fn decode_error(event: &RecordedEvent, e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!(
        "cannot read {} at position {}: {e}",
        event.event_type,
        event.position
    )
}

fn change_of(event: &RecordedEvent) -> anyhow::Result<Option<Change>> {
    let t = event.event_type.as_str();
    if matches!(t, "InquirySubmitted" | "TourRequestSubmitted") {
        let e: ConsultationEvent = event.decode().map_err(|e| decode_error(event, e))?;
        return Ok(match e {
            ConsultationEvent::InquirySubmitted(s) => {
                let at = s.opening.submitted_at;
                let p = s.inquiry.personal.into_known();
                Some(Change::Row(
                    s.opening.person_id,
                    at,
                    Box::new(move |row| {
                        if let Some(p) = p {
                            row.details(
                                at,
                                false,
                                p.name.to_string(),
                                p.name_kana.to_string(),
                                p.email.to_string(),
                                p.phone.map(|x| x.to_string()),
                                p.postal_code.map(|x| x.digits().to_owned()),
                                p.city.map(|x| x.to_string()),
                            );
                        }
                    }),
                ))
            }
            ConsultationEvent::TourRequestSubmitted(s) => {
                let at = s.opening.submitted_at;
                let p = s.request.personal.into_known();
                Some(Change::Row(
                    s.opening.person_id,
                    at,
                    Box::new(move |row| {
                        if let Some(p) = p {
                            row.details(
                                at,
                                false,
                                p.name.to_string(),
                                p.name_kana.to_string(),
                                p.email.to_string(),
                                Some(p.phone.to_string()),
                                None,
                                None,
                            );
                        }
                    }),
                ))
            }
            _ => None,
        });
    }
    if t == "TourSignUpReceived" {
        let e: TourEvent = event.decode().map_err(|e| decode_error(event, e))?;
        let TourEvent::TourSignUpReceived(s) = e else {
            return Ok(None);
        };
        let at = s.at;
        let p = s.personal.into_known();
        return Ok(Some(Change::Row(
            s.person_id,
            at,
            Box::new(move |row| {
                if let Some(p) = p {
                    row.details(
                        at,
                        false,
                        p.name.to_string(),
                        p.name_kana.to_string(),
                        p.email.to_string(),
                        Some(p.phone.to_string()),
                        None,
                        None,
                    );
                }
            }),
        )));
    }
    if t == "CaseMerged" || t == "CaseMergeUndone" {
        let e: ConsultationEvent =
            kujira_store::decode_without_personal(event).map_err(|e| decode_error(event, e))?;
        return Ok(match e {
            ConsultationEvent::CaseMerged(m) => Some(Change::Link {
                case_id: m.case_id,
                into_person: m.into_person,
                at: m.at,
            }),
            ConsultationEvent::CaseMergeUndone(u) => Some(Change::Unlink(u.case_id)),
            _ => None,
        });
    }
    if !PersonEvent::TYPES.contains(&t) {
        return Ok(None);
    }
    let e: PersonEvent = event.decode().map_err(|e| decode_error(event, e))?;
    let person_id = e.person_id();
    let (at, apply): (DateTime<Utc>, Apply) = match e {
        PersonEvent::PersonDetailsCorrected(c) => {
            let at = c.at;
            let d = c.personal.into_known();
            (
                at,
                Box::new(move |row| {
                    if let Some(d) = d {
                        row.details(
                            at,
                            true,
                            d.name.to_string(),
                            d.name_kana.to_string(),
                            d.email.to_string(),
                            d.phone.map(|x| x.to_string()),
                            d.postal_code.map(|x| x.digits().to_owned()),
                            d.address.map(|x| x.to_string()),
                        );
                    }
                }),
            )
        }
        PersonEvent::PersonErased(e) => (e.at, Box::new(move |row| row.scrub(e.at))),
        PersonEvent::PersonSuspended(e) => (e.at, Box::new(|row| row.suspended = true)),
        PersonEvent::PersonSuspensionLifted(e) => (e.at, Box::new(|row| row.suspended = false)),
        PersonEvent::MailOptedOut(e) => (e.at, Box::new(|row| row.opted_out = true)),
        PersonEvent::MailOptedIn(e) => (e.at, Box::new(|row| row.opted_out = false)),
        PersonEvent::AddressBounced(e) => (e.at, Box::new(|row| row.bouncing = true)),
        PersonEvent::BounceCleared(e) => (e.at, Box::new(|row| row.bouncing = false)),
    };
    Ok(Some(Change::Row(person_id, at, apply)))
}

fn needs_opening(event: &RecordedEvent) -> bool {
    matches!(
        event.event_type.as_str(),
        "InquirySubmitted"
            | "TourRequestSubmitted"
            | "TourSignUpReceived"
            | "PersonDetailsCorrected"
    )
}

impl PersonsProjection {
    async fn apply_all(
        &self,
        tx: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> anyhow::Result<()> {
        // Open only what holds the details; the flags need no decryption.
        let opened = self
            .store
            .open_where(events, needs_opening)
            .await
            .context("cannot open the personal parts of a batch")?;

        let mut changes = Vec::with_capacity(opened.len());
        let mut ids = Vec::new();
        for e in &opened {
            if let Some(c) = change_of(e)? {
                if let Change::Row(p, ..) = &c {
                    ids.push(*p);
                }
                changes.push(c);
            }
        }
        ids.sort_unstable();
        ids.dedup();
        let mut rows: HashMap<Uuid, PersonRow> = HashMap::with_capacity(ids.len());
        if !ids.is_empty() {
            let found = sqlx::query("SELECT * FROM desk_persons WHERE person_id = ANY($1)")
                .bind(&ids)
                .fetch_all(&mut *tx)
                .await
                .context("cannot read desk_persons")?;
            for r in &found {
                let row = PersonRow::from_row(r)?;
                rows.insert(row.person_id, row);
            }
        }
        let mut touched = BTreeSet::new();
        for change in changes {
            match change {
                Change::Row(person_id, at, apply) => {
                    let row = rows.entry(person_id).or_insert_with(|| PersonRow {
                        person_id,
                        ..PersonRow::default()
                    });
                    row.seen(at);
                    apply(row);
                    touched.insert(person_id);
                }
                Change::Link {
                    case_id,
                    into_person,
                    at,
                } => {
                    // The merged case's person: plaintext in its opening event.
                    let person: Option<String> = sqlx::query_scalar(
                        "SELECT data->>'person_id' FROM events \
                         WHERE stream_name = $1 AND stream_version = 1",
                    )
                    .bind(format!("consultation-{case_id}"))
                    .fetch_optional(&mut *tx)
                    .await?;
                    let person_id = person
                        .and_then(|p| Uuid::parse_str(&p).ok())
                        .with_context(|| format!("case {case_id} has no opening with a person"))?;
                    sqlx::query(
                        "INSERT INTO desk_person_links (case_id, person_id, into_person, linked_at) \
                         VALUES ($1, $2, $3, $4) ON CONFLICT (case_id) DO UPDATE \
                         SET person_id = EXCLUDED.person_id, into_person = EXCLUDED.into_person, \
                             linked_at = EXCLUDED.linked_at",
                    )
                    .bind(case_id)
                    .bind(person_id)
                    .bind(into_person)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
                }
                Change::Unlink(case_id) => {
                    sqlx::query("DELETE FROM desk_person_links WHERE case_id = $1")
                        .bind(case_id)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        write(tx, touched.iter().filter_map(|p| rows.get(p))).await
    }
}

/// Writes the rows in one statement.
async fn write<'a>(
    tx: &mut PgConnection,
    rows: impl Iterator<Item = &'a PersonRow>,
) -> anyhow::Result<()> {
    let mut c = Columns::default();
    for r in rows {
        let keys = r.keys();
        c.person_id.push(r.person_id);
        c.name.push(r.name.clone());
        c.name_kana.push(r.name_kana.clone());
        c.email.push(r.email.clone());
        c.phone.push(r.phone.clone());
        c.postal_code.push(r.postal_code.clone());
        c.address.push(r.address.clone());
        c.grams.push(search_grams(&keys).join("\u{1f}"));
        c.name_key.push(keys.name);
        c.kana_key.push(keys.kana);
        c.email_key.push(keys.email);
        c.phone_key.push(keys.phone);
        c.details_at.push(r.details_at);
        c.first_seen_at
            .push(r.first_seen_at.unwrap_or(DateTime::UNIX_EPOCH));
        c.suspended.push(r.suspended);
        c.opted_out.push(r.opted_out);
        c.bouncing.push(r.bouncing);
        c.erased.push(r.erased);
        c.erased_at.push(r.erased_at);
    }
    if c.person_id.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO desk_persons (person_id, name, name_kana, email, phone, postal_code, address, \
           name_key, kana_key, email_key, phone_key, search_grams, details_at, first_seen_at, \
           suspended, opted_out, bouncing, erased, erased_at) \
         SELECT u.person_id, u.name, u.name_kana, u.email, u.phone, u.postal_code, u.address, \
           u.name_key, u.kana_key, u.email_key, u.phone_key, \
           CASE WHEN u.grams = '' THEN '{}'::text[] ELSE string_to_array(u.grams, chr(31)) END, \
           u.details_at, u.first_seen_at, u.suspended, u.opted_out, u.bouncing, u.erased, u.erased_at \
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
           $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], \
           $13::timestamptz[], $14::timestamptz[], $15::bool[], $16::bool[], $17::bool[], \
           $18::bool[], $19::timestamptz[]) \
           AS u(person_id, name, name_kana, email, phone, postal_code, address, name_key, \
                kana_key, email_key, phone_key, grams, details_at, first_seen_at, suspended, \
                opted_out, bouncing, erased, erased_at) \
         ON CONFLICT (person_id) DO UPDATE SET name = EXCLUDED.name, \
           name_kana = EXCLUDED.name_kana, email = EXCLUDED.email, phone = EXCLUDED.phone, \
           postal_code = EXCLUDED.postal_code, address = EXCLUDED.address, \
           name_key = EXCLUDED.name_key, kana_key = EXCLUDED.kana_key, \
           email_key = EXCLUDED.email_key, phone_key = EXCLUDED.phone_key, \
           search_grams = EXCLUDED.search_grams, details_at = EXCLUDED.details_at, \
           first_seen_at = EXCLUDED.first_seen_at, suspended = EXCLUDED.suspended, \
           opted_out = EXCLUDED.opted_out, bouncing = EXCLUDED.bouncing, \
           erased = EXCLUDED.erased, erased_at = EXCLUDED.erased_at",
    )
    .bind(&c.person_id)
    .bind(&c.name)
    .bind(&c.name_kana)
    .bind(&c.email)
    .bind(&c.phone)
    .bind(&c.postal_code)
    .bind(&c.address)
    .bind(&c.name_key)
    .bind(&c.kana_key)
    .bind(&c.email_key)
    .bind(&c.phone_key)
    .bind(&c.grams)
    .bind(&c.details_at)
    .bind(&c.first_seen_at)
    .bind(&c.suspended)
    .bind(&c.opted_out)
    .bind(&c.bouncing)
    .bind(&c.erased)
    .bind(&c.erased_at)
    .execute(&mut *tx)
    .await
    .context("cannot write desk_persons")?;
    Ok(())
}

#[derive(Default)]
struct Columns {
    person_id: Vec<Uuid>,
    name: Vec<Option<String>>,
    name_kana: Vec<Option<String>>,
    email: Vec<Option<String>>,
    phone: Vec<Option<String>>,
    postal_code: Vec<Option<String>>,
    address: Vec<Option<String>>,
    name_key: Vec<Option<String>>,
    kana_key: Vec<Option<String>>,
    email_key: Vec<Option<String>>,
    phone_key: Vec<Option<String>>,
    grams: Vec<String>,
    details_at: Vec<Option<DateTime<Utc>>>,
    first_seen_at: Vec<DateTime<Utc>>,
    suspended: Vec<bool>,
    opted_out: Vec<bool>,
    bouncing: Vec<bool>,
    erased: Vec<bool>,
    erased_at: Vec<Option<DateTime<Utc>>>,
}

#[async_trait::async_trait]
impl kujira_projector::Projection for PersonsProjection {
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

    /// Derived from the log alone (erased persons' events open to null): rebuildable.
    fn rebuild(&self) -> kujira_projector::Rebuild {
        kujira_projector::Rebuild::Tables {
            tables: &["desk_persons", "desk_person_links"],
            ddl: include_str!("../../migrations/20261201004100_desk_persons.sql"),
        }
    }
}

/// A person as the desk's pages show them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonView {
    pub person_id: Uuid,
    pub name: Option<String>,
    pub name_kana: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub postal_code: Option<String>,
    pub address: Option<String>,
    pub suspended: bool,
    pub opted_out: bool,
    pub bouncing: bool,
    pub erased: bool,
}

impl PersonView {
    pub(crate) fn from_row(r: &PgRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            person_id: r.try_get("person_id")?,
            name: r.try_get("name")?,
            name_kana: r.try_get("name_kana")?,
            email: r.try_get("email")?,
            phone: r.try_get("phone")?,
            postal_code: r.try_get("postal_code")?,
            address: r.try_get("address")?,
            suspended: r.try_get("suspended")?,
            opted_out: r.try_get("opted_out")?,
            bouncing: r.try_get("bouncing")?,
            erased: r.try_get("erased")?,
        })
    }
}

/// The person's row, if the projection has seen them.
pub async fn find(pool: &sqlx::PgPool, person_id: Uuid) -> Result<Option<PersonView>, sqlx::Error> {
    let row = sqlx::query("SELECT * FROM desk_persons WHERE person_id = $1")
        .bind(person_id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(PersonView::from_row).transpose()
}

/// The persons joined with `person_id` by desk merges, either way.
pub async fn linked(pool: &sqlx::PgPool, person_id: Uuid) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT DISTINCT p FROM ( \
           SELECT into_person AS p FROM desk_person_links WHERE person_id = $1 \
           UNION SELECT person_id FROM desk_person_links WHERE into_person = $1) x \
         WHERE p <> $1",
    )
    .bind(person_id)
    .fetch_all(pool)
    .await
}
