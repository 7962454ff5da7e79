//! `kujira users ...`: staff accounts from the command line (the first admin has
//! no other way in). Changes are recorded with the actor `cli`.

use std::io::{BufRead, Write};

use anyhow::{Context, bail};
use kujira_eventlog::Metadata;
use uuid::Uuid;

use super::{Changed, NewUser, NewUserError, StaffUser, Users, UsersError};
use crate::auth::Role;
use crate::auth::password::{MIN_CHARS, Password};
use crate::layout::datetime_ja;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RoleArg {
    /// Users, tours, KPI targets and settings, and every case action.
    Admin,
    /// Full case data and every case action.
    Concierge,
    /// Aggregates and anonymised lists only (city staff).
    Viewer,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Self {
        match r {
            RoleArg::Admin => Role::Admin,
            RoleArg::Concierge => Role::Concierge,
            RoleArg::Viewer => Role::Viewer,
        }
    }
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum UsersCommand {
    /// Adds a staff account. The password is read as one line from standard input
    /// (at least 12 characters); on a terminal it is asked for without echo.
    Add {
        email: String,
        #[arg(long, value_enum)]
        role: RoleArg,
        /// The name shown on the desk (default: the part of the address before @).
        #[arg(long)]
        name: Option<String>,
    },
    /// Lists every account: email, name, role, disabled, last login.
    List,
    /// Changes an account's role.
    SetRole {
        email: String,
        #[arg(value_enum)]
        role: RoleArg,
    },
    /// Disables an account: it can no longer log in, and its sessions end.
    Disable { email: String },
    /// Enables a disabled account again.
    Enable { email: String },
    /// Lifts a failed-login lockout before its 15 minutes run out.
    Unlock { email: String },
    /// Sets a new password (one line from standard input, as for `add`) and ends
    /// the account's sessions.
    SetPassword { email: String },
}

/// Where `users add` reads the password from.
pub enum PasswordInput<'a> {
    /// One line from this reader (a pipe, a file, a test).
    Line(&'a mut dyn BufRead),
    /// The terminal, without echo.
    Terminal,
}

impl std::fmt::Debug for PasswordInput<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Line(_) => "PasswordInput::Line",
            Self::Terminal => "PasswordInput::Terminal",
        })
    }
}

impl<'a> PasswordInput<'a> {
    /// The terminal when standard input is one, else one line of `stdin`.
    pub fn from_stdin(stdin: &'a mut std::io::StdinLock<'static>) -> Self {
        use std::io::IsTerminal;
        if std::io::stdin().is_terminal() {
            Self::Terminal
        } else {
            Self::Line(stdin)
        }
    }

    fn read(self) -> anyhow::Result<String> {
        let mut line = match self {
            Self::Terminal => rpassword::prompt_password(format!(
                "パスワード（{MIN_CHARS}文字以上）を入力してください: "
            ))
            .context("cannot read the password from the terminal")?,
            Self::Line(input) => {
                let mut line = String::new();
                input
                    .read_line(&mut line)
                    .context("cannot read the password from standard input")?;
                line
            }
        };
        // Only the line ending goes; every other character is part of the password.
        if line.ends_with('\n') {
            line.pop();
            if line.ends_with('\r') {
                line.pop();
            }
        }
        Ok(line)
    }
}

fn user_error(e: UsersError, email: &str) -> anyhow::Error {
    match e {
        UsersError::DuplicateEmail => {
            anyhow::anyhow!("{email}: このメールアドレスのユーザーはすでに登録されています")
        }
        UsersError::NotFound => anyhow::anyhow!("{email}: ユーザーが見つかりません"),
        UsersError::LastAdmin => anyhow::anyhow!(
            "{email}: 有効な管理者が1人もいなくなるため、この変更はできません（先に別のユーザーを admin にしてください）"
        ),
        other => anyhow::Error::new(other).context(format!("{email}: cannot change the account")),
    }
}

async fn by_email(users: &Users, email: &str) -> anyhow::Result<StaffUser> {
    users
        .find_by_email(email)
        .await
        .context("cannot read the staff accounts")?
        .ok_or_else(|| anyhow::anyhow!("{email}: ユーザーが見つかりません"))
}

/// Runs one `kujira users` subcommand, writing its result to `out`.
pub async fn run_cli(
    state: &crate::DeskState,
    cmd: UsersCommand,
    password: PasswordInput<'_>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let users = state.users();
    let meta = || Metadata::new("cli", Uuid::now_v7());
    match cmd {
        UsersCommand::Add { email, role, name } => {
            let name = name
                .unwrap_or_else(|| email.split('@').next().unwrap_or(email.as_str()).to_owned());
            // The address and the name are checked before the password is asked for.
            let placeholder = "x".repeat(MIN_CHARS);
            if let Err(errors) =
                NewUser::parse(&email, &name, Role::from(role).as_str(), &placeholder)
            {
                bail!("{}", errors_text(&errors));
            }
            let secret = password.read()?;
            let new = NewUser::parse(&email, &name, Role::from(role).as_str(), &secret)
                .map_err(|errors| anyhow::anyhow!("{}", errors_text(&errors)))?;
            let user = users
                .add(new, &meta())
                .await
                .map_err(|e| user_error(e, &email))?;
            writeln!(out, "{}", user.user_id)?;
        }
        UsersCommand::List => {
            let tz = state.config().timezone;
            let all = users
                .list()
                .await
                .context("cannot read the staff accounts")?;
            writeln!(out, "email\tname\trole\tdisabled\tlast_login")?;
            for u in all {
                writeln!(
                    out,
                    "{}\t{}\t{}\t{}\t{}",
                    u.email,
                    u.display_name,
                    u.role,
                    if u.disabled { "yes" } else { "no" },
                    datetime_ja(u.last_login_at, tz)
                )?;
            }
        }
        UsersCommand::SetRole { email, role } => {
            let user = by_email(users, &email).await?;
            let done = users
                .set_role(user.user_id, role.into(), &meta())
                .await
                .map_err(|e| user_error(e, &email))?;
            report(out, done, &email, &format!("role {}", Role::from(role)))?;
        }
        UsersCommand::Disable { email } => {
            let user = by_email(users, &email).await?;
            let done = users
                .disable(user.user_id, &meta())
                .await
                .map_err(|e| user_error(e, &email))?;
            report(out, done, &email, "disabled")?;
        }
        UsersCommand::Enable { email } => {
            let user = by_email(users, &email).await?;
            let done = users
                .enable(user.user_id, &meta())
                .await
                .map_err(|e| user_error(e, &email))?;
            report(out, done, &email, "enabled")?;
        }
        UsersCommand::SetPassword { email } => {
            let user = by_email(users, &email).await?;
            let secret = password.read()?;
            let new = Password::new(&secret)
                .map_err(|e| anyhow::anyhow!("password: {}", e.message_ja()))?;
            let done = users
                .set_password(user.user_id, new, &meta())
                .await
                .map_err(|e| user_error(e, &email))?;
            report(out, done, &email, "password set; its sessions ended")?;
        }
        UsersCommand::Unlock { email } => {
            let user = by_email(users, &email).await?;
            let done = users
                .unlock(user.user_id, &meta())
                .await
                .map_err(|e| user_error(e, &email))?;
            report(out, done, &email, "unlocked")?;
        }
    }
    Ok(())
}

fn report(out: &mut impl Write, done: Changed, email: &str, what: &str) -> std::io::Result<()> {
    match done {
        Changed::Yes => writeln!(out, "{email}: {what}"),
        Changed::AlreadySo => writeln!(out, "{email}: {what} already; nothing changed"),
    }
}

/// Every refused field, naming the field.
fn errors_text(errors: &[NewUserError]) -> String {
    let text: Vec<String> = errors
        .iter()
        .map(|e| format!("{}: {}", e.field(), e.message_ja()))
        .collect();
    text.join(" / ")
}
