//! `/admin/v1/plugins/{id}/config`: a plugin's settings, validated against the JSON Schema
//! its manifest declares.

use super::{PluginId, on_registry};
use crate::registry::PluginConfig;
use crate::server::AppState;
use crate::server::error::{ApiError, ErrorBody};
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use serde::Serialize;
use std::sync::Arc;

/// `GET /admin/v1/plugins/{id}/config`.
#[utoipa::path(get, path = "/admin/v1/plugins/{id}/config", tag = "config", params(PluginId),
    responses(
        (status = 200, description = "The schema, the values set, and what the plugin reads", body = PluginConfig),
        (status = 404, description = "No such plugin", body = ErrorBody),
        (status = 409, description = "The plugin declares no config", body = ErrorBody),
    ))]
pub async fn get_config(
    State(state): State<Arc<AppState>>,
    Path(PluginId { id }): Path<PluginId>,
) -> Result<Json<PluginConfig>, ApiError> {
    Ok(Json(on_registry(&state, move |r| r.config(&id)).await?))
}

/// What a config write changed.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ConfigChanged {
    /// Keys whose value was added, changed or removed.
    pub changed: Vec<String>,
}

/// `PUT /admin/v1/plugins/{id}/config` with the whole settings object as JSON.
#[utoipa::path(put, path = "/admin/v1/plugins/{id}/config", tag = "config", params(PluginId),
    request_body(content = Object, content_type = "application/json",
        description = "The plugin's whole settings object; keys left out read as their defaults"),
    responses(
        (status = 200, description = "Stored; the keys that changed", body = ConfigChanged),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 404, description = "No such plugin", body = ErrorBody),
        (status = 409, description = "The plugin declares no config", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Refused by the schema, naming the field and the rule; nothing stored", body = ErrorBody),
    ))]
pub async fn put_config(
    State(state): State<Arc<AppState>>,
    Path(PluginId { id }): Path<PluginId>,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<Json<ConfigChanged>, ApiError> {
    let values = super::json_body(body)?;
    let changed = on_registry(&state, move |r| r.set_config(&id, &values)).await?;
    Ok(Json(ConfigChanged { changed }))
}
