//! The `capstan` command line: inspect and run plugins locally, run the server, and
//! manage a running server through its admin API.

mod client;
mod config;
mod consent;
mod event;
mod inspect;
mod job;
mod mcp;
mod new;
mod plugin;
mod policy;
mod records;
mod run;
mod secret;
mod serve;
mod session;
mod sign;
pub mod state;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Capstan: a WebAssembly component sandbox host for plugins.
#[derive(Debug, Parser)]
#[command(name = "capstan", version, about)]
pub struct Cli {
    /// Host log format on stderr (filter with CAPSTAN_LOG, e.g. `debug`).
    #[arg(long, global = true, env = "CAPSTAN_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

/// How host logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show a plugin's manifest, its imports mapped to capabilities, and its grants under a policy.
    Inspect(inspect::Args),
    /// Run one call of a plugin locally, for plugin authors (in-memory state unless --data-dir).
    Run(run::Args),
    /// Write a new plugin project (Rust or Python) that builds and passes its own test.
    New(new::Args),
    /// Run the host: admin API, plugin routes, health endpoints.
    Serve(serve::Args),
    /// Manage plugin secrets, in the data directory or on a server (values are write-only).
    #[command(subcommand)]
    Secret(secret::Command),
    /// Manage plugins on a running server.
    #[command(subcommand)]
    Plugin(plugin::Command),
    /// Show, replace or check a running server's policy.
    #[command(subcommand)]
    Policy(policy::Command),
    /// A running server's job schedules and runs: list, run now, history, cancel.
    #[command(subcommand)]
    Job(job::Command),
    /// Publish events into a running server and list recent ones.
    #[command(subcommand)]
    Event(event::EventCommand),
    /// A running server's event deliveries: list by plugin and state, replay dead letters.
    #[command(subcommand)]
    Delivery(event::DeliveryCommand),
    /// Manage a running server's MCP clients, or bridge stdio MCP clients to its /mcp.
    #[command(subcommand)]
    Mcp(mcp::Command),
    /// Manage a running server's sessions: private plugin sets for clients.
    #[command(subcommand)]
    Session(session::Command),
    /// Query a running server's audit trail, newest first.
    Audit {
        /// Only records of this kind (e.g. `denied`, `installed`, `plugin-changed`).
        #[arg(long)]
        kind: Option<String>,
        #[command(flatten)]
        filter: records::Filter,
    },
    /// Query a running server's plugin logs, newest first.
    Logs {
        /// Lowest level shown (`trace`, `debug`, `info`, `warn`, `error`).
        #[arg(long)]
        level: Option<String>,
        #[command(flatten)]
        filter: records::Filter,
    },
}

/// Where a plugin comes from on the command line.
#[derive(Debug, clap::Args)]
struct PluginArgs {
    /// The plugin component (`.wasm`).
    file: PathBuf,
    /// A sidecar `capstan.toml`, for components without an embedded manifest.
    #[arg(long, value_name = "FILE")]
    manifest: Option<PathBuf>,
    /// Operator policy file; without it nothing beyond the baseline is granted.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
}

impl PluginArgs {
    fn read(&self) -> anyhow::Result<(Vec<u8>, Option<Vec<u8>>, crate::Policy)> {
        let bytes = std::fs::read(&self.file)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", self.file.display()))?;
        let sidecar = self
            .manifest
            .as_ref()
            .map(|path| {
                std::fs::read(path)
                    .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))
            })
            .transpose()?;
        let policy = match &self.policy {
            Some(path) => crate::Policy::load(path)?,
            None => crate::Policy::deny_all(),
        };
        Ok((bytes, sidecar, policy))
    }
}

/// Parse arguments, run the command, and map failures to exit codes
/// (1: usage or I/O, 2: refused by the gate, 3: the call failed).
pub fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some(crate::runtime::CHILD_COMMAND) {
        return crate::runtime::child_main();
    }
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    let result = match cli.command {
        Command::Inspect(args) => inspect::run(args),
        Command::Run(args) => run::run(args),
        Command::New(args) => new::run(args),
        Command::Secret(command) => secret::run(command),
        Command::Serve(args) => serve::run(args),
        Command::Plugin(command) => plugin::run(command),
        Command::Policy(command) => policy::run(command),
        Command::Mcp(command) => mcp::run(command),
        Command::Session(command) => session::run(command),
        Command::Job(command) => job::run(command),
        Command::Event(command) => event::run_event(command),
        Command::Delivery(command) => event::run_delivery(command),
        Command::Audit { kind, filter } => records::audit(filter, kind),
        Command::Logs { level, filter } => records::logs(filter, level),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(1)
        }
    }
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CAPSTAN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,capstan::audit=warn"));
    // Colour only for a person at a terminal: a log file or collector gets plain text.
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(true);
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
}
