//! Schemathesis against `/api/openapi.json`, every check on: the real app (the very
//! router `kujira serve` runs, `kujira::serve::app`) on a loopback port, a real
//! PostgreSQL database, a tour open for sign-ups.
//!
//! Expected: no server error, no status the document does not list, no answer that
//! breaks its schema, no schema-valid request refused and no schema-invalid one
//! accepted. The only rules the document states in words instead of in the schema
//! (a preferred date inside the lead time, the same date twice) are handed to
//! schemathesis by `tests/schemathesis/hooks.py`, which drops the positive cases
//! that break them; it weakens no check.
//!
//! Schemathesis is taken from PATH when it is the pinned version, else installed once
//! into a virtualenv under the cargo target directory (`python3 -m venv` + pip; PyPI
//! must be reachable the first time).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use kujira_config::{Config, FixedClock};
use kujira_pgembed::testing::TestDb;
use kujira_store::Store;
use tokio::process::Command;

/// The schemathesis release this test is written against.
const SCHEMATHESIS: &str = "4.32.5";
/// Test cases per operation and phase.
const MAX_EXAMPLES: &str = "60";
const SEED: &str = "20261124";
/// Installing schemathesis (first run only) and running it.
const INSTALL_DEADLINE: Duration = Duration::from_secs(600);
const RUN_DEADLINE: Duration = Duration::from_secs(900);

/// 2026-11-24 10:00 in Tokyo.
fn t0() -> DateTime<Utc> {
    "2026-11-24T01:00:00Z".parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing_wrong_with_the_public_api() {
    let schemathesis = schemathesis().await;

    let db = TestDb::new(&[&kujira::db::migrator().unwrap()]).await;
    kujira_desk::setup(&db.pool).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::for_tests(dir.path());
    // Schemathesis sends thousands of requests from one address.
    config.submissions_per_ip_per_hour = 0;
    let config = Arc::new(config);
    let clock = FixedClock::new(t0());
    let store = Store::open(db.pool.clone(), &config.master_key)
        .await
        .unwrap();
    let tour_id = open_tour(&config, &store, &clock).await;

    let app = kujira::serve::app(config.clone(), store.clone(), Arc::new(clock.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });

    let work = tempfile::tempdir().unwrap();
    let hooks = work.path().join("hooks.py");
    std::fs::write(&hooks, include_str!("../schemathesis/hooks.py")).unwrap();
    let config_file = work.path().join("schemathesis.toml");
    std::fs::write(
        &config_file,
        format!(
            "hooks = {hooks:?}\n\n\
             # Every sign-up goes to the open tour, so that valid bodies meet a tour\n\
             # that takes them (a made-up id is a documented 404).\n\
             [parameters]\n\"path.id\" = \"{tour_id}\"\n",
            hooks = hooks.display().to_string()
        ),
    )
    .unwrap();

    let mut command = Command::new(&schemathesis[0]);
    command
        .args(&schemathesis[1..])
        .args(["--config-file", config_file.to_str().unwrap()])
        .arg("run")
        .arg(format!("http://{addr}/api/openapi.json"))
        .args(["--checks", "all"])
        .args(["--max-examples", MAX_EXAMPLES])
        .args(["--seed", SEED])
        .arg("--generation-deterministic")
        .args(["--workers", "2"])
        .args(["--request-timeout", "30"])
        .arg("--no-color")
        .current_dir(work.path())
        .env("KUJIRA_TEST_NOW", t0().to_rfc3339())
        .env(
            "KUJIRA_TEST_LEAD_DAYS",
            config.inquiry_lead_days.to_string(),
        )
        .env_remove("SCHEMATHESIS_HOOKS")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(RUN_DEADLINE, command.output())
        .await
        .unwrap_or_else(|_| {
            panic!("schemathesis did not finish within {RUN_DEADLINE:?} (the child is killed)")
        })
        .expect("schemathesis runs");
    server.abort();
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "schemathesis found problems ({}):\n{report}",
        output.status
    );
    // A run that tested nothing, or only part of the API, would also exit 0.
    assert!(
        report.contains("Selected: 3/3") && report.contains("Tested: 3"),
        "not every operation was tested:\n{report}"
    );
    let generated: u64 = report
        .split_once(" generated, ")
        .and_then(|(before, _)| before.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count of test cases:\n{report}"));
    assert!(generated >= 300, "only {generated} test cases:\n{report}");
    println!("{report}");
}

/// Schedules and publishes a tour that takes sign-ups (deadline ahead, no limit of
/// people per party below the schema's 20), and fills the catalogue.
async fn open_tour(config: &Arc<Config>, store: &Store, clock: &FixedClock) -> uuid::Uuid {
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        cmd: kujira_tours::ToursCommand,
    }
    let state =
        kujira_tours::ToursState::new(config.clone(), store.clone(), Arc::new(clock.clone()));
    let starts = (t0() + chrono::Duration::days(30)).to_rfc3339();
    let ends = (t0() + chrono::Duration::days(30) + chrono::Duration::hours(7)).to_rfc3339();
    let deadline = (t0() + chrono::Duration::days(20)).to_rfc3339();
    let cli = Cli::try_parse_from([
        "tours",
        "add",
        "--title",
        "親子で体験！柏崎の暮らし日帰りツアー",
        "--kind",
        "day_trip",
        "--starts-at",
        &starts,
        "--ends-at",
        &ends,
        "--capacity-parties",
        "3",
        "--deadline",
        &deadline,
        "--meeting-place",
        "JR柏崎駅 改札前",
        "--publish",
    ])
    .unwrap();
    let mut out = Vec::new();
    kujira_tours::run_cli(&state, cli.cmd, &mut out)
        .await
        .unwrap();
    let tour_id = uuid::Uuid::parse_str(String::from_utf8(out).unwrap().trim()).unwrap();
    kujira_projector::Projector::new(store.events().clone())
        .with(kujira_tours::TourCatalogueProjection::new())
        .catch_up()
        .await
        .unwrap();
    tour_id
}

/// The command that runs the pinned schemathesis: from PATH when it is that version,
/// else from a virtualenv made once under the target directory.
async fn schemathesis() -> Vec<String> {
    if version_of(&["schemathesis".into()]).await.as_deref() == Some(SCHEMATHESIS) {
        return vec!["schemathesis".into()];
    }
    let venv = kujira_pgembed::testing::target_dir()
        .join("tmp")
        .join(format!("schemathesis-{SCHEMATHESIS}"));
    let python = venv.join("bin").join("python");
    let command = vec![
        python.display().to_string(),
        "-m".into(),
        "schemathesis.cli".into(),
    ];
    if version_of(&command).await.as_deref() == Some(SCHEMATHESIS) {
        return command;
    }
    // Installed beside the final place and renamed into it, so that concurrent test
    // runs never see half an install. `python -m` keeps working after the rename.
    let partial = venv.with_extension(format!("partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&partial);
    tokio::time::timeout(INSTALL_DEADLINE, install(&partial))
        .await
        .unwrap_or_else(|_| panic!("installing schemathesis took over {INSTALL_DEADLINE:?}"));
    if std::fs::rename(&partial, &venv).is_err() {
        // Another run finished first.
        let _ = std::fs::remove_dir_all(&partial);
    }
    assert_eq!(
        version_of(&command).await.as_deref(),
        Some(SCHEMATHESIS),
        "schemathesis is not runnable from {}",
        venv.display()
    );
    command
}

async fn install(dir: &Path) {
    run(
        Command::new("python3").arg("-m").arg("venv").arg(dir),
        "python3 -m venv (install python3 and python3-venv)",
    )
    .await;
    let pip: PathBuf = dir.join("bin").join("pip");
    run(
        Command::new(pip)
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .arg(format!("schemathesis=={SCHEMATHESIS}")),
        "pip install schemathesis (PyPI must be reachable)",
    )
    .await;
}

async fn run(command: &mut Command, what: &str) {
    let out = command
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The version a schemathesis command reports, if it runs at all.
async fn version_of(command: &[String]) -> Option<String> {
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        Command::new(&command[0])
            .args(&command[1..])
            .arg("--version")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .ok()?
    .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // "schemathesis, version 4.32.5"
    text.trim().rsplit(' ').next().map(str::to_owned)
}
