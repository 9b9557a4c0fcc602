//! The audit trail and plugin logs in PostgreSQL.

use super::{PostgresStore, backend};
use crate::audit::{
    AuditEvent, AuditKind, AuditQuery, AuditSink, MAX_QUERY_ROWS, from_millis, to_millis, trace,
};
use crate::capability::CapabilityId;
use crate::capability::log::{LogQuery, LogRecord, LogSink, LogSource, mirror_to_tracing};
use crate::policy::LogLevel;
use crate::storage::KvError;

impl AuditSink for PostgresStore {
    fn record(&self, event: AuditEvent) {
        trace(&event);
        let inserted: Result<(), KvError> = self.block_on(async {
            let client = self.pool.get().await.map_err(backend)?;
            client
                .execute(
                    "INSERT INTO audit (time_ms, plugin, kind, capability, detail) VALUES ($1, $2, $3, $4, $5)",
                    &[
                        &to_millis(event.time),
                        &event.plugin,
                        &event.kind.as_str(),
                        &event.capability.map(CapabilityId::name),
                        &event.detail,
                    ],
                )
                .await
                .map(drop)
                .map_err(backend)
        });
        if let Err(error) = inserted {
            tracing::error!("writing an audit record failed: {error}");
        }
    }

    fn query(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>, KvError> {
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
                        kind: AuditKind::parse(row.get(2))?,
                        capability: row.get::<_, Option<&str>>(3).and_then(CapabilityId::from_name),
                        detail: row.get(4),
                    })
                })
                .collect())
        })
    }
}

impl LogSink for PostgresStore {
    fn write(&self, record: LogRecord) {
        mirror_to_tracing(&record);
        let inserted: Result<(), KvError> = self.block_on(async {
            let client = self.pool.get().await.map_err(backend)?;
            client
                .execute(
                    "INSERT INTO logs (time_ms, plugin, call_id, level, source, message)
                     VALUES ($1, $2, $3, $4, $5, $6)",
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
                .map(drop)
                .map_err(backend)
        });
        if let Err(error) = inserted {
            tracing::error!("writing a plugin log line failed: {error}");
        }
    }

    fn query(&self, query: &LogQuery) -> Result<Vec<LogRecord>, KvError> {
        self.block_on(async {
            let client = self.pool.get().await.map_err(backend)?;
            let rows = client
                .query(
                    "SELECT time_ms, plugin, call_id, level, source, message FROM logs
                     WHERE ($1::TEXT IS NULL OR plugin = $1) AND level >= $2
                       AND ($3::BIGINT IS NULL OR time_ms >= $3) AND ($4::BIGINT IS NULL OR time_ms < $4)
                     ORDER BY id DESC LIMIT $5",
                    &[
                        &query.plugin,
                        &query.level.map_or(0, LogLevel::rank),
                        &query.since.map(to_millis),
                        &query.until.map(to_millis),
                        &i64::from(query.limit.clamp(1, MAX_QUERY_ROWS)),
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
                        source: LogSource::parse(row.get(4))?,
                        message: row.get(5),
                    })
                })
                .collect())
        })
    }
}
