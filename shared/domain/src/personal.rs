//! Personal data as the domain sees it: either known, or erased.
//!
//! Every event that carries personal data keeps it in one top-level `personal`
//! field, beside a plaintext `person_id` naming whose data it is. The store
//! (`kujira_store`) encrypts that field with the person's own key on append, and on
//! read gives back either the plaintext or, once the key is destroyed
//! (crypto-shredding), `null`. [`Personal`] is how a domain type says so: an erased
//! person's events still decode, their statistics still count, and every reader has
//! to decide what to show in place of the data (Cratis Chronicle returns an empty
//! value for the same reason, so that read models keep working).

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A personal part that may have been erased.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Personal<T> {
    Known(T),
    /// The person's key was destroyed: the data can never be read again.
    #[default]
    Erased,
}

impl<T> Personal<T> {
    pub fn known(&self) -> Option<&T> {
        match self {
            Self::Known(t) => Some(t),
            Self::Erased => None,
        }
    }

    pub fn into_known(self) -> Option<T> {
        match self {
            Self::Known(t) => Some(t),
            Self::Erased => None,
        }
    }

    pub fn is_erased(&self) -> bool {
        matches!(self, Self::Erased)
    }

    pub fn as_ref(&self) -> Personal<&T> {
        match self {
            Self::Known(t) => Personal::Known(t),
            Self::Erased => Personal::Erased,
        }
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Personal<U> {
        match self {
            Self::Known(t) => Personal::Known(f(t)),
            Self::Erased => Personal::Erased,
        }
    }
}

impl<T> From<T> for Personal<T> {
    fn from(t: T) -> Self {
        Self::Known(t)
    }
}

impl<T: Serialize> Serialize for Personal<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Known(t) => t.serialize(s),
            Self::Erased => s.serialize_none(),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Personal<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Option::<T>::deserialize(d)? {
            Some(t) => Self::Known(t),
            None => Self::Erased,
        })
    }
}

/// The JSON field that holds an event's personal part.
pub const PERSONAL_FIELD: &str = "personal";
/// The JSON field that names whose personal part it is.
pub const PERSON_FIELD: &str = "person_id";

/// What the desk shows in place of a personal value a viewer may not see.
pub const HIDDEN_JA: &str = "非表示";
/// What the desk shows in place of a personal value that was erased.
pub const ERASED_JA: &str = "削除済み";

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Ev {
        person_id: u32,
        personal: Personal<Inner>,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Inner {
        name: String,
    }

    #[test]
    fn known_data_round_trips_as_the_plain_object() {
        let e = Ev {
            person_id: 1,
            personal: Personal::Known(Inner {
                name: "柏崎".into(),
            }),
        };
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["personal"]["name"], "柏崎");
        assert_eq!(serde_json::from_value::<Ev>(json).unwrap(), e);
    }

    #[test]
    fn erased_data_is_null_and_still_decodes() {
        let json = serde_json::json!({"person_id": 1, "personal": null});
        let e: Ev = serde_json::from_value(json.clone()).unwrap();
        assert!(e.personal.is_erased());
        assert_eq!(serde_json::to_value(&e).unwrap(), json);
    }
}
