//! `kujira scheduler run-once [--at RFC3339]` and `kujira scheduler status`.

use std::io::Write;

use anyhow::Context;
use chrono::{DateTime, Utc};
use kujira_projector::Projector;

use super::engine::Rules;
use crate::{DeliveryReport, Mailer};

/// The `kujira scheduler` commands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum SchedulerCommand {
    /// Evaluates every rule as of --at (now by default), queues the mails it decides
    /// on, then sends what is due, as if it were that moment in every respect (quiet
    /// hours included). Safe while `serve` runs: mails are keyed, never sent twice.
    RunOnce {
        /// The moment that stands for now, RFC 3339 (2026-12-01T10:00:00+09:00).
        #[arg(long, value_parser = parse_at)]
        at: Option<DateTime<Utc>>,
    },
    /// Lists each rule, its schedule, its next run and its last run.
    Status,
}

fn parse_at(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{s:?} is not an RFC 3339 time like 2026-12-01T10:00:00+09:00: {e}"))
}

/// Evaluates every enabled rule as of `at`, lets the projections see the mails,
/// and delivers everything due at `at` with `mailer` (whose clock must stand at
/// `at`). Fails, after delivering, when a rule failed.
pub async fn run_once(
    rules: &Rules,
    projector: &Projector,
    mailer: &Mailer,
    at: DateTime<Utc>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    projector
        .catch_up()
        .await
        .context("the projections cannot catch up")?;
    let tz = rules.config().timezone;
    writeln!(out, "as of {}", at.with_timezone(&tz).to_rfc3339())?;
    let mut failures = Vec::new();
    for rule in rules.enabled() {
        match rules.run(rule, at).await {
            Ok(r) => {
                writeln!(
                    out,
                    "{:<16} queued {} (already queued {}, declined {}{})",
                    rule.as_str(),
                    r.queued.len(),
                    r.already,
                    r.declined,
                    if r.failed > 0 {
                        format!(", FAILED {}", r.failed)
                    } else {
                        String::new()
                    }
                )?;
                if r.failed > 0 {
                    failures.push(format!("{rule}: {} appends failed", r.failed));
                }
            }
            Err(e) => {
                writeln!(out, "{:<16} FAILED: {e:#}", rule.as_str())?;
                failures.push(format!("{rule}: {e:#}"));
            }
        }
    }
    for rule in kujira_config::RuleName::ALL {
        if !rules.enabled().contains(&rule) {
            writeln!(out, "{:<16} off", rule.as_str())?;
        }
    }
    projector
        .catch_up()
        .await
        .context("the outbox cannot see the new mail")?;
    let mut total = DeliveryReport::default();
    // Each call sends a batch; stop when a call finds nothing more due at `at`.
    for _ in 0..10_000 {
        let r = mailer.deliver_due().await.context("cannot deliver")?;
        let done = r.attempted() == 0;
        total.sent.extend(r.sent);
        total.deferred.extend(r.deferred);
        total.failed.extend(r.failed);
        total.cancelled.extend(r.cancelled);
        total.held.extend(r.held);
        total.overtaken.extend(r.overtaken);
        if done {
            break;
        }
    }
    writeln!(
        out,
        "mail: sent {}, held for quiet hours {}, cancelled {}, deferred {}, failed {}",
        total.sent.len(),
        total.held.len(),
        total.cancelled.len(),
        total.deferred.len(),
        total.failed.len()
    )?;
    if failures.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("some rules failed: {}", failures.join("; "))
    }
}

/// Prints each rule, its schedule, its next run after `now` and its last run.
pub async fn print_status(
    rules: &Rules,
    now: DateTime<Utc>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let tz = rules.config().timezone;
    let time = |t: Option<DateTime<Utc>>| {
        t.map_or_else(
            || "-".to_owned(),
            |t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string(),
        )
    };
    writeln!(
        out,
        "{:<16} {:<16} {:<22} {:<22} {:>6}  WHAT",
        "RULE", "SCHEDULE", "NEXT RUN", "LAST RUN", "QUEUED"
    )?;
    for s in rules.status(now).await? {
        writeln!(
            out,
            "{:<16} {:<16} {:<22} {:<22} {:>6}  {}",
            s.rule.as_str(),
            s.schedule,
            time(s.next_run),
            time(s.last_run),
            if s.last_run.is_some() {
                s.last_queued.to_string()
            } else {
                "-".into()
            },
            s.rule.label_ja()
        )?;
        if let Some(e) = &s.last_error {
            writeln!(
                out,
                "{:<16} last attempt {} failed: {e}",
                "",
                time(s.last_attempt)
            )?;
        }
    }
    writeln!(
        out,
        "times in {tz}; the tour reminder also runs every minute for parties promoted from the waiting list"
    )?;
    Ok(())
}
