//! The one error shape of the HTTP API: `{code, message, detail?}` with a stable `code`.

use crate::error::InstallError;
use crate::registry::RegistryError;
use crate::secrets::SecretError;
use crate::storage::StoreError;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Why an API request failed. Handlers return it with `?`; each case maps to a status,
/// a stable `code` and a sentence that names the problem.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Refused before anything was done: a bad body, a bad query, a missing token.
    #[error("{message}")]
    Refused {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
    /// No call slot: try again after `retry_after_secs` (sent as `Retry-After`).
    #[error("{message}")]
    Busy {
        status: StatusCode,
        code: &'static str,
        message: String,
        retry_after_secs: u32,
    },
    /// The operation panicked on its worker thread.
    #[error("the operation panicked")]
    Panicked,
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
    /// A refusal with its own status, code and sentence.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Refused {
            status,
            code,
            message: message.into(),
        }
    }

    /// The status and stable code of this error.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Registry(error) => registry_status(error),
            ApiError::Secret(SecretError::BadName(_) | SecretError::TooLarge(_)) => {
                (StatusCode::BAD_REQUEST, "invalid-secret")
            }
            ApiError::Secret(_) | ApiError::Store(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "storage-failed")
            }
            ApiError::Refused { status, code, .. } | ApiError::Busy { status, code, .. } => {
                (*status, code)
            }
            ApiError::Panicked => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    /// The body this error is answered with.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            code: self.status_and_code().1.to_string(),
            message: self.public_message(),
        }
    }

    /// The sentence shown to the client: internals (storage failures) stay in the host log.
    fn public_message(&self) -> String {
        match self {
            ApiError::Registry(RegistryError::Store(error)) | ApiError::Store(error) => {
                tracing::error!("storage failed: {error}");
                "the host's storage failed".into()
            }
            ApiError::Secret(error @ (SecretError::BadName(_) | SecretError::TooLarge(_))) => {
                error.to_string()
            }
            ApiError::Secret(error) => {
                tracing::error!("secret store failed: {error}");
                "the secret store failed".into()
            }
            other => other.to_string(),
        }
    }
}

pub(super) fn registry_status(error: &RegistryError) -> (StatusCode, &'static str) {
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
            (status, install.code())
        }
        RegistryError::NotFound(_) => (StatusCode::NOT_FOUND, "plugin-not-found"),
        RegistryError::NoSuchVersion { .. } => (StatusCode::NOT_FOUND, "version-not-found"),
        RegistryError::NothingToRollBack(_) => (StatusCode::CONFLICT, "nothing-to-roll-back"),
        RegistryError::Policy(_) => (StatusCode::BAD_REQUEST, "invalid-policy"),
        RegistryError::PolicyRejected { .. } => {
            (StatusCode::UNPROCESSABLE_ENTITY, "policy-rejected")
        }
        RegistryError::NoConfig(_) => (StatusCode::CONFLICT, "config-not-declared"),
        RegistryError::InvalidConfig { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid-config"),
        RegistryError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "storage-failed"),
        RegistryError::SessionGone(_) => (StatusCode::NOT_FOUND, "session-not-found"),
        RegistryError::SessionFull { .. } => (StatusCode::CONFLICT, "session-full"),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, _) = self.status_and_code();
        let retry_after = match &self {
            ApiError::Busy {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            _ => None,
        };
        let mut response = (status, Json(self.body())).into_response();
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}

/// The answer to a path no route serves: a 404 in the one error shape.
pub async fn no_such_endpoint(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not-found",
        format!("no endpoint {method} {}", crate::text::cap(uri.path(), 256)),
    )
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
