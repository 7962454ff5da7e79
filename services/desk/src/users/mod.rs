//! Staff accounts: the `staff_users` table, the login check with its lockout, and
//! the admin's changes (add, role, disable, enable, unlock).
//!
//! # Why the table and the event are written in one transaction
//!
//! The table is the working store: it alone holds the password hashes and the
//! failed-login bookkeeping, which must never go into an event, so it cannot be a
//! projection rebuilt from the log. Every admin change is still a fact for the
//! audit trail, so each one appends its event to `staff-<user id>` in the same
//! transaction as the row change ([`kujira_eventlog::Transaction`]): both happen or
//! neither does, and the unique e-mail constraint decides a race between two
//! admins adding the same address before any event exists. `staff_users.version`
//! is the stream's version, so the append expects exactly the version of the row
//! it locked. Changes to accounts are serialised by one transaction-scoped
//! advisory lock, which also makes the "at least one active admin" rule race-free.

mod cli;
pub mod events;
pub(crate) mod pages;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use kujira_config::Clock;
use kujira_domain::values::{Email, PersonName, ValueError};
use kujira_eventlog::{EventStore, ExpectedVersion, Metadata, NewEvent};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

pub use cli::{PasswordInput, RoleArg, UsersCommand, run_cli};
pub use events::StaffEvent;

use crate::auth::Role;
use crate::auth::password::{self, Password, PasswordError};

/// Failed logins in a row that lock an account.
pub const MAX_FAILED_LOGINS: i32 = 5;
/// How long a lockout lasts.
pub const LOCKOUT_MINUTES: i64 = 15;

/// Serialises every change to staff accounts (see the module docs).
const CHANGE_LOCK: &str = "kujira.desk.staff_users";

/// A staff account as stored, without its password hash.
#[derive(Debug, Clone, PartialEq)]
pub struct StaffUser {
    pub user_id: Uuid,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub disabled: bool,
    pub failed_logins: i32,
    pub locked_until: Option<DateTime<Utc>>,
    pub last_login_at: Option<DateTime<Utc>>,
    /// Sessions that began before this are refused (a new password was set).
    pub sessions_valid_after: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub version: i64,
}

impl StaffUser {
    /// Whether a failed-login lockout is running at `now`.
    pub fn locked(&self, now: DateTime<Utc>) -> bool {
        self.locked_until.is_some_and(|t| t > now)
    }
}

const COLUMNS: &str = "user_id, email, display_name, role, disabled, failed_logins, \
     locked_until, last_login_at, sessions_valid_after, created_at, version";

fn from_row(row: &PgRow) -> Result<StaffUser, sqlx::Error> {
    let role: String = row.try_get("role")?;
    Ok(StaffUser {
        user_id: row.try_get("user_id")?,
        email: row.try_get("email")?,
        display_name: row.try_get("display_name")?,
        role: Role::parse(&role).ok_or_else(|| sqlx::Error::ColumnDecode {
            index: "role".into(),
            source: format!("unknown role {role:?}").into(),
        })?,
        disabled: row.try_get("disabled")?,
        failed_logins: row.try_get("failed_logins")?,
        locked_until: row.try_get("locked_until")?,
        last_login_at: row.try_get("last_login_at")?,
        sessions_valid_after: row.try_get("sessions_valid_after")?,
        created_at: row.try_get("created_at")?,
        version: row.try_get("version")?,
    })
}

/// A new account, checked field by field.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: Email,
    pub display_name: PersonName,
    pub role: Role,
    pub password: Password,
}

/// Which field of a new account is wrong, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewUserError {
    Email(ValueError),
    DisplayName(ValueError),
    Role,
    Password(PasswordError),
}

impl NewUserError {
    /// The form field at fault.
    pub fn field(&self) -> &'static str {
        match self {
            Self::Email(_) => "email",
            Self::DisplayName(_) => "display_name",
            Self::Role => "role",
            Self::Password(_) => "password",
        }
    }

    pub fn message_ja(&self) -> String {
        match self {
            Self::Email(e) | Self::DisplayName(e) => e.message_ja(),
            Self::Role => "役割を選んでください。".into(),
            Self::Password(e) => e.message_ja(),
        }
    }
}

impl NewUser {
    /// Checks every field; returns every error, in the order of the form.
    pub fn parse(
        email: &str,
        display_name: &str,
        role: &str,
        password: &str,
    ) -> Result<Self, Vec<NewUserError>> {
        let mut errors = Vec::new();
        let email = Email::parse(email)
            .map_err(|e| errors.push(NewUserError::Email(e)))
            .ok();
        let display_name = PersonName::parse(display_name)
            .map_err(|e| errors.push(NewUserError::DisplayName(e)))
            .ok();
        let role = Role::parse(role);
        if role.is_none() {
            errors.push(NewUserError::Role);
        }
        let password = Password::new(password)
            .map_err(|e| errors.push(NewUserError::Password(e)))
            .ok();
        match (email, display_name, role, password) {
            (Some(email), Some(display_name), Some(role), Some(password)) if errors.is_empty() => {
                Ok(Self {
                    email,
                    display_name,
                    role,
                    password,
                })
            }
            _ => Err(errors),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    #[error("an account with this e-mail address already exists")]
    DuplicateEmail,
    #[error("no such account")]
    NotFound,
    /// The change would leave no active admin.
    #[error("the last active admin cannot lose the admin role or be disabled")]
    LastAdmin,
    #[error(transparent)]
    Event(#[from] kujira_eventlog::Error),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl UsersError {
    /// The sentence shown to an admin, for the errors an admin can act on.
    pub fn message_ja(&self) -> Option<&'static str> {
        match self {
            Self::DuplicateEmail => Some("このメールアドレスのユーザーはすでに登録されています。"),
            Self::NotFound => Some("指定されたユーザーは見つかりませんでした。"),
            Self::LastAdmin => Some(
                "有効な管理者が1人もいなくなるため、この変更はできません。先に別のユーザーを管理者にしてください。",
            ),
            _ => None,
        }
    }
}

/// Whether a change did anything (a change to the current value records nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Changed {
    Yes,
    AlreadySo,
}

/// The staff accounts. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Users {
    store: EventStore,
    clock: Arc<dyn Clock>,
}

impl Users {
    pub fn new(store: EventStore, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub async fn find(&self, user_id: Uuid) -> Result<Option<StaffUser>, sqlx::Error> {
        sqlx::query(&format!(
            "SELECT {COLUMNS} FROM staff_users WHERE user_id = $1"
        ))
        .bind(user_id)
        .fetch_optional(self.store.pool())
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
    }

    /// The account with this address, whatever its case.
    pub async fn find_by_email(&self, email: &str) -> Result<Option<StaffUser>, sqlx::Error> {
        sqlx::query(&format!(
            "SELECT {COLUMNS} FROM staff_users WHERE lower(email) = lower($1)"
        ))
        .bind(lookup_key(email))
        .fetch_optional(self.store.pool())
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
    }

    /// Every account: admins first, then by name.
    pub async fn list(&self) -> Result<Vec<StaffUser>, sqlx::Error> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM staff_users \
             ORDER BY disabled, CASE role WHEN 'admin' THEN 0 WHEN 'concierge' THEN 1 ELSE 2 END, \
                      display_name, lower(email)"
        ))
        .fetch_all(self.store.pool())
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// Creates an account and records `StaffUserAdded` with `meta`.
    pub async fn add(&self, new: NewUser, meta: &Metadata) -> Result<StaffUser, UsersError> {
        let hash = password::hash_blocking(new.password).await?;
        let now = self.now();
        let user_id = Uuid::now_v7();
        let mut tx = self.store.begin().await?;
        lock_changes(tx.conn()).await?;
        let inserted = sqlx::query(&format!(
            "INSERT INTO staff_users \
               (user_id, email, display_name, role, password_hash, created_at, updated_at, version) \
             VALUES ($1, $2, $3, $4, $5, $6, $6, 1) RETURNING {COLUMNS}"
        ))
        .bind(user_id)
        .bind(new.email.as_str())
        .bind(new.display_name.as_str())
        .bind(new.role.as_str())
        .bind(&hash)
        .bind(now)
        .fetch_one(&mut *tx.conn())
        .await;
        let row = match inserted {
            Ok(row) => row,
            Err(sqlx::Error::Database(db)) if db.constraint() == Some("staff_users_email_key") => {
                return Err(UsersError::DuplicateEmail);
            }
            Err(e) => return Err(e.into()),
        };
        let user = from_row(&row)?;
        let event = StaffEvent::StaffUserAdded {
            user_id,
            email: user.email.clone(),
            display_name: user.display_name.clone(),
            role: user.role,
            at: now,
        };
        tx.append(
            &events::stream(user_id),
            ExpectedVersion::NoStream,
            vec![encode(&event, meta)?],
        )
        .await?;
        tx.commit().await?;
        tracing::info!(%user_id, role = %user.role, actor = %meta.actor, "staff account added");
        Ok(user)
    }

    pub async fn set_role(
        &self,
        user_id: Uuid,
        role: Role,
        meta: &Metadata,
    ) -> Result<Changed, UsersError> {
        self.change(user_id, meta, |u, at| {
            (u.role != role).then_some(StaffEvent::StaffRoleChanged {
                user_id,
                from: u.role,
                to: role,
                at,
            })
        })
        .await
    }

    pub async fn disable(&self, user_id: Uuid, meta: &Metadata) -> Result<Changed, UsersError> {
        self.change(user_id, meta, |u, at| {
            (!u.disabled).then_some(StaffEvent::StaffUserDisabled { user_id, at })
        })
        .await
    }

    pub async fn enable(&self, user_id: Uuid, meta: &Metadata) -> Result<Changed, UsersError> {
        self.change(user_id, meta, |u, at| {
            u.disabled
                .then_some(StaffEvent::StaffUserEnabled { user_id, at })
        })
        .await
    }

    /// Lifts a failed-login lockout (and forgets the failures counted so far).
    pub async fn unlock(&self, user_id: Uuid, meta: &Metadata) -> Result<Changed, UsersError> {
        self.change(user_id, meta, |u, at| {
            (u.locked(at) || u.failed_logins > 0)
                .then_some(StaffEvent::StaffUserUnlocked { user_id, at })
        })
        .await
    }

    /// Sets a new password (an admin's reset, or the CLI's) and ends every session
    /// of the account. The event records the fact only, never the hash. A locked
    /// account is unlocked: whoever set the password may give it to its owner.
    pub async fn set_password(
        &self,
        user_id: Uuid,
        password: Password,
        meta: &Metadata,
    ) -> Result<Changed, UsersError> {
        let hash = password::hash_blocking(password).await?;
        self.change_with(user_id, meta, Some(hash), |_, at| {
            Some(StaffEvent::StaffPasswordSet { user_id, at })
        })
        .await
    }

    async fn change(
        &self,
        user_id: Uuid,
        meta: &Metadata,
        decide: impl FnOnce(&StaffUser, DateTime<Utc>) -> Option<StaffEvent>,
    ) -> Result<Changed, UsersError> {
        self.change_with(user_id, meta, None, decide).await
    }

    /// Locks the row, decides, refuses a change that leaves no active admin,
    /// applies the event to the row and appends it, all in one transaction.
    async fn change_with(
        &self,
        user_id: Uuid,
        meta: &Metadata,
        new_hash: Option<String>,
        decide: impl FnOnce(&StaffUser, DateTime<Utc>) -> Option<StaffEvent>,
    ) -> Result<Changed, UsersError> {
        let now = self.now();
        let mut tx = self.store.begin().await?;
        lock_changes(tx.conn()).await?;
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM staff_users WHERE user_id = $1 FOR UPDATE"
        ))
        .bind(user_id)
        .fetch_optional(&mut *tx.conn())
        .await?;
        let user = row
            .as_ref()
            .map(from_row)
            .transpose()?
            .ok_or(UsersError::NotFound)?;
        let Some(event) = decide(&user, now) else {
            return Ok(Changed::AlreadySo);
        };
        let removes_an_admin = user.role == Role::Admin
            && !user.disabled
            && matches!(
                event,
                StaffEvent::StaffRoleChanged { .. } | StaffEvent::StaffUserDisabled { .. }
            );
        if removes_an_admin {
            let others: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM staff_users \
                 WHERE role = 'admin' AND NOT disabled AND user_id <> $1",
            )
            .bind(user_id)
            .fetch_one(&mut *tx.conn())
            .await?;
            if others == 0 {
                return Err(UsersError::LastAdmin);
            }
        }
        let (role, also) = match &event {
            StaffEvent::StaffRoleChanged { to, .. } => (*to, ""),
            StaffEvent::StaffUserDisabled { .. } => (user.role, ", disabled = true"),
            StaffEvent::StaffUserEnabled { .. } => (user.role, ", disabled = false"),
            StaffEvent::StaffUserUnlocked { .. } => {
                (user.role, ", failed_logins = 0, locked_until = NULL")
            }
            StaffEvent::StaffPasswordSet { .. } => (
                user.role,
                ", sessions_valid_after = $2, failed_logins = 0, locked_until = NULL",
            ),
            StaffEvent::StaffUserAdded { .. } => {
                return Err(anyhow::anyhow!("an account cannot be added twice").into());
            }
        };
        sqlx::query(&format!(
            "UPDATE staff_users SET role = $3, password_hash = coalesce($4::text, password_hash){also}, \
             version = version + 1, updated_at = $2 WHERE user_id = $1"
        ))
        .bind(user_id)
        .bind(now)
        .bind(role.as_str())
        .bind(new_hash)
        .execute(&mut *tx.conn())
        .await?;
        tx.append(
            &events::stream(user_id),
            ExpectedVersion::Exact(user.version as u64),
            vec![encode(&event, meta)?],
        )
        .await?;
        tx.commit().await?;
        tracing::info!(%user_id, event = event.event_type(), actor = %meta.actor, "staff account changed");
        Ok(Changed::Yes)
    }

    /// Checks a login. `None` for every failure alike: unknown address, wrong
    /// password, running lockout, disabled account. The same statements run and a
    /// password hash is verified in every case, so neither the answer nor the time
    /// taken tells which it was. The fifth failure in a row locks the account for
    /// [`LOCKOUT_MINUTES`]; a success resets the count.
    pub async fn authenticate(
        &self,
        email: &str,
        password: &str,
    ) -> Result<Option<StaffUser>, UsersError> {
        let now = self.now();
        let key = lookup_key(email);
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS}, password_hash FROM staff_users WHERE lower(email) = lower($1)"
        ))
        .bind(&key)
        .fetch_optional(self.store.pool())
        .await?;
        let found = match &row {
            Some(r) => Some((from_row(r)?, r.try_get::<String, _>("password_hash")?)),
            None => None,
        };
        let hash = found.as_ref().map(|(_, h)| h.clone());
        let matches = password::verify_blocking(password.to_owned(), hash).await?;
        if let Some((user, _)) = found
            && matches
            && !user.disabled
            && !user.locked(now)
        {
            sqlx::query(
                "UPDATE staff_users SET failed_logins = 0, locked_until = NULL, \
                 last_login_at = $2 WHERE user_id = $1",
            )
            .bind(user.user_id)
            .bind(now)
            .execute(self.store.pool())
            .await?;
            return Ok(Some(StaffUser {
                failed_logins: 0,
                locked_until: None,
                last_login_at: Some(now),
                ..user
            }));
        }
        // Counted only for an active account outside a lockout; for an unknown
        // address the statement matches nothing but costs the same round trip.
        sqlx::query(
            "UPDATE staff_users SET \
               failed_logins = CASE WHEN failed_logins + 1 >= $3 THEN 0 ELSE failed_logins + 1 END, \
               locked_until = CASE WHEN failed_logins + 1 >= $3 THEN $4 ELSE NULL END, \
               last_failed_login_at = $2 \
             WHERE lower(email) = lower($1) AND NOT disabled \
               AND (locked_until IS NULL OR locked_until <= $2)",
        )
        .bind(&key)
        .bind(now)
        .bind(MAX_FAILED_LOGINS)
        .bind(now + Duration::minutes(LOCKOUT_MINUTES))
        .execute(self.store.pool())
        .await?;
        Ok(None)
    }
}

/// The address as the table stores it (NFKC, trimmed) when it parses, else as typed.
fn lookup_key(email: &str) -> String {
    Email::parse(email).map_or_else(|_| email.trim().to_owned(), |e| e.as_str().to_owned())
}

async fn lock_changes(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
        .bind(CHANGE_LOCK)
        .execute(conn)
        .await?;
    Ok(())
}

fn encode(event: &StaffEvent, meta: &Metadata) -> Result<NewEvent, kujira_eventlog::Error> {
    NewEvent::encode(Uuid::now_v7(), event, meta.clone())
}
