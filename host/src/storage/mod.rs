//! State behind the host and its capabilities, in one of three backends: in-memory (tests,
//! `capstan run`), SQLite (the embedded default) and PostgreSQL (several hosts sharing
//! state); events may instead live in NATS JetStream. Each capability defines the trait for its own state (e.g. `KvStore`); every
//! backend implements them all.

mod error;
mod memory;
mod nats;
mod postgres;
mod sqlite;

pub use error::StoreError;
pub use memory::MemoryKv;
pub use nats::NatsEvents;
pub use postgres::{PostgresSql, PostgresStore};
pub use sqlite::{SqliteSql, SqliteStore};

use crate::capability::config::ConfigStore;
use crate::capability::events::publishers::PublisherStore;
use crate::capability::kv::KvStore;
use crate::capability::mcp::McpClientStore;
use crate::sessions::SessionStore;
use serde::Serialize;

/// What a server keeps besides its plugins' state: the installed plugins and the job run
/// table (SQLite for one host, PostgreSQL for a cluster).
pub trait HostStore: PluginStore + crate::capability::jobs::JobStore {}

impl<T: PluginStore + crate::capability::jobs::JobStore> HostStore for T {}

/// Every capability's own state, in one backend: what a host's plugins read and write.
pub trait StateStore:
    KvStore + ConfigStore + McpClientStore + PublisherStore + SessionStore
{
}

impl<T: KvStore + ConfigStore + McpClientStore + PublisherStore + SessionStore> StateStore for T {}

/// One installed version of a plugin, without its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct VersionInfo {
    /// Install sequence number within the plugin (1, 2, …).
    pub seq: i64,
    /// The plugin's own version string from its manifest.
    pub version: String,
    pub sha256: String,
    /// Milliseconds since the Unix epoch.
    pub installed_ms: i64,
    /// Fingerprint of the trusted key that signed it, when one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
}

/// What one version of a plugin was installed from: the component, the sidecar manifest
/// it came with when it does not embed one, and its detached signature if it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    pub wasm: Vec<u8>,
    pub manifest: Option<Vec<u8>>,
    pub signature: Option<Vec<u8>>,
}

impl Upload {
    /// A component that embeds its manifest (and its signature, if signed).
    pub fn component(wasm: Vec<u8>) -> Upload {
        Upload {
            wasm,
            manifest: None,
            signature: None,
        }
    }

    /// The parts the gate reads, borrowed.
    pub fn parts(&self) -> crate::gate::Parts<'_> {
        crate::gate::Parts {
            wasm: &self.wasm,
            manifest: self.manifest.as_deref(),
            signature: self.signature.as_deref(),
        }
    }
}

/// A plugin as stored: whether it is enabled and which version serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredPlugin {
    pub id: String,
    pub enabled: bool,
    pub current_seq: i64,
}

/// Installed plugins and every version of each. Each method is one transaction, so a
/// crash leaves either the old state or the new, never a half-installed plugin.
pub trait PluginStore: Send + Sync {
    /// Store a new version and make it current (creating the plugin, enabled, if new),
    /// with its checked tool catalog (JSON) if it offers tools.
    fn add_version(
        &self,
        id: &str,
        version: &str,
        sha256: &str,
        upload: &Upload,
        tools: Option<&str>,
        signer: Option<&str>,
    ) -> Result<i64, StoreError>;
    /// Make version `seq` current.
    fn set_current(&self, id: &str, seq: i64) -> Result<(), StoreError>;
    fn set_enabled(&self, id: &str, enabled: bool) -> Result<(), StoreError>;
    /// Remove the plugin and all its versions; true if it existed.
    fn remove_plugin(&self, id: &str) -> Result<bool, StoreError>;
    fn plugins(&self) -> Result<Vec<StoredPlugin>, StoreError>;
    /// Versions of `id`, oldest first.
    fn versions(&self, id: &str) -> Result<Vec<VersionInfo>, StoreError>;
    /// What version `seq` of `id` was installed from.
    fn upload(&self, id: &str, seq: i64) -> Result<Option<Upload>, StoreError>;
    /// The tool catalog (JSON) stored with version `seq` of `id`, if any.
    fn tools(&self, id: &str, seq: i64) -> Result<Option<String>, StoreError>;
    /// A host setting (e.g. the admin token hash).
    fn setting(&self, name: &str) -> Result<Option<String>, StoreError>;
    fn set_setting(&self, name: &str, value: &str) -> Result<(), StoreError>;
    /// Changes made by other hosts sharing this store: the receiver gets a message after
    /// each (and after reconnecting, when some may have been missed). None when no other
    /// host can write this store (SQLite is one host's file).
    fn watch(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<()>> {
        None
    }
}
