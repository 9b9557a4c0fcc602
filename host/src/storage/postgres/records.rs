//! The audit trail and plugin logs in PostgreSQL.

use super::{PostgresStore, backend};
use crate::audit::{
    AuditEvent, AuditKind, AuditQuery, AuditSink, MAX_QUERY_ROWS, from_millis, to_millis, trace,
};
use crate::capability::CapabilityId;
use crate::capability::Deadline;
use crate::capability::log::LogLevel;
use crate::capability::log::{LogQuery, LogRecord, LogSink, mirror_to_tracing};
use crate::retention::{self, Chunk, DELETE_CHUNK, Dialect, Expiry, Pass, Retention, Table};
use crate::storage::StoreError;

impl PostgresStore {
    /// The plugins with rows in `table`, by walking its index one name at a time, within
    /// [`PRUNE_DEADLINE`].
    fn plugins_in(&self, table: Table) -> Result<Vec<String>, StoreError> {
        self.within(Deadline::after(PRUNE_DEADLINE), async |client| {
            let rows = client
                .query(&table.plugins_sql(), &[])
                .await
                .map_err(backend)?;
            Ok(rows.iter().map(|row| row.get(0)).collect())
        })
    }

    /// Delete what `keep` does not keep of `plugin`'s rows of `table`, in chunks, within
    /// [`PRUNE_DEADLINE`] (what is left then goes in the next pass). Each chunk's
    /// transaction first takes the plugin's [`PRUNE_LOCK`] for the table, or leaves the rows
    /// to the host that holds it: hosts sharing the database never delete the same rows at
    /// once (which could deadlock), and one of them does each plugin's work.
    fn prune_table(
        &self,
        table: Table,
        plugin: &str,
        keep: Retention,
        pass: &Pass,
    ) -> Result<u64, StoreError> {
        let deadline = Deadline::after(PRUNE_DEADLINE);
        let newest_dropped: Option<i64> = self.within(deadline, async |client| {
            Ok(client
                .query_opt(
                    &retention::newest_dropped_sql(table, Dialect::Postgres),
                    &[&plugin, &i64::from(keep.newest)],
                )
                .await
                .map_err(backend)?
                .map(|row| row.get(0)))
        })?;
        retention::delete_in_chunks(
            &Expiry::of(keep, pass.now, newest_dropped),
            pass,
            |expiry| {
                self.within(deadline, async |client| {
                    let tx = client.transaction().await.map_err(backend)?;
                    let ours: bool = tx
                        .query_one(PRUNE_LOCK, &[&table.name(), &plugin])
                        .await
                        .map_err(backend)?
                        .get(0);
                    if !ours {
                        tx.rollback().await.map_err(backend)?;
                        return Ok(Chunk::Elsewhere);
                    }
                    let deleted = tx
                        .execute(
                            &expiry.delete_sql(table, Dialect::Postgres),
                            &[&plugin, &expiry.bound(), &i64::from(DELETE_CHUNK)],
                        )
                        .await
                        .map_err(backend)?;
                    tx.commit().await.map_err(backend)?;
                    Ok(Chunk::Deleted(deleted))
                })
            },
            || {},
        )
    }
}

/// Takes, for the rest of the transaction, the lock on pruning one plugin's rows of one
/// table (parameters: table, plugin) in this schema, if no other session holds it; whether
/// it did.
const PRUNE_LOCK: &str = "SELECT pg_try_advisory_xact_lock(hashtext(\
     'capstan-prune:' || current_schema() || ':' || $1 || ':' || $2))";

/// How long listing the plugins, or one plugin's prune, may take on PostgreSQL.
const PRUNE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

impl AuditSink for PostgresStore {
    fn record(&self, event: AuditEvent) {
        trace(&event);
        self.record_all(vec![event]);
    }

    /// All records in one transaction with one prepared statement.
    fn record_all(&self, events: Vec<AuditEvent>) {
        let inserted: Result<(), StoreError> = self.block_on(async {
            let mut client = self.pool.get().await.map_err(backend)?;
            let tx = client.transaction().await.map_err(backend)?;
            let insert = tx
                .prepare_cached(
                    "INSERT INTO audit (time_ms, plugin, kind, capability, detail) VALUES ($1, $2, $3, $4, $5)",
                )
                .await
                .map_err(backend)?;
            for event in &events {
                tx.execute(
                    &insert,
                    &[
                        &to_millis(event.time),
                        &event.plugin,
                        &event.kind.as_str(),
                        &event.capability.map(CapabilityId::name),
                        &event.detail,
                    ],
                )
                .await
                .map_err(backend)?;
            }
            tx.commit().await.map_err(backend)
        });
        if let Err(error) = inserted {
            tracing::error!("writing {} audit records failed: {error}", events.len());
        }
    }

    fn query(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>, StoreError> {
        self.block_on(async {
            let client = self.pool.get().await.map_err(backend)?;
            let rows = client
                .query(
                    "SELECT time_ms, plugin, kind, capability, detail FROM audit
                     WHERE ($1::TEXT IS NULL OR plugin = $1) AND ($2::TEXT IS NULL OR kind = $2)
                       AND ($3::BIGINT IS NULL OR time_ms >= $3) AND ($4::BIGINT IS NULL OR time_ms < $4)
                     ORDER BY id DESC LIMIT $5",
                    &[
                        &query.plugin,
                        &query.kind.map(AuditKind::as_str),
                        &query.since.map(to_millis),
                        &query.until.map(to_millis),
                        &i64::from(query.row_limit()),
                    ],
                )
                .await
                .map_err(backend)?;
            Ok(rows
                .iter()
                .filter_map(|row| {
                    Some(AuditEvent {
                        time: from_millis(row.get(0)),
                        plugin: row.get(1),
                        kind: row.get::<_, &str>(2).parse().ok()?,
                        capability: row.get::<_, Option<&str>>(3).and_then(CapabilityId::from_name),
                        detail: row.get(4),
                    })
                })
                .collect())
        })
    }

    fn plugins(&self) -> Result<Vec<String>, StoreError> {
        self.plugins_in(Table::Audit)
    }

    fn prune(&self, plugin: &str, keep: Retention, pass: &Pass) -> Result<u64, StoreError> {
        self.prune_table(Table::Audit, plugin, keep, pass)
    }
}

impl LogSink for PostgresStore {
    fn write(&self, record: LogRecord) {
        self.write_all(vec![record]);
    }

    /// All lines in one transaction with one prepared statement.
    fn write_all(&self, records: Vec<LogRecord>) {
        let inserted: Result<(), StoreError> = self.block_on(async {
            let mut client = self.pool.get().await.map_err(backend)?;
            let tx = client.transaction().await.map_err(backend)?;
            let insert = tx
                .prepare_cached(
                    "INSERT INTO logs (time_ms, plugin, call_id, level, source, message)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .await
                .map_err(backend)?;
            for record in &records {
                mirror_to_tracing(record);
                tx.execute(
                    &insert,
                    &[
                        &to_millis(record.time),
                        &record.plugin,
                        &record.call_id,
                        &record.level.rank(),
                        &record.source.as_str(),
                        &record.message,
                    ],
                )
                .await
                .map_err(backend)?;
            }
            tx.commit().await.map_err(backend)
        });
        if let Err(error) = inserted {
            tracing::error!("writing {} plugin log lines failed: {error}", records.len());
        }
    }

    fn query(&self, query: &LogQuery) -> Result<Vec<LogRecord>, StoreError> {
        self.block_on(async {
            let client = self.pool.get().await.map_err(backend)?;
            let rows = client
                .query(
                    "SELECT time_ms, plugin, call_id, level, source, message FROM logs
                     WHERE ($1::TEXT IS NULL OR plugin = $1) AND level >= $2
                       AND ($3::BIGINT IS NULL OR time_ms >= $3) AND ($4::BIGINT IS NULL OR time_ms < $4)
                       AND ($6::TEXT IS NULL OR call_id = $6)
                     ORDER BY id DESC LIMIT $5",
                    &[
                        &query.plugin,
                        &query.level.map_or(0, LogLevel::rank),
                        &query.since.map(to_millis),
                        &query.until.map(to_millis),
                        &i64::from(query.limit.clamp(1, MAX_QUERY_ROWS)),
                        &query.call,
                    ],
                )
                .await
                .map_err(backend)?;
            Ok(rows
                .iter()
                .filter_map(|row| {
                    Some(LogRecord {
                        time: from_millis(row.get(0)),
                        plugin: row.get(1),
                        call_id: row.get(2),
                        level: LogLevel::from_rank(row.get(3))?,
                        source: row.get::<_, &str>(4).parse().ok()?,
                        message: row.get(5),
                    })
                })
                .collect())
        })
    }

    fn plugins(&self) -> Result<Vec<String>, StoreError> {
        self.plugins_in(Table::Logs)
    }

    fn prune(&self, plugin: &str, keep: Retention, pass: &Pass) -> Result<u64, StoreError> {
        self.prune_table(Table::Logs, plugin, keep, pass)
    }
}
