//! `kujira privacy export|erase|stats` on the real binary while `serve` runs, and the
//! logs of it all: no personal data and no secret in any log line, at debug level.

mod support;

use support::{kujira_with, remove_data, start_with, stderr, stdout, stop, wait_for_files};

const NAME: &str = "柏崎 花子";
const EMAIL: &str = "hanako.cli@example.jp";
const PHONE: &str = "090-7777-8888";
const MESSAGE: &str = "子育て支援について詳しく知りたい";

#[tokio::test(flavor = "multi_thread")]
async fn export_erase_and_stats_through_the_binary_and_no_personal_data_in_any_log() {
    let data = support::data_dir("privacy-cli");
    let log = data.with_extension("log");
    let debug = [("RUST_LOG", "debug")];
    let server = start_with(&data, &debug, Some(&log));
    let client = reqwest::Client::new();
    let res = client
        .post(format!("{}/api/v1/inquiries", server.url))
        .json(&serde_json::json!({
            "name": NAME, "name_kana": "カシワザキ ハナコ", "email": EMAIL, "phone": PHONE,
            "prefecture": "新潟県", "segment": "u_turn", "topics": ["childcare_education"],
            "method": "email", "message": MESSAGE, "consent": true
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let outbox = data.join("outbox");
    assert_eq!(wait_for_files(&outbox, 2), 2, "the two mails are written");

    // While serve runs, the CLI joins its database.
    let export = kujira_with(&data, &["privacy", "export", EMAIL], &debug);
    assert!(export.status.success(), "{}", stderr(&export));
    let json: serde_json::Value = serde_json::from_str(&stdout(&export)).unwrap();
    let text = json.to_string();
    for submitted in [NAME, EMAIL, PHONE, MESSAGE] {
        assert!(
            text.contains(submitted),
            "{submitted} missing from the export"
        );
    }

    let erase = kujira_with(&data, &["privacy", "erase", EMAIL], &debug);
    assert!(erase.status.success(), "{}", stderr(&erase));
    assert!(
        stdout(&erase).contains("消去しました"),
        "{}",
        stdout(&erase)
    );
    assert_eq!(
        std::fs::read_dir(&outbox).unwrap().count(),
        0,
        "the erased person's mail files are deleted"
    );
    let again = kujira_with(&data, &["privacy", "export", EMAIL], &debug);
    assert!(
        !again.status.success(),
        "nobody is found by the address any more"
    );
    assert!(stderr(&again).contains("no person"), "{}", stderr(&again));
    let stats = kujira_with(&data, &["privacy", "stats"], &debug);
    assert!(stats.status.success(), "{}", stderr(&stats));
    assert!(stdout(&stats).contains("(held): 0"), "{}", stdout(&stats));
    assert!(stdout(&stats).contains("(erased): 1"), "{}", stdout(&stats));
    let bad = kujira_with(&data, &["privacy", "erase", "not-a-target"], &[]);
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("neither a case id nor an email"),
        "{}",
        stderr(&bad)
    );
    stop(server);

    // Every log line of the run: serve's and each command's, at debug level.
    let mut logs = std::fs::read_to_string(&log).unwrap();
    for out in [&export, &erase, &again, &stats] {
        logs.push_str(&stderr(out));
    }
    assert!(logs.lines().count() > 50, "debug logging was on");
    let secret = std::fs::read_to_string(data.join("secret")).unwrap();
    let master = std::fs::read_to_string(data.join("master.key")).unwrap();
    for (what, needle) in [
        ("name", NAME),
        ("email", EMAIL),
        ("phone", PHONE),
        ("message", MESSAGE),
        ("secret", secret.trim()),
        ("master key", master.trim()),
    ] {
        if let Some(line) = logs.lines().find(|l| l.contains(needle)) {
            panic!("the {what} stands in a log line: {line}");
        }
    }
    remove_data(&data);
    let _ = std::fs::remove_file(&log);
}
