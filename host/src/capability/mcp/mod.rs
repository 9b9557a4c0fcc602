//! `mcp`: the plugin's exported tools. Exposure is the operator's call: the policy may
//! allow all declared tools or name a subset. Calls to anything else are denied.

use super::{CapabilityId, CapabilityInfo, Direction};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Registry entry.
pub const INFO: CapabilityInfo = CapabilityInfo {
    id: CapabilityId::Mcp,
    name: "mcp",
    key: "mcp",
    interface: "mcp",
    direction: Direction::Export,
};

/// Manifest `[capabilities.mcp]`: the tools the plugin offers.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub tools: Vec<String>,
}

/// Policy `[…capabilities.mcp]`: which tools may be exposed (absent = all declared).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Allowed {
    pub tools: Option<Vec<String>>,
}

impl Allowed {
    pub(crate) fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// The tools that may be listed and called.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Grant {
    pub tools: BTreeSet<String>,
}

/// manifest ∩ policy for tools.
pub fn grant(request: &Request, allowed: &Allowed) -> Result<Grant, String> {
    let tools: BTreeSet<String> = request
        .tools
        .iter()
        .filter(|t| allowed.tools.as_ref().is_none_or(|a| a.contains(t)))
        .cloned()
        .collect();
    if tools.is_empty() {
        return Err("none of the declared tools is allowed by the policy".into());
    }
    Ok(Grant { tools })
}
