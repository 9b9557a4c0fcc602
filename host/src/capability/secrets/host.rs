//! Host side of the WIT `secrets` interface.

use super::Grant;
use crate::bindings::capstan::plugin::secrets::Host;
use crate::bindings::capstan::plugin::types::Error;
use crate::capability::log::Redactions;
use crate::capability::{CallScope, CapabilityId};

/// The granted secrets, seen from one call.
pub struct SecretsHost<'a> {
    pub scope: CallScope<'a>,
    pub grant: &'a Grant,
    pub secrets: &'a crate::secrets::Secrets,
    /// Values read are redacted from the call's later log lines.
    pub redactions: &'a mut Redactions,
}

impl Host for SecretsHost<'_> {
    #[tracing::instrument(level = "debug", skip_all, fields(plugin = %self.scope.plugin))]
    fn get(&mut self, name: String) -> Result<String, Error> {
        let plugin = self.scope.plugin;
        if !self.grant.names.contains(&name) {
            self.scope.deny(
                CapabilityId::Secrets,
                format!(
                    "call {} asked for secret `{name}`, which is not declared and granted",
                    self.scope.call_id
                ),
            );
            return Err(Error::Denied(format!(
                "secret `{name}` is not granted to plugin `{plugin}`"
            )));
        }
        match self.secrets.get(plugin, &name) {
            Ok(Some(value)) => {
                self.redactions.add(&value);
                Ok(value)
            }
            Ok(None) => Err(Error::NotFound),
            Err(error) => {
                tracing::error!(plugin = %plugin, "reading secret `{name}` failed: {error}");
                Err(Error::Internal("secret store unavailable".into()))
            }
        }
    }
}
