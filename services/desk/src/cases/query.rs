//! Reading `desk_cases` (with `desk_persons` and `staff_users`): the list's
//! filters, search and keyset paging, the board's counts, and the export.

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use kujira_domain::values::{Segment, Source};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Postgres, QueryBuilder, Row};
use uuid::Uuid;

use crate::form::FormErrors;
use crate::persons;

/// Rows per page of the list.
pub const PAGE_SIZE: i64 = 50;
/// At most this many persons match one search; more asks for a narrower search.
pub const SEARCH_PERSONS_MAX: i64 = 2000;

/// Which cases the list shows (from the query string).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    /// A phase, `closed`, `merged`, or `open` (every case not closed or merged).
    pub phase: Option<String>,
    pub segment: Option<String>,
    /// A staff user, or `None` with `unassigned`.
    pub concierge: Option<Uuid>,
    pub unassigned: bool,
    /// The month opened (city time).
    pub month: Option<(i32, u32)>,
    /// きっかけ.
    pub source: Option<String>,
    /// 受付経路: `web`, `window` (窓口) or `event` (イベント).
    pub intake: Option<String>,
    /// Past the next-action date.
    pub overdue: bool,
    /// New cases with no contact logged past their first-contact due date.
    pub no_contact: bool,
    /// The search text as typed.
    pub q: String,
}

/// The raw query string values, kept to fill the filter form again.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct FilterParams {
    #[serde(default)]
    pub phase: String,
    #[serde(default)]
    pub segment: String,
    #[serde(default)]
    pub concierge: String,
    #[serde(default)]
    pub month: String,
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub intake: String,
    #[serde(default)]
    pub overdue: String,
    #[serde(default)]
    pub no_contact: String,
    #[serde(default)]
    pub q: String,
    #[serde(default)]
    pub after: String,
    #[serde(default)]
    pub before: String,
}

impl FilterParams {
    /// The filters, or the errors of the fields at fault.
    pub fn parse(&self) -> Result<Filters, FormErrors> {
        let mut e = FormErrors::new();
        let mut f = Filters {
            q: self.q.trim().chars().take(100).collect(),
            overdue: matches!(self.overdue.as_str(), "1" | "on" | "true"),
            no_contact: matches!(self.no_contact.as_str(), "1" | "on" | "true"),
            ..Filters::default()
        };
        let phase = self.phase.trim();
        if !phase.is_empty() {
            if super::parse_stage(phase).is_some() || matches!(phase, "open" | "closed" | "merged")
            {
                f.phase = Some(phase.to_owned());
            } else {
                e.add("phase", "ステータスを一覧から選んでください。");
            }
        }
        let segment = self.segment.trim();
        if !segment.is_empty() {
            match Segment::parse(segment) {
                Ok(s) => f.segment = Some(s.as_str().to_owned()),
                Err(_) => e.add("segment", "セグメントを一覧から選んでください。"),
            }
        }
        let concierge = self.concierge.trim();
        if concierge == "none" {
            f.unassigned = true;
        } else if !concierge.is_empty() {
            match Uuid::parse_str(concierge) {
                Ok(id) => f.concierge = Some(id),
                Err(_) => e.add("concierge", "担当者を一覧から選んでください。"),
            }
        }
        let month = self.month.trim();
        if !month.is_empty() {
            match parse_month(month) {
                Some(m) => f.month = Some(m),
                None => e.add(
                    "month",
                    "対応年月は「2026-12」の形（年-月）で入力してください。",
                ),
            }
        }
        let source = self.source.trim();
        if !source.is_empty() {
            match Source::parse(source) {
                Ok(s) => f.source = Some(s.as_str().to_owned()),
                Err(_) => e.add("source", "きっかけを一覧から選んでください。"),
            }
        }
        let intake = self.intake.trim();
        if !intake.is_empty() {
            if matches!(intake, "web" | "window" | "event") {
                f.intake = Some(intake.to_owned());
            } else {
                e.add("intake", "受付経路を一覧から選んでください。");
            }
        }
        if e.is_empty() { Ok(f) } else { Err(e) }
    }

    /// The query string of these filters (without the paging cursor).
    pub fn query_string(&self) -> String {
        let pairs: Vec<(&str, &str)> = [
            ("phase", self.phase.as_str()),
            ("segment", self.segment.as_str()),
            ("concierge", self.concierge.as_str()),
            ("month", self.month.as_str()),
            ("source", self.source.as_str()),
            ("intake", self.intake.as_str()),
            ("overdue", self.overdue.as_str()),
            ("no_contact", self.no_contact.as_str()),
            ("q", self.q.as_str()),
        ]
        .into_iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .collect();
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    }
}

fn parse_month(s: &str) -> Option<(i32, u32)> {
    let s = s.replace('/', "-");
    let (y, m) = s.split_once('-')?;
    let y: i32 = y.trim().parse().ok()?;
    let m: u32 = m.trim().parse().ok()?;
    ((2000..=2100).contains(&y) && (1..=12).contains(&m)).then_some((y, m))
}

/// The first instant of a local month, in UTC.
pub fn month_start(tz: Tz, y: i32, m: u32) -> DateTime<Utc> {
    let d = NaiveDate::from_ymd_opt(y, m, 1).unwrap_or_default();
    tz.from_local_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default())
        .earliest()
        .map_or_else(
            || d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc(),
            |t| t.to_utc(),
        )
}

fn next_month(y: i32, m: u32) -> (i32, u32) {
    if m == 12 { (y + 1, 1) } else { (y, m + 1) }
}

/// How a search text is read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Search {
    /// A 連番 prefix (digits and hyphens).
    pub reference: Option<String>,
    pub name: Option<String>,
    pub kana: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
}

impl Search {
    /// Reads `q`: an address with `@` is searched as e-mail; digits and hyphens as a
    /// phone number or a 連番; anything else as a name, a reading (when it is kana,
    /// either form) or a part of an e-mail address.
    pub fn read(q: &str) -> Self {
        let q = q.trim();
        let mut s = Self::default();
        if q.is_empty() {
            return s;
        }
        let nfkc = persons::name_key(q);
        let numeric = nfkc
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '-' | '(' | ')' | '+'));
        if numeric {
            let digits = persons::phone_key(q);
            if nfkc.chars().all(|c| c.is_ascii_digit() || c == '-') {
                s.reference = Some(nfkc.clone());
            }
            if digits.len() >= 2 {
                s.phone = Some(digits);
            }
            return s;
        }
        if nfkc.contains('@') {
            s.email = Some(persons::email_key(q));
            return s;
        }
        s.name = Some(nfkc.clone());
        let kana = persons::kana_key(q);
        if persons::is_katakana(&kana) {
            s.kana = Some(kana);
        }
        if nfkc.is_ascii() && nfkc.chars().count() >= 2 {
            s.email = Some(persons::email_key(q));
        }
        s
    }

    /// Whether it searches personal fields (everything but the 連番).
    pub fn is_personal(&self) -> bool {
        self.name.is_some() || self.kana.is_some() || self.email.is_some() || self.phone.is_some()
    }

    pub fn is_empty(&self) -> bool {
        self.reference.is_none() && !self.is_personal()
    }

    /// Which fields it searches, for the audit trail (never the text).
    pub fn fields(&self) -> String {
        let mut f = Vec::new();
        for (on, name) in [
            (self.reference.is_some(), "reference"),
            (self.name.is_some(), "name"),
            (self.kana.is_some(), "kana"),
            (self.email.is_some(), "email"),
            (self.phone.is_some(), "phone"),
        ] {
            if on {
                f.push(name);
            }
        }
        f.join("+")
    }
}

/// The persons a personal search finds, through the GIN index of their keys'
/// pieces, checked against the keys themselves. `Err` when there are too many.
pub async fn search_persons(
    pool: &PgPool,
    s: &Search,
) -> Result<Result<Vec<Uuid>, usize>, sqlx::Error> {
    if !s.is_personal() {
        return Ok(Ok(Vec::new()));
    }
    let mut qb: QueryBuilder<Postgres> =
        QueryBuilder::new("SELECT person_id FROM desk_persons WHERE NOT erased AND (false");
    for (prefix, column, key) in [
        ('n', "name_key", &s.name),
        ('k', "kana_key", &s.kana),
        ('e', "email_key", &s.email),
        ('p', "phone_key", &s.phone),
    ] {
        let Some(key) = key else { continue };
        let grams = persons::query_grams(prefix, key);
        if grams.is_empty() {
            continue;
        }
        qb.push(" OR (search_grams @> ");
        qb.push_bind(grams);
        qb.push("::text[] AND strpos(");
        qb.push(column);
        qb.push(", ");
        qb.push_bind(key.clone());
        qb.push(") > 0)");
    }
    qb.push(") LIMIT ");
    qb.push_bind(SEARCH_PERSONS_MAX + 1);
    let found: Vec<Uuid> = qb.build_query_scalar().fetch_all(pool).await?;
    if found.len() as i64 > SEARCH_PERSONS_MAX {
        return Ok(Err(found.len()));
    }
    Ok(Ok(found))
}

/// A keyset position in the list's order (newest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub opened_at: DateTime<Utc>,
    pub case_id: Uuid,
}

impl Cursor {
    pub fn encode(&self) -> String {
        format!(
            "{}_{}",
            self.opened_at.timestamp_micros(),
            self.case_id.simple()
        )
    }

    pub fn decode(s: &str) -> Option<Self> {
        let (t, id) = s.trim().split_once('_')?;
        Some(Self {
            opened_at: DateTime::from_timestamp_micros(t.parse().ok()?)?,
            case_id: Uuid::parse_str(id).ok()?,
        })
    }
}

/// Which page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    First,
    After(Cursor),
    Before(Cursor),
}

/// One case as the list, the board and the CSV show it.
#[derive(Debug, Clone)]
pub struct CaseRow {
    pub case_id: Uuid,
    pub reference: String,
    pub person_id: Uuid,
    pub kind: String,
    pub channel: String,
    pub desk_source: Option<String>,
    pub opened_at: DateTime<Utc>,
    pub phase: String,
    pub concierge: Option<Uuid>,
    pub concierge_name: Option<String>,
    pub next_action: Option<NaiveDate>,
    pub first_contact_due: Option<NaiveDate>,
    pub contacts: i32,
    pub closed_reason: Option<String>,
    pub merged_into: Option<Uuid>,
    pub segment: Option<String>,
    pub prefecture: Option<String>,
    pub age_group: Option<String>,
    pub gender: Option<String>,
    pub topics: Vec<String>,
    pub source: Option<String>,
    pub summary: Option<String>,
    pub name: Option<String>,
    pub name_kana: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub erased: bool,
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
            concierge_name: r.try_get("concierge_name")?,
            next_action: r.try_get("next_action")?,
            first_contact_due: r.try_get("first_contact_due")?,
            contacts: r.try_get("contacts")?,
            closed_reason: r.try_get("closed_reason")?,
            merged_into: r.try_get("merged_into")?,
            segment: r.try_get("segment")?,
            prefecture: r.try_get("prefecture")?,
            age_group: r.try_get("age_group")?,
            gender: r.try_get("gender")?,
            topics: r.try_get("topics")?,
            source: r.try_get("source")?,
            summary: r.try_get("summary")?,
            name: r.try_get("name")?,
            name_kana: r.try_get("name_kana")?,
            email: r.try_get("email")?,
            phone: r.try_get("phone")?,
            erased: r.try_get::<Option<bool>, _>("erased")?.unwrap_or(false),
        })
    }

    pub fn is_open(&self) -> bool {
        self.closed_reason.is_none() && self.merged_into.is_none()
    }

    /// Past its next-action date on `today`.
    pub fn overdue(&self, today: NaiveDate) -> bool {
        self.is_open() && self.next_action.is_some_and(|d| d < today)
    }

    /// Still awaiting its first contact after the due date.
    pub fn awaiting_contact(&self, today: NaiveDate) -> bool {
        self.is_open() && self.contacts == 0 && self.first_contact_due.is_some_and(|d| d < today)
    }

    pub fn cursor(&self) -> Cursor {
        Cursor {
            opened_at: self.opened_at,
            case_id: self.case_id,
        }
    }
}

const SELECT: &str = "SELECT c.case_id, c.reference, c.person_id, c.kind, c.channel, \
     c.desk_source, c.opened_at, c.phase, c.concierge, u.display_name AS concierge_name, \
     c.next_action, c.first_contact_due, c.contacts, c.closed_reason, c.merged_into, \
     c.segment, c.prefecture, c.age_group, c.gender, c.topics, c.source, c.summary, \
     p.name, p.name_kana, p.email, p.phone, p.erased \
     FROM desk_cases c \
     LEFT JOIN desk_persons p ON p.person_id = c.person_id \
     LEFT JOIN staff_users u ON u.user_id = c.concierge \
     WHERE true";

const OPEN: &str = " AND c.closed_at IS NULL AND c.merged_into IS NULL";

fn push_filters(
    qb: &mut QueryBuilder<'_, Postgres>,
    f: &Filters,
    tz: Tz,
    today: NaiveDate,
    found: Option<(&Option<String>, &[Uuid])>,
) {
    match f.phase.as_deref() {
        Some("open") => {
            qb.push(OPEN);
        }
        Some("closed") => {
            qb.push(" AND c.closed_at IS NOT NULL AND c.merged_into IS NULL");
        }
        Some("merged") => {
            qb.push(" AND c.merged_into IS NOT NULL");
        }
        Some(p) => {
            qb.push(OPEN);
            qb.push(" AND c.phase = ").push_bind(p.to_owned());
        }
        None => {}
    }
    if let Some(s) = &f.segment {
        qb.push(" AND c.segment = ").push_bind(s.clone());
    }
    if let Some(c) = f.concierge {
        qb.push(" AND c.concierge = ").push_bind(c);
    }
    if f.unassigned {
        qb.push(" AND c.concierge IS NULL");
    }
    if let Some((y, m)) = f.month {
        let (ny, nm) = next_month(y, m);
        qb.push(" AND c.opened_at >= ")
            .push_bind(month_start(tz, y, m))
            .push(" AND c.opened_at < ")
            .push_bind(month_start(tz, ny, nm));
    }
    if let Some(s) = &f.source {
        qb.push(" AND c.source = ").push_bind(s.clone());
    }
    match f.intake.as_deref() {
        Some("web") => {
            qb.push(" AND c.channel <> 'desk'");
        }
        Some("event") => {
            qb.push(" AND c.channel = 'desk' AND c.desk_source = 'fair'");
        }
        Some("window") => {
            qb.push(" AND c.channel = 'desk' AND c.desk_source IS DISTINCT FROM 'fair'");
        }
        _ => {}
    }
    if f.overdue {
        qb.push(OPEN);
        qb.push(" AND c.next_action < ").push_bind(today);
    }
    if f.no_contact {
        qb.push(OPEN);
        qb.push(" AND c.contacts = 0 AND c.first_contact_due < ")
            .push_bind(today);
    }
    if let Some((reference, persons)) = found {
        qb.push(" AND (false");
        if let Some(r) = reference {
            let escaped = r
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            qb.push(" OR c.reference LIKE ")
                .push_bind(format!("{escaped}%"))
                .push(" ESCAPE '\\'");
        }
        if !persons.is_empty() {
            qb.push(" OR c.person_id = ANY(")
                .push_bind(persons.to_vec())
                .push(")");
        }
        qb.push(")");
    }
}

/// What the list found.
#[derive(Debug, Clone)]
pub struct Listed {
    pub rows: Vec<CaseRow>,
    /// The cursor of the next (older) page, if there is one.
    pub next: Option<Cursor>,
    /// The cursor of the previous (newer) page, if there is one.
    pub prev: Option<Cursor>,
}

/// One page of the list. `search` holds the search's reference prefix and the
/// persons it found (`None` without a search).
pub async fn list(
    pool: &PgPool,
    f: &Filters,
    tz: Tz,
    today: NaiveDate,
    search: Option<(&Option<String>, &[Uuid])>,
    page: Page,
) -> Result<Listed, sqlx::Error> {
    let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(SELECT);
    push_filters(&mut qb, f, tz, today, search);
    let backwards = matches!(page, Page::Before(_));
    match page {
        Page::First => {}
        Page::After(c) => {
            qb.push(" AND (c.opened_at, c.case_id) < (")
                .push_bind(c.opened_at)
                .push(", ")
                .push_bind(c.case_id)
                .push(")");
        }
        Page::Before(c) => {
            qb.push(" AND (c.opened_at, c.case_id) > (")
                .push_bind(c.opened_at)
                .push(", ")
                .push_bind(c.case_id)
                .push(")");
        }
    }
    if backwards {
        qb.push(" ORDER BY c.opened_at ASC, c.case_id ASC");
    } else {
        qb.push(" ORDER BY c.opened_at DESC, c.case_id DESC");
    }
    qb.push(" LIMIT ").push_bind(PAGE_SIZE + 1);
    let fetched = qb.build().fetch_all(pool).await?;
    let mut rows = fetched
        .iter()
        .map(CaseRow::from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let more = rows.len() as i64 > PAGE_SIZE;
    rows.truncate(PAGE_SIZE as usize);
    if backwards {
        rows.reverse();
    }
    let (next, prev) = match page {
        Page::First => (
            more.then(|| rows.last().map(CaseRow::cursor)).flatten(),
            None,
        ),
        Page::After(_) => (
            more.then(|| rows.last().map(CaseRow::cursor)).flatten(),
            rows.first().map(CaseRow::cursor),
        ),
        Page::Before(_) => (
            rows.last().map(CaseRow::cursor),
            more.then(|| rows.first().map(CaseRow::cursor)).flatten(),
        ),
    };
    Ok(Listed { rows, next, prev })
}

/// Every case the filters select, newest first (the export).
pub async fn all(
    pool: &PgPool,
    f: &Filters,
    tz: Tz,
    today: NaiveDate,
    search: Option<(&Option<String>, &[Uuid])>,
) -> Result<Vec<CaseRow>, sqlx::Error> {
    let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(SELECT);
    push_filters(&mut qb, f, tz, today, search);
    qb.push(" ORDER BY c.opened_at DESC, c.case_id DESC");
    let fetched = qb.build().fetch_all(pool).await?;
    fetched.iter().map(CaseRow::from_row).collect()
}

/// One case's row, if the projection has it.
pub async fn one(pool: &PgPool, case_id: Uuid) -> Result<Option<CaseRow>, sqlx::Error> {
    let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(SELECT);
    qb.push(" AND c.case_id = ").push_bind(case_id);
    let row = qb.build().fetch_optional(pool).await?;
    row.as_ref().map(CaseRow::from_row).transpose()
}

/// The case with this 連番.
pub async fn by_reference(pool: &PgPool, reference: &str) -> Result<Option<CaseRow>, sqlx::Error> {
    let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(SELECT);
    qb.push(" AND c.reference = ")
        .push_bind(reference.to_owned());
    let row = qb.build().fetch_optional(pool).await?;
    row.as_ref().map(CaseRow::from_row).transpose()
}

/// Every case of these persons, newest first.
pub async fn of_persons(pool: &PgPool, persons: &[Uuid]) -> Result<Vec<CaseRow>, sqlx::Error> {
    let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(SELECT);
    qb.push(" AND c.person_id = ANY(")
        .push_bind(persons.to_vec())
        .push(") ORDER BY c.opened_at DESC");
    let rows = qb.build().fetch_all(pool).await?;
    rows.iter().map(CaseRow::from_row).collect()
}

/// The cases merged into `case_id`.
pub async fn merged_into(pool: &PgPool, case_id: Uuid) -> Result<Vec<CaseRow>, sqlx::Error> {
    let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(SELECT);
    qb.push(" AND c.merged_into = ")
        .push_bind(case_id)
        .push(" ORDER BY c.opened_at");
    let rows = qb.build().fetch_all(pool).await?;
    rows.iter().map(CaseRow::from_row).collect()
}

/// The board's figures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Open cases per phase, in [`super::PHASES`] order.
    pub phases: [i64; 4],
    pub closed: i64,
    pub overdue: i64,
    pub awaiting_contact: i64,
}

/// Read from the counters `desk.cases` keeps (`desk_case_counts`), not by counting
/// the cases: a few hundred rows to sum whatever the number of cases.
pub async fn counts(pool: &PgPool, today: NaiveDate) -> Result<Counts, sqlx::Error> {
    let row = sqlx::query(
        "SELECT \
           coalesce(sum(n) FILTER (WHERE counter = 'gathering'), 0)::int8 AS gathering, \
           coalesce(sum(n) FILTER (WHERE counter = 'considering'), 0)::int8 AS considering, \
           coalesce(sum(n) FILTER (WHERE counter = 'decided'), 0)::int8 AS decided, \
           coalesce(sum(n) FILTER (WHERE counter = 'moved'), 0)::int8 AS moved, \
           coalesce(sum(n) FILTER (WHERE counter = 'closed'), 0)::int8 AS closed, \
           coalesce(sum(n) FILTER (WHERE counter = 'next_action' AND day < $1), 0)::int8 AS overdue, \
           coalesce(sum(n) FILTER (WHERE counter = 'first_contact' AND day < $1), 0)::int8 AS awaiting \
         FROM desk_case_counts",
    )
    .bind(today)
    .fetch_one(pool)
    .await?;
    Ok(Counts {
        phases: [
            row.try_get("gathering")?,
            row.try_get("considering")?,
            row.try_get("decided")?,
            row.try_get("moved")?,
        ],
        closed: row.try_get("closed")?,
        overdue: row.try_get("overdue")?,
        awaiting_contact: row.try_get("awaiting")?,
    })
}

/// The flagged cases the board lists: the most urgent first, at most `limit`.
pub async fn flagged(
    pool: &PgPool,
    today: NaiveDate,
    overdue: bool,
    limit: i64,
) -> Result<Vec<CaseRow>, sqlx::Error> {
    let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(SELECT);
    qb.push(OPEN);
    if overdue {
        qb.push(" AND c.next_action IS NOT NULL AND c.next_action < ")
            .push_bind(today)
            .push(" ORDER BY c.next_action, c.opened_at");
    } else {
        qb.push(
            " AND c.contacts = 0 AND c.first_contact_due IS NOT NULL AND c.first_contact_due < ",
        )
        .push_bind(today)
        .push(" ORDER BY c.first_contact_due, c.opened_at");
    }
    qb.push(" LIMIT ").push_bind(limit);
    let rows = qb.build().fetch_all(pool).await?;
    rows.iter().map(CaseRow::from_row).collect()
}

/// Staff who can be in charge of cases (admins and concierges), active, by name.
pub async fn concierges(pool: &PgPool) -> Result<Vec<(Uuid, String)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT user_id, display_name FROM staff_users \
         WHERE NOT disabled AND role IN ('admin', 'concierge') ORDER BY display_name, email",
    )
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("user_id")?, r.try_get("display_name")?)))
        .collect()
}

/// Today in the city.
pub fn today(now: DateTime<Utc>, tz: Tz) -> NaiveDate {
    now.with_timezone(&tz).date_naive()
}

/// `2026年12月` of a case's opening, in the city's time zone.
pub fn month_ja(t: DateTime<Utc>, tz: Tz) -> String {
    let l = t.with_timezone(&tz);
    format!("{}年{}月", l.year(), l.month())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_text_is_read_by_its_shape() {
        let s = Search::read("taro@Example.jp");
        assert_eq!(s.email.as_deref(), Some("taro@example.jp"));
        assert!(s.name.is_none() && s.reference.is_none());
        let s = Search::read("2026-0012");
        assert_eq!(s.reference.as_deref(), Some("2026-0012"));
        assert_eq!(s.phone.as_deref(), Some("20260012"));
        let s = Search::read("かしわざき");
        assert_eq!(s.kana.as_deref(), Some("カシワザキ"));
        let s = Search::read("柏崎 太郎");
        assert_eq!(s.name.as_deref(), Some("柏崎太郎"));
        assert!(s.kana.is_none() && s.email.is_none());
        assert!(Search::read("  ").is_empty());
        assert!(!Search::read("2026-0012").fields().contains("name"));
    }

    #[test]
    fn filters_refuse_unknown_values_with_a_message_per_field() {
        let p = FilterParams {
            phase: "nowhere".into(),
            month: "2026-13".into(),
            concierge: "x".into(),
            ..FilterParams::default()
        };
        let e = p.parse().unwrap_err();
        assert!(e.get("phase").is_some() && e.get("month").is_some());
        assert!(e.get("concierge").is_some());
        let ok = FilterParams {
            phase: "considering".into(),
            month: "2026-12".into(),
            overdue: "1".into(),
            ..FilterParams::default()
        }
        .parse()
        .unwrap();
        assert_eq!(ok.month, Some((2026, 12)));
        assert!(ok.overdue);
    }

    #[test]
    fn cursors_round_trip() {
        let c = Cursor {
            opened_at: DateTime::from_timestamp_micros(1_800_000_000_123_456).unwrap(),
            case_id: Uuid::now_v7(),
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        assert_eq!(Cursor::decode("nonsense"), None);
    }
}
