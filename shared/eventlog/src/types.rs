use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use uuid::Uuid;

/// The name of a stream: `<category>-<id>`, for example `consultation-0190…`.
///
/// The category is lower-case ASCII so that it can be matched by prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StreamName(String);

impl StreamName {
    /// Builds a stream name from a category and an id.
    ///
    /// # Panics
    /// When the category is not `[a-z][a-z0-9_]*`: categories are code, not input.
    pub fn new(category: &str, id: impl fmt::Display) -> Self {
        assert!(
            valid_category(category),
            "invalid stream category {category:?}"
        );
        Self(format!("{category}-{id}"))
    }

    /// Parses a stream name taken from outside (a URL, a CLI argument).
    pub fn parse(s: &str) -> Result<Self, Error> {
        match s.split_once('-') {
            Some((cat, id)) if valid_category(cat) && !id.is_empty() && s.len() <= 200 => {
                Ok(Self(s.to_owned()))
            }
            _ => Err(Error::InvalidStreamName(s.to_owned())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn category(&self) -> &str {
        self.0.split_once('-').map_or("", |(c, _)| c)
    }

    pub fn id(&self) -> &str {
        self.0.split_once('-').map_or("", |(_, id)| id)
    }
}

fn valid_category(c: &str) -> bool {
    let mut chars = c.chars();
    matches!(chars.next(), Some('a'..='z'))
        && chars.all(|ch| matches!(ch, 'a'..='z' | '0'..='9' | '_'))
}

impl fmt::Display for StreamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for StreamName {
    type Error = Error;
    fn try_from(s: String) -> Result<Self, Error> {
        Self::parse(&s)
    }
}

impl From<StreamName> for String {
    fn from(s: StreamName) -> String {
        s.0
    }
}

/// What the writer believes the stream's current version is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// Append whatever the stream holds.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream's last event must have exactly this version (1-based).
    Exact(u64),
}

/// Facts about an event that are not the event itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    /// Who caused it: `applicant`, `staff:<login>`, `system:scheduler`, `cli`, ...
    pub actor: String,
    /// Ties together every event caused by one outside request.
    pub correlation_id: Uuid,
    /// The event or request that directly caused this one. Left out of the stored
    /// JSON when there is none (most events): 22 bytes of `null` on every row add up
    /// in a log that is never compacted. Older rows that hold the `null` read the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
    /// The version of the event's data shape.
    pub schema_version: u32,
    /// Anything else a writer wants to keep (request fingerprints, flags).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Metadata {
    pub fn new(actor: impl Into<String>, correlation_id: Uuid) -> Self {
        Self {
            actor: actor.into(),
            correlation_id,
            causation_id: None,
            schema_version: 1,
            extra: serde_json::Map::new(),
        }
    }

    pub fn caused_by(mut self, causation_id: Uuid) -> Self {
        self.causation_id = Some(causation_id);
        self
    }

    pub fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.extra.insert(key.to_owned(), value.into());
        self
    }
}

/// An event about to be appended.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// Chosen by the writer: a deterministic id makes a retry idempotent.
    pub id: Uuid,
    pub event_type: String,
    pub data: serde_json::Value,
    pub metadata: Metadata,
}

impl NewEvent {
    /// Encodes a domain event that serde serialises as `{"type": ..., "data": ...}`
    /// (an enum with `#[serde(tag = "type", content = "data")]`).
    pub fn encode<E: Serialize>(id: Uuid, event: &E, metadata: Metadata) -> Result<Self, Error> {
        let value = serde_json::to_value(event).map_err(|e| Error::Encode(e.to_string()))?;
        let serde_json::Value::Object(mut map) = value else {
            return Err(Error::Encode("an event must serialise to an object".into()));
        };
        let Some(serde_json::Value::String(event_type)) = map.remove("type") else {
            return Err(Error::Encode("an event must have a string `type`".into()));
        };
        let data = map.remove("data").unwrap_or(serde_json::Value::Null);
        Ok(Self {
            id,
            event_type,
            data,
            metadata,
        })
    }
}

/// A position in the global log: readers resume strictly after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Checkpoint {
    pub transaction_id: i64,
    pub position: i64,
}

impl Checkpoint {
    /// Before the first event.
    pub const START: Checkpoint = Checkpoint {
        transaction_id: 0,
        position: 0,
    };
}

/// One gap-safe read of the global log (see [`crate::EventStore::read_batch`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// The events read, in the global order.
    pub events: Vec<RecordedEvent>,
    /// Where the next read resumes. When the read was not [`full`](Self::full), it
    /// lies past every event below the watermark, those the type filter skipped
    /// included, so a filtered reader never scans the same skipped events twice.
    pub next: Checkpoint,
    /// Every stored transaction id below this is final: no event can appear there.
    pub watermark: i64,
    /// Whether the read returned `limit` events (more may be readable at once).
    pub full: bool,
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    pub position: i64,
    pub transaction_id: i64,
    pub event_id: Uuid,
    pub stream_name: String,
    pub stream_version: u64,
    pub event_type: String,
    pub data: serde_json::Value,
    pub metadata: Metadata,
    pub recorded_at: DateTime<Utc>,
}

impl RecordedEvent {
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            transaction_id: self.transaction_id,
            position: self.position,
        }
    }

    /// Decodes into a domain event enum tagged `{"type", "data"}` (see [`NewEvent::encode`]).
    pub fn decode<E: DeserializeOwned>(&self) -> Result<E, Error> {
        let value = serde_json::json!({ "type": self.event_type, "data": self.data });
        serde_json::from_value(value).map_err(|e| Error::Decode {
            position: self.position,
            event_type: self.event_type.clone(),
            message: e.to_string(),
        })
    }
}

/// The outcome of an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendResult {
    /// The stream's version after the append: pass it as `Exact` next time.
    pub stream_version: u64,
    pub first_position: i64,
    pub last_position: i64,
    /// True when these exact events had been appended before and nothing was written.
    pub replayed: bool,
}

/// A condition an append must meet in the very statement that appends, so that
/// what it checks cannot change between the check and the append (the vault's
/// person and key: see `kujira_store::vault`).
///
/// `ctes` is the SQL of one or more common table expressions, the last named
/// `guard`; the events go in only when `guard` returns a row, and else the append
/// fails with [`Error::GuardFailed`], having written nothing (`ctes` may write:
/// its writes are part of the same statement). Its parameters are `$7` onwards, in
/// the order of `values`, and the name of every CTE in it starts with `guard` (a
/// batch of guarded appends renames them per member). Only appends to a new stream
/// can be guarded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guard {
    pub ctes: &'static str,
    pub values: Vec<GuardValue>,
}

/// A parameter of a [`Guard`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuardValue {
    Uuid(Uuid),
    Bytes(Vec<u8>),
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Somebody else appended first. Reload the stream, decide again, retry.
    #[error("stream {stream} is at version {actual}, not {expected:?}")]
    Conflict {
        stream: String,
        expected: ExpectedVersion,
        actual: u64,
    },
    /// An event id is already used by a different append.
    #[error("event id {0} was already appended elsewhere")]
    DuplicateEventId(Uuid),
    #[error("invalid stream name {0:?}")]
    InvalidStreamName(String),
    #[error("nothing to append")]
    Empty,
    #[error("cannot encode event: {0}")]
    Encode(String),
    /// Never skipped silently: a reader that cannot decode an event stops here.
    #[error("cannot decode event {event_type} at position {position}: {message}")]
    Decode {
        position: i64,
        event_type: String,
        message: String,
    },
    /// The [`Guard`] of a guarded append found nothing: nothing was written.
    #[error("the append's guard did not hold; nothing was written")]
    GuardFailed,
    /// Readers refuse to guess a watermark: see the crate docs, "Restored databases".
    #[error("the event log's clock row (eventlog_clock) is missing; run the migrations")]
    ClockMissing,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl Error {
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Conflict { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_without_a_cause_stores_no_null_and_old_rows_still_read() {
        let id = Uuid::from_u128(7);
        let m = Metadata::new("applicant", id);
        let stored = serde_json::to_value(&m).unwrap();
        assert!(stored.get("causation_id").is_none(), "{stored}");
        assert_eq!(serde_json::from_value::<Metadata>(stored).unwrap(), m);

        // As rows were written before: an explicit null.
        let old = serde_json::json!({
            "actor": "applicant", "correlation_id": id, "causation_id": null,
            "schema_version": 1, "command_id": "x"
        });
        let read: Metadata = serde_json::from_value(old).unwrap();
        assert_eq!(read.causation_id, None);
        assert_eq!(read.extra.get("command_id"), Some(&serde_json::json!("x")));

        let caused = m.caused_by(Uuid::from_u128(8));
        let stored = serde_json::to_value(&caused).unwrap();
        assert_eq!(
            stored["causation_id"],
            serde_json::json!(Uuid::from_u128(8))
        );
    }
}
