//! `/desk`: SKELETON. The pipeline board replaces this handler (issue 8, "The
//! pipeline"); until then it only greets the staff member and links their sections.
//! Also the desk's 404 for unknown `/desk/*` paths (after the login check, so that
//! an anonymous visitor learns nothing about which paths exist).

use axum::response::Html;
use maud::html;

use crate::auth::{Right, Staff};
use crate::error::AppError;
use crate::layout::{self, Section};

pub async fn show(staff: Staff) -> Result<Html<String>, AppError> {
    staff.require(Right::ViewAggregates)?;
    let body = html! {
        h1 { "案件" }
        p { (staff.display_name) " さん、ようこそ。" }
        p { "案件の一覧（パイプライン）は準備中です。" }
        @if staff.can(Right::ManageUsers) {
            p { a href="/desk/users" { "ユーザーの管理へ" } }
        }
    };
    Ok(Html(
        layout::page(&staff, Section::Cases, "案件", body).into_string(),
    ))
}

pub async fn not_found(_staff: Staff) -> AppError {
    AppError::NotFound
}
