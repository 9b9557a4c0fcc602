//! Authentication of `/mcp`: every request carries `Authorization: Bearer <client token>`
//! (never a query parameter). Missing, unknown, expired or revoked → 401 with
//! `WWW-Authenticate: Bearer`; over its rate → 429 with `Retry-After`. The client found is
//! put into the request's extensions, where the gateway reads it back.

use super::Hub;
use crate::capability::mcp::McpClient;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// The client a request was authenticated as.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Arc<McpClient>);

/// What the `Authorization` header holds.
enum Presented<'a> {
    Nothing,
    Bearer(&'a str),
    /// Another scheme, or a header that is not text.
    Malformed,
}

fn presented(request: &Request) -> Presented<'_> {
    match request.headers().get(header::AUTHORIZATION) {
        None => Presented::Nothing,
        Some(value) => match value.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")) {
            Some(token) if !token.trim().is_empty() => Presented::Bearer(token.trim()),
            _ => Presented::Malformed,
        },
    }
}

/// Resolve the request's client or answer 401/429/503.
pub async fn authenticate(
    State(hub): State<Arc<Hub>>,
    mut request: Request,
    next: Next,
) -> Response {
    let found = match presented(&request) {
        Presented::Bearer(token) => hub.clients().resolve(token).await,
        Presented::Nothing => match &hub.settings.anonymous_client {
            Some(id) => hub.clients().resolve_id(id).await,
            None => Ok(None),
        },
        Presented::Malformed => Ok(None),
    };
    let client = match found {
        Ok(Some(client)) => client,
        Ok(None) => return unauthorized(!matches!(presented(&request), Presented::Nothing)),
        Err(error) => {
            tracing::error!("looking up an MCP client failed: {error}");
            return failure(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the host cannot check tokens now; retry later",
            );
        }
    };
    if !hub.clients().admit(&client) {
        let mut response = failure(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            "this client is over its request rate; retry later",
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    }
    request.extensions_mut().insert(Authenticated(client));
    next.run(request).await
}

/// 401 with the challenge RFC 6750 asks for (`invalid_token` when one was presented).
fn unauthorized(token_presented: bool) -> Response {
    let challenge = if token_presented {
        r#"Bearer realm="capstan-mcp", error="invalid_token""#
    } else {
        r#"Bearer realm="capstan-mcp""#
    };
    let mut response = failure(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "missing, unknown, expired or revoked MCP client token",
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    response
}

fn failure(status: StatusCode, code: &'static str, message: &'static str) -> Response {
    (
        status,
        axum::Json(serde_json::json!({ "code": code, "message": message })),
    )
        .into_response()
}
