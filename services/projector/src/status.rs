//! Where each projection stands: its durable state (`reader_status`), and its
//! lag, measured from its checkpoint each time it is asked for.

use std::time::Duration;

use chrono::{DateTime, Utc};
use kujira_eventlog::RecordedEvent;
use serde::Serialize;
use sqlx::{PgConnection, PgPool, Row};
use uuid::Uuid;

use crate::Projection;

/// Unapplied events are counted up to this many: enough to tell "a few" from "a
/// lot", and cheap enough for `/readyz` even on a projection that starts from zero.
const LAG_COUNT_CAP: i64 = 100_000;
/// Error texts are cut to this many characters before they are stored.
const ERROR_MAX_CHARS: usize = 2_000;

/// The event a projection failed on. It names the event without quoting its data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventRef {
    pub event_id: Uuid,
    pub event_type: String,
    pub stream_name: String,
    pub position: i64,
}

impl EventRef {
    pub fn of(event: &RecordedEvent) -> Self {
        Self {
            event_id: event.event_id,
            event_type: event.event_type.clone(),
            stream_name: event.stream_name.clone(),
            position: event.position,
        }
    }
}

impl std::fmt::Display for EventRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "event {} at position {} of stream {} (id {})",
            self.event_type, self.position, self.stream_name, self.event_id
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProjectionState {
    /// No process has run it on this database yet.
    NotStarted,
    /// Its last step read a full batch: it is working through a backlog.
    Running,
    /// Its last step applied everything readable at the time.
    CaughtUp,
    /// Its last attempt failed; it is waiting to try again.
    Failed,
}

impl ProjectionState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotStarted => "not_started",
            Self::Running => "running",
            Self::CaughtUp => "caught_up",
            Self::Failed => "failed",
        }
    }

    fn parse(s: &str) -> anyhow::Result<Self> {
        Ok(match s {
            "running" => Self::Running,
            "caught_up" => Self::CaughtUp,
            "failed" => Self::Failed,
            other => anyhow::bail!("unknown projection state {other:?}"),
        })
    }
}

/// The last failure of a projection that has not got past it yet.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failure {
    /// Redacted, but it may still quote an event's values: it is left out of the
    /// serialised form, which `/readyz` shows to anyone. `status` prints it.
    #[serde(skip)]
    pub error: String,
    pub event: Option<EventRef>,
    pub since: DateTime<Utc>,
    /// Consecutive failed attempts.
    pub attempts: i32,
    pub next_retry_at: Option<DateTime<Utc>>,
}

/// One projection as `kujira projections status` and `/readyz` show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProjectionStatus {
    pub name: String,
    pub state: ProjectionState,
    /// The checkpoint: the last event it has applied or moved past.
    pub position: i64,
    pub transaction_id: i64,
    /// Committed events after the checkpoint that it still has to apply (of its
    /// types), counted up to a cap; `lag_events_capped` says the cap was hit.
    pub lag_events: i64,
    pub lag_events_capped: bool,
    /// Age of the oldest event it has not applied yet; 0 when there is none.
    pub lag_seconds: f64,
    pub failure: Option<Failure>,
    /// The position of a rebuild's shadow copy, while one runs (or was interrupted).
    pub rebuild_position: Option<i64>,
    /// When the state last changed.
    pub updated_at: Option<DateTime<Utc>>,
}

impl ProjectionStatus {
    /// Why this projection makes the service not ready, if it does.
    pub fn problem(&self, lag_limit: Duration) -> Option<String> {
        if let Some(f) = &self.failure
            && self.state == ProjectionState::Failed
        {
            return Some(match &f.event {
                Some(e) => format!(
                    "projection {} failed on {} (attempt {})",
                    self.name, e, f.attempts
                ),
                None => format!("projection {} failed (attempt {})", self.name, f.attempts),
            });
        }
        (self.lag_seconds > lag_limit.as_secs_f64()).then(|| {
            format!(
                "projection {} lags {:.0} s behind the log (limit {} s), {}{} events to apply",
                self.name,
                self.lag_seconds,
                lag_limit.as_secs(),
                if self.lag_events_capped {
                    "at least "
                } else {
                    ""
                },
                self.lag_events
            )
        })
    }
}

/// Creates the status and checkpoint rows of `names` unless they exist.
pub(crate) async fn ensure(pool: &PgPool, names: &[&str]) -> anyhow::Result<()> {
    use anyhow::Context;
    sqlx::query(
        "INSERT INTO reader_status (reader) SELECT unnest($1::text[]) \
         ON CONFLICT DO NOTHING",
    )
    .bind(names)
    .execute(pool)
    .await
    .context("cannot register the projections in reader_status")?;
    sqlx::query(
        "INSERT INTO reader_checkpoints (reader) SELECT unnest($1::text[]) \
         ON CONFLICT DO NOTHING",
    )
    .bind(names)
    .execute(pool)
    .await
    .context("cannot create the projections' checkpoints")?;
    Ok(())
}

/// Records a successful step. Writes only when something changes, so that an idle
/// projection woken many times a second costs no row versions.
pub(crate) async fn mark_ok(
    tx: &mut PgConnection,
    name: &str,
    state: ProjectionState,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE reader_status SET state = $2, error = NULL, failed_event_id = NULL, \
           failed_event_type = NULL, failed_stream = NULL, failed_event_position = NULL, \
           failed_since = NULL, attempts = 0, next_retry_at = NULL, updated_at = now() \
         WHERE reader = $1 AND (state <> $2 OR error IS NOT NULL)",
    )
    .bind(name)
    .bind(state.as_str())
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Records a failed attempt and logs it. Never fails: when the database cannot take
/// the record either, the log still has it.
pub(crate) async fn record_failure(
    pool: &PgPool,
    name: &str,
    error: &anyhow::Error,
    retry_in: Option<Duration>,
) {
    let event = error.downcast_ref::<EventRef>().cloned();
    let text = redact(&format!("{error:#}"));
    tracing::error!(
        projection = name,
        event_type = event.as_ref().map(|e| e.event_type.as_str()),
        stream = event.as_ref().map(|e| e.stream_name.as_str()),
        position = event.as_ref().map(|e| e.position),
        retry_in_seconds = retry_in.map(|d| d.as_secs_f64()),
        error = %text,
        "projection stopped; it will not skip the event and tries again"
    );
    let written = sqlx::query(
        "INSERT INTO reader_status AS s (reader, state, error, failed_event_id, \
           failed_event_type, failed_stream, failed_event_position, failed_since, attempts, \
           next_retry_at, updated_at) \
         VALUES ($1, 'failed', $2, $3, $4, $5, $6, now(), 1, \
                 now() + make_interval(secs => $7), now()) \
         ON CONFLICT (reader) DO UPDATE SET state = 'failed', error = $2, \
           failed_event_id = $3, failed_event_type = $4, failed_stream = $5, \
           failed_event_position = $6, failed_since = coalesce(s.failed_since, now()), \
           attempts = s.attempts + 1, next_retry_at = excluded.next_retry_at, updated_at = now()",
    )
    .bind(name)
    .bind(&text)
    .bind(event.as_ref().map(|e| e.event_id))
    .bind(event.as_ref().map(|e| e.event_type.as_str()))
    .bind(event.as_ref().map(|e| e.stream_name.as_str()))
    .bind(event.as_ref().map(|e| e.position))
    .bind(retry_in.map(|d| d.as_secs_f64()))
    .execute(pool)
    .await;
    if let Err(e) = written {
        tracing::error!(projection = name, error = %e, "cannot record the projection's failure");
    }
}

/// The status of one projection now.
pub(crate) async fn of(pool: &PgPool, p: &dyn Projection) -> anyhow::Result<ProjectionStatus> {
    use anyhow::Context;
    let name = p.name();
    let r = sqlx::query(
        "WITH cp AS (SELECT coalesce(c.transaction_id, 0) AS transaction_id, \
                            coalesce(c.position, 0) AS position \
                     FROM (SELECT 1) one LEFT JOIN reader_checkpoints c ON c.reader = $1) \
         SELECT cp.transaction_id, cp.position, \
                s.state, s.error, s.failed_event_id, s.failed_event_type, s.failed_stream, \
                s.failed_event_position, s.failed_since, s.attempts, s.next_retry_at, \
                s.updated_at, \
                (SELECT position FROM reader_checkpoints WHERE reader = 'rebuild:' || $1) \
                  AS rebuild_position, \
                (SELECT count(*) FROM (SELECT 1 FROM events e \
                   WHERE (e.transaction_id, e.position) > (cp.transaction_id, cp.position) \
                     AND ($2::text[] IS NULL OR e.event_type = ANY($2)) \
                   LIMIT $3) pending) AS lag_events, \
                coalesce((SELECT extract(epoch FROM now() - e.recorded_at)::float8 FROM events e \
                   WHERE (e.transaction_id, e.position) > (cp.transaction_id, cp.position) \
                     AND ($2::text[] IS NULL OR e.event_type = ANY($2)) \
                   ORDER BY e.transaction_id, e.position LIMIT 1), 0) AS lag_seconds \
         FROM cp LEFT JOIN reader_status s ON s.reader = $1",
    )
    .bind(name)
    .bind(p.event_types())
    .bind(LAG_COUNT_CAP + 1)
    .fetch_one(pool)
    .await
    .with_context(|| format!("cannot read the status of projection {name}"))?;

    let state = match r.try_get::<Option<String>, _>("state")? {
        Some(s) => ProjectionState::parse(&s)?,
        None => ProjectionState::NotStarted,
    };
    let event = match (
        r.try_get::<Option<Uuid>, _>("failed_event_id")?,
        r.try_get::<Option<String>, _>("failed_event_type")?,
        r.try_get::<Option<String>, _>("failed_stream")?,
        r.try_get::<Option<i64>, _>("failed_event_position")?,
    ) {
        (Some(event_id), Some(event_type), Some(stream_name), Some(position)) => Some(EventRef {
            event_id,
            event_type,
            stream_name,
            position,
        }),
        _ => None,
    };
    let failure = match (
        r.try_get::<Option<String>, _>("error")?,
        r.try_get::<Option<DateTime<Utc>>, _>("failed_since")?,
    ) {
        (Some(error), Some(since)) => Some(Failure {
            error,
            event,
            since,
            attempts: r.try_get::<Option<i32>, _>("attempts")?.unwrap_or_default(),
            next_retry_at: r.try_get("next_retry_at")?,
        }),
        _ => None,
    };
    let counted: i64 = r.try_get("lag_events")?;
    Ok(ProjectionStatus {
        name: name.to_owned(),
        state,
        position: r.try_get("position")?,
        transaction_id: r.try_get("transaction_id")?,
        lag_events: counted.min(LAG_COUNT_CAP),
        lag_events_capped: counted > LAG_COUNT_CAP,
        // A clock that steps back must not show a negative age.
        lag_seconds: r.try_get::<f64, _>("lag_seconds")?.max(0.0),
        failure,
        rebuild_position: r.try_get("rebuild_position")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// Makes an error text fit to store and show to operators: e-mail addresses and
/// quoted values (serde and PostgreSQL quote the offending value) are replaced, and
/// the text is cut. Quoted identifiers (constraint and column names) stay, because
/// they say what went wrong without saying anything about a person.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(ERROR_MAX_CHARS));
    let mut rest = text;
    while let Some(start) = rest.find('"') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        match after.find('"') {
            Some(end) => {
                let quoted = &after[..end];
                let identifier = !quoted.is_empty()
                    && quoted.len() <= 63
                    && quoted
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '$' | ':'));
                out.push('"');
                out.push_str(if identifier { quoted } else { "…" });
                out.push('"');
                rest = &after[end + 1..];
            }
            None => {
                out.push_str("\"…");
                rest = "";
            }
        }
    }
    out.push_str(rest);
    let words: Vec<String> = out
        .split(' ')
        .map(|w| {
            let at = w.find('@');
            match at {
                Some(i) if i > 0 && w[i + 1..].contains('.') => "<email>".to_owned(),
                _ => w.to_owned(),
            }
        })
        .collect();
    let joined = words.join(" ");
    match joined.char_indices().nth(ERROR_MAX_CHARS) {
        Some((cut, _)) => format!("{}…", &joined[..cut]),
        None => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redaction_keeps_identifiers_and_drops_values() {
        let text = r#"cannot decode: invalid type: string "柏崎 花子", expected u32; violates check constraint "tour_catalogue_not_overbooked"; mail to hanako@example.jp"#;
        let r = redact(text);
        assert!(!r.contains("花子"), "{r}");
        assert!(!r.contains("hanako@example.jp"), "{r}");
        assert!(r.contains("\"tour_catalogue_not_overbooked\""), "{r}");
        assert!(r.contains("<email>"), "{r}");
    }

    #[test]
    fn redaction_cuts_long_texts_on_a_character_boundary() {
        let r = redact(&"あ".repeat(5_000));
        assert_eq!(r.chars().count(), 2_001);
    }
}
