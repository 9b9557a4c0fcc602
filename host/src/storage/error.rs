//! The one error every storage backend returns.

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum StoreError {
    /// The write would take the namespace over its quota.
    #[error("quota exceeded: {0}")]
    QuotaExceeded(String),
    /// `increment` on a value that is not a decimal i64, or that would overflow.
    #[error("{0}")]
    NotAnInteger(String),
    /// The operation was still waiting (for a lock, for the database) when the calling
    /// plugin's deadline passed, and gave up.
    #[error("gave up at the call's deadline")]
    DeadlinePassed,
    /// The backend failed; the text is for host logs, not for plugins.
    #[error("storage backend failed: {0}")]
    Backend(String),
}
