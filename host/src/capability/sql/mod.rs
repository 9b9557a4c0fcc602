//! `sql`: a relational database of the plugin's own. The manifest names the dialect it
//! speaks and carries its migrations (`.sql` files the SDK embeds); the policy grants it
//! and bounds it (size, rows, result bytes, statement time). Each backend gives every
//! plugin its own database ([`SqlEngine`]): a file on SQLite, a schema and login role on
//! PostgreSQL.

mod deny;
pub mod engine;
mod host;

pub use engine::{Applied, MigrationError, SqlEngine, Statement, Value};
pub use host::SqlHost;

use super::{CallScope, Capability, CapabilityId, CapabilityInfo, Decision, Direction, Import};
use regex::Regex;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::LazyLock;
use std::time::Duration;
use wasmtime::component::{HasData, Linker};

/// Migration file names: `0001_init.sql` and the like.
static MIGRATION_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new("^[0-9A-Za-z][0-9A-Za-z_.-]{0,123}\\.sql$").expect("valid regex"));

/// A database's size unless the policy sets one.
pub const DEFAULT_MAX_BYTES: u64 = 64 * 1024 * 1024;
/// Rows a query may return unless the policy sets another number.
pub const DEFAULT_MAX_ROWS: u32 = 10_000;
/// Bytes a query's result may hold unless the policy sets another number.
pub const DEFAULT_MAX_RESULT_BYTES: u64 = 4 * 1024 * 1024;
/// Ceilings of the policy's numbers.
const MAX_BYTES_CEILING: u64 = 64 * 1024 * 1024 * 1024;
const MAX_ROWS_CEILING: u32 = 10_000_000;
const MAX_RESULT_BYTES_CEILING: u64 = 256 * 1024 * 1024;

/// The `sql` capability.
pub struct Sql;

/// Which SQL a plugin speaks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    Sqlite,
    Postgres,
    /// A subset both engines run (see the README); runs on either host.
    #[default]
    Portable,
}

impl Dialect {
    /// Whether a plugin speaking `self` runs on a host whose engine is `engine`.
    pub fn runs_on(self, engine: Dialect) -> bool {
        self == Dialect::Portable || self == engine
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
            Dialect::Portable => "portable",
        }
    }
}

/// Manifest `[capabilities.sql]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub dialect: Dialect,
    /// Migrations by file name, applied in name order (the SDK fills this from the crate's
    /// `migrations/*.sql`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub migrations: BTreeMap<String, String>,
}

impl Request {
    /// The migrations in the order they apply, each with its checksum.
    pub fn ordered_migrations(&self) -> Vec<Migration<'_>> {
        self.migrations
            .iter()
            .map(|(name, sql)| Migration {
                name,
                sql,
                checksum: hex::encode(Sha256::digest(sql.as_bytes())),
            })
            .collect()
    }
}

/// One migration of a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration<'a> {
    pub name: &'a str,
    pub sql: &'a str,
    /// Hex SHA-256 of the text.
    pub checksum: String,
}

/// Policy `[…capabilities.sql]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Allowed {
    /// The database's size at most (default 64 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
    /// Rows one query may return (default 10000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rows: Option<u32>,
    /// Bytes one query's result may hold (default 4 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_result_bytes: Option<u64>,
    /// One statement's time at most (always also the call's deadline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement_timeout_ms: Option<u32>,
}

/// What bounds the plugin's database.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Grant {
    pub dialect: Dialect,
    pub max_bytes: u64,
    pub max_rows: u32,
    pub max_result_bytes: u64,
    pub statement_timeout: Option<Duration>,
}

/// Apply `request`'s migrations to `plugin`'s database if `decision` grants it a database
/// (a plugin without the grant has none to migrate).
pub fn migrate(
    engine: &dyn SqlEngine,
    plugin: &str,
    request: &Request,
    decision: &Decision<Grant>,
) -> Result<Vec<Applied>, MigrationError> {
    match decision.granted() {
        Some(grant) => engine.migrate(plugin, grant.max_bytes, &request.ordered_migrations()),
        None => Ok(Vec::new()),
    }
}

impl Capability for Sql {
    const INFO: CapabilityInfo = CapabilityInfo {
        id: CapabilityId::Sql,
        name: "sql",
        key: "sql",
        interface: "sql",
        standard: &[],
        exports: &[],
        direction: Direction::Import,
    };

    type Request = Request;
    type Allowed = Allowed;
    type Grant = Grant;

    fn grant(request: &Request, allowed: &Allowed) -> Result<Grant, String> {
        Ok(Grant {
            dialect: request.dialect,
            max_bytes: allowed.max_bytes.unwrap_or(DEFAULT_MAX_BYTES),
            max_rows: allowed.max_rows.unwrap_or(DEFAULT_MAX_ROWS),
            max_result_bytes: allowed.max_result_bytes.unwrap_or(DEFAULT_MAX_RESULT_BYTES),
            statement_timeout: allowed
                .statement_timeout_ms
                .map(|ms| Duration::from_millis(u64::from(ms))),
        })
    }

    fn check_request(request: &Request) -> Result<(), String> {
        for (name, sql) in &request.migrations {
            if !MIGRATION_NAME.is_match(name) {
                return Err(format!(
                    "migration `{}` must be named like 0001_init.sql",
                    crate::text::shown_name(name)
                ));
            }
            if sql.trim().is_empty() {
                return Err(format!("migration `{name}` is empty"));
            }
        }
        Ok(())
    }

    fn check_allowed(allowed: &Allowed) -> Result<(), String> {
        let out_of =
            |field: &str, ceiling: String| format!("`{field}` must be between 1 and {ceiling}");
        if allowed
            .max_bytes
            .is_some_and(|n| !(4096..=MAX_BYTES_CEILING).contains(&n))
        {
            return Err(format!(
                "`max_bytes` must be between 4096 and {MAX_BYTES_CEILING}"
            ));
        }
        if allowed
            .max_rows
            .is_some_and(|n| !(1..=MAX_ROWS_CEILING).contains(&n))
        {
            return Err(out_of("max_rows", MAX_ROWS_CEILING.to_string()));
        }
        if allowed
            .max_result_bytes
            .is_some_and(|n| !(1..=MAX_RESULT_BYTES_CEILING).contains(&n))
        {
            return Err(out_of(
                "max_result_bytes",
                MAX_RESULT_BYTES_CEILING.to_string(),
            ));
        }
        if allowed.statement_timeout_ms == Some(0) {
            return Err(out_of("statement_timeout_ms", u32::MAX.to_string()));
        }
        Ok(())
    }
}

impl Import for Sql {
    type View<'a> = SqlHost<'a>;

    fn link<T: 'static>(
        linker: &mut Linker<T>,
        decision: &Decision<Grant>,
        view: fn(&mut T) -> SqlHost<'_>,
        scope: fn(&mut T) -> CallScope<'_>,
    ) -> wasmtime::Result<()> {
        use crate::bindings::capstan::plugin::sql::add_to_linker;
        match decision {
            Decision::Granted { .. } => add_to_linker::<T, Sql>(linker, view),
            _ => add_to_linker::<T, deny::Withheld>(linker, scope),
        }
    }
}

impl HasData for Sql {
    type Data<'a> = SqlHost<'a>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capability::{Decision, Requested};

    fn decide(manifest: &str, policy: &str) -> Decision<Grant> {
        crate::capability::scope::testing::grants(manifest, policy).sql
    }

    #[test]
    fn sql_is_granted_only_by_the_policy_with_its_bounds() {
        let manifest = "[sql]\ndialect = \"sqlite\"\n";
        assert!(matches!(decide(manifest, ""), Decision::Denied { .. }));
        let decision = decide(manifest, "[sql]\nmax_rows = 10\n");
        let grant = decision.granted().unwrap();
        assert_eq!(grant.max_rows, 10);
        assert_eq!(grant.max_bytes, DEFAULT_MAX_BYTES);
        assert_eq!(grant.dialect, Dialect::Sqlite);
    }

    #[test]
    fn migrations_apply_in_name_order_with_checksums() {
        let requested: Requested = toml::from_str(
            "[sql]\ndialect = \"portable\"\n[sql.migrations]\n\"0002_more.sql\" = \"B\"\n\
             \"0001_init.sql\" = \"A\"\n",
        )
        .unwrap();
        let request = requested.sql.unwrap();
        let order: Vec<&str> = request
            .ordered_migrations()
            .iter()
            .map(|m| m.name)
            .collect();
        assert_eq!(order, ["0001_init.sql", "0002_more.sql"]);
        assert_eq!(
            request.ordered_migrations()[0].checksum,
            hex::encode(Sha256::digest(b"A"))
        );
    }

    #[test]
    fn bad_dialects_names_and_bounds_are_refused() {
        assert!(toml::from_str::<Requested>("[sql]\ndialect = \"mysql\"\n").is_err());
        assert!(
            toml::from_str::<Requested>("[sql]\n").is_err(),
            "the dialect is required"
        );
        let bad_name: Requested =
            toml::from_str("[sql]\ndialect = \"sqlite\"\n[sql.migrations]\n\"../x.sql\" = \"A\"\n")
                .unwrap();
        assert!(bad_name.check().unwrap_err().contains("0001_init.sql"));
        assert!(Dialect::Portable.runs_on(Dialect::Postgres));
        assert!(!Dialect::Sqlite.runs_on(Dialect::Postgres));
        assert!(
            crate::policy::Policy::parse("[defaults.capabilities.sql]\nmax_rows = 0\n").is_err()
        );
    }
}
