use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::{HeaderValue, Method, Uri, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use kujira_config::{Clock, Config, SystemClock};
use kujira_eventlog::EventStore;
use kujira_projector::Projector;
use kujira_store::Store;
use tokio_util::sync::CancellationToken;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::db::Database;

/// How long in-flight requests and workers get to finish after SIGINT/SIGTERM.
const GRACE: Duration = Duration::from_secs(20);

pub fn tours_state(config: &Config, store: Store) -> kujira_tours::ToursState {
    kujira_tours::ToursState::new(Arc::new(config.clone()), store, Arc::new(SystemClock))
}

pub fn desk_state(config: &Config, store: Store) -> kujira_desk::DeskState {
    kujira_desk::DeskState::new(Arc::new(config.clone()), store, Arc::new(SystemClock))
}

/// Every projection `serve` runs. Projections that keep personal data take the
/// personal store (they open events through its vault).
pub fn projector(config: &Config, store: &Store) -> Projector {
    let base = Projector::new(store.events().clone())
        .with(kujira_privacy::PersonIndexProjection)
        .with(kujira_privacy::ErasureProjection::new(
            store.clone(),
            Some(config.outbox_dir()),
        ))
        .with(kujira_scheduler::MailOutboxProjection::new())
        .with(kujira_tours::TourCatalogueProjection::new())
        .with(kujira_scheduler::RulesProjection::new());
    kujira_desk::projections(store, config)
        .into_iter()
        .fold(base, Projector::with_shared)
}

/// The concierges, as the desk keeps them (`staff_users`): the scheduler reads them
/// through this, so that it does not depend on the desk.
#[derive(Debug, Clone)]
pub struct StaffUsers {
    pool: sqlx::PgPool,
}

impl StaffUsers {
    pub fn new(pool: sqlx::PgPool) -> Self {
        Self { pool }
    }
}

#[async_trait::async_trait]
impl kujira_scheduler::StaffDirectory for StaffUsers {
    async fn concierges(&self) -> anyhow::Result<Vec<kujira_scheduler::Concierge>> {
        use sqlx::Row;
        let rows = sqlx::query(
            "SELECT user_id, email, display_name FROM staff_users \
             WHERE role = 'concierge' AND NOT disabled ORDER BY display_name, user_id",
        )
        .fetch_all(&self.pool)
        .await
        .context("cannot read the concierges from staff_users")?;
        rows.iter()
            .map(|r| {
                Ok(kujira_scheduler::Concierge {
                    user_id: r.try_get("user_id")?,
                    email: r.try_get("email")?,
                    display_name: r.try_get("display_name")?,
                })
            })
            .collect()
    }
}

/// The scheduler's rules over the desk's concierges.
pub fn rules(config: &Arc<Config>, store: &Store) -> kujira_scheduler::Rules {
    kujira_scheduler::Rules::new(
        store.clone(),
        config.clone(),
        Arc::new(StaffUsers::new(store.pool().clone())),
    )
}

#[derive(Clone)]
struct Health {
    store: EventStore,
    projector: Projector,
    lag_limit: Duration,
}

pub async fn serve(config: Config) -> anyhow::Result<()> {
    let db = Database::open(&config).await?;
    // Whatever stops the service, a failed start included, the private cluster
    // stops with it.
    let served = serve_on(&db, config).await;
    let closed = db.close().await;
    served.and(closed)
}

async fn serve_on(db: &Database, config: Config) -> anyhow::Result<()> {
    db.migrate().await?;
    let store = db.store(&config).await?;
    kujira_store::legacy::ensure_sealed(store.pool()).await?;
    let config = Arc::new(config);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);

    let app = app(config.clone(), store.clone(), clock.clone());
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .with_context(|| format!("KUJIRA_ADDR: cannot listen on {}", config.addr))?;
    let addr = listener.local_addr()?;

    let shutdown = CancellationToken::new();
    // Erasures are watched from here, before the projector or a request caches any
    // key, so that none appended from now on is missed.
    let erasures_from = store
        .events()
        .head()
        .await
        .context("cannot read the event log's head")?;
    let mut workers = tokio::task::JoinSet::new();
    workers.spawn(projector(&config, &store).run(shutdown.clone()));
    workers.spawn({
        let watch = store.vault().clone().watch_erasures(
            store.events().clone(),
            erasures_from,
            shutdown.clone(),
        );
        async move {
            watch.await;
            anyhow::Ok(())
        }
    });
    let mailer = mailer(&config, &store, clock.clone())?;
    workers.spawn(mailer.run_workers(config.mail_workers, shutdown.clone()));
    workers.spawn(rules(&config, &store).serve(clock.clone(), shutdown.clone()));
    workers.spawn(kujira_privacy::retention::serve(
        store.clone(),
        config.retention,
        config.timezone,
        clock.clone(),
        shutdown.clone(),
    ));
    workers.spawn(kujira_desk::session_cleanup(
        db.pool.clone(),
        kujira_desk::SESSION_CLEANUP_EVERY,
        shutdown.clone(),
    ));

    // Written with errors ignored: a closed stdout (a detached terminal, a pipe the
    // reader let go) must never take the service down, as `println!` would.
    let mut banner = format!(
        "kujira is serving on http://{addr}/  (inquiry form: http://{addr}/inquiry, tours: http://{addr}/tours, staff desk: http://{addr}/desk)\n"
    );
    if config.smtp_url.is_none() {
        banner.push_str(&format!(
            "mail is written as .eml files into {}\n",
            config.outbox_dir().display()
        ));
    }
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(banner.as_bytes());
        let _ = out.flush();
    }

    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown({
        let shutdown = shutdown.clone();
        async move {
            signal().await;
            tracing::info!("shutting down");
            shutdown.cancel();
        }
    });
    let served = server.await.context("the HTTP server failed");
    shutdown.cancel();
    let drained = tokio::time::timeout(GRACE, async {
        while let Some(r) = workers.join_next().await {
            match r {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = format!("{e:#}"), "a worker failed"),
                Err(e) => tracing::error!(error = %e, "a worker panicked"),
            }
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!("workers did not stop in time");
    }
    served
}

/// The mailer with every service's templates.
pub fn mailer(
    config: &Arc<Config>,
    store: &Store,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<kujira_scheduler::Mailer> {
    Ok(
        kujira_scheduler::Mailer::from_config(store.clone(), config, clock)?
            .with_renderer(Arc::new(kujira_intake::mail::MailTemplates::new(
                config.clone(),
            )))
            .with_renderer(Arc::new(kujira_tours::TourMailTemplates::new(
                config.clone(),
            )))
            .with_renderer(Arc::new(kujira_desk::DeskMailTemplates::new(
                config.clone(),
            )))
            .with_renderer(Arc::new(kujira_scheduler::RuleMailTemplates::new(
                config.clone(),
            ))),
    )
}

/// The whole HTTP surface: every service's router, health checks and the OpenAPI document.
pub fn app(config: Arc<Config>, store: Store, clock: Arc<dyn Clock>) -> Router {
    // One kit for both public services, so that the per-IP submission limit counts
    // inquiries and tour sign-ups together.
    let kit = kujira_web::Kit::new(&config, clock.clone());
    let (missing, wrong_method) = (kit.clone(), kit.clone());
    let intake = kujira_intake::router(kujira_intake::IntakeState::with_kit(
        config.clone(),
        store.clone(),
        kit.clone(),
    ));
    let unsubscribe = kujira_scheduler::router(kujira_scheduler::UnsubscribeState::new(
        &config,
        store.clone(),
        kit.clone(),
    ));
    let tours = kujira_tours::router(
        kujira_tours::ToursState::new(config.clone(), store.clone(), clock.clone()).with_kit(kit),
    );
    let desk = kujira_desk::router(kujira_desk::DeskState::new(
        config.clone(),
        store.clone(),
        clock,
    ));
    let mut doc = kujira_intake::openapi();
    doc.merge(kujira_tours::openapi());
    doc.info.title = "kujira".into();
    doc.info.description = Some("移住相談と体験ツアーの公開API (kujira public API)".into());
    let doc = Arc::new(doc);
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(readyz).with_state(Health {
                projector: projector(&config, &store),
                store: store.events().clone(),
                lag_limit: config.projection_lag_limit,
            }),
        )
        .route(
            "/api/openapi.json",
            get(move || {
                let doc = doc.clone();
                async move { Json(doc.as_ref().clone()) }
            }),
        )
        .route(
            "/",
            get(|| async { axum::response::Redirect::to("/inquiry") }),
        )
        .merge(intake)
        .merge(tours)
        .merge(desk)
        .merge(unsubscribe)
        // After every route: the 405 fallback applies to the routes registered so far.
        .fallback(move |uri: Uri| async move { missing.not_found(uri.path()) })
        .method_not_allowed_fallback(move |uri: Uri, method: Method| async move {
            wrong_method.method_not_allowed(uri.path(), &method)
        });
    with_security_headers(app)
        .layer(axum::Extension(kujira_web::TrustedProxies(
            config.trusted_proxies.clone(),
        )))
        .layer(CatchPanicLayer::new())
        .layer(TraceLayer::new_for_http())
}

/// Headers every answer carries. The pages use no script and no third party, so the
/// policy can be strict; inline styles are the only exception. A handler's own header
/// wins (the personal-link pages send `Referrer-Policy: no-referrer`).
fn with_security_headers(router: Router) -> Router {
    const CSP: &str = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
                       form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";
    let set =
        |name, value| SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value));
    router
        .layer(set(header::CONTENT_SECURITY_POLICY, CSP))
        .layer(set(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(set(header::X_FRAME_OPTIONS, "DENY"))
        .layer(set(header::REFERRER_POLICY, "same-origin"))
}

/// Ready when the database answers and every projection is live: not failed, and
/// its oldest unapplied event younger than `KUJIRA_PROJECTION_LAG_LIMIT`. A 503 names
/// each projection that is not. Also reports how far readers and mail lag behind.
/// Error texts are not shown here (they may quote event data); `kujira projections
/// status` prints them.
async fn readyz(State(h): State<Health>) -> impl IntoResponse {
    let db_ok = sqlx::query("SELECT 1")
        .execute(h.store.pool())
        .await
        .is_ok();
    let lag = h.store.reader_lag().await.ok();
    let outbox = kujira_scheduler::outbox_status(h.store.pool()).await.ok();
    let mut unready = Vec::new();
    if !db_ok {
        unready.push("database unavailable".to_owned());
    }
    let projections = match h.projector.status().await {
        Ok(all) => {
            unready.extend(all.iter().filter_map(|p| p.problem(h.lag_limit)));
            Some(all)
        }
        Err(e) => {
            tracing::warn!(
                error = format!("{e:#}"),
                "cannot read the projections' status"
            );
            unready.push("projection status unavailable".to_owned());
            None
        }
    };
    let body = serde_json::json!({
        "database": if db_ok { "ok" } else { "unavailable" },
        "projections": projections,
        "projection_lag_limit_seconds": h.lag_limit.as_secs(),
        "unready": unready,
        "reader_lag": lag,
        "mail_outbox": outbox,
    });
    let status = if unready.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

async fn signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
