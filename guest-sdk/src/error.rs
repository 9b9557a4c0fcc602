//! The error every capability returns, with a sentence for people and a status for routes.

use crate::bindings::capstan::plugin::types::Error as Wire;

/// Why a host call failed. Every capability returns this instead of a bare string so
/// plugins can match on the cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The operator's policy does not grant this operation; the host audited the attempt.
    Denied(String),
    /// The thing asked for does not exist.
    NotFound,
    /// A policy quota (keys, bytes, calls) would be exceeded.
    QuotaExceeded(String),
    /// An argument was rejected; the text names the argument and the rule.
    InvalidInput(String),
    /// The operation ran past its deadline.
    Timeout,
    /// A size cap was hit; the text names the cap.
    TooLarge(String),
    /// The host failed for a reason that is not the plugin's fault.
    Internal(String),
}

impl Error {
    /// The HTTP status that fits this error when a route returns it.
    pub fn status(&self) -> u16 {
        match self {
            Error::Denied(_) => 403,
            Error::NotFound => 404,
            Error::QuotaExceeded(_) => 507,
            Error::InvalidInput(_) => 400,
            Error::Timeout => 504,
            Error::TooLarge(_) => 413,
            Error::Internal(_) => 500,
        }
    }
}

impl std::fmt::Display for Error {
    /// One line, e.g. `denied: storage.kv is not granted to plugin `counter``.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Denied(why) => write!(f, "denied: {why}"),
            Error::NotFound => f.write_str("not found"),
            Error::QuotaExceeded(why) => write!(f, "quota exceeded: {why}"),
            Error::InvalidInput(why) => write!(f, "invalid input: {why}"),
            Error::Timeout => f.write_str("timed out"),
            Error::TooLarge(why) => write!(f, "too large: {why}"),
            Error::Internal(why) => write!(f, "internal error: {why}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<Wire> for Error {
    fn from(error: Wire) -> Self {
        match error {
            Wire::Denied(why) => Error::Denied(why),
            Wire::NotFound => Error::NotFound,
            Wire::QuotaExceeded(why) => Error::QuotaExceeded(why),
            Wire::InvalidInput(why) => Error::InvalidInput(why),
            Wire::Timeout => Error::Timeout,
            Wire::TooLarge(why) => Error::TooLarge(why),
            Wire::Internal(why) => Error::Internal(why),
        }
    }
}

impl From<Error> for Wire {
    fn from(error: Error) -> Self {
        match error {
            Error::Denied(why) => Wire::Denied(why),
            Error::NotFound => Wire::NotFound,
            Error::QuotaExceeded(why) => Wire::QuotaExceeded(why),
            Error::InvalidInput(why) => Wire::InvalidInput(why),
            Error::Timeout => Wire::Timeout,
            Error::TooLarge(why) => Wire::TooLarge(why),
            Error::Internal(why) => Wire::Internal(why),
        }
    }
}
