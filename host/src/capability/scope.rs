//! What every capability host knows about the call it serves: who is calling, until when,
//! and where denials are recorded. The runtime builds one per call; unit tests build
//! their own.

use super::CapabilityId;
use crate::audit::{AuditEvent, AuditKind, AuditSink, Throttled};
use crate::bindings::capstan::plugin::types::Error;
use std::time::{Duration, Instant};

/// A call's wall-clock deadline. Host calls bound every wait by what is left of it, so a
/// call ends at its deadline even while it waits in the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    at: Instant,
}

impl Deadline {
    /// The deadline `budget` from now.
    pub fn after(budget: Duration) -> Deadline {
        Deadline {
            at: Instant::now() + budget,
        }
    }

    /// The instant it falls at.
    pub fn at(self) -> Instant {
        self.at
    }

    /// Time left (zero once passed).
    pub fn remaining(self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    /// `wanted`, cut to the time left.
    pub fn bound(self, wanted: Duration) -> Duration {
        wanted.min(self.remaining())
    }

    /// Whether it has passed.
    pub fn passed(self) -> bool {
        Instant::now() >= self.at
    }
}

/// Denial records of one plugin, rate-limited so that a plugin hammering a withheld
/// capability costs a bounded number of audit writes. Suppressed denials are counted and
/// reported in the next record that is written.
pub struct Denials(Throttled);

/// Denial records a plugin may cause per second (and in a burst).
pub const DENIAL_RECORDS_PER_SECOND: u32 = 20;

impl Default for Denials {
    fn default() -> Self {
        Denials(Throttled::new(DENIAL_RECORDS_PER_SECOND, "denials"))
    }
}

impl Denials {
    /// Record a denial, or count it if this plugin is over its record rate.
    pub fn record(
        &self,
        audit: &dyn AuditSink,
        plugin: &str,
        capability: CapabilityId,
        detail: String,
    ) {
        self.0
            .record(audit, plugin, AuditKind::Denied, Some(capability), detail);
    }
}

/// Trap, limit-hit and refusal records (deadline, memory, quotas, refused requests) a
/// plugin's calls may cause per second, and in a burst: a plugin retrying a refused
/// operation in a loop, or a client hammering a plugin that traps, must not turn each
/// attempt into an audit write.
pub const FAULT_RECORDS_PER_SECOND: u32 = 20;

/// A plugin's limiter for its trap, limit-hit and refusal records, shared by its calls.
pub fn faults() -> Throttled {
    Throttled::new(FAULT_RECORDS_PER_SECOND, "traps, limit hits and refusals")
}

/// One call as the capabilities see it.
#[derive(Clone, Copy)]
pub struct CallScope<'a> {
    pub plugin: &'a str,
    pub call_id: &'a str,
    pub deadline: Deadline,
    pub audit: &'a dyn AuditSink,
    pub denials: &'a Denials,
    pub faults: &'a Throttled,
}

impl CallScope<'_> {
    /// Record that this call used `capability.operation`, which is withheld, and build
    /// the `denied` error the plugin sees.
    pub fn refuse(&self, capability: CapabilityId, operation: &str) -> Error {
        self.deny(
            capability,
            format!(
                "call {} used {capability}.{operation}, which the operator's policy does not grant",
                self.call_id
            ),
        );
        Error::Denied(format!(
            "{capability} is not granted to plugin `{}`",
            self.plugin
        ))
    }

    /// Record a denial with its own detail (rate-limited per plugin).
    pub fn deny(&self, capability: CapabilityId, detail: String) {
        self.denials
            .record(self.audit, self.plugin, capability, detail);
    }

    /// Write an audit record about this plugin.
    pub fn audit(&self, kind: AuditKind, capability: CapabilityId, detail: String) {
        self.audit
            .record(AuditEvent::new(self.plugin, kind, Some(capability), detail));
    }

    /// Write a record of a limit hit or a refusal the plugin can repeat at will (rate-limited
    /// per plugin, see [`faults`]).
    pub fn fault(&self, kind: AuditKind, capability: CapabilityId, detail: String) {
        self.faults
            .record(self.audit, self.plugin, kind, Some(capability), detail);
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! For unit tests: a scope (a plugin id, a call id, a deadline and an in-memory
    //! audit) and grants decided from TOML.

    use super::*;
    use crate::audit::MemoryAudit;

    /// The grants a manifest's `[capabilities]` tables (`manifest`) get under a policy's
    /// (`policy`), both TOML.
    pub fn grants(manifest: &str, policy: &str) -> crate::capability::Grants {
        let requested: crate::capability::Requested = toml::from_str(manifest).unwrap();
        let allowed: crate::capability::Allowed = toml::from_str(policy).unwrap();
        crate::capability::Grants::decide(&requested, &allowed)
    }

    /// Owns what a [`CallScope`] borrows.
    pub struct TestScope {
        pub audit: MemoryAudit,
        pub denials: Denials,
        pub faults: Throttled,
        pub deadline: Deadline,
    }

    impl TestScope {
        pub fn new() -> TestScope {
            TestScope {
                audit: MemoryAudit::default(),
                denials: Denials::default(),
                faults: super::faults(),
                deadline: Deadline::after(Duration::from_secs(5)),
            }
        }

        pub fn scope(&self) -> CallScope<'_> {
            CallScope {
                plugin: "plugin",
                call_id: "c1",
                deadline: self.deadline,
                audit: &self.audit,
                denials: &self.denials,
                faults: &self.faults,
            }
        }

        /// Denial records written so far, for `capability`.
        pub fn denials_of(&self, capability: CapabilityId) -> usize {
            self.audit
                .events()
                .iter()
                .filter(|e| e.kind == AuditKind::Denied && e.capability == Some(capability))
                .count()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::TestScope;
    use super::*;

    #[test]
    fn a_flood_of_denials_writes_a_bounded_number_of_records_and_counts_the_rest() {
        let test = TestScope::new();
        let scope = test.scope();
        for _ in 0..1_000 {
            let error = scope.refuse(CapabilityId::Kv, "get");
            assert!(matches!(error, Error::Denied(_)));
        }
        let written = test.denials_of(CapabilityId::Kv);
        assert!(
            (1..=DENIAL_RECORDS_PER_SECOND as usize + 1).contains(&written),
            "{written} records for 1000 denials"
        );
        assert!(test.denials.0.suppressed() >= 1_000 - written as u64 - 1);
    }

    #[test]
    fn deadline_bounds_waits_by_the_time_left() {
        let deadline = Deadline::after(Duration::from_millis(50));
        assert!(deadline.bound(Duration::from_secs(10)) <= Duration::from_millis(50));
        assert_eq!(
            deadline.bound(Duration::from_millis(1)),
            Duration::from_millis(1)
        );
        assert!(!deadline.passed());
        assert!(Deadline::after(Duration::ZERO).passed());
    }
}
