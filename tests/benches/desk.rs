//! The staff desk over a realistic log (issue 8): each figure beside a baseline
//! measured in the same run, on the same database.
//!
//! 1. **Rebuilds.** Each desk projection (`desk.persons`, `desk.cases`,
//!    `desk.rosters`, `desk.kpi`) rebuilt from the whole log with
//!    `Projector::rebuild`, exactly as `kujira projections rebuild NAME` does it
//!    (shadow tables, catch-up, swap), in log events per second. Baseline: the
//!    log's plain read of the same events (`read_batch`, 1,000 at a time, no type
//!    filter), measured before and after each rebuild and averaged.
//! 2. **Pages.** p50/p99 render time of the board, a filtered list, case pages and
//!    the KPI dashboard, through the whole app (`kujira::serve::app`) as a
//!    logged-in concierge with a session cookie, one request at a time, the pages
//!    taking turns with the baselines: the login page (a page of the same desk
//!    router, with its session and CSRF layers) and `/healthz`. "x login" is how
//!    many login pages render in the time of one.
//! 3. **`kujira serve`.** The real binary (`target/release/kujira`) on a copy of the
//!    same database: its RSS idle; the lag from an intake append (the 201 of
//!    `POST /api/v1/inquiries`) to the case's row in `desk_cases`, under a steady
//!    intake load and under as many submissions as 16 clients can make, with every
//!    worker of `serve` running (projections, mailer, rules, retention); its RSS
//!    under that load, and under desk page views over HTTP.
//!
//! Run: `cargo build --release -p kujira && cargo bench -p kujira-tests --bench desk`.
//! `BENCH_EVENTS` (default 1,000,000) and `BENCH_CASES` (default 100,000) size the
//! log: at least that many of each (the default log has about 1.2 million events);
//! the generated database is cached (see `support`). `BENCH_RENDERS` (default 200) is the number of requests
//! per page; `BENCH_SECONDS` (default 10) the length of each load phase;
//! `BENCH_ONLY=rebuild,pages,serve` runs a part.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use kujira_config::SystemClock;
use kujira_eventlog::Checkpoint;
use support::{ms, quantile};
use tower::ServiceExt;
use uuid::Uuid;

const DESK_PROJECTIONS: [&str; 4] = ["desk.persons", "desk.cases", "desk.rosters", "desk.kpi"];

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn wanted(part: &str) -> bool {
    std::env::var("BENCH_ONLY").map_or(true, |only| only.split(',').any(|p| p.trim() == part))
}

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let bench = support::open().await?;
    let i = &bench.info;
    println!(
        "desk benchmark: {} events, {} cases, {} tours, {} persons, history up to {}",
        i.events, i.cases, i.tours, i.persons, i.anchor
    );
    println!(
        "  generated in {:.0} s; every projection of serve caught up live in {:.0} s \
         ({:.0} log events/s){}",
        i.generated_secs,
        i.caught_up_secs,
        i.events as f64 / i.caught_up_secs,
        if i.fresh { "" } else { " (cached database)" }
    );
    if wanted("rebuild") {
        rebuilds(&bench).await?;
    }
    if wanted("pages") {
        pages(&bench).await?;
    }
    if wanted("serve") {
        serve(&bench).await?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// 1. Rebuilds

/// Reads the whole log, 1,000 events at a time, as a projection's reads do but with
/// no type filter; returns (events, seconds).
async fn plain_read(store: &kujira_eventlog::EventStore) -> anyhow::Result<(u64, f64)> {
    let started = Instant::now();
    let mut at = Checkpoint::START;
    let mut n = 0u64;
    loop {
        let batch = store.read_batch(at, 1000, None).await?;
        n += batch.events.len() as u64;
        at = batch.next;
        if !batch.full {
            break;
        }
    }
    Ok((n, started.elapsed().as_secs_f64()))
}

async fn rebuilds(bench: &support::Bench) -> anyhow::Result<()> {
    let projector = kujira::serve::projector(&bench.config, &bench.store);
    let log = bench.store.events();
    let (events, _) = plain_read(log).await?; // warms the cache like the rebuilds' first read
    println!();
    println!("rebuilds (kujira projections rebuild NAME), over {events} log events");
    println!(
        "  {:<14} {:>10} {:>9} {:>14} {:>16} {:>7}",
        "projection", "applied", "seconds", "log events/s", "plain read/s", "ratio"
    );
    for name in DESK_PROJECTIONS {
        let (n0, s0) = plain_read(log).await?;
        let report = projector.rebuild(name).await?;
        let (n1, s1) = plain_read(log).await?;
        let baseline = (n0 as f64 / s0 + n1 as f64 / s1) / 2.0;
        let secs = report.elapsed.as_secs_f64();
        let rate = events as f64 / secs;
        println!(
            "  {:<14} {:>10} {:>9.1} {:>14.0} {:>16.0} {:>7.2}   (target >= 100,000/s)",
            name,
            report.events_applied,
            secs,
            rate,
            baseline,
            rate / baseline
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// 2. Pages

/// A browser on the in-process app: keeps cookies between requests.
struct Browser {
    app: axum::Router,
    cookies: HashMap<String, String>,
}

struct Page {
    status: StatusCode,
    location: Option<String>,
    body: String,
}

impl Browser {
    fn new(app: axum::Router) -> Self {
        Self {
            app,
            cookies: HashMap::new(),
        }
    }

    async fn send(&mut self, mut req: Request<Body>) -> anyhow::Result<Page> {
        if !self.cookies.is_empty() {
            let jar = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            req.headers_mut().insert(header::COOKIE, jar.parse()?);
        }
        let res = self.app.clone().oneshot(req).await?;
        for v in res.headers().get_all(header::SET_COOKIE) {
            let v = v.to_str()?;
            if let Some((k, val)) = v.split(';').next().and_then(|p| p.split_once('=')) {
                if val.is_empty() || v.to_ascii_lowercase().contains("max-age=0") {
                    self.cookies.remove(k.trim());
                } else {
                    self.cookies
                        .insert(k.trim().to_owned(), val.trim().to_owned());
                }
            }
        }
        let status = res.status();
        let location = res
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = res.into_body().collect().await?.to_bytes();
        Ok(Page {
            status,
            location,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        })
    }

    async fn get(&mut self, path: &str) -> anyhow::Result<Page> {
        self.send(Request::get(path).body(Body::empty())?).await
    }

    async fn login(&mut self, email: &str) -> anyhow::Result<()> {
        let form = self.get("/desk/login").await?;
        let token = input_value(&form.body, "csrf_token")
            .ok_or_else(|| anyhow::anyhow!("no CSRF token on the login page ({})", form.status))?;
        let body = serde_urlencoded::to_string([
            ("csrf_token", token.as_str()),
            ("email", email),
            ("password", support::PASSWORD),
        ])?;
        let res = self
            .send(
                Request::post("/desk/login")
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(Body::from(body))?,
            )
            .await?;
        anyhow::ensure!(
            res.status == StatusCode::SEE_OTHER,
            "login of {email} failed: {} {:?}",
            res.status,
            res.location
        );
        Ok(())
    }
}

fn input_value(body: &str, name: &str) -> Option<String> {
    let needle = format!("name=\"{name}\" value=\"");
    let start = body.find(&needle)? + needle.len();
    let end = body[start..].find('"')? + start;
    Some(body[start..end].replace("&amp;", "&"))
}

/// Sample case ids, spread over the table.
async fn sample_cases(pool: &sqlx::PgPool, n: i64) -> anyhow::Result<Vec<Uuid>> {
    Ok(
        sqlx::query_scalar("SELECT case_id FROM desk_cases ORDER BY md5(case_id::text) LIMIT $1")
            .bind(n)
            .fetch_all(pool)
            .await?,
    )
}

async fn pages(bench: &support::Bench) -> anyhow::Result<()> {
    let rounds = env_num("BENCH_RENDERS", 200) as usize;
    let app = kujira::serve::app(
        bench.config.clone(),
        bench.store.clone(),
        Arc::new(SystemClock),
    );
    let mut staff = Browser::new(app.clone());
    staff.login("concierge1@example.jp").await?;
    let mut anonymous = Browser::new(app);
    let cases = sample_cases(&bench.db.pool, rounds as i64).await?;
    let open_cases: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM desk_cases WHERE closed_at IS NULL AND merged_into IS NULL",
    )
    .fetch_one(&bench.db.pool)
    .await?;

    let names = [
        "GET /healthz",
        "GET /desk/login",
        "GET /desk (board)",
        "GET /desk/cases?phase=considering",
        "GET /desk/cases/<id>",
        "GET /desk/kpi",
    ];
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); names.len()];
    let mut bytes = vec![0usize; names.len()];
    // One warm-up round, not counted.
    for round in 0..=rounds {
        let case = cases[round % cases.len()];
        for (k, times) in times.iter_mut().enumerate() {
            let path = match k {
                0 => "/healthz".to_owned(),
                1 => "/desk/login".to_owned(),
                2 => "/desk".to_owned(),
                3 => "/desk/cases?phase=considering".to_owned(),
                4 => format!("/desk/cases/{case}"),
                _ => "/desk/kpi".to_owned(),
            };
            let browser = if k < 2 { &mut anonymous } else { &mut staff };
            let t = Instant::now();
            let page = browser.get(&path).await?;
            let took = t.elapsed();
            anyhow::ensure!(
                page.status == StatusCode::OK,
                "{path} answered {} {:?}",
                page.status,
                page.location
            );
            if round > 0 {
                times.push(took);
                bytes[k] = page.body.len();
            }
        }
    }
    println!();
    println!(
        "pages with {} cases ({open_cases} open), as a logged-in concierge, {rounds} requests \
         each, in turns",
        bench.info.cases
    );
    println!(
        "  {:<34} {:>8} {:>8} {:>9} {:>10} {:>8}",
        "page", "p50 ms", "p99 ms", "pages/s", "x login", "bytes"
    );
    let rate = |t: &[Duration]| t.len() as f64 / t.iter().map(Duration::as_secs_f64).sum::<f64>();
    for t in &mut times {
        t.sort_unstable();
    }
    let login_rate = rate(&times[1]);
    for (k, name) in names.iter().enumerate() {
        let t = &times[k];
        println!(
            "  {:<34} {:>8.2} {:>8.2} {:>9.0} {:>10.1} {:>8}{}",
            name,
            ms(quantile(t, 0.5)),
            ms(quantile(t, 0.99)),
            rate(t),
            login_rate / rate(t),
            bytes[k],
            if k >= 2 {
                "   (target p99 < 50 ms)"
            } else {
                ""
            }
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// 3. kujira serve

/// The running binary; killed if the benchmark fails.
struct Served {
    child: std::process::Child,
    addr: std::net::SocketAddr,
    _dir: tempfile::TempDir,
}

impl Served {
    fn rss_kib(&self) -> Option<u64> {
        proc_status_kib(self.child.id(), "VmRSS:")
    }

    fn hwm_kib(&self) -> Option<u64> {
        proc_status_kib(self.child.id(), "VmHWM:")
    }

    fn stop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}

fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn binary() -> anyhow::Result<std::path::PathBuf> {
    if let Ok(p) = std::env::var("KUJIRA_BIN") {
        return Ok(p.into());
    }
    let p = kujira_pgembed::testing::target_dir()
        .join("release")
        .join("kujira");
    anyhow::ensure!(
        p.exists(),
        "{} does not exist: run `cargo build --release -p kujira` first (or set KUJIRA_BIN)",
        p.display()
    );
    Ok(p)
}

async fn start_serve(bench: &support::Bench) -> anyhow::Result<Served> {
    let bin = binary()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let dir = tempfile::tempdir()?;
    let log = std::fs::File::create(dir.path().join("serve.log"))?;
    let child = std::process::Command::new(&bin)
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", support::database_url(&bench.db.options))
        .env("KUJIRA_ADDR", addr.to_string())
        .env("KUJIRA_PUBLIC_URL", format!("http://{addr}"))
        .env("KUJIRA_DATA_DIR", dir.path())
        .env("KUJIRA_MASTER_KEY", MASTER_KEY)
        .env("KUJIRA_SECRET", "bench-secret-bench-secret-bench-secret!")
        .env("KUJIRA_SUBMISSIONS_PER_IP_PER_HOUR", "0")
        .env("KUJIRA_MAIL_FROM", "kujira@example.jp")
        .env("KUJIRA_CONCIERGE_EMAILS", "concierge@example.jp")
        .env("RUST_LOG", "warn")
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()?;
    let mut served = Served {
        child,
        addr,
        _dir: dir,
    };
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        if let Ok(Some(status)) = served.child.try_wait() {
            let log =
                std::fs::read_to_string(served._dir.path().join("serve.log")).unwrap_or_default();
            anyhow::bail!("kujira serve exited with {status}:\n{log}");
        }
        if let Ok(r) = client.get(format!("http://{addr}/readyz")).send().await
            && r.status() == 200
        {
            return Ok(served);
        }
        if Instant::now() > deadline {
            served.stop();
            anyhow::bail!("kujira serve was not ready within 180 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The master key of `Config::for_tests`, which sealed the generated data.
const MASTER_KEY: &str = "a3VqaXJhLXRlc3QtbWFzdGVyLWtleS0zMi1ieXRlcyE=";

/// Samples the process's RSS every 100 ms until stopped; returns the peak (KiB).
fn sample_rss(pid: u32, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let mut peak = 0;
        while !stop.load(Ordering::Relaxed) {
            if let Some(kib) = proc_status_kib(pid, "VmRSS:") {
                peak = peak.max(kib);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        peak
    })
}

struct LagRun {
    submitted: u64,
    rate: f64,
    /// From the 201 to the row in desk_cases.
    lags: Vec<Duration>,
    /// From sending the request to the row.
    end_to_end: Vec<Duration>,
    peak_rss: u64,
}

/// Submits inquiries for `secs` seconds, either at `per_second` from one paced
/// client or as fast as `clients` clients can; measures each case's lag.
async fn intake_load(
    served: &Served,
    pool: &sqlx::PgPool,
    secs: u64,
    pace: Option<f64>,
    clients: usize,
) -> anyhow::Result<LagRun> {
    let url = format!("http://{}/api/v1/inquiries", served.addr);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()?;
    let pending: Arc<std::sync::Mutex<HashMap<Uuid, (Instant, Instant)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let submitted = Arc::new(AtomicU64::new(0));
    let rss_stop = Arc::new(AtomicBool::new(false));
    let rss = sample_rss(served.child.id(), rss_stop.clone());

    // The watcher: one indexed query for every pending case, every 2 ms.
    let watcher = {
        let (pending, stop, pool) = (pending.clone(), stop.clone(), pool.clone());
        tokio::spawn(async move {
            let mut lags = Vec::new();
            let mut e2e = Vec::new();
            let mut idle_since: Option<Instant> = None;
            loop {
                let ids: Vec<Uuid> = pending.lock().unwrap().keys().copied().collect();
                if ids.is_empty() {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                } else {
                    let found: Vec<Uuid> = sqlx::query_scalar(
                        "SELECT case_id FROM desk_cases WHERE case_id = ANY($1)",
                    )
                    .bind(&ids)
                    .fetch_all(&pool)
                    .await?;
                    let now = Instant::now();
                    let mut p = pending.lock().unwrap();
                    for id in found {
                        if let Some((sent, acked)) = p.remove(&id) {
                            lags.push(now - acked);
                            e2e.push(now - sent);
                        }
                    }
                    if stop.load(Ordering::Relaxed) {
                        let since = *idle_since.get_or_insert(now);
                        anyhow::ensure!(
                            now - since < Duration::from_secs(60),
                            "{} cases never reached desk_cases within 60 s",
                            p.len()
                        );
                    }
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            anyhow::Ok((lags, e2e))
        })
    };

    let body = |n: u64| {
        serde_json::json!({
            "name": "柏崎 太郎", "name_kana": "カシワザキ タロウ",
            "email": format!("load{n}.{}@example.jp", Uuid::now_v7().simple()),
            "prefecture": "東京都", "segment": "i_turn", "topics": ["work", "housing"],
            "method": "online", "message": "冬の暮らしについて相談したいです。", "consent": true
        })
        .to_string()
    };
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..clients {
        let (client, url, pending, stop, submitted) = (
            client.clone(),
            url.clone(),
            pending.clone(),
            stop.clone(),
            submitted.clone(),
        );
        tasks.spawn(async move {
            let mut k = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if let Some(per_second) = pace {
                    let due = started
                        + Duration::from_secs_f64(
                            (k * clients as u64 + c as u64) as f64 / per_second,
                        );
                    tokio::time::sleep_until(due.into()).await;
                }
                k += 1;
                let sent = Instant::now();
                let res = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body(k * 1000 + c as u64))
                    .send()
                    .await?;
                let acked = Instant::now();
                anyhow::ensure!(res.status() == 201, "submission answered {}", res.status());
                let v: serde_json::Value = res.json().await?;
                let id: Uuid = v["id"]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| anyhow::anyhow!("no id in {v}"))?;
                pending.lock().unwrap().insert(id, (sent, acked));
                submitted.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(())
        });
    }
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (mut lags, mut end_to_end) = watcher.await??;
    rss_stop.store(true, Ordering::Relaxed);
    let peak_rss = rss.await?;
    lags.sort_unstable();
    end_to_end.sort_unstable();
    let n = submitted.load(Ordering::Relaxed);
    Ok(LagRun {
        submitted: n,
        rate: n as f64 / elapsed,
        lags,
        end_to_end,
        peak_rss,
    })
}

/// Logs in over HTTP and views desk pages from `clients` clients for `secs`
/// seconds; returns (pages/s, sorted latencies, peak RSS).
async fn page_load(
    served: &Served,
    cases: &[Uuid],
    secs: u64,
    clients: usize,
) -> anyhow::Result<(f64, Vec<Duration>, u64)> {
    let base = format!("http://{}", served.addr);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    // Log in once; every client shares the session.
    let form = client.get(format!("{base}/desk/login")).send().await?;
    let mut jar: HashMap<String, String> = HashMap::new();
    let remember = |jar: &mut HashMap<String, String>, res: &reqwest::Response| {
        for v in res.headers().get_all(header::SET_COOKIE) {
            if let Some((k, val)) = v
                .to_str()
                .ok()
                .and_then(|v| v.split(';').next())
                .and_then(|p| p.split_once('='))
            {
                jar.insert(k.trim().to_owned(), val.trim().to_owned());
            }
        }
    };
    remember(&mut jar, &form);
    let token = input_value(&form.text().await?, "csrf_token")
        .ok_or_else(|| anyhow::anyhow!("no CSRF token on the login page"))?;
    let cookie = |jar: &HashMap<String, String>| {
        jar.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let res = client
        .post(format!("{base}/desk/login"))
        .header(header::COOKIE, cookie(&jar))
        .form(&[
            ("csrf_token", token.as_str()),
            ("email", "concierge1@example.jp"),
            ("password", support::PASSWORD),
        ])
        .send()
        .await?;
    anyhow::ensure!(
        res.status() == 303,
        "login over HTTP answered {}",
        res.status()
    );
    remember(&mut jar, &res);
    let cookie = Arc::new(cookie(&jar));

    let stop = Arc::new(AtomicBool::new(false));
    let rss_stop = Arc::new(AtomicBool::new(false));
    let rss = sample_rss(served.child.id(), rss_stop.clone());
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..clients {
        let (client, base, cookie, stop) =
            (client.clone(), base.clone(), cookie.clone(), stop.clone());
        let cases = cases.to_vec();
        tasks.spawn(async move {
            let mut lat = Vec::new();
            let mut k = c;
            while !stop.load(Ordering::Relaxed) {
                let path = match k % 4 {
                    0 => "/desk".to_owned(),
                    1 => "/desk/cases?phase=considering".to_owned(),
                    2 => format!("/desk/cases/{}", cases[k % cases.len()]),
                    _ => "/desk/kpi".to_owned(),
                };
                k += 1;
                let t = Instant::now();
                let res = client
                    .get(format!("{base}{path}"))
                    .header(header::COOKIE, cookie.as_str())
                    .send()
                    .await?;
                let status = res.status();
                res.bytes().await?;
                anyhow::ensure!(status == 200, "{path} over HTTP answered {status}");
                lat.push(t.elapsed());
            }
            anyhow::Ok(lat)
        });
    }
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    while let Some(r) = tasks.join_next().await {
        all.extend(r??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    rss_stop.store(true, Ordering::Relaxed);
    let peak = rss.await?;
    all.sort_unstable();
    Ok((all.len() as f64 / elapsed, all, peak))
}

async fn serve(bench: &support::Bench) -> anyhow::Result<()> {
    let secs = env_num("BENCH_SECONDS", 10);
    // The generated history's rules ran as of its end; run them as of now too, as
    // the service would have, so that serve starts in its steady state instead of
    // catching up a burst of follow-ups.
    let rules = kujira::serve::rules(&bench.config, &bench.store);
    rules.run_all(chrono::Utc::now()).await?;
    kujira::serve::projector(&bench.config, &bench.store)
        .catch_up()
        .await?;
    support::mark_history_sent(&bench.db.pool).await?;

    let mut served = start_serve(bench).await?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let idle = served.rss_kib().unwrap_or_default();
    println!();
    println!(
        "kujira serve ({}), {} events, {} cases",
        binary()?.display(),
        bench.info.events,
        bench.info.cases
    );
    println!(
        "  RSS idle, 5 s after ready:           {:>8.1} MiB",
        idle as f64 / 1024.0
    );

    let cases = sample_cases(&bench.db.pool, 200).await?;
    // A city's desk sees a few inquiries a day; 20/s and 100/s are far beyond any
    // peak, and 16 clients without a pause find what the machine can take.
    let runs = [
        ("steady, 20 submissions/s", Some(20.0), 1usize),
        ("steady, 100 submissions/s", Some(100.0), 4usize),
        ("saturated, 16 clients", None, 16usize),
    ];
    for (label, pace, clients) in runs {
        let r = intake_load(&served, &bench.db.pool, secs, pace, clients).await?;
        println!(
            "  intake {label:<28} {:>6.0}/s ({} cases): lag append -> desk_cases \
             p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; request -> desk_cases p99 {:.1} ms \
             (target p99 < 100 ms); peak RSS {:.1} MiB",
            r.rate,
            r.submitted,
            ms(quantile(&r.lags, 0.5)),
            ms(quantile(&r.lags, 0.99)),
            ms(quantile(&r.lags, 1.0)),
            ms(quantile(&r.end_to_end, 0.99)),
            r.peak_rss as f64 / 1024.0
        );
    }
    let (rate, lat, peak) = page_load(&served, &cases, secs, 4).await?;
    println!(
        "  desk pages over HTTP, 4 clients:      {rate:>6.0}/s, p50 {:.1} ms, p99 {:.1} ms; \
         peak RSS {:.1} MiB",
        ms(quantile(&lat, 0.5)),
        ms(quantile(&lat, 0.99)),
        peak as f64 / 1024.0
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    println!(
        "  RSS 5 s after the load:              {:>8.1} MiB (high-water mark {:.1} MiB)",
        served.rss_kib().unwrap_or_default() as f64 / 1024.0,
        served.hwm_kib().unwrap_or_default() as f64 / 1024.0
    );
    served.stop();
    Ok(())
}
