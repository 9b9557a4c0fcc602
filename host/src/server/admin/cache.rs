//! `/admin/v1/cache`: the compiled-artifact cache.

use crate::audit::{AuditEvent, AuditKind};
use crate::server::error::ApiError;
use crate::server::{AppState, blocking};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use std::sync::Arc;

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
