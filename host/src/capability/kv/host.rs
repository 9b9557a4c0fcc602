//! Host side of the WIT `kv` interface: size caps, then the store, in the plugin's namespace.

use super::Grant;
use crate::audit::{AuditEvent, AuditKind};
use crate::bindings::capstan::plugin::kv::{Host, KeyPage};
use crate::bindings::capstan::plugin::types::Error;
use crate::capability::CapabilityId;
use crate::runtime::{CallState, PluginContext};
use crate::storage::KvError;
use wasmtime::component::HasData;

/// Marker selecting the granted implementation when linking.
pub(crate) struct Granted;

impl HasData for Granted {
    type Data<'a> = KvHost<'a>;
}

/// The granted kv, seen from one call.
pub(crate) struct KvHost<'a> {
    plugin: &'a PluginContext,
}

pub(crate) fn view(state: &mut CallState) -> KvHost<'_> {
    KvHost {
        plugin: &state.plugin,
    }
}

impl KvHost<'_> {
    fn grant(&self) -> &Grant {
        self.plugin
            .grants
            .kv
            .granted()
            .expect("kv is linked to the real host only when granted")
    }

    fn check_key(&self, key: &str) -> Result<(), Error> {
        let max = self.grant().max_key_bytes as usize;
        if key.is_empty() {
            return Err(Error::InvalidInput("key must not be empty".into()));
        }
        if key.len() > max {
            return Err(Error::TooLarge(format!(
                "key is {} bytes; the cap is {max}",
                key.len()
            )));
        }
        Ok(())
    }

    fn check_value(&self, value: &[u8]) -> Result<(), Error> {
        let max = self.grant().max_value_bytes as usize;
        if value.len() > max {
            return Err(Error::TooLarge(format!(
                "value is {} bytes; the cap is {max}",
                value.len()
            )));
        }
        Ok(())
    }

    fn map(&self, error: KvError) -> Error {
        match error {
            KvError::QuotaExceeded(detail) => {
                self.plugin.services.audit.record(AuditEvent::new(
                    &self.plugin.id,
                    AuditKind::LimitHit,
                    Some(CapabilityId::Kv),
                    format!("kv quota exceeded: {detail}"),
                ));
                Error::QuotaExceeded(detail)
            }
            KvError::NotAnInteger(detail) => Error::InvalidInput(detail),
            KvError::Backend(detail) => {
                tracing::error!(plugin = %self.plugin.id, "kv backend failed: {detail}");
                Error::Internal("storage is unavailable".into())
            }
        }
    }
}

impl Host for KvHost<'_> {
    #[tracing::instrument(level = "debug", skip_all, fields(plugin = %self.plugin.id))]
    fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, Error> {
        self.check_key(&key)?;
        self.plugin
            .services
            .kv
            .get(&self.plugin.id, &key)
            .map_err(|e| self.map(e))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(plugin = %self.plugin.id))]
    fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), Error> {
        self.check_key(&key)?;
        self.check_value(&value)?;
        let quota = self.grant().quota;
        self.plugin
            .services
            .kv
            .set(&self.plugin.id, &key, &value, quota)
            .map_err(|e| self.map(e))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(plugin = %self.plugin.id))]
    fn delete(&mut self, key: String) -> Result<bool, Error> {
        self.check_key(&key)?;
        self.plugin
            .services
            .kv
            .delete(&self.plugin.id, &key)
            .map_err(|e| self.map(e))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(plugin = %self.plugin.id))]
    fn list_keys(
        &mut self,
        prefix: String,
        cursor: Option<String>,
        limit: u32,
    ) -> Result<KeyPage, Error> {
        let page = self
            .plugin
            .services
            .kv
            .list_keys(&self.plugin.id, &prefix, cursor.as_deref(), limit)
            .map_err(|e| self.map(e))?;
        Ok(KeyPage {
            keys: page.keys,
            next_cursor: page.next_cursor,
        })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(plugin = %self.plugin.id))]
    fn increment(&mut self, key: String, delta: i64) -> Result<i64, Error> {
        self.check_key(&key)?;
        let quota = self.grant().quota;
        self.plugin
            .services
            .kv
            .increment(&self.plugin.id, &key, delta, quota)
            .map_err(|e| self.map(e))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(plugin = %self.plugin.id))]
    fn compare_and_swap(
        &mut self,
        key: String,
        expected: Option<Vec<u8>>,
        value: Vec<u8>,
    ) -> Result<bool, Error> {
        self.check_key(&key)?;
        self.check_value(&value)?;
        let quota = self.grant().quota;
        self.plugin
            .services
            .kv
            .compare_and_swap(&self.plugin.id, &key, expected.as_deref(), &value, quota)
            .map_err(|e| self.map(e))
    }
}
