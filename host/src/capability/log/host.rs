//! Host side of the WIT `log` interface.

use crate::bindings::capstan::plugin::log::{Host, Level};
use crate::capability::log::LogSource;
use crate::policy::LogLevel;
use crate::runtime::CallState;

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

impl Host for CallState {
    fn write(&mut self, level: Level, message: String) {
        self.log.write(
            &self.plugin,
            &self.call_id,
            level.into(),
            LogSource::Guest,
            &message,
        );
    }
}
