//! `/admin/v1/mcp/clients`: MCP clients and their tokens. A token is shown once, when
//! its client is created; only its SHA-256 is stored. Revoking a client stops its token
//! on every host of a cluster within the gateway's lookup cache life (500 ms).

use crate::audit::{AuditEvent, AuditKind};
use crate::capability::CapabilityId;
use crate::capability::mcp::clients::new_token;
use crate::capability::mcp::{McpClient, NewClient};
use crate::server::error::{ApiError, ErrorBody};
use crate::server::{AppState, blocking};
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::SystemTime;

/// A client just created, with its token (shown this once).
#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedClient {
    pub client: McpClient,
    /// The bearer token for `/mcp`; store it now, it is never shown again.
    pub token: String,
}

/// Path parameter naming an MCP client.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ClientId {
    /// The client's id, as listed.
    #[param(pattern = "^[0-9a-f]{16}$")]
    id: String,
}

fn audit(state: &AppState, detail: String) {
    state
        .registry
        .runtime()
        .services()
        .audit
        .record(AuditEvent::new(
            "-",
            AuditKind::ClientChanged,
            Some(CapabilityId::Mcp),
            detail,
        ));
}

/// `POST /admin/v1/mcp/clients`.
#[utoipa::path(post, path = "/admin/v1/mcp/clients", tag = "mcp",
    request_body(content = NewClient, content_type = "application/json"),
    responses(
        (status = 201, description = "Created; the token is in the answer and nowhere else", body = CreatedClient),
        (status = 400, description = "Not JSON, or an unknown field", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "A field broke its rule (named in the message); nothing stored", body = ErrorBody),
    ))]
pub async fn create_client(
    State(state): State<Arc<AppState>>,
    body: Result<Json<NewClient>, JsonRejection>,
) -> Result<(StatusCode, Json<CreatedClient>), ApiError> {
    let new = super::json_body(body)?;
    let client = new.check(SystemTime::now()).map_err(|problem| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-client",
            format!("MCP client refused: {problem}"),
        )
    })?;
    let (token, hash) = new_token();
    let stored = client.clone();
    let app = state.clone();
    blocking(move || Ok(app.clients.store().add_client(&stored, &hash)?)).await?;
    state.clients.forget();
    audit(
        &state,
        format!(
            "MCP client {} ({}) created for plugins [{}]",
            client.id,
            crate::text::escape(&client.name),
            client.plugins.join(", ")
        ),
    );
    Ok((StatusCode::CREATED, Json(CreatedClient { client, token })))
}

/// `GET /admin/v1/mcp/clients`.
#[utoipa::path(get, path = "/admin/v1/mcp/clients", tag = "mcp",
    responses((status = 200, description = "Every client, oldest first, without tokens", body = [McpClient])))]
pub async fn list_clients(
    State(state): State<Arc<AppState>>,
) -> Result<Json<Vec<McpClient>>, ApiError> {
    let app = state.clone();
    Ok(Json(
        blocking(move || Ok(app.clients.store().clients()?)).await?,
    ))
}

/// `DELETE /admin/v1/mcp/clients/{id}`.
#[utoipa::path(delete, path = "/admin/v1/mcp/clients/{id}", tag = "mcp", params(ClientId),
    responses(
        (status = 204, description = "Revoked: its token stops working"),
        (status = 404, description = "No such client", body = ErrorBody),
    ))]
pub async fn revoke_client(
    State(state): State<Arc<AppState>>,
    Path(ClientId { id }): Path<ClientId>,
) -> Result<StatusCode, ApiError> {
    let app = state.clone();
    let target = id.clone();
    let removed = blocking(move || Ok(app.clients.store().remove_client(&target)?)).await?;
    if !removed {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "client-not-found",
            format!("no MCP client `{}`", crate::text::cap(&id, 64)),
        ));
    }
    state.clients.forget();
    audit(&state, format!("MCP client {id} revoked"));
    Ok(StatusCode::NO_CONTENT)
}
