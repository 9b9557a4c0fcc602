//! State behind the capabilities. This module holds the key-value trait every backend
//! implements; the in-memory backend serves tests and single-process runs.

mod memory;

pub use memory::MemoryKv;

use serde::Serialize;

/// Quota on one plugin's namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Quota {
    /// Most keys the namespace may hold.
    pub max_keys: u64,
    /// Most bytes (keys + values) the namespace may hold.
    pub max_bytes: u64,
}

/// One page of keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPage {
    pub keys: Vec<String>,
    pub next_cursor: Option<String>,
}

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum KvError {
    /// The write would take the namespace over its quota.
    #[error("quota exceeded: {0}")]
    QuotaExceeded(String),
    /// `increment` on a value that is not a decimal i64, or that would overflow.
    #[error("{0}")]
    NotAnInteger(String),
    /// The backend failed; the text is for host logs, not for plugins.
    #[error("storage backend failed: {0}")]
    Backend(String),
}

/// Key-value storage partitioned by namespace (the plugin id, chosen by the host).
/// Every write checks the quota atomically with the write.
pub trait KvStore: Send + Sync {
    fn get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, KvError>;
    fn set(&self, namespace: &str, key: &str, value: &[u8], quota: Quota) -> Result<(), KvError>;
    fn delete(&self, namespace: &str, key: &str) -> Result<bool, KvError>;
    fn list_keys(
        &self,
        namespace: &str,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<KeyPage, KvError>;
    fn increment(
        &self,
        namespace: &str,
        key: &str,
        delta: i64,
        quota: Quota,
    ) -> Result<i64, KvError>;
    fn compare_and_swap(
        &self,
        namespace: &str,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
        quota: Quota,
    ) -> Result<bool, KvError>;
}

/// Parse a stored counter and add `delta`, for backends implementing `increment`.
pub(crate) fn add_to_counter(
    key: &str,
    current: Option<&[u8]>,
    delta: i64,
) -> Result<i64, KvError> {
    let current = match current {
        None => 0,
        Some(bytes) => std::str::from_utf8(bytes)
            .ok()
            .and_then(|text| text.parse::<i64>().ok())
            .ok_or_else(|| {
                KvError::NotAnInteger(format!("value of `{key}` is not a decimal integer"))
            })?,
    };
    current
        .checked_add(delta)
        .ok_or_else(|| KvError::NotAnInteger(format!("increment of `{key}` overflows i64")))
}
