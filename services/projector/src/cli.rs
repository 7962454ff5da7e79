//! `kujira projections ...`: status and rebuilds, for operators.

use anyhow::bail;

use crate::{ProjectionState, Projector, Rebuild};

#[derive(Debug, Clone, clap::Subcommand)]
pub enum ProjectionsCommand {
    /// Prints each projection's position, lag (in events and in seconds) and state.
    Status,
    /// Rebuilds a projection from the whole event log beside its live tables, then
    /// swaps the new tables in; `serve` may keep running. Without NAME, rebuilds
    /// every projection that can be rebuilt.
    Rebuild {
        /// The projection's name, as `status` prints it.
        name: Option<String>,
    },
}

pub async fn run_cli(
    projector: &Projector,
    cmd: ProjectionsCommand,
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    match cmd {
        ProjectionsCommand::Status => {
            let all = projector.status().await?;
            let width = all.iter().map(|s| s.name.len()).max().unwrap_or(0).max(10);
            writeln!(
                out,
                "{:<width$}  {:<11}  {:>10}  {:>10}  {:>9}  STATE SINCE",
                "PROJECTION", "STATE", "POSITION", "LAG EVENTS", "LAG SECS"
            )?;
            for s in &all {
                let lag_events = if s.lag_events_capped {
                    format!(">{}", s.lag_events)
                } else {
                    s.lag_events.to_string()
                };
                writeln!(
                    out,
                    "{:<width$}  {:<11}  {:>10}  {:>10}  {:>9.1}  {}",
                    s.name,
                    s.state.as_str(),
                    s.position,
                    lag_events,
                    s.lag_seconds,
                    s.updated_at
                        .map_or_else(|| "-".to_owned(), |t| t.to_rfc3339())
                )?;
                if let Some(f) = &s.failure {
                    match &f.event {
                        Some(e) => writeln!(out, "  failed on {e}")?,
                        None => writeln!(out, "  failed")?,
                    }
                    writeln!(
                        out,
                        "  attempt {}, failing since {}{}",
                        f.attempts,
                        f.since.to_rfc3339(),
                        f.next_retry_at
                            .map(|t| format!(", next attempt {}", t.to_rfc3339()))
                            .unwrap_or_default()
                    )?;
                    writeln!(out, "  error: {}", f.error)?;
                }
                if let Some(at) = s.rebuild_position {
                    writeln!(
                        out,
                        "  a rebuild is running or was interrupted, at position {at}"
                    )?;
                }
            }
            if all.iter().any(|s| s.state == ProjectionState::Failed) {
                writeln!(
                    out,
                    "A failed projection retries by itself; fix the cause (usually new code \
                     that handles the event), then wait or run `kujira projections rebuild NAME`."
                )?;
            }
            Ok(())
        }
        ProjectionsCommand::Rebuild { name: Some(name) } => {
            let report = projector.rebuild(&name).await?;
            writeln!(out, "{report}")?;
            Ok(())
        }
        ProjectionsCommand::Rebuild { name: None } => {
            let mut failed = Vec::new();
            for p in projector.projections.clone() {
                if let Rebuild::Refused(reason) = p.rebuild() {
                    writeln!(out, "skipped {}: it cannot be rebuilt: {reason}", p.name())?;
                    continue;
                }
                match projector.rebuild(p.name()).await {
                    Ok(report) => writeln!(out, "{report}")?,
                    Err(e) => {
                        writeln!(out, "failed to rebuild {}: {e:#}", p.name())?;
                        failed.push(p.name());
                    }
                }
                out.flush()?;
            }
            if !failed.is_empty() {
                bail!("could not rebuild {}", failed.join(", "));
            }
            Ok(())
        }
    }
}
