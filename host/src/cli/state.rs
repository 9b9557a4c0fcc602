//! Opening the host's persistent state for CLI commands: SQLite in the data directory by
//! default, or PostgreSQL for `serve --database-url`. The data directory always holds the
//! master key file (unless `CAPSTAN_MASTER_KEY` is set) and the compiled-artifact cache.

use crate::audit::AuditSink;
use crate::batched::Batched;
use crate::capability::events::{Bus, EventStore};
use crate::capability::http::Outbound;
use crate::capability::log::LogSink;
use crate::capability::sql::SqlEngine;
use crate::runtime::Services;
use crate::secrets::{Keyring, SecretStore, Secrets};
use crate::storage::{
    HostStore, NatsEvents, PostgresSql, PostgresStore, SqliteSql, SqliteStore, StateStore,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// File name of the SQLite database inside the data directory.
pub const DATABASE_FILE: &str = "capstan.db";
/// Directory of the plugins' own SQLite databases inside the data directory.
pub const SQL_DIR: &str = "sql";

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
    open_with_store(dir, None, None).map(|(services, _)| services)
}

/// Like [`open`], also returning the store itself (for the plugin registry): PostgreSQL
/// (URL and optional schema) if given, else SQLite in `dir`; events in NATS JetStream if
/// `events_url` is given, else in that store.
pub fn open_with_store(
    dir: &Path,
    database: Option<(&str, Option<&str>)>,
    events_url: Option<&str>,
) -> anyhow::Result<(Services, Arc<dyn HostStore>)> {
    create_private_dir(dir)?;
    let nats: Option<Arc<dyn EventStore>> = match events_url {
        Some(url) => {
            Some(Arc::new(NatsEvents::connect(url).map_err(|e| {
                anyhow::anyhow!("opening the event log: {e}")
            })?))
        }
        None => None,
    };
    match database {
        Some((url, schema)) => {
            let store = Arc::new(
                PostgresStore::connect(url, schema)
                    .map_err(|e| anyhow::anyhow!("opening PostgreSQL state: {e}"))?,
            );
            let events = nats.clone().unwrap_or_else(|| store.clone());
            let services = services_over(store.clone(), events, dir, |secrets| {
                Ok(Arc::new(PostgresSql::new(store.clone(), secrets.clone())))
            })?;
            Ok((services, store))
        }
        None => {
            let store = Arc::new(
                SqliteStore::open(&dir.join(DATABASE_FILE))
                    .map_err(|e| anyhow::anyhow!("opening state: {e}"))?,
            );
            let events = nats.unwrap_or_else(|| store.clone());
            let services = services_over(store.clone(), events, dir, |_| {
                let engine = SqliteSql::open(&dir.join(SQL_DIR))
                    .map_err(|e| anyhow::anyhow!("opening plugin databases: {e}"))?;
                Ok(Arc::new(engine))
            })?;
            Ok((services, store))
        }
    }
}

/// Services keeping everything in `store`, with the master key from `dir` or the env,
/// events in `events` and the plugins' SQL databases from `sql` (given the secrets, which
/// seal their passwords).
/// Audit records and log lines are written in batches by background threads.
fn services_over<S>(
    store: Arc<S>,
    events: Arc<dyn EventStore>,
    dir: &Path,
    sql: impl FnOnce(&Secrets) -> anyhow::Result<Arc<dyn SqlEngine>>,
) -> anyhow::Result<Services>
where
    S: StateStore + SecretStore + AuditSink + LogSink + 'static,
{
    let keyring = Keyring::load(dir).map_err(|e| anyhow::anyhow!("{e}"))?;
    let secrets = Secrets::new(store.clone(), keyring);
    Ok(Services {
        state: store.clone(),
        outbound: Arc::new(Outbound::from_env()?),
        sql: sql(&secrets)?,
        secrets,
        events: Arc::new(Bus::new(events)),
        audit: Arc::new(Batched::new(store.clone() as Arc<dyn AuditSink>)?),
        logs: Arc::new(Batched::new(store as Arc<dyn LogSink>)?),
    })
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
