//! Recording funnel steps. A journey is the stream `funnel-<form token id>`; the
//! steps carry no personal data and need no cookie (see `kujira_domain::funnel`).

use kujira_domain::funnel::{CATEGORY, FunnelEvent};
use kujira_eventlog::{EventStore, ExpectedVersion, Metadata, NewEvent, StreamName};
use uuid::Uuid;

/// Namespace of the deterministic ids of funnel events.
const NAMESPACE: Uuid = Uuid::from_u128(0x6b75_6a69_7261_2f66_756e_6e65_6c2f_0001);

/// The stream of one journey.
pub fn stream(journey: Uuid) -> StreamName {
    StreamName::new(CATEGORY, journey)
}

/// Appends one step to the journey `journey` (the form token's id).
///
/// `FormViewed`, `Submitted` and `SpamFlagged` get ids derived from the journey, so
/// that a retried request never records them twice; every confirm view is recorded.
/// A failure is logged and swallowed: statistics must never block a person's form.
pub async fn record(store: &EventStore, journey: Uuid, event: &FunnelEvent) {
    let id = match event {
        FunnelEvent::ConfirmViewed { .. } => Uuid::now_v7(),
        other => Uuid::new_v5(
            &NAMESPACE,
            format!("{journey}/{}", other.event_type()).as_bytes(),
        ),
    };
    let metadata = Metadata::new("applicant", journey);
    let result = match NewEvent::encode(id, event, metadata) {
        Ok(e) => {
            store
                .append(&stream(journey), ExpectedVersion::Any, vec![e])
                .await
        }
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        tracing::warn!(error = %e, journey = %journey, "could not record a funnel step");
    }
}
