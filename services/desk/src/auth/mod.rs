//! Who is at the desk and what they may do: roles, rights, the [`Staff`] extractor
//! and the [`Require`] guard.
//!
//! The session (tower-sessions, stored in PostgreSQL) holds only the user's id. The
//! account is read again on every request, so a role change applies at once and a
//! disabled account's sessions stop working at its next request.

pub mod limit;
pub mod login;
pub mod next;
pub mod password;

use std::marker::PhantomData;
use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::Method;
use axum::http::request::Parts;
use kujira_config::CityWords;
use kujira_eventlog::Metadata;
use maud::Markup;
use serde::{Deserialize, Serialize};
use tower_sessions::Session;
use uuid::Uuid;

use crate::DeskState;
use crate::error::AppError;
use crate::form::CsrfToken;

/// The session key under which the logged-in user's id is kept.
pub(crate) const SESSION_USER: &str = "staff_user";

/// What the session stores about the person logged in.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct SessionUser {
    pub user_id: Uuid,
    /// When the login happened (the desk's clock).
    pub since: chrono::DateTime<chrono::Utc>,
}

/// A staff member's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Users, tours, KPI targets and settings, and everything a concierge does.
    Admin,
    /// Full case data and every case action.
    Concierge,
    /// City staff: aggregates and anonymised lists only.
    Viewer,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::Concierge, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Concierge => "concierge",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s.trim())
    }

    /// The role's name on pages.
    pub fn label_ja(self) -> &'static str {
        match self {
            Role::Admin => "管理者",
            Role::Concierge => "移住コンシェルジュ",
            Role::Viewer => "閲覧者（集計のみ）",
        }
    }

    /// Whether this role has `right`. The one place that maps roles to rights.
    pub fn can(self, right: Right) -> bool {
        match right {
            Right::ViewAggregates => true,
            Right::ViewPersonalData | Right::ActOnCases => {
                matches!(self, Role::Admin | Role::Concierge)
            }
            Right::ManageUsers
            | Right::ManageTours
            | Right::ManageSettings
            | Right::ManagePrivacy => self == Role::Admin,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a handler may need. Check with [`Staff::require`] or [`Require`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Right {
    /// Board counts, KPI, anonymised lists (every role).
    ViewAggregates,
    /// Names, kana, email, phone, postal code and free text of applicants.
    ViewPersonalData,
    /// Every case action (assign, phase, contact, schedule, move, close, merge).
    ActOnCases,
    /// Staff accounts.
    ManageUsers,
    /// Creating, editing, publishing and cancelling tours.
    ManageTours,
    /// KPI targets and desk settings.
    ManageSettings,
    /// APPI duties: the audit trail, disclosure (開示) and erasure (消去) of a
    /// person, the erasure records.
    ManagePrivacy,
}

/// The logged-in, active staff member. As an extractor it answers anonymous
/// requests (and disabled accounts, whose session it ends) with a 303 to
/// `/desk/login?next=<this page>`.
#[derive(Debug, Clone)]
pub struct Staff {
    pub id: Uuid,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub(crate) csrf_token: String,
    pub(crate) words: Arc<CityWords>,
}

impl Staff {
    pub fn can(&self, right: Right) -> bool {
        self.role.can(right)
    }

    /// `Ok` when the role has `right`, else a Japanese 403 page.
    pub fn require(&self, right: Right) -> Result<(), AppError> {
        if self.can(right) {
            Ok(())
        } else {
            tracing::info!(user_id = %self.id, role = %self.role, ?right, "refused: role lacks the right");
            Err(AppError::Forbidden)
        }
    }

    /// The actor in event metadata: `staff:<user id>`.
    pub fn actor(&self) -> String {
        format!("staff:{}", self.id)
    }

    /// Metadata for the events of one request by this staff member.
    pub fn metadata(&self) -> Metadata {
        Metadata::new(self.actor(), Uuid::now_v7())
    }

    /// The CSRF token for the hidden field of a form on this page.
    pub fn csrf_token(&self) -> &str {
        &self.csrf_token
    }

    /// The hidden CSRF field every desk form must carry.
    pub fn csrf_field(&self) -> Markup {
        crate::form::csrf_field(&self.csrf_token)
    }

    pub fn words(&self) -> &CityWords {
        &self.words
    }
}

/// Where a login should lead back to: the page asked for, for GET requests.
fn next_of(parts: &Parts) -> Option<String> {
    if parts.method != Method::GET && parts.method != Method::HEAD {
        return None;
    }
    let target = parts
        .uri
        .path_and_query()
        .map_or(parts.uri.path(), |pq| pq.as_str());
    next::safe_next(target)
}

impl<S> FromRequestParts<S> for Staff
where
    S: Send + Sync,
    DeskState: FromRef<S>,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let desk = DeskState::from_ref(state);
        let session = parts
            .extensions
            .get::<Session>()
            .cloned()
            .ok_or_else(|| AppError::internal("the desk session layer is missing"))?;
        let login_required = || AppError::LoginRequired {
            next: next_of(parts),
        };
        let Some(held) = session
            .get::<SessionUser>(SESSION_USER)
            .await
            .map_err(AppError::internal)?
        else {
            return Err(login_required());
        };
        let user = desk.users().find(held.user_id).await?;
        let valid = |u: &crate::users::StaffUser| {
            !u.disabled && u.sessions_valid_after.is_none_or(|t| held.since >= t)
        };
        let Some(user) = user.filter(valid) else {
            // Disabled, or a new password was set, since the login: the session ends.
            tracing::info!(user_id = %held.user_id, "session ended: account disabled or password reset");
            session.flush().await.map_err(AppError::internal)?;
            return Err(login_required());
        };
        let csrf_token = parts
            .extensions
            .get::<CsrfToken>()
            .map(|t| t.0.clone())
            .ok_or_else(|| AppError::internal("the desk CSRF layer is missing"))?;
        Ok(Staff {
            id: user.user_id,
            email: user.email,
            display_name: user.display_name,
            role: user.role,
            csrf_token,
            words: desk.words().clone(),
        })
    }
}

/// A right as a type, for [`Require`].
pub trait NeedRight: Send + Sync + 'static {
    const RIGHT: Right;
}

/// Marker types for [`Require`]: `Require<need::ManageUsers>`.
pub mod need {
    use super::{NeedRight, Right};

    macro_rules! markers {
        ($($name:ident),*) => {$(
            #[derive(Debug, Clone, Copy)]
            pub struct $name;
            impl NeedRight for $name {
                const RIGHT: Right = Right::$name;
            }
        )*};
    }
    markers!(
        ViewAggregates,
        ViewPersonalData,
        ActOnCases,
        ManageUsers,
        ManageTours,
        ManageSettings,
        ManagePrivacy
    );
}

/// A [`Staff`] member whose role has `R::RIGHT`; others get a 403 page.
/// `async fn h(Require(staff, ..): Require<need::ManageUsers>)`, or use `.0`.
#[derive(Debug, Clone)]
pub struct Require<R: NeedRight>(pub Staff, pub PhantomData<R>);

impl<R: NeedRight> std::ops::Deref for Require<R> {
    type Target = Staff;
    fn deref(&self) -> &Staff {
        &self.0
    }
}

impl<S, R> FromRequestParts<S> for Require<R>
where
    S: Send + Sync,
    DeskState: FromRef<S>,
    R: NeedRight,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let staff = Staff::from_request_parts(parts, state).await?;
        staff.require(R::RIGHT)?;
        Ok(Require(staff, PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rights_follow_the_roles() {
        use Right::*;
        for right in [
            ViewAggregates,
            ViewPersonalData,
            ActOnCases,
            ManageUsers,
            ManageTours,
            ManageSettings,
            ManagePrivacy,
        ] {
            assert!(Role::Admin.can(right), "admin {right:?}");
        }
        assert!(Role::Concierge.can(ViewPersonalData) && Role::Concierge.can(ActOnCases));
        assert!(!Role::Concierge.can(ManageUsers) && !Role::Concierge.can(ManageTours));
        assert!(!Role::Concierge.can(ManageSettings) && !Role::Concierge.can(ManagePrivacy));
        assert!(Role::Viewer.can(ViewAggregates));
        for right in [
            ViewPersonalData,
            ActOnCases,
            ManageUsers,
            ManageTours,
            ManageSettings,
            ManagePrivacy,
        ] {
            assert!(!Role::Viewer.can(right), "viewer {right:?}");
        }
    }

    #[test]
    fn roles_parse_from_their_names_only() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("root"), None);
        assert_eq!(Role::parse("Admin"), None);
        assert_eq!(Role::parse(""), None);
    }
}
