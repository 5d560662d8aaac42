//! The router, its state and the server loop.

use crate::api::{budgets, meta, nodes, policy, runs, tokens, totals, ApiError};
use crate::auth::TouchTracker;
use crate::limits::{Expensive, Limits, RateLimiter};
use crate::store::Store;
use anyhow::{Context, Result};
use axum::extract::DefaultBodyLimit;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use std::future::Future;
use std::sync::Arc;
use tower_http::catch_panic::CatchPanicLayer;

/// Everything `wattprint serve` needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// `HOST:PORT` to listen on (port 0 picks a free one).
    pub listen: String,
    /// `sqlite://PATH` or `postgres://…`.
    pub database: String,
    pub limits: Limits,
    /// Retention and downsampling of samples (docs/server.md, "Retention").
    pub retention: crate::retention::Retention,
    /// PostgreSQL: connections committing uploads in groups; 0 commits each on its own
    /// ([`crate::group_commit`]).
    pub upload_writers: usize,
    /// How long a token lookup is reused ([`crate::token_cache`]); zero: not cached.
    pub token_cache: std::time::Duration,
}

/// Shared by every request.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub limiter: Arc<RateLimiter>,
    pub touches: Arc<TouchTracker>,
    /// Expensive requests in flight per token.
    pub expensive: Arc<Expensive>,
    pub limits: Limits,
}

impl AppState {
    pub fn new(store: Store, limits: Limits) -> AppState {
        AppState {
            store,
            limiter: Arc::new(RateLimiter::new(limits.rate_per_s, limits.burst)),
            touches: Arc::new(TouchTracker::default()),
            expensive: Arc::new(Expensive::new(limits.max_expensive_per_token)),
            limits,
        }
    }

    /// Open the database (migrating it) and build the state.
    pub async fn open(database: &str, limits: Limits) -> Result<AppState> {
        let db = crate::db::open(database).await?;
        let store = Store::new(db);
        // Runs stored before the rollups get their derived figures once (a no-op after).
        store.backfill_derived().await?;
        Ok(AppState::new(store, limits))
    }
}

/// The API's path prefix.
pub const API: &str = "/api/v1";

/// Every route as (method, path under [`API`]); the OpenAPI document is checked against it.
pub const ROUTES: &[(&str, &str)] = &[
    ("post", "/runs"),
    ("get", "/runs"),
    ("get", "/runs/{id}"),
    ("delete", "/runs/{id}"),
    ("get", "/runs/{id}/samples"),
    ("post", "/runs/{id}/samples"),
    ("get", "/totals"),
    ("get", "/budgets"),
    ("post", "/budgets"),
    ("delete", "/budgets/{id}"),
    ("get", "/tokens"),
    ("post", "/tokens"),
    ("delete", "/tokens/{id}"),
    ("get", "/me"),
    ("get", "/health"),
    ("get", "/openapi.json"),
    // Agents and policies (docs/agents.md).
    ("get", "/policy"),
    ("put", "/policy"),
    ("post", "/nodes/{node}/energy"),
    ("get", "/nodes"),
    // Jobs across nodes (docs/methodology.md, "Sharing a machine").
    ("get", "/jobs/{key}"),
];

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::not_found(format!(
        "no route {method} {}; the API is described at {API}/openapi.json",
        uri.path()
    ))
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{method} is not allowed on {}; see {API}/openapi.json",
            uri.path()
        ),
    )
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::internal(anyhow::anyhow!("a request handler panicked")).into_response()
}

/// The application: API routes, JSON fallbacks and the limits.
pub fn router(state: AppState) -> Router {
    let p = |s: &str| format!("{API}{s}");
    let limits = state.limits;
    Router::new()
        .route(&p("/runs"), post(runs::ingest).get(runs::list))
        .route(&p("/runs/{id}"), get(runs::get).delete(runs::delete))
        .route(
            &p("/runs/{id}/samples"),
            get(runs::samples).post(runs::add_samples),
        )
        .route(&p("/totals"), get(totals::totals))
        .route(&p("/budgets"), get(budgets::list).post(budgets::upsert))
        .route(&p("/budgets/{id}"), delete(budgets::delete))
        .route(&p("/tokens"), get(tokens::list).post(tokens::create))
        .route(&p("/tokens/{id}"), delete(tokens::revoke))
        .route(&p("/me"), get(meta::me))
        .route(&p("/health"), get(meta::health))
        .route(&p("/openapi.json"), get(meta::openapi))
        .merge(crate::dashboard::router(state.clone()))
        // Agents and policies (docs/agents.md).
        .route(&p("/policy"), get(policy::get).put(policy::put))
        .route(&p("/nodes/{node}/energy"), post(nodes::post_energy))
        .route(&p("/nodes"), get(nodes::list))
        .route(&p("/jobs/{key}"), get(crate::api::jobs::get))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            limits.request_timeout,
            crate::limits::timeout,
        ))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(axum::middleware::from_fn(crate::api::log_errors))
        .with_state(state)
}

/// Serve `state` on `listener` until `shutdown` completes, with the connection limits of
/// `state.limits` ([`crate::conn`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let limits = state.limits;
    crate::conn::serve(listener, router(state), limits, shutdown)
        .await
        .context("serving HTTP")
}

async fn shutdown_signal() {
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
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// `wattprint serve`: open and migrate the database, listen, print where, serve until SIGINT or
/// SIGTERM (in-flight requests finish).
pub fn run_blocking(cfg: Config) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        let mut state = AppState::open(&cfg.database, cfg.limits).await?;
        state.store = state
            .store
            .with_upload_writers(cfg.upload_writers)
            .with_token_cache(cfg.token_cache);
        let listener = tokio::net::TcpListener::bind(&cfg.listen)
            .await
            .with_context(|| {
                format!(
                    "cannot listen on {}: is another server using it? pick another with --listen HOST:PORT",
                    cfg.listen
                )
            })?;
        let addr = listener.local_addr()?;
        let version = crate::db::migrations::current_version(state.store.db.as_ref()).await?;
        println!(
            "wattprint serve: listening on http://{addr}{API} (database {}, schema version {version})",
            state.store.db.describe()
        );
        println!("wattprint serve: dashboard at http://{addr}/dashboard/");
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        let retention = crate::retention::spawn(state.store.clone(), cfg.retention);
        let fold = crate::store_rollups::spawn_fold(state.store.clone());
        let served = serve(listener, state, shutdown_signal()).await;
        for task in [retention, fold].into_iter().flatten() {
            // Stops at its next await; each batch is one transaction, none is left half done.
            task.abort();
            let _ = task.await;
        }
        served?;
        println!("wattprint serve: stopped");
        Ok(())
    })
}
