//! The MCP server handler: tools only. One instance serves a legacy session (bound to the
//! client that initialised it) or a single 2026 request; shared state lives in [`Hub`].

use super::auth::Authenticated;
use super::{Hub, Visible};
use crate::capability::mcp::McpClient;
use rmcp::model::{
    CacheScope, CallToolRequestParams, CallToolResponse, Implementation, InitializeRequestParams,
    InitializeResult, JsonObject, ListToolsResult, PaginatedRequestParams, ServerCapabilities,
    ServerConfig, SubscriptionFilter, Tool, ToolAnnotations,
};
use rmcp::service::{NotificationContext, RequestContext, SubscriptionContext};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use std::sync::{Arc, OnceLock};

/// Tools per `tools/list` page.
pub const PAGE_SIZE: usize = 100;

/// What `initialize` and `server/discover` tell clients about this server.
const INSTRUCTIONS: &str = "Tools of the plugins installed in this Capstan host, each named \
    `<plugin>__<tool>`. Each tool runs in a fresh sandbox under its plugin's limits.";

/// The handler one session (or one stateless request) gets.
pub struct Gateway {
    hub: Arc<Hub>,
    /// The client that initialised this legacy session; its requests only.
    session_client: OnceLock<String>,
}

impl Gateway {
    pub fn new(hub: Arc<Hub>) -> Gateway {
        Gateway {
            hub,
            session_client: OnceLock::new(),
        }
    }

    /// The client the request's token resolved to (set by the auth layer), refused if the
    /// session belongs to another client.
    fn client(&self, extensions: &rmcp::model::Extensions) -> Result<Arc<McpClient>, ErrorData> {
        let client = extensions
            .get::<axum::http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Authenticated>())
            .map(|Authenticated(client)| client.clone())
            .ok_or_else(|| ErrorData::internal_error("request was not authenticated", None))?;
        match self.session_client.get() {
            Some(owner) if *owner != client.id => Err(ErrorData::invalid_request(
                "this session was opened by another client",
                None,
            )),
            _ => Ok(client),
        }
    }
}

/// The rmcp tool one client sees.
fn describe(visible: &Visible) -> Tool {
    let spec = &visible.tool().spec;
    let schema = match &spec.input_schema {
        serde_json::Value::Object(object) => object.clone(),
        _ => JsonObject::new(),
    };
    let mut tool = Tool::new(
        visible.shown.clone(),
        spec.description.clone(),
        Arc::new(schema),
    );
    let options = &spec.options;
    if let Some(title) = &options.title {
        tool = tool.with_title(title.clone());
    }
    let hinted = options.title.is_some()
        || options.read_only.is_some()
        || options.destructive.is_some()
        || options.idempotent.is_some()
        || options.open_world.is_some();
    if hinted {
        tool = tool.with_annotations(ToolAnnotations::from_raw(
            options.title.clone(),
            options.read_only,
            options.destructive,
            options.idempotent,
            options.open_world,
        ));
    }
    if let Some(serde_json::Value::Object(output)) = &options.output_schema {
        tool = tool.with_raw_output_schema(Arc::new(output.clone()));
    }
    tool
}

/// Opaque cursor: the hex of the last name on the previous page.
fn cursor_after(name: &str) -> String {
    hex::encode(name)
}

fn parse_cursor(cursor: &str) -> Result<String, ErrorData> {
    hex::decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| ErrorData::invalid_params("invalid cursor", None))
}

impl ServerHandler for Gateway {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tool_list_changed()
                .build(),
        )
        .with_server_info(Implementation::new("capstan", env!("CARGO_PKG_VERSION")))
        .with_instructions(INSTRUCTIONS)
    }

    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, ErrorData> {
        let client = self.client(&context.extensions)?;
        let _ = self.session_client.set(client.id.clone());
        context.peer.set_peer_info(request.clone());
        self.negotiate_initialize(&request)
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        if let Ok(client) = self.client(&context.extensions) {
            self.hub
                .subscribers
                .add_session(&self.hub, &client, context.peer.clone());
        }
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        Some(requested.supported_by(&self.get_info().capabilities))
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        let client = self.client(&context.request_context().extensions)?;
        let (key, ended) =
            self.hub
                .subscribers
                .add_stream(&self.hub, &client, context.sink().clone());
        tokio::select! {
            () = context.cancelled() => {}
            () = ended.cancelled() => {}
        }
        self.hub.subscribers.remove(key);
        Ok(())
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let client = self.client(&context.extensions)?;
        let after = request
            .and_then(|params| params.cursor)
            .map(|cursor| parse_cursor(&cursor))
            .transpose()?;
        let visible = self.hub.visible(&client);
        let page: Vec<&Visible> = visible
            .iter()
            .filter(|tool| after.as_ref().is_none_or(|after| tool.shown > *after))
            .take(PAGE_SIZE + 1)
            .collect();
        let more = page.len() > PAGE_SIZE;
        let page = &page[..page.len().min(PAGE_SIZE)];
        Ok(ListToolsResult {
            tools: page.iter().map(|tool| describe(tool)).collect(),
            next_cursor: more
                .then(|| page.last().map(|tool| cursor_after(&tool.shown)))
                .flatten(),
            ..ListToolsResult::default()
        }
        .with_ttl_ms(0)
        .with_cache_scope(CacheScope::Private))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let client = self.client(&context.extensions)?;
        let found = self
            .hub
            .visible(&client)
            .into_iter()
            .find(|tool| tool.shown == request.name);
        let Some(tool) = found else {
            return Err(ErrorData::invalid_params(
                format!(
                    "Unknown tool: {}",
                    crate::text::shown_within(&request.name, 128)
                ),
                None,
            ));
        };
        let arguments = serde_json::Value::Object(request.arguments.unwrap_or_default());
        Ok(super::call::run(&self.hub, &client, &tool, arguments)
            .await
            .into())
    }
}
