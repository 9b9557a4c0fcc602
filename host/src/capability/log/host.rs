//! Host side of the WIT `log` interface.

use super::limiter::{CallLog, LogTarget};
use super::{LogLevel, LogSource};
use crate::bindings::capstan::plugin::log::{Host, Level};

impl From<Level> for LogLevel {
    fn from(level: Level) -> Self {
        match level {
            Level::Trace => LogLevel::Trace,
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error => LogLevel::Error,
        }
    }
}

/// The log, seen from one call: where lines go and this call's accounting.
pub struct LogHost<'a> {
    pub target: LogTarget<'a>,
    pub call: &'a mut CallLog,
}

impl Host for LogHost<'_> {
    fn write(&mut self, level: Level, message: String) {
        self.call
            .write(&self.target, level.into(), LogSource::Guest, &message);
    }
}
