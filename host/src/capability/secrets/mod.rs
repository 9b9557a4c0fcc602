//! `secrets`: a plugin reads only names its manifest declares and the policy grants.
//! Values are decrypted per call, redacted from the plugin's log, never audited.

mod host;

use super::{CapabilityId, CapabilityInfo, Decision, Direction};
use crate::runtime::CallState;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use wasmtime::component::Linker;

/// Registry entry.
pub const INFO: CapabilityInfo = CapabilityInfo {
    id: CapabilityId::Secrets,
    name: "secrets",
    key: "secrets",
    interface: "secrets",
    direction: Direction::Import,
};

/// Manifest `[capabilities.secrets]`: the secret names the plugin wants.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub names: Vec<String>,
}

/// Policy `[…capabilities.secrets]`: the names the operator grants.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Allowed {
    pub names: Vec<String>,
}

impl Allowed {
    pub(crate) fn validate(&self) -> Result<(), String> {
        for name in &self.names {
            crate::secrets::validate_name(name).map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// Names both sides list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Grant {
    pub names: BTreeSet<String>,
}

/// manifest ∩ policy for secret names.
pub fn grant(request: &Request, allowed: &Allowed) -> Result<Grant, String> {
    let names: BTreeSet<String> = request
        .names
        .iter()
        .filter(|n| allowed.names.contains(n))
        .cloned()
        .collect();
    if names.is_empty() {
        return Err("none of the requested secret names is granted by the policy".into());
    }
    Ok(Grant { names })
}

/// Link the real secrets host when granted, the deny stub otherwise.
pub(crate) fn link(
    linker: &mut Linker<CallState>,
    decision: &Decision<Grant>,
) -> wasmtime::Result<()> {
    use crate::bindings::capstan::plugin::secrets::add_to_linker;
    match decision {
        Decision::Granted { .. } => add_to_linker::<CallState, host::Granted>(linker, host::view),
        _ => add_to_linker::<CallState, super::deny::DenyAll>(linker, super::deny::view),
    }
}
