//! `secrets`: manifest and policy slices. Encrypted storage is not in this host yet, so
//! the capability is marked unavailable and a plugin importing it is refused at install.

use super::{CapabilityId, CapabilityInfo, Direction};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Registry entry.
pub const INFO: CapabilityInfo = CapabilityInfo {
    id: CapabilityId::Secrets,
    name: "secrets",
    key: "secrets",
    interface: "secrets",
    direction: Direction::Import,
    available: false,
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
