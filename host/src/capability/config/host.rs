//! Host side of `capstan:plugin/config` and of both `wasi:config/store` spellings.

use super::bindings::{draft, rc};
use super::{ConfigStore, Grant, effective};
use crate::bindings::capstan::plugin::config::Host;
use crate::bindings::capstan::plugin::types::Error;
use crate::capability::CallScope;
use serde_json::{Map, Value};

/// The granted config, seen from one call: only the calling plugin's settings.
pub struct ConfigHost<'a> {
    pub scope: CallScope<'a>,
    pub grant: &'a Grant,
    pub store: &'a dyn ConfigStore,
}

/// A value as `wasi:config` returns it: strings as their text, anything else as JSON.
fn standard_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

impl ConfigHost<'_> {
    fn values(&self) -> Result<Map<String, Value>, String> {
        effective(self.store, self.scope.plugin, &self.grant.defaults).map_err(|error| {
            tracing::error!(plugin = %self.scope.plugin, "reading config failed: {error}");
            "config store unavailable".to_string()
        })
    }
}

impl Host for ConfigHost<'_> {
    #[tracing::instrument(level = "debug", skip_all, fields(plugin = %self.scope.plugin))]
    fn get(&mut self, key: String) -> Result<Option<String>, Error> {
        let values = self.values().map_err(Error::Internal)?;
        Ok(values.get(&key).map(Value::to_string))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(plugin = %self.scope.plugin))]
    fn get_all(&mut self) -> Result<Vec<(String, String)>, Error> {
        let values = self.values().map_err(Error::Internal)?;
        Ok(values
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect())
    }
}

macro_rules! standard_host {
    ($spelling:ident) => {
        impl $spelling::Host for ConfigHost<'_> {
            fn get(&mut self, key: String) -> Result<Option<String>, $spelling::Error> {
                let values = self.values().map_err($spelling::Error::Upstream)?;
                Ok(values.get(&key).map(standard_text))
            }

            fn get_all(&mut self) -> Result<Vec<(String, String)>, $spelling::Error> {
                let values = self.values().map_err($spelling::Error::Upstream)?;
                Ok(values
                    .iter()
                    .map(|(k, v)| (k.clone(), standard_text(v)))
                    .collect())
            }
        }
    };
}

standard_host!(rc);
standard_host!(draft);
