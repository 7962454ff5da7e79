//! The events of a staff account, on the stream `staff-<user id>`.
//!
//! Each is appended in the same transaction as the change to `staff_users`, with
//! metadata naming who made the change (`staff:<admin id>` or `cli`). None holds a
//! password or its hash: a password change would be recorded as the fact only.

use chrono::{DateTime, Utc};
use kujira_eventlog::StreamName;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::Role;

/// The stream category of staff accounts.
pub const CATEGORY: &str = "staff";

pub fn stream(user_id: Uuid) -> StreamName {
    StreamName::new(CATEGORY, user_id)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum StaffEvent {
    StaffUserAdded {
        user_id: Uuid,
        email: String,
        display_name: String,
        role: Role,
        at: DateTime<Utc>,
    },
    StaffRoleChanged {
        user_id: Uuid,
        from: Role,
        to: Role,
        at: DateTime<Utc>,
    },
    StaffUserDisabled {
        user_id: Uuid,
        at: DateTime<Utc>,
    },
    StaffUserEnabled {
        user_id: Uuid,
        at: DateTime<Utc>,
    },
    /// An admin lifted a failed-login lockout before it ran out.
    StaffUserUnlocked {
        user_id: Uuid,
        at: DateTime<Utc>,
    },
    /// A new password was set (the fact only); the account's sessions ended.
    StaffPasswordSet {
        user_id: Uuid,
        at: DateTime<Utc>,
    },
}

impl StaffEvent {
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::StaffUserAdded { .. } => "StaffUserAdded",
            Self::StaffRoleChanged { .. } => "StaffRoleChanged",
            Self::StaffUserDisabled { .. } => "StaffUserDisabled",
            Self::StaffUserEnabled { .. } => "StaffUserEnabled",
            Self::StaffUserUnlocked { .. } => "StaffUserUnlocked",
            Self::StaffPasswordSet { .. } => "StaffPasswordSet",
        }
    }
}
