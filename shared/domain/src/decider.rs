//! The decider pattern shared by every aggregate.

/// An aggregate: what it remembers (`State`), what it is asked (`Command`), and the
/// facts it records (`Event`).
pub trait Decider {
    type State: Default + Clone;
    type Command;
    type Event;
    type Error;

    /// Decides which events a command produces, given the current state.
    fn decide(
        state: &Self::State,
        command: &Self::Command,
    ) -> Result<Vec<Self::Event>, Self::Error>;

    /// Folds one event into the state. Never fails: events are facts.
    fn evolve(state: Self::State, event: &Self::Event) -> Self::State;

    /// Rebuilds the state from a stream's events.
    fn replay<'a>(events: impl IntoIterator<Item = &'a Self::Event>) -> Self::State
    where
        Self::Event: 'a,
    {
        events
            .into_iter()
            .fold(Self::State::default(), Self::evolve)
    }
}

/// A decider whose events are stored on a stream: what the one command path
/// (`kujira_store::execute`) needs to know besides deciding.
pub trait Aggregate: Decider {
    /// Whether `event`, appended after the version a staff member saw, means that
    /// their view was stale. Mails and other bookkeeping are not.
    fn significant(_event: &Self::Event) -> bool {
        true
    }

    /// The id of the `index`-th event one command appends to `stream`: derived from
    /// the command id, so that a retried request appends the very same events and the
    /// log recognises it. Aggregates whose facts happen at most once can derive ids
    /// from the facts instead.
    fn event_id(
        command_id: uuid::Uuid,
        stream: &str,
        index: usize,
        _event: &Self::Event,
    ) -> uuid::Uuid {
        uuid::Uuid::new_v5(&command_id, format!("{stream}/{index}").as_bytes())
    }
}
