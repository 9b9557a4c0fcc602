//! `http.outbound`: manifest and policy slices. The checked client (resolver, blocked
//! networks, redirects, caps) is not in this host yet, so the capability is marked
//! unavailable and a plugin importing it is refused at install.

use super::{CapabilityId, CapabilityInfo, Direction};
use serde::{Deserialize, Serialize};

/// Registry entry.
pub const INFO: CapabilityInfo = CapabilityInfo {
    id: CapabilityId::Http,
    name: "http.outbound",
    key: "http",
    interface: "http",
    direction: Direction::Import,
    available: false,
};

/// Manifest `[capabilities.http]`: the hosts the plugin wants to reach.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub hosts: Vec<String>,
}

/// Policy `[…capabilities.http]`: the host patterns the operator allows.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Allowed {
    pub hosts: Vec<String>,
}

impl Allowed {
    pub(crate) fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// The hosts both sides name.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Grant {
    pub hosts: Vec<String>,
}

/// manifest ∩ policy for outbound hosts (exact entries until the pattern grammar lands).
pub fn grant(request: &Request, allowed: &Allowed) -> Result<Grant, String> {
    let hosts: Vec<String> = request
        .hosts
        .iter()
        .filter(|h| allowed.hosts.contains(h))
        .cloned()
        .collect();
    if hosts.is_empty() {
        return Err("none of the requested hosts is allowed by the policy".into());
    }
    Ok(Grant { hosts })
}
