//! The capability registry. Each capability lives in its own folder with its manifest
//! slice (`Request`), policy slice (`Allowed`), grant computation (`grant`), host
//! implementation and deny stub. Adding one = a folder, a line in [`REGISTRY`], a variant
//! of [`CapabilityId`] and a line in the `capabilities!` table below.

pub mod deny;
pub mod http;
pub mod kv;
pub mod log;
pub mod mcp;
pub mod routes;
pub mod secrets;
pub mod wasi;

use serde::{Deserialize, Serialize};

/// Every capability the host knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum CapabilityId {
    Log,
    Kv,
    Http,
    Secrets,
    Mcp,
    Routes,
}

/// Whether the plugin imports the interface (a power it uses) or exports it (a service it offers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Import,
    Export,
}

/// Static facts about one capability.
#[derive(Debug)]
pub struct CapabilityInfo {
    pub id: CapabilityId,
    /// Catalog name used in messages and audit records, e.g. `storage.kv`.
    pub name: &'static str,
    /// Key of its table in manifests and policies, e.g. `kv`.
    pub key: &'static str,
    /// Interface name in the `capstan:plugin` contract, e.g. `kv`.
    pub interface: &'static str,
    pub direction: Direction,
}

/// The registry: one line per capability.
pub const REGISTRY: [CapabilityInfo; 6] = [
    log::INFO,
    kv::INFO,
    http::INFO,
    secrets::INFO,
    mcp::INFO,
    routes::INFO,
];

impl CapabilityId {
    /// This capability's registry entry.
    pub fn info(self) -> &'static CapabilityInfo {
        REGISTRY
            .iter()
            .find(|info| info.id == self)
            .expect("every CapabilityId has a REGISTRY entry")
    }

    /// Catalog name, e.g. `storage.kv`.
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// The capability whose catalog name is `name` (e.g. `storage.kv`).
    pub fn from_name(name: &str) -> Option<CapabilityId> {
        REGISTRY
            .iter()
            .find(|info| info.name == name)
            .map(|info| info.id)
    }

    /// The capability whose manifest/policy key is `key`.
    pub fn from_key(key: &str) -> Option<CapabilityId> {
        REGISTRY
            .iter()
            .find(|info| info.key == key)
            .map(|info| info.id)
    }

    /// The capability implemented by contract interface `interface` (e.g. `handler`).
    pub fn from_interface(interface: &str) -> Option<CapabilityId> {
        REGISTRY
            .iter()
            .find(|info| info.interface == interface)
            .map(|info| info.id)
    }
}

impl std::fmt::Display for CapabilityId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The outcome of manifest ∩ policy for one capability.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "decision", rename_all = "kebab-case")]
pub enum Decision<G> {
    /// The manifest does not ask for it.
    NotRequested,
    /// Granted, with the bounds that apply.
    Granted { grant: G },
    /// Asked for but withheld; calls get the `denied` error and are audited.
    Denied { reason: String },
}

impl<G> Decision<G> {
    /// Decide from the manifest's request and the policy's allowance.
    fn decide<R, A>(
        requested: Option<&R>,
        allowed: Option<&A>,
        grant: fn(&R, &A) -> Result<G, String>,
    ) -> Decision<G> {
        match (requested, allowed) {
            (None, _) => Decision::NotRequested,
            (Some(_), None) => Decision::Denied {
                reason: "not granted by the operator's policy".into(),
            },
            (Some(request), Some(allowed)) => match grant(request, allowed) {
                Ok(grant) => Decision::Granted { grant },
                Err(reason) => Decision::Denied { reason },
            },
        }
    }

    /// The grant, if granted.
    pub fn granted(&self) -> Option<&G> {
        match self {
            Decision::Granted { grant } => Some(grant),
            _ => None,
        }
    }

    /// Short word for tables: `granted`, `denied` or `not requested`.
    pub fn word(&self) -> &'static str {
        match self {
            Decision::NotRequested => "not requested",
            Decision::Granted { .. } => "granted",
            Decision::Denied { .. } => "denied",
        }
    }
}

/// Generates the per-capability tables of manifests, policies and grants from one list.
macro_rules! capabilities {
    ($($key:ident => $module:ident :: $variant:ident),* $(,)?) => {
        /// What a manifest asks for: one optional table per capability.
        #[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
        #[serde(deny_unknown_fields)]
        pub struct Requested {
            $(
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub $key: Option<$module::Request>,
            )*
        }

        /// What a policy entry allows: one optional table per capability.
        #[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
        #[serde(deny_unknown_fields)]
        pub struct Allowed {
            $(
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub $key: Option<$module::Allowed>,
            )*
        }

        /// manifest ∩ policy, decided per capability. `log` is always granted.
        #[derive(Debug, Clone, PartialEq, Serialize)]
        pub struct Grants {
            $( pub $key: Decision<$module::Grant>, )*
        }

        impl Requested {
            /// Whether the manifest declares capability `id` (`log` always counts).
            pub fn declares(&self, id: CapabilityId) -> bool {
                match id {
                    CapabilityId::Log => true,
                    $( CapabilityId::$variant => self.$key.is_some(), )*
                }
            }
        }

        impl Allowed {
            /// These allowances, falling back to `defaults` capability by capability.
            pub fn or(self, defaults: &Allowed) -> Allowed {
                Allowed { $( $key: self.$key.or_else(|| defaults.$key.clone()), )* }
            }

            /// Withhold capability `id`.
            pub fn remove(&mut self, id: CapabilityId) {
                match id {
                    CapabilityId::Log => {}
                    $( CapabilityId::$variant => self.$key = None, )*
                }
            }

            /// True when nothing is allowed.
            pub fn is_empty(&self) -> bool {
                true $( && self.$key.is_none() )*
            }

            pub(crate) fn validate(&self, entry: &str) -> Result<(), String> {
                $(
                    if let Some(allowed) = &self.$key {
                        allowed.validate().map_err(|problem| {
                            format!("`{entry}.capabilities.{}`: {problem}", stringify!($key))
                        })?;
                    }
                )*
                Ok(())
            }
        }

        impl Grants {
            /// Compute manifest ∩ policy.
            pub fn decide(requested: &Requested, allowed: &Allowed) -> Grants {
                Grants {
                    $( $key: Decision::decide(requested.$key.as_ref(), allowed.$key.as_ref(), $module::grant), )*
                }
            }

            /// `(capability, decision word, reason if denied)` for every capability.
            pub fn summary(&self) -> Vec<(CapabilityId, &'static str, Option<&str>)> {
                let mut rows = vec![(CapabilityId::Log, "granted", None)];
                $(
                    let reason = match &self.$key {
                        Decision::Denied { reason } => Some(reason.as_str()),
                        _ => None,
                    };
                    rows.push((CapabilityId::$variant, self.$key.word(), reason));
                )*
                rows
            }

            /// Whether capability `id` is granted (`log` always is).
            pub fn is_granted(&self, id: CapabilityId) -> bool {
                match id {
                    CapabilityId::Log => true,
                    $( CapabilityId::$variant => self.$key.granted().is_some(), )*
                }
            }
        }
    };
}

capabilities! {
    kv => kv::Kv,
    http => http::Http,
    secrets => secrets::Secrets,
    mcp => mcp::Mcp,
    routes => routes::Routes,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_keys_and_interfaces_are_unique() {
        for (i, a) in REGISTRY.iter().enumerate() {
            for b in &REGISTRY[i + 1..] {
                assert_ne!(a.key, b.key);
                assert_ne!(a.interface, b.interface);
                assert_ne!(a.id, b.id);
            }
        }
    }

    #[test]
    fn requested_but_not_allowed_is_denied() {
        let requested: Requested = toml::from_str("[kv]\n[routes]\n").unwrap();
        let allowed: Allowed = toml::from_str("[routes]\n").unwrap();
        let grants = Grants::decide(&requested, &allowed);
        assert!(matches!(grants.kv, Decision::Denied { .. }));
        assert!(matches!(grants.routes, Decision::Granted { .. }));
        assert_eq!(grants.http, Decision::NotRequested);
    }

    #[test]
    fn allowed_but_not_requested_is_not_granted() {
        let allowed: Allowed = toml::from_str("[kv]\n").unwrap();
        let grants = Grants::decide(&Requested::default(), &allowed);
        assert!(!grants.is_granted(CapabilityId::Kv));
    }
}
