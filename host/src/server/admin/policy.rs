//! `/admin/v1/policy`: get, replace (all or none) and dry-run the operator's policy.

use super::text_body;
use crate::registry::GrantChange;
use crate::server::error::{ApiError, ErrorBody};
use crate::server::{AppState, blocking};
use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;
use std::sync::Arc;

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
