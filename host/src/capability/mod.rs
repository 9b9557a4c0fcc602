//! The capability registry. Each capability lives in its own folder, which owns its whole
//! story: catalog facts ([`CapabilityInfo`]), manifest slice, policy slice, grant, host
//! implementation over a borrowed view, deny implementation and unit tests. No module in
//! here imports the runtime: the runtime hands each capability a view of one call through
//! [`CallViews`].
//!
//! Adding a capability is its folder plus one line in [`for_each_capability!`]; every
//! table below (ids, manifest and policy tables, grants, views, linking) is generated from
//! that list, so a capability missing from any of them is a compile error.

/// The one list of capabilities, handed to `$then!`. Sections: `baseline` imports are
/// linked for every plugin, `imports` are gated by manifest ∩ policy, `exports` are
/// services the plugin offers and the host calls.
macro_rules! for_each_capability {
    ($then:ident) => {
        $then! {
            baseline { Log: log => log::Log }
            imports {
                Kv: kv => kv::Kv,
                Http: http => http::Http,
                Secrets: secrets => secrets::Secrets,
                Config: config => config::Config,
                Jobs: jobs => jobs::Jobs,
                Sql: sql => sql::Sql,
                Events: events => events::Events,
            }
            exports {
                Mcp: mcp => mcp::Mcp,
                Routes: routes => routes::Routes,
                Lifecycle: lifecycle => lifecycle::Lifecycle,
            }
        }
    };
}

pub mod config;
mod decision;
pub mod events;
pub mod http;
mod id;
pub mod jobs;
pub mod kv;
pub mod lifecycle;
pub mod log;
pub mod mcp;
pub mod routes;
mod scope;
pub mod secrets;
pub mod sql;
pub mod wasi;

pub use decision::{Decision, Verdict};
pub use id::CapabilityId;
pub use scope::{CallScope, Deadline, Denials, FAULT_RECORDS_PER_SECOND, faults};

use crate::storage::StateStore;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fmt::Debug;
use wasmtime::component::Linker;

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
    /// Its interface in the `capstan:plugin` contract, e.g. `kv` (version-checked).
    pub interface: &'static str,
    /// Standard interfaces that map to it too, by full name with version (exact match),
    /// e.g. `wasi:config/store@0.2.0-rc.1`.
    pub standard: &'static [&'static str],
    /// Contract interfaces the plugin exports for it besides `interface` (an import
    /// capability may also be a service the host calls, e.g. `jobs`).
    pub exports: &'static [&'static str],
    pub direction: Direction,
}

/// A manifest or policy slice: plain data read from TOML and shown as JSON.
pub trait Slice:
    Clone + Debug + Default + PartialEq + Serialize + DeserializeOwned + Send + Sync + 'static
{
}

impl<T> Slice for T where
    T: Clone + Debug + Default + PartialEq + Serialize + DeserializeOwned + Send + Sync + 'static
{
}

/// A capability that manifests declare and policies grant.
pub trait Capability: 'static {
    /// Registry facts.
    const INFO: CapabilityInfo;
    /// Manifest `[capabilities.<key>]`.
    type Request: Slice;
    /// Policy `[…capabilities.<key>]`.
    type Allowed: Slice;
    /// What manifest ∩ policy yields: the bounds the host enforces.
    type Grant: Clone + Debug + PartialEq + Serialize + Send + Sync + 'static;

    /// manifest ∩ policy; `Err` says why it is withheld.
    fn grant(request: &Self::Request, allowed: &Self::Allowed) -> Result<Self::Grant, String>;

    /// Check a manifest's request on its own (its schema, its names).
    fn check_request(request: &Self::Request) -> Result<(), String> {
        let _ = request;
        Ok(())
    }

    /// Check a policy's allowance on its own (its ranges).
    fn check_allowed(allowed: &Self::Allowed) -> Result<(), String> {
        let _ = allowed;
        Ok(())
    }

    /// The contract interfaces a plugin declaring `request` must export: by default the
    /// capability's own service interfaces (none for a pure import).
    fn required_exports(request: &Self::Request) -> Vec<&'static str> {
        let _ = request;
        match Self::INFO.direction {
            Direction::Export => vec![Self::INFO.interface],
            Direction::Import => Self::INFO.exports.to_vec(),
        }
    }

    /// What a policy allows when it says nothing about this capability: `None` (deny by
    /// default) for everything that reaches beyond the plugin itself.
    fn implied() -> Option<Self::Allowed> {
        None
    }

    /// Before a version goes live: check that what the plugin already stored under this
    /// capability still fits the new version's request (e.g. stored settings against a
    /// new schema).
    fn check_state(
        request: &Self::Request,
        plugin: &str,
        state: &dyn StateStore,
    ) -> Result<(), String> {
        let _ = (request, plugin, state);
        Ok(())
    }
}

/// A capability the plugin imports: the host implements its interface(s).
pub trait Import: Capability {
    /// The host's view of one call, borrowed from the runtime's per-call state.
    type View<'a>;

    /// Link the real host when granted, the deny implementation otherwise.
    fn link<T: 'static>(
        linker: &mut Linker<T>,
        decision: &Decision<Self::Grant>,
        view: fn(&mut T) -> Self::View<'_>,
        scope: fn(&mut T) -> CallScope<'_>,
    ) -> wasmtime::Result<()>;
}

/// A capability linked for every plugin, never declared or withheld (`log`).
pub trait Baseline: 'static {
    const INFO: CapabilityInfo;
    /// The host's view of one call.
    type View<'a>;

    fn link<T: 'static>(
        linker: &mut Linker<T>,
        view: fn(&mut T) -> Self::View<'_>,
    ) -> wasmtime::Result<()>;
}

/// Generates the tables from [`for_each_capability!`].
macro_rules! define_registry {
    (
        baseline { $($bv:ident: $bk:ident => $bm:ident::$bt:ident),* $(,)? }
        imports { $($iv:ident: $ik:ident => $im:ident::$it:ident),* $(,)? }
        exports { $($ev:ident: $ek:ident => $em:ident::$et:ident),* $(,)? }
    ) => {
        impl CapabilityId {
            /// This capability's registry entry.
            pub fn info(self) -> &'static CapabilityInfo {
                match self {
                    $( CapabilityId::$bv => &<$bm::$bt as Baseline>::INFO, )*
                    $( CapabilityId::$iv => &<$im::$it as Capability>::INFO, )*
                    $( CapabilityId::$ev => &<$em::$et as Capability>::INFO, )*
                }
            }
        }

        /// What a manifest asks for: one optional table per capability.
        #[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
        #[serde(deny_unknown_fields)]
        pub struct Requested {
            $(
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub $ik: Option<<$im::$it as Capability>::Request>,
            )*
            $(
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub $ek: Option<<$em::$et as Capability>::Request>,
            )*
        }

        /// What a policy entry allows: one optional table per capability.
        #[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
        #[serde(deny_unknown_fields)]
        pub struct Allowed {
            $(
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub $ik: Option<<$im::$it as Capability>::Allowed>,
            )*
            $(
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub $ek: Option<<$em::$et as Capability>::Allowed>,
            )*
        }

        /// manifest ∩ policy, decided per capability (baseline ones are always granted).
        #[derive(Debug, Clone, PartialEq, Serialize)]
        pub struct Grants {
            $( pub $ik: Decision<<$im::$it as Capability>::Grant>, )*
            $( pub $ek: Decision<<$em::$et as Capability>::Grant>, )*
        }

        impl Requested {
            /// Whether the manifest declares capability `id` (baseline ones always count).
            pub fn declares(&self, id: CapabilityId) -> bool {
                match id {
                    $( CapabilityId::$bv => true, )*
                    $( CapabilityId::$iv => self.$ik.is_some(), )*
                    $( CapabilityId::$ev => self.$ek.is_some(), )*
                }
            }

            /// Every contract interface the declared capabilities need the plugin to
            /// export, with the capability that needs it.
            pub fn required_exports(&self) -> Vec<(CapabilityId, &'static str)> {
                let mut required = Vec::new();
                $(
                    if let Some(request) = &self.$ik {
                        required.extend(<$im::$it as Capability>::required_exports(request)
                            .into_iter().map(|interface| (CapabilityId::$iv, interface)));
                    }
                )*
                $(
                    if let Some(request) = &self.$ek {
                        required.extend(<$em::$et as Capability>::required_exports(request)
                            .into_iter().map(|interface| (CapabilityId::$ev, interface)));
                    }
                )*
                required
            }

            /// Check every declared table on its own; `Err` names the table and the problem.
            pub fn check(&self) -> Result<(), String> {
                $(
                    if let Some(request) = &self.$ik {
                        <$im::$it as Capability>::check_request(request)
                            .map_err(|problem| format!("[capabilities.{}]: {problem}", stringify!($ik)))?;
                    }
                )*
                $(
                    if let Some(request) = &self.$ek {
                        <$em::$et as Capability>::check_request(request)
                            .map_err(|problem| format!("[capabilities.{}]: {problem}", stringify!($ek)))?;
                    }
                )*
                Ok(())
            }

            /// Check `plugin`'s stored state against every declared capability (see
            /// [`Capability::check_state`]); `Err` names the capability and the problem.
            pub fn check_state(
                &self,
                plugin: &str,
                state: &dyn StateStore,
            ) -> Result<(), (CapabilityId, String)> {
                $(
                    if let Some(request) = &self.$ik {
                        <$im::$it as Capability>::check_state(request, plugin, state)
                            .map_err(|problem| (CapabilityId::$iv, problem))?;
                    }
                )*
                $(
                    if let Some(request) = &self.$ek {
                        <$em::$et as Capability>::check_state(request, plugin, state)
                            .map_err(|problem| (CapabilityId::$ev, problem))?;
                    }
                )*
                Ok(())
            }
        }

        impl Allowed {
            /// These allowances, falling back to `defaults` and then to what each
            /// capability implies, capability by capability.
            pub fn or(self, defaults: &Allowed) -> Allowed {
                Allowed {
                    $( $ik: self.$ik.or_else(|| defaults.$ik.clone()).or_else(<$im::$it as Capability>::implied), )*
                    $( $ek: self.$ek.or_else(|| defaults.$ek.clone()).or_else(<$em::$et as Capability>::implied), )*
                }
            }

            /// Withhold capability `id` (baseline ones cannot be withheld).
            pub fn remove(&mut self, id: CapabilityId) {
                match id {
                    $( CapabilityId::$bv => {} )*
                    $( CapabilityId::$iv => self.$ik = None, )*
                    $( CapabilityId::$ev => self.$ek = None, )*
                }
            }

            /// Whether capability `id` is allowed at all.
            pub fn allows(&self, id: CapabilityId) -> bool {
                match id {
                    $( CapabilityId::$bv => true, )*
                    $( CapabilityId::$iv => self.$ik.is_some(), )*
                    $( CapabilityId::$ev => self.$ek.is_some(), )*
                }
            }

            /// Check every table; `Err` names `entry.capabilities.<key>` and the problem.
            pub(crate) fn check(&self, entry: &str) -> Result<(), String> {
                $(
                    if let Some(allowed) = &self.$ik {
                        <$im::$it as Capability>::check_allowed(allowed).map_err(|problem| {
                            format!("`{entry}.capabilities.{}`: {problem}", stringify!($ik))
                        })?;
                    }
                )*
                $(
                    if let Some(allowed) = &self.$ek {
                        <$em::$et as Capability>::check_allowed(allowed).map_err(|problem| {
                            format!("`{entry}.capabilities.{}`: {problem}", stringify!($ek))
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
                    $( $ik: Decision::decide::<$im::$it>(requested.$ik.as_ref(), allowed.$ik.as_ref()), )*
                    $( $ek: Decision::decide::<$em::$et>(requested.$ek.as_ref(), allowed.$ek.as_ref()), )*
                }
            }

            /// `(capability, verdict, reason if denied)` for every capability, baseline first.
            pub fn summary(&self) -> Vec<(CapabilityId, Verdict, Option<&str>)> {
                vec![
                    $( (CapabilityId::$bv, Verdict::Granted, None), )*
                    $( (CapabilityId::$iv, self.$ik.verdict(), self.$ik.reason()), )*
                    $( (CapabilityId::$ev, self.$ek.verdict(), self.$ek.reason()), )*
                ]
            }

            /// Whether capability `id` is granted (baseline ones always are).
            pub fn is_granted(&self, id: CapabilityId) -> bool {
                match id {
                    $( CapabilityId::$bv => true, )*
                    $( CapabilityId::$iv => self.$ik.granted().is_some(), )*
                    $( CapabilityId::$ev => self.$ek.granted().is_some(), )*
                }
            }
        }

        /// How the runtime hands each capability its view of one call: one method per
        /// baseline and import capability, plus the [`CallScope`] deny implementations use.
        /// The runtime implements this once; a capability it forgets does not compile.
        pub trait CallViews: Sized + 'static {
            /// Who is calling, for deny implementations and audit records.
            fn scope(&mut self) -> CallScope<'_>;
            $( fn $bk(&mut self) -> <$bm::$bt as Baseline>::View<'_>; )*
            $( fn $ik(&mut self) -> <$im::$it as Import>::View<'_>; )*
        }

        /// Link capability `id` into `linker`: baseline ones always, imports as decided in
        /// `grants` (real host or deny implementation), exports not at all.
        pub fn link<T: CallViews>(
            linker: &mut Linker<T>,
            id: CapabilityId,
            grants: &Grants,
        ) -> wasmtime::Result<()> {
            match id {
                $( CapabilityId::$bv => <$bm::$bt as Baseline>::link(linker, T::$bk), )*
                $( CapabilityId::$iv => <$im::$it as Import>::link(linker, &grants.$ik, T::$ik, T::scope), )*
                $( CapabilityId::$ev => Ok(()), )*
            }
        }
    };
}

for_each_capability!(define_registry);

impl CapabilityId {
    /// Catalog name, e.g. `storage.kv`.
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// The capability whose catalog name is `name` (e.g. `storage.kv`).
    pub fn from_name(name: &str) -> Option<CapabilityId> {
        CapabilityId::ALL
            .iter()
            .copied()
            .find(|id| id.info().name == name)
    }

    /// The capability whose manifest/policy key is `key` (e.g. `kv`).
    pub fn from_key(key: &str) -> Option<CapabilityId> {
        CapabilityId::ALL
            .iter()
            .copied()
            .find(|id| id.info().key == key)
    }

    /// The capability implemented by contract interface `interface` (e.g. `kv`).
    pub fn from_interface(interface: &str) -> Option<CapabilityId> {
        CapabilityId::ALL
            .iter()
            .copied()
            .find(|id| id.info().interface == interface)
    }

    /// The capability a plugin's export of contract interface `interface` serves (e.g.
    /// `handler` → routes, `jobs` → jobs).
    pub fn from_export(interface: &str) -> Option<CapabilityId> {
        CapabilityId::ALL.iter().copied().find(|id| {
            let info = id.info();
            (info.direction == Direction::Export && info.interface == interface)
                || info.exports.contains(&interface)
        })
    }

    /// The contract interfaces a plugin may export for this capability.
    pub fn export_interfaces(self) -> Vec<&'static str> {
        let info = self.info();
        match info.direction {
            Direction::Export => vec![info.interface],
            Direction::Import => info.exports.to_vec(),
        }
    }

    /// The capability a standard interface (full name with version) maps to.
    pub fn from_standard(name: &str) -> Option<CapabilityId> {
        CapabilityId::ALL
            .iter()
            .copied()
            .find(|id| id.info().standard.contains(&name))
    }
}

impl std::fmt::Display for CapabilityId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for CapabilityId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl utoipa::PartialSchema for CapabilityId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(CapabilityId::ALL.iter().map(|id| id.name())))
            .description(Some("Catalog name of a capability"))
            .into()
    }
}

impl utoipa::ToSchema for CapabilityId {}

/// A capability named by its manifest/policy key (e.g. `kv`), as in a policy's `deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByKey(pub CapabilityId);

impl Serialize for ByKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.info().key)
    }
}

impl<'de> Deserialize<'de> for ByKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let key = String::deserialize(deserializer)?;
        CapabilityId::from_key(&key).map(ByKey).ok_or_else(|| {
            let known: Vec<&str> = CapabilityId::ALL.iter().map(|id| id.info().key).collect();
            serde::de::Error::custom(format!(
                "unknown capability `{key}` (known: {})",
                known.join(", ")
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_names_keys_and_interfaces_are_unique() {
        for (i, a) in CapabilityId::ALL.iter().enumerate() {
            assert_eq!(a.info().id, *a, "{a:?}'s INFO names another id");
            for b in &CapabilityId::ALL[i + 1..] {
                assert_ne!(a.info().key, b.info().key);
                assert_ne!(a.info().name, b.info().name);
                assert_ne!(a.info().interface, b.info().interface);
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

    #[test]
    fn deny_lists_name_capabilities_by_key() {
        let parsed: Vec<ByKey> = serde_json::from_str(r#"["kv", "routes"]"#).unwrap();
        assert_eq!(
            parsed,
            [ByKey(CapabilityId::Kv), ByKey(CapabilityId::Routes)]
        );
        let error = serde_json::from_str::<Vec<ByKey>>(r#"["filesystem"]"#).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("unknown capability `filesystem`")
        );
    }
}
