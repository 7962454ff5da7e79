//! `kujira`: the one binary. It only composes the services: it reads the
//! configuration, opens the database (a private cluster when `DATABASE_URL` is
//! unset), runs the migrations, and serves every router and worker in one process.

use kujira::{db, serve};

use std::io::Write;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "kujira",
    version,
    about = "移住・定住相談の受付と体験ツアーの運営 (kujira)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the web service, the projections and the mailer (Ctrl-C stops it).
    Serve,
    /// Applies the database migrations and exits.
    Migrate,
    /// Manages trial tours (おためし移住体験ツアー).
    Tours {
        #[command(subcommand)]
        command: kujira_tours::ToursCommand,
    },
    /// Manages staff accounts of the desk (/desk).
    Users {
        #[command(subcommand)]
        command: kujira_desk::UsersCommand,
    },
    /// Shows and rebuilds the projections (the read models).
    Projections {
        #[command(subcommand)]
        command: kujira_projector::ProjectionsCommand,
    },
    /// The scheduler's rules: run them once (as of a given time), show their state.
    Scheduler {
        #[command(subcommand)]
        command: kujira_scheduler::SchedulerCommand,
    },
    /// Personal data (個人情報): sealing legacy events, erasure, export, statistics.
    Privacy {
        #[command(subcommand)]
        command: PrivacyCommand,
    },
}

#[derive(Subcommand)]
enum PrivacyCommand {
    /// Seals, in one transaction, the personal data of events written before it was
    /// encrypted per person. `serve` refuses to start until this has run.
    SealLegacy,
    #[command(flatten)]
    Person(kujira_privacy::PrivacyCommand),
}

fn main() -> std::process::ExitCode {
    // Logs go to stderr so that commands like `tours add` can print only their result.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                "info,sqlx=warn,tower_http=info,tokio_cron_scheduler=warn".into()
            }),
        )
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kujira: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kujira: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Opens the database (joining or starting the private cluster), migrates, runs
/// `f`, and closes the database whatever `f` returned, so that a failed command never
/// leaves a cluster running behind it.
async fn with_db<T>(
    config: &kujira_config::Config,
    f: impl AsyncFnOnce(&db::Database) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let db = db::Database::open(config).await?;
    let result = match db.migrate().await {
        Ok(()) => f(&db).await,
        Err(e) => Err(e),
    };
    let closed = db.close().await;
    let value = result?;
    closed?;
    Ok(value)
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = kujira_config::Config::from_env().context("invalid configuration")?;
    match cli.command {
        Command::Serve => serve::serve(config).await,
        Command::Migrate => {
            with_db(&config, async |_| Ok(())).await?;
            eprintln!("kujira: migrations applied");
            Ok(())
        }
        Command::Tours { command } => {
            with_db(&config, async |db| {
                let store = db.store(&config).await?;
                let state = serve::tours_state(&config, store);
                let mut out = std::io::stdout().lock();
                let result = kujira_tours::run_cli(&state, command, &mut out).await;
                out.flush().ok();
                result
            })
            .await
        }
        Command::Privacy {
            command: PrivacyCommand::SealLegacy,
        } => {
            let report = with_db(&config, async |db| {
                let store = db.store(&config).await?;
                kujira_store::legacy::seal_legacy(store.vault())
                    .await
                    .context("cannot seal the legacy events")
            })
            .await?;
            if report.already_done {
                eprintln!("kujira: nothing to seal: every event's personal data is encrypted");
            } else {
                eprintln!(
                    "kujira: sealed {} events of {} persons",
                    report.sealed, report.persons
                );
            }
            Ok(())
        }
        Command::Privacy {
            command: PrivacyCommand::Person(command),
        } => {
            with_db(&config, async |db| {
                let store = db.store(&config).await?;
                let projector = serve::projector(&config, &store);
                let settle = async || projector.catch_up().await.map(drop);
                let mut out = std::io::stdout().lock();
                let result =
                    kujira_privacy::run_cli(&store, &config, command, settle, &mut out).await;
                out.flush().ok();
                result
            })
            .await
        }
        Command::Users { command } => {
            with_db(&config, async |db| {
                let store = db.store(&config).await?;
                let state = serve::desk_state(&config, store);
                let mut stdin = std::io::stdin().lock();
                let password = kujira_desk::PasswordInput::from_stdin(&mut stdin);
                let mut out = std::io::stdout().lock();
                let result = kujira_desk::run_cli(&state, command, password, &mut out).await;
                out.flush().ok();
                result
            })
            .await
        }
        Command::Scheduler { command } => {
            with_db(&config, async |db| {
                let store = db.store(&config).await?;
                let config = std::sync::Arc::new(config.clone());
                let rules = serve::rules(&config, &store);
                let mut out = std::io::stdout().lock();
                let result = match command {
                    kujira_scheduler::SchedulerCommand::RunOnce { at } => {
                        // `--at` stands for now in every respect: the mailer's quiet
                        // hours and leases read the same fixed clock.
                        let at = at.unwrap_or_else(chrono::Utc::now);
                        let clock = std::sync::Arc::new(kujira_config::FixedClock::new(at));
                        let mailer = serve::mailer(&config, &store, clock)?;
                        kujira_scheduler::rules::run_once(
                            &rules,
                            &serve::projector(&config, &store),
                            &mailer,
                            at,
                            &mut out,
                        )
                        .await
                    }
                    kujira_scheduler::SchedulerCommand::Status => {
                        kujira_scheduler::rules::print_status(&rules, chrono::Utc::now(), &mut out)
                            .await
                    }
                };
                out.flush().ok();
                result
            })
            .await
        }
        Command::Projections { command } => {
            with_db(&config, async |db| {
                let store = db.store(&config).await?;
                let mut out = std::io::stdout().lock();
                let result = kujira_projector::run_cli(
                    &serve::projector(&config, &store),
                    command,
                    &mut out,
                )
                .await;
                out.flush().ok();
                result
            })
            .await
        }
    }
}
