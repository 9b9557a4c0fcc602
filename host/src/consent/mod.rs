//! The consent view: for one plugin, what it requests, what the operator's policy allows,
//! what it would get (manifest ∩ policy), and the high-risk grants among them, each with a
//! sentence. Computed here once; `capstan inspect`, `capstan plugin show`, the admin API's
//! `grants` endpoints and the gate's `refuse_risks` check all use it.

mod risk;

pub use risk::{LARGE_STORAGE_BYTES, Risk, RiskId, TIGHT_SCHEDULE, risks};

use crate::capability::{CapabilityId, Verdict};
use crate::gate::Admission;
use serde::Serialize;
use serde_json::Value;

/// What an operator consents to by installing a plugin.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Consent {
    /// The plugin's id (within its session, for a session's plugin).
    pub plugin: String,
    pub version: String,
    pub sha256: String,
    /// One row per capability the plugin requests (and the always-granted baseline).
    pub capabilities: Vec<ConsentRow>,
    /// The high-risk grants, empty when there are none.
    pub risks: Vec<Risk>,
}

/// One capability: the manifest's table, the policy's table and the outcome.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ConsentRow {
    pub capability: CapabilityId,
    /// The manifest's `[capabilities.<key>]`; absent for the baseline.
    #[schema(value_type = Option<Object>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested: Option<Value>,
    /// The policy's table after `[defaults]` and `deny` are applied; absent when it
    /// allows nothing.
    #[schema(value_type = Option<Object>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Value>,
    pub decision: Verdict,
    /// The bounds the host enforces, when granted.
    #[schema(value_type = Option<Object>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant: Option<Value>,
    /// Why it was withheld, when denied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Consent {
    /// The consent view of an admitted component.
    pub fn of(admission: &Admission) -> Consent {
        let requested = table_map(&admission.manifest.capabilities);
        let allowed = table_map(&admission.policy.capabilities);
        let decided = table_map(&admission.grants);
        let capabilities = admission
            .grants
            .summary()
            .into_iter()
            .filter(|(_, verdict, _)| *verdict != Verdict::NotRequested)
            .map(|(capability, decision, reason)| {
                let key = capability.info().key;
                ConsentRow {
                    capability,
                    requested: requested.get(key).cloned(),
                    allowed: allowed.get(key).cloned(),
                    decision,
                    grant: decided.get(key).and_then(|d| d.get("grant")).cloned(),
                    reason: reason.map(str::to_string),
                }
            })
            .collect();
        Consent {
            plugin: crate::sessions::local(&admission.manifest.id).to_string(),
            version: admission.manifest.version.clone(),
            sha256: admission.sha256.clone(),
            capabilities,
            risks: risks(&admission.grants, &admission.policy),
        }
    }
}

/// A per-capability table (`Requested`, `Allowed`, `Grants`) as a JSON object keyed by
/// capability key.
fn table_map(tables: &impl Serialize) -> serde_json::Map<String, Value> {
    match serde_json::to_value(tables) {
        Ok(Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    }
}
