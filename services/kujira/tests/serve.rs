//! The real binary, as a new user runs it: no DATABASE_URL, a fresh data directory.
//! It must start its own PostgreSQL, serve, write mail as .eml files, stop cleanly
//! on SIGTERM (taking its cluster down), and find its data again on the next start.

mod support;

use std::process::Command;

use kujira_pgembed::testing::target_dir;
use support::{remove_data, start, start_with, stop, wait_for_files};

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

#[tokio::test(flavor = "multi_thread")]
async fn serve_starts_from_nothing_stops_cleanly_and_keeps_its_data() {
    let data = target_dir().join(format!("kujira-serve-test-{}", std::process::id()));
    remove_data(&data);
    let client = reqwest::Client::new();

    let first_log = target_dir().join(format!("kujira-serve-test-{}.log", std::process::id()));
    let server = start_with(&data, &[], Some(&first_log));
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
    // A new installation has missed nothing: its first start does not report
    // catching up runs from before it existed.
    let log = std::fs::read_to_string(&first_log).unwrap();
    let _ = std::fs::remove_file(&first_log);
    assert!(log.contains("scheduler rules are running"), "{log}");
    assert!(!log.contains("missed run"), "{log}");

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
