//! `log`'s slice of the policy: the `[log]` table and the settings it yields per plugin.

use crate::policy::Period;
use crate::retention::Retention;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How long a plugin's lines are kept by default.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
/// How many of a plugin's newest lines are kept by default.
pub const DEFAULT_RETENTION_LINES: u32 = 100_000;

/// Log severities, lowest first (mirrors the WIT `log.level`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    /// The lower-case name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }

    /// 0 (trace) to 4 (error), as stored so queries can filter by minimum level.
    pub fn rank(self) -> i32 {
        self as i32
    }

    /// The level of rank `rank`.
    pub fn from_rank(rank: i32) -> Option<LogLevel> {
        [
            LogLevel::Trace,
            LogLevel::Debug,
            LogLevel::Info,
            LogLevel::Warn,
            LogLevel::Error,
        ]
        .get(usize::try_from(rank).ok()?)
        .copied()
    }
}

impl std::str::FromStr for LogLevel {
    type Err = String;

    fn from_str(name: &str) -> Result<LogLevel, String> {
        serde_json::from_value(serde_json::Value::String(name.to_string()))
            .map_err(|_| format!("unknown log level `{name}` (trace, debug, info, warn, error)"))
    }
}

/// Policy `[log]` fields as written (all optional).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// Lowest level kept: trace, debug, info, warn or error.
    pub level: Option<LogLevel>,
    pub lines_per_call: Option<u32>,
    pub line_bytes: Option<u32>,
    pub lines_per_second: Option<u32>,
    /// How long lines are kept, e.g. `7d`.
    pub retention: Option<Period>,
    /// How many of the plugin's newest lines are kept.
    pub retention_lines: Option<u32>,
}

/// Effective log settings for one plugin.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogPolicy {
    pub level: LogLevel,
    pub lines_per_call: u32,
    pub line_bytes: u32,
    pub lines_per_second: u32,
    pub retention: Period,
    pub retention_lines: u32,
}

impl LogPolicy {
    /// `own` over `defaults` field by field, then the built-in defaults.
    pub fn resolve(own: Option<&LogSettings>, defaults: &LogSettings) -> LogPolicy {
        let pick = |f: fn(&LogSettings) -> Option<u32>, default: u32| {
            own.and_then(f).or(f(defaults)).unwrap_or(default)
        };
        LogPolicy {
            level: own
                .and_then(|s| s.level)
                .or(defaults.level)
                .unwrap_or(LogLevel::Info),
            lines_per_call: pick(|s| s.lines_per_call, 100),
            line_bytes: pick(|s| s.line_bytes, 4096),
            lines_per_second: pick(|s| s.lines_per_second, 200),
            retention: own
                .and_then(|s| s.retention)
                .or(defaults.retention)
                .unwrap_or(Period(DEFAULT_RETENTION)),
            retention_lines: pick(|s| s.retention_lines, DEFAULT_RETENTION_LINES),
        }
    }

    /// What is kept of the plugin's lines.
    pub fn retention(&self) -> Retention {
        Retention {
            age: Some(self.retention.0),
            newest: self.retention_lines,
        }
    }
}
