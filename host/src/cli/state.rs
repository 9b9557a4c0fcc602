//! Opening the host's persistent state (SQLite in a data directory) for CLI commands.

use crate::capability::http::Outbound;
use crate::runtime::Services;
use crate::secrets::{Keyring, Secrets};
use crate::storage::SqliteStore;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// File name of the SQLite database inside the data directory.
pub const DATABASE_FILE: &str = "capstan.db";

/// Where the host keeps its state.
#[derive(Debug, Clone, clap::Args)]
pub struct DataDir {
    /// Data directory (SQLite database, master key); created with mode 0700 if missing.
    #[arg(
        long = "data-dir",
        env = "CAPSTAN_DATA_DIR",
        value_name = "DIR",
        default_value = "capstan-data"
    )]
    pub path: PathBuf,
}

impl DataDir {
    /// Services backed by the SQLite database and key file in this directory.
    pub fn open(&self) -> anyhow::Result<Services> {
        open(&self.path)
    }
}

/// Services backed by SQLite and the key file in `dir` (created if missing).
pub fn open(dir: &Path) -> anyhow::Result<Services> {
    open_with_store(dir).map(|(services, _)| services)
}

/// Like [`open`], also returning the SQLite store itself (for the plugin registry).
pub fn open_with_store(dir: &Path) -> anyhow::Result<(Services, Arc<SqliteStore>)> {
    create_private_dir(dir)?;
    let store = Arc::new(
        SqliteStore::open(&dir.join(DATABASE_FILE))
            .map_err(|e| anyhow::anyhow!("opening state: {e}"))?,
    );
    let keyring = Keyring::load(dir).map_err(|e| anyhow::anyhow!("{e}"))?;
    let services = Services {
        kv: store.clone(),
        outbound: Arc::new(Outbound::from_env()?),
        secrets: Secrets::new(store.clone(), keyring),
        audit: store.clone(),
        logs: store.clone(),
    };
    Ok((services, store))
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|e| anyhow::anyhow!("cannot create data directory {}: {e}", dir.display()))
}
