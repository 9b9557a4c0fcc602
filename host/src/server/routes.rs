//! `/plugins/{id}/{*path}`: requests to a plugin's `handler` export, size-capped, run on
//! the server's async threads under the plugin's deadline and concurrency cap. Failures
//! never leak internals: a trap is a 502 with an error id that is also in the host log.

use super::AppState;
use super::error::ApiError;
use crate::error::InvokeError;
use crate::runtime::Request as PluginRequest;
use crate::slots::Refusal;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use std::sync::Arc;

/// How long a request waits for a call slot before it is turned away.
const ADMISSION_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// A call that got no slot: 429 when the plugin is at its own cap, 503 when the host
/// has no slot it may take; either way `Retry-After: 1`.
pub(super) fn busy(id: &str, refusal: Refusal) -> ApiError {
    let (status, code, message) = match refusal {
        Refusal::PluginBusy { limit } => (
            StatusCode::TOO_MANY_REQUESTS,
            "busy",
            format!("plugin `{id}` is already running {limit} calls; retry later"),
        ),
        Refusal::SessionBusy { limit } => (
            StatusCode::TOO_MANY_REQUESTS,
            "session-busy",
            format!(
                "the session of plugin `{}` is already running {limit} calls; retry later",
                crate::text::escape(crate::sessions::local(id))
            ),
        ),
        Refusal::HostBusy => (
            StatusCode::SERVICE_UNAVAILABLE,
            "host-busy",
            format!("the host has no call slot for plugin `{id}` now; retry later"),
        ),
    };
    ApiError::Busy {
        status,
        code,
        message,
        retry_after_secs: 1,
    }
}

/// `/plugins/{id}` and `/plugins/{id}/` (path `/`).
pub async fn root(
    state: State<Arc<AppState>>,
    Path(id): Path<String>,
    method: Method,
    query: RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    serve(state, id, String::new(), method, query, headers, body).await
}

/// `/plugins/{id}/{*path}`.
pub async fn nested(
    state: State<Arc<AppState>>,
    Path((id, path)): Path<(String, String)>,
    method: Method,
    query: RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    serve(state, id, path, method, query, headers, body).await
}

/// A request to global plugin `id` (a session's plugin is reached only under
/// `/s/{session}/plugins/`, with its session's token).
async fn serve(
    State(state): State<Arc<AppState>>,
    id: String,
    path: String,
    method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if crate::sessions::owner(&id) != crate::sessions::Owner::Global {
        return not_serving(&id).into_response();
    }
    match call(&state, &id, path, method, query, headers, body).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

/// The answer for a plugin that is not installed, enabled and loaded here.
fn not_serving(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "plugin-not-found",
        format!(
            "no enabled plugin `{}`",
            crate::text::escape(crate::sessions::local(id))
        ),
    )
}

/// Call plugin `id` (its stored id) with a request.
pub(super) async fn call(
    state: &Arc<AppState>,
    id: &str,
    path: String,
    method: Method,
    query: Option<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|r| {
        ApiError::new(
            r.status(),
            "bad-body",
            format!("request rejected: {}", r.body_text()),
        )
    })?;
    let plugin = state.registry.serving(id).ok_or_else(|| not_serving(id))?;
    let permit = state
        .slots
        .take(id, plugin.caps(), ADMISSION_WAIT)
        .await
        .map_err(|refusal| {
            state.metrics.observe_error(id, "busy");
            busy(id, refusal)
        })?;
    let request = PluginRequest {
        method: method.as_str().to_string(),
        path: format!("/{path}"),
        query: query.unwrap_or_default(),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
    };
    let started = std::time::Instant::now();
    // The call runs on this async thread: its wasm yields at every epoch tick, and a
    // host function that blocks steps off the executor first (`crate::blocking`). A
    // panic in the host while serving it is a 500, as on any other endpoint.
    let outcome = std::panic::AssertUnwindSafe(plugin.handle_async(&request))
        .catch_unwind()
        .await
        .map_err(|_| ApiError::Panicked)?;
    drop(permit);
    let (answer, error) = match outcome {
        Ok(response) => (build(id, response), None),
        Err(error) => {
            let code = error.code();
            (Err(failure(id, error)), Some(code))
        }
    };
    state.metrics.observe_call(id, started.elapsed(), error);
    answer
}

/// The checked plugin response as the HTTP response sent. The runtime already refused
/// anything unsendable; the host sets the framing (`content-length` is recomputed).
fn build(id: &str, response: crate::runtime::Response) -> Result<Response, ApiError> {
    let mut built = Response::builder().status(response.status);
    for (name, value) in &response.headers {
        if name.eq_ignore_ascii_case("content-length") {
            continue;
        }
        built = built.header(name.as_str(), value.as_str());
    }
    built
        .body(Body::from(response.body))
        .map_err(|e| failure(id, InvokeError::InvalidResponse(format!("{e}"))))
}

fn failure(id: &str, error: InvokeError) -> ApiError {
    match error {
        InvokeError::Timeout { deadline_ms } => ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "timeout",
            format!("plugin `{id}` did not answer within {deadline_ms} ms"),
        ),
        InvokeError::Denied { .. } | InvokeError::ToolNotGranted { .. } => {
            ApiError::new(StatusCode::FORBIDDEN, "denied", error.to_string())
        }
        InvokeError::NotExported { .. } => {
            ApiError::new(StatusCode::NOT_FOUND, "no-routes", error.to_string())
        }
        InvokeError::InvalidResponse(what) => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "invalid-response",
            format!("plugin `{id}` answered a response the host will not send: {what}"),
        ),
        other => {
            let error_id = super::next_error_id();
            tracing::warn!(plugin = %id, error_id = %error_id, "plugin call failed: {other}");
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "plugin-failed",
                format!(
                    "plugin `{id}` failed ({}); error id {error_id}",
                    other.code()
                ),
            )
        }
    }
}
