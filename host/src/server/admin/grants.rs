//! The consent view over the admin API: `GET /admin/v1/plugins/{id}/grants` for an
//! installed plugin, `POST /admin/v1/grants/dry-run` for an upload an operator is weighing.

use super::plugins::WasmUpload;
use super::{PluginId, on_registry};
use crate::consent::Consent;
use crate::server::AppState;
use crate::server::error::{ApiError, ErrorBody};
use axum::Json;
use axum::extract::{Path, State};
use std::sync::Arc;

/// `GET /admin/v1/plugins/{id}/grants`.
#[utoipa::path(get, path = "/admin/v1/plugins/{id}/grants", tag = "plugins", params(PluginId),
    responses(
        (status = 200, description = "What it requests, what the policy allows, what it gets, \
                                      and the high-risk grants among them", body = Consent),
        (status = 404, description = "No such plugin, or its version failed to load", body = ErrorBody),
    ))]
pub async fn grants(
    State(state): State<Arc<AppState>>,
    Path(PluginId { id }): Path<PluginId>,
) -> Result<Json<Consent>, ApiError> {
    Ok(Json(state.registry.consent(&id)?))
}

/// `POST /admin/v1/grants/dry-run` with a plugin upload: its consent view under the policy
/// in force, installing nothing (risks `refuse_risks` lists are marked `refused`).
#[utoipa::path(post, path = "/admin/v1/grants/dry-run", tag = "plugins",
    request_body(content((WasmUpload = "application/wasm"), (WasmUpload = "application/octet-stream"),
            (super::plugins::MultipartUpload = "multipart/form-data")),
        description = "The plugin component, as for an install"),
    responses(
        (status = 200, description = "What it would request, get and risk", body = Consent),
        (status = 400, description = "Not a component, or its manifest is missing or invalid", body = ErrorBody),
        (status = 413, description = "Larger than the upload limit", body = ErrorBody),
        (status = 422, description = "Refused by the gate before any grant is decided", body = ErrorBody),
    ))]
pub async fn dry_run_grants(
    State(state): State<Arc<AppState>>,
    WasmUpload(body): WasmUpload,
) -> Result<Json<Consent>, ApiError> {
    Ok(Json(
        on_registry(&state, move |registry| registry.review(&body)).await?,
    ))
}
