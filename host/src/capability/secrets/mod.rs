//! `secrets`: a plugin reads only names its manifest declares and the policy grants.
//! Values are decrypted per call, redacted from the plugin's log, never audited.

mod deny;
mod host;

pub use host::SecretsHost;

use super::{CallScope, Capability, CapabilityId, CapabilityInfo, Decision, Direction, Import};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use wasmtime::component::{HasData, Linker};

/// The `secrets` capability.
pub struct Secrets;

/// Manifest `[capabilities.secrets]`: the secret names the plugin wants.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub names: Vec<String>,
}

/// Policy `[…capabilities.secrets]`: the names the operator grants.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Allowed {
    pub names: Vec<String>,
}

/// Names both sides list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Grant {
    pub names: BTreeSet<String>,
}

impl Capability for Secrets {
    const INFO: CapabilityInfo = CapabilityInfo {
        id: CapabilityId::Secrets,
        name: "secrets",
        key: "secrets",
        interface: "secrets",
        standard: &[],
        exports: &[],
        direction: Direction::Import,
    };

    type Request = Request;
    type Allowed = Allowed;
    type Grant = Grant;

    fn grant(request: &Request, allowed: &Allowed) -> Result<Grant, String> {
        let names: BTreeSet<String> = request
            .names
            .iter()
            .filter(|n| allowed.names.contains(n))
            .cloned()
            .collect();
        if names.is_empty() {
            return Err("none of the requested secret names is granted by the policy".into());
        }
        Ok(Grant { names })
    }

    fn check_request(request: &Request) -> Result<(), String> {
        check_names(&request.names)
    }

    fn check_allowed(allowed: &Allowed) -> Result<(), String> {
        check_names(&allowed.names)
    }
}

fn check_names(names: &[String]) -> Result<(), String> {
    names
        .iter()
        .try_for_each(|name| crate::secrets::validate_name(name).map_err(|e| e.to_string()))
}

impl Import for Secrets {
    type View<'a> = SecretsHost<'a>;

    fn link<T: 'static>(
        linker: &mut Linker<T>,
        decision: &Decision<Grant>,
        view: fn(&mut T) -> SecretsHost<'_>,
        scope: fn(&mut T) -> CallScope<'_>,
    ) -> wasmtime::Result<()> {
        use crate::bindings::capstan::plugin::secrets::add_to_linker;
        match decision {
            Decision::Granted { .. } => add_to_linker::<T, Secrets>(linker, view),
            _ => add_to_linker::<T, deny::Withheld>(linker, scope),
        }
    }
}

impl HasData for Secrets {
    type Data<'a> = SecretsHost<'a>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::capstan::plugin::secrets::Host;
    use crate::bindings::capstan::plugin::types::Error;
    use crate::capability::log::Redactions;
    use crate::capability::scope::testing::TestScope;
    use crate::secrets::{Keyring, MasterKey};
    use crate::storage::MemoryKv;
    use std::sync::Arc;

    fn decide(manifest: &str, policy: &str) -> Decision<Grant> {
        crate::capability::scope::testing::grants(manifest, policy).secrets
    }

    fn vault() -> crate::secrets::Secrets {
        let secrets = crate::secrets::Secrets::new(
            Arc::new(MemoryKv::default()),
            Keyring::single(MasterKey::generate().0),
        );
        secrets.set("plugin", "token", "s3cret").unwrap();
        secrets.set("plugin", "other", "hidden").unwrap();
        secrets
    }

    #[test]
    fn granted_names_are_read_and_redacted_and_others_denied_and_audited() {
        let decision = decide(
            "[secrets]\nnames = [\"token\", \"other\"]\n",
            "[secrets]\nnames = [\"token\"]\n",
        );
        let secrets = vault();
        let test = TestScope::new();
        let mut redactions = Redactions::default();
        let mut host = SecretsHost {
            scope: test.scope(),
            grant: decision.granted().unwrap(),
            secrets: &secrets,
            redactions: &mut redactions,
        };
        assert_eq!(host.get("token".into()).unwrap(), "s3cret");
        assert!(matches!(host.get("other".into()), Err(Error::Denied(_))));
        assert_eq!(test.denials_of(CapabilityId::Secrets), 1);
        assert!(
            test.audit
                .events()
                .iter()
                .all(|e| !e.detail.contains("s3cret")),
            "no value in the audit trail"
        );
    }

    #[test]
    fn withheld_secrets_answer_denied_for_every_name() {
        assert!(matches!(
            decide("[secrets]\nnames = [\"token\"]\n", ""),
            Decision::Denied { .. }
        ));
        let test = TestScope::new();
        let mut scope = test.scope();
        assert!(matches!(
            Host::get(&mut scope, "token".into()),
            Err(Error::Denied(_))
        ));
        assert_eq!(test.denials_of(CapabilityId::Secrets), 1);
    }
}
