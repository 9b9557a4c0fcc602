//! The one error shape of the HTTP API: `{code, message, detail?}` with a stable `code`.

use crate::error::InstallError;
use crate::registry::RegistryError;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An API error: status, stable code, a sentence that names the problem.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

/// The JSON body of every API error.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable, machine-readable code, e.g. `plugin-not-found`, `forbidden-import`.
    pub code: String,
    /// A sentence naming the problem.
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(ErrorBody {
                code: self.code.to_string(),
                message: self.message,
            }),
        )
            .into_response()
    }
}

impl From<RegistryError> for ApiError {
    fn from(error: RegistryError) -> Self {
        let message = error.to_string();
        match error {
            RegistryError::Install(install) => {
                let status = match install {
                    InstallError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                    InstallError::NotWasm(_)
                    | InstallError::CoreModule
                    | InstallError::Malformed(_)
                    | InstallError::NoManifest
                    | InstallError::ManifestDuplicate(_)
                    | InstallError::ManifestConflict
                    | InstallError::Manifest(_) => StatusCode::BAD_REQUEST,
                    _ => StatusCode::UNPROCESSABLE_ENTITY,
                };
                ApiError::new(status, install.code(), message)
            }
            RegistryError::NotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "plugin-not-found", message)
            }
            RegistryError::NoSuchVersion { .. } => {
                ApiError::new(StatusCode::NOT_FOUND, "version-not-found", message)
            }
            RegistryError::NothingToRollBack(_) => {
                ApiError::new(StatusCode::CONFLICT, "nothing-to-roll-back", message)
            }
            RegistryError::Policy(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid-policy", message)
            }
            RegistryError::PolicyRejected { .. } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "policy-rejected", message)
            }
            RegistryError::Store(error) => {
                tracing::error!("storage failed: {error}");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "storage-failed",
                    "the host's storage failed",
                )
            }
        }
    }
}

/// Rewrite errors the framework produces itself (rejected query strings and bodies,
/// unknown paths, wrong methods) into `{code, message}`, so every admin API error has the
/// one documented shape. Responses that are already JSON pass through untouched.
pub async fn json_errors(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/json"));
    if is_json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_string())
        .unwrap_or_default();
    let code = match status {
        StatusCode::NOT_FOUND => "not-found",
        StatusCode::METHOD_NOT_ALLOWED => "method-not-allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "too-large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported-media-type",
        StatusCode::UNPROCESSABLE_ENTITY => "unprocessable",
        status if status.is_server_error() => "internal",
        _ => "bad-request",
    };
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_string()
    } else {
        text
    };
    let mut rewritten = ApiError::new(status, code, message).into_response();
    for (name, value) in &parts.headers {
        if name != axum::http::header::CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            rewritten.headers_mut().insert(name, value.clone());
        }
    }
    rewritten
}
