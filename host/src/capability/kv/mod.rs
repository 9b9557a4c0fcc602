//! `storage.kv`: per-plugin key-value storage with size caps and a quota.

mod host;

use super::{CapabilityId, CapabilityInfo, Decision, Direction};
use crate::runtime::CallState;
use crate::storage::Quota;
use serde::{Deserialize, Serialize};
use wasmtime::component::Linker;

/// Registry entry.
pub const INFO: CapabilityInfo = CapabilityInfo {
    id: CapabilityId::Kv,
    name: "storage.kv",
    key: "kv",
    interface: "kv",
    direction: Direction::Import,
};

/// Default and largest key size.
pub const DEFAULT_MAX_KEY_BYTES: u32 = 512;
/// Default value size cap.
pub const DEFAULT_MAX_VALUE_BYTES: u32 = 1024 * 1024;
/// Default quota when neither side names one.
pub const DEFAULT_QUOTA: Quota = Quota {
    max_keys: 10_000,
    max_bytes: 64 * 1024 * 1024,
};

/// Manifest `[capabilities.kv]`: the quota the plugin wants.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub max_keys: Option<u64>,
    pub max_bytes: Option<u64>,
}

/// Policy `[…capabilities.kv]`: the most the operator allows.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Allowed {
    pub max_keys: Option<u64>,
    pub max_bytes: Option<u64>,
    pub max_key_bytes: Option<u32>,
    pub max_value_bytes: Option<u32>,
}

impl Allowed {
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self
            .max_key_bytes
            .is_some_and(|n| n == 0 || n > DEFAULT_MAX_KEY_BYTES)
        {
            return Err(format!("max_key_bytes must be 1..={DEFAULT_MAX_KEY_BYTES}"));
        }
        if self
            .max_value_bytes
            .is_some_and(|n| n == 0 || n > 16 * 1024 * 1024)
        {
            return Err("max_value_bytes must be 1..=16777216".into());
        }
        Ok(())
    }
}

/// What the plugin gets: the lower of wanted and allowed quota, and the size caps.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Grant {
    pub quota: Quota,
    pub max_key_bytes: u32,
    pub max_value_bytes: u32,
}

/// manifest ∩ policy for kv.
pub fn grant(request: &Request, allowed: &Allowed) -> Result<Grant, String> {
    let bound = |wanted: Option<u64>, allowed: Option<u64>, default: u64| {
        let ceiling = allowed.unwrap_or(default);
        wanted.map_or(ceiling, |w| w.min(ceiling))
    };
    Ok(Grant {
        quota: Quota {
            max_keys: bound(request.max_keys, allowed.max_keys, DEFAULT_QUOTA.max_keys),
            max_bytes: bound(
                request.max_bytes,
                allowed.max_bytes,
                DEFAULT_QUOTA.max_bytes,
            ),
        },
        max_key_bytes: allowed.max_key_bytes.unwrap_or(DEFAULT_MAX_KEY_BYTES),
        max_value_bytes: allowed.max_value_bytes.unwrap_or(DEFAULT_MAX_VALUE_BYTES),
    })
}

/// Link the real kv when granted, the deny stub otherwise.
pub(crate) fn link(
    linker: &mut Linker<CallState>,
    decision: &Decision<Grant>,
) -> wasmtime::Result<()> {
    use crate::bindings::capstan::plugin::kv::add_to_linker;
    match decision {
        Decision::Granted { .. } => add_to_linker::<CallState, host::Granted>(linker, host::view),
        _ => add_to_linker::<CallState, super::deny::DenyAll>(linker, super::deny::view),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_takes_the_lower_quota() {
        let request = Request {
            max_keys: Some(50),
            max_bytes: None,
        };
        let allowed = Allowed {
            max_keys: Some(10),
            max_bytes: Some(999),
            ..Allowed::default()
        };
        let grant = grant(&request, &allowed).unwrap();
        assert_eq!(
            grant.quota,
            Quota {
                max_keys: 10,
                max_bytes: 999
            }
        );
        assert_eq!(grant.max_key_bytes, DEFAULT_MAX_KEY_BYTES);
    }
}
