//! The consent view of installed plugins, and of uploads an operator is weighing.

use super::{Registry, RegistryError};
use crate::consent::Consent;
use crate::gate;
use crate::storage::Upload;

impl Registry {
    /// The consent view of installed plugin `id`, as granted under the policy in force.
    pub fn consent(&self, id: &str) -> Result<Consent, RegistryError> {
        Ok(Consent::of(self.loaded(id)?.admission()))
    }

    /// The consent view of `upload` under the policy in force, installing nothing: what it
    /// requests, would get and risks, including the risks `refuse_risks` would refuse.
    pub fn review(&self, upload: &Upload) -> Result<Consent, RegistryError> {
        let policy = self
            .policy
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .clone();
        let admission = gate::assess_in(
            upload.parts(),
            &policy,
            gate::DEFAULT_MAX_COMPONENT_BYTES,
            None,
        )?;
        Ok(Consent::of(&admission))
    }
}
