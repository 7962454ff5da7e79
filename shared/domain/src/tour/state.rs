//! A tour as its events leave it: details, status, and every sign-up's standing.

use super::*;

/// Where a sign-up stands now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignUpStatus {
    /// Received, not yet decided. Never seen after a whole append is folded.
    Received,
    Confirmed,
    Waitlisted,
    Cancelled,
}

impl SignUpStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SignUpStatus::Received => "received",
            SignUpStatus::Confirmed => "confirmed",
            SignUpStatus::Waitlisted => "waitlisted",
            SignUpStatus::Cancelled => "cancelled",
        }
    }
}

/// One sign-up as rebuilt from the tour's events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignUp {
    pub id: Uuid,
    pub person_id: Uuid,
    pub received_at: DateTime<Utc>,
    pub party: Party,
    pub prefecture: Prefecture,
    pub transport: Option<Transport>,
    pub source: Option<Source>,
    pub personal: Personal<SignUpPersonal>,
    pub status: SignUpStatus,
    /// Set when the party moved from the waiting list to a place.
    pub promoted_at: Option<DateTime<Utc>>,
    /// What it was when it was cancelled, and by whom.
    pub cancelled: Option<(Standing, CancelledBy, DateTime<Utc>)>,
    pub feedback: Option<u8>,
    /// Check-in: `Some(true)` came, `Some(false)` no-show, `None` not recorded.
    pub attended: Option<bool>,
}

impl SignUp {
    pub fn is_confirmed(&self) -> bool {
        self.status == SignUpStatus::Confirmed
    }
}

/// A tour as rebuilt from its stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TourState {
    pub id: Option<Uuid>,
    /// `None` until the tour is scheduled.
    pub details: Option<TourDetails>,
    pub status: TourStatus,
    pub cancel_reason: Option<String>,
    /// How many times staff changed the details (0: as scheduled).
    pub revision: u32,
    /// In order of arrival.
    pub sign_ups: Vec<SignUp>,
}

impl TourState {
    pub fn sign_up(&self, id: Uuid) -> Option<&SignUp> {
        self.sign_ups.iter().find(|s| s.id == id)
    }

    pub(super) fn sign_up_mut(&mut self, id: Uuid) -> Option<&mut SignUp> {
        self.sign_ups.iter_mut().find(|s| s.id == id)
    }

    pub fn confirmed(&self) -> impl Iterator<Item = &SignUp> {
        self.sign_ups.iter().filter(|s| s.is_confirmed())
    }

    /// The waiting list, first come first.
    pub fn waitlist(&self) -> impl Iterator<Item = &SignUp> {
        self.sign_ups
            .iter()
            .filter(|s| s.status == SignUpStatus::Waitlisted)
    }

    pub fn confirmed_parties(&self) -> u32 {
        self.confirmed().count() as u32
    }

    pub fn confirmed_people(&self) -> u32 {
        self.confirmed().map(|s| s.party.people()).sum()
    }

    pub fn waitlist_length(&self) -> u32 {
        self.waitlist().count() as u32
    }

    /// 1-based place on the waiting list.
    pub fn waitlist_position(&self, id: Uuid) -> Option<u32> {
        self.waitlist()
            .position(|s| s.id == id)
            .map(|p| p as u32 + 1)
    }

    /// Parties that can still be confirmed, by the party count alone.
    pub fn places_left(&self) -> u32 {
        let capacity = self.details.as_ref().map_or(0, |d| d.capacity_parties);
        capacity.saturating_sub(self.confirmed_parties())
    }

    /// Whether `party` can be confirmed now, whole.
    pub fn fits(&self, party: Party) -> bool {
        let Some(d) = &self.details else {
            return false;
        };
        self.confirmed_parties() < d.capacity_parties
            && d.max_people
                .is_none_or(|max| self.confirmed_people() + party.people() <= max)
    }

    /// Parties still holding a place or a waiting-list slot.
    pub fn active_sign_ups(&self) -> impl Iterator<Item = &SignUp> {
        self.sign_ups
            .iter()
            .filter(|s| matches!(s.status, SignUpStatus::Confirmed | SignUpStatus::Waitlisted))
    }
}
