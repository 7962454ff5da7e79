//! `kujira users ...` as an operator runs it: the real binary, on a real database,
//! the password piped in on standard input.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use kujira_pgembed::testing::{TestDb, target_dir};

/// A URL for the binary that points at the test's own database.
fn database_url(db: &TestDb) -> String {
    if let Ok(url) = std::env::var("DATABASE_URL") {
        let (base, query) = url.split_once('?').unwrap_or((url.as_str(), ""));
        let (server, _) = base
            .rsplit_once('/')
            .expect("DATABASE_URL names a database");
        let query = if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        };
        return format!("{server}/{}{query}", db.name);
    }
    let o = &db.options;
    let socket = o
        .get_socket()
        .expect("the test cluster listens on a socket");
    format!(
        "postgres://{}@localhost/{}?host={}&port={}",
        o.get_username(),
        db.name,
        socket.display(),
        o.get_port()
    )
}

fn kujira(url: &str, data: &std::path::Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kujira"))
        .args(args)
        .env("DATABASE_URL", url)
        .env("KUJIRA_DATA_DIR", data)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the kujira binary starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn users_add_list_set_role_and_disable_through_the_binary() {
    let db = TestDb::new(&[&kujira_eventlog::MIGRATOR]).await;
    let url = database_url(&db);
    let data = target_dir().join(format!("kujira-users-test-{}", std::process::id()));
    std::fs::create_dir_all(&data).unwrap();

    let out = kujira(
        &url,
        &data,
        &["users", "add", "admin@example.jp", "--role", "admin"],
        "correct horse battery\n",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let id = text(&out.stdout);
    assert!(uuid_like(id.trim()), "add prints only the id: {id:?}");

    let out = kujira(
        &url,
        &data,
        &["users", "add", "short@example.jp", "--role", "viewer"],
        "too short\n",
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("12文字以上"),
        "{}",
        text(&out.stderr)
    );
    assert!(text(&out.stdout).is_empty());

    let out = kujira(
        &url,
        &data,
        &[
            "users",
            "add",
            "c@example.jp",
            "--role",
            "concierge",
            "--name",
            "柏崎 花子",
        ],
        "concierge password\n",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = kujira(
        &url,
        &data,
        &["users", "set-role", "c@example.jp", "viewer"],
        "",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = kujira(&url, &data, &["users", "disable", "c@example.jp"], "");
    assert!(out.status.success(), "{}", text(&out.stderr));

    let out = kujira(&url, &data, &["users", "list"], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let list = text(&out.stdout);
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(
        lines[0], "email\tname\trole\tdisabled\tlast_login",
        "{list}"
    );
    assert!(
        lines.contains(&"admin@example.jp\tadmin\tadmin\tno\t—"),
        "{list}"
    );
    assert!(
        lines.contains(&"c@example.jp\t柏崎 花子\tviewer\tyes\t—"),
        "{list}"
    );
    assert!(!list.contains("short@example.jp"));

    let out = kujira(&url, &data, &["users", "disable", "nobody@example.jp"], "");
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("ユーザーが見つかりません"));

    // Every change is an event by `cli`; the session table was made by `setup`.
    let actors: Vec<String> = sqlx::query_scalar("SELECT DISTINCT metadata->>'actor' FROM events")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    assert_eq!(actors, vec!["cli".to_owned()]);
    let sessions: i64 = sqlx::query_scalar("SELECT count(*) FROM tower_sessions.session")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(sessions, 0);
    let _ = std::fs::remove_dir_all(&data);
}

fn uuid_like(s: &str) -> bool {
    s.len() == 36 && s.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}
