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
