//! Tours in the desk (`/desk/tours`): the list, and for admins (the `ManageTours`
//! right) creating, editing, publishing and cancelling tours, through the tours'
//! own command side ([`kujira_tours::Tours`]), with the same rules as the CLI.
//! Concierges see rosters and check parties in on the day; viewers see counts, and
//! rosters whose personal columns read 非表示.
//!
//! Every form carries the CSRF token and, where staff act on what they saw, the
//! tour's stream version: when someone else changed the tour meanwhile, the action
//! is refused and says so (never overwriting silently).

pub mod form;
mod pages;
pub mod roster;
mod roster_pages;

use axum::Router;
use axum::routing::{get, post};

pub use roster::RosterProjection;
pub(crate) use roster_pages::{csv_response, text_cell};

use crate::DeskState;

/// The routes of this module (merged into [`crate::router`]).
pub fn routes() -> Router<DeskState> {
    Router::new()
        .route("/desk/tours", get(pages::list).post(pages::create))
        .route("/desk/tours/new", get(pages::new_form))
        .route("/desk/tours/{id}", get(pages::show))
        .route(
            "/desk/tours/{id}/edit",
            get(pages::edit_form).post(pages::edit),
        )
        .route("/desk/tours/{id}/publish", post(pages::publish))
        .route(
            "/desk/tours/{id}/cancel",
            get(pages::cancel_form).post(pages::cancel),
        )
        .route("/desk/tours/{id}/roster", get(roster_pages::page))
        .route("/desk/tours/{id}/roster.csv", get(roster_pages::csv))
        .route(
            "/desk/tours/{id}/attendance",
            post(roster_pages::attendance),
        )
}

/// A tour id from the path; anything else is a Japanese 404.
pub(crate) fn tour_id(raw: &str) -> Result<uuid::Uuid, crate::AppError> {
    uuid::Uuid::parse_str(raw).map_err(|_| crate::AppError::NotFound)
}

pub(crate) fn status_ja(status: &str) -> &'static str {
    match status {
        "draft" => "下書き（非公開）",
        "published" => "公開中",
        "cancelled" => "中止",
        _ => "不明",
    }
}

pub(crate) fn kind_ja(kind: &str) -> &'static str {
    kujira_domain::tour::TourKind::parse(kind).map_or("不明", |k| k.label_ja())
}
