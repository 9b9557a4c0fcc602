//! `http.routes`: the plugin's exported `handler`, served under `/plugins/<id>/`.

use super::{CapabilityId, CapabilityInfo, Direction};
use serde::{Deserialize, Serialize};

/// Registry entry.
pub const INFO: CapabilityInfo = CapabilityInfo {
    id: CapabilityId::Routes,
    name: "http.routes",
    key: "routes",
    interface: "handler",
    direction: Direction::Export,
};

/// Manifest `[capabilities.routes]`: the path prefix (below `/plugins/<id>`) it serves.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub prefix: Option<String>,
}

/// Policy `[…capabilities.routes]`: presence allows routing to the plugin.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Allowed {}

impl Allowed {
    pub(crate) fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// Requests whose path starts with `prefix` reach the plugin.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Grant {
    pub prefix: String,
}

/// manifest ∩ policy for routes.
pub fn grant(request: &Request, _allowed: &Allowed) -> Result<Grant, String> {
    let prefix = request.prefix.clone().unwrap_or_else(|| "/".into());
    if !prefix.starts_with('/') {
        return Err(format!("route prefix `{prefix}` must start with `/`"));
    }
    Ok(Grant { prefix })
}
