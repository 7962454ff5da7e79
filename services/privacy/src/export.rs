//! Disclosure (開示): everything held about a person, decrypted, as JSON.
//!
//! It reads the facts themselves, through the vault, rather than any read model:
//! every case (its submission, consent, case work and contact notes), every tour
//! sign-up (with its attendance and feedback), the person's own stream
//! (corrections, opt-outs, suspension), and the mail sent to or about them (subject
//! and time). Persons joined by a merge are exported together.

use chrono::{DateTime, Utc};
use kujira_eventlog::{RecordedEvent, StreamName};
use kujira_store::Store;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::PrivacyError;
use crate::erasure::{Target, person_of};

fn fact(e: &RecordedEvent) -> Value {
    json!({
        "type": e.event_type,
        "recorded_at": e.recorded_at,
        "by": e.metadata.actor,
        "data": e.data,
    })
}

/// The export of the person `target` names (and of the persons merged with them).
pub async fn export(
    store: &Store,
    target: &Target,
    now: DateTime<Utc>,
) -> Result<Value, PrivacyError> {
    let person = person_of(store, target).await?;
    let persons = crate::index::group(store.pool(), person)
        .await
        .map_err(PrivacyError::Internal)?;
    let mut out = Vec::new();
    for p in &persons {
        out.push(
            export_person(store, *p)
                .await
                .map_err(PrivacyError::Internal)?,
        );
    }
    Ok(json!({
        "exported_at": now,
        "persons": out,
    }))
}

async fn export_person(store: &Store, person: Uuid) -> anyhow::Result<Value> {
    let erased = !store.vault().holds(person).await?;
    let mut cases = Vec::new();
    let mut sign_ups = Vec::new();
    let mut person_facts = Vec::new();
    let mut consents = Vec::new();
    for name in crate::index::streams(store.pool(), person).await? {
        let stream = StreamName::parse(&name)?;
        let events = store.read_whole_stream(&stream).await?;
        match stream.category() {
            "consultation" => {
                for e in &events {
                    if matches!(
                        e.event_type.as_str(),
                        "InquirySubmitted" | "TourRequestSubmitted"
                    ) {
                        consents.push(json!({
                            "case_id": stream.id(),
                            "given_at": e.data.get("submitted_at"),
                            "purpose_shown": e.data.get("privacy_purpose"),
                            "newsletter": e.data.get("newsletter"),
                        }));
                    }
                }
                cases.push(json!({
                    "case_id": stream.id(),
                    "reference": events.first().and_then(|e| e.data.get("reference")),
                    "facts": events.iter().filter(|e| e.event_type != "MailQueued").map(fact).collect::<Vec<_>>(),
                }));
            }
            "tour" => {
                // A tour's stream holds every party: only this person's sign-ups.
                let mine: Vec<String> = events
                    .iter()
                    .filter(|e| {
                        e.event_type == "TourSignUpReceived"
                            && e.data.get("person_id").and_then(Value::as_str)
                                == Some(&person.to_string())
                    })
                    .filter_map(|e| e.data.get("sign_up_id")?.as_str().map(str::to_owned))
                    .collect();
                let title = events
                    .iter()
                    .find(|e| e.event_type == "TourScheduled")
                    .and_then(|e| e.data.get("title").cloned());
                for id in mine {
                    let facts: Vec<Value> = events
                        .iter()
                        .filter(|e| {
                            e.event_type != "MailQueued"
                                && e.data.get("sign_up_id").and_then(Value::as_str) == Some(&id)
                        })
                        .map(fact)
                        .collect();
                    sign_ups.push(json!({
                        "tour_id": stream.id(),
                        "tour": title,
                        "sign_up_id": id,
                        "facts": facts,
                    }));
                }
            }
            "person" => person_facts.extend(events.iter().map(fact)),
            _ => {}
        }
    }
    let mails: Vec<Value> = kujira_scheduler::deliveries_for_person(store.pool(), person)
        .await?
        .into_iter()
        .map(|d| {
            json!({
                "template": d.template,
                "subject": d.subject,
                "status": d.status,
                "requested_at": d.requested_at,
                "sent_at": d.sent_at,
            })
        })
        .collect();
    Ok(json!({
        "person_id": person,
        "erased": erased,
        "cases": cases,
        "tour_sign_ups": sign_ups,
        "person": person_facts,
        "consents": consents,
        "mails": mails,
    }))
}
