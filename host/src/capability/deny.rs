//! Deny stubs: what a plugin reaches when it calls a capability it declared but the
//! policy withheld. Every call returns the WIT `denied` error and writes an audit record.

use super::CapabilityId;
use crate::audit::{AuditEvent, AuditKind};
use crate::bindings::capstan::plugin::kv::{self, KeyPage};
use crate::bindings::capstan::plugin::types::Error;
use crate::bindings::capstan::plugin::{http, secrets};
use crate::runtime::{CallState, PluginContext};
use wasmtime::component::HasData;

/// Marker selecting the deny implementation when linking.
pub(crate) struct DenyAll;

impl HasData for DenyAll {
    type Data<'a> = Denied<'a>;
}

/// The deny stub, seen from one call.
pub(crate) struct Denied<'a> {
    plugin: &'a PluginContext,
    call_id: &'a str,
}

pub(crate) fn view(state: &mut CallState) -> Denied<'_> {
    Denied {
        plugin: &state.plugin,
        call_id: &state.call_id,
    }
}

impl Denied<'_> {
    /// Audit the attempt and build the error the plugin sees.
    pub(crate) fn refuse(&self, capability: CapabilityId, operation: &str) -> Error {
        let detail = format!(
            "call {} used {capability}.{operation}, which the operator's policy does not grant",
            self.call_id
        );
        self.plugin.services.audit.record(AuditEvent::new(
            &self.plugin.id,
            AuditKind::Denied,
            Some(capability),
            detail,
        ));
        Error::Denied(format!(
            "{capability} is not granted to plugin `{}`",
            self.plugin.id
        ))
    }
}

impl kv::Host for Denied<'_> {
    fn get(&mut self, _key: String) -> Result<Option<Vec<u8>>, Error> {
        Err(self.refuse(CapabilityId::Kv, "get"))
    }

    fn set(&mut self, _key: String, _value: Vec<u8>) -> Result<(), Error> {
        Err(self.refuse(CapabilityId::Kv, "set"))
    }

    fn delete(&mut self, _key: String) -> Result<bool, Error> {
        Err(self.refuse(CapabilityId::Kv, "delete"))
    }

    fn list_keys(
        &mut self,
        _prefix: String,
        _cursor: Option<String>,
        _limit: u32,
    ) -> Result<KeyPage, Error> {
        Err(self.refuse(CapabilityId::Kv, "list-keys"))
    }

    fn increment(&mut self, _key: String, _delta: i64) -> Result<i64, Error> {
        Err(self.refuse(CapabilityId::Kv, "increment"))
    }

    fn compare_and_swap(
        &mut self,
        _key: String,
        _expected: Option<Vec<u8>>,
        _value: Vec<u8>,
    ) -> Result<bool, Error> {
        Err(self.refuse(CapabilityId::Kv, "compare-and-swap"))
    }
}

impl secrets::Host for Denied<'_> {
    fn get(&mut self, _name: String) -> Result<String, Error> {
        Err(self.refuse(CapabilityId::Secrets, "get"))
    }
}

impl http::Host for Denied<'_> {
    fn send(&mut self, _request: http::Request) -> Result<http::Response, Error> {
        Err(self.refuse(CapabilityId::Http, "send"))
    }
}
