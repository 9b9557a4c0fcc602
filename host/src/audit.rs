//! The audit trail: installs, refusals, grant decisions, denials and limit hits.
//! Records never carry secret values or guest data, only names and reasons.

use crate::capability::CapabilityId;
use crate::policy::Period;
use crate::rate::HeldBack;
use crate::retention::{Pass, Retention};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Instant, SystemTime};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
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
    /// An outbound HTTP request: method, origin, status, bytes, duration or refusal.
    HttpRequest,
    /// An operator set or removed a secret (never its value).
    SecretChanged,
    /// An operator changed an installed plugin: new version, rollback, enable, disable, removal.
    PluginChanged,
    /// An operator set a plugin's config (the keys that changed, never secret values).
    ConfigChanged,
    /// An MCP client called a tool: client, tool, call id, outcome, duration and the
    /// SHA-256 of the arguments (never the arguments).
    ToolCall,
    /// An operator created or revoked an MCP client (never its token).
    ClientChanged,
    /// A lifecycle hook ran: which, and its outcome.
    Hook,
    /// An operator started a job run or asked one to stop.
    JobControl,
    /// An event came from outside (the admin API or a publish token), a dead letter was
    /// replayed, or a removed plugin's pending deliveries were dropped.
    EventControl,
    /// An operator created, renewed or closed a session, or it expired (with the plugins
    /// its closing removed).
    SessionChanged,
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

/// Longest audit detail stored; details quote plugin-supplied text (URLs, names), which
/// must not grow a record without bound.
pub const MAX_DETAIL_BYTES: usize = 2048;

impl AuditEvent {
    /// A record stamped now, its detail capped at [`MAX_DETAIL_BYTES`] (saying so).
    pub fn new(
        plugin: &str,
        kind: AuditKind,
        capability: Option<CapabilityId>,
        detail: String,
    ) -> Self {
        let detail = match crate::text::cap(&detail, MAX_DETAIL_BYTES) {
            std::borrow::Cow::Borrowed(_) => detail,
            std::borrow::Cow::Owned(capped) => capped,
        };
        AuditEvent {
            time: SystemTime::now(),
            plugin: plugin.to_string(),
            kind,
            capability,
            detail,
        }
    }
}

impl AuditKind {
    /// The kebab-case name used in storage and APIs, e.g. `limit-hit`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::Installed => "installed",
            AuditKind::Refused => "refused",
            AuditKind::GrantDecision => "grant-decision",
            AuditKind::Denied => "denied",
            AuditKind::LimitHit => "limit-hit",
            AuditKind::Trapped => "trapped",
            AuditKind::HttpRequest => "http-request",
            AuditKind::SecretChanged => "secret-changed",
            AuditKind::PluginChanged => "plugin-changed",
            AuditKind::ConfigChanged => "config-changed",
            AuditKind::ToolCall => "tool-call",
            AuditKind::ClientChanged => "client-changed",
            AuditKind::Hook => "hook",
            AuditKind::JobControl => "job-control",
            AuditKind::EventControl => "event-control",
            AuditKind::SessionChanged => "session-changed",
        }
    }

    /// The kinds of record that plugin calls cause, at a rate a plugin or its clients
    /// choose: the ones a flood is made of.
    pub const CAUSED_BY_CALLS: [AuditKind; 5] = [
        AuditKind::Denied,
        AuditKind::LimitHit,
        AuditKind::Trapped,
        AuditKind::HttpRequest,
        AuditKind::ToolCall,
    ];

    /// Whether plugin calls cause records of this kind (see [`Self::CAUSED_BY_CALLS`]);
    /// only these count toward `[audit] retention_records`, so a flood of them never
    /// pushes out the record of what an operator did.
    pub fn caused_by_calls(self) -> bool {
        Self::CAUSED_BY_CALLS.contains(&self)
    }
}

impl std::str::FromStr for AuditKind {
    type Err = String;

    /// The kind named `name` (as written by [`AuditKind::as_str`]).
    fn from_str(name: &str) -> Result<AuditKind, String> {
        serde_json::from_value(serde_json::Value::String(name.to_string()))
            .map_err(|_| format!("unknown audit kind `{name}`"))
    }
}

/// Which audit records to return; unset fields do not filter.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub plugin: Option<String>,
    pub kind: Option<AuditKind>,
    pub since: Option<SystemTime>,
    pub until: Option<SystemTime>,
    /// At most this many, newest first (capped at [`MAX_QUERY_ROWS`]).
    pub limit: u32,
}

/// Most rows one audit or log query returns.
pub const MAX_QUERY_ROWS: u32 = 10_000;

impl AuditQuery {
    /// Whether `event` passes this query's filters.
    pub fn admits(&self, event: &AuditEvent) -> bool {
        self.plugin.as_ref().is_none_or(|p| *p == event.plugin)
            && self.kind.is_none_or(|k| k == event.kind)
            && self.since.is_none_or(|t| event.time >= t)
            && self.until.is_none_or(|t| event.time < t)
    }

    /// The row limit to apply.
    pub fn row_limit(&self) -> u32 {
        self.limit.clamp(1, MAX_QUERY_ROWS)
    }
}

/// Milliseconds since the Unix epoch, as stored.
pub fn to_millis(time: SystemTime) -> i64 {
    time.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The time `millis` after the Unix epoch.
pub fn from_millis(millis: i64) -> SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_millis(millis.max(0) as u64)
}

/// How many of a plugin's newest records of calls (see [`AuditKind::caused_by_calls`]) are
/// kept by default.
pub const DEFAULT_RETENTION_RECORDS: u32 = 1_000_000;

/// The operator's `[audit]` table: how long the audit trail is kept.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditRules {
    /// How long records are kept, e.g. `365d` (default: whatever their age).
    pub retention: Option<Period>,
    /// How many of each plugin's newest records of calls are kept (default 1,000,000);
    /// records of what operators did are never deleted for this.
    pub retention_records: Option<u32>,
}

impl AuditRules {
    /// Whether the table is absent or empty (it is then left out when serialized).
    pub fn is_default(&self) -> bool {
        *self == AuditRules::default()
    }

    /// What is kept of each plugin's records.
    pub fn retention(&self) -> Retention {
        Retention {
            age: self.retention.map(|ttl| ttl.0),
            newest: self.retention_records.unwrap_or(DEFAULT_RETENTION_RECORDS),
        }
    }
}

/// Receives audit records and answers queries over them.
pub trait AuditSink: Send + Sync {
    /// Persist one record (and mirror it to the host log). Failures are logged, never
    /// passed to the caller.
    fn record(&self, event: AuditEvent);
    /// Persist several records, in order, without mirroring them again; backends
    /// override this to store them together.
    fn record_all(&self, events: Vec<AuditEvent>) {
        for event in events {
            self.record(event);
        }
    }
    /// Records matching `query`, newest first.
    fn query(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>, crate::storage::StoreError>;
    /// The plugins that have records.
    fn plugins(&self) -> Result<Vec<String>, crate::storage::StoreError>;
    /// Delete what `keep` does not keep of `plugin`'s records as of `pass`; how many.
    fn prune(
        &self,
        plugin: &str,
        keep: Retention,
        pass: &Pass,
    ) -> Result<u64, crate::storage::StoreError>;
}

/// Records of one kind from one plugin, rate-limited so that a plugin (or a client
/// driving it) causing one on every call costs a bounded number of audit writes. Records
/// not written are counted, and the next one written says how many.
pub struct Throttled {
    rate: HeldBack,
    per_second: u32,
    /// What the records are, in the plural ("denials").
    what: &'static str,
}

impl Throttled {
    /// At most `per_second` records of `what` a second (and in a burst).
    pub fn new(per_second: u32, what: &'static str) -> Self {
        Throttled {
            rate: HeldBack::new(per_second),
            per_second,
            what,
        }
    }

    /// Write a record of `plugin`'s to `audit`, or count it if over the rate.
    pub fn record(
        &self,
        audit: &dyn AuditSink,
        plugin: &str,
        kind: AuditKind,
        capability: Option<CapabilityId>,
        detail: String,
    ) {
        self.record_at(Instant::now(), audit, plugin, kind, capability, detail);
    }

    /// [`Throttled::record`] at `now`; the rate is checked before any record is built.
    fn record_at(
        &self,
        now: Instant,
        audit: &dyn AuditSink,
        plugin: &str,
        kind: AuditKind,
        capability: Option<CapabilityId>,
        detail: String,
    ) {
        let Some(suppressed) = self.rate.offer_at(1, now) else {
            return;
        };
        let detail = match suppressed {
            0 => detail,
            _ => format!(
                "{detail} ({suppressed} earlier {} not recorded: over {} per second)",
                self.what, self.per_second
            ),
        };
        audit.record(AuditEvent::new(plugin, kind, capability, detail));
    }

    /// Records counted but not written since the last one written.
    pub fn suppressed(&self) -> u64 {
        self.rate.held()
    }
}

/// Mirror an audit record to the host's own log (details never carry secret values).
pub fn trace(event: &AuditEvent) {
    tracing::info!(
        target: "capstan::audit",
        plugin = %event.plugin,
        kind = event.kind.as_str(),
        capability = ?event.capability.map(CapabilityId::name),
        "{}",
        crate::text::escape(&event.detail)
    );
}

/// Audit records kept in memory (tests and `capstan run` without a data directory).
#[derive(Default)]
pub struct MemoryAudit {
    events: Mutex<VecDeque<AuditEvent>>,
}

impl MemoryAudit {
    /// All records so far, oldest first.
    pub fn events(&self) -> Vec<AuditEvent> {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }
}

impl AuditSink for MemoryAudit {
    fn record(&self, event: AuditEvent) {
        trace(&event);
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(event);
    }

    fn query(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>, crate::storage::StoreError> {
        let events = self.events.lock().unwrap_or_else(|p| p.into_inner());
        Ok(events
            .iter()
            .rev()
            .filter(|e| query.admits(e))
            .take(query.row_limit() as usize)
            .cloned()
            .collect())
    }

    fn plugins(&self) -> Result<Vec<String>, crate::storage::StoreError> {
        Ok(crate::retention::plugins_in_memory(&self.events))
    }

    fn prune(
        &self,
        plugin: &str,
        keep: Retention,
        pass: &Pass,
    ) -> Result<u64, crate::storage::StoreError> {
        Ok(crate::retention::prune_in_memory(
            &self.events,
            plugin,
            keep,
            pass,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn trap(throttled: &Throttled, audit: &MemoryAudit, now: Instant, detail: &str) {
        throttled.record_at(now, audit, "p", AuditKind::Trapped, None, detail.into());
    }

    #[test]
    fn records_over_the_rate_are_counted_and_the_next_record_says_how_many() {
        let audit = MemoryAudit::default();
        let throttled = Throttled::new(2, "traps");
        let start = Instant::now();
        for n in 0..10 {
            trap(&throttled, &audit, start, &format!("trap {n}"));
        }
        assert_eq!(audit.events().len(), 2);
        assert_eq!(throttled.suppressed(), 8);
        trap(
            &throttled,
            &audit,
            start + Duration::from_secs(1),
            "trap 10",
        );
        let events = audit.events();
        assert_eq!(events.len(), 3);
        assert_eq!(
            events[2].detail,
            "trap 10 (8 earlier traps not recorded: over 2 per second)"
        );
        assert_eq!(throttled.suppressed(), 0);
    }
}
