//! SQLite backend: the embedded default. One file in the data directory, WAL mode,
//! versioned migrations run at open. Writes run in `BEGIN IMMEDIATE` transactions on one
//! connection, so read-modify-write updates and quota checks are atomic; plugin kv reads
//! run on a small pool of read-only connections, so they never queue behind a write.

mod config;
mod events;
mod jobs;
mod mcp;
mod plugins;
mod publishers;
mod readers;
mod records;
mod secrets;
mod sessions;
mod sql;
mod tokens;

pub use sql::SqliteSql;

use readers::Readers;

use super::StoreError;
use crate::capability::Deadline;
use crate::capability::kv::{KeyPage, KvStore, MAX_PAGE, Quota, Update, Updated, Usage, page};
use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionBehavior, params};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// How long a statement waits for another connection's lock on the database file, when
/// no plugin deadline bounds it.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Schema versions, applied in order; never edit a shipped entry, append a new one.
const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE kv (
        namespace TEXT NOT NULL,
        key TEXT NOT NULL,
        value BLOB NOT NULL,
        PRIMARY KEY (namespace, key)
    ) WITHOUT ROWID;
    CREATE TABLE kv_usage (
        namespace TEXT PRIMARY KEY,
        keys INTEGER NOT NULL,
        bytes INTEGER NOT NULL
    ) WITHOUT ROWID;
",
    "
    CREATE TABLE secrets (
        plugin TEXT NOT NULL,
        name TEXT NOT NULL,
        key_id TEXT NOT NULL,
        nonce BLOB NOT NULL,
        ciphertext BLOB NOT NULL,
        PRIMARY KEY (plugin, name)
    ) WITHOUT ROWID;
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        time_ms INTEGER NOT NULL,
        plugin TEXT NOT NULL,
        kind TEXT NOT NULL,
        capability TEXT,
        detail TEXT NOT NULL
    );
    CREATE INDEX audit_by_plugin_time ON audit (plugin, time_ms);
    CREATE TABLE logs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        time_ms INTEGER NOT NULL,
        plugin TEXT NOT NULL,
        call_id TEXT NOT NULL,
        level INTEGER NOT NULL,
        source TEXT NOT NULL,
        message TEXT NOT NULL
    );
    CREATE INDEX logs_by_plugin_time ON logs (plugin, time_ms);
",
    "
    CREATE TABLE plugins (
        id TEXT PRIMARY KEY,
        enabled INTEGER NOT NULL,
        current_seq INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE plugin_versions (
        id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        version TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        wasm BLOB NOT NULL,
        installed_ms INTEGER NOT NULL,
        PRIMARY KEY (id, seq)
    ) WITHOUT ROWID;
    CREATE TABLE settings (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) WITHOUT ROWID;
",
    "
    CREATE TABLE plugin_config (
        plugin TEXT PRIMARY KEY,
        settings TEXT NOT NULL,
        updated_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
",
    "
    ALTER TABLE plugin_versions ADD COLUMN manifest BLOB;
",
    "
    ALTER TABLE plugin_versions ADD COLUMN tools TEXT;
    CREATE TABLE mcp_clients (
        id TEXT PRIMARY KEY,
        token_sha256 TEXT NOT NULL UNIQUE,
        client TEXT NOT NULL,
        created_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
",
    "
    CREATE TABLE job_runs (
        id TEXT PRIMARY KEY,
        plugin TEXT NOT NULL,
        job TEXT NOT NULL,
        scheduled_ms INTEGER NOT NULL,
        attempt INTEGER NOT NULL,
        cause TEXT NOT NULL,
        state TEXT NOT NULL,
        host TEXT,
        lease_until_ms INTEGER,
        started_ms INTEGER,
        finished_ms INTEGER,
        heartbeat_ms INTEGER,
        progress TEXT,
        error TEXT,
        call_id TEXT,
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        skipped INTEGER NOT NULL DEFAULT 0,
        UNIQUE (plugin, job, scheduled_ms, attempt)
    );
    CREATE INDEX job_runs_by_state ON job_runs (state, plugin);
    CREATE INDEX job_runs_by_job ON job_runs (plugin, job, scheduled_ms);
",
    "
    CREATE TABLE events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        topic TEXT NOT NULL,
        source TEXT NOT NULL,
        content_type TEXT NOT NULL,
        payload BLOB NOT NULL,
        published_ms INTEGER NOT NULL,
        expires_ms INTEGER NOT NULL,
        keep_count INTEGER NOT NULL
    );
    CREATE INDEX events_by_topic ON events (topic, seq);
    CREATE TABLE event_deliveries (
        id TEXT PRIMARY KEY,
        event_seq INTEGER NOT NULL,
        plugin TEXT NOT NULL,
        topic TEXT NOT NULL,
        source TEXT NOT NULL,
        state TEXT NOT NULL,
        attempt INTEGER NOT NULL DEFAULT 0,
        due_ms INTEGER NOT NULL,
        host TEXT,
        last_error TEXT,
        updated_ms INTEGER NOT NULL
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
        lease_until_ms INTEGER,
        touched_ms INTEGER NOT NULL,
        PRIMARY KEY (plugin, topic, source)
    ) WITHOUT ROWID;
",
    "
    CREATE TABLE event_publishers (
        id TEXT PRIMARY KEY,
        token_sha256 TEXT NOT NULL UNIQUE,
        publisher TEXT NOT NULL,
        created_ms INTEGER NOT NULL
    );
",
    "
    CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        token_sha256 TEXT NOT NULL UNIQUE,
        session TEXT NOT NULL,
        created_ms INTEGER NOT NULL
    );
",
    "
    ALTER TABLE plugin_versions ADD COLUMN signature BLOB;
    ALTER TABLE plugin_versions ADD COLUMN signer TEXT;
",
    "
    CREATE INDEX audit_by_plugin_id ON audit (plugin, id);
    CREATE INDEX logs_by_plugin_id ON logs (plugin, id);
",
];
/// Prepared statements the writer connection keeps.
const WRITER_STATEMENTS: usize = 64;

/// State in one SQLite database file.
pub struct SqliteStore {
    /// The one connection that writes (and reads everything but plugin kv).
    conn: Mutex<Connection>,
    /// Read-only connections for plugin kv reads; none for an in-memory database.
    readers: Readers,
}

fn backend(error: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(error.to_string())
}

impl SqliteStore {
    /// Open (creating if needed) the database at `path` and bring its schema up to date.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let conn = Connection::open(path)
            .map_err(|e| StoreError::Backend(format!("{}: {e}", path.display())))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(backend)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(backend)?;
        let mut store = Self::init(conn)?;
        // Opened after the migrations, so every reader sees the current schema.
        store.readers = Readers::open(path)
            .map_err(|e| StoreError::Backend(format!("{}: {e}", path.display())))?;
        Ok(store)
    }

    /// A private in-memory database (tests).
    pub fn open_in_memory() -> Result<SqliteStore, StoreError> {
        Self::init(Connection::open_in_memory().map_err(backend)?)
    }

    fn init(mut conn: Connection) -> Result<SqliteStore, StoreError> {
        conn.busy_timeout(BUSY_TIMEOUT).map_err(backend)?;
        // Room for every statement the writer prepares (rusqlite keeps 16 by default), so
        // a prune pass or an admin query never evicts the hot kv and batch inserts.
        conn.set_prepared_statement_cache_capacity(WRITER_STATEMENTS);
        migrate(&mut conn).map_err(backend)?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
            readers: Readers::none(),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A connection for a read that needs no write lock: a pooled reader, or the writer
    /// when there is no pool (an in-memory database). Either waits for a lock on the file
    /// no longer than `deadline`.
    fn reader_within(&self, deadline: Deadline) -> Result<Reader<'_>, StoreError> {
        if deadline.passed() {
            return Err(StoreError::DeadlinePassed);
        }
        match self.readers.take() {
            Some(reader) => {
                wait_at_most(&reader, deadline)?;
                Ok(Reader::Pooled(reader))
            }
            None => self.conn_within(deadline).map(Reader::Writer),
        }
    }

    /// The connection, waiting for the database file's lock no longer than `deadline`.
    fn conn_within(&self, deadline: Deadline) -> Result<Bounded<'_>, StoreError> {
        let conn = self.conn();
        wait_at_most(&conn, deadline)?;
        Ok(Bounded { conn })
    }

    /// The schema version the database is at.
    pub fn schema_version(&self) -> Result<usize, StoreError> {
        current_version(&self.conn()).map_err(backend)
    }
}

/// Make `conn` wait for a lock on the database file no longer than `deadline` (nor than
/// [`BUSY_TIMEOUT`]); an error if the deadline has passed.
fn wait_at_most(conn: &Connection, deadline: Deadline) -> Result<(), StoreError> {
    let left = deadline.remaining();
    if left.is_zero() {
        return Err(StoreError::DeadlinePassed);
    }
    conn.busy_timeout(left.min(BUSY_TIMEOUT)).map_err(backend)
}

fn current_version(conn: &Connection) -> rusqlite::Result<usize> {
    conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_version",
        [],
        |row| row.get::<_, i64>(0).map(|v| v as usize),
    )
}

fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY)")?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let done = current_version(&tx)?;
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(done) {
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES (?1)",
            [(index + 1) as i64],
        )?;
    }
    tx.commit()
}

fn read_usage(conn: &Connection, namespace: &str) -> rusqlite::Result<Usage> {
    conn.prepare_cached("SELECT keys, bytes FROM kv_usage WHERE namespace = ?1")?
        .query_row([namespace], |row| {
            Ok(Usage {
                keys: row.get::<_, i64>(0)? as u64,
                bytes: row.get::<_, i64>(1)? as u64,
            })
        })
        .optional()
        .map(Option::unwrap_or_default)
}

fn write_usage(conn: &Connection, namespace: &str, usage: Usage) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO kv_usage (namespace, keys, bytes) VALUES (?1, ?2, ?3)
         ON CONFLICT (namespace) DO UPDATE SET keys = excluded.keys, bytes = excluded.bytes",
    )?
    .execute(params![namespace, usage.keys as i64, usage.bytes as i64])
    .map(drop)
}

fn read_value(conn: &Connection, namespace: &str, key: &str) -> rusqlite::Result<Option<Vec<u8>>> {
    conn.prepare_cached("SELECT value FROM kv WHERE namespace = ?1 AND key = ?2")?
        .query_row([namespace, key], |row| row.get(0))
        .optional()
}

/// The connection lent to one plugin call: lock waits end at its deadline, and the
/// default wait is restored when the call is done with it.
struct Bounded<'a> {
    conn: MutexGuard<'a, Connection>,
}

impl std::ops::Deref for Bounded<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        &self.conn
    }
}

impl std::ops::DerefMut for Bounded<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }
}

impl Drop for Bounded<'_> {
    fn drop(&mut self) {
        let _ = self.conn.busy_timeout(BUSY_TIMEOUT);
    }
}

/// The connection a read runs on.
enum Reader<'a> {
    Pooled(MutexGuard<'a, Connection>),
    Writer(Bounded<'a>),
}

impl std::ops::Deref for Reader<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        match self {
            Reader::Pooled(conn) => conn,
            Reader::Writer(conn) => conn,
        }
    }
}

impl KvStore for SqliteStore {
    fn get(
        &self,
        namespace: &str,
        key: &str,
        deadline: Deadline,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let conn = self.reader_within(deadline)?;
        read_value(&conn, namespace, key).map_err(backend_or_busy(deadline))
    }

    fn delete(&self, namespace: &str, key: &str, deadline: Deadline) -> Result<bool, StoreError> {
        let mut conn = self.conn_within(deadline)?;
        let done = (|| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let Some(old) = read_value(&tx, namespace, key)? else {
                return Ok(false);
            };
            tx.prepare_cached("DELETE FROM kv WHERE namespace = ?1 AND key = ?2")?
                .execute([namespace, key])?;
            let usage = read_usage(&tx, namespace)?.after_delete(key, old.len());
            write_usage(&tx, namespace, usage)?;
            tx.commit()?;
            Ok(true)
        })();
        done.map_err(backend_or_busy(deadline))
    }

    fn list_keys(
        &self,
        namespace: &str,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
        deadline: Deadline,
    ) -> Result<KeyPage, StoreError> {
        let limit = limit.clamp(1, MAX_PAGE) as usize;
        let conn = self.reader_within(deadline)?;
        // Byte-exact prefix match: compare the key's leading bytes as a BLOB (LIKE folds
        // ASCII case, and text functions stop at NUL); `key >= ?2` lets the index seek.
        let listed = conn
            .prepare_cached(
                "SELECT key FROM kv WHERE namespace = ?1 AND key >= ?2 AND key > ?3
                   AND substr(CAST(key AS BLOB), 1, length(CAST(?2 AS BLOB))) = CAST(?2 AS BLOB)
                 ORDER BY key LIMIT ?4",
            )
            .and_then(|mut statement| {
                statement
                    .query_map(
                        params![namespace, prefix, cursor.unwrap_or(""), limit as i64 + 1],
                        |row| row.get(0),
                    )
                    .and_then(Iterator::collect)
            });
        Ok(page(listed.map_err(backend_or_busy(deadline))?, limit))
    }

    fn update(
        &self,
        namespace: &str,
        key: &str,
        update: Update<'_>,
        quota: Quota,
        deadline: Deadline,
    ) -> Result<Updated, StoreError> {
        let mut conn = self.conn_within(deadline)?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend_or_busy(deadline))?;
        let current = read_value(&tx, namespace, key).map_err(backend)?;
        let (next, outcome) = update.apply(key, current.as_deref())?;
        if let Some(value) = next {
            let usage = read_usage(&tx, namespace).map_err(backend)?.after_put(
                key,
                current.as_ref().map(Vec::len),
                value.len(),
                quota,
            )?;
            tx.prepare_cached(
                "INSERT INTO kv (namespace, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value",
            )
            .and_then(|mut insert| insert.execute(params![namespace, key, value]))
            .map_err(backend)?;
            write_usage(&tx, namespace, usage).map_err(backend)?;
            tx.commit().map_err(backend_or_busy(deadline))?;
        }
        Ok(outcome)
    }
}

/// Map a statement's error, as the deadline passing if the database was busy past it.
fn backend_or_busy(deadline: Deadline) -> impl Fn(rusqlite::Error) -> StoreError {
    move |error| {
        let busy = matches!(
            error.sqlite_error_code(),
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
        );
        if busy && deadline.passed() {
            StoreError::DeadlinePassed
        } else {
            backend(error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_run_once_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), MIGRATIONS.len());
        let quota = Quota {
            max_keys: 10,
            max_bytes: 100,
        };
        let soon = Deadline::after(Duration::from_secs(5));
        store.set("p", "k", b"v", quota, soon).unwrap();
        drop(store);
        let reopened = SqliteStore::open(&path).unwrap();
        assert_eq!(reopened.schema_version().unwrap(), MIGRATIONS.len());
        assert_eq!(reopened.get("p", "k", soon).unwrap(), Some(b"v".to_vec()));
    }

    #[test]
    fn kv_reads_do_not_wait_behind_a_write_and_see_it_once_committed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let store = std::sync::Arc::new(SqliteStore::open(&path).unwrap());
        let quota = Quota {
            max_keys: 10,
            max_bytes: 100,
        };
        let soon = Deadline::after(Duration::from_secs(30));
        store.set("p", "old", b"1", quota, soon).unwrap();
        // Another process holds the file's write lock, so the store's write waits on it,
        // holding the writer connection.
        let blocker = Connection::open(&path).unwrap();
        blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
        let writing = std::thread::spawn({
            let store = store.clone();
            move || store.set("p", "new", b"2", quota, soon)
        });
        while store.conn.try_lock().is_ok() {
            std::thread::yield_now();
        }
        assert_eq!(store.get("p", "old", soon).unwrap(), Some(b"1".to_vec()));
        assert_eq!(
            store.list_keys("p", "", None, 10, soon).unwrap().keys,
            vec!["old".to_string()]
        );
        // Only now is the file lock released: the write was waiting all along, and a
        // read that queued behind it would have outlived its busy timeout.
        blocker.execute_batch("COMMIT").unwrap();
        writing.join().unwrap().unwrap();
        assert_eq!(store.get("p", "new", soon).unwrap(), Some(b"2".to_vec()));
    }

    /// The milliseconds `conn` waits for a file lock before it gives up.
    fn busy_timeout_ms(conn: &Connection) -> i64 {
        conn.query_row("PRAGMA busy_timeout", [], |row| row.get(0))
            .unwrap()
    }

    #[test]
    fn a_pooled_read_waits_for_a_lock_no_longer_than_its_call_has_left() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("state.db")).unwrap();
        let short = store
            .reader_within(Deadline::after(Duration::from_millis(200)))
            .unwrap();
        assert!(matches!(short, Reader::Pooled(_)));
        let waits = busy_timeout_ms(&short);
        assert!(waits <= 200 && waits > 0, "waits {waits} ms");
        drop(short);
        let long = store
            .reader_within(Deadline::after(Duration::from_secs(60)))
            .unwrap();
        assert_eq!(busy_timeout_ms(&long), BUSY_TIMEOUT.as_millis() as i64);
    }

    #[test]
    fn an_in_memory_store_reads_through_its_one_connection() {
        let store = SqliteStore::open_in_memory().unwrap();
        let quota = Quota {
            max_keys: 10,
            max_bytes: 100,
        };
        let soon = Deadline::after(Duration::from_secs(5));
        store.set("p", "k", b"v", quota, soon).unwrap();
        assert_eq!(store.get("p", "k", soon).unwrap(), Some(b"v".to_vec()));
    }
}
