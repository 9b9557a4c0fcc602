//! The admin API under `/admin/v1`, one module per resource. Every handler returns
//! `Result<_, ApiError>` and uses `?`; registry work runs on blocking threads.

mod cache;
mod config;
mod events;
mod grants;
mod jobs;
mod mcp;
mod plugins;
mod policy;
mod records;
mod secrets;
mod sessions;

pub(super) use cache::*;
pub(super) use config::*;
pub(super) use events::*;
pub(super) use grants::*;
pub(super) use jobs::*;
pub(super) use mcp::*;
pub(super) use plugins::*;
pub(super) use policy::*;
pub(super) use records::*;
pub(super) use secrets::*;
pub(super) use sessions::*;

use super::error::ApiError;
use super::{AppState, blocking};
use crate::registry::{Registry, RegistryError};
use axum::Router;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequestParts};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::routing::{delete, get, post, put};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;

/// Largest JSON body of an admin request other than an upload (config, rollback).
const MAX_JSON_BYTES: usize = 2 * 1024 * 1024;

/// The admin routes (without the token layer, which the caller adds).
pub(super) fn routes(max_upload_bytes: usize) -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/plugins",
            post(install)
                .layer(DefaultBodyLimit::max(max_upload_bytes))
                .get(list),
        )
        .route("/plugins/{id}", get(show).delete(remove))
        .route("/plugins/{id}/grants", get(grants))
        .route(
            "/grants/dry-run",
            post(dry_run_grants).layer(DefaultBodyLimit::max(max_upload_bytes)),
        )
        .route("/plugins/{id}/enable", post(enable))
        .route("/plugins/{id}/disable", post(disable))
        .route("/plugins/{id}/versions", get(versions))
        .route("/plugins/{id}/sql/migrations", get(migrations))
        .route("/plugins/{id}/rollback", post(rollback))
        .route("/plugins/{id}/config", get(get_config).put(put_config))
        .route("/policy", get(get_policy).put(put_policy))
        .route("/policy/dry-run", post(dry_run_policy))
        .route("/secrets", get(list_secrets))
        .route(
            "/secrets/{plugin}/{name}",
            put(put_secret).delete(delete_secret),
        )
        .route("/audit", get(audit))
        .route("/logs", get(logs))
        .route("/cache", delete(clear_cache))
        .route("/plugins/{id}/jobs", get(list_jobs))
        .route("/plugins/{id}/jobs/{name}/run", post(run_job))
        .route("/runs", get(list_runs))
        .route("/runs/{run}", get(show_run))
        .route("/runs/{run}/cancel", post(cancel_run))
        .route("/mcp/clients", post(create_client).get(list_clients))
        .route("/mcp/clients/{id}", delete(revoke_client))
        .route("/events", post(publish_event).get(list_events))
        .route(
            "/events/publishers",
            post(create_publisher).get(list_publishers),
        )
        .route("/events/publishers/{id}", delete(revoke_publisher))
        .route("/deliveries", get(list_deliveries))
        .route("/deliveries/{id}/retry", post(retry_delivery))
        .route("/sessions", post(create_session).get(list_sessions))
        .route("/sessions/{id}", get(show_session).delete(close_session))
        .route("/sessions/{id}/renew", post(renew_session))
        .fallback(super::error::no_such_endpoint)
        .layer(DefaultBodyLimit::max(MAX_JSON_BYTES))
}

/// Run registry `work` on a blocking thread (installs compile, which takes a while).
async fn on_registry<R: Send + 'static>(
    state: &Arc<AppState>,
    work: impl FnOnce(&Registry) -> Result<R, RegistryError> + Send + 'static,
) -> Result<R, ApiError> {
    let state = state.clone();
    blocking(move || Ok(work(&state.registry)?)).await
}

/// A JSON body, or a 415 (not JSON) or 400 (malformed, unknown field) naming the problem.
pub(crate) fn json_body<T>(body: Result<axum::Json<T>, JsonRejection>) -> Result<T, ApiError> {
    body.map(|axum::Json(value)| value).map_err(|rejection| {
        let (status, code) = match rejection.status() {
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type")
            }
            _ => (StatusCode::BAD_REQUEST, "bad-body"),
        };
        ApiError::new(status, code, rejection.body_text())
    })
}

/// A UTF-8 text body (policies, secret values).
pub(crate) fn text_body(body: axum::body::Bytes) -> Result<String, ApiError> {
    String::from_utf8(body.to_vec())
        .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "bad-body", "body is not UTF-8"))
}

/// Path parameter naming an installed plugin.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct PluginId {
    /// The plugin's id, from its manifest.
    #[param(pattern = "^[a-z][a-z0-9_-]{0,62}$")]
    id: String,
}

/// A query string parsed into `T`; a malformed one is a 400 `invalid-query` naming the
/// parameter.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| ApiQuery(value))
            .map_err(|rejection: QueryRejection| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid-query",
                    rejection.body_text(),
                )
            })
    }
}
