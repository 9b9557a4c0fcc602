//! Logging into the host's log. Always granted; the host caps size and rate.

pub use crate::bindings::capstan::plugin::log::Level;

/// Write `message` at `level`.
pub fn write(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    crate::bindings::capstan::plugin::log::write(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    crate::testing::record_log(level, message);
}

/// Write at `trace` level.
pub fn trace(message: impl AsRef<str>) {
    write(Level::Trace, message.as_ref());
}

/// Write at `debug` level.
pub fn debug(message: impl AsRef<str>) {
    write(Level::Debug, message.as_ref());
}

/// Write at `info` level.
pub fn info(message: impl AsRef<str>) {
    write(Level::Info, message.as_ref());
}

/// Write at `warn` level.
pub fn warn(message: impl AsRef<str>) {
    write(Level::Warn, message.as_ref());
}

/// Write at `error` level.
pub fn error(message: impl AsRef<str>) {
    write(Level::Error, message.as_ref());
}
