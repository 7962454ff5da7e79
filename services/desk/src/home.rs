//! `/desk`: the pipeline board (see [`crate::cases::board`]). Also the desk's 404 for
//! unknown `/desk/*` paths and its 405 for a method a route does not take (both
//! after the login check, so that an anonymous visitor learns nothing about which
//! paths exist).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Html;

use crate::DeskState;
use crate::auth::Staff;
use crate::error::AppError;

pub async fn show(state: State<DeskState>, staff: Staff) -> Result<Html<String>, AppError> {
    crate::cases::board::show(state, staff).await
}

pub async fn not_found(_staff: Staff) -> AppError {
    AppError::NotFound
}

/// An action's address opened with GET (a bookmark, a link copied from the address
/// bar): the desk's own page, not the public site's (axum adds `Allow`).
pub async fn method_not_allowed(_staff: Staff) -> AppError {
    AppError::status(
        StatusCode::METHOD_NOT_ALLOWED,
        "このページは開けません",
        "このアドレスは、画面のボタンから行う操作にだけ使われます。メニューから目的の画面を開き直してください。",
    )
}
