//! `capstan mcp`: manage MCP clients on a running server, and `capstan mcp stdio`, a bridge
//! for MCP clients that only launch stdio servers (Claude Desktop-style configs): it serves
//! MCP on stdin/stdout and forwards every request to a server's `/mcp` with a client token.

use super::client::{ApiFailure, Client, Remote};
use reqwest::Method;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, ListToolsResult, PaginatedRequestParams,
    ServerCapabilities, ServerConfig, SubscriptionFilter,
};
use rmcp::service::{
    NotificationContext, RequestContext, ServiceError, SubscriptionContext, SubscriptionSink,
};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, ErrorData, Peer, RoleClient, RoleServer, ServerHandler, ServiceExt};
use serde_json::Value;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, OnceLock};

/// Environment variable holding the client token for `capstan mcp stdio` (never an
/// argument, which other users could read from the process list).
pub const TOKEN_ENV: &str = "CAPSTAN_MCP_TOKEN";

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Manage MCP clients and their tokens.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Serve MCP on stdin/stdout, forwarding to a server's /mcp with the client token in
    /// CAPSTAN_MCP_TOKEN.
    Stdio {
        /// Base URL of the server.
        #[arg(long, env = "CAPSTAN_SERVER", default_value = "http://127.0.0.1:7878")]
        server: String,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum ClientCommand {
    /// Create a client; prints its token once.
    Add {
        /// What the client is (an agent, a task).
        name: String,
        /// A plugin whose tools it sees (`*` for all). Repeatable; at least one.
        #[arg(long = "plugin", required = true)]
        plugins: Vec<String>,
        /// Narrow it to this tool (`<plugin>__<tool>`). Repeatable.
        #[arg(long = "tool")]
        tools: Vec<String>,
        /// List tools without the `<plugin>__` prefix (one plugin only).
        #[arg(long)]
        bare_names: bool,
        /// Lifetime of the token, e.g. `30m`, `12h`, `90d`.
        #[arg(long)]
        expires_in: Option<String>,
        /// Requests per minute it may make to one host.
        #[arg(long)]
        rate_per_minute: Option<u32>,
        #[command(flatten)]
        remote: Remote,
    },
    /// List clients (never their tokens).
    List {
        #[command(flatten)]
        remote: Remote,
    },
    /// Revoke a client: its token stops working.
    Rm {
        id: String,
        #[command(flatten)]
        remote: Remote,
    },
}

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Client(command) => client(command),
        Command::Stdio { server } => stdio(&server),
    }
}

fn client(command: ClientCommand) -> anyhow::Result<ExitCode> {
    match command {
        ClientCommand::Add {
            name,
            plugins,
            tools,
            bare_names,
            expires_in,
            rate_per_minute,
            remote,
        } => {
            let api = Client::new(&remote)?;
            let body = serde_json::json!({
                "name": name,
                "plugins": plugins,
                "tools": (!tools.is_empty()).then_some(tools),
                "bare_names": bare_names,
                "expires_in": expires_in,
                "rate_per_minute": rate_per_minute,
            });
            let created: Value =
                match api.fetch(api.request(Method::POST, "/mcp/clients").json(&body)) {
                    Ok(created) => created,
                    Err(error) => return refused(error),
                };
            if !api.json {
                println!("client {}", created["client"]["id"].as_str().unwrap_or("-"));
                println!("token (shown once; give it to the client as `Authorization: Bearer …`):");
                println!("{}", created["token"].as_str().unwrap_or("-"));
            }
        }
        ClientCommand::List { remote } => {
            let api = Client::new(&remote)?;
            let clients: Vec<Value> = api.fetch(api.request(Method::GET, "/mcp/clients"))?;
            if !api.json {
                for client in &clients {
                    print_client(client);
                }
            }
        }
        ClientCommand::Rm { id, remote } => {
            let api = Client::new(&remote)?;
            api.send(api.request(Method::DELETE, &format!("/mcp/clients/{id}")))?;
            println!("revoked {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A refused request exits 2 with the API's message; anything else is an error.
fn refused(error: anyhow::Error) -> anyhow::Result<ExitCode> {
    match error.downcast_ref::<ApiFailure>() {
        Some(failure) if failure.status == 422 => {
            eprintln!("refused ({}): {}", failure.code, failure.message);
            Ok(ExitCode::from(2))
        }
        _ => Err(error),
    }
}

fn print_client(client: &Value) {
    let text = |key: &str| client[key].as_str().unwrap_or("-").to_string();
    let list = |key: &str| {
        client[key]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_else(|| "-".into())
    };
    let expires = client["expires_ms"]
        .as_i64()
        .map(super::records::rfc3339)
        .unwrap_or_else(|| "never".into());
    println!(
        "{}  {:<24} plugins={} tools={} expires={}",
        text("id"),
        crate::text::escape(&text("name")),
        list("plugins"),
        list("tools"),
        expires
    );
}

/// Maps an upstream failure onto the error the stdio client sees.
fn upstream(error: ServiceError) -> ErrorData {
    match error {
        ServiceError::McpError(error) => error,
        other => ErrorData::internal_error(format!("the Capstan server failed: {other}"), None),
    }
}

/// Where a list change heard upstream goes: the stdio client's session, or its 2026
/// listen streams.
#[derive(Default)]
struct Downstream {
    session: OnceLock<Peer<RoleServer>>,
    streams: Mutex<Vec<SubscriptionSink>>,
}

impl Downstream {
    async fn tool_list_changed(&self) {
        if let Some(peer) = self.session.get() {
            let _ = peer.notify_tool_list_changed().await;
        }
        let streams = self
            .streams
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for sink in streams {
            let _ = sink.notify_tool_list_changed().await;
        }
    }
}

/// The upstream side: a client of the server's `/mcp`.
struct Upstream {
    down: Arc<Downstream>,
}

impl ClientHandler for Upstream {
    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.down.tool_list_changed().await;
    }
}

/// The downstream side: an MCP server on stdio answering from upstream.
struct Bridge {
    up: Peer<RoleClient>,
    down: Arc<Downstream>,
}

impl ServerHandler for Bridge {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tool_list_changed()
                .build(),
        )
        .with_server_info(rmcp::model::Implementation::new(
            "capstan-stdio",
            env!("CARGO_PKG_VERSION"),
        ))
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        let _ = self.down.session.set(context.peer.clone());
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        Some(requested.supported_by(&self.get_info().capabilities))
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        self.down
            .streams
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(context.sink().clone());
        context.cancelled().await;
        let id = context.sink().id().clone();
        self.down
            .streams
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|sink| *sink.id() != id);
        Ok(())
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        self.up.list_tools(request).await.map_err(upstream)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        self.up.call_tool_once(request).await.map_err(upstream)
    }
}

/// `capstan mcp stdio`: connect upstream, then serve stdin/stdout until either side ends.
fn stdio(server: &str) -> anyhow::Result<ExitCode> {
    let token = std::env::var(TOKEN_ENV).map_err(|_| {
        anyhow::anyhow!("set {TOKEN_ENV} to an MCP client token (capstan mcp client add)")
    })?;
    // reqwest 0.13 (rmcp's transport) uses rustls with whichever provider is installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let url = format!("{}/mcp", server.trim_end_matches('/'));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let down = Arc::new(Downstream::default());
        let transport = StreamableHttpClientTransport::from_config(
            StreamableHttpClientTransportConfig::with_uri(url.clone()).auth_header(token.trim()),
        );
        let up = Upstream { down: down.clone() }
            .serve(transport)
            .await
            .map_err(|e| anyhow::anyhow!("cannot open an MCP session with {url}: {e}"))?;
        let bridge = Bridge {
            up: up.peer().clone(),
            down: down.clone(),
        }
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| anyhow::anyhow!("the stdio client did not start an MCP session: {e}"))?;
        let _ = down.session.set(bridge.peer().clone());
        bridge.waiting().await?;
        up.cancel().await?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
