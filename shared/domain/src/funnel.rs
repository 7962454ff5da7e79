//! The form funnel: form viewed → confirm viewed → submitted, the chain the city
//! reports with each step's conversion rate.
//!
//! One journey is one stream, `funnel-<form token id>`: the one-time token a form
//! page hands out names the journey, so no cookie is needed and nothing personal is
//! kept. A reload of the confirm page appends another `ConfirmViewed` to the same
//! stream; KPI projections count journeys (streams) that reached a step, not events.
//!
//! A honeypot hit (a bot filling the hidden `website` field) is recorded here as
//! `SpamFlagged` instead of `Submitted`, so the flag sits apart from every case.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The stream category of a journey: `funnel-<token id>`.
pub const CATEGORY: &str = "funnel";

/// Which public form a journey went through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FunnelForm {
    /// 移住相談 (`/inquiry`).
    Inquiry,
    /// オーダーメイドツアー申込 (`/tours/request`).
    TourRequest,
    /// Sign-up to a dated tour (`/tours/<id>`).
    TourSignup,
}

impl FunnelForm {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inquiry => "inquiry",
            Self::TourRequest => "tour_request",
            Self::TourSignup => "tour_signup",
        }
    }
}

/// Why a submission was flagged as spam.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpamReason {
    /// The visually hidden `website` field was filled in.
    Honeypot,
}

/// Steps of one journey. None carries personal data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum FunnelEvent {
    FormViewed {
        form: FunnelForm,
        at: DateTime<Utc>,
    },
    ConfirmViewed {
        form: FunnelForm,
        at: DateTime<Utc>,
    },
    /// The form was accepted: a case (or sign-up) exists. `case_id` links the journey to it.
    Submitted {
        form: FunnelForm,
        at: DateTime<Utc>,
        case_id: uuid::Uuid,
    },
    /// Accepted on the surface, kept out of the pipeline.
    SpamFlagged {
        form: FunnelForm,
        at: DateTime<Utc>,
        reason: SpamReason,
    },
}

impl FunnelEvent {
    pub fn form(&self) -> FunnelForm {
        match self {
            Self::FormViewed { form, .. }
            | Self::ConfirmViewed { form, .. }
            | Self::Submitted { form, .. }
            | Self::SpamFlagged { form, .. } => *form,
        }
    }

    /// The event type string as stored.
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::FormViewed { .. } => "FormViewed",
            Self::ConfirmViewed { .. } => "ConfirmViewed",
            Self::Submitted { .. } => "Submitted",
            Self::SpamFlagged { .. } => "SpamFlagged",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn funnel_events_are_tagged_and_carry_the_form() {
        let at = DateTime::parse_from_rfc3339("2026-11-24T09:00:00+09:00")
            .unwrap()
            .to_utc();
        let e = FunnelEvent::ConfirmViewed {
            form: FunnelForm::TourRequest,
            at,
        };
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["type"], "ConfirmViewed");
        assert_eq!(json["data"]["form"], "tour_request");
        assert_eq!(e.event_type(), "ConfirmViewed");
        let back: FunnelEvent = serde_json::from_value(json).unwrap();
        assert_eq!(back.form(), FunnelForm::TourRequest);
    }
}
