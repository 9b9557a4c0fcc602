//! The operator's policy: which capabilities each plugin may have, with what limits.
//!
//! Deny by default: a capability absent from both `[defaults.capabilities]` and the
//! plugin's own `[plugins.<id>.capabilities]` is not granted. A plugin's entry overrides
//! the defaults capability by capability and limit by limit; `deny` removes defaults.

pub mod period;

use crate::audit::AuditRules;
use crate::capability::log::{LogPolicy, LogSettings};
use crate::capability::{Allowed, ByKey};
use crate::consent::RiskId;
use crate::manifest::validate_id;
use crate::sessions::SessionRules;
use crate::trust::{SignaturePolicy, TrustedKey};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

pub use period::Period;

/// Largest policy document accepted.
pub const MAX_POLICY_BYTES: usize = 1024 * 1024;

/// Hard ceiling for any plugin's linear memory; the pooling allocator is sized for it.
pub const MAX_MEMORY_MIB: u32 = 1024;

/// Most log lines or audit records one plugin may be given to keep.
pub const MAX_RETENTION_ROWS: u32 = 100_000_000;

/// A validated policy document.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Applies to every plugin.
    #[serde(default)]
    pub defaults: Entry,
    /// Per-plugin entries keyed by plugin id.
    #[serde(default)]
    pub plugins: BTreeMap<String, Entry>,
    /// Bounds on the sessions clients may open (their plugins get `[defaults]`, never a
    /// `[plugins.<id>]` entry).
    #[serde(default, skip_serializing_if = "SessionRules::is_default")]
    pub sessions: SessionRules,
    /// How long the audit trail is kept.
    #[serde(default, skip_serializing_if = "AuditRules::is_default")]
    pub audit: AuditRules,
}

/// One `[defaults]` or `[plugins.<id>]` table.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Capabilities granted (each table's fields bound what is granted).
    #[serde(default)]
    pub capabilities: Allowed,
    /// Capabilities (by key) to withhold even if `[defaults]` grants or implies them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<ByKey>,
    /// Resource limits; unset fields fall back to the defaults.
    #[serde(default)]
    pub limits: LimitSettings,
    /// Log settings; unset fields fall back to the defaults.
    #[serde(default)]
    pub log: LogSettings,
    /// Only this exact component (hex sha256) may be installed under this id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// High-risk grants (see the consent view) that refuse an install; a plugin's own list
    /// replaces the defaults' one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refuse_risks: Option<Vec<RiskId>>,
    /// OpenSSH `ssh-ed25519` public keys whose signatures count; a plugin's own list
    /// replaces the defaults' one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trusted_keys: Option<Vec<TrustedKey>>,
    /// Refuse components no trusted key signed (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_signature: Option<bool>,
}

/// Limit fields as written in the policy (all optional).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LimitSettings {
    pub memory_mib: Option<u32>,
    pub table_elements: Option<u32>,
    pub instances: Option<u32>,
    pub deadline_ms: Option<u32>,
    pub max_concurrent_calls: Option<u32>,
}

/// Effective resource limits for one plugin.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Limits {
    /// Linear memory cap per instance.
    pub memory_mib: u32,
    /// Table elements cap per table.
    pub table_elements: u32,
    /// Core and component instances per call.
    pub instances: u32,
    /// Wall-clock deadline per call (epoch interruption).
    pub deadline_ms: u32,
    /// Calls of this plugin running at once.
    pub max_concurrent_calls: u32,
}

/// What the policy says about one plugin after defaults are applied.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Effective {
    pub capabilities: Allowed,
    pub limits: Limits,
    pub log: LogPolicy,
    pub sha256: Option<String>,
    /// For a session's plugin: the calls its session's plugins may run at once, together.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_calls: Option<u32>,
    /// High-risk grants that refuse the install.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refuse_risks: Vec<RiskId>,
    /// Whose signatures count, and whether one is required.
    pub signatures: SignaturePolicy,
}

/// Why a policy was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PolicyError {
    /// Bad TOML, an unknown key (including an unknown capability) or a wrong type.
    #[error(
        "invalid policy: {}",
        crate::text::shown_up_to(.0, crate::text::OPERATOR_SHOWN_BYTES)
    )]
    Syntax(String),
    /// The document is larger than [`MAX_POLICY_BYTES`].
    #[error("policy is {size} bytes; the limit is {MAX_POLICY_BYTES}")]
    TooLarge { size: usize },
    /// A `[plugins.<id>]` key is not a valid plugin id.
    #[error(
        "invalid policy: `plugins.{}` is not a valid plugin id",
        crate::text::shown_name(.0)
    )]
    BadPluginId(String),
    /// A limit outside its allowed range.
    #[error("invalid policy: `{entry}.{field}` = {value} is outside {min}..={max}")]
    OutOfRange {
        entry: String,
        field: &'static str,
        value: u32,
        min: u32,
        max: u32,
    },
    /// Signatures are required but no key is trusted, so nothing could be installed.
    #[error(
        "invalid policy: `{entry}` requires a signature but trusts no key; add `trusted_keys = [\"ssh-ed25519 AAAA…\"]`"
    )]
    NoTrustedKeys { entry: String },
    /// A pin that is not 64 hex digits, or a pin in `[defaults]`.
    #[error("invalid policy: `{entry}.sha256` {problem}")]
    BadPin {
        entry: String,
        problem: &'static str,
    },
}

impl Policy {
    /// Parse and validate policy text.
    pub fn parse(text: &str) -> Result<Policy, PolicyError> {
        if text.len() > MAX_POLICY_BYTES {
            return Err(PolicyError::TooLarge { size: text.len() });
        }
        let policy: Policy = toml::from_str(text)
            .map_err(|e| PolicyError::Syntax(crate::toml_text::describe(text, &e)))?;
        policy.validate()?;
        Ok(policy)
    }

    /// Read and parse a policy file.
    pub fn load(path: &Path) -> anyhow::Result<Policy> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read policy {}: {e}", path.display()))?;
        Policy::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    /// A policy granting nothing beyond the always-on baseline.
    pub fn deny_all() -> Policy {
        Policy::default()
    }

    fn validate(&self) -> Result<(), PolicyError> {
        self.defaults.validate("defaults")?;
        if let Some(value) = self
            .audit
            .retention_records
            .filter(|v| !(1..=MAX_RETENTION_ROWS).contains(v))
        {
            return Err(PolicyError::OutOfRange {
                entry: "audit".into(),
                field: "retention_records",
                value,
                min: 1,
                max: MAX_RETENTION_ROWS,
            });
        }
        if self.defaults.sha256.is_some() {
            return Err(PolicyError::BadPin {
                entry: "defaults".into(),
                problem: "belongs in a [plugins.<id>] entry, not in [defaults]",
            });
        }
        let unsigned = |entry: String, signatures: SignaturePolicy| match signatures.require
            && signatures.trusted.is_empty()
        {
            true => Err(PolicyError::NoTrustedKeys { entry }),
            false => Ok(()),
        };
        // A plugin no entry names gets the defaults.
        unsigned("defaults".into(), self.for_plugin("").signatures)?;
        for (id, entry) in &self.plugins {
            validate_id(id).map_err(|_| PolicyError::BadPluginId(id.clone()))?;
            entry.validate(&format!("plugins.{id}"))?;
            unsigned(format!("plugins.{id}"), self.for_plugin(id).signatures)?;
        }
        Ok(())
    }

    /// The effective policy for plugin `id`.
    pub fn for_plugin(&self, id: &str) -> Effective {
        let defaults = &self.defaults;
        let own = self.plugins.get(id);
        let mut capabilities = own
            .map(|entry| entry.capabilities.clone())
            .unwrap_or_default()
            .or(&defaults.capabilities);
        for ByKey(withheld) in own.map(|e| e.deny.as_slice()).unwrap_or_default() {
            capabilities.remove(*withheld);
        }
        let pick = |f: fn(&LimitSettings) -> Option<u32>, default: u32| {
            own.and_then(|e| f(&e.limits))
                .or(f(&defaults.limits))
                .unwrap_or(default)
        };
        let limits = Limits {
            memory_mib: pick(|l| l.memory_mib, 64),
            table_elements: pick(|l| l.table_elements, 20_000),
            instances: pick(|l| l.instances, 64),
            deadline_ms: pick(|l| l.deadline_ms, 1_000),
            max_concurrent_calls: pick(|l| l.max_concurrent_calls, 16),
        };
        Effective {
            capabilities,
            limits,
            log: LogPolicy::resolve(own.map(|e| &e.log), &defaults.log),
            sha256: own.and_then(|e| e.sha256.clone()),
            session_calls: None,
            refuse_risks: own
                .and_then(|e| e.refuse_risks.clone())
                .or_else(|| defaults.refuse_risks.clone())
                .unwrap_or_default(),
            signatures: SignaturePolicy {
                require: own
                    .and_then(|e| e.require_signature)
                    .or(defaults.require_signature)
                    .unwrap_or(false),
                trusted: own
                    .and_then(|e| e.trusted_keys.clone())
                    .or_else(|| defaults.trusted_keys.clone())
                    .unwrap_or_default(),
            },
        }
    }
}

impl Entry {
    fn validate(&self, entry: &str) -> Result<(), PolicyError> {
        let ranges: [(&'static str, Option<u32>, u32, u32); 9] = [
            (
                "limits.memory_mib",
                self.limits.memory_mib,
                1,
                MAX_MEMORY_MIB,
            ),
            (
                "limits.table_elements",
                self.limits.table_elements,
                1,
                1_000_000,
            ),
            ("limits.instances", self.limits.instances, 1, 1_000),
            ("limits.deadline_ms", self.limits.deadline_ms, 1, 300_000),
            (
                "limits.max_concurrent_calls",
                self.limits.max_concurrent_calls,
                1,
                10_000,
            ),
            ("log.lines_per_call", self.log.lines_per_call, 0, 1_000_000),
            ("log.line_bytes", self.log.line_bytes, 16, 1024 * 1024),
            (
                "log.lines_per_second",
                self.log.lines_per_second,
                1,
                1_000_000,
            ),
            (
                "log.retention_lines",
                self.log.retention_lines,
                1,
                MAX_RETENTION_ROWS,
            ),
        ];
        for (field, value, min, max) in ranges {
            if let Some(value) = value.filter(|v| !(min..=max).contains(v)) {
                return Err(PolicyError::OutOfRange {
                    entry: entry.to_string(),
                    field,
                    value,
                    min,
                    max,
                });
            }
        }
        if let Some(pin) = &self.sha256
            && (pin.len() != 64 || !pin.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(PolicyError::BadPin {
                entry: entry.to_string(),
                problem: "must be 64 hex digits",
            });
        }
        self.capabilities.check(entry).map_err(PolicyError::Syntax)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capability::CapabilityId;

    #[test]
    fn empty_policy_grants_only_what_capabilities_imply() {
        let eff = Policy::parse("").unwrap().for_plugin("any");
        let allowed: Vec<CapabilityId> = CapabilityId::ALL
            .iter()
            .copied()
            .filter(|id| eff.capabilities.allows(*id))
            .collect();
        assert_eq!(
            allowed,
            [
                CapabilityId::Log,
                CapabilityId::Config,
                CapabilityId::Lifecycle
            ]
        );
        assert_eq!(eff.limits.memory_mib, 64);
    }

    #[test]
    fn deny_withholds_an_implied_grant() {
        let policy = Policy::parse("[plugins.x]\ndeny = [\"config\"]\n").unwrap();
        assert!(
            !policy
                .for_plugin("x")
                .capabilities
                .allows(CapabilityId::Config)
        );
        assert!(
            policy
                .for_plugin("y")
                .capabilities
                .allows(CapabilityId::Config)
        );
    }

    #[test]
    fn plugin_entry_overrides_defaults_field_by_field() {
        let policy = Policy::parse(
            r#"
[defaults.limits]
memory_mib = 32
deadline_ms = 500
[defaults.capabilities.routes]
[plugins.counter.limits]
memory_mib = 16
[plugins.counter.capabilities.kv]
max_keys = 5
"#,
        )
        .unwrap();
        let eff = policy.for_plugin("counter");
        assert_eq!(eff.limits.memory_mib, 16);
        assert_eq!(eff.limits.deadline_ms, 500);
        assert!(eff.capabilities.kv.is_some());
        assert!(eff.capabilities.routes.is_some(), "defaults still apply");
        assert!(policy.for_plugin("other").capabilities.kv.is_none());
    }

    #[test]
    fn deny_removes_a_default_grant() {
        let policy =
            Policy::parse("[defaults.capabilities.routes]\n[plugins.x]\ndeny = [\"routes\"]\n")
                .unwrap();
        assert!(policy.for_plugin("x").capabilities.routes.is_none());
    }

    #[test]
    fn unknown_capability_is_named() {
        let err = Policy::parse("[defaults.capabilities.sockets]\n").unwrap_err();
        assert!(err.to_string().contains("unknown field `sockets`"), "{err}");
        let err = Policy::parse("[plugins.x]\ndeny = [\"filesystem\"]\n").unwrap_err();
        assert!(
            err.to_string().contains("unknown capability `filesystem`"),
            "{err}"
        );
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn out_of_range_limit_is_named() {
        let err = Policy::parse("[plugins.x.limits]\nmemory_mib = 999999\n").unwrap_err();
        assert!(
            err.to_string().contains("plugins.x.limits.memory_mib"),
            "{err}"
        );
    }

    #[test]
    fn bad_ids_and_pins_are_refused() {
        assert_eq!(
            Policy::parse("[plugins.Bad]\n").unwrap_err(),
            PolicyError::BadPluginId("Bad".into())
        );
        assert!(matches!(
            Policy::parse("[plugins.x]\nsha256 = \"abc\"\n").unwrap_err(),
            PolicyError::BadPin { .. }
        ));
    }

    #[test]
    fn operator_text_in_an_error_is_escaped_and_capped() {
        let bad_id = Policy::parse("[plugins.\"x\\u001b[2J\"]\n").unwrap_err();
        assert!(matches!(bad_id, PolicyError::BadPluginId(_)), "{bad_id:?}");
        let shown = bad_id.to_string();
        assert!(
            shown.contains("`plugins.x\\x1b[2J`") && !shown.contains('\u{1b}'),
            "{shown}"
        );
        let unknown = Policy::parse("[defaults]\n\"k\\u202e\\u001b\" = 1\n").unwrap_err();
        assert!(matches!(unknown, PolicyError::Syntax(_)), "{unknown:?}");
        let shown = unknown.to_string();
        assert!(
            shown.contains("\\u{202e}\\x1b") && !shown.contains(['\u{1b}', '\u{202e}']),
            "{shown}"
        );
        let long_key = format!("[defaults]\n{} = 1\n", "k".repeat(100_000));
        let shown = Policy::parse(&long_key).unwrap_err().to_string();
        assert!(
            shown.len() < crate::text::OPERATOR_SHOWN_BYTES + 200 && shown.contains("truncated"),
            "{} bytes",
            shown.len()
        );
    }

    #[test]
    fn retention_defaults_and_overrides() {
        use std::time::Duration;
        let day = Duration::from_secs(24 * 3600);
        let policy = Policy::parse(
            "[defaults.log]\nretention_lines = 500\n\
             [plugins.chatty.log]\nretention = \"1h\"\n\
             [audit]\nretention = \"30d\"\n",
        )
        .unwrap();
        let keep = |id: &str| policy.for_plugin(id).log.retention();
        assert_eq!((keep("any").age, keep("any").newest), (Some(7 * day), 500));
        assert_eq!(
            (keep("chatty").age, keep("chatty").newest),
            (Some(Duration::from_secs(3600)), 500),
            "field by field over the defaults"
        );
        let audit = policy.audit.retention();
        assert_eq!((audit.age, audit.newest), (Some(30 * day), 1_000_000));
        let built_in = Policy::parse("").unwrap();
        assert_eq!(built_in.for_plugin("any").log.retention().newest, 100_000);
        assert_eq!(
            built_in.audit.retention().age,
            None,
            "the audit trail is kept whatever its age unless the operator says otherwise"
        );
    }

    #[test]
    fn bad_retention_is_named() {
        let error = |text: &str| Policy::parse(text).unwrap_err().to_string();
        assert!(
            error("[defaults.log]\nretention = \"soon\"\n").contains("`soon` is not a duration"),
            "{}",
            error("[defaults.log]\nretention = \"soon\"\n")
        );
        assert_eq!(
            error("[plugins.p.log]\nretention_lines = 0\n"),
            "invalid policy: `plugins.p.log.retention_lines` = 0 is outside 1..=100000000"
        );
        assert_eq!(
            error("[audit]\nretention_records = 0\n"),
            "invalid policy: `audit.retention_records` = 0 is outside 1..=100000000"
        );
        assert!(error("[audit]\nkeep = 3\n").contains("unknown field `keep`"));
    }

    #[test]
    fn shipped_policies_parse() {
        for file in ["default.toml", "examples.toml"] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../policy")
                .join(file);
            Policy::load(&path).unwrap_or_else(|e| panic!("{e:#}"));
        }
    }
}
