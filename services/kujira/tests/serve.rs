//! The real binary, as a new user runs it: no DATABASE_URL, a fresh data directory.
//! It must start its own PostgreSQL, serve, write mail as .eml files, stop cleanly
//! on SIGTERM (taking its cluster down), and find its data again on the next start.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kujira_pgembed::testing::target_dir;

struct Server {
    child: Child,
    url: String,
}

fn start(data: &Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kujira"))
        .arg("serve")
        .env_remove("DATABASE_URL")
        .env("KUJIRA_DATA_DIR", data)
        .env("KUJIRA_ADDR", "127.0.0.1:0")
        .env("KUJIRA_SUBMISSIONS_PER_IP_PER_HOUR", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the kujira binary starts");
    let stdout = child.stdout.take().expect("stdout is piped");
    // Only the first line is read and then the pipe is closed, as when a terminal
    // goes away: kujira must keep serving.
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("kujira prints its URL");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .trim_end_matches('/')
        .to_owned();
    Server { child, url }
}

fn stop(mut server: Server) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = server.child.wait().unwrap();
    assert!(
        status.success(),
        "kujira exits cleanly on SIGTERM: {status}"
    );
}

async fn submit(client: &reqwest::Client, url: &str) -> serde_json::Value {
    let res = client
        .post(format!("{url}/api/v1/inquiries"))
        .json(&serde_json::json!({
            "name": "柏崎 花子", "name_kana": "カシワザキ ハナコ", "email": "hanako@example.jp",
            "prefecture": "新潟県", "segment": "u_turn", "topics": ["housing"],
            "method": "visit", "consent": true
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    res.json().await.unwrap()
}

fn wait_for_files(dir: &Path, n: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let count = std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
        if count >= n || Instant::now() > deadline {
            return count;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_starts_from_nothing_stops_cleanly_and_keeps_its_data() {
    let data = target_dir().join(format!("kujira-serve-test-{}", std::process::id()));
    remove_data(&data);
    let client = reqwest::Client::new();

    let server = start(&data);
    let health = client
        .get(format!("{}/healthz", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let ready: serde_json::Value = client
        .get(format!("{}/readyz", server.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["database"], "ok");
    let form = client
        .get(format!("{}/inquiry", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 200);
    assert!(form.text().await.unwrap().contains("lang=\"ja\""));
    // The staff desk is served.
    let login = client
        .get(format!("{}/desk/login", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    assert!(login.text().await.unwrap().contains("name=\"password\""));

    let first = submit(&client, &server.url).await;
    // The concierge notice and the auto-reply arrive as .eml files.
    assert_eq!(wait_for_files(&data.join("outbox"), 2), 2);
    let doc: serde_json::Value = client
        .get(format!("{}/api/openapi.json", server.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["paths"]["/api/v1/inquiries"].is_object());
    assert!(doc["paths"]["/api/v1/tours"].is_object());
    stop(server);
    assert!(
        !data.join("pg/postmaster.pid").exists(),
        "the private cluster stops with kujira"
    );

    // A second start finds the same data: the case numbering continues.
    let server = start(&data);
    let second = submit(&client, &server.url).await;
    assert_ne!(first["reference"], second["reference"]);
    assert_eq!(wait_for_files(&data.join("outbox"), 4), 4);
    stop(server);

    // The master key was generated on the first run; a wrong one for the same data
    // stops the start-up with a message that says what to do, and the cluster stops.
    assert!(data.join("master.key").exists());
    let out = Command::new(env!("CARGO_BIN_EXE_kujira"))
        .arg("serve")
        .env_remove("DATABASE_URL")
        .env("KUJIRA_DATA_DIR", &data)
        .env("KUJIRA_ADDR", "127.0.0.1:0")
        .env(
            "KUJIRA_MASTER_KEY",
            "d3Jvbmctd3Jvbmctd3Jvbmctd3Jvbmctd3Jvbmctd3I=",
        )
        .output()
        .unwrap();
    assert!(!out.status.success(), "a wrong master key must stop serve");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("master key") && stderr.contains("KUJIRA_MASTER_KEY"),
        "{stderr}"
    );
    assert!(
        !data.join("pg/postmaster.pid").exists(),
        "a failed start stops the private cluster too"
    );
    // So does a missing key file.
    std::fs::rename(data.join("master.key"), data.join("master.key.bak")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kujira"))
        .arg("serve")
        .env_remove("DATABASE_URL")
        .env("KUJIRA_DATA_DIR", &data)
        .env("KUJIRA_ADDR", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "a missing master key must stop serve"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("master.key"), "{stderr}");
    assert!(
        !data.join("master.key").exists(),
        "no new key for existing data"
    );
    remove_data(&data);
}

/// Removes the data directory, and the cluster it links to when running as root.
fn remove_data(data: &Path) {
    if let Ok(target) = std::fs::read_link(data.join("pg")) {
        let _ = std::fs::remove_dir_all(target);
    }
    let _ = std::fs::remove_dir_all(data);
}

#[test]
fn bad_configuration_stops_the_start_with_a_message_naming_the_variable() {
    let data = target_dir().join(format!("kujira-config-test-{}", std::process::id()));
    for (var, value) in [
        ("KUJIRA_ADDR", "not-an-address"),
        ("KUJIRA_TIMEZONE", "Mars/Olympus"),
        ("KUJIRA_PG_BINDIR", "/nonexistent"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_kujira"))
            .arg("migrate")
            .env_remove("DATABASE_URL")
            .env("KUJIRA_DATA_DIR", &data)
            .env(var, value)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{var}={value} must stop the start");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(var), "{var}: {stderr}");
    }
    remove_data(&data);
}
