//! The gate: decides, before anything is compiled, whether a component may be installed
//! and what it is granted. Refuses unknown, forbidden and undeclared imports by name;
//! grants = manifest ∩ policy.

use crate::capability::wasi::{self, WasiClass};
use crate::capability::{CapabilityId, Direction, Grants};
use crate::consent;
use crate::contract;
use crate::error::InstallError;
use crate::inspect::{Inspection, inspect};
use crate::manifest::{Manifest, check_contract};
use crate::policy::{Effective, Policy};
use crate::sessions::Session;
use crate::trust::{self, Fingerprint};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;

/// Largest component accepted by default.
pub const DEFAULT_MAX_COMPONENT_BYTES: usize = 50 * 1024 * 1024;

/// What an import is, as far as the host is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "capability", rename_all = "kebab-case")]
pub enum ImportClass {
    /// WASI clocks, random, stdio, environment: linked for every plugin.
    WasiBaseline,
    /// The contract's shared `types` interface (no functions).
    ContractTypes,
    /// A capability, linked to its real host or its deny stub.
    Capability(CapabilityId),
}

/// One top-level import and how it is classed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImportRow {
    pub name: String,
    pub class: ImportClass,
}

/// What an install hands the gate: the component, its sidecar manifest if it does not
/// embed one, and its detached signature if it came with one.
#[derive(Debug, Clone, Copy)]
pub struct Parts<'a> {
    pub wasm: &'a [u8],
    pub manifest: Option<&'a [u8]>,
    pub signature: Option<&'a [u8]>,
}

/// A component that passed the gate, with everything needed to link it.
#[derive(Debug, Clone, Serialize)]
pub struct Admission {
    pub manifest: Manifest,
    /// Hex sha256 of the component bytes.
    pub sha256: String,
    /// The fingerprint of the trusted key that signed it, when one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer: Option<Fingerprint>,
    pub imports: Vec<ImportRow>,
    pub exports: Vec<String>,
    pub grants: Grants,
    pub policy: Effective,
}

impl Admission {
    /// Whether the component imports capability `id`.
    pub fn imports_capability(&self, id: CapabilityId) -> bool {
        self.imports
            .iter()
            .any(|row| row.class == ImportClass::Capability(id))
    }

    /// Each capability the component imports, once (several interfaces may map to one).
    pub fn imported_capabilities(&self) -> BTreeSet<CapabilityId> {
        self.imports
            .iter()
            .filter_map(|row| match row.class {
                ImportClass::Capability(id) => Some(id),
                _ => None,
            })
            .collect()
    }
}

/// Run every install check on `bytes` (and an optional sidecar manifest) under `policy`.
pub fn admit(
    bytes: &[u8],
    sidecar: Option<&[u8]>,
    policy: &Policy,
    max_bytes: usize,
) -> Result<Admission, InstallError> {
    let parts = Parts {
        wasm: bytes,
        manifest: sidecar,
        signature: None,
    };
    admit_in(parts, policy, max_bytes, None)
}

/// [`admit`] for `session`'s plugin when one is given: it is stored under its scoped id
/// (so no `[plugins.<id>]` entry applies to it) and granted manifest ∩ session policy ∩
/// operator policy.
pub fn admit_in(
    parts: Parts<'_>,
    policy: &Policy,
    max_bytes: usize,
    session: Option<&Session>,
) -> Result<Admission, InstallError> {
    let admission = assess_in(parts, policy, max_bytes, session)?;
    refuse_risks(&admission)?;
    Ok(admission)
}

/// Refuse `admission` if it would get a high-risk grant its policy's `refuse_risks` lists
/// (only the risks are computed: this runs on every install and restore).
pub fn refuse_risks(admission: &Admission) -> Result<(), InstallError> {
    let risks = consent::risks(&admission.grants, &admission.policy);
    match risks.into_iter().find(|risk| risk.refused) {
        Some(risk) => Err(InstallError::RiskRefused {
            plugin: crate::sessions::local(&admission.manifest.id).to_string(),
            risk: risk.risk,
            detail: risk.detail,
        }),
        None => Ok(()),
    }
}

/// Every check of [`admit_in`] but the policy's `refuse_risks`: what the component would
/// be granted, for the consent view of an upload that is not being installed.
pub fn assess_in(
    parts: Parts<'_>,
    policy: &Policy,
    max_bytes: usize,
    session: Option<&Session>,
) -> Result<Admission, InstallError> {
    let (bytes, sidecar) = (parts.wasm, parts.manifest);
    if bytes.len() > max_bytes {
        return Err(InstallError::TooLarge {
            size: bytes.len(),
            limit: max_bytes,
        });
    }
    let inspection = inspect(bytes)?;
    let mut manifest = manifest_of(&inspection, sidecar)?;
    if let Some(session) = session {
        manifest.id = session.id.scope(&manifest.id);
    }
    let imports = classify_imports(&inspection.imports)?;
    check_exports(&inspection.exports, &manifest)?;
    for row in &imports {
        if let ImportClass::Capability(id) = row.class
            && !manifest.capabilities.declares(id)
        {
            return Err(InstallError::Undeclared {
                import: row.name.clone(),
                capability: id,
            });
        }
    }
    let sha256 = hex::encode(Sha256::digest(bytes));
    let operator = policy.for_plugin(&manifest.id);
    let effective = match session {
        Some(session) => Effective {
            session_calls: Some(policy.sessions.max_concurrent_calls()),
            ..session.policy.narrow(operator)
        },
        None => operator,
    };
    if let Some(pin) = &effective.sha256
        && !pin.eq_ignore_ascii_case(&sha256)
    {
        return Err(InstallError::PinMismatch {
            plugin: manifest.id.clone(),
            expected: pin.clone(),
            actual: sha256,
        });
    }
    let signer = trust::check(bytes, parts.signature, &effective.signatures)
        .map_err(InstallError::Signature)?;
    let grants = Grants::decide(&manifest.capabilities, &effective.capabilities);
    Ok(Admission {
        manifest,
        sha256,
        signer,
        imports,
        exports: inspection.exports,
        grants,
        policy: effective,
    })
}

fn manifest_of(inspection: &Inspection, sidecar: Option<&[u8]>) -> Result<Manifest, InstallError> {
    let manifest = match (inspection.manifest.as_deref(), sidecar) {
        (None, None) => return Err(InstallError::NoManifest),
        (Some(embedded), Some(sidecar)) if embedded != sidecar => {
            return Err(InstallError::ManifestConflict);
        }
        (Some(text), _) | (None, Some(text)) => Manifest::parse(text)?,
    };
    Ok(manifest)
}

fn classify_imports(names: &[String]) -> Result<Vec<ImportRow>, InstallError> {
    names
        .iter()
        .map(|name| {
            let class = classify(name)?;
            Ok(ImportRow {
                name: name.clone(),
                class,
            })
        })
        .collect()
}

fn classify(name: &str) -> Result<ImportClass, InstallError> {
    if let Some(id) = CapabilityId::from_standard(name) {
        return Ok(ImportClass::Capability(id));
    }
    if let Some(class) = wasi::classify(name) {
        return match class {
            WasiClass::Baseline => Ok(ImportClass::WasiBaseline),
            WasiClass::Forbidden(reason) => Err(InstallError::ForbiddenImport {
                import: name.to_string(),
                reason,
            }),
        };
    }
    let unknown = || InstallError::UnknownImport {
        import: name.to_string(),
    };
    let (interface, version) = contract::parse_interface(name).ok_or_else(unknown)?;
    check_version(name, version)?;
    if interface == "types" {
        return Ok(ImportClass::ContractTypes);
    }
    match CapabilityId::from_interface(interface) {
        Some(id) if id.info().direction == Direction::Import => Ok(ImportClass::Capability(id)),
        _ => Err(unknown()),
    }
}

fn check_version(name: &str, version: Option<&str>) -> Result<(), InstallError> {
    let version = version.ok_or_else(|| InstallError::IncompatibleContract {
        import: name.to_string(),
        found: "no version".into(),
    })?;
    check_contract(version, "contract").map_err(|_| InstallError::IncompatibleContract {
        import: name.to_string(),
        found: version.to_string(),
    })
}

/// Map exports to export capabilities through the registry; a plugin must offer at
/// least one, and every export capability its manifest declares.
fn check_exports(exports: &[String], manifest: &Manifest) -> Result<(), InstallError> {
    let mut exported = BTreeSet::new();
    for name in exports {
        if let Some((interface, version)) = contract::parse_interface(name) {
            check_version(name, version)?;
            if CapabilityId::from_export(interface).is_some() {
                exported.insert(interface);
            }
        }
    }
    if exported.is_empty() {
        let wanted: Vec<String> = CapabilityId::ALL
            .iter()
            .flat_map(|id| id.export_interfaces())
            .map(|interface| format!("`{}/{interface}`", contract::PACKAGE))
            .collect();
        return Err(InstallError::NotAPlugin(format!(
            "it exports none of {} (exports: [{}])",
            wanted.join(", "),
            exports.join(", ")
        )));
    }
    for (capability, interface) in manifest.capabilities.required_exports() {
        if !exported.contains(interface) {
            return Err(InstallError::MissingExport {
                capability,
                interface,
            });
        }
    }
    Ok(())
}
