//! `capstan serve`: run the host.

use super::state::DataDir;
use crate::metrics::{CountingAudit, Metrics};
use crate::policy::Policy;
use crate::registry::Registry;
use crate::runtime::{CacheStats, CompileBudget, Compiler, Runtime};
use crate::server::{self, AppState};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Directory inside the data directory holding compiled components.
const CACHE_DIR: &str = "cache";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:7878")]
    listen: SocketAddr,
    #[command(flatten)]
    data: DataDir,
    /// Keep plugins, kv, secrets, audit and logs in PostgreSQL (`postgres://…`) instead of
    /// SQLite in the data directory; hosts sharing one database see each other's changes.
    #[arg(long, env = "CAPSTAN_DATABASE_URL", value_name = "URL")]
    database_url: Option<String>,
    /// PostgreSQL schema for Capstan's tables (created if missing), so one database can
    /// hold several independent Capstan clusters or other applications' tables.
    #[arg(
        long,
        env = "CAPSTAN_DATABASE_SCHEMA",
        value_name = "NAME",
        requires = "database_url"
    )]
    database_schema: Option<String>,
    /// Keep events in NATS JetStream (`nats://host:4222[/namespace]`) instead of the state
    /// database, for clusters whose event traffic outgrows it.
    #[arg(long, env = "CAPSTAN_EVENTS_URL", value_name = "URL")]
    events_url: Option<String>,
    /// Policy to start with when the data directory has none yet (afterwards the stored
    /// policy, changed through the admin API, wins); without either nothing is granted.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// On SIGTERM/SIGINT, how long in-flight requests may take to finish before exiting.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    drain_seconds: u64,
    /// Plugin calls running at once across all plugins (shared fairly; at most the
    /// engine's instance pool).
    #[arg(long, default_value_t = crate::engine::POOL_COMPONENT_INSTANCES as usize)]
    max_concurrent_calls: usize,
    /// Longest a component may take to compile before its install is refused
    /// (`compile-budget`); compiling runs in a child process killed at this budget.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    compile_timeout_secs: u64,
    /// Most memory (address space) the compile child may use.
    #[arg(long, value_name = "MIB", default_value_t = 4096)]
    compile_memory_mib: u32,
    /// Largest plugin upload accepted, in bytes.
    #[arg(long, default_value_t = crate::gate::DEFAULT_MAX_COMPONENT_BYTES)]
    max_upload_bytes: usize,
    /// A `Host` (name or name:port) `/mcp` accepts besides the loopback names: needed when
    /// clients reach this host by another name (DNS-rebinding protection). Repeatable.
    #[arg(long = "mcp-allowed-host", value_name = "HOST")]
    mcp_allowed_hosts: Vec<String>,
    /// A browser `Origin` (e.g. `https://app.example.com`) allowed to call `/mcp` besides
    /// this listener's own loopback origins; requests from any other origin are refused.
    /// Repeatable.
    #[arg(long = "mcp-allowed-origin", value_name = "ORIGIN")]
    mcp_allowed_origins: Vec<String>,
    /// Serve `/mcp` requests that carry no token as this MCP client (its id), for running
    /// a conformance suite that cannot send a token. Only on a loopback `--listen`.
    #[arg(long, value_name = "CLIENT_ID")]
    mcp_anonymous_client: Option<String>,
    /// Install every `NAME.wasm` in this directory at start and whenever it changes (with
    /// `NAME.toml` as its sidecar manifest and `NAME.wasm.sig` as its detached signature),
    /// under the same checks as an upload; refusals show in `/readyz`.
    #[arg(long, env = "CAPSTAN_PLUGINS_DIR", value_name = "DIR")]
    plugins_dir: Option<PathBuf>,
    /// With --plugins-dir: removing a file removes the plugin it installed (its data is
    /// kept). Without it, removing a file leaves the plugin installed.
    #[arg(long, requires = "plugins_dir")]
    plugins_dir_prune: bool,
}

impl Args {
    /// The PostgreSQL URL and schema, when serving from PostgreSQL.
    fn database(&self) -> Option<(&str, Option<&str>)> {
        self.database_url
            .as_deref()
            .map(|url| (url, self.database_schema.as_deref()))
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.mcp_anonymous_client.is_none() || args.listen.ip().is_loopback(),
        "--mcp-anonymous-client serves requests without a token; it is refused on {}, \
         which is not a loopback address",
        args.listen
    );
    let seed = match &args.policy {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("cannot read policy {}: {e}", path.display()))?;
            Policy::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            text
        }
        None => String::new(),
    };
    let (mut services, store) = super::state::open_with_store(
        &args.data.path,
        args.database(),
        args.events_url.as_deref(),
    )?;
    let token_hash = server::auth::load_or_create(store.as_ref(), &args.data.path)?;
    let cache = CacheStats::default();
    let metrics = Arc::new(Metrics::new(&cache));
    services.audit = Arc::new(CountingAudit::new(services.audit, metrics.clone()));
    let compiler = Compiler::Child {
        exe: std::env::current_exe()?,
        budget: CompileBudget {
            time: std::time::Duration::from_secs(args.compile_timeout_secs),
            memory_mib: args.compile_memory_mib,
        },
    };
    let runtime = Runtime::with_cache(services, &args.data.path.join(CACHE_DIR), cache)?
        .compiling_with(compiler);
    let jobs: Arc<dyn crate::capability::jobs::JobStore> = store.clone();
    let plugins_dir = args
        .plugins_dir
        .clone()
        .map(|dir| {
            server::plugins_dir::PluginsDir::new(dir, args.plugins_dir_prune, args.max_upload_bytes)
        })
        .transpose()?;
    let registry = Registry::open(runtime, store, &seed)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime
        .block_on(async {
            let listener = tokio::net::TcpListener::bind(args.listen).await?;
            let address = listener.local_addr()?;
            let shutdown = tokio_util::sync::CancellationToken::new();
            let state = Arc::new(AppState {
                clients: server::ClientDirectory::new(registry.runtime().services().state.clone()),
                registry,
                token_hash,
                metrics,
                slots: crate::slots::Slots::new(
                    args.max_concurrent_calls
                        .min(crate::engine::POOL_COMPONENT_INSTANCES as usize),
                ),
                shutdown: shutdown.clone(),
                jobs,
                host_id: format!("{}-{}", std::process::id(), crate::secrets::random_hex(4)),
                plugins_dir: plugins_dir.clone(),
            });
            crate::scheduler::Scheduler::start(state.clone())?;
            let metrics = state.metrics.clone();
            state
                .registry
                .runtime()
                .services()
                .events
                .observe(Box::new(move |plugin, topic| {
                    metrics.observe_published(plugin, topic)
                }));
            let deliverer = crate::deliverer::Deliverer::start(state.clone())?;
            let mcp = server::McpSettings {
                allowed_hosts: args.mcp_allowed_hosts.clone(),
                allowed_origins: args.mcp_allowed_origins.clone(),
                anonymous_client: args.mcp_anonymous_client.clone(),
            }
            .with_own_origins(address);
            server::follow_other_hosts(state.clone());
            server::sweep_sessions(state.clone());
            server::prune_records(state.clone());
            if let Some(dir) = plugins_dir {
                server::plugins_dir::watch(state.clone(), dir)
                    .await
                    .map_err(|e| anyhow::anyhow!("the plugins directory: {e}"))?;
            }
            let events = state.registry.runtime().services().events.store().backend();
            tracing::info!(events, "listening on http://{address}");
            println!("listening on http://{address}");
            let drain = std::time::Duration::from_secs(args.drain_seconds);
            server::run(
                listener,
                server::router(state, args.max_upload_bytes, mcp),
                drain,
                shutdown,
            )
            .await?;
            anyhow::Ok((deliverer, drain))
        })
        .map(|(deliverer, drain)| deliverer.drain(drain))?;
    Ok(ExitCode::SUCCESS)
}
