//! The audit trail and plugin logs in SQLite.

use super::{SqliteStore, backend};
use crate::audit::{
    AuditEvent, AuditKind, AuditQuery, AuditSink, MAX_QUERY_ROWS, from_millis, to_millis, trace,
};
use crate::capability::CapabilityId;
use crate::capability::Deadline;
use crate::capability::log::LogLevel;
use crate::capability::log::{LogQuery, LogRecord, LogSink, mirror_to_tracing};
use crate::retention::{self, Chunk, DELETE_CHUNK, Dialect, Expiry, Pass, Retention, Table};
use crate::storage::StoreError;
use rusqlite::{OptionalExtension, params};

impl SqliteStore {
    /// The plugins with rows in `table`, by walking its index one name at a time (a read:
    /// on a reader, not the writer).
    fn plugins_in(&self, table: Table) -> Result<Vec<String>, StoreError> {
        let conn = self.reader_within(Deadline::after(PRUNE_READ))?;
        let mut statement = conn.prepare_cached(&table.plugins_sql()).map_err(backend)?;
        statement
            .query_map([], |row| row.get(0))
            .and_then(Iterator::collect)
            .map_err(backend)
    }

    /// Delete what `keep` does not keep of `plugin`'s rows of `table`, in chunks. The
    /// writer connection is released between chunks, with a pause long enough for the
    /// batch writers (waiting on it) to take it first.
    fn prune_table(
        &self,
        table: Table,
        plugin: &str,
        keep: Retention,
        pass: &Pass,
    ) -> Result<u64, StoreError> {
        let newest_dropped: Option<i64> = self
            .reader_within(Deadline::after(PRUNE_READ))?
            .prepare_cached(&retention::newest_dropped_sql(table, Dialect::Sqlite))
            .and_then(|mut s| {
                s.query_row(params![plugin, keep.newest], |r| r.get(0))
                    .optional()
            })
            .map_err(backend)?;
        retention::delete_in_chunks(
            &Expiry::of(keep, pass.now, newest_dropped),
            pass,
            |expiry| {
                self.conn()
                    .prepare_cached(&expiry.delete_sql(table, Dialect::Sqlite))
                    .and_then(|mut s| s.execute(params![plugin, expiry.bound(), DELETE_CHUNK]))
                    .map(|n| Chunk::Deleted(n as u64))
                    .map_err(backend)
            },
            || std::thread::sleep(YIELD_TO_WRITERS),
        )
    }
}

/// How long a prune's reads (the plugins with rows, a plugin's cut) may wait for a
/// connection.
const PRUNE_READ: std::time::Duration = std::time::Duration::from_secs(10);

/// The pause between two chunks of a prune: a waiting writer gets the connection (a
/// mutex is not fair, and the pruning thread would otherwise take it straight back).
const YIELD_TO_WRITERS: std::time::Duration = std::time::Duration::from_millis(2);

impl AuditSink for SqliteStore {
    fn record(&self, event: AuditEvent) {
        trace(&event);
        self.record_all(vec![event]);
    }

    /// All records in one transaction with one prepared statement.
    fn record_all(&self, events: Vec<AuditEvent>) {
        let mut conn = self.conn();
        let inserted = conn.transaction().and_then(|tx| {
            {
                let mut insert = tx.prepare_cached(
                    "INSERT INTO audit (time_ms, plugin, kind, capability, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
                )?;
                for event in &events {
                    insert.execute(params![
                        to_millis(event.time),
                        event.plugin,
                        event.kind.as_str(),
                        event.capability.map(CapabilityId::name),
                        event.detail
                    ])?;
                }
            }
            tx.commit()
        });
        if let Err(error) = inserted {
            tracing::error!("writing {} audit records failed: {error}", events.len());
        }
    }

    fn query(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>, StoreError> {
        let conn = self.conn();
        let mut statement = conn
            .prepare_cached(
                "SELECT time_ms, plugin, kind, capability, detail FROM audit
                 WHERE (?1 IS NULL OR plugin = ?1) AND (?2 IS NULL OR kind = ?2)
                   AND (?3 IS NULL OR time_ms >= ?3) AND (?4 IS NULL OR time_ms < ?4)
                 ORDER BY id DESC LIMIT ?5",
            )
            .map_err(backend)?;
        let rows = statement
            .query_map(
                params![
                    query.plugin,
                    query.kind.map(AuditKind::as_str),
                    query.since.map(to_millis),
                    query.until.map(to_millis),
                    query.row_limit()
                ],
                |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, Option<String>>(3)?,
                        row.get::<_, String>(4)?,
                    ))
                },
            )
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .map_err(backend)?;
        Ok(rows
            .into_iter()
            .filter_map(|(time, plugin, kind, capability, detail)| {
                Some(AuditEvent {
                    time: from_millis(time),
                    plugin,
                    kind: kind.parse().ok()?,
                    capability: capability.as_deref().and_then(CapabilityId::from_name),
                    detail,
                })
            })
            .collect())
    }

    fn plugins(&self) -> Result<Vec<String>, StoreError> {
        self.plugins_in(Table::Audit)
    }

    fn prune(&self, plugin: &str, keep: Retention, pass: &Pass) -> Result<u64, StoreError> {
        self.prune_table(Table::Audit, plugin, keep, pass)
    }
}

impl LogSink for SqliteStore {
    fn write(&self, record: LogRecord) {
        self.write_all(vec![record]);
    }

    /// All lines in one transaction with one prepared statement.
    fn write_all(&self, records: Vec<LogRecord>) {
        let mut conn = self.conn();
        let inserted = conn.transaction().and_then(|tx| {
            {
                let mut insert = tx.prepare_cached(
                    "INSERT INTO logs (time_ms, plugin, call_id, level, source, message) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?;
                for record in &records {
                    mirror_to_tracing(record);
                    insert.execute(params![
                        to_millis(record.time),
                        record.plugin,
                        record.call_id,
                        record.level.rank(),
                        record.source.as_str(),
                        record.message
                    ])?;
                }
            }
            tx.commit()
        });
        if let Err(error) = inserted {
            tracing::error!("writing {} plugin log lines failed: {error}", records.len());
        }
    }

    fn query(&self, query: &LogQuery) -> Result<Vec<LogRecord>, StoreError> {
        let conn = self.conn();
        let mut statement = conn
            .prepare_cached(
                "SELECT time_ms, plugin, call_id, level, source, message FROM logs
                 WHERE (?1 IS NULL OR plugin = ?1) AND level >= ?2
                   AND (?3 IS NULL OR time_ms >= ?3) AND (?4 IS NULL OR time_ms < ?4)
                   AND (?6 IS NULL OR call_id = ?6)
                 ORDER BY id DESC LIMIT ?5",
            )
            .map_err(backend)?;
        let rows = statement
            .query_map(
                params![
                    query.plugin,
                    query.level.map_or(0, LogLevel::rank),
                    query.since.map(to_millis),
                    query.until.map(to_millis),
                    query.limit.clamp(1, MAX_QUERY_ROWS),
                    query.call
                ],
                |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, i32>(3)?,
                        row.get::<_, String>(4)?,
                        row.get::<_, String>(5)?,
                    ))
                },
            )
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .map_err(backend)?;
        Ok(rows
            .into_iter()
            .filter_map(|(time, plugin, call_id, level, source, message)| {
                Some(LogRecord {
                    time: from_millis(time),
                    plugin,
                    call_id,
                    level: LogLevel::from_rank(level)?,
                    source: source.parse().ok()?,
                    message,
                })
            })
            .collect())
    }

    fn plugins(&self) -> Result<Vec<String>, StoreError> {
        self.plugins_in(Table::Logs)
    }

    fn prune(&self, plugin: &str, keep: Retention, pass: &Pass) -> Result<u64, StoreError> {
        self.prune_table(Table::Logs, plugin, keep, pass)
    }
}
