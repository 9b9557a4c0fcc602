//! Size, per-call and per-second caps on a plugin's log lines, and redaction of the
//! secret values a call has read.

use super::{LogLevel, LogPolicy, LogRecord, LogSink, LogSource};
use crate::audit::{AuditEvent, AuditKind, AuditSink};
use crate::capability::CapabilityId;
use crate::rate::{HeldBack, RateLimiter};
use std::borrow::Cow;
use std::time::{Instant, SystemTime};

/// Reports of dropped lines a plugin may cause per second (and in a burst), across all
/// its calls: under a flood of calls that each drop lines, a report per call would
/// itself be the flood the caps exist to stop.
pub const DROP_REPORTS_PER_SECOND: u32 = 1;

/// One plugin's reports of dropped lines (a host line and an audit record each), shared
/// by all its calls. A report over [`DROP_REPORTS_PER_SECOND`] is held back and its count
/// carried into the next report, made by the next call that drops lines or finishes
/// once the rate allows.
pub struct DropReports(HeldBack);

impl Default for DropReports {
    fn default() -> Self {
        DropReports(HeldBack::new(DROP_REPORTS_PER_SECOND))
    }
}

/// Dropped lines to report now: this call's, and those held back from earlier calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DropReport {
    pub this_call: u64,
    pub earlier_calls: u64,
}

impl DropReports {
    /// What a call that dropped `dropped` lines reports at `now`, if anything: nothing
    /// when neither it nor earlier calls dropped lines, or when the rate is spent (its
    /// count is then held for the next report).
    pub fn report_at(&self, dropped: u64, now: Instant) -> Option<DropReport> {
        if dropped == 0 && self.0.held() == 0 {
            return None;
        }
        self.0
            .offer_at(dropped, now)
            .map(|earlier_calls| DropReport {
                this_call: dropped,
                earlier_calls,
            })
    }
}

/// Where one plugin's lines go and under which rules.
#[derive(Clone, Copy)]
pub struct LogTarget<'a> {
    pub plugin: &'a str,
    pub call_id: &'a str,
    pub policy: &'a LogPolicy,
    /// Shared by all calls of the plugin.
    pub rate: &'a RateLimiter,
    /// Shared by all calls of the plugin.
    pub drops: &'a DropReports,
    pub sink: &'a dyn LogSink,
    pub audit: &'a dyn AuditSink,
}

/// Secret values a call has read; replaced by `[redacted]` in its later log lines.
#[derive(Default)]
pub struct Redactions {
    values: Vec<String>,
}

impl Redactions {
    /// Redact `value` from now on.
    pub fn add(&mut self, value: &str) {
        if !value.is_empty() && !self.values.iter().any(|v| v == value) {
            self.values.push(value.to_string());
        }
    }

    fn apply<'m>(&self, message: &'m str) -> Cow<'m, str> {
        let mut text = Cow::Borrowed(message);
        for secret in self.values.iter().filter(|s| message.contains(s.as_str())) {
            text = Cow::Owned(text.replace(secret.as_str(), "[redacted]"));
        }
        text
    }
}

/// Per-call log accounting: lines written and dropped, and values to redact.
#[derive(Default)]
pub struct CallLog {
    written: u32,
    dropped: u64,
    pub redactions: Redactions,
}

impl CallLog {
    /// Write one line, applying level floor, caps, the rate limit and redactions.
    pub fn write(
        &mut self,
        target: &LogTarget<'_>,
        level: LogLevel,
        source: LogSource,
        message: &str,
    ) {
        let policy = target.policy;
        if level < policy.level {
            return;
        }
        if self.written >= policy.lines_per_call || !target.rate.try_take() {
            self.dropped += 1;
            return;
        }
        self.written += 1;
        let message = crate::text::cap(&self.redactions.apply(message), policy.line_bytes as usize)
            .into_owned();
        target.sink.write(LogRecord {
            time: SystemTime::now(),
            plugin: target.plugin.to_string(),
            call_id: target.call_id.to_string(),
            level,
            source,
            message,
        });
    }

    /// Report the lines this call dropped, with any held back from earlier calls, as a
    /// host line and an audit record: at most [`DROP_REPORTS_PER_SECOND`] a plugin.
    pub fn finish(&mut self, target: &LogTarget<'_>) {
        let dropped = std::mem::take(&mut self.dropped);
        let Some(report) = target.drops.report_at(dropped, Instant::now()) else {
            return;
        };
        let policy = target.policy;
        let caps = format!(
            "caps: {} lines per call, {} per second",
            policy.lines_per_call, policy.lines_per_second
        );
        let detail = match report {
            DropReport {
                this_call,
                earlier_calls: 0,
            } => format!("dropped {this_call} log lines ({caps})"),
            DropReport {
                this_call,
                earlier_calls,
            } => format!(
                "dropped {} log lines: {this_call} in this call and {earlier_calls} in \
                 earlier calls, held back to report at most {DROP_REPORTS_PER_SECOND} a \
                 second ({caps})",
                this_call + earlier_calls
            ),
        };
        target.sink.write(LogRecord {
            time: SystemTime::now(),
            plugin: target.plugin.to_string(),
            call_id: target.call_id.to_string(),
            level: LogLevel::Warn,
            source: LogSource::Host,
            message: detail.clone(),
        });
        target.audit.record(AuditEvent::new(
            target.plugin,
            AuditKind::LimitHit,
            Some(CapabilityId::Log),
            detail,
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::MemoryAudit;
    use crate::bindings::capstan::plugin::log::{Host, Level};
    use crate::capability::log::{LogHost, LogSettings, MemoryLogs};

    struct Fixture {
        policy: LogPolicy,
        rate: RateLimiter,
        drops: DropReports,
        sink: MemoryLogs,
        audit: MemoryAudit,
    }

    impl Fixture {
        fn from_toml(policy: &str) -> Fixture {
            let settings: LogSettings = toml::from_str(policy).unwrap();
            let policy = LogPolicy::resolve(Some(&settings), &LogSettings::default());
            Fixture {
                rate: RateLimiter::new(policy.lines_per_second),
                drops: DropReports::default(),
                policy,
                sink: MemoryLogs::new(1_000),
                audit: MemoryAudit::default(),
            }
        }

        fn target(&self) -> LogTarget<'_> {
            LogTarget {
                plugin: "p",
                call_id: "c1",
                policy: &self.policy,
                rate: &self.rate,
                drops: &self.drops,
                sink: &self.sink,
                audit: &self.audit,
            }
        }
    }

    #[test]
    fn the_level_floor_and_per_call_cap_from_the_policy_hold_and_drops_are_reported() {
        let fixture = Fixture::from_toml("level = \"warn\"\nlines_per_call = 2\n");
        let mut call = CallLog::default();
        let mut host = LogHost {
            target: fixture.target(),
            call: &mut call,
        };
        host.write(Level::Info, "below the floor".into());
        for n in 0..5 {
            host.write(Level::Error, format!("line {n}"));
        }
        call.finish(&fixture.target());
        let lines: Vec<String> = fixture
            .sink
            .records(Some("p"))
            .into_iter()
            .map(|r| r.message)
            .collect();
        assert_eq!(lines[..2], ["line 0", "line 1"]);
        assert!(lines[2].starts_with("dropped 3 log lines"), "{lines:?}");
        assert_eq!(fixture.audit.events().len(), 1);
    }

    /// Calls that each log one line over the per-second cap (a plugin called thousands
    /// of times a second): the first report goes out at once, the rest are held back.
    fn flood(fixture: &Fixture, calls: usize) {
        for n in 0..calls {
            let mut call = CallLog::default();
            call.write(
                &fixture.target(),
                LogLevel::Info,
                LogSource::Guest,
                &format!("call {n}"),
            );
            call.finish(&fixture.target());
        }
    }

    #[test]
    fn a_flood_of_calls_over_the_rate_is_reported_once_not_once_a_call() {
        let fixture = Fixture::from_toml("lines_per_second = 1\n");
        flood(&fixture, 1_000);
        let host_lines: Vec<String> = fixture
            .sink
            .records(Some("p"))
            .into_iter()
            .filter(|r| r.source == LogSource::Host)
            .map(|r| r.message)
            .collect();
        assert_eq!(host_lines.len(), 1, "{host_lines:?}");
        assert!(
            host_lines[0].starts_with("dropped 1 log lines ("),
            "{host_lines:?}"
        );
        assert_eq!(fixture.audit.events().len(), 1);
        assert_eq!(
            fixture.sink.records(Some("p")).len(),
            2,
            "one kept line, one report"
        );
    }

    fn report(this_call: u64, earlier_calls: u64) -> Option<DropReport> {
        Some(DropReport {
            this_call,
            earlier_calls,
        })
    }

    #[test]
    fn lines_held_back_are_counted_in_the_next_report() {
        let reports = DropReports::default();
        let start = Instant::now();
        assert_eq!(reports.report_at(3, start), report(3, 0));
        for _ in 0..10 {
            assert_eq!(reports.report_at(2, start), None);
        }
        let second_later = start + std::time::Duration::from_secs(1);
        assert_eq!(reports.report_at(1, second_later), report(1, 20));
        assert_eq!(
            reports.report_at(0, second_later),
            None,
            "nothing left to report"
        );
    }

    #[test]
    fn a_call_that_dropped_nothing_reports_what_earlier_calls_held_back() {
        let reports = DropReports::default();
        let start = Instant::now();
        assert!(reports.report_at(1, start).is_some());
        assert_eq!(reports.report_at(5, start), None);
        assert_eq!(reports.report_at(0, start), None, "the rate is still spent");
        let later = start + std::time::Duration::from_secs(2);
        assert_eq!(reports.report_at(0, later), report(0, 5));
    }

    #[test]
    fn values_a_call_read_are_redacted_from_its_lines() {
        let fixture = Fixture::from_toml("");
        let mut call = CallLog::default();
        call.redactions.add("s3cret");
        call.write(
            &fixture.target(),
            LogLevel::Info,
            LogSource::Guest,
            "token=s3cret!",
        );
        assert_eq!(fixture.sink.records(None)[0].message, "token=[redacted]!");
    }
}
