//! `kujira privacy …`: erasure, export and statistics for operators.

use std::io::Write;

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::Subcommand;
use kujira_store::Store;

use crate::erasure::Target;

#[derive(Debug, Subcommand)]
pub enum PrivacyCommand {
    /// Erases a person (消去): destroys their key, so that none of their data can be
    /// read again anywhere. Statistics stay. Takes a case id or an email address.
    Erase { target: String },
    /// Exports everything held about a person (開示) as JSON on stdout. Takes a case
    /// id or an email address.
    Export { target: String },
    /// How many persons the service holds data on, and how many were erased, by
    /// fiscal year (for the 個人情報ファイル簿).
    Stats,
    /// Erases now every person past `KUJIRA_RETENTION` (the scheduler does this daily).
    Retention {
        /// Stands for now (RFC 3339); default: the clock.
        #[arg(long)]
        at: Option<DateTime<Utc>>,
    },
}

/// Runs a privacy command. `settle` is called after an erasure has been recorded: it
/// runs the projections, so that the command returns once the erasure is carried out.
pub async fn run_cli<F, Fut>(
    store: &Store,
    config: &kujira_config::Config,
    command: PrivacyCommand,
    settle: F,
    out: &mut impl Write,
) -> anyhow::Result<()>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let now = Utc::now();
    match command {
        PrivacyCommand::Erase { target } => {
            let target: Target = target.parse()?;
            let persons = crate::erasure::erase(store, &target, "cli", None, now).await?;
            settle().await?;
            let records = crate::erasure::records(store.pool()).await?;
            for p in &persons {
                let r = records
                    .iter()
                    .find(|r| r.person_id == *p)
                    .context("the erasure was recorded but not carried out yet")?;
                writeln!(
                    out,
                    "消去しました: person {} (cases: {}; tour sign-ups: {}; key destroyed: {}; \
                     mails cancelled: {}; mail files deleted: {})",
                    p,
                    if r.cases.is_empty() {
                        "-".to_owned()
                    } else {
                        r.cases.join(", ")
                    },
                    r.tour_sign_ups,
                    r.key_destroyed,
                    r.mails_cancelled,
                    r.mail_files_deleted
                )?;
            }
        }
        PrivacyCommand::Export { target } => {
            let target: Target = target.parse()?;
            let export = crate::export::export(store, &target, now).await?;
            serde_json::to_writer_pretty(&mut *out, &export)?;
            writeln!(out)?;
        }
        PrivacyCommand::Stats => {
            let s = crate::stats::stats(store.pool(), config.timezone).await?;
            writeln!(out, "保有している人数 (held): {}", s.held)?;
            writeln!(out, "消去した人数 (erased): {}", s.erased)?;
            writeln!(out, "年度\t新規\t消去(請求)\t消去(保有期間)")?;
            for y in s.years {
                writeln!(
                    out,
                    "{}\t{}\t{}\t{}",
                    y.fiscal_year, y.new_persons, y.erased_on_request, y.erased_by_retention
                )?;
            }
        }
        PrivacyCommand::Retention { at } => {
            let at = at.unwrap_or(now);
            let erased = crate::retention::run(store, config.retention, at).await?;
            settle().await?;
            writeln!(
                out,
                "{} 人を消去しました ({})",
                erased.len(),
                config.retention.rule()
            )?;
        }
    }
    Ok(())
}
