//! Size, per-call and per-second caps on a plugin's log lines, and redaction of the
//! secret values a call has read.

use super::{LogLevel, LogPolicy, LogRecord, LogSink, LogSource};
use crate::audit::{AuditEvent, AuditKind, AuditSink};
use crate::capability::CapabilityId;
use crate::rate::RateLimiter;
use std::borrow::Cow;
use std::time::SystemTime;

/// Where one plugin's lines go and under which rules.
#[derive(Clone, Copy)]
pub struct LogTarget<'a> {
    pub plugin: &'a str,
    pub call_id: &'a str,
    pub policy: &'a LogPolicy,
    /// Shared by all calls of the plugin.
    pub rate: &'a RateLimiter,
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

    /// Report dropped lines once per call, as a host line and an audit record.
    pub fn finish(&mut self, target: &LogTarget<'_>) {
        if self.dropped == 0 {
            return;
        }
        let policy = target.policy;
        let detail = format!(
            "dropped {} log lines (caps: {} lines per call, {} per second)",
            self.dropped, policy.lines_per_call, policy.lines_per_second
        );
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
        self.dropped = 0;
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
        sink: MemoryLogs,
        audit: MemoryAudit,
    }

    impl Fixture {
        fn from_toml(policy: &str) -> Fixture {
            let settings: LogSettings = toml::from_str(policy).unwrap();
            let policy = LogPolicy::resolve(Some(&settings), &LogSettings::default());
            Fixture {
                rate: RateLimiter::new(policy.lines_per_second),
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
