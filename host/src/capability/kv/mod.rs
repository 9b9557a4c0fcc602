//! `storage.kv`: per-plugin key-value storage with size caps and a quota.

mod deny;
mod host;
mod store;

pub use host::KvHost;
pub use store::{KeyPage, KvStore, MAX_PAGE, Quota, Update, Updated};
pub(crate) use store::{Usage, page};

use super::{CallScope, Capability, CapabilityId, CapabilityInfo, Decision, Direction, Import};
use serde::{Deserialize, Serialize};
use wasmtime::component::{HasData, Linker};

/// The `storage.kv` capability.
pub struct Kv;

/// Default and largest key size.
pub const DEFAULT_MAX_KEY_BYTES: u32 = 512;
/// Default value size cap.
pub const DEFAULT_MAX_VALUE_BYTES: u32 = 1024 * 1024;
/// Largest value size cap a policy may set.
pub const MAX_VALUE_BYTES: u32 = 16 * 1024 * 1024;
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

/// What the plugin gets: the lower of wanted and allowed quota, and the size caps.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Grant {
    pub quota: Quota,
    pub max_key_bytes: u32,
    pub max_value_bytes: u32,
}

impl Capability for Kv {
    const INFO: CapabilityInfo = CapabilityInfo {
        id: CapabilityId::Kv,
        name: "storage.kv",
        key: "kv",
        interface: "kv",
        standard: &[],
        exports: &[],
        direction: Direction::Import,
    };

    type Request = Request;
    type Allowed = Allowed;
    type Grant = Grant;

    fn grant(request: &Request, allowed: &Allowed) -> Result<Grant, String> {
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

    fn check_allowed(allowed: &Allowed) -> Result<(), String> {
        if allowed
            .max_key_bytes
            .is_some_and(|n| n == 0 || n > DEFAULT_MAX_KEY_BYTES)
        {
            return Err(format!("max_key_bytes must be 1..={DEFAULT_MAX_KEY_BYTES}"));
        }
        if allowed
            .max_value_bytes
            .is_some_and(|n| n == 0 || n > MAX_VALUE_BYTES)
        {
            return Err(format!("max_value_bytes must be 1..={MAX_VALUE_BYTES}"));
        }
        Ok(())
    }
}

impl Import for Kv {
    type View<'a> = KvHost<'a>;

    fn link<T: 'static>(
        linker: &mut Linker<T>,
        decision: &Decision<Grant>,
        view: fn(&mut T) -> KvHost<'_>,
        scope: fn(&mut T) -> CallScope<'_>,
    ) -> wasmtime::Result<()> {
        use crate::bindings::capstan::plugin::kv::add_to_linker;
        match decision {
            Decision::Granted { .. } => add_to_linker::<T, Kv>(linker, view),
            _ => add_to_linker::<T, deny::Withheld>(linker, scope),
        }
    }
}

impl HasData for Kv {
    type Data<'a> = KvHost<'a>;
}

/// Delete every key of `namespace` (a plugin removed with `purge`); returns how many.
pub fn purge(store: &dyn KvStore, namespace: &str) -> Result<u64, crate::storage::StoreError> {
    let deadline = || super::Deadline::after(std::time::Duration::from_secs(30));
    let mut removed = 0;
    loop {
        let page = store.list_keys(namespace, "", None, MAX_PAGE, deadline())?;
        if page.keys.is_empty() {
            return Ok(removed);
        }
        for key in &page.keys {
            if store.delete(namespace, key, deadline())? {
                removed += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::capstan::plugin::kv::Host;
    use crate::bindings::capstan::plugin::types::Error;
    use crate::capability::scope::testing::TestScope;
    use crate::storage::MemoryKv;

    /// The kv decision for a manifest and a policy slice written as TOML.
    fn decide(manifest: &str, policy: &str) -> Decision<Grant> {
        crate::capability::scope::testing::grants(manifest, policy).kv
    }

    #[test]
    fn grant_takes_the_lower_quota() {
        let decision = decide(
            "[kv]\nmax_keys = 50\n",
            "[kv]\nmax_keys = 10\nmax_bytes = 999\n",
        );
        let grant = decision.granted().unwrap();
        assert_eq!(
            grant.quota,
            Quota {
                max_keys: 10,
                max_bytes: 999
            }
        );
        assert_eq!(grant.max_key_bytes, DEFAULT_MAX_KEY_BYTES);
    }

    #[test]
    fn granted_kv_stores_within_its_caps_and_quota() {
        let decision = decide("[kv]\nmax_keys = 2\n", "[kv]\nmax_value_bytes = 8\n");
        let test = TestScope::new();
        let store = MemoryKv::default();
        let mut kv = KvHost {
            scope: test.scope(),
            grant: decision.granted().unwrap(),
            store: &store,
        };
        kv.set("a".into(), b"1".to_vec()).unwrap();
        assert_eq!(kv.get("a".into()).unwrap(), Some(b"1".to_vec()));
        assert_eq!(kv.increment("n".into(), 5).unwrap(), 5);
        assert!(matches!(
            kv.set("b".into(), b"1".to_vec()),
            Err(Error::QuotaExceeded(_))
        ));
        assert!(matches!(
            kv.set("a".into(), vec![0; 9]),
            Err(Error::TooLarge(_))
        ));
        assert!(matches!(kv.get(String::new()), Err(Error::InvalidInput(_))));
        assert!(matches!(kv.get("a\0b".into()), Err(Error::InvalidInput(_))));
        assert!(matches!(
            kv.list_keys("a\0".into(), None, 10),
            Err(Error::InvalidInput(_))
        ));
        assert_eq!(
            store
                .get(
                    "plugin",
                    "a",
                    crate::capability::Deadline::after(std::time::Duration::from_secs(5))
                )
                .unwrap(),
            Some(b"1".to_vec())
        );
        assert_eq!(test.denials_of(CapabilityId::Kv), 0);
    }

    #[test]
    fn withheld_kv_answers_denied_and_audits_without_touching_the_store() {
        let decision = decide("[kv]\n", "");
        assert!(matches!(decision, Decision::Denied { .. }));
        let test = TestScope::new();
        let mut kv = test.scope();
        assert!(matches!(
            Host::get(&mut kv, "a".into()),
            Err(Error::Denied(_))
        ));
        assert!(matches!(
            Host::set(&mut kv, "a".into(), b"1".to_vec()),
            Err(Error::Denied(_))
        ));
        assert_eq!(test.denials_of(CapabilityId::Kv), 2);
    }
}
