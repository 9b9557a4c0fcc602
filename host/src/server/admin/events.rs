//! `/admin/v1/events` and `/admin/v1/deliveries`: publish an event from outside, list
//! recent events and delivery states, and replay a dead letter.

use super::ApiQuery;
use crate::audit::{AuditEvent, AuditKind};
use crate::capability::CapabilityId;
use crate::capability::events::publishers::{self, NewPublisher, Publisher};
use crate::capability::events::store::{NewEvent, Replay};
use crate::capability::events::{
    DEFAULT_RETENTION, DEFAULT_RETENTION_COUNT, DeliveryQuery, DeliveryRecord, DeliveryState,
    EventQuery, EventRecord, MAX_PAYLOAD_CEILING, Topic,
};
use crate::server::error::{ApiError, ErrorBody};
use crate::server::{AppState, blocking};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use base64::Engine;
use serde::Deserialize;
use std::sync::Arc;
use std::time::SystemTime;

/// Rows a list returns unless it asks for another number.
const DEFAULT_LIMIT: u32 = 100;
/// How long publishing from outside may take.
const PUBLISH_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);
/// The source of events the admin API publishes.
pub const ADMIN_SOURCE: &str = "capstan:admin";

/// An event to publish: `payload` (any JSON, published as `application/json`) or
/// `data_base64` (bytes, with `content_type`).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishRequest {
    /// Dot-separated segments of `[a-z0-9_-]`; not under `capstan.`.
    pub topic: String,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub payload: Option<serde_json::Value>,
    /// The payload's bytes, base64-encoded (standard alphabet, padded).
    #[serde(default)]
    pub data_base64: Option<String>,
    /// How to read the payload (default `application/json` for `payload`,
    /// `application/octet-stream` for `data_base64`).
    #[serde(default)]
    pub content_type: Option<String>,
}

/// Filter of an event query.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventFilter {
    /// Only events on this topic.
    pub topic: Option<String>,
    /// Only events from this source (a plugin id, `capstan` or `capstan:admin`).
    pub source: Option<String>,
    /// Most events returned, newest first (default 100, at most 10000).
    pub limit: Option<u32>,
}

/// Filter of a delivery query.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryFilter {
    /// Only deliveries to this plugin.
    pub plugin: Option<String>,
    /// Only deliveries in this state.
    pub state: Option<DeliveryState>,
    /// Only deliveries of this event.
    pub event: Option<String>,
    /// Most deliveries returned, newest event first (default 100, at most 10000).
    pub limit: Option<u32>,
}

/// Path naming a delivery.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct DeliveryId {
    /// The delivery's id, as listed.
    #[param(pattern = "^[0-9a-f]{16}$")]
    id: String,
}

fn invalid(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
}

fn limit(limit: Option<u32>) -> u32 {
    limit
        .unwrap_or(DEFAULT_LIMIT)
        .clamp(1, crate::audit::MAX_QUERY_ROWS)
}

/// The topic, content type and bytes `request` publishes, or why not.
pub(crate) fn checked(request: PublishRequest) -> Result<(Topic, String, Vec<u8>), ApiError> {
    let topic =
        Topic::parse(&request.topic).map_err(|problem| invalid("invalid-topic", problem))?;
    if topic.is_reserved() {
        return Err(invalid(
            "reserved-topic",
            format!("`{topic}`: topics under `capstan.` are the host's own"),
        ));
    }
    let (bytes, default_type) = match (request.payload, request.data_base64) {
        (Some(value), None) => (value.to_string().into_bytes(), "application/json"),
        (None, Some(data)) => (
            base64::engine::general_purpose::STANDARD
                .decode(data.as_bytes())
                .map_err(|e| invalid("invalid-payload", format!("`data_base64`: {e}")))?,
            crate::capability::events::DEFAULT_CONTENT_TYPE,
        ),
        _ => {
            return Err(invalid(
                "invalid-payload",
                "give exactly one of `payload` (JSON) and `data_base64`",
            ));
        }
    };
    if bytes.len() > MAX_PAYLOAD_CEILING as usize {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            format!(
                "payload of {} bytes is over {MAX_PAYLOAD_CEILING} bytes",
                bytes.len()
            ),
        ));
    }
    let content_type = request.content_type.as_deref().unwrap_or(default_type);
    let content_type = crate::capability::events::content_type(content_type)
        .map_err(|problem| invalid("invalid-content-type", problem))?
        .to_string();
    Ok((topic, content_type, bytes))
}

/// Publish `request`'s event as `source`, audited.
pub(crate) async fn publish_as(
    state: &Arc<AppState>,
    source: String,
    request: PublishRequest,
) -> Result<EventRecord, ApiError> {
    let (topic, content_type, payload) = checked(request)?;
    let app = state.clone();
    let record = blocking(move || {
        let event = NewEvent {
            topic: &topic,
            source: &source,
            content_type: &content_type,
            payload: &payload,
            retention: DEFAULT_RETENTION,
            retention_count: DEFAULT_RETENTION_COUNT,
        };
        let deadline = crate::capability::Deadline::after(PUBLISH_DEADLINE);
        Ok(app
            .registry
            .runtime()
            .services()
            .events
            .publish(&event, deadline)?)
    })
    .await?;
    audit(
        state,
        "-",
        AuditKind::EventControl,
        format!(
            "{} published event {} on {}",
            record.source, record.id, record.topic
        ),
    );
    Ok(record)
}

/// `POST /admin/v1/events`.
#[utoipa::path(post, path = "/admin/v1/events", tag = "events",
    request_body(content = PublishRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Published: every plugin subscribed to the topic receives it", body = EventRecord),
        (status = 400, description = "Not JSON, or an unknown field", body = ErrorBody),
        (status = 403, description = "A publish token whose topics do not include this one", body = ErrorBody),
        (status = 413, description = "Payload over 1 MiB", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Invalid or reserved topic, payload or content type (named); nothing published", body = ErrorBody),
    ))]
pub async fn publish_event(
    State(state): State<Arc<AppState>>,
    publisher: Option<Extension<Publisher>>,
    body: Result<Json<PublishRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<EventRecord>), ApiError> {
    let request = super::json_body(body)?;
    let source = match publisher {
        None => ADMIN_SOURCE.to_string(),
        Some(Extension(publisher)) => {
            let topic = Topic::parse(&request.topic)
                .map_err(|problem| invalid("invalid-topic", problem))?;
            if !publisher.may_publish(&topic, crate::audit::to_millis(SystemTime::now())) {
                audit(
                    &state,
                    "-",
                    AuditKind::Denied,
                    format!(
                        "publisher {} refused on topic {topic}, outside its scope",
                        publisher.id
                    ),
                );
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "topic-not-granted",
                    format!("this publish token may not publish on `{topic}`"),
                ));
            }
            publisher.source()
        }
    };
    let record = publish_as(&state, source, request).await?;
    Ok((StatusCode::CREATED, Json(record)))
}

/// A publisher just created, with its token (shown this once).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct CreatedPublisher {
    pub publisher: Publisher,
    /// The bearer token for `POST /admin/v1/events`; store it now, it is never shown again.
    pub token: String,
}

/// Path naming a publisher.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct PublisherId {
    /// The publisher's id, as listed.
    #[param(pattern = "^[0-9a-f]{16}$")]
    id: String,
}

/// `POST /admin/v1/events/publishers`.
#[utoipa::path(post, path = "/admin/v1/events/publishers", tag = "events",
    request_body(content = NewPublisher, content_type = "application/json"),
    responses(
        (status = 201, description = "Created; the token is in the answer and nowhere else", body = CreatedPublisher),
        (status = 400, description = "Not JSON, or an unknown field", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "A field broke its rule (named in the message); nothing stored", body = ErrorBody),
    ))]
pub async fn create_publisher(
    State(state): State<Arc<AppState>>,
    body: Result<Json<NewPublisher>, JsonRejection>,
) -> Result<(StatusCode, Json<CreatedPublisher>), ApiError> {
    let new = super::json_body(body)?;
    let publisher = new
        .check(SystemTime::now())
        .map_err(|problem| invalid("invalid-publisher", format!("publisher refused: {problem}")))?;
    let (token, hash) = publishers::new_token();
    let stored = publisher.clone();
    let app = state.clone();
    blocking(move || {
        Ok(app
            .registry
            .runtime()
            .services()
            .state
            .add_publisher(&stored, &hash)?)
    })
    .await?;
    let topics: Vec<String> = publisher.topics.iter().map(ToString::to_string).collect();
    audit(
        &state,
        "-",
        AuditKind::EventControl,
        format!(
            "publisher {} ({}) created for topics [{}]",
            publisher.id,
            crate::text::escape(&publisher.name),
            topics.join(", ")
        ),
    );
    Ok((
        StatusCode::CREATED,
        Json(CreatedPublisher { publisher, token }),
    ))
}

/// `GET /admin/v1/events/publishers`.
#[utoipa::path(get, path = "/admin/v1/events/publishers", tag = "events",
    responses((status = 200, description = "Every publisher, oldest first, without tokens", body = [Publisher])))]
pub async fn list_publishers(
    State(state): State<Arc<AppState>>,
) -> Result<Json<Vec<Publisher>>, ApiError> {
    blocking(move || {
        Ok(Json(
            state.registry.runtime().services().state.publishers()?,
        ))
    })
    .await
}

/// `DELETE /admin/v1/events/publishers/{id}`.
#[utoipa::path(delete, path = "/admin/v1/events/publishers/{id}", tag = "events", params(PublisherId),
    responses(
        (status = 204, description = "Revoked: its token stops working on every host"),
        (status = 404, description = "No such publisher", body = ErrorBody),
    ))]
pub async fn revoke_publisher(
    State(state): State<Arc<AppState>>,
    Path(PublisherId { id }): Path<PublisherId>,
) -> Result<StatusCode, ApiError> {
    let app = state.clone();
    let target = id.clone();
    let removed = blocking(move || {
        Ok(app
            .registry
            .runtime()
            .services()
            .state
            .remove_publisher(&target)?)
    })
    .await?;
    if !removed {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "publisher-not-found",
            format!("no publisher `{}`", crate::text::cap(&id, 64)),
        ));
    }
    audit(
        &state,
        "-",
        AuditKind::EventControl,
        format!("publisher {id} revoked"),
    );
    Ok(StatusCode::NO_CONTENT)
}

fn audit(state: &AppState, plugin: &str, kind: AuditKind, detail: String) {
    state
        .registry
        .runtime()
        .services()
        .audit
        .record(AuditEvent::new(
            plugin,
            kind,
            Some(CapabilityId::Events),
            detail,
        ));
}

/// `GET /admin/v1/events`.
#[utoipa::path(get, path = "/admin/v1/events", tag = "events", params(EventFilter),
    responses(
        (status = 200, description = "Recent events, newest first (payloads are not listed)", body = [EventRecord]),
        (status = 400, description = "Invalid filter", body = ErrorBody),
    ))]
pub async fn list_events(
    State(state): State<Arc<AppState>>,
    ApiQuery(filter): ApiQuery<EventFilter>,
) -> Result<Json<Vec<EventRecord>>, ApiError> {
    let query = EventQuery {
        topic: filter.topic,
        source: filter.source,
        limit: limit(filter.limit),
    };
    blocking(move || {
        Ok(Json(
            state
                .registry
                .runtime()
                .services()
                .events
                .store()
                .events(&query)?,
        ))
    })
    .await
}

/// `GET /admin/v1/deliveries`.
#[utoipa::path(get, path = "/admin/v1/deliveries", tag = "events", params(DeliveryFilter),
    responses(
        (status = 200, description = "Deliveries, newest event first", body = [DeliveryRecord]),
        (status = 400, description = "Invalid filter", body = ErrorBody),
    ))]
pub async fn list_deliveries(
    State(state): State<Arc<AppState>>,
    ApiQuery(filter): ApiQuery<DeliveryFilter>,
) -> Result<Json<Vec<DeliveryRecord>>, ApiError> {
    let query = DeliveryQuery {
        plugin: filter.plugin,
        state: filter.state,
        event_id: filter.event,
        limit: limit(filter.limit),
    };
    blocking(move || {
        Ok(Json(
            state
                .registry
                .runtime()
                .services()
                .events
                .store()
                .deliveries(&query)?,
        ))
    })
    .await
}

/// `POST /admin/v1/deliveries/{id}/retry`.
#[utoipa::path(post, path = "/admin/v1/deliveries/{id}/retry", tag = "events", params(DeliveryId),
    responses(
        (status = 200, description = "The dead letter is pending again, with a fresh attempt count", body = DeliveryRecord),
        (status = 404, description = "No such delivery", body = ErrorBody),
        (status = 409, description = "The delivery is not a dead letter", body = ErrorBody),
    ))]
pub async fn retry_delivery(
    State(state): State<Arc<AppState>>,
    Path(DeliveryId { id }): Path<DeliveryId>,
) -> Result<Json<DeliveryRecord>, ApiError> {
    let app = state.clone();
    let target = id.clone();
    let replay = blocking(move || {
        Ok(app
            .registry
            .runtime()
            .services()
            .events
            .store()
            .replay(&target)?)
    })
    .await?;
    match replay {
        Replay::Replayed(record) => {
            audit(
                &state,
                &record.plugin,
                AuditKind::EventControl,
                format!(
                    "dead letter {} (event {}) replayed by an operator",
                    record.id, record.event_id
                ),
            );
            state.registry.runtime().services().events.ready.raise();
            Ok(Json(record))
        }
        Replay::NotDead(record) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "not-dead-letter",
            format!(
                "delivery `{}` is {}, not a dead letter",
                record.id,
                record.state.as_str()
            ),
        )),
        Replay::Missing => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "delivery-not-found",
            format!("no delivery `{}`", crate::text::cap(&id, 64)),
        )),
    }
}
