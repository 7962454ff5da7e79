//! The KPI dashboard (`/desk/kpi?fy=YYYY`), its CSV (`/desk/kpi.csv?fy=YYYY`), and
//! the targets per fiscal year (`/desk/kpi/targets`, admins).
//!
//! The figures come from the `desk.kpi` projection ([`KpiProjection`]), which reads
//! no personal data, and from the mail outbox's counts; see [`figures`] for what
//! each figure means and [`metrics`] for the stable keys.

pub mod chart;
pub mod figures;
pub mod metrics;
mod pages;
pub mod projection;
pub mod targets;

use axum::Router;
use axum::routing::get;

pub use projection::KpiProjection;

use crate::DeskState;

pub fn routes() -> Router<DeskState> {
    Router::new()
        .route("/desk/kpi", get(pages::dashboard))
        .route("/desk/kpi.csv", get(pages::csv))
        .route(
            "/desk/kpi/targets",
            get(pages::targets_form).post(pages::targets_save),
        )
}
