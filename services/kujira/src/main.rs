//! `kujira`: the one binary. It only composes the services: it reads the
//! configuration, opens the database (a private cluster when `DATABASE_URL` is
//! unset), runs the migrations, and serves every router and worker in one process.

mod db;
mod serve;

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
    /// Shows and rebuilds the projections (the read models).
    Projections {
        #[command(subcommand)]
        command: kujira_projector::ProjectionsCommand,
    },
}

fn main() -> std::process::ExitCode {
    // Logs go to stderr so that commands like `tours add` can print only their result.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,tower_http=info".into()),
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

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = kujira_config::Config::from_env().context("invalid configuration")?;
    match cli.command {
        Command::Serve => serve::serve(config).await,
        Command::Migrate => {
            let db = db::Database::open(&config).await?;
            db.migrate().await?;
            eprintln!("kujira: migrations applied");
            db.close().await
        }
        Command::Tours { command } => {
            let db = db::Database::open(&config).await?;
            db.migrate().await?;
            let state = serve::tours_state(&config, &db);
            let mut out = std::io::stdout().lock();
            let result = kujira_tours::run_cli(&state, command, &mut out).await;
            out.flush().ok();
            db.close().await?;
            result
        }
        Command::Projections { command } => {
            let db = db::Database::open(&config).await?;
            db.migrate().await?;
            let store = kujira_eventlog::EventStore::new(db.pool.clone());
            let mut out = std::io::stdout().lock();
            let result =
                kujira_projector::run_cli(&serve::projector(&store), command, &mut out).await;
            out.flush().ok();
            db.close().await?;
            result
        }
    }
}
