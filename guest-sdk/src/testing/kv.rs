//! The in-memory key-value double; same signatures as the host import.

use super::with;
use crate::Error;
use crate::kv::KeyPage;

pub(crate) fn get(key: &str) -> Result<Option<Vec<u8>>, Error> {
    Ok(with(|s| s.kv.get(key).cloned()))
}

pub(crate) fn set(key: &str, value: &[u8]) -> Result<(), Error> {
    with(|s| s.kv.insert(key.to_string(), value.to_vec()));
    Ok(())
}

pub(crate) fn delete(key: &str) -> Result<bool, Error> {
    Ok(with(|s| s.kv.remove(key).is_some()))
}

pub(crate) fn list_keys(prefix: &str, cursor: Option<&str>, limit: u32) -> Result<KeyPage, Error> {
    let limit = limit.clamp(1, 1000) as usize;
    with(|s| {
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
        let current = match s.kv.get(key) {
            None => 0,
            Some(bytes) => std::str::from_utf8(bytes)
                .ok()
                .and_then(|t| t.parse::<i64>().ok())
                .ok_or_else(|| {
                    Error::InvalidInput(format!("value of `{key}` is not an integer"))
                })?,
        };
        let next = current
            .checked_add(delta)
            .ok_or_else(|| Error::InvalidInput(format!("increment of `{key}` overflows")))?;
        s.kv.insert(key.to_string(), next.to_string().into_bytes());
        Ok(next)
    })
}

pub(crate) fn compare_and_swap(
    key: &str,
    expected: Option<&[u8]>,
    value: &[u8],
) -> Result<bool, Error> {
    with(|s| {
        if s.kv.get(key).map(Vec::as_slice) != expected {
            return Ok(false);
        }
        s.kv.insert(key.to_string(), value.to_vec());
        Ok(true)
    })
}
