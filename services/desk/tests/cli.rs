//! `kujira users ...` through `run_cli`, on a real PostgreSQL.

mod support;

use clap::Parser;
use kujira_desk::{PasswordInput, Role, UsersCommand, run_cli};
use support::{App, PASSWORD};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: UsersCommand,
}

/// Runs `kujira users <args>` with `stdin`; the output, or the error's text.
async fn run(app: &App, args: &[&str], stdin: &str) -> Result<String, String> {
    let cli = Cli::try_parse_from(std::iter::once("users").chain(args.iter().copied()))
        .map_err(|e| e.to_string())?;
    let mut input = std::io::Cursor::new(stdin.as_bytes().to_vec());
    let mut out = Vec::new();
    run_cli(
        &app.state,
        cli.command,
        PasswordInput::Line(&mut input),
        &mut out,
    )
    .await
    .map_err(|e| format!("{e:#}"))?;
    Ok(String::from_utf8(out).unwrap())
}

#[tokio::test]
async fn add_reads_one_line_of_password_and_the_account_can_log_in() {
    let app = App::new().await;
    let out = run(
        &app,
        &[
            "add",
            "admin@example.jp",
            "--role",
            "admin",
            "--name",
            "柏崎 管理",
        ],
        "correct horse battery staple\nthe next line is not read\n",
    )
    .await
    .unwrap();
    let id: uuid::Uuid = out.trim().parse().expect("add prints the new id");
    let user = app.state.users().find(id).await.unwrap().unwrap();
    assert_eq!(user.role, Role::Admin);
    assert_eq!(user.display_name, "柏崎 管理");
    app.browser()
        .login("admin@example.jp", "correct horse battery staple")
        .await;

    // Without --name, the part before @ is shown; CRLF line ends are fine; a
    // missing final newline too.
    run(
        &app,
        &["add", "viewer@example.jp", "--role", "viewer"],
        "viewer password 12\r\n",
    )
    .await
    .unwrap();
    run(
        &app,
        &["add", "c@example.jp", "--role", "concierge"],
        "c password 1234",
    )
    .await
    .unwrap();
    let v = app
        .state
        .users()
        .find_by_email("viewer@example.jp")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v.display_name, "viewer");
    app.browser()
        .login("viewer@example.jp", "viewer password 12")
        .await;
    app.browser().login("c@example.jp", "c password 1234").await;

    let events = app.events().await;
    assert!(events.iter().all(|(_, _, _, actor)| actor == "cli"));
    assert!(!serde_json::to_string(&events).unwrap().contains("horse"));
}

#[tokio::test]
async fn add_refuses_short_passwords_bad_addresses_and_duplicates() {
    let app = App::new().await;
    let err = run(
        &app,
        &["add", "a@example.jp", "--role", "admin"],
        "short pass\n",
    )
    .await
    .unwrap_err();
    assert!(err.contains("12文字以上"), "{err}");
    assert!(err.contains("10文字"), "{err}");
    let err = run(&app, &["add", "a@example.jp", "--role", "admin"], "")
        .await
        .unwrap_err();
    assert!(err.contains("12文字以上"), "{err}");
    let err = run(
        &app,
        &["add", "not-an-address", "--role", "admin"],
        PASSWORD,
    )
    .await
    .unwrap_err();
    assert!(err.contains("email"), "{err}");
    let err = run(&app, &["add", "a@example.jp", "--role", "root"], PASSWORD)
        .await
        .unwrap_err();
    assert!(err.contains("root"), "{err}");
    assert!(app.state.users().list().await.unwrap().is_empty());

    run(&app, &["add", "a@example.jp", "--role", "admin"], PASSWORD)
        .await
        .unwrap();
    let err = run(&app, &["add", "A@Example.JP", "--role", "viewer"], PASSWORD)
        .await
        .unwrap_err();
    assert!(err.contains("すでに登録されています"), "{err}");
}

#[tokio::test]
async fn list_set_role_disable_and_enable() {
    let app = App::new().await;
    app.user("admin@example.jp", Role::Admin).await;
    app.user("c@example.jp", Role::Concierge).await;
    app.browser().login("c@example.jp", PASSWORD).await;

    let out = run(&app, &["list"], "").await.unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "email\tname\trole\tdisabled\tlast_login");
    assert_eq!(lines[1], "admin@example.jp\tadmin\tadmin\tno\t—");
    // The last login is shown in the city's time (t0 is 09:00 in Tokyo).
    assert_eq!(lines[2], "c@example.jp\tc\tconcierge\tno\t2026-12-01 09:00");

    let out = run(&app, &["set-role", "C@example.jp", "viewer"], "")
        .await
        .unwrap();
    assert_eq!(out.trim(), "C@example.jp: role viewer");
    let out = run(&app, &["set-role", "c@example.jp", "viewer"], "")
        .await
        .unwrap();
    assert!(out.contains("nothing changed"), "{out}");
    let out = run(&app, &["disable", "c@example.jp"], "").await.unwrap();
    assert_eq!(out.trim(), "c@example.jp: disabled");
    let out = run(&app, &["list"], "").await.unwrap();
    assert!(out.contains("c@example.jp\tc\tviewer\tyes\t"), "{out}");
    let failed = app.browser().try_login("c@example.jp", PASSWORD).await;
    assert_eq!(failed.status, axum::http::StatusCode::UNPROCESSABLE_ENTITY);
    run(&app, &["enable", "c@example.jp"], "").await.unwrap();
    app.browser().login("c@example.jp", PASSWORD).await;

    let err = run(&app, &["disable", "nobody@example.jp"], "")
        .await
        .unwrap_err();
    assert!(err.contains("ユーザーが見つかりません"), "{err}");
    let err = run(&app, &["set-role", "admin@example.jp", "viewer"], "")
        .await
        .unwrap_err();
    assert!(err.contains("有効な管理者が1人もいなくなる"), "{err}");
    let err = run(&app, &["set-role", "admin@example.jp", "owner"], "")
        .await
        .unwrap_err();
    assert!(err.contains("owner"), "{err}");
}
