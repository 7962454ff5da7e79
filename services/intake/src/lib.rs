//! Public inquiry intake (移住相談フォーム) and the order-made tour request form.
//!
//! Both open a consultation case (`consultation-<uuid>`) with one append that also
//! requests the concierge notice and the applicant's auto-reply, so a case never
//! exists without its mails. The HTML flow is 入力 → 確認 → 完了 with CSRF and a
//! one-time form token; the JSON API honours `Idempotency-Key`.
//!
//! Routes: `GET /inquiry`, `POST /inquiry/confirm`, `POST /inquiry/submit`,
//! `GET /inquiry/complete`, `POST /api/v1/inquiries`, and `GET /tours/request`,
//! `POST /tours/request/confirm`, `POST /tours/request/submit`,
//! `GET /tours/request/complete`. [`openapi`] describes the API; the binary serves
//! it at `/api/openapi.json` merged with the other services' documents.

mod api;
mod cases;
pub mod forms;
pub mod mail;
mod pages;

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use axum::routing::{get, post};
use kujira_config::{Clock, Config};
use kujira_domain::inquiry::DateRules;
use kujira_store::Store;
use kujira_web::{Fingerprints, Kit, Signer};

pub use api::{IDEMPOTENCY_KEY, openapi};
pub use cases::{OpenError, Opened, Submission, derived_case_id, find as find_case};

/// Opens a consultation case through intake's one path (person lookup by e-mail,
/// 連番, the one command path); see [`Submission`] for who opens it and how.
pub use cases::open as open_case;

/// The migrations of intake's own objects (versions 20261124000100–20261124000199 and
/// 20261203000100–20261203000199). The 連番 sequences of each year are created by
/// intake itself, on the year's first submission.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// Everything intake's handlers need. Cheap to clone.
#[derive(Clone, Debug)]
pub struct IntakeState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: Arc<Config>,
    store: Store,
    kit: Kit,
    inquiry_form: forms::FormDef,
    tour_request_form: forms::FormDef,
    /// Signs the cookie that carries the reference number to the complete page.
    done_signer: Signer,
    /// Keyed hashes of API bodies, to recognise a reused `Idempotency-Key`.
    fingerprints: Fingerprints,
    references: cases::References,
}

impl IntakeState {
    pub fn new(config: Arc<Config>, store: Store, clock: Arc<dyn Clock>) -> Self {
        let kit = Kit::new(&config, clock);
        Self::with_kit(config, store, kit)
    }

    /// Shares a [`Kit`] with other services, so that they share one per-IP count.
    pub fn with_kit(config: Arc<Config>, store: Store, kit: Kit) -> Self {
        let secret = config.secret.expose();
        Self {
            inner: Arc::new(Inner {
                inquiry_form: forms::inquiry_form(config.inquiry_lead_days),
                tour_request_form: forms::tour_request_form(config.inquiry_lead_days),
                done_signer: Signer::new(secret, "intake-complete"),
                fingerprints: Fingerprints::new(secret, "intake"),
                references: cases::References::default(),
                config,
                store,
                kit,
            }),
        }
    }

    pub fn kit(&self) -> &Kit {
        &self.inner.kit
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn config(&self) -> &Arc<Config> {
        &self.inner.config
    }

    /// The inquiry form's definition (fields, labels, help), for the desk's entry form.
    pub fn inquiry_form(&self) -> &forms::FormDef {
        &self.inner.inquiry_form
    }

    /// The date rules of the forms now (the lead time, the city's time zone).
    pub fn date_rules(&self) -> DateRules {
        DateRules {
            now: self.kit().now(),
            timezone: self.config().timezone,
            lead_days: self.config().inquiry_lead_days,
        }
    }
}

impl FromRef<IntakeState> for Kit {
    fn from_ref(s: &IntakeState) -> Kit {
        s.inner.kit.clone()
    }
}

/// Intake's routes, with the 64 KiB body limit applied.
pub fn router(state: IntakeState) -> Router {
    let routes = Router::new()
        .route("/inquiry", get(pages::inquiry_form))
        .route("/inquiry/confirm", post(pages::inquiry_confirm))
        .route("/inquiry/submit", post(pages::inquiry_submit))
        .route("/inquiry/complete", get(pages::inquiry_complete))
        .route("/tours/request", get(pages::tour_request_form))
        .route("/tours/request/confirm", post(pages::tour_request_confirm))
        .route("/tours/request/submit", post(pages::tour_request_submit))
        .route("/tours/request/complete", get(pages::tour_request_complete))
        .route("/api/v1/inquiries", post(api::create_inquiry));
    kujira_web::with_body_limit(routes).with_state(state)
}
