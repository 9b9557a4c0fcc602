//! `/admin/v1/policy`, `/admin/v1/secrets`, `/admin/v1/audit`, `/admin/v1/logs`.

use super::error::ApiError;
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
pub async fn get_policy(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/toml")],
        state.registry.policy_text(),
    )
}

/// What a policy change did (or would do).
#[derive(Serialize)]
pub struct PolicyChanges {
    pub applied: bool,
    pub changes: Vec<GrantChange>,
}

/// `PUT /admin/v1/policy` with TOML: validated, every plugin re-granted, all or none.
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
#[derive(Serialize)]
pub struct SecretName {
    pub plugin: String,
    pub name: String,
}

/// Filter for listing secrets.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretFilter {
    pub plugin: Option<String>,
}

/// `GET /admin/v1/secrets[?plugin=]`: names only.
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
pub async fn put_secret(
    State(state): State<Arc<AppState>>,
    Path((plugin, name)): Path<(String, String)>,
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
pub async fn delete_secret(
    State(state): State<Arc<AppState>>,
    Path((plugin, name)): Path<(String, String)>,
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
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordFilter {
    pub plugin: Option<String>,
    /// Audit: the record kind (e.g. `denied`). Logs: not accepted.
    pub kind: Option<String>,
    /// Logs: the lowest level (e.g. `warn`). Audit: not accepted.
    pub level: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub limit: Option<u32>,
}

fn bad_filter(message: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid-query", message)
}

/// An audit record as the API returns it.
#[derive(Serialize)]
pub struct AuditRow {
    pub time_ms: i64,
    pub plugin: String,
    pub kind: &'static str,
    pub capability: Option<&'static str>,
    pub detail: String,
}

/// `GET /admin/v1/audit?plugin=&kind=&since=&until=&limit=`, newest first.
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
#[derive(Serialize)]
pub struct LogRow {
    pub time_ms: i64,
    pub plugin: String,
    pub call_id: String,
    pub level: &'static str,
    pub source: &'static str,
    pub message: String,
}

/// `GET /admin/v1/logs?plugin=&level=&since=&until=&limit=`, newest first.
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
