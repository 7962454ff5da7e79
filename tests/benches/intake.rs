//! Intake throughput: submissions/s through `POST /api/v1/inquiries` at 32 concurrent
//! clients over real HTTP, against the event log's own single-append rate measured
//! in the same run on the same database, plus the p99 latency and the render rate
//! of `GET /inquiry`.
//!
//! Run with `cargo bench -p kujira-tests --bench intake`. `BENCH_SECONDS` sets each
//! phase's length (default 5); `BENCH_GROUP_COMMIT=off` writes each submission's
//! append by a statement of its own, as before group commit. Figures are printed as rates and ratios, and as the
//! CPU time per operation of the service process and of PostgreSQL. The phases that
//! are compared with the tree before per-person encryption run first, in the same
//! order as there; the vault's own diagnostics run last.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kujira_config::{Config, SystemClock};
use kujira_eventlog::{EventStore, ExpectedVersion, Metadata, NewEvent, StreamName};
use kujira_intake::IntakeState;
use kujira_pgembed::testing::TestDb;
use uuid::Uuid;

const CLIENTS: usize = 32;

/// The bench database, checkpointed before each phase so that no phase pays for
/// the dirty pages of the one before (a checkpoint landing inside one phase and not
/// another made the ratios swing by a third between runs).
static SETTLE: std::sync::OnceLock<sqlx::PgPool> = std::sync::OnceLock::new();

fn phase_length() -> Duration {
    let secs = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    Duration::from_secs(secs)
}

/// CPU time so far, in seconds: this process (the service and its clients) and
/// every `postgres` process on the machine (the bench's server), from `/proc`
/// (Linux, 100 ticks a second). Per operation, it says where a phase's time went,
/// which throughput alone, on a shared 2-core machine, does not.
fn cpu_seconds() -> (f64, f64) {
    fn ticks(stat: &str) -> Option<u64> {
        // Fields after the command (which may hold spaces): utime is the 12th, stime
        // the 13th.
        let rest = &stat[stat.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split(' ').collect();
        Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
    }
    let own = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| ticks(&s))
        .unwrap_or(0);
    let mut db = 0;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        if let Ok(stat) = std::fs::read_to_string(entry.path().join("stat"))
            && stat.contains("(postgres)")
        {
            db += ticks(&stat).unwrap_or(0);
        }
    }
    (own as f64 / 100.0, db as f64 / 100.0)
}

/// Where one phase's CPU went, in microseconds per operation.
#[derive(Clone, Copy, Debug)]
struct Cpu {
    own_us: f64,
    db_us: f64,
}

/// Runs `op` from `CLIENTS` tasks for the phase length; returns (ops/s, sorted
/// latencies, CPU per operation).
async fn run<F, Fut>(op: F) -> (f64, Vec<Duration>, Cpu)
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    if let Some(pool) = SETTLE.get() {
        sqlx::query("CHECKPOINT").execute(pool).await.unwrap();
    }
    let op = Arc::new(op);
    let stop = Arc::new(AtomicBool::new(false));
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let op = op.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut lat = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    assert!(op().await, "an operation failed");
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    tokio::time::sleep(phase_length()).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("a client panicked"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_after = cpu_seconds();
    let n = all.len().max(1) as f64;
    let cpu = Cpu {
        own_us: (cpu_after.0 - cpu_before.0) / n * 1e6,
        db_us: (cpu_after.1 - cpu_before.1) / n * 1e6,
    };
    all.sort_unstable();
    (all.len() as f64 / elapsed, all, cpu)
}

fn p(lat: &[Duration], q: f64) -> Duration {
    lat[((lat.len() as f64 - 1.0) * q).round() as usize]
}

#[derive(serde::Serialize)]
#[serde(tag = "type", content = "data")]
enum BenchEvent {
    Appended {
        n: u64,
    },
    Sized {
        text: String,
    },
    /// A case-shaped fact with a personal part, which the store seals.
    Personal {
        person_id: Uuid,
        personal: serde_json::Value,
        text: String,
    },
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let db = TestDb::durable(&[
            &kujira_eventlog::MIGRATOR,
            &kujira_store::MIGRATOR,
            &kujira_intake::MIGRATOR,
        ])
        .await;
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(CLIENTS as u32)
            .connect_with(db.options.clone())
            .await
            .unwrap();
        SETTLE.set(pool.clone()).unwrap();
        // `BENCH_GROUP_COMMIT=off`: every submission's append a statement of its own,
        // as before group commit (the single-append baseline never batches).
        let group_commit = std::env::var("BENCH_GROUP_COMMIT").as_deref() != Ok("off");
        let store = if group_commit {
            EventStore::new(pool.clone())
        } else {
            EventStore::new(pool.clone()).without_group_commit()
        };
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::for_tests(dir.path());
        config.submissions_per_ip_per_hour = 0;
        // Intake writes through the vault: every case's personal part sealed with its
        // person's key, found or created by a keyed hash of the address.
        let personal_store = kujira_store::Store::new(
            store.clone(),
            kujira_store::Vault::unlock(pool, &config.master_key)
                .await
                .unwrap(),
        );
        let state = IntakeState::new(
            Arc::new(config),
            personal_store.clone(),
            Arc::new(SystemClock),
        );
        let app = kujira_intake::router(state);
        let in_process = app.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

        // 1. The event log alone: one single-event append per operation. Measured
        // before and after the submissions, and averaged, so that drifting background
        // load on a shared machine does not tilt the ratio.
        let s = store.clone();
        let single_append = move || {
            let s = s.clone();
            async move {
                let e = NewEvent::encode(
                    Uuid::now_v7(),
                    &BenchEvent::Appended { n: 1 },
                    Metadata::new("bench", Uuid::now_v7()),
                )
                .unwrap();
                s.append(
                    &StreamName::new("bench", Uuid::now_v7()),
                    ExpectedVersion::NoStream,
                    vec![e],
                )
                .await
                .is_ok()
            }
        };
        let (append_before, _, append_cpu) = run(single_append.clone()).await;

        // 1b. Diagnostic: a case-shaped append straight to the log: the case (about
        // 1.5 KB) and its two queued mails (a key and a template each).
        let s = store.clone();
        let (case_append_rate, _, _) = run(move || {
            let s = s.clone();
            async move {
                let meta = Metadata::new("bench", Uuid::now_v7());
                let events = [1_500usize, 120, 120]
                    .iter()
                    .map(|n| {
                        NewEvent::encode(
                            Uuid::now_v7(),
                            &BenchEvent::Sized {
                                text: "あ".repeat(n / 3),
                            },
                            meta.clone(),
                        )
                        .unwrap()
                    })
                    .collect();
                s.append(
                    &StreamName::new("bench", Uuid::now_v7()),
                    ExpectedVersion::NoStream,
                    events,
                )
                .await
                .is_ok()
            }
        })
        .await;

        // 2. Inquiries through the API over HTTP.
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(CLIENTS)
            .build()
            .unwrap();
        let url = format!("http://{addr}/api/v1/inquiries");
        let body = serde_json::json!({
            "name": "柏崎 太郎", "name_kana": "カシワザキ タロウ", "email": "taro@example.jp",
            "prefecture": "東京都", "segment": "i_turn", "topics": ["work", "housing"],
            "method": "online", "message": "冬の暮らしについて相談したいです。", "consent": true
        })
        .to_string();
        let (c, u, b) = (client.clone(), url.clone(), body.clone());
        let (submit_rate, lat, submit_cpu) = run(move || {
            let (c, u, b) = (c.clone(), u.clone(), b.clone());
            async move {
                let r = c
                    .post(&u)
                    .header("content-type", "application/json")
                    .body(b)
                    .send()
                    .await;
                matches!(r, Ok(r) if r.status() == 201)
            }
        })
        .await;

        // 2b. The same requests in process (no TCP, no HTTP client sharing the CPU).
        let (r, b) = (in_process.clone(), body.clone());
        let (oneshot_rate, oneshot_lat, oneshot_cpu) = run(move || {
            let (r, b) = (r.clone(), b.clone());
            async move {
                use tower::ServiceExt;
                let req = axum::http::Request::post("/api/v1/inquiries")
                    .header("content-type", "application/json")
                    .body(axum::body::Body::from(b))
                    .unwrap();
                matches!(r.oneshot(req).await, Ok(res) if res.status() == 201)
            }
        })
        .await;

        // 2c. The same over HTTP, each submission from a new address: every one
        // creates its person (a lookup row and a data key) before its case.
        let (c, u) = (client.clone(), url.clone());
        let (new_address_rate, new_address_lat, new_address_cpu) = run(move || {
            let (c, u) = (c.clone(), u.clone());
            async move {
                let body = serde_json::json!({
                    "name": "柏崎 太郎", "name_kana": "カシワザキ タロウ",
                    "email": format!("t{}@example.jp", Uuid::now_v7().simple()),
                    "prefecture": "東京都", "segment": "i_turn", "topics": ["work", "housing"],
                    "method": "online", "message": "冬の暮らしについて相談したいです。",
                    "consent": true
                })
                .to_string();
                let r = c
                    .post(&u)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await;
                matches!(r, Ok(r) if r.status() == 201)
            }
        })
        .await;

        let (append_after, _, _) = run(single_append).await;
        let append_rate = (append_before + append_after) / 2.0;

        // 3. The form page (each view also records its funnel step).
        let (c, u) = (client.clone(), format!("http://{addr}/inquiry"));
        let (render_rate, render_lat, _) = run(move || {
            let (c, u) = (c.clone(), u.clone());
            async move { matches!(c.get(&u).send().await, Ok(r) if r.status() == 200) }
        })
        .await;

        // 4. Diagnostics of what per-person encryption adds to a submission: finding
        // the person by the keyed hash of a known address (one statement, no write),
        // creating a new person (the lookup row and the wrapped data key, one
        // statement that commits), and the case-shaped append with its personal part
        // sealed by the store. Last, so that the phases compared with the tree before
        // encryption run on the same history (these write persons and events of their
        // own).
        let vault = personal_store.vault().clone();
        let known = kujira_domain::values::Email::parse("taro@example.jp").unwrap();
        let (v, k) = (vault.clone(), known.clone());
        let (known_lookup_rate, _, _) = run(move || {
            let (v, k) = (v.clone(), k.clone());
            async move { v.person_for_email(&k).await.is_ok() }
        })
        .await;
        let v = vault.clone();
        let (new_person_rate, _, _) = run(move || {
            let v = v.clone();
            async move {
                let email = kujira_domain::values::Email::parse(&format!(
                    "p{}@example.jp",
                    Uuid::now_v7().simple()
                ))
                .unwrap();
                v.person_for_email(&email).await.is_ok()
            }
        })
        .await;
        let person = vault.person_for_email(&known).await.unwrap().person_id;
        let s = personal_store.clone();
        let (sealed_append_rate, _, _) = run(move || {
            let s = s.clone();
            async move {
                let meta = Metadata::new("bench", Uuid::now_v7());
                let mut events = vec![
                    NewEvent::encode(
                        Uuid::now_v7(),
                        &BenchEvent::Personal {
                            person_id: person,
                            personal: serde_json::json!({
                                "name": "柏崎 太郎", "name_kana": "カシワザキ タロウ",
                                "email": "taro@example.jp", "phone": "090-1234-5678",
                                "message": "あ".repeat(150),
                            }),
                            text: "あ".repeat(300),
                        },
                        meta.clone(),
                    )
                    .unwrap(),
                ];
                for _ in 0..2 {
                    events.push(
                        NewEvent::encode(
                            Uuid::now_v7(),
                            &BenchEvent::Sized {
                                text: "あ".repeat(40),
                            },
                            meta.clone(),
                        )
                        .unwrap(),
                    );
                }
                s.append(
                    &StreamName::new("bench", Uuid::now_v7()),
                    ExpectedVersion::NoStream,
                    events,
                )
                .await
                .is_ok()
            }
        })
        .await;

        println!(
            "intake benchmark, {CLIENTS} concurrent clients, {:?} per phase, group commit {}",
            phase_length(),
            if group_commit { "on" } else { "off" }
        );
        println!("  event log single appends:        {append_rate:>8.0} /s");
        println!(
            "  case-shaped appends (3 events):  {case_append_rate:>8.0} /s  ratio {:.2}",
            case_append_rate / append_rate
        );
        println!("  POST /api/v1/inquiries:          {submit_rate:>8.0} /s");
        println!(
            "  ratio submissions / appends:     {:>8.2}   (target >= 0.70)",
            submit_rate / append_rate
        );
        println!(
            "  submission latency p50 / p99:    {:>8.1} ms / {:.1} ms",
            p(&lat, 0.5).as_secs_f64() * 1e3,
            p(&lat, 0.99).as_secs_f64() * 1e3
        );
        println!(
            "  in process (router, no HTTP):    {oneshot_rate:>8.0} /s  ratio {:.2}, p99 {:.1} ms",
            oneshot_rate / append_rate,
            p(&oneshot_lat, 0.99).as_secs_f64() * 1e3
        );
        println!(
            "  each from a new address (HTTP):  {new_address_rate:>8.0} /s  ratio {:.2}, p99 {:.1} ms",
            new_address_rate / append_rate,
            p(&new_address_lat, 0.99).as_secs_f64() * 1e3
        );
        println!(
            "  vault: person of a known address {known_lookup_rate:>8.0} /s  ratio {:.2}",
            known_lookup_rate / append_rate
        );
        println!(
            "  vault: a new person (key, lookup) {new_person_rate:>7.0} /s  ratio {:.2}",
            new_person_rate / append_rate
        );
        println!(
            "  sealed case-shaped appends:      {sealed_append_rate:>8.0} /s  ratio {:.2} (raw {:.2})",
            sealed_append_rate / append_rate,
            case_append_rate / append_rate
        );
        println!("  CPU per operation, this process (service and clients) / postgres:");
        for (what, c) in [
            ("single appends", append_cpu),
            ("POST, same address", submit_cpu),
            ("in process, same address", oneshot_cpu),
            ("POST, new addresses", new_address_cpu),
        ] {
            println!(
                "    {what:<26} {:>6.0} us / {:>6.0} us",
                c.own_us, c.db_us
            );
        }
        println!(
            "  GET /inquiry renders:            {render_rate:>8.0} /s  (ratio to appends {:.2})",
            render_rate / append_rate
        );
        println!(
            "  render latency p99:              {:>8.1} ms",
            p(&render_lat, 0.99).as_secs_f64() * 1e3
        );
    });
}
