//! What a backend provides for `sql`: a database per plugin, statements bounded by the
//! grant and the call's deadline, and recorded migrations.

use super::{Dialect, Grant, Migration};
use crate::capability::Deadline;
use crate::storage::StoreError;
use serde::Serialize;

pub use crate::bindings::capstan::plugin::sql::{Rows, Statement, Value};
use crate::bindings::capstan::plugin::types::Error;

/// A migration as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Applied {
    pub name: String,
    /// Hex SHA-256 of the text that ran.
    pub checksum: String,
    /// Milliseconds since the Unix epoch.
    pub applied_ms: i64,
}

/// Why migrations were refused. The database is left as it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MigrationError {
    #[error("migration `{name}` failed: {why}")]
    Failed { name: String, why: String },
    #[error(
        "migration `{name}` was applied with checksum {applied} and now reads {now}: applied migrations must not be edited (add a new one)"
    )]
    Edited {
        name: String,
        applied: String,
        now: String,
    },
    #[error("the plugin's database is unavailable: {0}")]
    Store(String),
}

/// Every plugin's own database, in one backend.
pub trait SqlEngine: Send + Sync {
    /// The dialect this backend speaks (`sqlite` or `postgres`).
    fn dialect(&self) -> Dialect;

    /// Run `sql` with `params` for `plugin`; the rows it changed.
    fn execute(
        &self,
        plugin: &str,
        grant: &Grant,
        deadline: Deadline,
        sql: &str,
        params: &[Value],
    ) -> Result<u64, Error>;

    /// Run `sql` with `params` for `plugin` and return its rows, capped by `grant`.
    fn query(
        &self,
        plugin: &str,
        grant: &Grant,
        deadline: Deadline,
        sql: &str,
        params: &[Value],
    ) -> Result<Rows, Error>;

    /// Run `statements` for `plugin` in one transaction.
    fn batch(
        &self,
        plugin: &str,
        grant: &Grant,
        deadline: Deadline,
        statements: &[Statement],
    ) -> Result<Vec<u64>, Error>;

    /// Apply the `migrations` of `plugin` not yet applied, in order, in one transaction,
    /// recording each; refuse all if one fails or an applied one was edited.
    fn migrate(
        &self,
        plugin: &str,
        max_bytes: u64,
        migrations: &[Migration<'_>],
    ) -> Result<Vec<Applied>, MigrationError>;

    /// The migrations applied to `plugin`'s database, in order.
    fn applied(&self, plugin: &str) -> Result<Vec<Applied>, StoreError>;

    /// Delete `plugin`'s database and everything in it.
    fn purge(&self, plugin: &str) -> Result<(), StoreError>;
}

/// Bytes a value takes in a result (for the result-size cap).
pub fn size_of(value: &Value) -> u64 {
    match value {
        Value::Null => 1,
        Value::Integer(_) | Value::Real(_) => 8,
        Value::Text(text) => text.len() as u64,
        Value::Blob(bytes) => bytes.len() as u64,
    }
}

/// The error for a result over `grant`'s caps.
pub fn too_large(grant: &Grant) -> Error {
    Error::TooLarge(format!(
        "the result exceeds the policy's caps ({} rows, {} bytes)",
        grant.max_rows, grant.max_result_bytes
    ))
}

/// The deadline of one statement: the call's, or the policy's statement timeout if
/// sooner.
pub fn statement_deadline(grant: &Grant, call: Deadline) -> Deadline {
    match grant.statement_timeout {
        Some(limit) if limit < call.remaining() => Deadline::after(limit),
        _ => call,
    }
}
