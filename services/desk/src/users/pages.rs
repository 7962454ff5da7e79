//! `/desk/users`: the admin's page for staff accounts (list, add with an initial
//! password, change the role, disable, enable, lift a lockout). Every change goes
//! through [`crate::Users`], which records it as an event naming the admin.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use kujira_web::fields::{self, Field, InputOpts};
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

use super::{Changed, NewUser, StaffUser, UsersError};
use crate::DeskState;
use crate::auth::password::{MIN_CHARS, Password};
use crate::auth::{Require, Role, Staff, need};
use crate::error::AppError;
use crate::form::{CsrfForm, FormErrors};
use crate::layout::{self, Section, cell_label, datetime_ja};

type Admin = Require<need::ManageUsers>;

#[derive(Debug, Deserialize)]
pub struct Done {
    done: Option<String>,
}

fn done_text(done: &str) -> Option<&'static str> {
    Some(match done {
        "added" => "ユーザーを追加しました。",
        "role" => "役割を変更しました。",
        "disabled" => {
            "ユーザーを無効にしました。このユーザーはログインできなくなり、ログイン中の画面も次の操作で終了します。"
        }
        "enabled" => "ユーザーを有効にしました。",
        "unlocked" => "ロックを解除しました。",
        "password" => {
            "パスワードを再設定しました。このユーザーのログイン中の画面は終了しました。新しいパスワードは本人に安全な方法で伝えてください。"
        }
        "unchanged" => "すでにその状態のため、変更はありませんでした。",
        _ => return None,
    })
}

/// What the add form held, to show it again after an error (never the password).
#[derive(Debug, Default)]
struct AddValues {
    email: String,
    display_name: String,
    role: String,
}

/// An error of one row's action, shown in that row.
#[derive(Debug)]
struct RowError {
    user_id: Uuid,
    /// `role` (the role form) or `status` (the enable/disable buttons).
    field: &'static str,
    message: String,
}

struct View<'a> {
    staff: &'a Staff,
    users: &'a [StaffUser],
    notice: Option<&'static str>,
    add: AddValues,
    add_errors: FormErrors,
    row_error: Option<RowError>,
}

fn label_of(field: &str) -> String {
    match field {
        "email" => "メールアドレス",
        "display_name" => "表示名",
        "role" => "役割",
        "password" => "初期パスワード",
        _ => "入力",
    }
    .to_owned()
}

fn render(state: &DeskState, status: StatusCode, v: View) -> Response {
    let tz = state.config().timezone;
    let now = state.now();
    let role_options: Vec<(&str, &str)> = Role::ALL
        .iter()
        .map(|r| (r.as_str(), r.label_ja()))
        .collect();
    let password_help = format!(
        "{MIN_CHARS}文字以上。本人に安全な方法で伝えてください（メールに書かないでください）。"
    );
    // Each row error names whose account and what: 「柏崎 花子の役割：…」.
    let row_summary: Vec<(String, String)> = v
        .row_error
        .iter()
        .map(|e| {
            let whose = v
                .users
                .iter()
                .find(|u| u.user_id == e.user_id)
                .map_or("", |u| u.display_name.as_str());
            let what = match e.field {
                "role" => "役割",
                "password" => "パスワード再設定",
                _ => "状態",
            };
            (
                format!("{}-{}", e.field, e.user_id),
                format!("{whose}の{what}：{}", e.message),
            )
        })
        .collect();
    let body = html! {
        h1 { "ユーザー" }
        @if let Some(text) = v.notice { (layout::notice(text)) }
        (v.add_errors.summary(label_of))
        (fields::error_summary(&row_summary))
        (layout::table_region("ユーザーの一覧", html! {
            table.stack role="table" {
                caption.vh { "ユーザーの一覧（" (v.users.len()) "人）" }
                thead role="rowgroup" { tr role="row" {
                    @for h in ["表示名", "メールアドレス", "役割", "状態", "最終ログイン", "操作"] {
                        th scope="col" role="columnheader" { (h) }
                    }
                } }
                tbody role="rowgroup" {
                    @for u in v.users {
                        (row(v.staff, u, now, tz, v.row_error.as_ref().filter(|e| e.user_id == u.user_id), &role_options))
                    }
                }
            }
        }))
        section.panel aria-labelledby="add-heading" {
            h2 id="add-heading" { "ユーザーを追加" }
            form method="post" action="/desk/users" novalidate {
                (v.staff.csrf_field())
                (fields::input(
                    &Field::new("email", "メールアドレス", true).error(v.add_errors.get("email")),
                    "email", &v.add.email,
                    InputOpts { autocomplete: Some("off"), inputmode: Some("email"), maxlength: Some(254), ..InputOpts::default() },
                ))
                (fields::input(
                    &Field::new("display_name", "表示名", true)
                        .help("デスクの画面や案件の担当者欄に表示される名前です（例：柏崎 花子）。")
                        .error(v.add_errors.get("display_name")),
                    "text", &v.add.display_name,
                    InputOpts { autocomplete: Some("off"), maxlength: Some(50), ..InputOpts::default() },
                ))
                (fields::select(
                    &Field::new("role", "役割", true)
                        .help("管理者：ユーザー・ツアー・目標値の管理と全操作。コンシェルジュ：案件の全情報と全操作。閲覧者：集計と匿名化された一覧のみ。")
                        .error(v.add_errors.get("role")),
                    &role_options, &v.add.role,
                ))
                (fields::input(
                    &Field::new("password", "初期パスワード", true)
                        .help(&password_help)
                        .error(v.add_errors.get("password")),
                    "password", "",
                    InputOpts { autocomplete: Some("new-password"), maxlength: Some(256), ..InputOpts::default() },
                ))
                div.actions { button.button type="submit" { "追加する" } }
            }
        }
    };
    let page = layout::page(v.staff, Section::Users, "ユーザー", body);
    (status, Html(page.into_string())).into_response()
}

fn row(
    staff: &Staff,
    u: &StaffUser,
    now: chrono::DateTime<chrono::Utc>,
    tz: chrono_tz::Tz,
    error: Option<&RowError>,
    role_options: &[(&str, &str)],
) -> Markup {
    let id = u.user_id;
    let role_error = error.filter(|e| e.field == "role");
    let status_error = error.filter(|e| e.field == "status");
    let password_error = error.filter(|e| e.field == "password");
    let password_id = format!("f-password-{id}");
    let password_error_id = format!("f-password-{id}-error");
    // `f-<field>-<id>`: the error summary links to these.
    let role_select_id = format!("f-role-{id}");
    let role_error_id = format!("f-role-{id}-error");
    let status_id = format!("f-status-{id}");
    let status_error_id = format!("f-status-{id}-error");
    let me = u.user_id == staff.id;
    html! {
        tr role="row" {
            th scope="row" role="rowheader" { (u.display_name) @if me { "（あなた）" } }
            td role="cell" { (cell_label("メール")) (u.email) }
            td role="cell" {
                (cell_label("役割"))
                form.inline-form method="post" action=(format!("/desk/users/{id}/role")) {
                    (staff.csrf_field())
                    label.vh for=(role_select_id) { (u.display_name) "の役割" }
                    select id=(role_select_id) name="role"
                        aria-invalid=[role_error.map(|_| "true")]
                        aria-describedby=[role_error.map(|_| role_error_id.clone())] {
                        @for (value, label) in role_options {
                            option value=(value) selected[*value == u.role.as_str()] { (label) }
                        }
                    }
                    button.button.secondary.small type="submit" {
                        "変更" span.vh { "（" (u.display_name) "の役割）" }
                    }
                    @if let Some(e) = role_error {
                        p.error-text id=(role_error_id) { "エラー：" (e.message) }
                    }
                }
            }
            td role="cell" {
                (cell_label("状態"))
                @if u.disabled {
                    span.status-off { "無効" }
                } @else if u.locked(now) {
                    span.status-locked { "ロック中（" (datetime_ja(u.locked_until, tz)) "まで）" }
                } @else {
                    "有効"
                }
            }
            td role="cell" { (cell_label("最終ログイン")) (datetime_ja(u.last_login_at, tz)) }
            td role="cell" {
                div.inline-form {
                    @if u.disabled {
                        (action_button(staff, id, "enable", "有効にする", &u.display_name, Some(&status_id), status_error.map(|_| status_error_id.as_str())))
                    } @else if !me {
                        (action_button(staff, id, "disable", "無効にする", &u.display_name, Some(&status_id), status_error.map(|_| status_error_id.as_str())))
                    }
                    @if u.locked(now) || u.failed_logins > 0 {
                        (action_button(staff, id, "unlock", "ロック解除", &u.display_name, None, None))
                    }
                    @if let Some(e) = status_error {
                        p.error-text id=(status_error_id) { "エラー：" (e.message) }
                    }
                }
                details open[password_error.is_some()] {
                    summary { "パスワード再設定" span.vh { "（" (u.display_name) "）" } }
                    form.inline-form method="post" action=(format!("/desk/users/{id}/password")) {
                        (staff.csrf_field())
                        label for=(password_id) { "新しいパスワード（" (MIN_CHARS) "文字以上）" }
                        input type="password" id=(password_id) name="password" autocomplete="new-password"
                            maxlength="256"
                            aria-invalid=[password_error.map(|_| "true")]
                            aria-describedby=[password_error.map(|_| password_error_id.clone())];
                        @if let Some(e) = password_error {
                            p.error-text id=(password_error_id) { "エラー：" (e.message) }
                        }
                        button.button.secondary.small type="submit" { "再設定する" }
                    }
                }
            }
        }
    }
}

fn action_button(
    staff: &Staff,
    id: Uuid,
    action: &str,
    label: &str,
    name: &str,
    button_id: Option<&str>,
    described_by: Option<&str>,
) -> Markup {
    html! {
        form method="post" action=(format!("/desk/users/{id}/{action}")) {
            (staff.csrf_field())
            button.button.secondary.small type="submit" id=[button_id] aria-describedby=[described_by] {
                (label) span.vh { "（" (name) "）" }
            }
        }
    }
}

pub async fn list(
    State(state): State<DeskState>,
    Require(staff, _): Admin,
    Query(q): Query<Done>,
) -> Result<Response, AppError> {
    let users = state.users().list().await?;
    Ok(render(
        &state,
        StatusCode::OK,
        View {
            staff: &staff,
            users: &users,
            notice: q.done.as_deref().and_then(done_text),
            add: AddValues::default(),
            add_errors: FormErrors::new(),
            row_error: None,
        },
    ))
}

pub async fn add(
    State(state): State<DeskState>,
    Require(staff, _): Admin,
    CsrfForm(form): CsrfForm,
) -> Result<Response, AppError> {
    let values = AddValues {
        email: form.get("email").to_owned(),
        display_name: form.get("display_name").to_owned(),
        role: form.get("role").to_owned(),
    };
    let mut errors = FormErrors::new();
    let parsed = NewUser::parse(
        &values.email,
        &values.display_name,
        &values.role,
        form.get("password"),
    );
    let status = match parsed {
        Ok(new) => match state.users().add(new, &staff.metadata()).await {
            Ok(_) => return Ok(Redirect::to("/desk/users?done=added").into_response()),
            Err(UsersError::DuplicateEmail) => {
                errors.add(
                    "email",
                    UsersError::DuplicateEmail.message_ja().unwrap_or_default(),
                );
                StatusCode::CONFLICT
            }
            Err(e) => return Err(users_error(e)),
        },
        Err(list) => {
            // Say at once that the address is taken, not only after the rest is fixed.
            if !list.iter().any(|e| e.field() == "email")
                && state.users().find_by_email(&values.email).await?.is_some()
            {
                errors.add(
                    "email",
                    UsersError::DuplicateEmail.message_ja().unwrap_or_default(),
                );
            }
            for e in list {
                errors.add(e.field(), e.message_ja());
            }
            StatusCode::UNPROCESSABLE_ENTITY
        }
    };
    let users = state.users().list().await?;
    Ok(render(
        &state,
        status,
        View {
            staff: &staff,
            users: &users,
            notice: None,
            add: values,
            add_errors: errors,
            row_error: None,
        },
    ))
}

/// A user id from the path; anything else is an unknown page.
fn user_id(raw: &str) -> Result<Uuid, AppError> {
    Uuid::parse_str(raw).map_err(|_| AppError::NotFound)
}

fn users_error(e: UsersError) -> AppError {
    match e {
        UsersError::NotFound => AppError::NotFound,
        UsersError::Event(e) => e.into(),
        other => AppError::Internal(other.into()),
    }
}

/// After a row action: back to the list, or the list again with the row's error.
async fn after_row_action(
    state: &DeskState,
    staff: &Staff,
    id: Uuid,
    field: &'static str,
    result: Result<Changed, UsersError>,
    done: &str,
) -> Result<Response, AppError> {
    let (status, message) = match result {
        Ok(Changed::Yes) => {
            return Ok(Redirect::to(&format!("/desk/users?done={done}")).into_response());
        }
        Ok(Changed::AlreadySo) => {
            return Ok(Redirect::to("/desk/users?done=unchanged").into_response());
        }
        Err(UsersError::LastAdmin) => (
            StatusCode::CONFLICT,
            UsersError::LastAdmin
                .message_ja()
                .unwrap_or_default()
                .to_owned(),
        ),
        Err(e) => return Err(users_error(e)),
    };
    row_error_page(state, staff, id, field, status, message).await
}

async fn row_error_page(
    state: &DeskState,
    staff: &Staff,
    id: Uuid,
    field: &'static str,
    status: StatusCode,
    message: String,
) -> Result<Response, AppError> {
    let users = state.users().list().await?;
    Ok(render(
        state,
        status,
        View {
            staff,
            users: &users,
            notice: None,
            add: AddValues::default(),
            add_errors: FormErrors::new(),
            row_error: Some(RowError {
                user_id: id,
                field,
                message,
            }),
        },
    ))
}

/// The account behind a path id, or a 404 page.
async fn existing(state: &DeskState, raw: &str) -> Result<Uuid, AppError> {
    let id = user_id(raw)?;
    state.users().find(id).await?.ok_or(AppError::NotFound)?;
    Ok(id)
}

pub async fn set_role(
    State(state): State<DeskState>,
    Require(staff, _): Admin,
    Path(raw): Path<String>,
    CsrfForm(form): CsrfForm,
) -> Result<Response, AppError> {
    let id = existing(&state, &raw).await?;
    let Some(role) = Role::parse(form.get("role")) else {
        return row_error_page(
            &state,
            &staff,
            id,
            "role",
            StatusCode::UNPROCESSABLE_ENTITY,
            "役割を選んでください。".into(),
        )
        .await;
    };
    let result = state.users().set_role(id, role, &staff.metadata()).await;
    after_row_action(&state, &staff, id, "role", result, "role").await
}

pub async fn disable(
    State(state): State<DeskState>,
    Require(staff, _): Admin,
    Path(raw): Path<String>,
    CsrfForm(_): CsrfForm,
) -> Result<Response, AppError> {
    let id = existing(&state, &raw).await?;
    if id == staff.id {
        return row_error_page(
            &state,
            &staff,
            id,
            "status",
            StatusCode::CONFLICT,
            "自分自身を無効にすることはできません。別の管理者に依頼してください。".into(),
        )
        .await;
    }
    let result = state.users().disable(id, &staff.metadata()).await;
    after_row_action(&state, &staff, id, "status", result, "disabled").await
}

pub async fn enable(
    State(state): State<DeskState>,
    Require(staff, _): Admin,
    Path(raw): Path<String>,
    CsrfForm(_): CsrfForm,
) -> Result<Response, AppError> {
    let id = existing(&state, &raw).await?;
    let result = state.users().enable(id, &staff.metadata()).await;
    after_row_action(&state, &staff, id, "status", result, "enabled").await
}

pub async fn set_password(
    State(state): State<DeskState>,
    Require(staff, _): Admin,
    Path(raw): Path<String>,
    CsrfForm(form): CsrfForm,
) -> Result<Response, AppError> {
    let id = existing(&state, &raw).await?;
    let password = match Password::new(form.get("password")) {
        Ok(p) => p,
        Err(e) => {
            return row_error_page(
                &state,
                &staff,
                id,
                "password",
                StatusCode::UNPROCESSABLE_ENTITY,
                e.message_ja(),
            )
            .await;
        }
    };
    let result = state
        .users()
        .set_password(id, password, &staff.metadata())
        .await;
    after_row_action(&state, &staff, id, "password", result, "password").await
}

pub async fn unlock(
    State(state): State<DeskState>,
    Require(staff, _): Admin,
    Path(raw): Path<String>,
    CsrfForm(_): CsrfForm,
) -> Result<Response, AppError> {
    let id = existing(&state, &raw).await?;
    let result = state.users().unlock(id, &staff.metadata()).await;
    after_row_action(&state, &staff, id, "status", result, "unlocked").await
}
