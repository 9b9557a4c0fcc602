//! `sql` on SQLite: one database file per plugin (`<data-dir>/sql/<plugin>.db`), each with
//! a small pool of connections locked down before a plugin statement runs: an authorizer
//! refusing ATTACH/DETACH, `load_extension`, pragmas outside a short list and writes to the
//! migration record; `SQLITE_DBCONFIG_DEFENSIVE` (no writes to the schema table),
//! untrusted schema, no attached databases, length limits, `max_page_count` for the size
//! quota, and a progress handler that interrupts a statement at its deadline.

use crate::bindings::capstan::plugin::sql::Rows;
use crate::bindings::capstan::plugin::types::Error;
use crate::capability::Deadline;
use crate::capability::sql::engine::{size_of, statement_deadline, too_large};
use crate::capability::sql::{
    Applied, Dialect, Grant, Migration, MigrationError, SqlEngine, Statement, Value,
};
use crate::storage::StoreError;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::limits::Limit;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, ErrorCode, OpenFlags, ToSql, TransactionBehavior, params_from_iter};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime};

/// Connections per plugin: readers do not wait behind a writer (WAL).
const POOL_SIZE: usize = 4;
/// Pragmas a plugin may run (reading its own schema, foreign keys).
const PRAGMAS: &[&str] = &[
    "table_info",
    "table_xinfo",
    "table_list",
    "index_list",
    "index_info",
    "index_xinfo",
    "foreign_key_list",
    "foreign_key_check",
    "foreign_keys",
    "user_version",
    "data_version",
    "page_count",
    "page_size",
    "freelist_count",
    "integrity_check",
    "quick_check",
];
/// The table recording applied migrations, which plugins may read but not write.
const MIGRATIONS_TABLE: &str = "_capstan_migrations";
/// SQLite's default page size, which plugins cannot change.
const PAGE_SIZE: u64 = 4096;
/// Longest string or blob, and longest statement text.
const MAX_LENGTH: i32 = 16 * 1024 * 1024;
const MAX_SQL_LENGTH: i32 = 1024 * 1024;

/// A connection with what its authorizer reads.
struct Guarded {
    conn: Connection,
    /// Set while the host itself (migrations, quota) uses the connection.
    host: Arc<AtomicBool>,
    /// What the authorizer last refused, for the error the plugin gets.
    refused: Arc<Mutex<Option<String>>>,
    max_pages: u64,
}

/// One plugin's pool.
struct Pool {
    path: PathBuf,
    idle: Mutex<(Vec<Guarded>, usize)>,
    freed: Condvar,
}

/// Every plugin's SQLite database under one directory.
pub struct SqliteSql {
    dir: PathBuf,
    pools: Mutex<HashMap<String, Arc<Pool>>>,
    /// Delete the directory when dropped (a throwaway engine).
    temporary: bool,
}

impl Drop for SqliteSql {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn backend(error: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(error.to_string())
}

/// Lets the authorizer decide: everything for the host; for plugins, no attaching, no
/// extensions, a short list of pragmas, and no writes to the migration record.
fn authorize(
    context: AuthContext<'_>,
    host: &AtomicBool,
    refused: &Mutex<Option<String>>,
) -> Authorization {
    let refusal = match context.action {
        AuthAction::Attach { .. } => Some("ATTACH".to_string()),
        AuthAction::Detach { .. } => Some("DETACH".to_string()),
        AuthAction::Function { function_name }
            if function_name.eq_ignore_ascii_case("load_extension") =>
        {
            Some("load_extension()".to_string())
        }
        _ if host.load(Ordering::Relaxed) => None,
        AuthAction::Pragma { pragma_name, .. }
            if !PRAGMAS.iter().any(|p| p.eq_ignore_ascii_case(pragma_name)) =>
        {
            Some(format!("PRAGMA {pragma_name}"))
        }
        AuthAction::Insert { table_name }
        | AuthAction::Update { table_name, .. }
        | AuthAction::Delete { table_name }
        | AuthAction::DropTable { table_name }
        | AuthAction::AlterTable { table_name, .. }
            if table_name.eq_ignore_ascii_case(MIGRATIONS_TABLE) =>
        {
            Some(format!("writing {MIGRATIONS_TABLE}"))
        }
        _ => None,
    };
    match refusal {
        None => Authorization::Allow,
        Some(what) => {
            *refused.lock().unwrap_or_else(|p| p.into_inner()) = Some(what);
            Authorization::Deny
        }
    }
}

fn open(path: &Path) -> rusqlite::Result<Guarded> {
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA,
        false,
    )?;
    conn.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 0)?;
    conn.set_limit(Limit::SQLITE_LIMIT_LENGTH, MAX_LENGTH)?;
    conn.set_limit(Limit::SQLITE_LIMIT_SQL_LENGTH, MAX_SQL_LENGTH)?;
    conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (
             name TEXT PRIMARY KEY, checksum TEXT NOT NULL, applied_ms INTEGER NOT NULL)"
    ))?;
    let host = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(Mutex::new(None));
    let (h, r) = (host.clone(), refused.clone());
    conn.authorizer(Some(move |context: AuthContext<'_>| {
        authorize(context, &h, &r)
    }))?;
    Ok(Guarded {
        conn,
        host,
        refused,
        max_pages: 0,
    })
}

/// A borrowed connection, returned to its pool when dropped.
struct Lease<'p> {
    pool: &'p Pool,
    guarded: Option<Guarded>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(guarded) = self.guarded.take() {
            let mut idle = self.pool.idle.lock().unwrap_or_else(|p| p.into_inner());
            idle.0.push(guarded);
            drop(idle);
            self.pool.freed.notify_one();
        }
    }
}

impl Lease<'_> {
    fn get(&mut self) -> &mut Guarded {
        self.guarded.as_mut().expect("held until dropped")
    }
}

impl Pool {
    /// A connection, waiting for one no longer than `deadline`.
    fn lease(&self, deadline: Deadline) -> Result<Lease<'_>, Error> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(guarded) = idle.0.pop() {
                return Ok(Lease {
                    pool: self,
                    guarded: Some(guarded),
                });
            }
            if idle.1 < POOL_SIZE {
                idle.1 += 1;
                drop(idle);
                return match open(&self.path) {
                    Ok(guarded) => Ok(Lease {
                        pool: self,
                        guarded: Some(guarded),
                    }),
                    Err(error) => {
                        self.idle.lock().unwrap_or_else(|p| p.into_inner()).1 -= 1;
                        tracing::error!("opening {} failed: {error}", self.path.display());
                        Err(Error::Internal(
                            "the plugin's database is unavailable".into(),
                        ))
                    }
                };
            }
            let left = deadline.remaining();
            if left.is_zero() {
                return Err(Error::Timeout);
            }
            idle = self
                .freed
                .wait_timeout(idle, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

/// `value` as an SQLite parameter.
struct Param<'a>(&'a Value);

impl ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self.0 {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Integer(n) => ToSqlOutput::Borrowed(ValueRef::Integer(*n)),
            Value::Real(x) => ToSqlOutput::Borrowed(ValueRef::Real(*x)),
            Value::Text(text) => ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes())),
            Value::Blob(bytes) => ToSqlOutput::Borrowed(ValueRef::Blob(bytes)),
        })
    }
}

fn value_of(column: ValueRef<'_>) -> Value {
    match column {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(n) => Value::Integer(n),
        ValueRef::Real(x) => Value::Real(x),
        ValueRef::Text(text) => Value::Text(String::from_utf8_lossy(text).into_owned()),
        ValueRef::Blob(bytes) => Value::Blob(bytes.to_vec()),
    }
}

impl Guarded {
    /// Ready for a plugin statement under `grant` until `deadline`: its size quota, its
    /// deadline, plugin mode.
    fn prepare_for(&mut self, grant: &Grant, deadline: Deadline) -> rusqlite::Result<()> {
        let pages = (grant.max_bytes / PAGE_SIZE).max(2);
        if pages != self.max_pages {
            self.host.store(true, Ordering::Relaxed);
            let set = self
                .conn
                .pragma_update(None, "max_page_count", pages as i64);
            self.host.store(false, Ordering::Relaxed);
            set?;
            self.max_pages = pages;
        }
        self.conn
            .busy_timeout(deadline.remaining().max(Duration::from_millis(1)))?;
        self.conn
            .progress_handler(1000, Some(move || deadline.passed()))?;
        *self.refused.lock().unwrap_or_else(|p| p.into_inner()) = None;
        Ok(())
    }

    /// A rusqlite error as the plugin sees it.
    fn error(&self, error: rusqlite::Error, grant: &Grant) -> Error {
        if let Some(what) = self
            .refused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            return Error::Denied(format!("{what} is not allowed in a plugin's database"));
        }
        match error.sqlite_error_code() {
            Some(ErrorCode::OperationInterrupted) => Error::Timeout,
            Some(ErrorCode::DiskFull) => Error::QuotaExceeded(format!(
                "the database is at the policy's max_bytes of {}",
                grant.max_bytes
            )),
            Some(ErrorCode::TooBig) => Error::TooLarge(error.to_string()),
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => Error::Timeout,
            Some(ErrorCode::AuthorizationForStatementDenied) => {
                Error::Denied(format!("not allowed in a plugin's database: {error}"))
            }
            _ => Error::InvalidInput(error.to_string()),
        }
    }
}

/// Run one statement; the rows it changed (0 for a statement that changes none: SQLite
/// would report the previous statement's count).
fn run(conn: &Connection, sql: &str, params: &[Value]) -> rusqlite::Result<u64> {
    let before = conn.total_changes();
    let mut statement = conn.prepare(sql)?;
    let changed = statement.execute(params_from_iter(params.iter().map(Param)))?;
    Ok(if conn.total_changes() == before {
        0
    } else {
        changed as u64
    })
}

impl SqliteSql {
    /// Databases under `dir` (created if missing).
    pub fn open(dir: &Path) -> Result<SqliteSql, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Backend(format!("{}: {e}", dir.display())))?;
        Ok(SqliteSql {
            dir: dir.to_path_buf(),
            pools: Mutex::new(HashMap::new()),
            temporary: false,
        })
    }

    /// Databases in a fresh directory deleted when this is dropped (`capstan run` without
    /// a data directory, tests).
    pub fn temporary() -> Result<SqliteSql, StoreError> {
        let dir = std::env::temp_dir().join(format!(
            "capstan-sql-{}-{}",
            std::process::id(),
            crate::secrets::random_hex(6)
        ));
        let mut engine = SqliteSql::open(&dir)?;
        engine.temporary = true;
        Ok(engine)
    }

    fn pool(&self, plugin: &str) -> Arc<Pool> {
        self.pools
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(plugin.to_string())
            .or_insert_with(|| {
                Arc::new(Pool {
                    path: self.dir.join(format!("{plugin}.db")),
                    idle: Mutex::new((Vec::new(), 0)),
                    freed: Condvar::new(),
                })
            })
            .clone()
    }

    /// Run `work` on a connection of `plugin`'s prepared for a statement under `grant`.
    fn with<R>(
        &self,
        plugin: &str,
        grant: &Grant,
        deadline: Deadline,
        work: impl FnOnce(&mut Connection) -> rusqlite::Result<R>,
    ) -> Result<R, Error> {
        let deadline = statement_deadline(grant, deadline);
        let pool = self.pool(plugin);
        // Waiting for a connection and running plugin SQL both take unknown time.
        crate::blocking::off_executor(|| {
            let mut lease = pool.lease(deadline)?;
            let guarded = lease.get();
            if let Err(error) = guarded.prepare_for(grant, deadline) {
                return Err(guarded.error(error, grant));
            }
            let result = work(&mut guarded.conn);
            let _ = guarded.conn.progress_handler(0, None::<fn() -> bool>);
            result.map_err(|error| guarded.error(error, grant))
        })
    }
}

/// A query's rows, capped by `grant` while they are read (a cap hit ends the query).
fn collect(
    conn: &Connection,
    sql: &str,
    params: &[Value],
    grant: &Grant,
) -> rusqlite::Result<Result<Rows, Error>> {
    let mut statement = conn.prepare(sql)?;
    let columns: Vec<String> = statement.column_names().map(str::to_string).collect();
    let width = columns.len();
    let mut rows = statement.query(params_from_iter(params.iter().map(Param)))?;
    let (mut out, mut bytes) = (Vec::new(), 0u64);
    while let Some(row) = rows.next()? {
        if out.len() as u64 >= u64::from(grant.max_rows) {
            return Ok(Err(too_large(grant)));
        }
        let mut values = Vec::with_capacity(width);
        for index in 0..width {
            let value = value_of(row.get_ref(index)?);
            bytes += size_of(&value);
            values.push(value);
        }
        if bytes > grant.max_result_bytes {
            return Ok(Err(too_large(grant)));
        }
        out.push(values);
    }
    Ok(Ok(Rows { columns, rows: out }))
}

impl SqlEngine for SqliteSql {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn execute(
        &self,
        plugin: &str,
        grant: &Grant,
        deadline: Deadline,
        sql: &str,
        params: &[Value],
    ) -> Result<u64, Error> {
        self.with(plugin, grant, deadline, |conn| run(conn, sql, params))
    }

    fn query(
        &self,
        plugin: &str,
        grant: &Grant,
        deadline: Deadline,
        sql: &str,
        params: &[Value],
    ) -> Result<Rows, Error> {
        self.with(plugin, grant, deadline, |conn| {
            collect(conn, sql, params, grant)
        })?
    }

    fn batch(
        &self,
        plugin: &str,
        grant: &Grant,
        deadline: Deadline,
        statements: &[Statement],
    ) -> Result<Vec<u64>, Error> {
        self.with(plugin, grant, deadline, |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let changed = statements
                .iter()
                .map(|statement| run(&tx, &statement.sql, &statement.params))
                .collect::<rusqlite::Result<Vec<u64>>>()?;
            tx.commit()?;
            Ok(changed)
        })
    }

    fn migrate(
        &self,
        plugin: &str,
        max_bytes: u64,
        migrations: &[Migration<'_>],
    ) -> Result<Vec<Applied>, MigrationError> {
        let pool = self.pool(plugin);
        let deadline = Deadline::after(Duration::from_secs(60));
        let mut lease = pool
            .lease(deadline)
            .map_err(|e| MigrationError::Store(format!("{e:?}")))?;
        let guarded = lease.get();
        guarded.host.store(true, Ordering::Relaxed);
        let result = migrate_on(&mut guarded.conn, max_bytes, migrations);
        guarded.max_pages = 0;
        guarded.host.store(false, Ordering::Relaxed);
        result
    }

    fn applied(&self, plugin: &str) -> Result<Vec<Applied>, StoreError> {
        let pool = self.pool(plugin);
        let mut lease = pool
            .lease(Deadline::after(Duration::from_secs(10)))
            .map_err(|e| StoreError::Backend(format!("{e:?}")))?;
        read_applied(&lease.get().conn).map_err(backend)
    }

    fn purge(&self, plugin: &str) -> Result<(), StoreError> {
        let pool = self
            .pools
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(plugin);
        if let Some(pool) = pool {
            pool.idle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .0
                .clear();
        }
        for suffix in ["", "-wal", "-shm"] {
            let path = self.dir.join(format!("{plugin}.db{suffix}"));
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => return Err(backend(format!("{}: {error}", path.display()))),
            }
        }
        Ok(())
    }
}

fn read_applied(conn: &Connection) -> rusqlite::Result<Vec<Applied>> {
    let mut statement = conn.prepare(&format!(
        "SELECT name, checksum, applied_ms FROM {MIGRATIONS_TABLE} ORDER BY name"
    ))?;
    let rows = statement.query_map([], |row| {
        Ok(Applied {
            name: row.get(0)?,
            checksum: row.get(1)?,
            applied_ms: row.get(2)?,
        })
    })?;
    rows.collect()
}

/// Apply what is new in one transaction (the host's connection mode is on).
fn migrate_on(
    conn: &mut Connection,
    max_bytes: u64,
    migrations: &[Migration<'_>],
) -> Result<Vec<Applied>, MigrationError> {
    let store = |e: rusqlite::Error| MigrationError::Store(e.to_string());
    conn.pragma_update(
        None,
        "max_page_count",
        (max_bytes / PAGE_SIZE).max(2) as i64,
    )
    .map_err(store)?;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(store)?;
    let applied = read_applied(&tx).map_err(store)?;
    for migration in migrations {
        match applied.iter().find(|a| a.name == migration.name) {
            Some(done) if done.checksum != migration.checksum => {
                return Err(MigrationError::Edited {
                    name: migration.name.to_string(),
                    applied: done.checksum.clone(),
                    now: migration.checksum.clone(),
                });
            }
            Some(_) => continue,
            None => {}
        }
        tx.execute_batch(migration.sql)
            .map_err(|e| MigrationError::Failed {
                name: migration.name.to_string(),
                why: e.to_string(),
            })?;
        tx.execute(
            &format!(
                "INSERT INTO {MIGRATIONS_TABLE} (name, checksum, applied_ms) VALUES (?1, ?2, ?3)"
            ),
            rusqlite::params![
                migration.name,
                migration.checksum,
                crate::audit::to_millis(SystemTime::now())
            ],
        )
        .map_err(store)?;
    }
    let all = read_applied(&tx).map_err(store)?;
    tx.commit().map_err(store)?;
    Ok(all)
}
