//! The mail facts on a person's stream (`person-<id>`), written through the one
//! command path: opting out of follow-ups and back in, a bounce, and its clearing.

use chrono::{DateTime, Utc};
use kujira_domain::person::{OptOutVia, Person, PersonCommand, PersonContext, PersonError};
use kujira_eventlog::StreamName;
use kujira_store::{CommandContext, CommandError, Store};
use uuid::Uuid;

/// What went wrong with a person command: `Refused(PersonError::Erased)` for an
/// erased person, or a store error.
pub type PersonCommandError = CommandError<PersonError>;

/// Ids of bounce facts derive from the delivery key, so that two workers (or a
/// retry) recording the same bounce write it once.
const BOUNCE_NAMESPACE: Uuid = Uuid::from_u128(0x6b75_6a69_7261_2f62_6f75_6e63_6500_0001);

async fn run(
    store: &Store,
    person_id: Uuid,
    ctx: &CommandContext,
    at: DateTime<Utc>,
    command: PersonCommand,
) -> Result<bool, PersonCommandError> {
    let stream = StreamName::new(kujira_domain::person::CATEGORY, person_id);
    let done = kujira_store::execute::<Person>(store, &stream, ctx, None, |state| {
        Person::decide_for(PersonContext { person_id, at }, state, &command)
    })
    .await?;
    Ok(!done.recorded.is_empty())
}

/// Opts the person out of follow-up mail (`opted_out = true`, `MailOptedOut`) or
/// back in (`MailOptedIn`). Returns whether anything changed: doing it twice records
/// one fact. `actor` is the command path's actor (`applicant`, `staff:<id>`).
pub async fn set_follow_ups_opted_out(
    store: &Store,
    person_id: Uuid,
    opted_out: bool,
    via: OptOutVia,
    actor: &str,
    at: DateTime<Utc>,
) -> Result<bool, PersonCommandError> {
    let command = if opted_out {
        PersonCommand::OptOut { via }
    } else {
        PersonCommand::OptIn { via }
    };
    run(store, person_id, &CommandContext::new(actor), at, command).await
}

/// Clears the person's bounce mark (`BounceCleared`) once the desk has corrected
/// their address: follow-ups go to them again. Returns whether there was a mark.
/// `actor` is the staff member (`staff:<user id>`).
pub async fn clear_bounce(
    store: &Store,
    person_id: Uuid,
    actor: &str,
    at: DateTime<Utc>,
) -> Result<bool, PersonCommandError> {
    run(
        store,
        person_id,
        &CommandContext::new(actor),
        at,
        PersonCommand::ClearBounce,
    )
    .await
}

/// Marks the person's address as bouncing after a permanent SMTP failure of the
/// delivery `key` (`AddressBounced`).
pub(crate) async fn record_bounce(
    store: &Store,
    person_id: Uuid,
    code: u16,
    key: &str,
    at: DateTime<Utc>,
) -> Result<bool, PersonCommandError> {
    let ctx = CommandContext::new("system:scheduler")
        .command_id(Uuid::new_v5(&BOUNCE_NAMESPACE, key.as_bytes()));
    run(
        store,
        person_id,
        &ctx,
        at,
        PersonCommand::RecordBounce {
            code,
            delivery_key: key.to_owned(),
        },
    )
    .await
}
