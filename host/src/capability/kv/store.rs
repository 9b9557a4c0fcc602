//! The state behind `storage.kv`: the trait every backend implements, and the
//! read-modify-write and quota rules they all share.

use crate::capability::Deadline;
use crate::storage::StoreError;
use serde::Serialize;

/// Most keys one `list_keys` page returns, whatever the caller asks for.
pub const MAX_PAGE: u32 = 1000;

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

/// A write to one key, applied atomically against its current value.
#[derive(Debug, Clone, Copy)]
pub enum Update<'a> {
    /// Replace the value.
    Set(&'a [u8]),
    /// Add to the decimal integer stored (absent = 0).
    Increment(i64),
    /// Replace the value only if it currently equals `expected` (none = absent).
    CompareAndSwap {
        expected: Option<&'a [u8]>,
        value: &'a [u8],
    },
}

/// What an [`Update`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Updated {
    Set,
    Incremented(i64),
    Swapped(bool),
}

impl Update<'_> {
    /// The new value to store (none = leave as is) and the outcome, given the current value.
    pub(crate) fn apply(
        self,
        key: &str,
        current: Option<&[u8]>,
    ) -> Result<(Option<Vec<u8>>, Updated), StoreError> {
        Ok(match self {
            Update::Set(value) => (Some(value.to_vec()), Updated::Set),
            Update::Increment(delta) => {
                let next = add_to_counter(key, current, delta)?;
                (
                    Some(next.to_string().into_bytes()),
                    Updated::Incremented(next),
                )
            }
            Update::CompareAndSwap { expected, value } if current == expected => {
                (Some(value.to_vec()), Updated::Swapped(true))
            }
            Update::CompareAndSwap { .. } => (None, Updated::Swapped(false)),
        })
    }
}

/// Keys and bytes a namespace holds; kept beside the data so quota checks are O(1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Usage {
    pub keys: u64,
    pub bytes: u64,
}

impl Usage {
    /// Usage after storing `new_len` bytes under `key` (replacing `old_len`, if any),
    /// or the quota error that forbids it.
    pub(crate) fn after_put(
        self,
        key: &str,
        old_len: Option<usize>,
        new_len: usize,
        quota: Quota,
    ) -> Result<Usage, StoreError> {
        let entry = |len: usize| (key.len() + len) as u64;
        let next = Usage {
            keys: self.keys + u64::from(old_len.is_none()),
            bytes: self.bytes - old_len.map_or(0, entry) + entry(new_len),
        };
        if next.keys > quota.max_keys && old_len.is_none() {
            return Err(StoreError::QuotaExceeded(format!(
                "at most {} keys",
                quota.max_keys
            )));
        }
        if next.bytes > quota.max_bytes && next.bytes > self.bytes {
            return Err(StoreError::QuotaExceeded(format!(
                "at most {} bytes",
                quota.max_bytes
            )));
        }
        Ok(next)
    }

    /// Usage after removing `key` whose value was `old_len` bytes.
    pub(crate) fn after_delete(self, key: &str, old_len: usize) -> Usage {
        Usage {
            keys: self.keys.saturating_sub(1),
            bytes: self.bytes.saturating_sub((key.len() + old_len) as u64),
        }
    }
}

/// Key-value storage partitioned by namespace (the plugin id, chosen by the host).
/// Writes check the quota atomically with the write. Every operation gives up once
/// `deadline` has passed (lock waits and queries included), with
/// [`StoreError::DeadlinePassed`].
pub trait KvStore: Send + Sync {
    fn get(
        &self,
        namespace: &str,
        key: &str,
        deadline: Deadline,
    ) -> Result<Option<Vec<u8>>, StoreError>;
    fn delete(&self, namespace: &str, key: &str, deadline: Deadline) -> Result<bool, StoreError>;
    /// Keys starting with `prefix` (byte for byte), after `cursor`, at most `limit`.
    fn list_keys(
        &self,
        namespace: &str,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
        deadline: Deadline,
    ) -> Result<KeyPage, StoreError>;
    /// Apply `update` to `key` atomically, within `quota`.
    fn update(
        &self,
        namespace: &str,
        key: &str,
        update: Update<'_>,
        quota: Quota,
        deadline: Deadline,
    ) -> Result<Updated, StoreError>;

    fn set(
        &self,
        namespace: &str,
        key: &str,
        value: &[u8],
        quota: Quota,
        deadline: Deadline,
    ) -> Result<(), StoreError> {
        self.update(namespace, key, Update::Set(value), quota, deadline)
            .map(drop)
    }

    fn increment(
        &self,
        namespace: &str,
        key: &str,
        delta: i64,
        quota: Quota,
        deadline: Deadline,
    ) -> Result<i64, StoreError> {
        match self.update(namespace, key, Update::Increment(delta), quota, deadline)? {
            Updated::Incremented(value) => Ok(value),
            other => Err(StoreError::Backend(format!("increment returned {other:?}"))),
        }
    }

    fn compare_and_swap(
        &self,
        namespace: &str,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
        quota: Quota,
        deadline: Deadline,
    ) -> Result<bool, StoreError> {
        match self.update(
            namespace,
            key,
            Update::CompareAndSwap { expected, value },
            quota,
            deadline,
        )? {
            Updated::Swapped(swapped) => Ok(swapped),
            other => Err(StoreError::Backend(format!(
                "compare-and-swap returned {other:?}"
            ))),
        }
    }
}

/// Parse a stored counter and add `delta`.
fn add_to_counter(key: &str, current: Option<&[u8]>, delta: i64) -> Result<i64, StoreError> {
    let current = match current {
        None => 0,
        Some(bytes) => std::str::from_utf8(bytes)
            .ok()
            .and_then(|text| text.parse::<i64>().ok())
            .ok_or_else(|| {
                StoreError::NotAnInteger(format!("value of `{key}` is not a decimal integer"))
            })?,
    };
    current
        .checked_add(delta)
        .ok_or_else(|| StoreError::NotAnInteger(format!("increment of `{key}` overflows i64")))
}

/// `keys` (sorted, at most `limit + 1`) cut to one page of at most `limit`, with the
/// cursor for the next page when there was more.
pub(crate) fn page(mut keys: Vec<String>, limit: usize) -> KeyPage {
    let next_cursor = if keys.len() > limit {
        keys.truncate(limit);
        keys.last().cloned()
    } else {
        None
    };
    KeyPage { keys, next_cursor }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shrinking_a_value_is_allowed_even_over_quota() {
        let quota = Quota {
            max_keys: 10,
            max_bytes: 5,
        };
        let over = Usage { keys: 1, bytes: 8 };
        assert!(over.after_put("k", Some(7), 2, quota).is_ok());
        assert!(over.after_put("k", Some(7), 8, quota).is_err());
    }
}
