//! The plugin manifest (`capstan.toml`): who the plugin is and what it asks for.
//!
//! Unknown keys are refused (naming the key) so a typo never silently drops a request.

use crate::capability::Requested;
use crate::contract;
use crate::text::shown;
use regex::Regex;
use serde::{Deserialize, Serialize};
use std::sync::LazyLock;

/// Plugin ids: lower-case slug, 1–63 chars, starting with a letter.
static ID_PATTERN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new("^[a-z][a-z0-9_-]{0,62}$").expect("valid regex"));

/// Largest manifest accepted, embedded or sidecar (it carries the plugin's SQL
/// migrations).
pub const MAX_MANIFEST_BYTES: usize = 1024 * 1024;

/// A parsed and validated manifest.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Stable identity of the plugin; also its kv namespace and route prefix.
    pub id: String,
    /// The plugin's own version (semver).
    pub version: String,
    /// Contract version the plugin was built against; defaults to the one its imports name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract: Option<String>,
    /// One line for operators.
    #[serde(default)]
    pub description: String,
    /// What the plugin asks for, one table per capability.
    #[serde(default)]
    pub capabilities: Requested,
    /// What it promises to serve once loaded; an install whose plugin does not is refused.
    #[serde(default, skip_serializing_if = "Provides::is_empty")]
    pub provides: Provides,
}

/// Most entries in each `[provides]` list.
pub const MAX_PROVIDED: usize = 256;

/// `[provides]`: what a plugin promises to serve, checked after it is loaded (tools listed
/// and exposed, routes granted and under its prefix), so a load that does not deliver them
/// fails with `not-provided` instead of serving less than its caller counts on.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Provides {
    /// Tool names (without the plugin prefix) it serves to MCP clients.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<String>,
    /// Paths below its route root (e.g. `/api/notes`) its routes answer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<String>,
}

impl Provides {
    pub fn is_empty(&self) -> bool {
        self.tools.is_empty() && self.routes.is_empty()
    }

    fn check(&self) -> Result<(), String> {
        if self.tools.len() > MAX_PROVIDED || self.routes.len() > MAX_PROVIDED {
            return Err(format!(
                "`provides` lists at most {MAX_PROVIDED} tools and {MAX_PROVIDED} routes"
            ));
        }
        if let Some(tool) = self.tools.iter().find(|tool| {
            tool.is_empty() || tool.len() > 64 || tool.chars().any(crate::text::is_unsafe)
        }) {
            return Err(format!(
                "`provides.tools`: `{}` is not a tool name (1–64 characters)",
                crate::text::shown_name(tool)
            ));
        }
        if let Some(route) = self
            .routes
            .iter()
            .find(|route| !route.starts_with('/') || route.chars().any(crate::text::is_unsafe))
        {
            return Err(format!(
                "`provides.routes`: `{}` must be a path starting with `/`",
                crate::text::shown_name(route)
            ));
        }
        Ok(())
    }
}

/// Why a manifest was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ManifestError {
    /// Not UTF-8, bad TOML, an unknown key or a wrongly typed value.
    #[error("invalid manifest: {}", shown(.0))]
    Syntax(String),
    /// The manifest is larger than [`MAX_MANIFEST_BYTES`].
    #[error("manifest is {size} bytes; the limit is {MAX_MANIFEST_BYTES}")]
    TooLarge { size: usize },
    /// `id` does not match `^[a-z][a-z0-9_-]{0,62}$`.
    #[error("invalid plugin id `{}`: must match ^[a-z][a-z0-9_-]{{0,62}}$", shown(.0))]
    BadId(String),
    /// `id` is `capstan`, the name the host's own events come from.
    #[error("plugin id `capstan` is reserved for the host")]
    ReservedId,
    /// `version` or `contract` is not semver.
    #[error("`{field}` = `{}` is not a semver version", shown(.value))]
    BadVersion { field: &'static str, value: String },
    /// A capability table that is well-formed TOML but wrong on its own terms (a settings
    /// schema that is not JSON Schema, a route prefix without `/`).
    #[error("invalid manifest: {}", shown(.0))]
    Capability(String),
    /// Built for a contract this host cannot run.
    #[error("plugin targets contract {}; this host implements {host} (before 1.0 the minor must match; from 1.0 the major must match and the minor may not be newer)", shown(.found), host = contract::VERSION)]
    IncompatibleContract { found: String },
}

impl Manifest {
    /// Parse and validate manifest text.
    pub fn parse(text: &[u8]) -> Result<Manifest, ManifestError> {
        if text.len() > MAX_MANIFEST_BYTES {
            return Err(ManifestError::TooLarge { size: text.len() });
        }
        let text = std::str::from_utf8(text)
            .map_err(|e| ManifestError::Syntax(format!("not UTF-8: {e}")))?;
        let manifest: Manifest = toml::from_str(text)
            .map_err(|e| ManifestError::Syntax(crate::toml_text::describe(text, &e)))?;
        manifest.validate()?;
        Ok(manifest)
    }

    fn validate(&self) -> Result<(), ManifestError> {
        validate_id(&self.id)?;
        semver::Version::parse(&self.version).map_err(|_| ManifestError::BadVersion {
            field: "version",
            value: self.version.clone(),
        })?;
        if let Some(contract) = &self.contract {
            check_contract(contract, "contract")?;
        }
        self.provides.check().map_err(ManifestError::Capability)?;
        self.capabilities.check().map_err(ManifestError::Capability)
    }
}

/// Check a plugin id against the slug rule.
pub fn validate_id(id: &str) -> Result<(), ManifestError> {
    if id == crate::capability::events::topic::RESERVED {
        return Err(ManifestError::ReservedId);
    }
    if ID_PATTERN.is_match(id) {
        Ok(())
    } else {
        Err(ManifestError::BadId(id.to_string()))
    }
}

/// Check that `version` parses and is compatible with this host's contract.
pub fn check_contract(version: &str, field: &'static str) -> Result<(), ManifestError> {
    let parsed = semver::Version::parse(version).map_err(|_| ManifestError::BadVersion {
        field,
        value: version.to_string(),
    })?;
    if contract::is_compatible(&parsed) {
        Ok(())
    } else {
        Err(ManifestError::IncompatibleContract {
            found: version.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_manifest() {
        let m = Manifest::parse(
            br#"
id = "counter"
version = "1.2.3"
contract = "0.2.0"
[capabilities.kv]
max_keys = 10
[capabilities.routes]
"#,
        )
        .unwrap();
        assert_eq!(m.id, "counter");
        assert_eq!(m.capabilities.kv.unwrap().max_keys, Some(10));
        assert!(m.capabilities.routes.is_some());
    }

    #[test]
    fn unknown_top_level_key_is_named() {
        let err =
            Manifest::parse(b"id = \"a\"\nversion = \"1.0.0\"\nfilesystem = true\n").unwrap_err();
        assert!(
            err.to_string().contains("unknown field `filesystem`"),
            "{err}"
        );
    }

    #[test]
    fn unknown_capability_is_named() {
        let err = Manifest::parse(b"id = \"a\"\nversion = \"1.0.0\"\n[capabilities.sockets]\n")
            .unwrap_err();
        assert!(err.to_string().contains("unknown field `sockets`"), "{err}");
    }

    #[test]
    fn bad_ids_are_refused() {
        for id in ["", "Upper", "1abc", "has space", "a/b", &"a".repeat(64)] {
            let text = format!("id = \"{id}\"\nversion = \"1.0.0\"\n");
            assert_eq!(
                Manifest::parse(text.as_bytes()).unwrap_err(),
                ManifestError::BadId(id.into())
            );
        }
        assert!(validate_id(&"a".repeat(63)).is_ok());
        assert_eq!(validate_id("capstan"), Err(ManifestError::ReservedId));
    }

    #[test]
    fn newer_contract_is_refused() {
        for v in ["0.1.0", "0.3.0", "1.0.0"] {
            let text = format!("id = \"a\"\nversion = \"1.0.0\"\ncontract = \"{v}\"\n");
            assert!(matches!(
                Manifest::parse(text.as_bytes()),
                Err(ManifestError::IncompatibleContract { .. })
            ));
        }
    }

    #[test]
    fn non_semver_version_is_refused() {
        let err = Manifest::parse(b"id = \"a\"\nversion = \"latest\"\n").unwrap_err();
        assert!(matches!(
            err,
            ManifestError::BadVersion {
                field: "version",
                ..
            }
        ));
    }
}
