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
