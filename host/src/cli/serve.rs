//! `capstan serve`: run the host.

use super::state::DataDir;
use crate::policy::Policy;
use crate::registry::Registry;
use crate::runtime::Runtime;
use crate::server::{self, AppState};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:7878")]
    listen: SocketAddr,
    #[command(flatten)]
    data: DataDir,
    /// Policy to start with when the data directory has none yet (afterwards the stored
    /// policy, changed through the admin API, wins); without either nothing is granted.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Largest plugin upload accepted, in bytes.
    #[arg(long, default_value_t = crate::gate::DEFAULT_MAX_COMPONENT_BYTES)]
    max_upload_bytes: usize,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let seed = match &args.policy {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("cannot read policy {}: {e}", path.display()))?;
            Policy::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            text
        }
        None => String::new(),
    };
    let (services, store) = super::state::open_with_store(&args.data.path)?;
    let token_hash = server::auth::load_or_create(store.as_ref(), &args.data.path)?;
    let registry = Registry::open(Runtime::new(services)?, store, &seed)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen).await?;
        let address = listener.local_addr()?;
        let state = Arc::new(AppState {
            registry,
            token_hash,
        });
        tracing::info!("listening on http://{address}");
        println!("listening on http://{address}");
        server::run(listener, server::router(state, args.max_upload_bytes)).await?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
