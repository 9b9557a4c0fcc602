//! In-memory key-value backend: one `BTreeMap` per namespace behind a mutex.

use super::{KeyPage, KvError, KvStore, Quota, add_to_counter};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// Most keys one `list_keys` page returns.
pub const MAX_PAGE: u32 = 1000;

#[derive(Default)]
struct Namespace {
    entries: BTreeMap<String, Vec<u8>>,
    bytes: u64,
}

impl Namespace {
    /// Store `value` under `key` if the result stays within `quota`.
    fn put(&mut self, key: &str, value: Vec<u8>, quota: Quota) -> Result<(), KvError> {
        let old = self.entries.get(key).map(|v| (key.len() + v.len()) as u64);
        let new_bytes = self.bytes - old.unwrap_or(0) + (key.len() + value.len()) as u64;
        let new_keys = self.entries.len() as u64 + u64::from(old.is_none());
        if new_keys > quota.max_keys {
            return Err(KvError::QuotaExceeded(format!(
                "at most {} keys",
                quota.max_keys
            )));
        }
        if new_bytes > quota.max_bytes {
            return Err(KvError::QuotaExceeded(format!(
                "at most {} bytes",
                quota.max_bytes
            )));
        }
        self.bytes = new_bytes;
        self.entries.insert(key.to_string(), value);
        Ok(())
    }
}

/// Keys and values held in process memory; gone when the process exits.
#[derive(Default)]
pub struct MemoryKv {
    namespaces: Mutex<HashMap<String, Namespace>>,
}

impl MemoryKv {
    fn with<R>(&self, namespace: &str, f: impl FnOnce(&mut Namespace) -> R) -> R {
        let mut all = self.namespaces.lock().unwrap_or_else(|p| p.into_inner());
        f(all.entry(namespace.to_string()).or_default())
    }
}

impl KvStore for MemoryKv {
    fn get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        Ok(self.with(namespace, |ns| ns.entries.get(key).cloned()))
    }

    fn set(&self, namespace: &str, key: &str, value: &[u8], quota: Quota) -> Result<(), KvError> {
        self.with(namespace, |ns| ns.put(key, value.to_vec(), quota))
    }

    fn delete(&self, namespace: &str, key: &str) -> Result<bool, KvError> {
        Ok(self.with(namespace, |ns| match ns.entries.remove(key) {
            Some(value) => {
                ns.bytes -= (key.len() + value.len()) as u64;
                true
            }
            None => false,
        }))
    }

    fn list_keys(
        &self,
        namespace: &str,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<KeyPage, KvError> {
        let limit = limit.clamp(1, MAX_PAGE) as usize;
        Ok(self.with(namespace, |ns| {
            let mut keys: Vec<String> = ns
                .entries
                .keys()
                .filter(|k| k.starts_with(prefix) && cursor.is_none_or(|c| k.as_str() > c))
                .take(limit + 1)
                .cloned()
                .collect();
            let next_cursor = if keys.len() > limit {
                keys.truncate(limit);
                keys.last().cloned()
            } else {
                None
            };
            KeyPage { keys, next_cursor }
        }))
    }

    fn increment(
        &self,
        namespace: &str,
        key: &str,
        delta: i64,
        quota: Quota,
    ) -> Result<i64, KvError> {
        self.with(namespace, |ns| {
            let next = add_to_counter(key, ns.entries.get(key).map(Vec::as_slice), delta)?;
            ns.put(key, next.to_string().into_bytes(), quota)?;
            Ok(next)
        })
    }

    fn compare_and_swap(
        &self,
        namespace: &str,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
        quota: Quota,
    ) -> Result<bool, KvError> {
        self.with(namespace, |ns| {
            if ns.entries.get(key).map(Vec::as_slice) != expected {
                return Ok(false);
            }
            ns.put(key, value.to_vec(), quota)?;
            Ok(true)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOMY: Quota = Quota {
        max_keys: 100,
        max_bytes: 10_000,
    };

    #[test]
    fn namespaces_are_separate() {
        let kv = MemoryKv::default();
        kv.set("a", "k", b"1", ROOMY).unwrap();
        assert_eq!(kv.get("b", "k").unwrap(), None);
        assert_eq!(kv.get("a", "k").unwrap(), Some(b"1".to_vec()));
    }

    #[test]
    fn quota_counts_keys_and_bytes_and_frees_on_delete() {
        let kv = MemoryKv::default();
        let tight = Quota {
            max_keys: 2,
            max_bytes: 10,
        };
        kv.set("a", "k1", b"123", tight).unwrap();
        kv.set("a", "k2", b"4", tight).unwrap();
        assert!(matches!(
            kv.set("a", "k3", b"", tight),
            Err(KvError::QuotaExceeded(_))
        ));
        assert!(matches!(
            kv.set("a", "k1", b"12345678", tight),
            Err(KvError::QuotaExceeded(_))
        ));
        assert!(kv.delete("a", "k2").unwrap());
        kv.set("a", "k3", b"x", tight).unwrap();
    }

    #[test]
    fn increment_and_cas() {
        let kv = MemoryKv::default();
        assert_eq!(kv.increment("a", "n", 5, ROOMY).unwrap(), 5);
        assert_eq!(kv.increment("a", "n", -2, ROOMY).unwrap(), 3);
        kv.set("a", "s", b"text", ROOMY).unwrap();
        assert!(matches!(
            kv.increment("a", "s", 1, ROOMY),
            Err(KvError::NotAnInteger(_))
        ));
        assert!(kv.compare_and_swap("a", "c", None, b"1", ROOMY).unwrap());
        assert!(!kv.compare_and_swap("a", "c", None, b"2", ROOMY).unwrap());
        assert!(
            kv.compare_and_swap("a", "c", Some(b"1"), b"2", ROOMY)
                .unwrap()
        );
    }

    #[test]
    fn list_pages_through_prefix() {
        let kv = MemoryKv::default();
        for k in ["p1", "p2", "p3", "q1"] {
            kv.set("a", k, b"", ROOMY).unwrap();
        }
        let first = kv.list_keys("a", "p", None, 2).unwrap();
        assert_eq!(first.keys, ["p1", "p2"]);
        let second = kv
            .list_keys("a", "p", first.next_cursor.as_deref(), 2)
            .unwrap();
        assert_eq!(
            second,
            KeyPage {
                keys: vec!["p3".into()],
                next_cursor: None
            }
        );
    }
}
