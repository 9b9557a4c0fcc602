//! Size, per-call and per-second caps on a plugin's log lines.

use super::{LogRecord, LogSource};
use crate::audit::{AuditEvent, AuditKind};
use crate::capability::CapabilityId;
use crate::policy::LogLevel;
use crate::runtime::PluginContext;
use std::borrow::Cow;
use std::sync::Mutex;
use std::time::{Instant, SystemTime};

/// A token bucket shared by all calls of one plugin: `per_second` lines a second with a
/// burst of one second's worth.
pub struct RateLimiter {
    per_second: f64,
    state: Mutex<(f64, Instant)>,
}

impl RateLimiter {
    /// A full bucket allowing `per_second` lines a second.
    pub fn new(per_second: u32) -> Self {
        let per_second = f64::from(per_second.max(1));
        RateLimiter {
            per_second,
            state: Mutex::new((per_second, Instant::now())),
        }
    }

    /// Take one token if there is one.
    pub fn try_take(&self) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (tokens, last) = &mut *state;
        let now = Instant::now();
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.per_second)
            .min(self.per_second);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Per-call log accounting: lines written and dropped, and secret values to redact.
#[derive(Default)]
pub struct CallLog {
    written: u32,
    dropped: u64,
    redact: Vec<String>,
}

impl CallLog {
    /// Write one line for the plugin, applying level floor, caps and the rate limit.
    pub fn write(
        &mut self,
        plugin: &PluginContext,
        call_id: &str,
        level: LogLevel,
        source: LogSource,
        message: &str,
    ) {
        let policy = &plugin.policy.log;
        if level < policy.level {
            return;
        }
        if self.written >= policy.lines_per_call || !plugin.log_rate.try_take() {
            self.dropped += 1;
            return;
        }
        self.written += 1;
        let message = cap_line(self.redacted(message), policy.line_bytes as usize);
        plugin.services.logs.write(LogRecord {
            time: SystemTime::now(),
            plugin: plugin.id.clone(),
            call_id: call_id.to_string(),
            level,
            source,
            message,
        });
    }

    /// Replace `value` (a secret this call read) with `[redacted]` in later lines.
    pub fn redact(&mut self, value: &str) {
        if !value.is_empty() && !self.redact.iter().any(|v| v == value) {
            self.redact.push(value.to_string());
        }
    }

    fn redacted<'m>(&self, message: &'m str) -> Cow<'m, str> {
        let mut text = Cow::Borrowed(message);
        for secret in self.redact.iter().filter(|s| message.contains(s.as_str())) {
            text = Cow::Owned(text.replace(secret.as_str(), "[redacted]"));
        }
        text
    }

    /// Report dropped lines once per call, as a host line and an audit record.
    pub fn finish(&mut self, plugin: &PluginContext, call_id: &str) {
        if self.dropped == 0 {
            return;
        }
        let policy = &plugin.policy.log;
        let detail = format!(
            "dropped {} log lines (caps: {} lines per call, {} per second)",
            self.dropped, policy.lines_per_call, policy.lines_per_second
        );
        plugin.services.logs.write(LogRecord {
            time: SystemTime::now(),
            plugin: plugin.id.clone(),
            call_id: call_id.to_string(),
            level: LogLevel::Warn,
            source: LogSource::Host,
            message: detail.clone(),
        });
        plugin.services.audit.record(AuditEvent::new(
            &plugin.id,
            AuditKind::LimitHit,
            Some(CapabilityId::Log),
            detail,
        ));
        self.dropped = 0;
    }
}

/// `message` cut to at most `max` bytes on a character boundary, marked when cut.
fn cap_line(message: Cow<'_, str>, max: usize) -> String {
    if message.len() <= max {
        return message.into_owned();
    }
    let mut end = max;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}…[truncated {} bytes]",
        &message[..end],
        message.len() - end
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_on_char_boundary() {
        assert_eq!(cap_line("héllo".into(), 2), "h…[truncated 5 bytes]");
        assert_eq!(cap_line("short".into(), 10), "short");
    }

    #[test]
    fn bucket_runs_dry() {
        let limiter = RateLimiter::new(3);
        assert!((0..3).all(|_| limiter.try_take()));
        assert!(!limiter.try_take());
    }
}
