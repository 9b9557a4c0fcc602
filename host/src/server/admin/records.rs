//! `/admin/v1/audit` and `/admin/v1/logs`: query the audit trail and plugin logs.

use super::ApiQuery;
use crate::audit::{AuditEvent, AuditKind, AuditQuery, from_millis, to_millis};
use crate::capability::CapabilityId;
use crate::capability::log::{LogLevel, LogQuery, LogRecord, LogSource};
use crate::server::error::{ApiError, ErrorBody};
use crate::server::{AppState, blocking};
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Most records a query returns unless it asks for another number.
const DEFAULT_LIMIT: u32 = 100;

/// Filter of an audit query; times are ms since the Unix epoch.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditFilter {
    /// Only this plugin's records.
    pub plugin: Option<String>,
    /// Only records of this kind.
    pub kind: Option<AuditKind>,
    /// Records at or after this time.
    pub since: Option<i64>,
    /// Records before this time.
    pub until: Option<i64>,
    /// Most records returned (default 100, at most 10000).
    pub limit: Option<u32>,
}

/// Filter of a log query; times are ms since the Unix epoch.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LogFilter {
    /// Only this plugin's lines.
    pub plugin: Option<String>,
    /// The lowest level returned.
    pub level: Option<LogLevel>,
    /// Lines at or after this time.
    pub since: Option<i64>,
    /// Lines before this time.
    pub until: Option<i64>,
    /// Only the lines of this call id (a job run's `call_id`, a tool call's).
    pub call: Option<String>,
    /// Most lines returned (default 100, at most 10000).
    pub limit: Option<u32>,
}

/// An audit record as the API returns it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AuditRow {
    pub time_ms: i64,
    pub plugin: String,
    pub kind: AuditKind,
    pub capability: Option<CapabilityId>,
    pub detail: String,
}

impl From<AuditEvent> for AuditRow {
    fn from(e: AuditEvent) -> Self {
        AuditRow {
            time_ms: to_millis(e.time),
            plugin: e.plugin,
            kind: e.kind,
            capability: e.capability,
            detail: e.detail,
        }
    }
}

/// `GET /admin/v1/audit?plugin=&kind=&since=&until=&limit=`, newest first.
#[utoipa::path(get, path = "/admin/v1/audit", tag = "records", params(AuditFilter),
    responses(
        (status = 200, description = "Audit records, newest first", body = Vec<AuditRow>),
        (status = 400, description = "Invalid filter", body = ErrorBody),
    ))]
pub async fn audit(
    State(state): State<Arc<AppState>>,
    ApiQuery(filter): ApiQuery<AuditFilter>,
) -> Result<Json<Vec<AuditRow>>, ApiError> {
    let query = AuditQuery {
        plugin: filter.plugin,
        kind: filter.kind,
        since: filter.since.map(from_millis),
        until: filter.until.map(from_millis),
        limit: filter.limit.unwrap_or(DEFAULT_LIMIT),
    };
    blocking(move || {
        let events = state.registry.runtime().services().audit.query(&query)?;
        Ok(Json(events.into_iter().map(AuditRow::from).collect()))
    })
    .await
}

/// A plugin log line as the API returns it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct LogRow {
    pub time_ms: i64,
    pub plugin: String,
    pub call_id: String,
    pub level: LogLevel,
    pub source: LogSource,
    pub message: String,
}

impl From<LogRecord> for LogRow {
    fn from(r: LogRecord) -> Self {
        LogRow {
            time_ms: to_millis(r.time),
            plugin: r.plugin,
            call_id: r.call_id,
            level: r.level,
            source: r.source,
            message: r.message,
        }
    }
}

/// `GET /admin/v1/logs?plugin=&level=&since=&until=&limit=`, newest first.
#[utoipa::path(get, path = "/admin/v1/logs", tag = "records", params(LogFilter),
    responses(
        (status = 200, description = "Plugin log lines, newest first", body = Vec<LogRow>),
        (status = 400, description = "Invalid filter", body = ErrorBody),
    ))]
pub async fn logs(
    State(state): State<Arc<AppState>>,
    ApiQuery(filter): ApiQuery<LogFilter>,
) -> Result<Json<Vec<LogRow>>, ApiError> {
    let query = LogQuery {
        plugin: filter.plugin,
        level: filter.level,
        since: filter.since.map(from_millis),
        until: filter.until.map(from_millis),
        call: filter.call,
        limit: filter.limit.unwrap_or(DEFAULT_LIMIT),
    };
    blocking(move || {
        let records = state.registry.runtime().services().logs.query(&query)?;
        Ok(Json(records.into_iter().map(LogRow::from).collect()))
    })
    .await
}
