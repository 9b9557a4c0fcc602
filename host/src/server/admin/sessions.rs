//! `/admin/v1/sessions`: create (the token is shown once), list, show, renew and close the
//! sessions clients bring their own plugins in.

use super::{json_body, on_registry};
use crate::audit::{AuditEvent, AuditKind};
use crate::registry::{Ending, PluginInfo};
use crate::server::error::{ApiError, ErrorBody};
use crate::server::{AppState, blocking};
use crate::sessions::{self, NewSession, Session, SessionId, SessionProblem};
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::SystemTime;

/// A session just created, with the token that reaches it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedSession {
    pub session: Session,
    /// The bearer token for `/v1/session/…` and `/s/{id}/plugins/…`; store it now, it is
    /// never shown again.
    pub token: String,
}

/// A session with the plugins it holds.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SessionInfo {
    pub session: Session,
    pub plugins: Vec<PluginInfo>,
}

/// What closing a session removed.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ClosedSession {
    /// The ids of the plugins removed (their state purged).
    pub removed: Vec<String>,
}

/// Body of a renewal.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Renewal {
    /// The new time to live, counted from now, e.g. `30m`.
    pub ttl: String,
}

/// Path naming a session.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SessionPath {
    /// The session's id, as listed.
    #[param(pattern = "^[0-9a-f]{16}$")]
    id: String,
}

fn problem(problem: SessionProblem) -> ApiError {
    match problem {
        SessionProblem::Invalid(what) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-session",
            format!("session refused: {what}"),
        ),
        too_many @ SessionProblem::TooMany { .. } => ApiError::new(
            StatusCode::CONFLICT,
            "too-many-sessions",
            too_many.to_string(),
        ),
    }
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "session-not-found",
        format!("no open session `{}`", crate::text::shown_within(id, 32)),
    )
}

/// The open session `id` names.
async fn open_session(state: &Arc<AppState>, id: &str) -> Result<Session, ApiError> {
    let parsed = SessionId::parse(id).ok_or_else(|| not_found(id))?;
    let app = state.clone();
    let found =
        blocking(move || Ok(app.registry.runtime().services().state.session(&parsed)?)).await?;
    let now = crate::audit::to_millis(SystemTime::now());
    found
        .filter(|session| session.is_open(now))
        .ok_or_else(|| not_found(id))
}

fn record(state: &AppState, detail: String) {
    state
        .registry
        .runtime()
        .services()
        .audit
        .record(AuditEvent::new(
            "-",
            AuditKind::SessionChanged,
            None,
            detail,
        ));
}

/// `POST /admin/v1/sessions`.
#[utoipa::path(post, path = "/admin/v1/sessions", tag = "sessions",
    request_body(content = NewSession, content_type = "application/json"),
    responses(
        (status = 201, description = "Created; the token is in the answer and nowhere else", body = CreatedSession),
        (status = 400, description = "Not JSON, or an unknown field", body = ErrorBody),
        (status = 409, description = "The policy's [sessions] max_sessions are open", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "A field broke its rule (named in the message); nothing stored", body = ErrorBody),
    ))]
pub async fn create_session(
    State(state): State<Arc<AppState>>,
    body: Result<Json<NewSession>, JsonRejection>,
) -> Result<(StatusCode, Json<CreatedSession>), ApiError> {
    let new = json_body(body)?;
    let rules = state.registry.session_rules();
    let session = new.check(SystemTime::now(), &rules).map_err(problem)?;
    let (token, hash) = sessions::new_token();
    let stored = session.clone();
    let app = state.clone();
    blocking(move || {
        let store = &app.registry.runtime().services().state;
        let now = crate::audit::to_millis(SystemTime::now());
        let open = store.sessions()?.iter().filter(|s| s.is_open(now)).count();
        if open >= rules.max_sessions() {
            return Err(problem(SessionProblem::TooMany {
                open,
                limit: rules.max_sessions(),
            }));
        }
        Ok(store.add_session(&stored, &hash)?)
    })
    .await?;
    record(
        &state,
        format!(
            "session `{}` ({}) created, expires at {} ms",
            crate::text::escape(&session.name),
            session.id,
            session.expires_ms
        ),
    );
    Ok((StatusCode::CREATED, Json(CreatedSession { session, token })))
}

/// `GET /admin/v1/sessions`.
#[utoipa::path(get, path = "/admin/v1/sessions", tag = "sessions",
    responses((status = 200, description = "Every open session, oldest first, with its plugins; never a token", body = [SessionInfo])))]
pub async fn list_sessions(
    State(state): State<Arc<AppState>>,
) -> Result<Json<Vec<SessionInfo>>, ApiError> {
    let app = state.clone();
    let stored = blocking(move || Ok(app.registry.runtime().services().state.sessions()?)).await?;
    let now = crate::audit::to_millis(SystemTime::now());
    Ok(Json(
        stored
            .into_iter()
            .filter(|session| session.is_open(now))
            .map(|session| SessionInfo {
                plugins: state.registry.list_in(&session.id),
                session,
            })
            .collect(),
    ))
}

/// `GET /admin/v1/sessions/{id}`.
#[utoipa::path(get, path = "/admin/v1/sessions/{id}", tag = "sessions", params(SessionPath),
    responses(
        (status = 200, description = "The session and its plugins", body = SessionInfo),
        (status = 404, description = "No open session with that id", body = ErrorBody),
    ))]
pub async fn show_session(
    State(state): State<Arc<AppState>>,
    Path(SessionPath { id }): Path<SessionPath>,
) -> Result<Json<SessionInfo>, ApiError> {
    let session = open_session(&state, &id).await?;
    Ok(Json(SessionInfo {
        plugins: state.registry.list_in(&session.id),
        session,
    }))
}

/// `POST /admin/v1/sessions/{id}/renew`.
#[utoipa::path(post, path = "/admin/v1/sessions/{id}/renew", tag = "sessions", params(SessionPath),
    request_body(content = Renewal, content_type = "application/json"),
    responses(
        (status = 200, description = "Renewed: it now expires `ttl` from now", body = Session),
        (status = 400, description = "Not JSON, or an unknown field", body = ErrorBody),
        (status = 404, description = "No open session with that id", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "The ttl is not a duration within the policy's max_ttl", body = ErrorBody),
    ))]
pub async fn renew_session(
    State(state): State<Arc<AppState>>,
    Path(SessionPath { id }): Path<SessionPath>,
    body: Result<Json<Renewal>, JsonRejection>,
) -> Result<Json<Session>, ApiError> {
    let renewal = json_body(body)?;
    let ttl =
        sessions::check_ttl(&renewal.ttl, &state.registry.session_rules()).map_err(problem)?;
    let mut session = open_session(&state, &id).await?;
    let now = crate::audit::to_millis(SystemTime::now());
    session.expires_ms = now.saturating_add(ttl.as_millis() as i64);
    let stored = session.clone();
    let app = state.clone();
    let renewed = blocking(move || {
        Ok(app
            .registry
            .runtime()
            .services()
            .state
            .update_session(&stored)?)
    })
    .await?;
    if !renewed {
        return Err(not_found(&id));
    }
    // Cached token lookups carry the old expiry.
    state.clients.forget();
    record(
        &state,
        format!(
            "session `{}` ({}) renewed until {} ms",
            crate::text::escape(&session.name),
            session.id,
            session.expires_ms
        ),
    );
    Ok(Json(session))
}

/// `DELETE /admin/v1/sessions/{id}`.
#[utoipa::path(delete, path = "/admin/v1/sessions/{id}", tag = "sessions", params(SessionPath),
    responses(
        (status = 200, description = "Closed: its token is revoked, its plugins removed and their state purged", body = ClosedSession),
        (status = 404, description = "No open session with that id", body = ErrorBody),
    ))]
pub async fn close_session(
    State(state): State<Arc<AppState>>,
    Path(SessionPath { id }): Path<SessionPath>,
) -> Result<Json<ClosedSession>, ApiError> {
    let session = open_session(&state, &id).await?;
    let app = state.clone();
    // Its token stops working on this host at once, not when the lookup cache lapses.
    let removed = on_registry(&state, move |registry| {
        registry.close_session(&session, Ending::Closed, &|| app.clients.forget())
    })
    .await?;
    for plugin in &removed {
        super::plugin_changed(&state, plugin.clone()).await?;
    }
    Ok(Json(ClosedSession {
        removed: removed
            .iter()
            .map(|id| sessions::local(id).to_string())
            .collect(),
    }))
}
