//! Trial-migration tours (おためし移住体験ツアー): the public catalogue, sign-up with
//! capacity and a waiting list, the personal cancellation link, the JSON API, the
//! mails every step causes, and the staff CLI (`kujira tours ...`).
//!
//! Every decision is taken by the tour's own stream (`kujira_domain::tour`), with
//! optimistic concurrency ([`service::Tours::execute`]); the catalogue table is only
//! a read model for listing ([`catalogue::TourCatalogueProjection`]).
//! The order-made tour request (`/tours/request`) belongs to services/intake.

pub mod api;
pub mod catalogue;
pub mod cli;
pub mod mail;
mod pages;
pub mod service;
pub mod token;

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use axum::routing::{get, post};
use kujira_config::{Clock, Config};
use kujira_store::Store;
use kujira_web::{Fingerprints, Kit};

pub use catalogue::{TourCatalogueProjection, TourSummary};
pub use cli::{ToursCommand, run_cli};
pub use mail::TourMailTemplates;
pub use service::{Actor, CommandError, Executed, Tours};

/// The migrations of this crate's tables (versions 20261124000200–20261124000299).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// Everything the tour handlers and the CLI need. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ToursState {
    tours: Tours,
    kit: Kit,
    /// Keyed hashes of API bodies, to recognise a reused `Idempotency-Key`.
    fingerprints: Fingerprints,
}

impl ToursState {
    /// Builds the state with its own web kit.
    pub fn new(config: Arc<Config>, store: Store, clock: Arc<dyn Clock>) -> Self {
        let kit = Kit::new(&config, clock.clone());
        Self {
            fingerprints: Fingerprints::new(config.secret.expose(), "tours"),
            tours: Tours::new(config, store, clock),
            kit,
        }
    }

    /// Uses `kit` instead of its own, so that the per-IP submission limit is shared
    /// with the other public forms.
    pub fn with_kit(mut self, kit: Kit) -> Self {
        self.kit = kit;
        self
    }

    pub fn tours(&self) -> &Tours {
        &self.tours
    }

    pub fn kit(&self) -> &Kit {
        &self.kit
    }

    pub fn fingerprints(&self) -> &Fingerprints {
        &self.fingerprints
    }

    pub fn config(&self) -> &Config {
        self.tours.config()
    }

    pub fn store(&self) -> &Store {
        self.tours.store()
    }
}

impl FromRef<ToursState> for Kit {
    fn from_ref(s: &ToursState) -> Kit {
        s.kit.clone()
    }
}

/// The public tour routes. `/tours/request` is not here: services/intake serves it,
/// and axum prefers that static route to `/tours/{id}` once the routers are merged.
pub fn router(state: ToursState) -> Router {
    let routes = Router::new()
        .route("/tours", get(pages::list))
        .route("/tours/{id}", get(pages::show))
        .route("/tours/{id}/confirm", post(pages::confirm))
        .route("/tours/{id}/submit", post(pages::submit))
        .route("/tours/{id}/complete", get(pages::complete))
        .route("/signups/{token}", get(pages::sign_up))
        .route("/signups/{token}/cancel", post(pages::cancel))
        .route(
            "/signups/{token}/feedback",
            get(pages::feedback_form).post(pages::feedback_submit),
        )
        .route("/api/v1/tours", get(api::list_tours))
        .route("/api/v1/tours/{id}/signups", post(api::sign_up));
    kujira_web::with_body_limit(routes).with_state(state)
}

/// The OpenAPI description of the tour API, to merge into `/api/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    use utoipa::OpenApi;
    api::ApiDoc::openapi()
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    use super::*;

    /// `/tours/request` (services/intake) and its steps must win over `/tours/{id}`
    /// once the lead merges the routers.
    #[tokio::test]
    async fn the_order_made_request_routes_coexist_with_tour_ids() {
        let dir = tempfile::tempdir().unwrap();
        let config = Arc::new(Config::for_tests(dir.path()));
        // Never connected: the requests below must not reach the tour handlers.
        let pool = sqlx::PgPool::connect_lazy("postgres://nobody@127.0.0.1:1/none").unwrap();
        let store = Store::new(
            kujira_eventlog::EventStore::new(pool.clone()),
            kujira_store::Vault::unchecked(pool, &[0; 32]),
        );
        let state = ToursState::new(config, store, Arc::new(kujira_config::SystemClock));
        let intake = Router::new()
            .route("/tours/request", get(|| async { "intake" }))
            .route("/tours/request/confirm", post(|| async { "intake" }))
            .route("/tours/request/submit", post(|| async { "intake" }))
            .route("/tours/request/complete", get(|| async { "intake" }));
        let app = router(state).merge(intake);
        for (method, uri) in [
            ("GET", "/tours/request"),
            ("POST", "/tours/request/confirm"),
            ("POST", "/tours/request/submit"),
            ("GET", "/tours/request/complete"),
        ] {
            let req = Request::builder()
                .method(method)
                .uri(uri)
                .body(Body::empty())
                .unwrap();
            let res = app.clone().oneshot(req).await.unwrap();
            assert_eq!(res.status(), StatusCode::OK, "{method} {uri}");
            let body = http_body_util::BodyExt::collect(res.into_body())
                .await
                .unwrap()
                .to_bytes();
            assert_eq!(&body[..], b"intake", "{method} {uri}");
        }
    }
}
