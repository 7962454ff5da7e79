//! Retention (保有期間): persons with no activity for `KUJIRA_RETENTION` are erased,
//! by the same erasure as a request, with the rule named in the record.

use chrono::{DateTime, Utc};
use kujira_config::Retention;
use kujira_store::Store;
use uuid::Uuid;

use crate::PrivacyError;

/// The actor retention erasures are recorded under.
pub const ACTOR: &str = "system:retention";

/// Erases every person whose last activity is older than `retention` at `now`.
/// Returns the persons erased. Safe to run twice, or in two processes at once:
/// erasing an erased person records nothing.
pub async fn run(
    store: &Store,
    retention: Retention,
    now: DateTime<Utc>,
) -> Result<Vec<Uuid>, PrivacyError> {
    let Some(cutoff) = retention.cutoff(now) else {
        return Ok(vec![]);
    };
    let due: Vec<Uuid> = sqlx::query_scalar(
        "SELECT person_id FROM privacy_persons \
         WHERE erased_at IS NULL AND last_activity_at < $1 ORDER BY last_activity_at",
    )
    .bind(cutoff)
    .fetch_all(store.pool())
    .await
    .map_err(|e| PrivacyError::Internal(e.into()))?;
    let rule = retention.rule();
    for person in &due {
        crate::erasure::erase_person(store, *person, ACTOR, Some(rule.clone()), now).await?;
    }
    if !due.is_empty() {
        tracing::info!(persons = due.len(), %rule, "retention erased persons past their period");
    }
    Ok(due)
}
