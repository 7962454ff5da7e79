//! `kujira tours ...`: the staff commands until the staff desk has pages for them.

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use kujira_domain::tour::{TourCommand, TourDetails, TourKind, TourStatus};
use uuid::Uuid;

use crate::ToursState;
use crate::mail::ja_datetime;
use crate::service::Actor;

#[derive(Debug, Clone, clap::Subcommand)]
pub enum ToursCommand {
    /// Schedules a tour and prints only its id.
    Add(AddArgs),
    /// Lists every tour with its places and waiting list.
    List,
    /// Cancels a tour and emails every party that signed up.
    Cancel {
        /// The tour's id, as printed by `add`.
        id: Uuid,
        /// Why, told to the parties in the cancellation mail.
        #[arg(long)]
        reason: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KindArg {
    #[value(name = "day_trip")]
    DayTrip,
    #[value(name = "overnight")]
    Overnight,
}

impl From<KindArg> for TourKind {
    fn from(k: KindArg) -> Self {
        match k {
            KindArg::DayTrip => TourKind::DayTrip,
            KindArg::Overnight => TourKind::Overnight,
        }
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct AddArgs {
    #[arg(long)]
    pub title: String,
    #[arg(long, value_enum)]
    pub kind: KindArg,
    /// RFC 3339, e.g. 2026-12-05T09:30:00+09:00
    #[arg(long, value_parser = parse_rfc3339)]
    pub starts_at: DateTime<Utc>,
    #[arg(long, value_parser = parse_rfc3339)]
    pub ends_at: DateTime<Utc>,
    /// Capacity, counted in parties (組).
    #[arg(long)]
    pub capacity_parties: u32,
    /// Optional maximum of people, children included.
    #[arg(long)]
    pub max_people: Option<u32>,
    #[arg(long, default_value_t = 0)]
    pub fee_yen: u32,
    /// When sign-ups close (RFC 3339); by default when the tour starts.
    #[arg(long, value_parser = parse_rfc3339)]
    pub deadline: Option<DateTime<Utc>>,
    #[arg(long, default_value = "")]
    pub meeting_place: String,
    #[arg(long, default_value = "")]
    pub description: String,
    /// Who the tour is for, e.g. 子育て世帯.
    #[arg(long, default_value = "")]
    pub audience: String,
    /// Publishes the tour at once (otherwise it stays a draft).
    #[arg(long)]
    pub publish: bool,
}

fn parse_rfc3339(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|e| format!("not an RFC 3339 date and time with an offset ({e})"))
}

/// Runs one `kujira tours` subcommand, writing its result to `out`.
pub async fn run_cli(
    state: &ToursState,
    cmd: ToursCommand,
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    let tours = state.tours();
    let actor = Actor::new("cli");
    match cmd {
        ToursCommand::Add(a) => {
            let tour_id = Uuid::now_v7();
            let details = TourDetails {
                title: a.title,
                kind: a.kind.into(),
                starts_at: a.starts_at,
                ends_at: a.ends_at,
                meeting_place: a.meeting_place,
                capacity_parties: a.capacity_parties,
                max_people: a.max_people,
                fee_yen: a.fee_yen,
                deadline: a.deadline,
                description: a.description,
                audience: a.audience,
            };
            let command = TourCommand::Schedule {
                tour_id,
                details,
                publish: a.publish,
                at: tours.now(),
            };
            tours
                .execute(tour_id, command, &actor)
                .await
                .context("cannot schedule the tour")?;
            tracing::info!(%tour_id, publish = a.publish, "tour scheduled");
            writeln!(out, "{tour_id}")?;
        }
        ToursCommand::List => {
            let tz = tours.config().timezone;
            let all = tours.all_tours().await.context("cannot read the tours")?;
            writeln!(
                out,
                "id\tstatus\tstarts_at\tconfirmed/capacity\twaitlist\ttitle"
            )?;
            for (id, t) in all {
                let Some(d) = &t.details else { continue };
                writeln!(
                    out,
                    "{id}\t{}\t{}\t{}/{}\t{}\t{}",
                    t.status.as_str(),
                    ja_datetime(tz, d.starts_at),
                    t.confirmed_parties(),
                    d.capacity_parties,
                    t.waitlist_length(),
                    d.title
                )?;
            }
        }
        ToursCommand::Cancel { id, reason } => {
            let Some(before) = tours.load(id).await? else {
                bail!("no tour with id {id}");
            };
            if before.status == TourStatus::Cancelled {
                bail!("tour {id} is already cancelled");
            }
            let done = tours
                .execute(
                    id,
                    TourCommand::Cancel {
                        reason,
                        at: tours.now(),
                    },
                    &actor,
                )
                .await
                .with_context(|| format!("cannot cancel tour {id}"))?;
            let mails = done
                .recorded
                .iter()
                .filter(|e| matches!(e, kujira_domain::tour::TourEvent::MailRequested(_)))
                .count();
            tracing::info!(tour_id = %id, mails, "tour cancelled");
            writeln!(out, "cancelled {id}; {mails} parties will be emailed")?;
        }
    }
    Ok(())
}
