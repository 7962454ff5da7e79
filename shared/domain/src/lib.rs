//! The pure heart of kujira: events, commands, deciders and value types.
//!
//! No IO lives here: no database, no HTTP, no clock. Time comes in as an argument.
//! Each aggregate follows the decider pattern, `decide(state, command) -> events`
//! and `evolve(state, event) -> state`, and is tested given/when/then.
//!
//! Events are facts, named in the past tense. An event type is never edited once
//! it has been stored: a new shape is a new type (`...V2`). Personal data always sits
//! in one top-level `personal` part, beside a plaintext `person_id`, apart from the
//! fields that statistics use: the store encrypts that part with the person's own key
//! (crypto-shredding), and domain types read it as [`personal::Personal`].

pub mod calendar;
pub mod casework;
pub mod decider;
pub mod funnel;
pub mod inquiry;
pub mod mail;
pub mod person;
pub mod personal;
pub mod tour;
pub mod values;
