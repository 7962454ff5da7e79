//! `kujira scheduler run-once --at` and `kujira scheduler status` on the real
//! binary, while `kujira serve` runs on the same data directory: a tour reminder and
//! the concierge digest are decided as of `--at` and written (as `.eml` files) before
//! the command returns; on a public holiday there is no digest; `status` shows the
//! runs.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use kujira_pgembed::testing::target_dir;

struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        // SIGTERM: serve stops its private cluster on the way out.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}

fn kujira(data: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kujira"))
        .args(args)
        .env_remove("DATABASE_URL")
        .env("KUJIRA_DATA_DIR", data)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the kujira binary runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn start(data: &Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kujira"))
        .arg("serve")
        .env_remove("DATABASE_URL")
        .env("KUJIRA_DATA_DIR", data)
        .env("KUJIRA_ADDR", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the kujira binary starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
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

fn remove_data(data: &Path) {
    if let Ok(target) = std::fs::read_link(data.join("pg")) {
        let _ = std::fs::remove_dir_all(target);
    }
    let _ = std::fs::remove_dir_all(data);
}

/// The `.eml` files written so far that contain every one of `needles`.
fn emls(data: &Path, needles: &[&str]) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(data.join("outbox")) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .filter(|text| needles.iter().all(|n| text.contains(n)))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn run_once_decides_as_of_at_and_sends_before_it_returns_while_serve_runs() {
    let data = target_dir().join(format!("kujira-scheduler-test-{}", std::process::id()));
    remove_data(&data);
    let server = start(&data);

    ok(kujira(
        &data,
        &[
            "users",
            "add",
            "aoki@city.example.jp",
            "--role",
            "concierge",
            "--name",
            "青木",
        ],
        "correct horse battery staple\n",
    ));
    // Monday 2099-02-16: the reminder's moment is Friday 02-13 at 10:00.
    let tour = ok(kujira(
        &data,
        &[
            "tours",
            "add",
            "--title",
            "冬の柏崎 日帰りツアー",
            "--kind",
            "day_trip",
            "--starts-at",
            "2099-02-16T10:00:00+09:00",
            "--ends-at",
            "2099-02-16T16:00:00+09:00",
            "--capacity-parties",
            "5",
            "--publish",
        ],
        "",
    ))
    .trim()
    .to_owned();
    let signed = reqwest::Client::new()
        .post(format!("{}/api/v1/tours/{tour}/signups", server.url))
        .json(&serde_json::json!({
            "name": "柏崎 太郎",
            "name_kana": "カシワザキ タロウ",
            "email": "taro@example.jp",
            "phone": "090-1234-5678",
            "prefecture": "東京都",
            "adults": 2,
            "children": 0,
            "consent": true
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status().as_u16(), 201, "{:?}", signed.text().await);

    // Wednesday 02-11 is 建国記念の日: no digest, and the reminder is not due yet.
    let out = ok(kujira(
        &data,
        &["scheduler", "run-once", "--at", "2099-02-11T09:00:00+09:00"],
        "",
    ));
    assert!(out.contains("digest           queued 0"), "{out}");
    assert!(out.contains("tour_reminder    queued 0"), "{out}");

    let out = ok(kujira(
        &data,
        &["scheduler", "run-once", "--at", "2099-02-13T10:00:00+09:00"],
        "",
    ));
    assert!(out.contains("tour_reminder    queued 1"), "{out}");
    assert!(out.contains("digest           queued 1"), "{out}");
    // Sent before the command returned (as .eml files: no SMTP server is set).
    let reminders = emls(
        &data,
        &[
            "To: taro@example.jp",
            "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
        ],
    );
    assert_eq!(reminders.len(), 1, "the reminder, a follow-up");
    let digests = emls(&data, &["To: aoki@city.example.jp"]);
    assert_eq!(digests.len(), 1, "the digest");
    assert!(!digests[0].contains("List-Unsubscribe"));

    // Again: nothing new.
    let out = ok(kujira(
        &data,
        &["scheduler", "run-once", "--at", "2099-02-13T10:05:00+09:00"],
        "",
    ));
    assert!(
        out.contains("tour_reminder    queued 0 (already queued"),
        "{out}"
    );

    let out = ok(kujira(&data, &["scheduler", "status"], ""));
    assert!(out.starts_with("RULE"), "{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with("tour_reminder"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains("0 10 * * *"), "{line}");
    assert!(line.contains("2099-02-13 10:05"), "last run: {line}");

    let bad = kujira(&data, &["scheduler", "run-once", "--at", "tomorrow"], "");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("RFC 3339"));

    drop(server);
    remove_data(&data);
}
