//! The person (本人): one identity per applicant, whatever they submitted.
//!
//! A person is referenced by every case and tour sign-up they open (`person_id`),
//! and has a stream of their own, `person-<id>`, for the facts about the person
//! rather than about one case: corrections of their contact details (訂正),
//! suspension of use (利用停止), mail opt-out and opt-in, bounces, and erasure (消去).
//!
//! Erasure is crypto-shredding: the store destroys the person's key, after which
//! every personal part of every event about them reads as erased. The
//! [`PersonErased`] event is the durable instruction every reader acts on (drop
//! cached keys, scrub read models, delete mail files) and the record that it was
//! done; it holds no personal data itself.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::decider::Decider;
use crate::personal::Personal;
use crate::values::{Email, FreeText, Kana, PersonName, Phone, PostalCode};

/// The stream category of persons: `person-<uuid>`.
pub const CATEGORY: &str = "person";

/// A person's contact details as corrected by staff (訂正).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactDetails {
    pub name: PersonName,
    pub name_kana: Kana,
    pub email: Email,
    #[serde(default)]
    pub phone: Option<Phone>,
    #[serde(default)]
    pub postal_code: Option<PostalCode>,
    /// 住所（市区町村以下）.
    #[serde(default)]
    pub address: Option<FreeText>,
}

/// How a person opted out of (or back into) follow-up mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptOutVia {
    /// RFC 8058 one-click POST from the mail client.
    OneClick,
    /// The button on the unsubscribe page.
    Page,
    /// Staff, on the person's request (phone, counter).
    Staff,
}

impl OptOutVia {
    pub fn label_ja(self) -> &'static str {
        match self {
            Self::OneClick => "メールの配信停止リンク（ワンクリック）",
            Self::Page => "配信停止ページ",
            Self::Staff => "職員による手続き",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonDetailsCorrected {
    pub person_id: Uuid,
    pub at: DateTime<Utc>,
    /// Which fields changed (names of fields, never values), for the timeline.
    pub fields: Vec<String>,
    pub personal: Personal<ContactDetails>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonErased {
    pub person_id: Uuid,
    pub at: DateTime<Utc>,
    /// The retention rule that erased the person (`retention:5y`); `None` when it was
    /// done on request (本人からの請求, or an admin's decision).
    #[serde(default)]
    pub rule: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonSuspended {
    pub person_id: Uuid,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonSuspensionLifted {
    pub person_id: Uuid,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailOptedOut {
    pub person_id: Uuid,
    pub at: DateTime<Utc>,
    pub via: OptOutVia,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailOptedIn {
    pub person_id: Uuid,
    pub at: DateTime<Utc>,
    pub via: OptOutVia,
}

/// A permanent SMTP failure (5xx) for the person's address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressBounced {
    pub person_id: Uuid,
    pub at: DateTime<Utc>,
    /// The SMTP reply code, e.g. 550.
    pub code: u16,
    /// The delivery that bounced.
    pub delivery_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BounceCleared {
    pub person_id: Uuid,
    pub at: DateTime<Utc>,
}

/// Every fact on a person's stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum PersonEvent {
    PersonDetailsCorrected(PersonDetailsCorrected),
    PersonErased(PersonErased),
    PersonSuspended(PersonSuspended),
    PersonSuspensionLifted(PersonSuspensionLifted),
    MailOptedOut(MailOptedOut),
    MailOptedIn(MailOptedIn),
    AddressBounced(AddressBounced),
    BounceCleared(BounceCleared),
}

impl PersonEvent {
    pub const ERASED: &'static str = "PersonErased";
    /// Every event type of a person stream, for readers that subscribe by type.
    pub const TYPES: &'static [&'static str] = &[
        "PersonDetailsCorrected",
        "PersonErased",
        "PersonSuspended",
        "PersonSuspensionLifted",
        "MailOptedOut",
        "MailOptedIn",
        "AddressBounced",
        "BounceCleared",
    ];

    pub fn person_id(&self) -> Uuid {
        match self {
            Self::PersonDetailsCorrected(e) => e.person_id,
            Self::PersonErased(e) => e.person_id,
            Self::PersonSuspended(e) => e.person_id,
            Self::PersonSuspensionLifted(e) => e.person_id,
            Self::MailOptedOut(e) => e.person_id,
            Self::MailOptedIn(e) => e.person_id,
            Self::AddressBounced(e) => e.person_id,
            Self::BounceCleared(e) => e.person_id,
        }
    }
}

/// The latest known correction of a person's details, from their stream's facts as
/// `(event type, data)` pairs (what a mail renderer receives).
pub fn latest_correction(facts: &[(String, serde_json::Value)]) -> Option<ContactDetails> {
    facts.iter().rev().find_map(|(t, d)| {
        if t != "PersonDetailsCorrected" {
            return None;
        }
        serde_json::from_value::<PersonDetailsCorrected>(d.clone())
            .ok()?
            .personal
            .into_known()
    })
}

/// What a person's stream says about them now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PersonState {
    pub erased: Option<DateTime<Utc>>,
    pub suspended: bool,
    pub opted_out: bool,
    /// The bounce not yet cleared, if any: (when, SMTP code).
    pub bouncing: Option<(DateTime<Utc>, u16)>,
    /// The latest correction of the contact details.
    pub corrected: Option<ContactDetails>,
}

impl PersonState {
    /// Whether follow-up mail (reminders, nurture, check-ins) may go to the person.
    pub fn accepts_follow_ups(&self) -> bool {
        self.erased.is_none() && !self.suspended && !self.opted_out && self.bouncing.is_none()
    }

    /// Whether any mail at all may go to the person.
    pub fn accepts_mail(&self) -> bool {
        self.erased.is_none() && !self.suspended
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PersonCommand {
    Correct {
        details: ContactDetails,
        /// The details before the correction, to name the fields that changed.
        before: Option<ContactDetails>,
    },
    Erase {
        rule: Option<String>,
    },
    Suspend,
    LiftSuspension,
    OptOut {
        via: OptOutVia,
    },
    OptIn {
        via: OptOutVia,
    },
    RecordBounce {
        code: u16,
        delivery_key: String,
    },
    ClearBounce,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PersonError {
    #[error("the person's data was erased")]
    Erased,
    #[error("nothing was changed")]
    NoChange,
}

impl PersonError {
    pub fn message_ja(self) -> &'static str {
        match self {
            Self::Erased => "この方の個人情報は削除済みのため、操作できません。",
            Self::NoChange => "変更された項目がありません。",
        }
    }
}

/// The person aggregate. Commands that would change nothing are not errors but
/// record nothing (opting out twice, clearing a bounce that is not there), so that
/// a retried click is harmless.
#[derive(Debug)]
pub struct Person;

/// The names of the fields that differ between two sets of details.
pub fn changed_fields(before: Option<&ContactDetails>, after: &ContactDetails) -> Vec<String> {
    let Some(b) = before else {
        return [
            "name",
            "name_kana",
            "email",
            "phone",
            "postal_code",
            "address",
        ]
        .map(String::from)
        .to_vec();
    };
    let mut fields = Vec::new();
    let mut diff = |name: &str, changed: bool| {
        if changed {
            fields.push(name.to_owned());
        }
    };
    diff("name", b.name != after.name);
    diff("name_kana", b.name_kana != after.name_kana);
    diff("email", b.email != after.email);
    diff("phone", b.phone != after.phone);
    diff("postal_code", b.postal_code != after.postal_code);
    diff("address", b.address != after.address);
    fields
}

/// The person a command is about, and when: the decider needs both to write facts.
#[derive(Debug, Clone, Copy)]
pub struct PersonContext {
    pub person_id: Uuid,
    pub at: DateTime<Utc>,
}

impl Person {
    /// Decides `command` for the person in `ctx`.
    pub fn decide_for(
        ctx: PersonContext,
        state: &PersonState,
        command: &PersonCommand,
    ) -> Result<Vec<PersonEvent>, PersonError> {
        let PersonContext { person_id, at } = ctx;
        if state.erased.is_some() {
            // Erasing twice records nothing: the first erasure did it all.
            return match command {
                PersonCommand::Erase { .. } => Ok(vec![]),
                _ => Err(PersonError::Erased),
            };
        }
        let event = match command {
            PersonCommand::Correct { details, before } => {
                let fields = changed_fields(before.as_ref().or(state.corrected.as_ref()), details);
                if fields.is_empty() {
                    return Err(PersonError::NoChange);
                }
                PersonEvent::PersonDetailsCorrected(PersonDetailsCorrected {
                    person_id,
                    at,
                    fields,
                    personal: Personal::Known(details.clone()),
                })
            }
            PersonCommand::Erase { rule } => PersonEvent::PersonErased(PersonErased {
                person_id,
                at,
                rule: rule.clone(),
            }),
            PersonCommand::Suspend if state.suspended => return Ok(vec![]),
            PersonCommand::Suspend => {
                PersonEvent::PersonSuspended(PersonSuspended { person_id, at })
            }
            PersonCommand::LiftSuspension if !state.suspended => return Ok(vec![]),
            PersonCommand::LiftSuspension => {
                PersonEvent::PersonSuspensionLifted(PersonSuspensionLifted { person_id, at })
            }
            PersonCommand::OptOut { .. } if state.opted_out => return Ok(vec![]),
            PersonCommand::OptOut { via } => PersonEvent::MailOptedOut(MailOptedOut {
                person_id,
                at,
                via: *via,
            }),
            PersonCommand::OptIn { .. } if !state.opted_out => return Ok(vec![]),
            PersonCommand::OptIn { via } => PersonEvent::MailOptedIn(MailOptedIn {
                person_id,
                at,
                via: *via,
            }),
            PersonCommand::RecordBounce { code, delivery_key } => {
                PersonEvent::AddressBounced(AddressBounced {
                    person_id,
                    at,
                    code: *code,
                    delivery_key: delivery_key.clone(),
                })
            }
            PersonCommand::ClearBounce if state.bouncing.is_none() => return Ok(vec![]),
            PersonCommand::ClearBounce => {
                PersonEvent::BounceCleared(BounceCleared { person_id, at })
            }
        };
        Ok(vec![event])
    }
}

impl crate::decider::Aggregate for Person {}

impl Decider for Person {
    type State = PersonState;
    /// The context travels with the command, so that the pure decider can write the
    /// person id and the time into the facts.
    type Command = (PersonContext, PersonCommand);
    type Event = PersonEvent;
    type Error = PersonError;

    fn decide(
        state: &PersonState,
        (ctx, command): &Self::Command,
    ) -> Result<Vec<PersonEvent>, PersonError> {
        Self::decide_for(*ctx, state, command)
    }

    fn evolve(mut state: PersonState, event: &PersonEvent) -> PersonState {
        match event {
            PersonEvent::PersonDetailsCorrected(e) => {
                state.corrected = e.personal.known().cloned();
            }
            PersonEvent::PersonErased(e) => {
                state.erased = Some(e.at);
                state.corrected = None;
            }
            PersonEvent::PersonSuspended(_) => state.suspended = true,
            PersonEvent::PersonSuspensionLifted(_) => state.suspended = false,
            PersonEvent::MailOptedOut(_) => state.opted_out = true,
            PersonEvent::MailOptedIn(_) => state.opted_out = false,
            PersonEvent::AddressBounced(e) => state.bouncing = Some((e.at, e.code)),
            PersonEvent::BounceCleared(_) => state.bouncing = None,
        }
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> PersonContext {
        PersonContext {
            person_id: Uuid::from_u128(1),
            at: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
        }
    }

    fn given(events: &[PersonEvent]) -> PersonState {
        Person::replay(events)
    }

    fn when(state: &PersonState, c: PersonCommand) -> Result<Vec<PersonEvent>, PersonError> {
        Person::decide(state, &(ctx(), c))
    }

    fn details(email: &str) -> ContactDetails {
        ContactDetails {
            name: PersonName::parse("柏崎 太郎").unwrap(),
            name_kana: Kana::parse("カシワザキ タロウ").unwrap(),
            email: Email::parse(email).unwrap(),
            phone: None,
            postal_code: None,
            address: None,
        }
    }

    #[test]
    fn given_a_person_when_opting_out_twice_then_one_fact_is_recorded() {
        let first = when(
            &given(&[]),
            PersonCommand::OptOut {
                via: OptOutVia::OneClick,
            },
        )
        .unwrap();
        assert_eq!(first.len(), 1);
        let state = given(&first);
        assert!(state.opted_out && !state.accepts_follow_ups() && state.accepts_mail());
        assert!(
            when(
                &state,
                PersonCommand::OptOut {
                    via: OptOutVia::Page
                }
            )
            .unwrap()
            .is_empty()
        );
        let back = when(
            &state,
            PersonCommand::OptIn {
                via: OptOutVia::Page,
            },
        )
        .unwrap();
        assert!(given(&[first, back].concat()).accepts_follow_ups());
    }

    #[test]
    fn given_an_erased_person_when_anything_but_erase_then_it_is_refused() {
        let erased = when(&given(&[]), PersonCommand::Erase { rule: None }).unwrap();
        let state = given(&erased);
        assert!(!state.accepts_mail());
        assert_eq!(
            when(&state, PersonCommand::Suspend),
            Err(PersonError::Erased)
        );
        assert!(
            when(&state, PersonCommand::Erase { rule: None })
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn given_a_correction_then_only_changed_fields_are_named_and_no_change_is_refused() {
        let before = details("taro@example.jp");
        let after = details("taro@example.com");
        let events = when(
            &given(&[]),
            PersonCommand::Correct {
                details: after.clone(),
                before: Some(before),
            },
        )
        .unwrap();
        let PersonEvent::PersonDetailsCorrected(c) = &events[0] else {
            panic!()
        };
        assert_eq!(c.fields, vec!["email".to_owned()]);
        let state = given(&events);
        assert_eq!(
            when(
                &state,
                PersonCommand::Correct {
                    details: after,
                    before: None
                }
            ),
            Err(PersonError::NoChange)
        );
    }

    #[test]
    fn given_a_bounce_then_follow_ups_stop_until_it_is_cleared() {
        let bounced = when(
            &given(&[]),
            PersonCommand::RecordBounce {
                code: 550,
                delivery_key: "k".into(),
            },
        )
        .unwrap();
        let state = given(&bounced);
        assert!(!state.accepts_follow_ups() && state.accepts_mail());
        let cleared = when(&state, PersonCommand::ClearBounce).unwrap();
        assert!(given(&[bounced, cleared].concat()).accepts_follow_ups());
    }
}
