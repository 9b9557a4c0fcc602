//! `http.routes`: the plugin's exported `handler`, served under `/plugins/<id>/`.

pub mod response;

use super::{Capability, CapabilityId, CapabilityInfo, Direction};
use serde::{Deserialize, Serialize};

/// The `http.routes` capability.
pub struct Routes;

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

/// Requests whose path starts with `prefix` reach the plugin.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Grant {
    pub prefix: String,
}

impl Capability for Routes {
    const INFO: CapabilityInfo = CapabilityInfo {
        id: CapabilityId::Routes,
        name: "http.routes",
        key: "routes",
        interface: "handler",
        standard: &[],
        exports: &[],
        direction: Direction::Export,
    };

    type Request = Request;
    type Allowed = Allowed;
    type Grant = Grant;

    fn grant(request: &Request, _allowed: &Allowed) -> Result<Grant, String> {
        Ok(Grant {
            prefix: request.prefix.clone().unwrap_or_else(|| "/".into()),
        })
    }

    fn check_request(request: &Request) -> Result<(), String> {
        match &request.prefix {
            Some(prefix) if !prefix.starts_with('/') => Err(format!(
                "route prefix `{}` must start with `/`",
                crate::text::shown_name(prefix)
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::capability::{Allowed, Decision, Grants, Requested};

    #[test]
    fn routes_are_granted_only_when_the_policy_allows_them() {
        let requested: Requested = toml::from_str("[routes]\nprefix = \"/api\"\n").unwrap();
        let granted = Grants::decide(&requested, &toml::from_str("[routes]\n").unwrap());
        assert_eq!(granted.routes.granted().unwrap().prefix, "/api");
        let withheld = Grants::decide(&requested, &Allowed::default());
        assert!(matches!(withheld.routes, Decision::Denied { .. }));
    }

    #[test]
    fn a_prefix_without_a_leading_slash_is_refused_in_the_manifest() {
        let requested: Requested = toml::from_str("[routes]\nprefix = \"api\"\n").unwrap();
        assert!(
            requested
                .check()
                .unwrap_err()
                .contains("must start with `/`")
        );
    }
}
