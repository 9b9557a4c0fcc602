//! The in-memory key-value double: the host's key and value caps, the manifest's quota,
//! and `denied` when kv is not declared or withheld.

use super::{Capability, State, with};
use crate::Error;
use crate::kv::KeyPage;

/// The host's default caps.
const MAX_KEY_BYTES: usize = 512;
const MAX_VALUE_BYTES: usize = 1024 * 1024;
const MAX_PAGE: u32 = 1000;

fn check_key(key: &str) -> Result<(), Error> {
    if key.is_empty() {
        return Err(Error::InvalidInput("key must not be empty".into()));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(Error::TooLarge(format!(
            "key is {} bytes; the cap is {MAX_KEY_BYTES}",
            key.len()
        )));
    }
    Ok(())
}

fn check_value(value: &[u8]) -> Result<(), Error> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(Error::TooLarge(format!(
            "value is {} bytes; the cap is {MAX_VALUE_BYTES}",
            value.len()
        )));
    }
    Ok(())
}

/// Store `value` under `key` within the manifest's quota.
fn put(s: &mut State, key: &str, value: Vec<u8>) -> Result<(), Error> {
    let (max_keys, max_bytes) = (s.declared().max_keys, s.declared().max_bytes);
    let entry = |k: &str, v: &[u8]| (k.len() + v.len()) as u64;
    let old = s.kv.get(key).map(|v| entry(key, v));
    let keys = s.kv.len() as u64 + u64::from(old.is_none());
    let used: u64 = s.kv.iter().map(|(k, v)| entry(k, v)).sum();
    let bytes = used - old.unwrap_or(0) + entry(key, &value);
    if old.is_none() && keys > max_keys {
        return Err(Error::QuotaExceeded(format!("at most {max_keys} keys")));
    }
    if bytes > max_bytes && bytes > used {
        return Err(Error::QuotaExceeded(format!("at most {max_bytes} bytes")));
    }
    s.kv.insert(key.to_string(), value);
    Ok(())
}

pub(crate) fn get(key: &str) -> Result<Option<Vec<u8>>, Error> {
    with(|s| {
        s.check(Capability::Kv)?;
        check_key(key)?;
        Ok(s.kv.get(key).cloned())
    })
}

pub(crate) fn set(key: &str, value: &[u8]) -> Result<(), Error> {
    with(|s| {
        s.check(Capability::Kv)?;
        check_key(key)?;
        check_value(value)?;
        put(s, key, value.to_vec())
    })
}

pub(crate) fn delete(key: &str) -> Result<bool, Error> {
    with(|s| {
        s.check(Capability::Kv)?;
        check_key(key)?;
        Ok(s.kv.remove(key).is_some())
    })
}

pub(crate) fn list_keys(prefix: &str, cursor: Option<&str>, limit: u32) -> Result<KeyPage, Error> {
    let limit = limit.clamp(1, MAX_PAGE) as usize;
    with(|s| {
        s.check(Capability::Kv)?;
        let mut keys: Vec<String> =
            s.kv.keys()
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
        Ok(KeyPage { keys, next_cursor })
    })
}

pub(crate) fn increment(key: &str, delta: i64) -> Result<i64, Error> {
    with(|s| {
        s.check(Capability::Kv)?;
        check_key(key)?;
        let current = match s.kv.get(key) {
            None => 0,
            Some(bytes) => std::str::from_utf8(bytes)
                .ok()
                .and_then(|t| t.parse::<i64>().ok())
                .ok_or_else(|| {
                    Error::InvalidInput(format!("value of `{key}` is not a decimal integer"))
                })?,
        };
        let next = current
            .checked_add(delta)
            .ok_or_else(|| Error::InvalidInput(format!("increment of `{key}` overflows i64")))?;
        put(s, key, next.to_string().into_bytes())?;
        Ok(next)
    })
}

pub(crate) fn compare_and_swap(
    key: &str,
    expected: Option<&[u8]>,
    value: &[u8],
) -> Result<bool, Error> {
    with(|s| {
        s.check(Capability::Kv)?;
        check_key(key)?;
        check_value(value)?;
        if s.kv.get(key).map(Vec::as_slice) != expected {
            return Ok(false);
        }
        put(s, key, value.to_vec())?;
        Ok(true)
    })
}
