//! Event log throughput, as ratios against a plain INSERT measured in the same run
//! on the same server (absolute rates are noisy on a shared 2-core machine).
//!
//! `cargo bench -p kujira-eventlog --bench eventlog`
//!
//! Uses `DATABASE_URL` when set, else a durable (fsync on) private cluster under
//! `target/kujira-bench-pg`. Set `BENCH_SECONDS` to change the length of each run.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use kujira_eventlog::{Checkpoint, EventStore, ExpectedVersion, Metadata, NewEvent, StreamName};
use kujira_pgembed::{Cluster, ClusterOptions, testing::target_dir};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

fn main() -> anyhow::Result<()> {
    let secs: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let (admin, cluster) = match std::env::var("DATABASE_URL") {
        Ok(url) => (url.parse::<PgConnectOptions>()?, None),
        Err(_) => {
            let cluster = Cluster::start(&ClusterOptions {
                pgdata: target_dir().join("kujira-bench-pg"),
                os_user: std::env::var("KUJIRA_PG_USER").ok(),
                durable: true,
            })?;
            (cluster.connect_options("postgres"), Some(cluster))
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(bench(admin, Duration::from_secs(secs)));
    drop(rt);
    if let Some(c) = cluster {
        c.stop()?;
    }
    result
}

fn event(n: u64) -> NewEvent {
    NewEvent {
        id: Uuid::now_v7(),
        event_type: "InquirySubmitted".into(),
        data: serde_json::json!({ "n": n, "segment": "i_turn", "prefecture": "東京都", "topics": ["work", "housing"] }),
        metadata: Metadata::new("bench", Uuid::nil()),
    }
}

async fn bench(admin: PgConnectOptions, run: Duration) -> anyhow::Result<()> {
    let mut conn = PgConnection::connect_with(&admin).await?;
    sqlx::query("DROP DATABASE IF EXISTS kujira_bench WITH (FORCE)")
        .execute(&mut conn)
        .await?;
    sqlx::query("CREATE DATABASE kujira_bench")
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    let pool = PgPoolOptions::new()
        .max_connections(40)
        .connect_with(admin.clone().database("kujira_bench"))
        .await?;
    kujira_eventlog::MIGRATOR.run(&pool).await?;
    // The physical ceiling: the same row shape, the same indexes, a plain INSERT.
    sqlx::query("CREATE TABLE baseline_events (LIKE events INCLUDING ALL)")
        .execute(&pool)
        .await?;
    let store = EventStore::new(pool.clone());
    let fsync: String = sqlx::query_scalar("SHOW fsync").fetch_one(&pool).await?;
    println!(
        "kujira event log benchmark: {}s per run, fsync={fsync}",
        run.as_secs()
    );
    println!();
    println!(
        "{:<44} {:>12} {:>12} {:>7}",
        "single-event transactions", "plain/s", "append/s", "ratio"
    );

    for writers in [1usize, 8, 32] {
        let st = store.clone();
        let (plain, ours) = paired(writers, run, plain_op(&pool), move |w, n| {
            let store = st.clone();
            async move {
                let s = StreamName::new("bench", format!("w{w}-{n}"));
                store
                    .append(&s, ExpectedVersion::NoStream, vec![event(n)])
                    .await?;
                Ok(())
            }
        })
        .await?;
        println!(
            "{:<44} {:>12.0} {:>12.0} {:>7.2}",
            format!("{writers} writer(s)"),
            plain,
            ours,
            ours / plain
        );
    }

    // The same at 32 writers, each appending to its own stream after the version it
    // wrote last (`Exact`): the statement that first checks that version exists.
    let st = store.clone();
    let (plain, ours) = paired(32, run, plain_op(&pool), move |w, n| {
        let store = st.clone();
        async move {
            let s = StreamName::new("grow", format!("w{w}"));
            store
                .append(&s, ExpectedVersion::Exact(n), vec![event(n)])
                .await?;
            Ok(())
        }
    })
    .await?;
    println!(
        "{:<44} {:>12.0} {:>12.0} {:>7.2}",
        "32 writers, existing streams (Exact)",
        plain,
        ours,
        ours / plain
    );

    println!();
    let p = pool.clone();
    let st = store.clone();
    let (plain, ours) = paired(
        8,
        run,
        move |_, n| {
            let pool = p.clone();
            async move { plain_batch(&pool, n, 100).await }
        },
        move |w, n| {
            let store = st.clone();
            async move {
                let s = StreamName::new("batch", format!("w{w}-{n}"));
                let evs = (0..100).map(event).collect();
                store.append(&s, ExpectedVersion::NoStream, evs).await?;
                Ok(())
            }
        },
    )
    .await?;
    let (plain, ours) = (plain * 100.0, ours * 100.0);
    println!(
        "{:<44} {:>12.0} {:>12.0} {:>7.2}",
        "batches of 100 events, 8 writers (events/s)",
        plain,
        ours,
        ours / plain
    );
    println!();
    println!(
        "{:<44} {:>12} {:>12} {:>7}",
        "peer: postgres-es 0.4 (cqrs-es), new aggregate", "plain/s", "peer/s", "ratio"
    );
    let (peer_pool, cqrs) = peer::setup(&admin).await?;
    for writers in [1usize, 8, 32] {
        let c = cqrs.clone();
        let (plain, es) = paired(writers, run, plain_op(&pool), move |w, n| {
            let cqrs = c.clone();
            async move {
                cqrs.execute(&format!("w{w}-{n}"), n)
                    .await
                    .map_err(|e| anyhow::anyhow!("postgres-es: {e}"))
            }
        })
        .await?;
        println!(
            "{:<44} {:>12.0} {:>12.0} {:>7.2}",
            format!("{writers} writer(s)"),
            plain,
            es,
            es / plain
        );
    }
    peer_pool.close().await;

    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await?;
    // The projector's read (the gap-safe batch and where the next one resumes)
    // against the statement readers used before it also moved past filtered events,
    // in alternating rounds so that both see the same load.
    let (mut previous, mut ours) = (f64::MAX, f64::MAX);
    for _ in 0..3 {
        previous = previous.min(full_read(total, || read_previous(&pool)).await?);
        ours = ours.min(full_read(total, || read_batch(&store)).await?);
    }
    println!();
    println!(
        "full-log read, batches of 5,000: {total} events; previous statement {:.0}/s, \
         read_batch {:.0}/s, ratio {:.2} (target >= 100,000/s)",
        total as f64 / previous,
        total as f64 / ours,
        previous / ours
    );
    pool.close().await;
    Ok(())
}

/// Seconds to read the whole log with `read`, which returns how many it read.
async fn full_read<F, Fut>(total: i64, read: F) -> anyhow::Result<f64>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<u64>>,
{
    let started = Instant::now();
    let read = read().await?;
    let elapsed = started.elapsed().as_secs_f64();
    anyhow::ensure!(read == total as u64, "read {read} of {total} events");
    Ok(elapsed)
}

async fn read_batch(store: &EventStore) -> anyhow::Result<u64> {
    let mut cp = Checkpoint::START;
    let mut read = 0u64;
    loop {
        let batch = store.read_batch(cp, 5_000, None).await?;
        read += batch.events.len() as u64;
        cp = batch.next;
        if !batch.full {
            return Ok(read);
        }
    }
}

/// The gap-safe read as it was before `read_batch`: the same rows, decoded into the
/// same values and kept for the whole batch (as `read_all` returned them), without
/// the highest-row probe.
async fn read_previous(pool: &PgPool) -> anyhow::Result<u64> {
    use sqlx::Row;
    let mut cp = (0i64, 0i64);
    let mut read = 0u64;
    loop {
        let rows = sqlx::query(
            "SELECT position, transaction_id, event_id, stream_name, stream_version, \
                    event_type, data, metadata, recorded_at FROM events \
             WHERE (transaction_id, position) > ($1, $2) \
               AND transaction_id < (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint) \
             ORDER BY transaction_id, position LIMIT 5000",
        )
        .bind(cp.0)
        .bind(cp.1)
        .fetch_all(pool)
        .await?;
        let mut batch = Vec::with_capacity(rows.len());
        for row in &rows {
            cp = (row.try_get("transaction_id")?, row.try_get("position")?);
            batch.push((
                cp,
                row.try_get::<Uuid, _>("event_id")?,
                row.try_get::<String, _>("stream_name")?,
                row.try_get::<i64, _>("stream_version")?,
                row.try_get::<String, _>("event_type")?,
                row.try_get::<serde_json::Value, _>("data")?,
                row.try_get::<sqlx::types::Json<Metadata>, _>("metadata")?.0,
                row.try_get::<chrono::DateTime<chrono::Utc>, _>("recorded_at")?,
            ));
        }
        read += batch.len() as u64;
        if batch.len() < 5000 {
            return Ok(read);
        }
    }
}

/// The baseline operation: one plain single-row INSERT.
fn plain_op(
    pool: &PgPool,
) -> impl Fn(
    usize,
    u64,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<()>> + Send>>
+ Send
+ Sync
+ Clone
+ 'static {
    let pool = pool.clone();
    move |_, n| {
        let pool = pool.clone();
        Box::pin(async move { plain_insert(&pool, n).await })
    }
}

async fn plain_insert(pool: &PgPool, n: u64) -> anyhow::Result<()> {
    let e = event(n);
    sqlx::query(
        "INSERT INTO baseline_events (event_id, stream_name, stream_version, event_type, data, metadata) \
         VALUES ($1, $2, 1, $3, $4, $5)",
    )
    .bind(e.id)
    .bind(format!("bench-{}", e.id))
    .bind(&e.event_type)
    .bind(&e.data)
    .bind(serde_json::to_value(&e.metadata)?)
    .execute(pool)
    .await
    .context("plain insert")?;
    Ok(())
}

async fn plain_batch(pool: &PgPool, n: u64, size: usize) -> anyhow::Result<()> {
    let evs: Vec<NewEvent> = (0..size as u64).map(|i| event(n + i)).collect();
    let ids: Vec<Uuid> = evs.iter().map(|e| e.id).collect();
    let data: Vec<&serde_json::Value> = evs.iter().map(|e| &e.data).collect();
    let meta: Vec<serde_json::Value> = evs
        .iter()
        .map(|e| serde_json::to_value(&e.metadata))
        .collect::<Result<_, _>>()?;
    let stream = format!("batch-{}", ids[0]);
    sqlx::query(
        "INSERT INTO baseline_events (event_id, stream_name, stream_version, event_type, data, metadata) \
         SELECT e.id, $1, e.ord, 'InquirySubmitted', e.d, e.m \
         FROM unnest($2::uuid[], $3::jsonb[], $4::jsonb[]) WITH ORDINALITY AS e(id, d, m, ord)",
    )
    .bind(stream)
    .bind(&ids)
    .bind(&data)
    .bind(&meta)
    .execute(pool)
    .await
    .context("plain batch insert")?;
    Ok(())
}

/// Rates of `a` and `b`, measured in alternating slices so that background load on a
/// shared machine hits both alike; returns (rate of a, rate of b).
async fn paired<A, AF, B, BF>(
    writers: usize,
    run: Duration,
    a: A,
    b: B,
) -> anyhow::Result<(f64, f64)>
where
    A: Fn(usize, u64) -> AF + Send + Sync + 'static + Clone,
    AF: std::future::Future<Output = anyhow::Result<()>> + Send,
    B: Fn(usize, u64) -> BF + Send + Sync + 'static + Clone,
    BF: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    const SLICES: u32 = 4;
    let (mut ra, mut rb) = (0.0, 0.0);
    for _ in 0..SLICES {
        ra += rate(writers, run / SLICES, a.clone()).await?;
        rb += rate(writers, run / SLICES, b.clone()).await?;
    }
    Ok((ra / f64::from(SLICES), rb / f64::from(SLICES)))
}

/// Operations per second of `op` run by `writers` concurrent tasks for `run`.
async fn rate<F, Fut>(writers: usize, run: Duration, op: F) -> anyhow::Result<f64>
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static + Clone,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    static ROUND: AtomicU64 = AtomicU64::new(0);
    let round = ROUND.fetch_add(1, Ordering::Relaxed);
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let op = op.clone();
            let stop = stop.clone();
            let done = done.clone();
            tokio::spawn(async move {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    op(w + (round as usize) * 1000, n).await?;
                    n += 1;
                    done.fetch_add(1, Ordering::Relaxed);
                }
                anyhow::Ok(())
            })
        })
        .collect();
    tokio::time::sleep(run).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

/// A published Rust event store on the same server, in the same run:
/// postgres-es (the PostgreSQL backend of cqrs-es), executing one command that
/// emits one event on a new aggregate (it loads the aggregate, then inserts).
mod peer {
    use std::sync::Arc;

    use cqrs_es::{Aggregate, DomainEvent};
    use serde::{Deserialize, Serialize};
    use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
    use sqlx::{Connection, PgConnection};

    #[derive(Default, Serialize, Deserialize)]
    pub struct Counter {
        total: u64,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub enum CounterEvent {
        Counted { n: u64 },
    }

    impl DomainEvent for CounterEvent {
        fn event_type(&self) -> String {
            "Counted".into()
        }
        fn event_version(&self) -> String {
            "1".into()
        }
    }

    #[derive(Debug, thiserror::Error)]
    #[error("never")]
    pub struct Never;

    #[async_trait::async_trait]
    impl Aggregate for Counter {
        type Command = u64;
        type Event = CounterEvent;
        type Error = Never;
        type Services = ();
        fn aggregate_type() -> String {
            "counter".into()
        }
        async fn handle(&self, n: u64, _: &()) -> Result<Vec<CounterEvent>, Never> {
            Ok(vec![CounterEvent::Counted { n }])
        }
        fn apply(&mut self, event: CounterEvent) {
            let CounterEvent::Counted { n } = event;
            self.total += n;
        }
    }

    pub async fn setup(
        admin: &PgConnectOptions,
    ) -> anyhow::Result<(sqlx::PgPool, Arc<postgres_es::PostgresCqrs<Counter>>)> {
        let mut conn = PgConnection::connect_with(admin).await?;
        sqlx::query("DROP DATABASE IF EXISTS kujira_bench_peer WITH (FORCE)")
            .execute(&mut conn)
            .await?;
        sqlx::query("CREATE DATABASE kujira_bench_peer")
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        let pool = PgPoolOptions::new()
            .max_connections(40)
            .connect_with(admin.clone().database("kujira_bench_peer"))
            .await?;
        // postgres-es's own schema (its db/init.sql).
        sqlx::query(
            "CREATE TABLE events (aggregate_type text NOT NULL, aggregate_id text NOT NULL, \
             sequence bigint CHECK (sequence >= 0) NOT NULL, event_type text NOT NULL, \
             event_version text NOT NULL, payload json NOT NULL, metadata json NOT NULL, \
             PRIMARY KEY (aggregate_type, aggregate_id, sequence))",
        )
        .execute(&pool)
        .await?;
        let cqrs = Arc::new(postgres_es::postgres_cqrs::<Counter>(
            pool.clone(),
            vec![],
            (),
        ));
        Ok((pool, cqrs))
    }
}
