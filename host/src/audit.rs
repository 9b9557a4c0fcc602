//! The audit trail: installs, refusals, grant decisions, denials and limit hits.
//! Records never carry secret values or guest data, only names and reasons.

use crate::capability::CapabilityId;
use serde::Serialize;
use std::sync::Mutex;
use std::time::SystemTime;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuditKind {
    /// A plugin was loaded; detail lists its grants.
    Installed,
    /// An install was refused; detail is the reason.
    Refused,
    /// A capability was granted or denied at install.
    GrantDecision,
    /// A call used a capability it was not granted.
    Denied,
    /// A call hit a limit (deadline, memory, quota, log rate).
    LimitHit,
    /// A call trapped.
    Trapped,
    /// An operator set or removed a secret (never its value).
    SecretChanged,
}

/// One audit record.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEvent {
    pub time: SystemTime,
    pub plugin: String,
    pub kind: AuditKind,
    pub capability: Option<CapabilityId>,
    pub detail: String,
}

impl AuditEvent {
    /// A record stamped now.
    pub fn new(
        plugin: &str,
        kind: AuditKind,
        capability: Option<CapabilityId>,
        detail: String,
    ) -> Self {
        AuditEvent {
            time: SystemTime::now(),
            plugin: plugin.to_string(),
            kind,
            capability,
            detail,
        }
    }
}

/// Receives audit records.
pub trait AuditSink: Send + Sync {
    /// Persist one record.
    fn record(&self, event: AuditEvent);
}

/// Audit records kept in memory (the store-backed sink arrives with the SQL backends).
#[derive(Default)]
pub struct MemoryAudit {
    events: Mutex<Vec<AuditEvent>>,
}

impl MemoryAudit {
    /// All records so far, oldest first.
    pub fn events(&self) -> Vec<AuditEvent> {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl AuditSink for MemoryAudit {
    fn record(&self, event: AuditEvent) {
        tracing::info!(
            target: "capstan::audit",
            plugin = %event.plugin,
            kind = ?event.kind,
            capability = ?event.capability.map(CapabilityId::name),
            "{}",
            event.detail
        );
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(event);
    }
}
