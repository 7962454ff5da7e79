//! Logins, sessions, CSRF and access by role, through the real router on a real
//! PostgreSQL.

mod support;

use axum::http::StatusCode;
use chrono::Duration;
use kujira_desk::Role;
use kujira_desk::auth::limit::BURST;
use support::{App, PASSWORD};

#[tokio::test]
async fn a_login_leads_to_the_desk_and_a_failure_answers_the_same_whatever_failed() {
    let app = App::new().await;
    app.user("admin@example.jp", Role::Admin).await;
    let mut b = app.browser();

    let page = b.get("/desk/login").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("lang=\"ja\""));
    assert!(page.body.contains("name=\"email\""));
    assert!(page.body.contains("type=\"password\""));

    let unknown = b.try_login("nobody@example.jp", "wrong password 1").await;
    let wrong = b.try_login("admin@example.jp", "wrong password 1").await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(unknown.status, wrong.status);
    assert!(unknown.body.contains(kujira_desk::auth::login::FAILED));
    // The same page, but for the address typed, which is kept in the field.
    assert_eq!(
        unknown.body.replace("nobody@example.jp", "X"),
        wrong.body.replace("admin@example.jp", "X")
    );
    assert!(b.session_cookie().is_none(), "no session for a failure");
    // The password is never sent back.
    assert!(!wrong.body.contains("wrong password 1"));

    // Case and full-width input do not matter for the address.
    let ok = b.login("ＡＤＭＩＮ@Example.JP", PASSWORD).await;
    assert_eq!(ok.location(), Some("/desk"));
    let desk = b.get("/desk").await;
    assert_eq!(desk.status, StatusCode::OK);
    assert!(desk.body.contains("admin"), "{}", desk.body);
    assert!(desk.body.contains("action=\"/desk/logout\""));
}

#[tokio::test]
async fn empty_fields_get_the_form_again_with_messages_tied_to_them() {
    let app = App::new().await;
    let mut b = app.browser();
    let res = b
        .post_form("/desk/login", &[("email", "<b>x</b>"), ("password", "")])
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(res.body.contains("パスワードを入力してください"));
    assert!(
        res.body
            .contains("aria-describedby=\"f-password-help f-password-error\"")
    );
    assert!(res.body.contains("aria-invalid=\"true\""));
    // The value is kept, as text.
    assert!(
        res.body.contains("value=\"&lt;b&gt;x&lt;/b&gt;\""),
        "{}",
        res.body
    );
}

#[tokio::test]
async fn five_failures_lock_the_account_for_fifteen_minutes_with_the_same_answer() {
    let app = App::new().await;
    let user = app.user("concierge@example.jp", Role::Concierge).await;
    let mut b = app.browser();
    let reference = b
        .try_login("concierge@example.jp", "wrong password 1")
        .await;
    for _ in 1..5 {
        let res = b
            .try_login("concierge@example.jp", "wrong password 1")
            .await;
        assert_eq!(res.body, reference.body);
    }
    // Locked: even the right password gets the very same answer.
    let locked = b.try_login("concierge@example.jp", PASSWORD).await;
    assert_eq!(locked.status, reference.status);
    assert_eq!(locked.body, reference.body);
    assert!(locked.body.contains("15分間ログインできなくなります"));
    assert!(locked.body.contains("管理者"));
    let stored = app.state.users().find(user.user_id).await.unwrap().unwrap();
    assert_eq!(
        stored.locked_until,
        Some(app.clock_now() + Duration::minutes(15))
    );

    app.clock.advance(Duration::minutes(14));
    let still = b.try_login("concierge@example.jp", PASSWORD).await;
    assert_eq!(still.body, reference.body);
    app.clock.advance(Duration::minutes(1));
    b.login("concierge@example.jp", PASSWORD).await;
    let stored = app.state.users().find(user.user_id).await.unwrap().unwrap();
    assert_eq!(stored.failed_logins, 0);
    assert_eq!(stored.locked_until, None);
    assert_eq!(stored.last_login_at, Some(app.clock_now()));
}

#[tokio::test]
async fn a_success_resets_the_count_of_failures() {
    let app = App::new().await;
    app.user("a@example.jp", Role::Viewer).await;
    for _ in 0..4 {
        app.browser()
            .try_login("a@example.jp", "wrong password 1")
            .await;
    }
    app.browser().login("a@example.jp", PASSWORD).await;
    for _ in 0..4 {
        app.browser()
            .try_login("a@example.jp", "wrong password 1")
            .await;
    }
    app.browser().login("a@example.jp", PASSWORD).await;
}

#[tokio::test]
async fn failures_are_limited_per_client_and_ipv6_counts_per_64() {
    let app = App::new().await;
    app.user("a@example.jp", Role::Viewer).await;
    let mut attacker = app.browser().at_ip("2001:db8:1:2::1");
    for i in 0..BURST {
        let res = attacker
            .try_login(&format!("guess{i}@example.jp"), "wrong password 1")
            .await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "attempt {i}");
    }
    let refused = attacker.try_login("a@example.jp", PASSWORD).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.body.contains("しばらくしてからお試しください"));
    assert_eq!(refused.headers["retry-after"], "60");
    // Another address in the same /64 is the same client.
    let mut neighbour = app.browser().at_ip("2001:db8:1:2:ffff::9");
    let refused = neighbour.try_login("a@example.jp", PASSWORD).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    // Another client is not held back.
    app.browser()
        .at_ip("2001:db8:1:3::1")
        .login("a@example.jp", PASSWORD)
        .await;
    // One more attempt a minute later.
    app.clock.advance(Duration::seconds(60));
    attacker.login("a@example.jp", PASSWORD).await;
}

#[tokio::test]
async fn the_session_id_changes_at_login_and_the_old_one_is_worthless() {
    let app = App::new().await;
    app.user("a@example.jp", Role::Admin).await;
    app.user("b@example.jp", Role::Viewer).await;
    let mut b = app.browser();
    b.login("a@example.jp", PASSWORD).await;
    let first = b.session_cookie().unwrap().to_owned();
    assert_eq!(app.session_ids().await.len(), 1);

    // Logging in again (as someone else) on the same browser gets a new id.
    b.login("b@example.jp", PASSWORD).await;
    let second = b.session_cookie().unwrap().to_owned();
    assert_ne!(first, second);
    assert_eq!(
        app.session_ids().await.len(),
        1,
        "the old session is deleted"
    );

    // Whoever kept the first id is not logged in.
    let mut other = app.browser();
    other
        .cookies
        .insert(kujira_desk::SESSION_COOKIE.into(), first);
    let res = other.get("/desk").await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(res.location(), Some("/desk/login"));

    // A session id planted before the login is not the one after it.
    let mut victim = app.browser();
    victim.cookies.insert(
        kujira_desk::SESSION_COOKIE.into(),
        "AAAAAAAAAAAAAAAAAAAAAA".into(),
    );
    victim.login("a@example.jp", PASSWORD).await;
    assert_ne!(victim.session_cookie(), Some("AAAAAAAAAAAAAAAAAAAAAA"));
}

#[tokio::test]
async fn the_session_cookie_is_httponly_lax_and_secure_behind_https() {
    let app = App::new().await; // KUJIRA_PUBLIC_URL is https in tests
    app.user("a@example.jp", Role::Admin).await;
    let res = app.browser().login("a@example.jp", PASSWORD).await;
    let cookie = res
        .set_cookie(kujira_desk::SESSION_COOKIE)
        .expect("a session cookie");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(cookie.contains("Secure"), "{cookie}");
    assert!(cookie.contains("Path=/desk"), "{cookie}");

    let plain = App::with(|c| c.public_url = "http://127.0.0.1:8080".into()).await;
    plain.user("a@example.jp", Role::Admin).await;
    let res = plain.browser().login("a@example.jp", PASSWORD).await;
    let cookie = res.set_cookie(kujira_desk::SESSION_COOKIE).unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
    assert!(!cookie.contains("Secure"), "{cookie}");
}

#[tokio::test]
async fn posts_without_a_genuine_csrf_token_are_refused() {
    let app = App::new().await;
    app.user("a@example.jp", Role::Admin).await;
    let mut b = app.browser();
    let token = b.csrf_token().await;
    let login = [("email", "a@example.jp"), ("password", PASSWORD)];

    let missing = b.post("/desk/login", &login).await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN);
    assert!(missing.body.contains("送信を受け付けられませんでした"));
    let forged = b
        .post(
            "/desk/login",
            &[("csrf_token", "Zm9yZ2Vk"), login[0], login[1]],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    // Another browser's genuine token does not fit this browser's cookie.
    let mut other = app.browser();
    let others = other.csrf_token().await;
    assert_ne!(others, token);
    let foreign = b
        .post(
            "/desk/login",
            &[("csrf_token", &others), login[0], login[1]],
        )
        .await;
    assert_eq!(foreign.status, StatusCode::FORBIDDEN);
    assert!(b.session_cookie().is_none());

    // Logged in, the same holds for every staff POST.
    b.login("a@example.jp", PASSWORD).await;
    for path in ["/desk/users", "/desk/logout"] {
        let res = b.post(path, &[("email", "x@example.jp")]).await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "{path}");
        let res = b
            .post(
                path,
                &[("csrf_token", "Zm9yZ2Vk"), ("email", "x@example.jp")],
            )
            .await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "{path}");
    }
    assert_eq!(
        b.get("/desk").await.status,
        StatusCode::OK,
        "still logged in"
    );
}

#[tokio::test]
async fn anonymous_requests_go_to_the_login_and_come_back() {
    let app = App::new().await;
    app.user("a@example.jp", Role::Admin).await;
    let mut b = app.browser();
    for (path, login) in [
        ("/desk", "/desk/login"),
        (
            "/desk/users?x=1",
            "/desk/login?next=%2Fdesk%2Fusers%3Fx%3D1",
        ),
        (
            "/desk/cases/unknown",
            "/desk/login?next=%2Fdesk%2Fcases%2Funknown",
        ),
    ] {
        let res = b.get(path).await;
        assert_eq!(res.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(res.location(), Some(login), "{path}");
    }
    // A POST is redirected too (without a next: it cannot be replayed by a GET),
    // and nothing is done.
    for res in [
        b.post("/desk/users", &[]).await,
        b.post_form("/desk/users", &[]).await,
    ] {
        assert_eq!(res.status, StatusCode::SEE_OTHER);
        assert_eq!(res.location(), Some("/desk/login"));
    }

    let form = b.get("/desk/login?next=%2Fdesk%2Fusers%3Fx%3D1").await;
    assert_eq!(form.input_value("next").as_deref(), Some("/desk/users?x=1"));
    let token = b.csrf_token().await;
    let res = b
        .post(
            "/desk/login",
            &[
                ("csrf_token", &token),
                ("next", "/desk/users?x=1"),
                ("email", "a@example.jp"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(res.location(), Some("/desk/users?x=1"));
    // Logged in, the login page leads on at once.
    let res = b.get("/desk/login?next=%2Fdesk%2Fusers").await;
    assert_eq!(res.location(), Some("/desk/users"));
    // Logged in, an unknown desk page is a Japanese 404.
    let res = b.get("/desk/cases/unknown").await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    assert!(res.body.contains("ページが見つかりません"));
}

#[tokio::test]
async fn a_next_that_leaves_the_desk_is_ignored() {
    let app = App::new().await;
    app.user("a@example.jp", Role::Admin).await;
    for next in [
        "https://evil.example/",
        "//evil.example/desk",
        "/\\evil.example",
        "/inquiry",
        "/desk/logout",
    ] {
        let mut b = app.browser();
        let form = b
            .get(&format!("/desk/login?next={}", percent_encode(next)))
            .await;
        assert_eq!(form.input_value("next"), None, "{next}");
        let token = b.csrf_token().await;
        let res = b
            .post(
                "/desk/login",
                &[
                    ("csrf_token", &token),
                    ("next", next),
                    ("email", "a@example.jp"),
                    ("password", PASSWORD),
                ],
            )
            .await;
        assert_eq!(res.location(), Some("/desk"), "{next}");
    }
}

fn percent_encode(s: &str) -> String {
    serde_urlencoded::to_string([("x", s)]).unwrap()[2..].to_owned()
}

#[tokio::test]
async fn a_role_without_the_right_gets_a_japanese_403() {
    let app = App::new().await;
    app.user("admin@example.jp", Role::Admin).await;
    app.user("viewer@example.jp", Role::Viewer).await;
    app.user("concierge@example.jp", Role::Concierge).await;
    for who in ["viewer@example.jp", "concierge@example.jp"] {
        let mut b = app.browser();
        b.login(who, PASSWORD).await;
        let res = b.get("/desk/users").await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "{who}");
        assert!(res.body.contains("この操作を行う権限がありません"), "{who}");
        let res = b
            .post_form(
                "/desk/users",
                &[
                    ("email", "new@example.jp"),
                    ("display_name", "新人"),
                    ("role", "admin"),
                    ("password", PASSWORD),
                ],
            )
            .await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "{who}");
        // The menu offers only what the role may open.
        let desk = b.get("/desk").await;
        assert!(!desk.body.contains("href=\"/desk/users\""), "{who}");
        assert!(desk.body.contains("href=\"/desk/kpi\""), "{who}");
    }
    assert!(
        app.state
            .users()
            .find_by_email("new@example.jp")
            .await
            .unwrap()
            .is_none()
    );
    let mut admin = app.browser();
    admin.login("admin@example.jp", PASSWORD).await;
    assert!(
        admin
            .get("/desk")
            .await
            .body
            .contains("href=\"/desk/users\"")
    );
}

#[tokio::test]
async fn a_disabled_account_is_logged_out_at_its_next_request_and_cannot_log_in() {
    let app = App::new().await;
    app.user("admin@example.jp", Role::Admin).await;
    let user = app.user("c@example.jp", Role::Concierge).await;
    let mut b = app.browser();
    b.login("c@example.jp", PASSWORD).await;
    assert_eq!(b.get("/desk").await.status, StatusCode::OK);

    let mut admin = app.browser();
    admin.login("admin@example.jp", PASSWORD).await;
    let res = admin
        .post_form(&format!("/desk/users/{}/disable", user.user_id), &[])
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    assert_eq!(app.session_ids().await.len(), 2);

    let res = b.get("/desk").await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(res.location(), Some("/desk/login"));
    assert!(b.session_cookie().is_none(), "the cookie is removed");
    assert_eq!(app.session_ids().await.len(), 1, "the session row is gone");

    let unknown = b.try_login("nobody@example.jp", PASSWORD).await;
    let disabled = b.try_login("c@example.jp", PASSWORD).await;
    assert_eq!(disabled.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        disabled.body.replace("c@example.jp", "X"),
        unknown.body.replace("nobody@example.jp", "X")
    );
}

#[tokio::test]
async fn logout_deletes_the_session() {
    let app = App::new().await;
    app.user("a@example.jp", Role::Viewer).await;
    let mut b = app.browser();
    b.login("a@example.jp", PASSWORD).await;
    let id = b.session_cookie().unwrap().to_owned();
    let res = b.post_form("/desk/logout", &[]).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(res.location(), Some("/desk/login?logged_out=1"));
    assert!(app.session_ids().await.is_empty());
    assert!(b.session_cookie().is_none());
    let page = b.get("/desk/login?logged_out=1").await;
    assert!(page.body.contains("ログアウトしました"));
    // Replaying the old cookie gets nowhere.
    let mut replay = app.browser();
    replay
        .cookies
        .insert(kujira_desk::SESSION_COOKIE.into(), id);
    assert_eq!(replay.get("/desk").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn desk_pages_are_not_cached_and_carry_no_script() {
    let app = App::new().await;
    app.user("a@example.jp", Role::Admin).await;
    let mut b = app.browser();
    let login = b.get("/desk/login").await;
    assert_eq!(login.headers["cache-control"], "no-store");
    b.login("a@example.jp", PASSWORD).await;
    for path in ["/desk", "/desk/users"] {
        let page = b.get(path).await;
        assert_eq!(page.headers["cache-control"], "no-store", "{path}");
        assert!(!page.body.contains("<script"), "{path}");
        assert!(page.body.contains("lang=\"ja\""), "{path}");
    }
}

#[tokio::test]
async fn expired_sessions_are_deleted_by_the_cleanup_worker() {
    let app = App::new().await;
    app.user("a@example.jp", Role::Viewer).await;
    app.browser().login("a@example.jp", PASSWORD).await;
    app.browser().login("a@example.jp", PASSWORD).await;
    // One of them expired an hour ago (the store keeps real time).
    sqlx::query(
        "UPDATE tower_sessions.session SET expiry_date = now() - interval '1 hour' \
         WHERE id = (SELECT min(id) FROM tower_sessions.session)",
    )
    .execute(&app.db.pool)
    .await
    .unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let worker = tokio::spawn(kujira_desk::session_cleanup(
        app.db.pool.clone(),
        std::time::Duration::from_secs(3600),
        shutdown.clone(),
    ));
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while app.session_ids().await.len() != 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the expired session was not deleted within 10 s"
        );
        tokio::task::yield_now().await;
    }
    shutdown.cancel();
    worker.await.unwrap().unwrap();
}
