//! Key-value storage in the plugin's own namespace (capability `storage.kv`).

use crate::Error;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use crate::bindings::capstan::plugin::kv::KeyPage;

#[cfg(target_arch = "wasm32")]
use crate::bindings::capstan::plugin::kv as backend;
#[cfg(not(target_arch = "wasm32"))]
use crate::testing::kv as backend;

/// The host's answer as the SDK's error type.
#[cfg(target_arch = "wasm32")]
fn answer<T>(
    result: Result<T, crate::bindings::capstan::plugin::types::Error>,
) -> Result<T, Error> {
    result.map_err(Error::from)
}

/// The double's answer (already the SDK's error type).
#[cfg(not(target_arch = "wasm32"))]
fn answer<T>(result: Result<T, Error>) -> Result<T, Error> {
    result
}

/// The bytes stored under `key`.
pub fn get(key: &str) -> Result<Option<Vec<u8>>, Error> {
    answer(backend::get(key))
}

/// Store `value` under `key`.
pub fn set(key: &str, value: &[u8]) -> Result<(), Error> {
    answer(backend::set(key, value))
}

/// Remove `key`; true if it existed.
pub fn delete(key: &str) -> Result<bool, Error> {
    answer(backend::delete(key))
}

/// One page of keys starting with `prefix`, after `cursor`.
pub fn list_keys(prefix: &str, cursor: Option<&str>, limit: u32) -> Result<KeyPage, Error> {
    answer(backend::list_keys(prefix, cursor, limit))
}

/// Atomically add `delta` to the integer under `key` and return the new value.
pub fn increment(key: &str, delta: i64) -> Result<i64, Error> {
    answer(backend::increment(key, delta))
}

/// Atomically set `key` to `value` if it currently holds `expected` (none = absent).
pub fn compare_and_swap(key: &str, expected: Option<&[u8]>, value: &[u8]) -> Result<bool, Error> {
    answer(backend::compare_and_swap(key, expected, value))
}

/// The value under `key` as UTF-8 text.
pub fn get_string(key: &str) -> Result<Option<String>, Error> {
    get(key)?
        .map(|bytes| {
            String::from_utf8(bytes)
                .map_err(|_| Error::InvalidInput(format!("value of `{key}` is not UTF-8")))
        })
        .transpose()
}

/// The value under `key` parsed from JSON.
pub fn get_json<T: DeserializeOwned>(key: &str) -> Result<Option<T>, Error> {
    get(key)?
        .map(|bytes| {
            serde_json::from_slice(&bytes).map_err(|e| {
                Error::InvalidInput(format!("value of `{key}` is not the expected JSON: {e}"))
            })
        })
        .transpose()
}

/// Store `value` under `key` as JSON.
pub fn set_json<T: Serialize>(key: &str, value: &T) -> Result<(), Error> {
    let bytes = serde_json::to_vec(value)
        .map_err(|e| Error::InvalidInput(format!("value for `{key}` does not serialise: {e}")))?;
    set(key, &bytes)
}
