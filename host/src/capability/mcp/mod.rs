//! `mcp`: the plugin's exported tools. Exposure is the operator's call: the policy may
//! allow all declared tools or name a subset. Calls to anything else are denied.

use super::{Capability, CapabilityId, CapabilityInfo, Direction};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The `mcp` capability.
pub struct Mcp;

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

/// The tools that may be listed and called.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Grant {
    pub tools: BTreeSet<String>,
}

impl Capability for Mcp {
    const INFO: CapabilityInfo = CapabilityInfo {
        id: CapabilityId::Mcp,
        name: "mcp",
        key: "mcp",
        interface: "mcp",
        standard: &[],
        direction: Direction::Export,
    };

    type Request = Request;
    type Allowed = Allowed;
    type Grant = Grant;

    fn grant(request: &Request, allowed: &Allowed) -> Result<Grant, String> {
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
}

#[cfg(test)]
mod tests {
    use crate::capability::{Decision, Grants, Requested};

    #[test]
    fn the_policy_may_expose_a_subset_of_the_declared_tools() {
        let requested: Requested = toml::from_str("[mcp]\ntools = [\"add\", \"rm\"]\n").unwrap();
        let subset = Grants::decide(
            &requested,
            &toml::from_str("[mcp]\ntools = [\"add\"]\n").unwrap(),
        );
        assert_eq!(subset.mcp.granted().unwrap().tools.len(), 1);
        let none = Grants::decide(&requested, &toml::from_str("[mcp]\ntools = []\n").unwrap());
        assert!(matches!(none.mcp, Decision::Denied { .. }));
    }
}
