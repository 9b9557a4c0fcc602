//! `/mcp`: the MCP gateway. Every enabled plugin whose `mcp` export is granted contributes
//! its checked tools, named `<plugin>__<tool>`, to clients whose token's scope includes
//! them. Served over Streamable HTTP by `rmcp` in both protocol generations: the stateless
//! 2026-07-28 revision (tool-list changes on `subscriptions/listen`) and 2025-11-25 and
//! older (initialize, sessions, a GET stream for notifications).
//!
//! Clients are made only by operators (admin API or CLI); nothing a client can call
//! touches grants, tokens or the policy.

mod auth;
mod call;
pub mod clients;
mod gateway;
mod notify;

pub use clients::ClientDirectory;

use super::AppState;
use crate::capability::mcp::{LiveTool, McpClient};
use crate::registry::ToolServer;
use axum::Router;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// Largest `/mcp` request body.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// How long a legacy session may stay idle (no request, no notification) before it ends.
const SESSION_IDLE: Duration = Duration::from_secs(3600);

/// How the operator set up `/mcp`.
#[derive(Debug, Clone, Default)]
pub struct McpSettings {
    /// `Host` values accepted (besides the loopback names); DNS-rebinding protection.
    pub allowed_hosts: Vec<String>,
    /// Browser `Origin`s accepted (besides this listener's own loopback origins); a
    /// request from any other origin is refused (403).
    pub allowed_origins: Vec<String>,
    /// Serve requests without a token as this client (for a conformance suite on a
    /// loopback listener; `capstan serve` refuses it on any other address).
    pub anonymous_client: Option<String>,
}

/// The `Host` names always accepted.
const LOOPBACK_HOSTS: &[&str] = &["localhost", "127.0.0.1", "::1", "[::1]"];

impl McpSettings {
    /// Also accept the loopback origins of a listener on `address` (a page or client on
    /// this machine talking to its own host), whatever the operator listed.
    pub fn with_own_origins(mut self, address: std::net::SocketAddr) -> McpSettings {
        let port = address.port();
        self.allowed_origins.extend(
            ["localhost", "127.0.0.1", "[::1]"]
                .iter()
                .map(|host| format!("http://{host}:{port}")),
        );
        self
    }
}

/// What the gateway's handlers share.
pub struct Hub {
    app: Arc<AppState>,
    settings: McpSettings,
    subscribers: notify::Subscribers,
}

/// One tool as one client sees it.
#[derive(Clone)]
pub struct Visible {
    /// The name this client uses (`<plugin>__<tool>`, or the bare name).
    pub shown: String,
    pub server: ToolServer,
    index: usize,
}

impl Visible {
    /// The tool itself.
    pub fn tool(&self) -> &LiveTool {
        &self.server.tools.tools[self.index]
    }
}

impl Hub {
    fn clients(&self) -> &ClientDirectory {
        &self.app.clients
    }

    /// The tools `client` sees (see [`visible`]).
    pub fn visible(&self, client: &McpClient) -> Vec<Visible> {
        visible(&self.app.registry, client)
    }
}

/// The tools `client` sees, in name order: granted by the policy, each name once. A
/// session's client sees its session's own tools first (they keep a name a global tool
/// also has), then the global tools in its scope; otherwise, should two hosts have let two
/// plugins claim one name, the plugin that sorts first keeps it.
pub fn visible(registry: &crate::registry::Registry, client: &McpClient) -> Vec<Visible> {
    let own = client
        .session
        .as_ref()
        .map(|session| registry.tool_servers_in(session))
        .unwrap_or_default()
        .into_iter()
        .map(|server| (server, true));
    let global = registry
        .tool_servers()
        .into_iter()
        .map(|server| (server, false));
    let mut taken = BTreeSet::new();
    let mut tools = Vec::new();
    for (server, own) in own.chain(global) {
        for (index, tool) in server.tools.tools.iter().enumerate() {
            let in_scope = own || client.admits(server.plugin.id(), &tool.exposed);
            if !server.plugin.exposes(&tool.spec.name) || !in_scope {
                continue;
            }
            let shown = if client.bare_names {
                tool.spec.name.clone()
            } else {
                tool.exposed.clone()
            };
            if taken.insert(shown.clone()) {
                tools.push(Visible {
                    shown,
                    server: server.clone(),
                    index,
                });
            }
        }
    }
    tools.sort_by(|a, b| a.shown.cmp(&b.shown));
    tools
}

/// The `/mcp` route with its authentication layer, and the task that tells connected
/// clients when their tool list changes.
pub fn routes(app: Arc<AppState>, settings: McpSettings) -> Router<Arc<AppState>> {
    let hub = Arc::new(Hub {
        app: app.clone(),
        settings,
        subscribers: notify::Subscribers::default(),
    });
    notify::spawn(hub.clone(), app.registry.watch_changes());
    let allowed_hosts: Vec<String> = LOOPBACK_HOSTS
        .iter()
        .map(|host| host.to_string())
        .chain(hub.settings.allowed_hosts.iter().cloned())
        .collect();
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(allowed_hosts)
        .with_allowed_origins(hub.settings.allowed_origins.clone())
        .enforce_origin_validation()
        .with_max_request_body_bytes(MAX_BODY_BYTES)
        // A request answered in one message gets plain JSON, not a one-event stream.
        .with_json_response(true)
        .with_cancellation_token(app.shutdown.child_token());
    let mut sessions = LocalSessionManager::default();
    sessions.session_config.keep_alive = Some(SESSION_IDLE);
    let factory_hub = hub.clone();
    let service = StreamableHttpService::new(
        move || Ok(gateway::Gateway::new(factory_hub.clone())),
        Arc::new(sessions),
        config,
    );
    Router::new()
        .route_service("/mcp", service)
        .layer(axum::middleware::from_fn(accept_bare_notifications))
        .layer(axum::middleware::from_fn_with_state(
            hub,
            auth::authenticate,
        ))
}

/// A 2026-07-28 notification POSTed without `Mcp-Method` (the revision leaves the headers
/// of notification POSTs undefined, and some clients send `notifications/cancelled` that
/// way) is accepted with 202 and dropped, as a stateless server drops every notification;
/// any other request goes on unchanged.
async fn accept_bare_notifications(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let headers = request.headers();
    let modern = headers
        .get("mcp-protocol-version")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|version| version >= "2026-07-28");
    if request.method() != axum::http::Method::POST || !modern || headers.contains_key("mcp-method")
    {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return axum::http::StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let notification = serde_json::from_slice::<serde_json::Value>(&bytes).is_ok_and(|message| {
        message.get("id").is_none()
            && message
                .get("method")
                .and_then(serde_json::Value::as_str)
                .is_some_and(|method| method.starts_with("notifications/"))
    });
    if notification {
        return axum::http::StatusCode::ACCEPTED.into_response();
    }
    next.run(axum::extract::Request::from_parts(
        parts,
        axum::body::Body::from(bytes),
    ))
    .await
}
