//! The audit trail (APPI; issue 7 "Audit"): every time staff see a person's data
//! (a case page, a list or search result with personal columns, an export with
//! personal columns) and every export, `audit_log` records who, when, and which
//! persons.
//!
//! [`record`] is the one function the desk calls, in the request that shows the
//! data and before the data is sent: when it fails, the page fails, so nothing is
//! shown unrecorded. One row per person, plus one row without a person for an
//! export; the rows of one call share a `request_id`. `detail` must never hold
//! personal data: name the page and the filters, never a search text or a value.
//!
//! Admins read the trail at `/desk/audit` and download it as CSV ([`pages`]).

pub mod pages;
pub mod query;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

/// What staff did that the trail records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    /// Opened a case page (the person's details and timeline).
    ViewCase,
    /// The pipeline board, with names in its flagged lists.
    ViewBoard,
    /// A page of the case list with personal columns.
    ListCases,
    /// A search by a personal field (name, kana, e-mail, phone).
    SearchCases,
    /// `cases.csv` (with personal columns for admins and concierges).
    ExportCases,
    /// A tour's roster page with the parties' personal columns.
    ViewRoster,
    /// A tour's `roster.csv` (with personal columns for admins and concierges).
    ExportRoster,
    /// An admin downloaded everything held about a person (開示, JSON).
    ExportPerson,
    /// An admin erased a person (消去); the erasure record says what was done.
    ErasePerson,
    /// An admin downloaded the audit trail as CSV (it names no one, but every
    /// export is recorded).
    ExportAudit,
}

impl AuditAction {
    /// Every action, in the order the audit page's filter lists them.
    pub const ALL: [AuditAction; 10] = [
        Self::ViewCase,
        Self::ViewBoard,
        Self::ListCases,
        Self::SearchCases,
        Self::ExportCases,
        Self::ViewRoster,
        Self::ExportRoster,
        Self::ExportPerson,
        Self::ErasePerson,
        Self::ExportAudit,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ViewCase => "view_case",
            Self::ViewBoard => "view_board",
            Self::ListCases => "list_cases",
            Self::SearchCases => "search_cases",
            Self::ExportCases => "export_cases",
            Self::ViewRoster => "view_roster",
            Self::ExportRoster => "export_roster",
            Self::ExportPerson => "export_person",
            Self::ErasePerson => "erase_person",
            Self::ExportAudit => "export_audit",
        }
    }

    /// The action stored as `key` (`None` for a key this version does not know).
    pub fn parse(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == key)
    }

    /// What an admin reads in the audit list.
    pub fn label_ja(self) -> &'static str {
        match self {
            Self::ViewCase => "案件の閲覧",
            Self::ViewBoard => "パイプラインの閲覧",
            Self::ListCases => "案件一覧の閲覧",
            Self::SearchCases => "案件の検索",
            Self::ExportCases => "案件のCSV出力",
            Self::ViewRoster => "ツアー参加者名簿の閲覧",
            Self::ExportRoster => "ツアー参加者名簿のCSV出力",
            Self::ExportPerson => "個人情報の開示（JSON出力）",
            Self::ErasePerson => "個人情報の消去",
            Self::ExportAudit => "監査ログのCSV出力",
        }
    }

    /// Whether the action is an export (recorded even without personal columns).
    pub fn is_export(self) -> bool {
        matches!(
            self,
            Self::ExportCases | Self::ExportRoster | Self::ExportPerson | Self::ExportAudit
        )
    }
}

/// Records that `staff_id` did `action` at `at`, seeing the data of `persons`.
/// Exports get one more row without a person (the export itself), so that an
/// export without personal columns (a viewer's) is recorded too. A call with no
/// person and no export records nothing. Returns the request id the rows share.
pub async fn record(
    pool: &PgPool,
    staff_id: Uuid,
    at: DateTime<Utc>,
    action: AuditAction,
    persons: &[Uuid],
    detail: &str,
) -> Result<Uuid, sqlx::Error> {
    let request_id = Uuid::now_v7();
    let mut people: Vec<Option<Uuid>> = Vec::with_capacity(persons.len() + 1);
    if action.is_export() {
        people.push(None);
    }
    let mut seen = std::collections::HashSet::with_capacity(persons.len());
    people.extend(
        persons
            .iter()
            .filter(|p| seen.insert(**p))
            .map(|p| Some(*p)),
    );
    if people.is_empty() {
        return Ok(request_id);
    }
    let detail: String = detail.chars().take(2000).collect();
    sqlx::query(
        "INSERT INTO audit_log (at, staff_id, action, person_id, request_id, detail) \
         SELECT $1, $2, $3, p, $4, $5 FROM unnest($6::uuid[]) AS p",
    )
    .bind(at)
    .bind(staff_id)
    .bind(action.as_str())
    .bind(request_id)
    .bind(detail)
    .bind(&people)
    .execute(pool)
    .await?;
    Ok(request_id)
}

/// One row of the trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    pub staff_id: Uuid,
    pub action: String,
    pub person_id: Option<Uuid>,
    pub request_id: Uuid,
    pub detail: String,
}

/// The trail about one person, newest first (for the person's disclosure, 開示).
pub async fn for_person(pool: &PgPool, person_id: Uuid) -> Result<Vec<AuditEntry>, sqlx::Error> {
    use sqlx::Row;
    let rows = sqlx::query(
        "SELECT at, staff_id, action, person_id, request_id, detail FROM audit_log \
         WHERE person_id = $1 ORDER BY at DESC, id DESC",
    )
    .bind(person_id)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(AuditEntry {
                at: r.try_get("at")?,
                staff_id: r.try_get("staff_id")?,
                action: r.try_get("action")?,
                person_id: r.try_get("person_id")?,
                request_id: r.try_get("request_id")?,
                detail: r.try_get("detail")?,
            })
        })
        .collect()
}
