//! `/admin/v1/policy`, `/admin/v1/secrets`, `/admin/v1/audit`, `/admin/v1/logs`.

use super::error::{ApiError, ErrorBody};
use super::{AppState, blocking};
use crate::audit::{AuditEvent, AuditKind, AuditQuery, to_millis};
use crate::capability::CapabilityId;
use crate::capability::log::{LogQuery, LogRecord};
use crate::policy::LogLevel;
use crate::registry::GrantChange;
use crate::secrets::SecretError;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

fn text_body(body: axum::body::Bytes) -> Result<String, ApiError> {
    String::from_utf8(body.to_vec())
        .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "bad-body", "body is not UTF-8"))
}

/// `GET /admin/v1/policy`: the current policy as TOML.
#[utoipa::path(get, path = "/admin/v1/policy", tag = "policy",
    responses((status = 200, description = "The policy", body = String, content_type = "application/toml")))]
pub async fn get_policy(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/toml")],
        state.registry.policy_text(),
    )
}

/// What a policy change did (or would do).
#[derive(Serialize, utoipa::ToSchema)]
pub struct PolicyChanges {
    pub applied: bool,
    pub changes: Vec<GrantChange>,
}

/// `PUT /admin/v1/policy` with TOML: validated, every plugin re-granted, all or none.
#[utoipa::path(put, path = "/admin/v1/policy", tag = "policy",
    request_body(content((String = "application/toml"), (String = "text/plain")), description = "The whole new policy"),
    responses(
        (status = 200, description = "Applied; the grants that changed", body = PolicyChanges),
        (status = 400, description = "Not UTF-8 or not a valid policy", body = ErrorBody),
        (status = 422, description = "An installed plugin would not load under it; nothing changed", body = ErrorBody),
    ))]
pub async fn put_policy(
    State(state): State<Arc<AppState>>,
    body: axum::body::Bytes,
) -> Result<Json<PolicyChanges>, ApiError> {
    let text = text_body(body)?;
    let changes =
        blocking(move || state.registry.set_policy(&text).map_err(ApiError::from)).await?;
    Ok(Json(PolicyChanges {
        applied: true,
        changes,
    }))
}

/// `POST /admin/v1/policy/dry-run` with TOML: what `PUT` would change, changing nothing.
#[utoipa::path(post, path = "/admin/v1/policy/dry-run", tag = "policy",
    request_body(content((String = "application/toml"), (String = "text/plain")), description = "A candidate policy"),
    responses(
        (status = 200, description = "The grants it would change", body = PolicyChanges),
        (status = 400, description = "Not UTF-8 or not a valid policy", body = ErrorBody),
        (status = 422, description = "An installed plugin would not load under it", body = ErrorBody),
    ))]
pub async fn dry_run_policy(
    State(state): State<Arc<AppState>>,
    body: axum::body::Bytes,
) -> Result<Json<PolicyChanges>, ApiError> {
    let text = text_body(body)?;
    let changes =
        blocking(move || state.registry.policy_dry_run(&text).map_err(ApiError::from)).await?;
    Ok(Json(PolicyChanges {
        applied: false,
        changes,
    }))
}

fn secret_error(error: SecretError) -> ApiError {
    match error {
        SecretError::BadName(_) | SecretError::TooLarge(_) => {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid-secret", error.to_string())
        }
        other => {
            tracing::error!("secret store failed: {other}");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "storage-failed",
                "the secret store failed",
            )
        }
    }
}

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
    Query(filter): Query<SecretFilter>,
) -> Result<Json<Vec<SecretName>>, ApiError> {
    blocking(move || {
        let names = state
            .registry
            .runtime()
            .services()
            .secrets
            .list(filter.plugin.as_deref())
            .map_err(secret_error)?;
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
    if value.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid-secret",
            "secret value is empty",
        ));
    }
    blocking(move || {
        state
            .registry
            .runtime()
            .services()
            .secrets
            .set(&plugin, &name, &value)
            .map_err(secret_error)?;
        audit_secret(&state, &plugin, format!("secret `{name}` set"));
        Ok(StatusCode::NO_CONTENT)
    })
    .await
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
    blocking(move || {
        if !state
            .registry
            .runtime()
            .services()
            .secrets
            .remove(&plugin, &name)
            .map_err(secret_error)?
        {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "secret-not-found",
                format!("plugin `{plugin}` has no secret `{name}`"),
            ));
        }
        audit_secret(&state, &plugin, format!("secret `{name}` removed"));
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

/// Query parameters shared by audit and log queries; times are ms since the Unix epoch.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RecordFilter {
    /// Only this plugin's records.
    pub plugin: Option<String>,
    /// Audit: the record kind (e.g. `denied`). Logs: not accepted.
    pub kind: Option<String>,
    /// Logs: the lowest level (e.g. `warn`). Audit: not accepted.
    pub level: Option<String>,
    /// Records at or after this time.
    pub since: Option<i64>,
    /// Records before this time.
    pub until: Option<i64>,
    /// Most records returned (default 100, at most 10000).
    pub limit: Option<u32>,
}

fn bad_filter(message: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid-query", message)
}

/// An audit record as the API returns it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AuditRow {
    pub time_ms: i64,
    pub plugin: String,
    pub kind: &'static str,
    pub capability: Option<&'static str>,
    pub detail: String,
}

/// `GET /admin/v1/audit?plugin=&kind=&since=&until=&limit=`, newest first.
#[utoipa::path(get, path = "/admin/v1/audit", tag = "records", params(RecordFilter),
    responses(
        (status = 200, description = "Audit records, newest first", body = Vec<AuditRow>),
        (status = 400, description = "Invalid filter", body = ErrorBody),
    ))]
pub async fn audit(
    State(state): State<Arc<AppState>>,
    Query(filter): Query<RecordFilter>,
) -> Result<Json<Vec<AuditRow>>, ApiError> {
    if filter.level.is_some() {
        return Err(bad_filter("`level` applies to logs, not audit".into()));
    }
    let kind = filter
        .kind
        .as_deref()
        .map(|k| AuditKind::parse(k).ok_or_else(|| bad_filter(format!("unknown audit kind `{k}`"))))
        .transpose()?;
    let query = AuditQuery {
        plugin: filter.plugin,
        kind,
        since: filter.since.map(crate::audit::from_millis),
        until: filter.until.map(crate::audit::from_millis),
        limit: filter.limit.unwrap_or(100),
    };
    blocking(move || {
        let events = state
            .registry
            .runtime()
            .services()
            .audit
            .query(&query)
            .map_err(storage)?;
        Ok(Json(events.into_iter().map(audit_row).collect()))
    })
    .await
}

fn audit_row(e: AuditEvent) -> AuditRow {
    AuditRow {
        time_ms: to_millis(e.time),
        plugin: e.plugin,
        kind: e.kind.as_str(),
        capability: e.capability.map(CapabilityId::name),
        detail: e.detail,
    }
}

fn storage(error: crate::storage::KvError) -> ApiError {
    tracing::error!("query failed: {error}");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "storage-failed",
        "the host's storage failed",
    )
}

/// A plugin log line as the API returns it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct LogRow {
    pub time_ms: i64,
    pub plugin: String,
    pub call_id: String,
    pub level: &'static str,
    pub source: &'static str,
    pub message: String,
}

/// `GET /admin/v1/logs?plugin=&level=&since=&until=&limit=`, newest first.
#[utoipa::path(get, path = "/admin/v1/logs", tag = "records", params(RecordFilter),
    responses(
        (status = 200, description = "Plugin log lines, newest first", body = Vec<LogRow>),
        (status = 400, description = "Invalid filter", body = ErrorBody),
    ))]
pub async fn logs(
    State(state): State<Arc<AppState>>,
    Query(filter): Query<RecordFilter>,
) -> Result<Json<Vec<LogRow>>, ApiError> {
    if filter.kind.is_some() {
        return Err(bad_filter("`kind` applies to audit, not logs".into()));
    }
    let level = filter
        .level
        .as_deref()
        .map(|l| LogLevel::parse(l).ok_or_else(|| bad_filter(format!("unknown log level `{l}`"))))
        .transpose()?;
    let query = LogQuery {
        plugin: filter.plugin,
        level,
        since: filter.since.map(crate::audit::from_millis),
        until: filter.until.map(crate::audit::from_millis),
        limit: filter.limit.unwrap_or(100),
    };
    blocking(move || {
        let records = state
            .registry
            .runtime()
            .services()
            .logs
            .query(&query)
            .map_err(storage)?;
        Ok(Json(records.into_iter().map(log_row).collect()))
    })
    .await
}

fn log_row(r: LogRecord) -> LogRow {
    LogRow {
        time_ms: to_millis(r.time),
        plugin: r.plugin,
        call_id: r.call_id,
        level: r.level.as_str(),
        source: r.source.as_str(),
        message: r.message,
    }
}

/// What clearing the compiled-artifact cache did.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CacheCleared {
    /// Compiled components deleted; they are recompiled when next loaded.
    pub removed: usize,
}

/// `DELETE /admin/v1/cache`: drop every compiled artifact (live plugins keep running).
#[utoipa::path(delete, path = "/admin/v1/cache", tag = "cache",
    responses((status = 200, description = "Compiled artifacts deleted", body = CacheCleared)))]
pub async fn clear_cache(
    State(state): State<Arc<AppState>>,
) -> Result<Json<CacheCleared>, ApiError> {
    let removed = blocking(move || {
        let runtime = state.registry.runtime();
        let Some(cache) = runtime.artifacts() else {
            return Ok(0);
        };
        let removed = cache.clear().map_err(|error| {
            tracing::error!("clearing the artifact cache failed: {error}");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "cache-failed",
                "the artifact cache could not be cleared",
            )
        })?;
        runtime.services().audit.record(AuditEvent::new(
            "-",
            AuditKind::PluginChanged,
            None,
            format!("compiled-artifact cache cleared ({removed} entries)"),
        ));
        Ok(removed)
    })
    .await?;
    Ok(Json(CacheCleared { removed }))
}
