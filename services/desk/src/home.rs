//! `/desk`: the pipeline board (see [`crate::cases::board`]). Also the desk's 404 for
//! unknown `/desk/*` paths (after the login check, so that an anonymous visitor
//! learns nothing about which paths exist).

use axum::extract::State;
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
