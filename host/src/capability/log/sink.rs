//! Where plugin log lines go: a bounded in-memory ring (queryable) mirrored to `tracing`.

use super::LogLevel;
use crate::retention::{Pass, Retention};
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::SystemTime;

/// Which stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
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

impl LogSource {
    /// The lower-case name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            LogSource::Guest => "guest",
            LogSource::Stdout => "stdout",
            LogSource::Stderr => "stderr",
            LogSource::Host => "host",
        }
    }
}

impl std::str::FromStr for LogSource {
    type Err = String;

    fn from_str(name: &str) -> Result<LogSource, String> {
        serde_json::from_value(serde_json::Value::String(name.to_string()))
            .map_err(|_| format!("unknown log source `{name}`"))
    }
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

/// Which log lines to return; unset fields do not filter.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    pub plugin: Option<String>,
    /// Lowest level returned.
    pub level: Option<LogLevel>,
    pub since: Option<SystemTime>,
    pub until: Option<SystemTime>,
    /// Only the lines of this call (a job run's, a tool call's).
    pub call: Option<String>,
    /// At most this many, newest first (capped at [`crate::audit::MAX_QUERY_ROWS`]).
    pub limit: u32,
}

impl LogQuery {
    /// Whether `record` passes this query's filters.
    pub fn admits(&self, record: &LogRecord) -> bool {
        self.plugin.as_ref().is_none_or(|p| *p == record.plugin)
            && self.level.is_none_or(|l| record.level >= l)
            && self.since.is_none_or(|t| record.time >= t)
            && self.until.is_none_or(|t| record.time < t)
            && self.call.as_ref().is_none_or(|c| *c == record.call_id)
    }
}

/// Receives plugin log lines and answers queries over them.
pub trait LogSink: Send + Sync {
    /// Accept one line (already capped, rate-limited and redacted).
    fn write(&self, record: LogRecord);
    /// Accept several lines, in order; backends override this to store them together.
    fn write_all(&self, records: Vec<LogRecord>) {
        for record in records {
            self.write(record);
        }
    }
    /// Lines matching `query`, newest first.
    fn query(&self, query: &LogQuery) -> Result<Vec<LogRecord>, crate::storage::StoreError>;
    /// The plugins that have lines.
    fn plugins(&self) -> Result<Vec<String>, crate::storage::StoreError>;
    /// Delete what `keep` does not keep of `plugin`'s lines as of `pass`; how many.
    fn prune(
        &self,
        plugin: &str,
        keep: Retention,
        pass: &Pass,
    ) -> Result<u64, crate::storage::StoreError>;
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

    fn query(&self, query: &LogQuery) -> Result<Vec<LogRecord>, crate::storage::StoreError> {
        let records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        let limit = query.limit.clamp(1, crate::audit::MAX_QUERY_ROWS) as usize;
        Ok(records
            .iter()
            .rev()
            .filter(|r| query.admits(r))
            .take(limit)
            .cloned()
            .collect())
    }

    fn plugins(&self) -> Result<Vec<String>, crate::storage::StoreError> {
        Ok(crate::retention::plugins_in_memory(&self.records))
    }

    fn prune(
        &self,
        plugin: &str,
        keep: Retention,
        pass: &Pass,
    ) -> Result<u64, crate::storage::StoreError> {
        Ok(crate::retention::prune_in_memory(
            &self.records,
            plugin,
            keep,
            pass,
        ))
    }
}

/// Mirror a plugin log line to the host's own log.
pub fn mirror_to_tracing(r: &LogRecord) {
    macro_rules! emit {
        ($level:expr) => {
            tracing::event!(
                target: "capstan::plugin",
                $level,
                plugin = %r.plugin,
                call = %r.call_id,
                source = ?r.source,
                "{}",
                crate::text::escape(&r.message)
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
