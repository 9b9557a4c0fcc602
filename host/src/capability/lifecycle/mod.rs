//! `lifecycle`: hooks the host calls when something happens to the plugin (installed or
//! upgraded, about to be removed, its settings or one of its secrets changed). Hooks run
//! with the plugin's own grants and nothing more, so the policy allows them unless it
//! withholds them; its `timeout` bounds each hook.

use super::{Capability, CapabilityId, CapabilityInfo, Direction};
use crate::policy::period::{Bounds, as_text};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A hook's deadline unless the policy sets one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The hook deadlines a policy may set: 1 ms to 5 minutes.
const TIMEOUTS: Bounds = Bounds::new(Duration::from_millis(1), Duration::from_secs(300));
/// The most `on-remove` may take, whatever the timeout: removal does not wait longer.
pub const REMOVE_BUDGET: Duration = Duration::from_secs(2);

/// The `lifecycle` capability.
pub struct Lifecycle;

/// Manifest `[capabilities.lifecycle]`: the plugin wants its hooks called.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Request {}

/// Policy `[…capabilities.lifecycle]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Allowed {
    /// Each hook's deadline (default 10s, at most 5m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

/// What bounds the hooks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Grant {
    #[serde(serialize_with = "as_text")]
    pub timeout: Duration,
}

fn timeout(allowed: &Allowed) -> Result<Duration, String> {
    TIMEOUTS.parse_or("timeout", allowed.timeout.as_deref(), DEFAULT_TIMEOUT)
}

/// One hook, as the host calls it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hook {
    /// This version was installed, upgrading `previous` if there was one.
    Install {
        previous: Option<String>,
    },
    Remove,
    ConfigChanged,
    /// Secret `name` was set or deleted.
    SecretChanged {
        name: String,
    },
}

impl Hook {
    /// Its WIT name, for audit records and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Hook::Install { .. } => "on-install",
            Hook::Remove => "on-remove",
            Hook::ConfigChanged => "on-config-changed",
            Hook::SecretChanged { .. } => "on-secret-changed",
        }
    }

    /// Its deadline under `grant`.
    pub fn deadline(&self, grant: &Grant) -> Duration {
        match self {
            Hook::Remove => grant.timeout.min(REMOVE_BUDGET),
            _ => grant.timeout,
        }
    }
}

impl Capability for Lifecycle {
    const INFO: CapabilityInfo = CapabilityInfo {
        id: CapabilityId::Lifecycle,
        name: "lifecycle",
        key: "lifecycle",
        interface: "lifecycle",
        standard: &[],
        exports: &[],
        direction: Direction::Export,
    };

    type Request = Request;
    type Allowed = Allowed;
    type Grant = Grant;

    fn grant(_request: &Request, allowed: &Allowed) -> Result<Grant, String> {
        Ok(Grant {
            timeout: timeout(allowed)?,
        })
    }

    fn check_allowed(allowed: &Allowed) -> Result<(), String> {
        timeout(allowed).map(drop)
    }

    fn implied() -> Option<Allowed> {
        Some(Allowed::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capability::{Decision, Requested};

    fn decide(manifest: &str, policy: &str) -> Decision<Grant> {
        crate::capability::scope::testing::grants(manifest, policy).lifecycle
    }

    #[test]
    fn hooks_are_allowed_unless_withheld_and_bounded_by_the_policy() {
        let granted = decide("[lifecycle]\n", "[lifecycle]\n");
        assert_eq!(granted.granted().unwrap().timeout, DEFAULT_TIMEOUT);
        let implied = crate::policy::Policy::deny_all().for_plugin("any");
        assert!(
            implied.capabilities.lifecycle.is_some(),
            "allowed by default"
        );
        let short = decide("[lifecycle]\n", "[lifecycle]\ntimeout = \"500ms\"\n");
        let grant = short.granted().unwrap();
        assert_eq!(
            Hook::ConfigChanged.deadline(grant),
            Duration::from_millis(500)
        );
        assert_eq!(
            Hook::Remove.deadline(&Grant {
                timeout: DEFAULT_TIMEOUT
            }),
            REMOVE_BUDGET
        );
        assert_eq!(decide("", ""), Decision::NotRequested);
        assert!(toml::from_str::<Requested>("[lifecycle]\nhooks = 1\n").is_err());
        assert!(
            crate::policy::Policy::parse("[defaults.capabilities.lifecycle]\ntimeout = \"1h\"\n")
                .is_err()
        );
    }
}
