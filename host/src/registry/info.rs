//! What the admin API shows about an installed plugin.

use super::Entry;
use crate::capability::{CapabilityId, Verdict};
use crate::consent::{Risk, risks};
use crate::runtime::Plugin;
use serde::Serialize;

/// Whether a plugin's stored version is loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PluginStatus {
    /// Loaded and serving (if enabled).
    Running,
    /// Its stored version could not be loaded; see `last_error`.
    Failed,
}

/// One capability as requested and decided for a plugin.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct CapabilityRow {
    pub capability: CapabilityId,
    pub decision: Verdict,
    /// Why it was denied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// An installed plugin as operators see it.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct PluginInfo {
    /// Its id from its manifest (within its session, for a session's plugin).
    pub id: String,
    /// The session it belongs to; absent for the operator's plugins.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    pub status: PluginStatus,
    pub enabled: bool,
    /// Install sequence number of the serving version.
    pub seq: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Fingerprint (`SHA256:…`) of the trusted key that signed the serving version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
    pub capabilities: Vec<CapabilityRow>,
    /// The high-risk grants among its capabilities (see `GET …/grants`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub risks: Vec<Risk>,
    /// The tools it offers, as MCP clients see them (`<plugin>__<tool>`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl PluginInfo {
    pub(super) fn of(id: &str, entry: &Entry) -> Self {
        let plugin = entry.plugin.as_deref();
        let admission = plugin.map(Plugin::admission);
        let capabilities = admission
            .map(|a| {
                a.grants
                    .summary()
                    .into_iter()
                    .map(|(capability, decision, reason)| CapabilityRow {
                        capability,
                        decision,
                        reason: reason.map(str::to_string),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let session = match crate::sessions::owner(id) {
            crate::sessions::Owner::Session { session, .. } => Some(session.to_string()),
            crate::sessions::Owner::Global => None,
        };
        PluginInfo {
            id: crate::sessions::local(id).to_string(),
            session,
            status: if plugin.is_some() {
                PluginStatus::Running
            } else {
                PluginStatus::Failed
            },
            enabled: entry.enabled,
            seq: entry.seq,
            version: admission.map(|a| a.manifest.version.clone()),
            sha256: admission.map(|a| a.sha256.clone()),
            description: admission.map(|a| a.manifest.description.clone()),
            signer: admission.and_then(|a| a.signer.as_ref().map(|s| s.0.clone())),
            capabilities,
            risks: admission
                .map(|a| risks(&a.grants, &a.policy))
                .unwrap_or_default(),
            tools: entry
                .tools
                .iter()
                .flat_map(|catalog| catalog.tools.iter().map(|tool| tool.exposed.clone()))
                .collect(),
            last_error: entry.last_error.clone(),
        }
    }
}
