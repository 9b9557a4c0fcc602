//! What a session's token reaches: `/v1/session` (the session itself), its private plugins
//! under `/v1/session/plugins` (install several at once, list, show, remove), and their
//! routes under `/s/{session}/plugins/{id}/…`. Nothing here reaches another session, the
//! global plugins' administration, or the admin API.

use super::admin::{UploadBody, upload_rejected};
use super::error::{ApiError, ErrorBody};
use super::{AppState, blocking, routes};
use crate::capability::mcp::McpClient;
use crate::registry::PluginInfo;
use crate::sessions::{self, Session, SessionId};
use crate::storage::Upload;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, RawQuery, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::sync::Arc;

/// Most plugins one upload request may carry.
pub const MAX_PARTS: usize = 16;

/// The open session whose bearer token the request carries; any other request is a 401.
/// Tokens resolve through the MCP client directory (a session's token is also its MCP
/// client), so a route call costs no store lookup within the directory's short cache.
pub struct SessionAuth {
    pub id: SessionId,
    /// The client the token stands for (its session's tools at `/mcp`).
    pub client: Arc<McpClient>,
}

fn unauthorized() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "missing, wrong or expired session bearer token",
    )
}

impl FromRequestParts<Arc<AppState>> for SessionAuth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .filter(|token| token.starts_with(sessions::TOKEN_PREFIX))
            .ok_or_else(unauthorized)?;
        let client = state
            .clients
            .resolve(token)
            .await?
            .ok_or_else(unauthorized)?;
        let id = client.session.clone().ok_or_else(unauthorized)?;
        Ok(SessionAuth { id, client })
    }
}

/// Session `id` as stored, while it is open (a 401 once it is not).
async fn stored_session(state: &Arc<AppState>, id: SessionId) -> Result<Session, ApiError> {
    let app = state.clone();
    let found = blocking(move || Ok(app.registry.runtime().services().state.session(&id)?)).await?;
    let now = crate::audit::to_millis(std::time::SystemTime::now());
    found
        .filter(|session| session.is_open(now))
        .ok_or_else(unauthorized)
}

/// `GET /v1/session`: the session the token belongs to.
pub async fn me(
    State(state): State<Arc<AppState>>,
    auth: SessionAuth,
) -> Result<Json<Session>, ApiError> {
    stored_session(&state, auth.id).await.map(Json)
}

/// Where something a session can reach comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The operator's plugins.
    Global,
    /// A plugin this session brought.
    Session,
}

/// One tool the session's token lists at `/mcp`.
#[derive(Serialize)]
pub struct AvailableTool {
    /// The name to call it by.
    pub name: String,
    pub plugin: String,
    pub source: Source,
}

/// One route root the session can send requests to.
#[derive(Serialize)]
pub struct AvailableRoute {
    /// Requests under this path reach the plugin.
    pub path: String,
    pub plugin: String,
    pub source: Source,
}

/// What a session can reach, each with where it comes from.
#[derive(Serialize)]
pub struct Available {
    pub tools: Vec<AvailableTool>,
    pub routes: Vec<AvailableRoute>,
}

fn source_of(stored_id: &str) -> Source {
    match sessions::owner(stored_id) {
        sessions::Owner::Global => Source::Global,
        sessions::Owner::Session { .. } => Source::Session,
    }
}

/// `GET /v1/session/available`: the tools its token lists at `/mcp` and the routes it can
/// call (the global plugins' and its own), each with its source.
pub async fn available(State(state): State<Arc<AppState>>, auth: SessionAuth) -> Json<Available> {
    let tools = super::mcp::visible(&state.registry, &auth.client)
        .into_iter()
        .map(|tool| {
            let stored = tool.server.plugin.id();
            AvailableTool {
                name: tool.shown.clone(),
                plugin: sessions::local(stored).to_string(),
                source: source_of(stored),
            }
        })
        .collect();
    let mut routes: Vec<AvailableRoute> = state
        .registry
        .route_servers()
        .into_iter()
        .filter_map(|plugin| {
            let stored = plugin.id();
            let base = match sessions::owner(stored) {
                sessions::Owner::Global => format!("/plugins/{stored}"),
                sessions::Owner::Session { session: s, local } if s == auth.id => {
                    format!("/s/{s}/plugins/{local}")
                }
                sessions::Owner::Session { .. } => return None,
            };
            let prefix = plugin
                .admission()
                .grants
                .routes
                .granted()
                .map_or("/", |grant| grant.prefix.as_str());
            Some(AvailableRoute {
                path: format!("{base}{prefix}"),
                plugin: sessions::local(stored).to_string(),
                source: source_of(stored),
            })
        })
        .collect();
    routes.sort_by(|a, b| a.path.cmp(&b.path));
    Json(Available { tools, routes })
}

/// `GET /v1/session/plugins`.
pub async fn list(State(state): State<Arc<AppState>>, auth: SessionAuth) -> Json<Vec<PluginInfo>> {
    Json(state.registry.list_in(&auth.id))
}

/// `GET /v1/session/plugins/{id}`.
pub async fn show(
    State(state): State<Arc<AppState>>,
    auth: SessionAuth,
    Path(id): Path<String>,
) -> Result<Json<PluginInfo>, ApiError> {
    let scoped = scoped(&auth.id, &id)?;
    Ok(Json(state.registry.info(&scoped)?))
}

/// `DELETE /v1/session/plugins/{id}`: removed, and its state purged.
pub async fn remove(
    State(state): State<Arc<AppState>>,
    auth: SessionAuth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let scoped = scoped(&auth.id, &id)?;
    blocking(move || {
        state.registry.remove(&scoped, true)?;
        state.jobs.cancel_plugin(&scoped)?;
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The stored id of `session`'s installed plugin `id`, or a 404.
fn installed(state: &AppState, session: &SessionId, id: &str) -> Result<String, ApiError> {
    let scoped = scoped(session, id)?;
    state.registry.info(&scoped)?;
    Ok(scoped)
}

/// `GET /v1/session/plugins/{id}/config`: its schema, the values set, what it reads.
pub async fn get_config(
    State(state): State<Arc<AppState>>,
    auth: SessionAuth,
    Path(id): Path<String>,
) -> Result<Json<crate::registry::PluginConfig>, ApiError> {
    let scoped = scoped(&auth.id, &id)?;
    blocking(move || Ok(state.registry.config(&scoped)?))
        .await
        .map(Json)
}

/// `PUT /v1/session/plugins/{id}/config` with the whole settings object: checked against
/// the plugin's schema like an operator's write (422 naming the field and the rule).
pub async fn put_config(
    State(state): State<Arc<AppState>>,
    auth: SessionAuth,
    Path(id): Path<String>,
    body: Result<Json<serde_json::Value>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let values = super::admin::json_body(body)?;
    let scoped = scoped(&auth.id, &id)?;
    let changed = blocking(move || Ok(state.registry.set_config(&scoped, &values)?)).await?;
    Ok(Json(serde_json::json!({ "changed": changed })))
}

/// `PUT /v1/session/plugins/{id}/secrets/{name}` with the value as the body (write-only,
/// encrypted at rest; only for a plugin the session holds, so closing it purges them).
pub async fn put_secret(
    State(state): State<Arc<AppState>>,
    auth: SessionAuth,
    Path((id, name)): Path<(String, String)>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let value = super::admin::text_body(body)?;
    blocking(move || {
        let scoped = installed(&state, &auth.id, &id)?;
        super::admin::set_secret(&state, &scoped, &name, &value)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /v1/session/plugins/{id}/secrets/{name}`.
pub async fn delete_secret(
    State(state): State<Arc<AppState>>,
    auth: SessionAuth,
    Path((id, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    blocking(move || {
        let scoped = installed(&state, &auth.id, &id)?;
        super::admin::remove_secret(&state, &scoped, &name)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The stored id of `session`'s plugin `id`, or a 404 for an id no plugin can have.
fn scoped(session: &SessionId, id: &str) -> Result<String, ApiError> {
    crate::manifest::validate_id(id).map_err(|_| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "plugin-not-found",
            format!(
                "no plugin `{}` in this session",
                crate::text::shown_within(id, 64)
            ),
        )
    })?;
    Ok(session.scope(id))
}

/// One part of an upload and what became of it.
#[derive(Serialize)]
pub struct Outcome {
    /// The form part's name (`component` for a bare `.wasm` body).
    pub part: String,
    /// The plugin as installed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loaded: Option<PluginInfo>,
    /// Why it was refused: the same codes as an admin install.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<ErrorBody>,
}

/// The answer to an upload: one outcome per plugin, in the order sent.
#[derive(Serialize)]
pub struct Outcomes {
    pub loaded: usize,
    pub refused: usize,
    pub outcomes: Vec<Outcome>,
}

/// `POST /v1/session/plugins`: a `.wasm` body, or a form with one part per plugin (any
/// name; a part named `<name>.manifest` is the sidecar `capstan.toml` of part `<name>`,
/// and `<name>.sig` its detached signature).
/// Each plugin is installed on its own: 201 when all loaded, 207 when some did, 422 when
/// none did; the body says which and why.
pub async fn install(
    State(state): State<Arc<AppState>>,
    auth: SessionAuth,
    Uploads(uploads): Uploads,
) -> Response {
    let session = match stored_session(&state, auth.id).await {
        Ok(session) => session,
        Err(error) => return error.into_response(),
    };
    let mut outcomes = Vec::new();
    for (part, upload) in uploads {
        let app = state.clone();
        let owner = session.clone();
        let installed = blocking(move || Ok(app.registry.install_in(&owner, &upload)?)).await;
        let outcome = match installed {
            Ok(info) => Outcome {
                part,
                loaded: Some(info),
                refused: None,
            },
            Err(error) => Outcome {
                part,
                loaded: None,
                refused: Some(error.body()),
            },
        };
        outcomes.push(outcome);
    }
    let loaded = outcomes.iter().filter(|o| o.loaded.is_some()).count();
    let refused = outcomes.len() - loaded;
    let status = match (loaded, refused) {
        (_, 0) => StatusCode::CREATED,
        (0, _) => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::MULTI_STATUS,
    };
    (
        status,
        Json(Outcomes {
            loaded,
            refused,
            outcomes,
        }),
    )
        .into_response()
}

/// The plugins of an upload, each with the name of its form part.
pub struct Uploads(Vec<(String, Upload)>);

impl<S: Send + Sync> FromRequest<S> for Uploads {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let mut form = match UploadBody::read(request, state).await? {
            UploadBody::Bare(wasm) => {
                return Ok(Uploads(vec![(
                    "component".to_string(),
                    Upload::component(wasm),
                )]));
            }
            UploadBody::Form(form) => form,
        };
        let mut components: Vec<(String, Vec<u8>)> = Vec::new();
        let mut manifests: Vec<(String, Vec<u8>)> = Vec::new();
        let mut signatures: Vec<(String, Vec<u8>)> = Vec::new();
        while let Some(field) = form
            .next_field()
            .await
            .map_err(|e| upload_rejected(e.status(), e.body_text()))?
        {
            let name = crate::text::cap(field.name().unwrap_or_default(), 64).into_owned();
            let bytes = field
                .bytes()
                .await
                .map_err(|e| upload_rejected(e.status(), e.body_text()))?
                .to_vec();
            let (list, label) = if let Some(label) = name.strip_suffix(".manifest") {
                (&mut manifests, label.to_string())
            } else if let Some(label) = name.strip_suffix(".sig") {
                (&mut signatures, label.to_string())
            } else {
                (&mut components, name)
            };
            if list.iter().any(|(held, _)| *held == label) {
                return Err(upload_rejected(
                    StatusCode::BAD_REQUEST,
                    format!("form part `{}` is sent twice", crate::text::escape(&label)),
                ));
            }
            list.push((label, bytes));
            if components.len() > MAX_PARTS {
                return Err(upload_rejected(
                    StatusCode::BAD_REQUEST,
                    format!("more than {MAX_PARTS} plugins in one request"),
                ));
            }
        }
        for (suffix, sidecars) in [("manifest", &manifests), ("sig", &signatures)] {
            if let Some((orphan, _)) = sidecars
                .iter()
                .find(|(label, _)| !components.iter().any(|(c, _)| c == label))
            {
                return Err(upload_rejected(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "form part `{}.{suffix}` has no part `{0}` to go with",
                        crate::text::escape(orphan)
                    ),
                ));
            }
        }
        if components.is_empty() {
            return Err(upload_rejected(
                StatusCode::BAD_REQUEST,
                "the form has no plugin part".into(),
            ));
        }
        let uploads = components
            .into_iter()
            .map(|(label, wasm)| {
                let sidecar = |list: &[(String, Vec<u8>)]| {
                    list.iter()
                        .find(|(held, _)| *held == label)
                        .map(|(_, bytes)| bytes.clone())
                };
                let upload = Upload {
                    wasm,
                    manifest: sidecar(&manifests),
                    signature: sidecar(&signatures),
                };
                (label, upload)
            })
            .collect();
        Ok(Uploads(uploads))
    }
}

/// `/s/{session}/plugins/{id}` and `/s/{session}/plugins/{id}/` (path `/`).
pub async fn route_root(
    state: State<Arc<AppState>>,
    auth: SessionAuth,
    Path((session, id)): Path<(String, String)>,
    method: Method,
    query: RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    route(
        state,
        auth,
        session,
        id,
        String::new(),
        method,
        query,
        headers,
        body,
    )
    .await
}

/// `/s/{session}/plugins/{id}/{*path}`.
pub async fn route_nested(
    state: State<Arc<AppState>>,
    auth: SessionAuth,
    Path((session, id, path)): Path<(String, String, String)>,
    method: Method,
    query: RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    route(state, auth, session, id, path, method, query, headers, body).await
}

/// A request to session `session`'s plugin `id`: only with that session's own token.
#[allow(clippy::too_many_arguments)]
async fn route(
    State(state): State<Arc<AppState>>,
    auth: SessionAuth,
    session: String,
    id: String,
    path: String,
    method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if auth.id.as_str() != session {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "wrong-session",
            "this token belongs to another session",
        )
        .into_response();
    }
    let answer = match scoped(&auth.id, &id) {
        Ok(scoped) => routes::call(&state, &scoped, path, method, query, headers, body).await,
        Err(error) => Err(error),
    };
    answer.unwrap_or_else(IntoResponse::into_response)
}
