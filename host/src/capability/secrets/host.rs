//! Host side of the WIT `secrets` interface.

use crate::audit::{AuditEvent, AuditKind};
use crate::bindings::capstan::plugin::secrets::Host;
use crate::bindings::capstan::plugin::types::Error;
use crate::capability::CapabilityId;
use crate::runtime::CallState;
use wasmtime::component::HasData;

/// Marker selecting the granted implementation when linking.
pub(crate) struct Granted;

impl HasData for Granted {
    type Data<'a> = &'a mut CallState;
}

pub(crate) fn view(state: &mut CallState) -> &mut CallState {
    state
}

impl Host for &mut CallState {
    #[tracing::instrument(level = "debug", skip_all, fields(plugin = %self.plugin.id))]
    fn get(&mut self, name: String) -> Result<String, Error> {
        let plugin = self.plugin.clone();
        let granted = plugin
            .grants
            .secrets
            .granted()
            .is_some_and(|grant| grant.names.contains(&name));
        if !granted {
            plugin.services.audit.record(AuditEvent::new(
                &plugin.id,
                AuditKind::Denied,
                Some(CapabilityId::Secrets),
                format!(
                    "call {} asked for secret `{name}`, which is not declared and granted",
                    self.call_id
                ),
            ));
            return Err(Error::Denied(format!(
                "secret `{name}` is not granted to plugin `{}`",
                plugin.id
            )));
        }
        match plugin.services.secrets.get(&plugin.id, &name) {
            Ok(Some(value)) => {
                self.log.redact(&value);
                Ok(value)
            }
            Ok(None) => Err(Error::NotFound),
            Err(error) => {
                tracing::error!(plugin = %plugin.id, "reading secret `{name}` failed: {error}");
                Err(Error::Internal("secret store unavailable".into()))
            }
        }
    }
}
