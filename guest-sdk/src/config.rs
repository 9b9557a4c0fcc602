//! Operator-set settings (capability `config`): the values the operator stored for this
//! plugin, over the defaults of the JSON Schema in the manifest's `[capabilities.config]`.
//! Secrets never live here: a field the schema marks `x-capstan-secret` holds
//! `{"secret": "<name>"}`, which [`secret`] resolves through the `secrets` capability.

use crate::Error;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

#[cfg(target_arch = "wasm32")]
fn raw_get(key: &str) -> Result<Option<String>, Error> {
    crate::bindings::capstan::plugin::config::get(key).map_err(Error::from)
}

#[cfg(target_arch = "wasm32")]
fn raw_all() -> Result<Vec<(String, String)>, Error> {
    crate::bindings::capstan::plugin::config::get_all().map_err(Error::from)
}

#[cfg(not(target_arch = "wasm32"))]
use crate::testing::{config_all as raw_all, config_get as raw_get};

fn parse(key: &str, text: &str) -> Result<Value, Error> {
    serde_json::from_str(text)
        .map_err(|e| Error::Internal(format!("setting `{key}` is not JSON: {e}")))
}

/// The value of setting `key`, or none if it is neither set nor defaulted.
pub fn get(key: &str) -> Result<Option<Value>, Error> {
    raw_get(key)?.map(|text| parse(key, &text)).transpose()
}

/// The value of setting `key` as `T`, naming the key if it does not fit.
pub fn get_as<T: DeserializeOwned>(key: &str) -> Result<Option<T>, Error> {
    get(key)?
        .map(|value| {
            serde_json::from_value(value)
                .map_err(|e| Error::InvalidInput(format!("setting `{key}`: {e}")))
        })
        .transpose()
}

/// Every setting that has a value.
pub fn get_all() -> Result<Map<String, Value>, Error> {
    raw_all()?
        .into_iter()
        .map(|(key, text)| Ok((key.clone(), parse(&key, &text)?)))
        .collect()
}

/// The secret a secret-reference setting names, read through `secrets` (which the
/// manifest must declare and the policy grant, as for any secret).
pub fn secret(key: &str) -> Result<String, Error> {
    let name = get(key)?
        .and_then(|value| {
            value
                .get("secret")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .ok_or_else(|| {
            Error::InvalidInput(format!(
                "setting `{key}` is not a {{\"secret\": …}} reference"
            ))
        })?;
    crate::secrets::get(&name)
}
