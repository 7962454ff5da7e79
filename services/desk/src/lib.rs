//! The staff desk (`/desk/*`): staff accounts, sessions, roles, and the desk's pages.
//!
//! This crate is the skeleton the desk features (pipeline, case pages, tours, KPI)
//! are built on. What every desk handler uses:
//!
//! * [`auth::Staff`]: the logged-in, active staff member (an extractor). Anonymous
//!   requests are redirected (303) to `/desk/login?next=<path>`. Use
//!   [`auth::Staff::require`] or the [`auth::Require`] extractor for a right; a role
//!   that lacks it gets a Japanese 403 page. [`auth::Staff::actor`] is the event
//!   metadata's actor (`staff:<user id>`).
//! * [`form::CsrfForm`]: the body of every staff POST, CSRF-checked (403 otherwise).
//!   Every form puts [`auth::Staff::csrf_field`] (or [`form::csrf_field`]) inside.
//! * [`layout::page`]: the desk's frame (nav by role, logout button).
//! * [`error::AppError`]: every error as a Japanese page; internals go to the log.
//!
//! Adding a page: write the handler in a new module, add its route in [`router`]
//! (the routes there are all behind the session layer), and render with
//! [`layout::page`]. Adding a read model: put its migration in `migrations/`
//! (versions 20261201004000–20261201004999) and its projection in a module of this
//! crate; `services/kujira` registers it with the projector.

pub mod audit;
pub mod auth;
pub mod cases;
pub mod error;
pub mod form;
mod home;
pub mod keyset;
pub mod kpi;
pub mod layout;
pub mod persons;
pub mod privacy;
pub mod tours;
pub mod users;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::FromRef;
use axum::http::{HeaderValue, header};
use axum::routing::{any, get, post};
use chrono::{DateTime, Utc};
use kujira_config::{CityWords, Clock, Config};
use kujira_store::Store;
use kujira_web::Kit;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tower_sessions::ExpiredDeletion;
use tower_sessions_sqlx_store::PostgresStore;

pub use auth::{Require, Right, Role, Staff};
pub use cases::CasesProjection;
pub use cases::mail::DeskMailTemplates;
pub use error::AppError;
pub use form::CsrfForm;
pub use persons::PersonsProjection;
pub use users::{PasswordInput, Users, UsersCommand, run_cli};

/// The migrations of the desk's tables (versions 20261201004000–20261201004999).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// The projections of the consultation pipeline (`desk.persons`, `desk.cases`),
/// on the personal store (they open the submissions) in the city's time zone (the
/// first-contact due dates count its business days).
pub fn case_projections(
    store: &Store,
    timezone: chrono_tz::Tz,
) -> (PersonsProjection, CasesProjection) {
    (
        PersonsProjection::new(store.clone()),
        CasesProjection::new(store.clone(), timezone),
    )
}

/// How long a session lasts without a request.
pub const SESSION_IDLE: Duration = Duration::from_secs(8 * 3600);
/// How often expired sessions are deleted from PostgreSQL.
pub const SESSION_CLEANUP_EVERY: Duration = Duration::from_secs(15 * 60);
/// The name of the session cookie.
pub const SESSION_COOKIE: &str = "kujira_desk";

/// Everything the desk's handlers need. Cheap to clone.
#[derive(Clone, Debug)]
pub struct DeskState(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    config: Arc<Config>,
    words: Arc<CityWords>,
    store: Store,
    kit: Kit,
    users: Users,
    tours: kujira_tours::Tours,
    sessions: PostgresStore,
    login_limiter: auth::limit::LoginLimiter,
    /// Intake's one way of opening a case, for inquiries staff enter on the desk.
    intake: kujira_intake::IntakeState,
}

impl DeskState {
    /// Builds the state. Call [`setup`] once on the database before serving.
    pub fn new(config: Arc<Config>, store: Store, clock: Arc<dyn Clock>) -> Self {
        let kit = Kit::new(&config, clock.clone());
        let intake = kujira_intake::IntakeState::new(config.clone(), store.clone(), clock.clone());
        Self(Arc::new(Inner {
            intake,
            users: Users::new(store.events().clone(), clock.clone()),
            tours: kujira_tours::Tours::new(config.clone(), store.clone(), clock.clone()),
            sessions: session_store(store.pool()),
            login_limiter: auth::limit::LoginLimiter::new(clock),
            words: Arc::new(config.words.clone()),
            config,
            store,
            kit,
        }))
    }

    pub fn config(&self) -> &Arc<Config> {
        &self.0.config
    }

    pub fn words(&self) -> &Arc<CityWords> {
        &self.0.words
    }

    /// The event log behind the vault: appends seal personal parts, reads open them.
    pub fn store(&self) -> &Store {
        &self.0.store
    }

    pub fn pool(&self) -> &PgPool {
        self.0.store.pool()
    }

    pub fn kit(&self) -> &Kit {
        &self.0.kit
    }

    pub fn users(&self) -> &Users {
        &self.0.users
    }

    /// Intake, for opening the cases staff enter (`/desk/cases/new`).
    pub fn intake(&self) -> &kujira_intake::IntakeState {
        &self.0.intake
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.0.kit.now()
    }

    /// The tours' command side (the same rules as the public pages and the CLI).
    pub fn tours(&self) -> &kujira_tours::Tours {
        &self.0.tours
    }

    /// Whether cookies are marked `Secure` (the public URL is https).
    pub fn secure_cookies(&self) -> bool {
        self.0.config.public_url.starts_with("https://")
    }

    pub(crate) fn login_limiter(&self) -> &auth::limit::LoginLimiter {
        &self.0.login_limiter
    }

    pub(crate) fn sessions(&self) -> &PostgresStore {
        &self.0.sessions
    }
}

impl FromRef<DeskState> for Kit {
    fn from_ref(s: &DeskState) -> Kit {
        s.0.kit.clone()
    }
}

fn session_store(pool: &PgPool) -> PostgresStore {
    PostgresStore::new(pool.clone())
}

/// The desk's projections, for `kujira serve` to run: the tour rosters (which
/// keep personal data, opened with `store`'s vault) and the KPI figures (which read
/// none).
pub fn projections(store: &Store, config: &Config) -> Vec<Arc<dyn kujira_projector::Projection>> {
    let (persons, cases) = case_projections(store, config.timezone);
    vec![
        Arc::new(persons),
        Arc::new(cases),
        Arc::new(tours::RosterProjection::new(store.clone())),
        Arc::new(kpi::KpiProjection::new(config.timezone)),
    ]
}

/// Prepares the database for the desk beyond [`MIGRATOR`]: creates the session
/// store's own table (`tower_sessions.session`, made by tower-sessions-sqlx-store's
/// migration). Idempotent; run it after the migrations, before serving.
pub async fn setup(pool: &PgPool) -> Result<(), sqlx::Error> {
    session_store(pool).migrate().await
}

/// Deletes expired sessions now and then every `every`, until `shutdown`.
/// `kujira serve` runs it as a worker (with [`SESSION_CLEANUP_EVERY`]).
pub async fn session_cleanup(
    pool: PgPool,
    every: Duration,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let store = session_store(&pool);
    loop {
        if let Err(e) = store.delete_expired().await {
            // A failed sweep is retried at the next tick; expired sessions are
            // refused at load time anyway, so nothing is exposed meanwhile.
            tracing::warn!(error = %e, "could not delete expired desk sessions");
        }
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            () = tokio::time::sleep(every) => {}
        }
    }
}

/// The desk's routes, all under `/desk`, with sessions, the CSRF cookie and the
/// 64 KiB body limit. Every page answers `Cache-Control: no-store`: desk pages hold
/// personal data, which must not stay in a shared computer's cache after logout.
pub fn router(state: DeskState) -> Router {
    use tower_sessions::cookie::SameSite;
    use tower_sessions::{Expiry, SessionManagerLayer};

    let sessions = SessionManagerLayer::new(state.sessions().clone())
        .with_name(SESSION_COOKIE)
        .with_path("/desk")
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(state.secure_cookies())
        .with_expiry(Expiry::OnInactivity(
            time::Duration::try_from(SESSION_IDLE).unwrap_or(time::Duration::hours(8)),
        ))
        // Saving on every request moves the idle expiry forward as the person works.
        .with_always_save(true);

    let routes = Router::new()
        .route("/desk", get(home::show))
        .route("/desk/cases", get(cases::list::show))
        .route("/desk/cases.csv", get(cases::list::csv))
        .route(
            "/desk/cases/new",
            get(cases::new::form).post(cases::new::submit),
        )
        .route(
            "/desk/cases/reassign",
            get(cases::new::reassign_form).post(cases::new::reassign),
        )
        .route("/desk/cases/{id}", get(cases::page::show))
        .route("/desk/cases/{id}/export.json", get(privacy::export_json))
        .route("/desk/cases/{id}/erase", post(privacy::erase))
        .route("/desk/cases/{id}/{action}", post(cases::actions::act))
        .route("/desk/audit", get(audit::pages::show))
        .route("/desk/audit.csv", get(audit::pages::csv))
        .route("/desk/privacy", get(privacy::show))
        .route(
            "/desk/login",
            get(auth::login::form).post(auth::login::submit),
        )
        .route("/desk/logout", post(auth::login::logout))
        .route(
            "/desk/users",
            get(users::pages::list).post(users::pages::add),
        )
        .route("/desk/users/{id}/role", post(users::pages::set_role))
        .route("/desk/users/{id}/disable", post(users::pages::disable))
        .route("/desk/users/{id}/enable", post(users::pages::enable))
        .route("/desk/users/{id}/unlock", post(users::pages::unlock))
        .route(
            "/desk/users/{id}/password",
            post(users::pages::set_password),
        )
        .merge(tours::routes())
        .merge(kpi::routes())
        .route("/desk/{*rest}", any(home::not_found))
        // After every route: it applies to the routes registered so far.
        .method_not_allowed_fallback(home::method_not_allowed);
    kujira_web::with_body_limit(routes)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            form::csrf_cookie,
        ))
        .layer(sessions)
        .layer(
            tower_http::set_header::SetResponseHeaderLayer::if_not_present(
                header::CACHE_CONTROL,
                HeaderValue::from_static("no-store"),
            ),
        )
        .with_state(state)
}
