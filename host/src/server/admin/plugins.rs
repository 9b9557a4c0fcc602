//! `/admin/v1/plugins`: install (and upgrade), list, show, enable, disable, versions,
//! rollback, remove.

use super::{PluginId, on_registry};
use crate::registry::PluginInfo;
use crate::server::AppState;
use crate::server::error::{ApiError, ErrorBody};
use crate::storage::{Upload, VersionInfo};
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::StatusCode;
use serde::Deserialize;
use std::sync::Arc;

/// `POST /admin/v1/plugins` with the `.wasm` as the body.
#[utoipa::path(post, path = "/admin/v1/plugins", tag = "plugins",
    request_body(content((WasmUpload = "application/wasm"), (WasmUpload = "application/octet-stream"),
            (MultipartUpload = "multipart/form-data")),
        description = "The plugin component (`.wasm`) with its manifest embedded, or a form \
                       with the component and a sidecar manifest"),
    responses(
        (status = 201, description = "Installed, or upgraded to a new version", body = PluginInfo),
        (status = 400, description = "Not a component, or its manifest is missing or invalid", body = ErrorBody),
        (status = 413, description = "Larger than the upload limit", body = ErrorBody),
        (status = 422, description = "Refused by the gate (imports, world, contract) or failed to compile", body = ErrorBody),
    ))]
pub async fn install(
    State(state): State<Arc<AppState>>,
    WasmUpload(body): WasmUpload,
) -> Result<(StatusCode, Json<PluginInfo>), ApiError> {
    let info = on_registry(&state, move |registry| registry.install(&body)).await?;
    super::plugin_changed(&state, info.id.clone()).await?;
    Ok((StatusCode::CREATED, Json(info)))
}

/// `GET /admin/v1/plugins`.
#[utoipa::path(get, path = "/admin/v1/plugins", tag = "plugins",
    responses((status = 200, description = "Every installed plugin", body = Vec<PluginInfo>)))]
pub async fn list(State(state): State<Arc<AppState>>) -> Json<Vec<PluginInfo>> {
    Json(state.registry.list())
}

/// `GET /admin/v1/plugins/{id}`.
#[utoipa::path(get, path = "/admin/v1/plugins/{id}", tag = "plugins", params(PluginId),
    responses(
        (status = 200, description = "The plugin, its grants and last load error", body = PluginInfo),
        (status = 404, description = "No such plugin", body = ErrorBody),
    ))]
pub async fn show(
    State(state): State<Arc<AppState>>,
    Path(PluginId { id }): Path<PluginId>,
) -> Result<Json<PluginInfo>, ApiError> {
    Ok(Json(state.registry.info(&id)?))
}

/// `POST /admin/v1/plugins/{id}/enable`.
#[utoipa::path(post, path = "/admin/v1/plugins/{id}/enable", tag = "plugins", params(PluginId),
    responses(
        (status = 200, description = "Enabled", body = PluginInfo),
        (status = 404, description = "No such plugin", body = ErrorBody),
    ))]
pub async fn enable(
    State(state): State<Arc<AppState>>,
    Path(PluginId { id }): Path<PluginId>,
) -> Result<Json<PluginInfo>, ApiError> {
    Ok(Json(
        on_registry(&state, move |r| r.set_enabled(&id, true)).await?,
    ))
}

/// `POST /admin/v1/plugins/{id}/disable`.
#[utoipa::path(post, path = "/admin/v1/plugins/{id}/disable", tag = "plugins", params(PluginId),
    responses(
        (status = 200, description = "Disabled: routes and tools answer 404", body = PluginInfo),
        (status = 404, description = "No such plugin", body = ErrorBody),
    ))]
pub async fn disable(
    State(state): State<Arc<AppState>>,
    Path(PluginId { id }): Path<PluginId>,
) -> Result<Json<PluginInfo>, ApiError> {
    let info = on_registry(&state, move |r| r.set_enabled(&id, false)).await?;
    super::plugin_changed(&state, info.id.clone()).await?;
    Ok(Json(info))
}

/// `GET /admin/v1/plugins/{id}/sql/migrations`.
#[utoipa::path(get, path = "/admin/v1/plugins/{id}/sql/migrations", tag = "plugins", params(PluginId),
    responses(
        (status = 200, description = "The SQL migrations applied to the plugin's database, in order", body = Vec<crate::capability::sql::Applied>),
        (status = 404, description = "No such plugin", body = ErrorBody),
    ))]
pub async fn migrations(
    State(state): State<Arc<AppState>>,
    Path(PluginId { id }): Path<PluginId>,
) -> Result<Json<Vec<crate::capability::sql::Applied>>, ApiError> {
    Ok(Json(on_registry(&state, move |r| r.migrations(&id)).await?))
}

/// `GET /admin/v1/plugins/{id}/versions`.
#[utoipa::path(get, path = "/admin/v1/plugins/{id}/versions", tag = "plugins", params(PluginId),
    responses(
        (status = 200, description = "Stored versions, oldest first", body = Vec<VersionInfo>),
        (status = 404, description = "No such plugin", body = ErrorBody),
    ))]
pub async fn versions(
    State(state): State<Arc<AppState>>,
    Path(PluginId { id }): Path<PluginId>,
) -> Result<Json<Vec<VersionInfo>>, ApiError> {
    Ok(Json(on_registry(&state, move |r| r.versions(&id)).await?))
}

/// The body of an install: the component's bytes (`application/wasm`), or a
/// `multipart/form-data` form with a `component` part and, for a component that does not
/// embed its manifest, a `manifest` part (`capstan.toml`). Too large → 413 `too-large`.
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct WasmUpload(pub(super) Upload);

/// The multipart form of an install.
#[derive(utoipa::ToSchema)]
pub struct MultipartUpload {
    /// The plugin component (`.wasm`).
    #[schema(value_type = String, format = Binary)]
    component: Vec<u8>,
    /// A sidecar `capstan.toml`, for a component that does not embed one.
    #[schema(value_type = Option<String>, format = Binary)]
    manifest: Option<Vec<u8>>,
    /// A detached signature (`capstan plugin sign --detached`), for a component that does
    /// not embed one.
    #[schema(value_type = Option<String>, format = Binary)]
    signature: Option<Vec<u8>>,
}

/// An upload refused before any plugin was looked at: 413 `too-large` or 400 `bad-body`.
pub(crate) fn upload_rejected(status: StatusCode, detail: String) -> ApiError {
    let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
        "too-large"
    } else {
        "bad-body"
    };
    ApiError::new(status, code, format!("upload rejected: {detail}"))
}

/// The body of an upload: a bare component's bytes, or the form it came in.
pub(crate) enum UploadBody {
    Bare(Vec<u8>),
    Form(Multipart),
}

impl UploadBody {
    /// Read `request`'s body as an upload (a form when it says `multipart/form-data`).
    pub(crate) async fn read<S: Send + Sync>(
        request: Request,
        state: &S,
    ) -> Result<UploadBody, ApiError> {
        let multipart = request
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("multipart/form-data"));
        if !multipart {
            let body = Bytes::from_request(request, state)
                .await
                .map_err(|r: BytesRejection| upload_rejected(r.status(), r.body_text()))?;
            return Ok(UploadBody::Bare(body.to_vec()));
        }
        Multipart::from_request(request, state)
            .await
            .map(UploadBody::Form)
            .map_err(|r| upload_rejected(r.status(), r.body_text()))
    }
}

impl<S: Send + Sync> FromRequest<S> for WasmUpload {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let mut form = match UploadBody::read(request, state).await? {
            UploadBody::Bare(wasm) => return Ok(WasmUpload(Upload::component(wasm))),
            UploadBody::Form(form) => form,
        };
        let (mut wasm, mut manifest, mut signature) = (None, None, None);
        while let Some(field) = form
            .next_field()
            .await
            .map_err(|e| upload_rejected(e.status(), e.body_text()))?
        {
            let name = field.name().unwrap_or_default().to_string();
            let bytes = field
                .bytes()
                .await
                .map_err(|e| upload_rejected(e.status(), e.body_text()))?;
            match name.as_str() {
                "component" => wasm = Some(bytes.to_vec()),
                "manifest" => manifest = Some(bytes.to_vec()),
                "signature" => signature = Some(bytes.to_vec()),
                other => {
                    return Err(upload_rejected(
                        StatusCode::BAD_REQUEST,
                        format!(
                            "unknown form part `{}` (expected `component`, and optionally `manifest` and `signature`)",
                            crate::text::cap(other, 64)
                        ),
                    ));
                }
            }
        }
        let form = MultipartUpload {
            component: wasm.ok_or_else(|| {
                upload_rejected(
                    StatusCode::BAD_REQUEST,
                    "the form has no `component` part".into(),
                )
            })?,
            manifest,
            signature,
        };
        Ok(WasmUpload(Upload {
            wasm: form.component,
            manifest: form.manifest,
            signature: form.signature,
        }))
    }
}

/// Body of a rollback: the version to return to (default: the previous one).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    pub seq: Option<i64>,
}

/// `POST /admin/v1/plugins/{id}/rollback` with optional `{"seq": N}`.
#[utoipa::path(post, path = "/admin/v1/plugins/{id}/rollback", tag = "plugins", params(PluginId),
    request_body(content = Option<RollbackRequest>, content_type = "application/json"),
    responses(
        (status = 200, description = "The version now serving", body = PluginInfo),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 404, description = "No such plugin or version", body = ErrorBody),
        (status = 409, description = "No earlier version", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "The version no longer loads under the policy", body = ErrorBody),
    ))]
pub async fn rollback(
    State(state): State<Arc<AppState>>,
    Path(PluginId { id }): Path<PluginId>,
    body: Option<Json<RollbackRequest>>,
) -> Result<Json<PluginInfo>, ApiError> {
    let to = body.and_then(|Json(b)| b.seq);
    let info = on_registry(&state, move |r| r.rollback(&id, to)).await?;
    super::plugin_changed(&state, info.id.clone()).await?;
    Ok(Json(info))
}

/// Query of a removal.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RemoveQuery {
    /// Also delete what the plugin kept: its SQL database, kv, secrets and settings.
    pub purge: Option<bool>,
}

/// `DELETE /admin/v1/plugins/{id}[?purge=true]`.
#[utoipa::path(delete, path = "/admin/v1/plugins/{id}", tag = "plugins", params(PluginId, RemoveQuery),
    responses(
        (status = 204, description = "Removed with all its versions (its data is kept unless purge)"),
        (status = 400, description = "Invalid query", body = ErrorBody),
        (status = 404, description = "No such plugin", body = ErrorBody),
    ))]
pub async fn remove(
    State(state): State<Arc<AppState>>,
    Path(PluginId { id }): Path<PluginId>,
    super::ApiQuery(query): super::ApiQuery<RemoveQuery>,
) -> Result<StatusCode, ApiError> {
    let removed = id.clone();
    let purge = query.purge.unwrap_or(false);
    on_registry(&state, move |r| r.remove(&removed, purge)).await?;
    super::plugin_changed(&state, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
