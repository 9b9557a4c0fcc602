//! `/admin/v1/plugins`: install (and upgrade), list, show, enable, disable, versions,
//! rollback, remove. Registry work runs on blocking threads (compiling takes a while).

use super::error::ApiError;
use super::{AppState, blocking};
use crate::registry::{PluginInfo, Registry, RegistryError};
use crate::storage::VersionInfo;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use std::sync::Arc;

/// Run registry `work` on a blocking thread (installs compile, which takes a while).
async fn on_registry<R: Send + 'static>(
    state: &Arc<AppState>,
    work: impl FnOnce(&Registry) -> Result<R, RegistryError> + Send + 'static,
) -> Result<R, ApiError> {
    let state = state.clone();
    blocking(move || work(&state.registry).map_err(ApiError::from)).await
}

/// `POST /admin/v1/plugins` with the `.wasm` as the body.
pub async fn install(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<PluginInfo>), ApiError> {
    let body = body.map_err(|rejection| {
        let status = rejection.status();
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "too-large"
        } else {
            "bad-body"
        };
        ApiError::new(
            status,
            code,
            format!("upload rejected: {}", rejection.body_text()),
        )
    })?;
    let info = on_registry(&state, move |registry| registry.install(&body)).await?;
    Ok((StatusCode::CREATED, Json(info)))
}

/// `GET /admin/v1/plugins`.
pub async fn list(State(state): State<Arc<AppState>>) -> Json<Vec<PluginInfo>> {
    Json(state.registry.list())
}

/// `GET /admin/v1/plugins/{id}`.
pub async fn show(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<PluginInfo>, ApiError> {
    Ok(Json(state.registry.info(&id)?))
}

/// `POST /admin/v1/plugins/{id}/enable`.
pub async fn enable(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<PluginInfo>, ApiError> {
    Ok(Json(
        on_registry(&state, move |r| r.set_enabled(&id, true)).await?,
    ))
}

/// `POST /admin/v1/plugins/{id}/disable`.
pub async fn disable(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<PluginInfo>, ApiError> {
    Ok(Json(
        on_registry(&state, move |r| r.set_enabled(&id, false)).await?,
    ))
}

/// `GET /admin/v1/plugins/{id}/versions`.
pub async fn versions(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<Vec<VersionInfo>>, ApiError> {
    Ok(Json(on_registry(&state, move |r| r.versions(&id)).await?))
}

/// Body of a rollback: the version to return to (default: the previous one).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    pub seq: Option<i64>,
}

/// `POST /admin/v1/plugins/{id}/rollback` with optional `{"seq": N}`.
pub async fn rollback(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Option<Json<RollbackRequest>>,
) -> Result<Json<PluginInfo>, ApiError> {
    let to = body.and_then(|Json(b)| b.seq);
    Ok(Json(
        on_registry(&state, move |r| r.rollback(&id, to)).await?,
    ))
}

/// `DELETE /admin/v1/plugins/{id}`.
pub async fn remove(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    on_registry(&state, move |r| r.remove(&id)).await?;
    Ok(StatusCode::NO_CONTENT)
}
