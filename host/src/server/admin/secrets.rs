//! `/admin/v1/secrets`: write-only plugin secrets (names are listed, values never).

use super::{ApiQuery, text_body};
use crate::audit::{AuditEvent, AuditKind};
use crate::capability::CapabilityId;
use crate::server::error::{ApiError, ErrorBody};
use crate::server::{AppState, blocking};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

fn audit_secret(state: &AppState, plugin: &str, detail: String) {
    state
        .registry
        .runtime()
        .services()
        .audit
        .record(AuditEvent::new(
            plugin,
            AuditKind::SecretChanged,
            Some(CapabilityId::Secrets),
            detail,
        ));
}

/// One secret's name (values are never returned).
#[derive(Serialize, utoipa::ToSchema)]
pub struct SecretName {
    pub plugin: String,
    pub name: String,
}

/// Filter for listing secrets.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SecretFilter {
    /// Only this plugin's secrets.
    pub plugin: Option<String>,
}

/// Path naming one secret of one plugin.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SecretPath {
    /// The plugin the secret belongs to.
    #[param(pattern = "^[a-z][a-z0-9_-]{0,62}$")]
    pub plugin: String,
    /// The secret's name, as the plugin's manifest and the policy name it.
    #[param(pattern = "^[A-Za-z0-9._-]{1,128}$")]
    pub name: String,
}

/// `GET /admin/v1/secrets[?plugin=]`: names only.
#[utoipa::path(get, path = "/admin/v1/secrets", tag = "secrets", params(SecretFilter),
    responses(
        (status = 200, description = "Secret names (never values)", body = Vec<SecretName>),
        (status = 400, description = "Unknown query parameter", body = ErrorBody),
    ))]
pub async fn list_secrets(
    State(state): State<Arc<AppState>>,
    ApiQuery(filter): ApiQuery<SecretFilter>,
) -> Result<Json<Vec<SecretName>>, ApiError> {
    blocking(move || {
        let names = state
            .registry
            .runtime()
            .services()
            .secrets
            .list(filter.plugin.as_deref())?;
        Ok(Json(
            names
                .into_iter()
                .map(|(plugin, name)| SecretName { plugin, name })
                .collect(),
        ))
    })
    .await
}

/// `PUT /admin/v1/secrets/{plugin}/{name}` with the value as the body (write-only).
#[utoipa::path(put, path = "/admin/v1/secrets/{plugin}/{name}", tag = "secrets", params(SecretPath),
    request_body(content = String, content_type = "text/plain", description = "The secret value"),
    responses(
        (status = 204, description = "Stored, encrypted"),
        (status = 400, description = "Invalid plugin id, name or value", body = ErrorBody),
    ))]
pub async fn put_secret(
    State(state): State<Arc<AppState>>,
    Path(SecretPath { plugin, name }): Path<SecretPath>,
    body: axum::body::Bytes,
) -> Result<StatusCode, ApiError> {
    crate::manifest::validate_id(&plugin)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid-plugin-id", e.to_string()))?;
    let value = text_body(body)?;
    blocking(move || set_secret(&state, &plugin, &name, &value)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Store secret `name` of the plugin stored under `plugin`, encrypted and audited; the
/// plugin's `on-secret-changed` hook hears of it.
pub(crate) fn set_secret(
    state: &AppState,
    plugin: &str,
    name: &str,
    value: &str,
) -> Result<(), ApiError> {
    if value.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid-secret",
            "secret value is empty",
        ));
    }
    state
        .registry
        .runtime()
        .services()
        .secrets
        .set(plugin, name, value)?;
    audit_secret(state, plugin, format!("secret `{name}` set"));
    state.registry.secret_changed(plugin, name);
    Ok(())
}

/// Remove secret `name` of the plugin stored under `plugin` (404 if it has none), audited.
pub(crate) fn remove_secret(state: &AppState, plugin: &str, name: &str) -> Result<(), ApiError> {
    if !state
        .registry
        .runtime()
        .services()
        .secrets
        .remove(plugin, name)?
    {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "secret-not-found",
            format!(
                "plugin `{}` has no secret `{}`",
                crate::sessions::local(plugin),
                crate::text::escape(name)
            ),
        ));
    }
    audit_secret(state, plugin, format!("secret `{name}` removed"));
    state.registry.secret_changed(plugin, name);
    Ok(())
}

/// `DELETE /admin/v1/secrets/{plugin}/{name}`.
#[utoipa::path(delete, path = "/admin/v1/secrets/{plugin}/{name}", tag = "secrets", params(SecretPath),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such secret", body = ErrorBody),
    ))]
pub async fn delete_secret(
    State(state): State<Arc<AppState>>,
    Path(SecretPath { plugin, name }): Path<SecretPath>,
) -> Result<StatusCode, ApiError> {
    blocking(move || remove_secret(&state, &plugin, &name)).await?;
    Ok(StatusCode::NO_CONTENT)
}
