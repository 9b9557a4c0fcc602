//! `sql` on PostgreSQL: every plugin gets a schema and a LOGIN role of its own, created
//! by the host, with its own small pool of connections logged in as that role (never
//! `SET ROLE` on a shared login, which plugin SQL could `RESET`). The role owns only its
//! schema, its `search_path` is that schema, and it has no privilege on the host's tables
//! or on other plugins' schemas. Its password is random and sealed like a secret.
//! Statements are bounded host-side (timeout, then cancel), rows and bytes are capped while
//! they stream, and the schema's size is checked after every write. Each connection keeps
//! its last [`STATEMENTS_KEPT`] prepared statements, so a repeated statement costs one
//! round trip instead of two.

use super::{PostgresStore, backend, bounded};
use crate::bindings::capstan::plugin::sql::Rows;
use crate::bindings::capstan::plugin::types::Error;
use crate::capability::Deadline;
use crate::capability::sql::engine::{size_of, statement_deadline, too_large};
use crate::capability::sql::{
    Applied, Dialect, Grant, Migration, MigrationError, SqlEngine, Statement, Value,
};
use crate::secrets::Secrets;
use crate::storage::StoreError;
use bytes::BytesMut;
use deadpool_postgres::{
    GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod, StatementCache,
};
use futures_util::{StreamExt, pin_mut};
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{NoTls, Row};

/// Connections per plugin.
const POOL_SIZE: usize = 4;
/// Prepared statements a connection keeps. Plugin SQL is arbitrary text, so the cache is
/// bounded: when full it starts over, and the statements it drops are closed on the server.
const STATEMENTS_KEPT: usize = 64;
/// The pseudo-plugin role passwords are sealed under (no plugin id starts with `-`).
const PASSWORDS: &str = "-sql-roles";

/// One plugin's database: its schema, role and pool.
struct Database {
    schema: String,
    pool: Pool,
}

/// Every plugin's database in one PostgreSQL database.
pub struct PostgresSql {
    store: Arc<PostgresStore>,
    secrets: Secrets,
    databases: Mutex<HashMap<String, Arc<Database>>>,
}

/// A value bound to whatever type the server expects for its parameter.
#[derive(Debug)]
struct Param<'a>(&'a Value);

impl ToSql for Param<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        let wrong = || format!("a {} cannot be bound to a {ty} parameter", kind(self.0));
        match (self.0, ty) {
            (Value::Null, _) => Ok(IsNull::Yes),
            (Value::Integer(n), &Type::INT2) => i16::try_from(*n)?.to_sql(ty, out),
            (Value::Integer(n), &Type::INT4) => i32::try_from(*n)?.to_sql(ty, out),
            (Value::Integer(n), &Type::INT8) => n.to_sql(ty, out),
            (Value::Integer(n), &Type::BOOL) => (*n != 0).to_sql(ty, out),
            (Value::Integer(n), &Type::FLOAT8) => (*n as f64).to_sql(ty, out),
            (Value::Integer(n), &Type::FLOAT4) => (*n as f32).to_sql(ty, out),
            (Value::Integer(n), &Type::TEXT | &Type::VARCHAR) => n.to_string().to_sql(ty, out),
            (Value::Real(x), &Type::FLOAT8) => x.to_sql(ty, out),
            (Value::Real(x), &Type::FLOAT4) => (*x as f32).to_sql(ty, out),
            (Value::Real(x), &Type::TEXT | &Type::VARCHAR) => x.to_string().to_sql(ty, out),
            (Value::Text(text), _) if <&str as ToSql>::accepts(ty) => text.as_str().to_sql(ty, out),
            (Value::Blob(bytes), &Type::BYTEA) => bytes.as_slice().to_sql(ty, out),
            _ => Err(wrong().into()),
        }
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Integer(_) => "integer",
        Value::Real(_) => "real",
        Value::Text(_) => "text",
        Value::Blob(_) => "blob",
    }
}

/// Column `index` of `row` as a value; types without a lossless mapping are refused,
/// naming the column (cast them in SQL).
fn column(row: &Row, index: usize) -> Result<Value, Error> {
    let ty = row.columns()[index].type_();
    let got = |e: tokio_postgres::Error| Error::Internal(e.to_string());
    Ok(match *ty {
        Type::BOOL => row
            .try_get::<_, Option<bool>>(index)
            .map_err(got)?
            .map_or(Value::Null, |b| Value::Integer(i64::from(b))),
        Type::INT2 => row
            .try_get::<_, Option<i16>>(index)
            .map_err(got)?
            .map_or(Value::Null, |n| Value::Integer(n.into())),
        Type::INT4 => row
            .try_get::<_, Option<i32>>(index)
            .map_err(got)?
            .map_or(Value::Null, |n| Value::Integer(n.into())),
        Type::INT8 => row
            .try_get::<_, Option<i64>>(index)
            .map_err(got)?
            .map_or(Value::Null, Value::Integer),
        Type::FLOAT4 => row
            .try_get::<_, Option<f32>>(index)
            .map_err(got)?
            .map_or(Value::Null, |x| Value::Real(x.into())),
        Type::FLOAT8 => row
            .try_get::<_, Option<f64>>(index)
            .map_err(got)?
            .map_or(Value::Null, Value::Real),
        Type::BYTEA => row
            .try_get::<_, Option<Vec<u8>>>(index)
            .map_err(got)?
            .map_or(Value::Null, Value::Blob),
        ref other if <String as tokio_postgres::types::FromSql>::accepts(other) => row
            .try_get::<_, Option<String>>(index)
            .map_err(got)?
            .map_or(Value::Null, Value::Text),
        ref other => {
            return Err(Error::InvalidInput(format!(
                "column `{}` has type {other}, which sql values cannot hold; cast it to \
                 text, bigint or double precision",
                row.columns()[index].name()
            )));
        }
    })
}

/// The statement as PostgreSQL reads it: portable `?` placeholders numbered, native as is.
fn in_dialect<'a>(grant: &Grant, sql: &'a str) -> Cow<'a, str> {
    match grant.dialect {
        Dialect::Portable => numbered(sql),
        _ => Cow::Borrowed(sql),
    }
}

/// `?` placeholders (outside quotes and comments) numbered `$1`, `$2`, … for a portable
/// statement; `?NNN` keeps its number.
fn numbered(sql: &str) -> Cow<'_, str> {
    if !sql.contains('?') {
        return Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    let mut next = 1;
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                out.push(c);
                if c == q {
                    quote = None;
                }
            }
            None => match c {
                '\'' | '"' => {
                    quote = Some(c);
                    out.push(c);
                }
                '-' if chars.peek() == Some(&'-') => {
                    out.push(c);
                    for rest in chars.by_ref() {
                        out.push(rest);
                        if rest == '\n' {
                            break;
                        }
                    }
                }
                '?' => {
                    let mut digits = String::new();
                    while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                        digits.push(*d);
                        chars.next();
                    }
                    if digits.is_empty() {
                        out.push_str(&format!("${next}"));
                        next += 1;
                    } else {
                        out.push('$');
                        out.push_str(&digits);
                    }
                }
                c => out.push(c),
            },
        }
    }
    Cow::Owned(out)
}

/// A PostgreSQL error as the plugin sees it.
fn refusal(error: tokio_postgres::Error) -> Error {
    use tokio_postgres::error::SqlState;
    match error.code() {
        Some(code) if *code == SqlState::INSUFFICIENT_PRIVILEGE => Error::Denied(format!(
            "not allowed in a plugin's database: {}",
            message(&error)
        )),
        Some(code) if *code == SqlState::QUERY_CANCELED => Error::Timeout,
        Some(code) if *code == SqlState::DISK_FULL || *code == SqlState::PROGRAM_LIMIT_EXCEEDED => {
            Error::QuotaExceeded(message(&error))
        }
        Some(_) => Error::InvalidInput(message(&error)),
        None => Error::Internal("the plugin's database connection failed".into()),
    }
}

fn message(error: &tokio_postgres::Error) -> String {
    error
        .as_db_error()
        .map_or_else(|| error.to_string(), |db| db.message().to_string())
}

/// `sql` prepared on the connection `cache` belongs to: kept from an earlier call, or
/// parsed by the server now and kept (emptying the cache first when it is full).
async fn prepared(
    client: &impl GenericClient,
    cache: &StatementCache,
    sql: &str,
) -> Result<tokio_postgres::Statement, tokio_postgres::Error> {
    if cache.size() >= STATEMENTS_KEPT {
        cache.clear();
    }
    client.prepare_cached(sql).await
}

/// Whether `error` may mean a kept statement no longer matches the server: its table
/// changed shape under a `SELECT *` ("cached plan must not change result type", told by its
/// code alone since the text is translated), or the plugin's own `DEALLOCATE` dropped it. A
/// failed statement leaves no change behind, so emptying the cache and running it again is
/// safe; a statement that fails so for another reason fails the same way again.
fn stale(error: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    error.code().is_some_and(|code| {
        *code == SqlState::INVALID_SQL_STATEMENT_NAME || *code == SqlState::FEATURE_NOT_SUPPORTED
    })
}

fn unavailable(error: deadpool_postgres::PoolError) -> Error {
    tracing::error!("a plugin's database pool failed: {error}");
    Error::Internal("the plugin's database is unavailable".into())
}

/// The query [`size_of_schema`] runs.
const SIZE_OF_SCHEMA: &str = "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0)::bigint
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = $1 AND c.relkind IN ('r', 'm')";

/// The schema's size in bytes, as seen inside transaction `tx`: one round trip on the
/// unnamed statement, which no `DEALLOCATE` of the plugin's can take away.
async fn size_of_schema(
    tx: &deadpool_postgres::Transaction<'_>,
    schema: &str,
) -> Result<u64, tokio_postgres::Error> {
    let rows = tx
        .query_typed(SIZE_OF_SCHEMA, &[(&schema, Type::NAME)])
        .await?;
    let size = rows.first().map_or(0, |row| row.get::<_, i64>(0));
    Ok(u64::try_from(size).unwrap_or(0))
}

/// Why one attempt at a plugin's statements failed.
enum Failed {
    /// A kept statement went stale ([`stale`]): worth one more attempt on an empty cache.
    Stale(tokio_postgres::Error),
    /// Anything else, as the plugin sees it.
    Refused(Error),
}

impl Failed {
    fn into_error(self) -> Error {
        match self {
            Failed::Stale(error) => refusal(error),
            Failed::Refused(error) => error,
        }
    }
}

impl From<tokio_postgres::Error> for Failed {
    fn from(error: tokio_postgres::Error) -> Failed {
        if stale(&error) {
            Failed::Stale(error)
        } else {
            Failed::Refused(refusal(error))
        }
    }
}

impl From<Error> for Failed {
    fn from(error: Error) -> Failed {
        Failed::Refused(error)
    }
}

impl PostgresSql {
    /// Plugin databases in `store`'s database, role passwords sealed by `secrets`.
    pub fn new(store: Arc<PostgresStore>, secrets: Secrets) -> PostgresSql {
        PostgresSql {
            store,
            secrets,
            databases: Mutex::new(HashMap::new()),
        }
    }

    /// The schema and role name of `plugin` (deterministic, short, safe to quote).
    fn names(&self, plugin: &str) -> String {
        let scope = self.store.schema.as_deref().unwrap_or("public");
        let digest = hex::encode(Sha256::digest(format!("{scope}/{plugin}").as_bytes()));
        format!("capstan_sql_{}", &digest[..16])
    }

    /// `plugin`'s database, created (schema, role, password) the first time.
    fn database(&self, plugin: &str) -> Result<Arc<Database>, Error> {
        if let Some(database) = self
            .databases
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(plugin)
        {
            return Ok(database.clone());
        }
        let internal = |e: StoreError| {
            tracing::error!(plugin, "preparing a plugin database failed: {e}");
            Error::Internal("the plugin's database is unavailable".into())
        };
        let name = self.names(plugin);
        let password = match self.secrets.get(PASSWORDS, plugin) {
            Ok(Some(password)) => password,
            Ok(None) => {
                let password = crate::secrets::random_hex(24);
                self.secrets
                    .set(PASSWORDS, plugin, &password)
                    .map_err(|e| internal(StoreError::Backend(e.to_string())))?;
                password
            }
            Err(e) => return Err(internal(StoreError::Backend(e.to_string()))),
        };
        self.create(plugin, &name, &password).map_err(internal)?;
        let mut config = self.store.config.clone();
        config.user(&name).password(&password);
        config.options(format!("-c search_path={name}"));
        let pool = Pool::builder(Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        ))
        .max_size(POOL_SIZE)
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .map_err(|e| internal(backend(e)))?;
        let database = Arc::new(Database { schema: name, pool });
        self.databases
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(plugin.to_string(), database.clone());
        Ok(database)
    }

    /// Create (or bring up to date) `plugin`'s role and schema, on the host's connection.
    fn create(&self, plugin: &str, name: &str, password: &str) -> Result<(), StoreError> {
        self.store.block_on(async {
            let mut client = self.store.pool.get().await.map_err(backend)?;
            let tx = client.transaction().await.map_err(backend)?;
            tx.execute(
                "SELECT pg_advisory_xact_lock(hashtext('capstan-sql:' || $1))",
                &[&plugin],
            )
            .await
            .map_err(backend)?;
            // `name` is hex behind a fixed prefix and `password` is hex: safe to interpolate.
            tx.batch_execute(&format!(
                "DO $$ BEGIN
                     IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{name}') THEN
                         CREATE ROLE {name} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT
                             NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 16;
                     END IF;
                 END $$;
                 ALTER ROLE {name} PASSWORD '{password}';
                 CREATE SCHEMA IF NOT EXISTS {name} AUTHORIZATION {name};
                 REVOKE ALL ON SCHEMA {name} FROM PUBLIC;
                 ALTER ROLE {name} SET search_path = {name};"
            ))
            .await
            .map_err(backend)?;
            tx.execute(
                "INSERT INTO sql_databases (plugin, schema_name, role_name, created_ms)
                 VALUES ($1, $2, $2, $3) ON CONFLICT (plugin) DO NOTHING",
                &[&plugin, &name, &crate::audit::to_millis(SystemTime::now())],
            )
            .await
            .map_err(backend)?;
            tx.commit().await.map_err(backend)
        })
    }

    /// Run `work` on a connection of `plugin`'s, bounded by the statement's deadline.
    fn with<R>(
        &self,
        plugin: &str,
        grant: &Grant,
        deadline: Deadline,
        work: impl AsyncFnOnce(&mut deadpool_postgres::Object, &str) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let database = self.database(plugin)?;
        let deadline = statement_deadline(grant, deadline);
        let schema = database.schema.clone();
        self.store.block_on(bounded(
            &database.pool,
            deadline,
            || Error::Timeout,
            unavailable,
            async |client| work(client, &schema).await,
        ))
    }
}

/// Run `attempt` on `client`; if a kept statement was stale, empty the connection's cache
/// and run it once more.
async fn fresh_if_stale<R>(
    client: &mut deadpool_postgres::Object,
    mut attempt: impl AsyncFnMut(&mut deadpool_postgres::Object) -> Result<R, Failed>,
) -> Result<R, Error> {
    match attempt(client).await {
        Err(Failed::Stale(_)) => {
            client.statement_cache.clear();
            attempt(client).await.map_err(Failed::into_error)
        }
        result => result.map_err(Failed::into_error),
    }
}

/// Run write statements in one transaction, refusing them if they grew the schema past
/// the quota; a failure rolls the transaction back. A write that leaves the schema within
/// the quota measures it once, after its statements; only one that ends over it needs to
/// know whether it grew the schema, so it runs again between two measurements.
async fn write(
    client: &mut deadpool_postgres::Object,
    schema: &str,
    grant: &Grant,
    statements: &[(Cow<'_, str>, &[Value])],
) -> Result<Vec<u64>, Failed> {
    let tx = client.transaction().await?;
    let changed = run(&tx, statements).await?;
    if size_of_schema(&tx, schema).await? <= grant.max_bytes {
        tx.commit().await?;
        return Ok(changed);
    }
    tx.rollback().await?;
    let tx = client.transaction().await?;
    let before = size_of_schema(&tx, schema).await?;
    let changed = run(&tx, statements).await?;
    // Refused only when the statements grew the schema past the quota: space a refused
    // write left behind counts until vacuum reclaims it, but does not block statements
    // that add nothing.
    let after = size_of_schema(&tx, schema).await?;
    if after > grant.max_bytes && after > before {
        return Err(Failed::Refused(Error::QuotaExceeded(format!(
            "the database would exceed the policy's max_bytes of {}",
            grant.max_bytes
        ))));
    }
    tx.commit().await?;
    Ok(changed)
}

/// Run `statements` in `tx`, answering the rows each changed.
async fn run(
    tx: &deadpool_postgres::Transaction<'_>,
    statements: &[(Cow<'_, str>, &[Value])],
) -> Result<Vec<u64>, Failed> {
    let mut changed = Vec::with_capacity(statements.len());
    for (sql, params) in statements {
        let statement = prepared(tx, &tx.statement_cache, sql).await?;
        let bound: Vec<Param<'_>> = params.iter().map(Param).collect();
        let refs: Vec<&(dyn ToSql + Sync)> =
            bound.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        changed.push(tx.execute(&statement, &refs).await?);
    }
    Ok(changed)
}

/// Run query `sql`, streaming at most the grant's rows and bytes; `Ok(Err(_))` when the
/// answer is too large (the server was told to stop sending it).
async fn read(
    client: &mut deadpool_postgres::Object,
    grant: &Grant,
    sql: &str,
    params: &[Value],
) -> Result<Result<Rows, Error>, Failed> {
    let statement = prepared(&*client, &client.statement_cache, sql).await?;
    let columns: Vec<String> = statement
        .columns()
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    let bound: Vec<Param<'_>> = params.iter().map(Param).collect();
    let stream = client.query_raw(&statement, bound.iter()).await?;
    pin_mut!(stream);
    let (mut rows, mut bytes) = (Vec::new(), 0u64);
    while let Some(row) = stream.next().await {
        let row = row.map_err(refusal)?;
        let mut values = Vec::with_capacity(columns.len());
        for index in 0..columns.len() {
            let value = column(&row, index)?;
            bytes += size_of(&value);
            values.push(value);
        }
        if rows.len() as u64 >= u64::from(grant.max_rows) || bytes > grant.max_result_bytes {
            // Stop the server sending the rest rather than draining it.
            let _ = client.cancel_token().cancel_query(NoTls).await;
            return Ok(Err(too_large(grant)));
        }
        rows.push(values);
    }
    Ok(Ok(Rows { columns, rows }))
}

impl SqlEngine for PostgresSql {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn execute(
        &self,
        plugin: &str,
        grant: &Grant,
        deadline: Deadline,
        sql: &str,
        params: &[Value],
    ) -> Result<u64, Error> {
        let sql = in_dialect(grant, sql);
        self.with(plugin, grant, deadline, async |client, schema| {
            let statements = [(sql.clone(), params)];
            let changed = fresh_if_stale(client, async |client| {
                write(client, schema, grant, &statements).await
            })
            .await?;
            Ok(changed[0])
        })
    }

    fn query(
        &self,
        plugin: &str,
        grant: &Grant,
        deadline: Deadline,
        sql: &str,
        params: &[Value],
    ) -> Result<Rows, Error> {
        let sql = in_dialect(grant, sql);
        self.with(plugin, grant, deadline, async |client, _| {
            fresh_if_stale(client, async |client| {
                read(client, grant, &sql, params).await
            })
            .await
        })?
    }

    fn batch(
        &self,
        plugin: &str,
        grant: &Grant,
        deadline: Deadline,
        statements: &[Statement],
    ) -> Result<Vec<u64>, Error> {
        let statements: Vec<(Cow<'_, str>, &[Value])> = statements
            .iter()
            .map(|s| (in_dialect(grant, &s.sql), s.params.as_slice()))
            .collect();
        self.with(plugin, grant, deadline, async |client, schema| {
            fresh_if_stale(client, async |client| {
                write(client, schema, grant, &statements).await
            })
            .await
        })
    }

    fn migrate(
        &self,
        plugin: &str,
        max_bytes: u64,
        migrations: &[Migration<'_>],
    ) -> Result<Vec<Applied>, MigrationError> {
        let applied = self
            .applied(plugin)
            .map_err(|e| MigrationError::Store(e.to_string()))?;
        for migration in migrations {
            if let Some(done) = applied.iter().find(|a| a.name == migration.name)
                && done.checksum != migration.checksum
            {
                return Err(MigrationError::Edited {
                    name: migration.name.to_string(),
                    applied: done.checksum.clone(),
                    now: migration.checksum.clone(),
                });
            }
        }
        let pending: Vec<&Migration<'_>> = migrations
            .iter()
            .filter(|m| !applied.iter().any(|a| a.name == m.name))
            .collect();
        if pending.is_empty() {
            return Ok(applied);
        }
        let database = self
            .database(plugin)
            .map_err(|e| MigrationError::Store(format!("{e:?}")))?;
        let now = crate::audit::to_millis(SystemTime::now());
        self.store.block_on(async {
            let store = |e: String| MigrationError::Store(e);
            let mut client = database
                .pool
                .get()
                .await
                .map_err(|e| store(e.to_string()))?;
            let tx = client
                .transaction()
                .await
                .map_err(|e| store(e.to_string()))?;
            for migration in &pending {
                tx.batch_execute(migration.sql)
                    .await
                    .map_err(|e| MigrationError::Failed {
                        name: migration.name.to_string(),
                        why: message(&e),
                    })?;
            }
            let size = size_of_schema(&tx, &database.schema)
                .await
                .map_err(|e| store(message(&e)))?;
            if size > max_bytes {
                return Err(MigrationError::Failed {
                    name: pending.last().map_or("", |m| m.name).to_string(),
                    why: format!("the database would exceed the policy's max_bytes of {max_bytes}"),
                });
            }
            // Commit the plugin's changes, then record them on the host's connection: a
            // record never claims a migration that did not commit.
            tx.commit().await.map_err(|e| store(e.to_string()))?;
            let host = self
                .store
                .pool
                .get()
                .await
                .map_err(|e| store(e.to_string()))?;
            for migration in &pending {
                host.execute(
                    "INSERT INTO sql_migrations (plugin, name, checksum, applied_ms)
                     VALUES ($1, $2, $3, $4)",
                    &[&plugin, &migration.name, &migration.checksum, &now],
                )
                .await
                .map_err(|e| store(e.to_string()))?;
            }
            Ok(())
        })?;
        self.applied(plugin)
            .map_err(|e| MigrationError::Store(e.to_string()))
    }

    fn applied(&self, plugin: &str) -> Result<Vec<Applied>, StoreError> {
        self.store.block_on(async {
            let client = self.store.pool.get().await.map_err(backend)?;
            let rows = client
                .query(
                    "SELECT name, checksum, applied_ms FROM sql_migrations
                     WHERE plugin = $1 ORDER BY name",
                    &[&plugin],
                )
                .await
                .map_err(backend)?;
            Ok(rows
                .iter()
                .map(|row| Applied {
                    name: row.get(0),
                    checksum: row.get(1),
                    applied_ms: row.get(2),
                })
                .collect())
        })
    }

    fn purge(&self, plugin: &str) -> Result<(), StoreError> {
        self.databases
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(plugin);
        let name = self.names(plugin);
        self.store.block_on(async {
            let mut client = self.store.pool.get().await.map_err(backend)?;
            let tx = client.transaction().await.map_err(backend)?;
            tx.batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {name} CASCADE; DROP ROLE IF EXISTS {name};"
            ))
            .await
            .map_err(backend)?;
            tx.execute("DELETE FROM sql_databases WHERE plugin = $1", &[&plugin])
                .await
                .map_err(backend)?;
            tx.execute("DELETE FROM sql_migrations WHERE plugin = $1", &[&plugin])
                .await
                .map_err(backend)?;
            tx.commit().await.map_err(backend)
        })?;
        self.secrets
            .remove(PASSWORDS, plugin)
            .map(drop)
            .map_err(|e| StoreError::Backend(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::numbered;

    #[test]
    fn portable_placeholders_are_numbered_outside_quotes_and_comments() {
        assert_eq!(
            numbered("SELECT ? , '?' , \"a?\" , ?3 -- what?\n, ?"),
            "SELECT $1 , '?' , \"a?\" , $3 -- what?\n, $2"
        );
        assert_eq!(numbered("SELECT 1"), "SELECT 1");
    }
}
