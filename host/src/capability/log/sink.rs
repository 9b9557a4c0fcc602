//! Where plugin log lines go: a bounded in-memory ring (queryable) mirrored to `tracing`.

use crate::policy::LogLevel;
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::SystemTime;

/// Which stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogSource {
    /// The plugin's `log.write` calls.
    Guest,
    /// The plugin's captured stdout.
    Stdout,
    /// The plugin's captured stderr.
    Stderr,
    /// The host, writing about the plugin (e.g. dropped lines).
    Host,
}

/// One log line of one plugin call.
#[derive(Debug, Clone, Serialize)]
pub struct LogRecord {
    pub time: SystemTime,
    pub plugin: String,
    pub call_id: String,
    pub level: LogLevel,
    pub source: LogSource,
    pub message: String,
}

/// Receives plugin log lines.
pub trait LogSink: Send + Sync {
    /// Accept one line (already capped and rate-limited).
    fn write(&self, record: LogRecord);
}

/// Keeps the newest `capacity` lines in memory and mirrors each to `tracing`.
pub struct MemoryLogs {
    capacity: usize,
    records: Mutex<VecDeque<LogRecord>>,
}

impl MemoryLogs {
    /// A ring holding at most `capacity` lines.
    pub fn new(capacity: usize) -> Self {
        MemoryLogs {
            capacity,
            records: Mutex::new(VecDeque::new()),
        }
    }

    /// The lines held, oldest first, optionally only those of `plugin`.
    pub fn records(&self, plugin: Option<&str>) -> Vec<LogRecord> {
        let records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        records
            .iter()
            .filter(|r| plugin.is_none_or(|p| r.plugin == p))
            .cloned()
            .collect()
    }
}

impl LogSink for MemoryLogs {
    fn write(&self, record: LogRecord) {
        mirror_to_tracing(&record);
        let mut records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        if records.len() == self.capacity {
            records.pop_front();
        }
        records.push_back(record);
    }
}

fn mirror_to_tracing(r: &LogRecord) {
    macro_rules! emit {
        ($level:expr) => {
            tracing::event!(
                target: "capstan::plugin",
                $level,
                plugin = %r.plugin,
                call = %r.call_id,
                source = ?r.source,
                "{}",
                r.message
            )
        };
    }
    match r.level {
        LogLevel::Trace => emit!(tracing::Level::TRACE),
        LogLevel::Debug => emit!(tracing::Level::DEBUG),
        LogLevel::Info => emit!(tracing::Level::INFO),
        LogLevel::Warn => emit!(tracing::Level::WARN),
        LogLevel::Error => emit!(tracing::Level::ERROR),
    }
}
