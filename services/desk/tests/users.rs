//! The admin's page for staff accounts, and the events every change records.

mod support;

use axum::http::StatusCode;
use kujira_desk::Role;
use support::{App, Browser, PASSWORD};

async fn admin(app: &App) -> (Browser<'_>, kujira_desk::users::StaffUser) {
    let admin = app.user("admin@example.jp", Role::Admin).await;
    let mut b = app.browser();
    b.login("admin@example.jp", PASSWORD).await;
    (b, admin)
}

fn add_pairs<'a>(
    email: &'a str,
    name: &'a str,
    role: &'a str,
    password: &'a str,
) -> [(&'static str, &'a str); 4] {
    [
        ("email", email),
        ("display_name", name),
        ("role", role),
        ("password", password),
    ]
}

#[tokio::test]
async fn an_admin_adds_an_account_that_can_log_in_and_the_event_names_the_admin() {
    let app = App::new().await;
    let (mut b, me) = admin(&app).await;
    let page = b.get("/desk/users").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("admin@example.jp"));
    assert!(page.body.contains("aria-current=\"page\""));

    let res = b
        .post_form(
            "/desk/users",
            &add_pairs(
                "hanako@example.jp",
                "柏崎 花子",
                "concierge",
                "花子の初期パスワード123",
            ),
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    assert_eq!(res.location(), Some("/desk/users?done=added"));
    let page = b.get("/desk/users?done=added").await;
    assert!(page.body.contains("ユーザーを追加しました"));
    assert!(page.body.contains("柏崎 花子"));

    app.browser()
        .login("hanako@example.jp", "花子の初期パスワード123")
        .await;

    let events = app.events().await;
    let (stream, kind, data, actor) = events.last().unwrap();
    let added = app
        .state
        .users()
        .find_by_email("hanako@example.jp")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stream, &format!("staff-{}", added.user_id));
    assert_eq!(kind, "StaffUserAdded");
    assert_eq!(actor, &format!("staff:{}", me.user_id));
    assert_eq!(data["role"], "concierge");
    assert_eq!(data["email"], "hanako@example.jp");
    // No password, no hash, in any event.
    let all = serde_json::to_string(&events).unwrap();
    assert!(!all.contains("argon2"), "{all}");
    assert!(!all.contains("初期パスワード"), "{all}");
}

#[tokio::test]
async fn bad_values_get_the_form_again_with_values_kept_and_messages_tied_to_fields() {
    let app = App::new().await;
    let (mut b, _) = admin(&app).await;
    let res = b
        .post_form(
            "/desk/users",
            &add_pairs("not-an-address", "<b>太郎</b>", "root", "short"),
        )
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        res.body.contains("入力内容に3件の誤りがあります"),
        "{}",
        res.body
    );
    for (field, message) in [
        ("email", "メールアドレスの形式で入力してください"),
        ("role", "役割を選んでください"),
        (
            "password",
            "パスワードは12文字以上にしてください（入力は5文字です）",
        ),
    ] {
        assert!(res.body.contains(message), "{field}");
        assert!(
            res.body.contains(&format!("id=\"f-{field}-error\"")),
            "{field}"
        );
        assert!(
            res.body.contains(&format!("href=\"#f-{field}\"")),
            "{field}"
        );
    }
    assert!(res.body.contains("aria-describedby=\"f-email-error\""));
    // Values are kept, as text; the password is not sent back.
    assert_eq!(res.input_value("email").as_deref(), Some("not-an-address"));
    assert_eq!(
        res.input_value("display_name").as_deref(),
        Some("<b>太郎</b>")
    );
    assert!(res.body.contains("&lt;b&gt;太郎&lt;/b&gt;"));
    assert!(!res.body.contains("<b>太郎</b>"));
    assert!(!res.body.contains("value=\"short\""));
    assert_eq!(app.state.users().list().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_duplicate_address_is_refused_with_a_clear_message_whatever_its_case() {
    let app = App::new().await;
    let (mut b, _) = admin(&app).await;
    let res = b
        .post_form(
            "/desk/users",
            &add_pairs("Admin@EXAMPLE.jp", "二人目", "viewer", PASSWORD),
        )
        .await;
    assert_eq!(res.status, StatusCode::CONFLICT);
    assert!(
        res.body
            .contains("このメールアドレスのユーザーはすでに登録されています")
    );
    assert!(res.body.contains("aria-describedby=\"f-email-error\""));
    assert_eq!(res.input_value("display_name").as_deref(), Some("二人目"));
    assert_eq!(app.state.users().list().await.unwrap().len(), 1);
    assert_eq!(app.events().await.len(), 1, "no event for a refused add");
    // Said at once, beside the other errors.
    let res = b
        .post_form(
            "/desk/users",
            &add_pairs("admin@example.jp", "二人目", "viewer", "short"),
        )
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        res.body.contains("入力内容に2件の誤りがあります"),
        "{}",
        res.body
    );
    assert!(
        res.body
            .contains("このメールアドレスのユーザーはすでに登録されています")
    );
}

#[tokio::test]
async fn role_changes_disable_enable_and_unlock_are_events_and_take_effect_at_once() {
    let app = App::new().await;
    let (mut b, me) = admin(&app).await;
    let c = app.user("c@example.jp", Role::Concierge).await;
    let mut cb = app.browser();
    cb.login("c@example.jp", PASSWORD).await;
    assert_eq!(cb.get("/desk/users").await.status, StatusCode::FORBIDDEN);

    let res = b
        .post_form(
            &format!("/desk/users/{}/role", c.user_id),
            &[("role", "admin")],
        )
        .await;
    assert_eq!(res.location(), Some("/desk/users?done=role"));
    // The concierge's open session has the new role at its next request.
    assert_eq!(cb.get("/desk/users").await.status, StatusCode::OK);

    // The same role again records nothing.
    let before = app.events().await.len();
    let res = b
        .post_form(
            &format!("/desk/users/{}/role", c.user_id),
            &[("role", "admin")],
        )
        .await;
    assert_eq!(res.location(), Some("/desk/users?done=unchanged"));
    assert_eq!(app.events().await.len(), before);

    // Five failures lock the account; the admin lifts the lock.
    for _ in 0..5 {
        app.browser()
            .try_login("c@example.jp", "wrong password 1")
            .await;
    }
    let page = b.get("/desk/users").await;
    assert!(page.body.contains("ロック中"), "{}", page.body);
    let res = b
        .post_form(&format!("/desk/users/{}/unlock", c.user_id), &[])
        .await;
    assert_eq!(res.location(), Some("/desk/users?done=unlocked"));
    app.browser().login("c@example.jp", PASSWORD).await;

    let res = b
        .post_form(&format!("/desk/users/{}/disable", c.user_id), &[])
        .await;
    assert_eq!(res.location(), Some("/desk/users?done=disabled"));
    assert!(b.get("/desk/users").await.body.contains("無効"));
    let res = b
        .post_form(&format!("/desk/users/{}/enable", c.user_id), &[])
        .await;
    assert_eq!(res.location(), Some("/desk/users?done=enabled"));
    app.browser().login("c@example.jp", PASSWORD).await;

    let stream = format!("staff-{}", c.user_id);
    let kinds: Vec<(String, String)> = app
        .events()
        .await
        .into_iter()
        .filter(|(s, ..)| *s == stream)
        .map(|(_, kind, _, actor)| (kind, actor))
        .collect();
    let admin_actor = format!("staff:{}", me.user_id);
    assert_eq!(
        kinds,
        vec![
            ("StaffUserAdded".to_owned(), "cli".to_owned()),
            ("StaffRoleChanged".to_owned(), admin_actor.clone()),
            ("StaffUserUnlocked".to_owned(), admin_actor.clone()),
            ("StaffUserDisabled".to_owned(), admin_actor.clone()),
            ("StaffUserEnabled".to_owned(), admin_actor.clone()),
        ]
    );
    let stored = app.state.users().find(c.user_id).await.unwrap().unwrap();
    assert_eq!(stored.version, 5, "the row's version is the stream's");
}

#[tokio::test]
async fn the_last_active_admin_cannot_be_demoted_and_nobody_disables_themselves() {
    let app = App::new().await;
    let (mut b, me) = admin(&app).await;
    let res = b
        .post_form(
            &format!("/desk/users/{}/role", me.user_id),
            &[("role", "viewer")],
        )
        .await;
    assert_eq!(res.status, StatusCode::CONFLICT);
    assert!(res.body.contains("有効な管理者が1人もいなくなるため"));
    assert!(
        res.body
            .contains(&format!("aria-describedby=\"f-role-{}-error\"", me.user_id))
    );
    assert!(
        res.body
            .contains(&format!("href=\"#f-role-{}\"", me.user_id))
    );
    let res = b
        .post_form(&format!("/desk/users/{}/disable", me.user_id), &[])
        .await;
    assert_eq!(res.status, StatusCode::CONFLICT);
    assert!(res.body.contains("自分自身を無効にすることはできません"));
    assert_eq!(
        app.state
            .users()
            .find(me.user_id)
            .await
            .unwrap()
            .unwrap()
            .role,
        Role::Admin
    );

    // With a second admin, stepping down is allowed.
    let other = app.user("second@example.jp", Role::Admin).await;
    let res = b
        .post_form(
            &format!("/desk/users/{}/role", me.user_id),
            &[("role", "viewer")],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    // Now a viewer: the users page is closed to me.
    assert_eq!(b.get("/desk/users").await.status, StatusCode::FORBIDDEN);
    // And the last admin left cannot be disabled by anyone.
    let err = app
        .state
        .users()
        .disable(
            other.user_id,
            &kujira_eventlog::Metadata::new("cli", uuid::Uuid::now_v7()),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, kujira_desk::users::UsersError::LastAdmin));
}

#[tokio::test]
async fn unknown_or_malformed_ids_and_bad_roles_answer_in_japanese() {
    let app = App::new().await;
    let (mut b, me) = admin(&app).await;
    for path in [
        format!("/desk/users/{}/disable", uuid::Uuid::now_v7()),
        "/desk/users/not-a-uuid/role".to_owned(),
    ] {
        let res = b.post_form(&path, &[("role", "admin")]).await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{path}");
        assert!(res.body.contains("見つかりませんでした"), "{path}");
    }
    let res = b
        .post_form(
            &format!("/desk/users/{}/role", me.user_id),
            &[("role", "superuser")],
        )
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(res.body.contains("役割を選んでください"));
    let res = b
        .send(
            axum::http::Request::post("/desk/users")
                .header("content-type", "application/json")
                .body(axum::body::Body::from("{}"))
                .unwrap(),
        )
        .await;
    assert_eq!(res.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(res.body.contains("lang=\"ja\""));
}

#[tokio::test]
async fn markup_in_names_is_shown_as_text() {
    let app = App::new().await;
    let (mut b, _) = admin(&app).await;
    let res = b
        .post_form(
            "/desk/users",
            &add_pairs(
                "x@example.jp",
                "<script>alert(1)</script>",
                "viewer",
                PASSWORD,
            ),
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let page = b.get("/desk/users").await;
    assert!(!page.body.contains("<script>alert(1)</script>"));
    assert!(page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
}

#[tokio::test]
async fn an_admin_resets_a_password_and_the_accounts_sessions_end() {
    let app = App::new().await;
    let (mut b, me) = admin(&app).await;
    let c = app.user("c@example.jp", Role::Concierge).await;
    let mut cb = app.browser();
    cb.login("c@example.jp", PASSWORD).await;
    let path = format!("/desk/users/{}/password", c.user_id);

    let res = b.post_form(&path, &[("password", "too short")]).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        res.body
            .contains("パスワードは12文字以上にしてください（入力は9文字です）")
    );
    assert!(res.body.contains(&format!(
        "aria-describedby=\"f-password-{}-error\"",
        c.user_id
    )));
    assert!(
        res.body.contains("<details open"),
        "the row's form is shown open"
    );
    assert!(!res.body.contains("too short"));

    app.clock.advance(chrono::Duration::seconds(1));
    let res = b
        .post_form(&path, &[("password", "new password for c")])
        .await;
    assert_eq!(res.location(), Some("/desk/users?done=password"));
    // The concierge's session ended; the old password no longer works.
    let res = cb.get("/desk").await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert!(cb.session_cookie().is_none());
    let old = app.browser().try_login("c@example.jp", PASSWORD).await;
    assert_eq!(old.status, StatusCode::UNPROCESSABLE_ENTITY);
    app.browser()
        .login("c@example.jp", "new password for c")
        .await;
    // The admin's own session is untouched.
    assert_eq!(b.get("/desk/users").await.status, StatusCode::OK);

    let events = app.events().await;
    let (_, kind, data, actor) = events.last().unwrap();
    assert_eq!(kind, "StaffPasswordSet");
    assert_eq!(actor, &format!("staff:{}", me.user_id));
    assert_eq!(
        data.as_object().unwrap().len(),
        2,
        "user_id and at only: {data}"
    );
    let all = serde_json::to_string(&events).unwrap();
    assert!(!all.contains("argon2") && !all.contains("new password"));
}
