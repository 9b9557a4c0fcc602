//! `capstan serve`: the admin API under `/admin/v1` (bearer token), plugin routes under
//! `/plugins/{id}/`, and health endpoints. Drains in-flight requests on SIGTERM/SIGINT.

mod admin;
pub mod auth;
mod error;
#[cfg(fuzzing)]
pub mod fuzzing;
pub mod mcp;
mod openapi;
pub mod plugins_dir;
mod routes;
mod sessions;

pub use error::ApiError;
pub use mcp::{ClientDirectory, McpSettings};

use crate::registry::Registry;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{any, get};
use std::sync::Arc;

/// Largest request body a plugin route accepts.
pub const MAX_ROUTE_BODY_BYTES: usize = 5 * 1024 * 1024;

/// Shared by every handler.
pub struct AppState {
    pub registry: Registry,
    pub token_hash: [u8; 32],
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Call slots, shared fairly between plugins (routes and tool calls alike).
    pub slots: Arc<crate::slots::Slots>,
    /// MCP client tokens, resolved with a short cache.
    pub clients: ClientDirectory,
    /// Cancelled when the server stops, ending long-lived MCP streams and the scheduler.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// The job run table (shared by the hosts of a cluster).
    pub jobs: Arc<dyn crate::capability::jobs::JobStore>,
    /// This host's id in the run table's leases (random per process).
    pub host_id: String,
    /// The directory plugins are installed from (`serve --plugins-dir`), if any.
    pub plugins_dir: Option<Arc<plugins_dir::PluginsDir>>,
}

static ERROR_IDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// A fresh id for a failure that is reported without its details; the host log has them.
pub(crate) fn next_error_id() -> String {
    let n = ERROR_IDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("e{n:06x}")
}

/// The whole HTTP surface (call inside a tokio runtime: `/mcp` starts a task).
pub fn router(state: Arc<AppState>, max_upload_bytes: usize, mcp: McpSettings) -> Router {
    // The admin API and /metrics both need the bearer token.
    let token = axum::middleware::from_fn_with_state(state.clone(), auth::require_token);
    let admin = admin::routes(max_upload_bytes)
        .layer(token.clone())
        .layer(axum::middleware::from_fn(error::json_errors));
    let metrics = Router::new().route("/metrics", get(metrics)).layer(token);
    Router::new()
        .route("/admin/v1/openapi.json", get(openapi::serve))
        .nest("/admin/v1", admin)
        .route(
            "/plugins/{id}",
            any(routes::root).layer(DefaultBodyLimit::max(MAX_ROUTE_BODY_BYTES)),
        )
        .route(
            "/plugins/{id}/",
            any(routes::root).layer(DefaultBodyLimit::max(MAX_ROUTE_BODY_BYTES)),
        )
        .route(
            "/plugins/{id}/{*path}",
            any(routes::nested).layer(DefaultBodyLimit::max(MAX_ROUTE_BODY_BYTES)),
        )
        .merge(session_routes(max_upload_bytes))
        .merge(metrics)
        .merge(mcp::routes(state.clone(), mcp))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .fallback(error::no_such_endpoint)
        .with_state(state)
}

/// What a session's token reaches: its own plugins and their routes.
fn session_routes(max_upload_bytes: usize) -> Router<Arc<AppState>> {
    use axum::routing::post;
    let api = Router::new()
        .route("/v1/session", get(sessions::me))
        .route("/v1/session/available", get(sessions::available))
        .route(
            "/v1/session/plugins",
            post(sessions::install)
                .layer(DefaultBodyLimit::max(max_upload_bytes))
                .get(sessions::list),
        )
        .route(
            "/v1/session/plugins/{id}",
            get(sessions::show).delete(sessions::remove),
        )
        .route(
            "/v1/session/plugins/{id}/config",
            get(sessions::get_config).put(sessions::put_config),
        )
        .route(
            "/v1/session/plugins/{id}/secrets/{name}",
            axum::routing::put(sessions::put_secret).delete(sessions::delete_secret),
        )
        .layer(axum::middleware::from_fn(error::json_errors));
    let limit = DefaultBodyLimit::max(MAX_ROUTE_BODY_BYTES);
    Router::new()
        .route(
            "/s/{session}/plugins/{id}",
            any(sessions::route_root).layer(limit),
        )
        .route(
            "/s/{session}/plugins/{id}/",
            any(sessions::route_root).layer(limit),
        )
        .route(
            "/s/{session}/plugins/{id}/{*path}",
            any(sessions::route_nested).layer(limit),
        )
        .merge(api)
}

/// `/metrics`: Prometheus text exposition (needs the admin token, like the admin API).
async fn metrics(
    axum::extract::State(state): axum::extract::State<Arc<AppState>>,
) -> impl axum::response::IntoResponse {
    let text = state.metrics.render(
        &state.slots.in_flight(),
        state.registry.runtime().pool_usage(),
    );
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
}

/// `/readyz`: 200 when the store answers (with plugin counts), 503 otherwise.
async fn readyz(
    axum::extract::State(state): axum::extract::State<Arc<AppState>>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let directory = state.plugins_dir.clone();
    let check = blocking(move || Ok(state.registry.readiness()?)).await;
    match check {
        Ok((loaded, failed)) => {
            let mut body =
                serde_json::json!({ "status": "ready", "plugins": loaded, "failed": failed });
            if let Some(dir) = &directory {
                body["plugins_dir"] = serde_json::to_value(dir.report()).unwrap_or_default();
            }
            axum::Json(body).into_response()
        }
        _ => ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "not-ready",
            "the state store is not reachable",
        )
        .into_response(),
    }
}

/// Apply changes other hosts make to a shared store as they are announced (a no-op for
/// a store only this host writes).
pub fn follow_other_hosts(state: Arc<AppState>) {
    let Some(mut changes) = state.registry.watch() else {
        return;
    };
    tokio::spawn(async move {
        while changes.recv().await.is_some() {
            while changes.try_recv().is_ok() {}
            let state = state.clone();
            let synced = blocking(move || Ok(state.registry.sync()?)).await;
            if let Err(error) = synced {
                tracing::error!("catching up with another host's change failed: {error}");
            }
        }
    });
}

/// How often expired sessions are looked for.
const SESSION_SWEEP: std::time::Duration = std::time::Duration::from_secs(1);

/// Run `work` on a blocking thread at start and then every `period` until shutdown,
/// passing what each pass returned to `report`.
fn every<R: Send + 'static>(
    state: Arc<AppState>,
    period: std::time::Duration,
    work: fn(&AppState) -> Result<R, ApiError>,
    report: fn(Result<R, ApiError>),
) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = state.shutdown.cancelled() => return,
                _ = ticks.tick() => {}
            }
            let app = state.clone();
            report(blocking(move || work(&app)).await);
        }
    });
}

/// Close expired sessions (also those that expired while the host was down, at once) and
/// remove the plugins of sessions closed elsewhere, every [`SESSION_SWEEP`] until shutdown.
pub fn sweep_sessions(state: Arc<AppState>) {
    every(
        state,
        SESSION_SWEEP,
        |app| {
            let now = crate::audit::to_millis(std::time::SystemTime::now());
            // Tokens of ended sessions stop working here before their plugins go.
            let removed = app.registry.sweep_sessions(now, &|| app.clients.forget())?;
            for plugin in &removed {
                app.jobs.cancel_plugin(plugin)?;
            }
            Ok(removed.len())
        },
        |swept| match swept {
            Ok(0) => {}
            Ok(plugins) => tracing::info!(plugins, "removed the plugins of ended sessions"),
            Err(error) => tracing::error!("closing expired sessions failed: {error}"),
        },
    );
}

/// Prune plugin log lines and audit records to what the current policy keeps, at start
/// and then every [`crate::retention::PRUNE_EVERY`] until shutdown.
pub fn prune_records(state: Arc<AppState>) {
    every(
        state,
        crate::retention::PRUNE_EVERY,
        |app| {
            let services = app.registry.runtime().services();
            let pass = crate::retention::Pass {
                now: std::time::SystemTime::now(),
                stop: &|| app.shutdown.is_cancelled(),
            };
            Ok(crate::retention::prune(
                &app.registry.policy(),
                &*services.logs,
                &*services.audit,
                &pass,
            ))
        },
        |pruned| match pruned {
            Ok(pruned) if pruned.log_lines + pruned.audit_records > 0 => tracing::info!(
                log_lines = pruned.log_lines,
                audit_records = pruned.audit_records,
                "deleted plugin log lines and audit records past their retention"
            ),
            Ok(_) => {}
            Err(error) => tracing::error!("pruning logs and audit records failed: {error}"),
        },
    );
}

/// Run `work` on a blocking thread (compiling, storage and plugin calls block), mapping a
/// panic in it to a 500.
pub(crate) async fn blocking<R: Send + 'static>(
    work: impl FnOnce() -> Result<R, ApiError> + Send + 'static,
) -> Result<R, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| ApiError::Panicked)?
}

/// Serve `router` on `listener` until SIGTERM or SIGINT, then cancel `shutdown` (ending
/// MCP streams) and let in-flight requests finish for at most `drain`; requests still
/// running after that are dropped.
pub async fn run(
    listener: tokio::net::TcpListener,
    router: Router,
    drain: std::time::Duration,
    shutdown: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    let stopping = Arc::new(tokio::sync::Notify::new());
    let signalled = stopping.clone();
    let server = axum::serve(listener, router).with_graceful_shutdown(async move {
        shutdown_signal().await;
        shutdown.cancel();
        signalled.notify_one();
    });
    tokio::select! {
        result = server => result,
        () = async {
            stopping.notified().await;
            tokio::time::sleep(drain).await;
        } => {
            tracing::warn!("drain took longer than {drain:?}; dropping the requests still running");
            Ok(())
        }
    }
}

async fn shutdown_signal() {
    let terminate = async {
        if let Ok(mut signal) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            signal.recv().await;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: draining in-flight requests");
}
