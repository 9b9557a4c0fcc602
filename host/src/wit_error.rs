//! Human text for the contract's error variant, for CLI output and logs.

use crate::bindings::capstan::plugin::types::Error;

/// One line describing `error`, e.g. `invalid input: missing argument`.
pub fn describe(error: &Error) -> String {
    match error {
        Error::Denied(why) => format!("denied: {why}"),
        Error::NotFound => "not found".to_string(),
        Error::QuotaExceeded(why) => format!("quota exceeded: {why}"),
        Error::InvalidInput(why) => format!("invalid input: {why}"),
        Error::Timeout => "timed out".to_string(),
        Error::TooLarge(why) => format!("too large: {why}"),
        Error::Internal(why) => format!("internal error: {why}"),
    }
}
