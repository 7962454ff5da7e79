//! What the list asks for: the filters read from the query string, the search
//! text read by its shape (a 連番, an address, a phone number, a name or its kana),
//! and the keyset cursor.

use super::*;

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
            if super::super::parse_stage(phase).is_some()
                || matches!(phase, "open" | "closed" | "merged")
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

pub(super) fn next_month(y: i32, m: u32) -> (i32, u32) {
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
