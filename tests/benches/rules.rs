//! The scheduler's rules over a realistic log (issue 9): the time to evaluate every
//! rule over about 100,000 cases and 1,000 tours (`BENCH_EVENTS`, default
//! 1,000,000 events; the database is the desk benchmark's, see `support`), beside
//! a baseline measured in the same run on the same database: reading every row of
//! the rules' own tables (`rule_cases`, `rule_tours`, `rule_tour_parties`), which
//! any evaluation that looked at each case once would have to do.
//!
//! Measured as of the next morning of the generated history (its last day's rules
//! already ran):
//! * `plan` of each rule: the candidates from the projection, minus the keys the
//!   outbox holds (reads only);
//! * `run_all`, the daily run: catch the rules' projection up, plan, re-check each
//!   candidate on its own stream and append its mail;
//! * `run_all` again at the same moment: everything is already queued, so this is
//!   the pure cost of evaluating every rule.
//!
//! Run: `cargo bench -p kujira-tests --bench rules`. `BENCH_REPEAT` (default 5) sets
//! how many times the reads are repeated (the median is shown).

mod support;

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use kujira_config::RuleName;
use support::ms;

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

/// Reads every row of the rules' tables; returns (rows, time).
async fn baseline(pool: &sqlx::PgPool) -> anyhow::Result<(usize, Duration)> {
    let t = Instant::now();
    let mut rows = 0;
    for table in ["rule_cases", "rule_tours", "rule_tour_parties"] {
        rows += sqlx::query(&format!("SELECT * FROM {table}"))
            .fetch_all(pool)
            .await?
            .len();
    }
    Ok((rows, t.elapsed()))
}

async fn run() -> anyhow::Result<()> {
    let repeat: usize = std::env::var("BENCH_REPEAT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let bench = support::open().await?;
    let pool = &bench.db.pool;
    let tz = bench.config.timezone;
    let rules = kujira::serve::rules(&bench.config, &bench.store);
    // 10:05 in the city on the day after the history ends: the digest (08:30), the
    // reminders, thank-yous, nurture and check-ins (10:00) are all due.
    let next_day = support::local_date(bench.info.anchor, tz) + chrono::Days::new(1);
    let at: DateTime<Utc> = tz
        .from_local_datetime(&next_day.and_hms_opt(10, 5, 0).expect("10:05"))
        .earliest()
        .expect("a time in the city")
        .to_utc();
    let count = |sql: &'static str| async move {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(pool)
            .await
            .unwrap_or_default()
    };
    let cases = count("SELECT count(*) FROM rule_cases").await;
    let tours = count("SELECT count(*) FROM rule_tours").await;
    let parties = count("SELECT count(*) FROM rule_tour_parties").await;
    let deliveries = count("SELECT count(*) FROM mail_deliveries").await;
    println!(
        "rules benchmark: {} events; {cases} cases, {tours} tours, {parties} parties, \
         {deliveries} mails in the outbox; as of {at}",
        bench.info.events
    );

    // Plans, in turns with the baseline.
    let mut base = Vec::new();
    let mut plans: Vec<(RuleName, Vec<Duration>, usize)> = rules
        .enabled()
        .into_iter()
        .map(|r| (r, Vec::new(), 0))
        .collect();
    let mut rows = 0;
    for _ in 0..=repeat {
        let (n, t) = baseline(pool).await?;
        rows = n;
        base.push(t);
        for (rule, times, candidates) in &mut plans {
            let t = Instant::now();
            let planned = rules.plan(*rule, at).await?;
            times.push(t.elapsed());
            *candidates = planned.len();
        }
    }
    // The first round warmed the caches.
    base.remove(0);
    let base = median(base);
    println!(
        "  baseline: every row of the rules' tables ({rows} rows): {:.1} ms",
        ms(base)
    );
    println!(
        "  {:<16} {:>11} {:>10} {:>8}",
        "plan (reads)", "candidates", "median ms", "ratio"
    );
    let mut total = Duration::ZERO;
    for (rule, mut times, candidates) in plans {
        times.remove(0);
        let m = median(times);
        total += m;
        println!(
            "  {:<16} {:>11} {:>10.1} {:>8.2}",
            rule.as_str(),
            candidates,
            ms(m),
            m.as_secs_f64() / base.as_secs_f64()
        );
    }
    println!(
        "  {:<16} {:>11} {:>10.1} {:>8.2}",
        "every rule",
        "",
        ms(total),
        total.as_secs_f64() / base.as_secs_f64()
    );

    // The daily run, then the same run again.
    for label in ["run_all, the day's run", "run_all again (all queued)"] {
        let (_, b0) = baseline(pool).await?;
        let t = Instant::now();
        let reports = rules.run_all(at).await?;
        let took = t.elapsed();
        let (_, b1) = baseline(pool).await?;
        let b = (b0 + b1) / 2;
        let queued: usize = reports.iter().map(|r| r.queued.len()).sum();
        let already: usize = reports.iter().map(|r| r.already).sum();
        let failed: usize = reports.iter().map(|r| r.failed).sum();
        anyhow::ensure!(failed == 0, "{failed} appends failed");
        println!(
            "  {label:<28} {:>8.1} ms  queued {queued}, already {already}; baseline \
             {:.1} ms, ratio {:.1}",
            ms(took),
            ms(b),
            took.as_secs_f64() / b.as_secs_f64()
        );
    }
    Ok(())
}
