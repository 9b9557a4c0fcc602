//! What a session may narrow and what the operator bounds. A session's own policy can
//! only withhold capabilities and lower limits, so the grant its plugins get is manifest ∩
//! session policy ∩ operator policy, decided by the same gate as every other plugin.

use crate::capability::ByKey;
use crate::policy::{Effective, LimitSettings, Period};
use serde::{Deserialize, Serialize};

/// A session's narrowing of the operator's policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionPolicy {
    /// Capabilities (by key, e.g. `http`) withheld from the session's plugins even where
    /// the operator's policy grants them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<String>)]
    pub deny: Vec<ByKey>,
    /// Limits for the session's plugins; each applies only where it is lower than the
    /// operator's.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub limits: LimitSettings,
}

impl SessionPolicy {
    /// `Err` names a limit that is zero (every limit is at least 1).
    pub fn check(&self) -> Result<(), String> {
        let limits = &self.limits;
        for (field, value) in [
            ("memory_mib", limits.memory_mib),
            ("table_elements", limits.table_elements),
            ("instances", limits.instances),
            ("deadline_ms", limits.deadline_ms),
            ("max_concurrent_calls", limits.max_concurrent_calls),
        ] {
            if value == Some(0) {
                return Err(format!("`policy.limits.{field}`: must be at least 1"));
            }
        }
        Ok(())
    }

    /// `operator` narrowed by this policy: fewer capabilities, never higher limits.
    pub fn narrow(&self, mut operator: Effective) -> Effective {
        for ByKey(withheld) in &self.deny {
            operator.capabilities.remove(*withheld);
        }
        let lower = |current: &mut u32, wanted: Option<u32>| {
            *current = wanted.map_or(*current, |wanted| wanted.min(*current));
        };
        let limits = &mut operator.limits;
        lower(&mut limits.memory_mib, self.limits.memory_mib);
        lower(&mut limits.table_elements, self.limits.table_elements);
        lower(&mut limits.instances, self.limits.instances);
        lower(&mut limits.deadline_ms, self.limits.deadline_ms);
        lower(
            &mut limits.max_concurrent_calls,
            self.limits.max_concurrent_calls,
        );
        operator
    }
}

/// The operator's `[sessions]` table: how many sessions and plugins a host keeps for
/// clients, and for how long.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionRules {
    /// Sessions open at once (default 64).
    pub max_sessions: Option<u32>,
    /// Plugins one session may hold (default 8).
    pub max_plugins: Option<u32>,
    /// Bytes the kv quotas granted to one session's plugins may add up to (default 64 MiB).
    pub max_kv_bytes: Option<u64>,
    /// Calls one session's plugins may run at once, together (default 32); each plugin's
    /// own `max_concurrent_calls` applies too.
    pub max_concurrent_calls: Option<u32>,
    /// Longest time to live a session may be given or renewed for, e.g. `12h` (default
    /// `7d`).
    pub max_ttl: Option<Period>,
}

/// Default for [`SessionRules::max_sessions`].
pub const DEFAULT_MAX_SESSIONS: u32 = 64;
/// Default for [`SessionRules::max_plugins`].
pub const DEFAULT_MAX_PLUGINS: u32 = 8;
/// Default for [`SessionRules::max_kv_bytes`].
pub const DEFAULT_MAX_KV_BYTES: u64 = 64 * 1024 * 1024;
/// Default for [`SessionRules::max_concurrent_calls`].
pub const DEFAULT_MAX_CONCURRENT_CALLS: u32 = 32;
/// Default for [`SessionRules::max_ttl`].
pub const DEFAULT_MAX_TTL: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

impl SessionRules {
    pub fn is_default(&self) -> bool {
        *self == SessionRules::default()
    }

    pub fn max_sessions(&self) -> usize {
        self.max_sessions.unwrap_or(DEFAULT_MAX_SESSIONS) as usize
    }

    pub fn max_plugins(&self) -> usize {
        self.max_plugins.unwrap_or(DEFAULT_MAX_PLUGINS) as usize
    }

    pub fn max_kv_bytes(&self) -> u64 {
        self.max_kv_bytes.unwrap_or(DEFAULT_MAX_KV_BYTES)
    }

    pub fn max_concurrent_calls(&self) -> u32 {
        self.max_concurrent_calls
            .unwrap_or(DEFAULT_MAX_CONCURRENT_CALLS)
            .max(1)
    }

    pub fn max_ttl(&self) -> std::time::Duration {
        self.max_ttl.map_or(DEFAULT_MAX_TTL, |Period(ttl)| ttl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capability::CapabilityId;
    use crate::policy::Policy;

    fn operator() -> Effective {
        Policy::parse(
            "[defaults.capabilities.kv]\n[defaults.capabilities.http]\nhosts = [\"https://*.example.com\"]\n[defaults.limits]\ndeadline_ms = 800\n",
        )
        .unwrap()
        .for_plugin("any")
    }

    #[test]
    fn a_session_policy_withholds_and_lowers_but_never_raises() {
        let session: SessionPolicy =
            toml::from_str("deny = [\"http\"]\n[limits]\ndeadline_ms = 100000\nmemory_mib = 8\n")
                .unwrap();
        let narrowed = session.narrow(operator());
        assert!(!narrowed.capabilities.allows(CapabilityId::Http));
        assert!(narrowed.capabilities.allows(CapabilityId::Kv));
        assert_eq!(
            narrowed.limits.deadline_ms, 800,
            "never above the operator's"
        );
        assert_eq!(narrowed.limits.memory_mib, 8, "lowered");
    }

    #[test]
    fn a_session_policy_cannot_grant_what_the_operator_does_not() {
        let unknown = toml::from_str::<SessionPolicy>("[capabilities.secrets]\n");
        assert!(unknown.is_err(), "a session policy has no grants to give");
        let narrowed = SessionPolicy::default().narrow(operator());
        assert!(!narrowed.capabilities.allows(CapabilityId::Secrets));
    }

    #[test]
    fn zero_limits_are_refused_by_name() {
        let zero: SessionPolicy = toml::from_str("[limits]\ndeadline_ms = 0\n").unwrap();
        assert!(zero.check().unwrap_err().contains("deadline_ms"));
    }
}
