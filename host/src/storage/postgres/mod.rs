//! PostgreSQL backend (tokio-postgres with a deadpool pool), for several hosts sharing
//! one state. Kv writes lock the namespace's usage row, so read-modify-write updates and
//! quota checks are atomic across connections and hosts. Migrations are
//! versioned and serialised by an advisory lock so hosts starting together agree.

mod config;
mod events;
mod jobs;
mod kv;
mod mcp;
mod plugins;
mod publishers;
mod records;
mod secrets;
mod sessions;
mod sql;
mod tokens;

pub use sql::PostgresSql;

use super::StoreError;
use crate::capability::Deadline;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use std::future::Future;
use std::str::FromStr;
use tokio_postgres::NoTls;

/// Schema versions, applied in order; never edit a shipped entry, append a new one.
const MIGRATIONS: &[&str] = &[
    r#"
    CREATE TABLE kv (
        namespace TEXT NOT NULL,
        key TEXT COLLATE "C" NOT NULL,
        value BYTEA NOT NULL,
        PRIMARY KEY (namespace, key)
    );
    CREATE TABLE kv_usage (
        namespace TEXT PRIMARY KEY,
        keys BIGINT NOT NULL,
        bytes BIGINT NOT NULL
    );
"#,
    r#"
    CREATE TABLE secrets (
        plugin TEXT NOT NULL,
        name TEXT NOT NULL,
        key_id TEXT NOT NULL,
        nonce BYTEA NOT NULL,
        ciphertext BYTEA NOT NULL,
        PRIMARY KEY (plugin, name)
    );
    CREATE TABLE audit (
        id BIGSERIAL PRIMARY KEY,
        time_ms BIGINT NOT NULL,
        plugin TEXT NOT NULL,
        kind TEXT NOT NULL,
        capability TEXT,
        detail TEXT NOT NULL
    );
    CREATE INDEX audit_by_plugin_time ON audit (plugin, time_ms);
    CREATE TABLE logs (
        id BIGSERIAL PRIMARY KEY,
        time_ms BIGINT NOT NULL,
        plugin TEXT NOT NULL,
        call_id TEXT NOT NULL,
        level INTEGER NOT NULL,
        source TEXT NOT NULL,
        message TEXT NOT NULL
    );
    CREATE INDEX logs_by_plugin_time ON logs (plugin, time_ms);
"#,
    r#"
    CREATE TABLE plugins (
        id TEXT PRIMARY KEY,
        enabled BOOLEAN NOT NULL,
        current_seq BIGINT NOT NULL
    );
    CREATE TABLE plugin_versions (
        id TEXT NOT NULL,
        seq BIGINT NOT NULL,
        version TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        wasm BYTEA NOT NULL,
        installed_ms BIGINT NOT NULL,
        PRIMARY KEY (id, seq)
    );
    CREATE TABLE settings (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
"#,
    r#"
    CREATE TABLE plugin_config (
        plugin TEXT PRIMARY KEY,
        settings TEXT NOT NULL,
        updated_ms BIGINT NOT NULL
    );
"#,
    r#"
    ALTER TABLE plugin_versions ADD COLUMN manifest BYTEA;
"#,
    r#"
    ALTER TABLE plugin_versions ADD COLUMN tools TEXT;
    CREATE TABLE mcp_clients (
        id TEXT PRIMARY KEY,
        token_sha256 TEXT NOT NULL UNIQUE,
        client TEXT NOT NULL,
        created_ms BIGINT NOT NULL
    );
"#,
    r#"
    CREATE TABLE sql_databases (
        plugin TEXT PRIMARY KEY,
        schema_name TEXT NOT NULL,
        role_name TEXT NOT NULL,
        created_ms BIGINT NOT NULL
    );
    CREATE TABLE sql_migrations (
        plugin TEXT NOT NULL,
        name TEXT NOT NULL,
        checksum TEXT NOT NULL,
        applied_ms BIGINT NOT NULL,
        PRIMARY KEY (plugin, name)
    );
    CREATE TABLE job_runs (
        id TEXT PRIMARY KEY,
        plugin TEXT NOT NULL,
        job TEXT NOT NULL,
        scheduled_ms BIGINT NOT NULL,
        attempt BIGINT NOT NULL,
        cause TEXT NOT NULL,
        state TEXT NOT NULL,
        host TEXT,
        lease_until_ms BIGINT,
        started_ms BIGINT,
        finished_ms BIGINT,
        heartbeat_ms BIGINT,
        progress TEXT,
        error TEXT,
        call_id TEXT,
        cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
        skipped BIGINT NOT NULL DEFAULT 0,
        UNIQUE (plugin, job, scheduled_ms, attempt)
    );
    CREATE INDEX job_runs_by_state ON job_runs (state, plugin);
    CREATE INDEX job_runs_by_job ON job_runs (plugin, job, scheduled_ms);
"#,
    r#"
    CREATE TABLE events (
        seq BIGSERIAL PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        topic TEXT NOT NULL,
        source TEXT NOT NULL,
        content_type TEXT NOT NULL,
        payload BYTEA NOT NULL,
        published_ms BIGINT NOT NULL,
        expires_ms BIGINT NOT NULL,
        keep_count BIGINT NOT NULL
    );
    CREATE INDEX events_by_topic ON events (topic, seq);
    CREATE TABLE event_deliveries (
        id TEXT PRIMARY KEY,
        event_seq BIGINT NOT NULL,
        plugin TEXT NOT NULL,
        topic TEXT NOT NULL,
        source TEXT NOT NULL,
        state TEXT NOT NULL,
        attempt BIGINT NOT NULL DEFAULT 0,
        due_ms BIGINT NOT NULL,
        host TEXT,
        last_error TEXT,
        updated_ms BIGINT NOT NULL
    );
    CREATE INDEX event_deliveries_open ON event_deliveries (plugin, topic, source, event_seq)
        WHERE state IN ('pending', 'leased');
    CREATE INDEX event_deliveries_by_plugin ON event_deliveries (plugin, state, event_seq);
    CREATE INDEX event_deliveries_by_event ON event_deliveries (event_seq);
    CREATE TABLE event_lanes (
        plugin TEXT NOT NULL,
        topic TEXT NOT NULL,
        source TEXT NOT NULL,
        host TEXT,
        lease_until_ms BIGINT,
        touched_ms BIGINT NOT NULL,
        PRIMARY KEY (plugin, topic, source)
    );
"#,
    r#"
    CREATE TABLE event_publishers (
        id TEXT PRIMARY KEY,
        token_sha256 TEXT NOT NULL UNIQUE,
        publisher TEXT NOT NULL,
        created_ms BIGINT NOT NULL
    );
"#,
    r#"
    CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        token_sha256 TEXT NOT NULL UNIQUE,
        session TEXT NOT NULL,
        created_ms BIGINT NOT NULL
    );
"#,
    r#"
    ALTER TABLE plugin_versions ADD COLUMN signature BYTEA;
    ALTER TABLE plugin_versions ADD COLUMN signer TEXT;
"#,
    r#"
    CREATE INDEX audit_by_plugin_id ON audit (plugin, id);
    CREATE INDEX logs_by_plugin_id ON logs (plugin, id);
"#,
];
/// Advisory lock key serialising migrations ("capstan" in ASCII).
const MIGRATION_LOCK: i64 = 0x63_61_70_73_74_61_6e;

/// Connections in the pool.
const POOL_SIZE: usize = 16;

/// State in a PostgreSQL database (optionally in one schema of it).
pub struct PostgresStore {
    pool: Pool,
    /// How to open the dedicated connection that listens for other hosts' changes.
    config: tokio_postgres::Config,
    /// `NOTIFY` channel for plugin and setting changes (one per schema).
    channel: String,
    /// `NOTIFY` channel waking other hosts' deliverers when events are published.
    events_channel: String,
    /// Random id of this store, sent with each notification so it can ignore its own.
    origin: String,
    /// The schema Capstan's tables are in, if one was named.
    schema: Option<String>,
    /// Always `Some` until dropped; taken in `Drop` to shut down without blocking.
    runtime: Option<tokio::runtime::Runtime>,
}

fn backend(error: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(error.to_string())
}

impl PostgresStore {
    /// Connect to `url` (a `postgres://` URL), using `schema` if given (created if
    /// missing), and bring the schema up to date.
    pub fn connect(url: &str, schema: Option<&str>) -> Result<PostgresStore, StoreError> {
        let mut config = tokio_postgres::Config::from_str(url)
            .map_err(|e| StoreError::Backend(format!("invalid database URL: {e}")))?;
        if let Some(schema) = schema {
            if !schema
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
            {
                return Err(StoreError::Backend(format!(
                    "invalid schema name `{schema}`"
                )));
            }
            config.options(format!("-c search_path={schema}"));
        }
        let suffix = schema
            .map(|schema| format!("_{schema}"))
            .unwrap_or_default();
        let channel = format!("capstan_changes{suffix}");
        let events_channel = format!("capstan_events{suffix}");
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(backend)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("capstan-postgres")
            .enable_all()
            .build()
            .map_err(backend)?;
        let store = PostgresStore {
            pool,
            config,
            channel,
            events_channel,
            origin: crate::secrets::random_hex(8),
            schema: schema.map(str::to_string),
            runtime: Some(runtime),
        };
        store.block_on(async {
            let mut client = store.pool.get().await.map_err(backend)?;
            if let Some(schema) = schema {
                client
                    .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                    .await
                    .map_err(backend)?;
            }
            migrate(&mut client).await
        })?;
        Ok(store)
    }

    /// Drop `schema` and everything in it, with the plugin databases (schemas and roles)
    /// it made (test clean-up).
    pub fn drop_schema(&self, schema: &str) -> Result<(), StoreError> {
        self.block_on(async {
            let client = self.pool.get().await.map_err(backend)?;
            let made = client
                .query(
                    &format!("SELECT role_name FROM {schema}.sql_databases"),
                    &[],
                )
                .await
                .unwrap_or_default();
            for row in made {
                let name: String = row.get(0);
                client
                    .batch_execute(&format!(
                        "DROP SCHEMA IF EXISTS {name} CASCADE; DROP ROLE IF EXISTS {name};"
                    ))
                    .await
                    .map_err(backend)?;
            }
            client
                .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                .await
                .map_err(backend)
        })
    }

    /// Run `future` on the store's own runtime (callers are synchronous host functions,
    /// perhaps on an async thread).
    fn block_on<R>(&self, future: impl Future<Output = R>) -> R {
        let runtime = self.runtime.as_ref().expect("runtime lives until drop");
        crate::blocking::off_executor(|| runtime.block_on(future))
    }

    /// Run `work` on a pooled connection, giving up at `deadline`: waiting for a
    /// connection, for a lock or for a slow statement. A statement cut short is cancelled
    /// on the server and its connection closed, never returned to the pool mid-query.
    fn within<R>(
        &self,
        deadline: Deadline,
        work: impl AsyncFnOnce(&mut deadpool_postgres::Object) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        self.block_on(bounded(
            &self.pool,
            deadline,
            || StoreError::DeadlinePassed,
            backend,
            work,
        ))
    }
}

/// Run `work` on a connection from `pool`, giving up at `deadline`: waiting for a
/// connection, for a lock or for a slow statement (`timed_out` then). A statement cut
/// short is cancelled on the server and its connection closed, never returned to the pool
/// mid-query; `unavailable` says why no connection could be had.
pub(super) async fn bounded<R, E>(
    pool: &Pool,
    deadline: Deadline,
    timed_out: impl Fn() -> E,
    unavailable: impl Fn(deadpool_postgres::PoolError) -> E,
    work: impl AsyncFnOnce(&mut deadpool_postgres::Object) -> Result<R, E>,
) -> Result<R, E> {
    let mut client = tokio::time::timeout(deadline.remaining(), pool.get())
        .await
        .map_err(|_| timed_out())?
        .map_err(unavailable)?;
    let cancel = client.cancel_token();
    let outcome = tokio::time::timeout(deadline.remaining(), work(&mut client)).await;
    match outcome {
        Ok(result) => result,
        Err(_) => {
            let _ = tokio::time::timeout(CANCEL_WAIT, cancel.cancel_query(NoTls)).await;
            drop(deadpool_postgres::Object::take(client));
            Err(timed_out())
        }
    }
}

/// How long a cut-short statement's cancel request may take before the connection is
/// closed anyway (which also ends the statement).
const CANCEL_WAIT: std::time::Duration = std::time::Duration::from_millis(200);

impl Drop for PostgresStore {
    /// Shut the runtime down without waiting, so dropping is safe from any context.
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

async fn migrate(client: &mut deadpool_postgres::Object) -> Result<(), StoreError> {
    let tx = client.transaction().await.map_err(backend)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(backend)?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY)")
        .await
        .map_err(backend)?;
    let row = tx
        .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])
        .await
        .map_err(backend)?;
    let done = row.get::<_, i32>(0) as usize;
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(done) {
        tx.batch_execute(sql).await.map_err(backend)?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES ($1)",
            &[&((index + 1) as i32)],
        )
        .await
        .map_err(backend)?;
    }
    tx.commit().await.map_err(backend)
}
