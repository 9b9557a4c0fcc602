//! Events in SQLite: the one host's event log, deliveries and lanes (see
//! [`EventStore`]). Every change runs in a `BEGIN IMMEDIATE` transaction on the one
//! connection; the clock is this host's.

use super::{SqliteStore, backend};
use crate::audit::to_millis;
use crate::capability::Deadline;
use crate::capability::events::store::{Lane, Outcome, Replay};
use crate::capability::events::{
    Delivery, DeliveryQuery, DeliveryRecord, EventQuery, EventRecord, EventStore, NewEvent,
    Settled, Want,
};
use crate::storage::StoreError;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use std::time::{Duration, SystemTime};

/// Lanes idle this long with nothing to deliver are forgotten.
const IDLE_LANE_MS: i64 = 3_600_000;
/// Longest error text kept with a delivery.
const MAX_ERROR_BYTES: usize = 1000;

const RECORD: &str = "SELECT d.id, e.id, d.plugin, d.topic, d.source, d.state, d.attempt, d.due_ms, \
                      d.last_error, d.updated_ms FROM event_deliveries d JOIN events e ON e.seq = d.event_seq";

const DELIVERY: &str = "SELECT d.id, e.id, d.plugin, d.topic, d.source, e.published_ms, d.attempt, \
                        e.content_type, e.payload FROM event_deliveries d JOIN events e ON e.seq = d.event_seq";

fn now() -> i64 {
    to_millis(SystemTime::now())
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn record(row: &Row<'_>) -> rusqlite::Result<DeliveryRecord> {
    Ok(DeliveryRecord {
        id: row.get(0)?,
        event_id: row.get(1)?,
        plugin: row.get(2)?,
        topic: row.get(3)?,
        source: row.get(4)?,
        state: row.get::<_, String>(5)?.parse().map_err(|e: String| {
            rusqlite::Error::FromSqlConversionFailure(5, rusqlite::types::Type::Text, e.into())
        })?,
        attempt: row.get(6)?,
        due_ms: row.get(7)?,
        last_error: row.get(8)?,
        updated_ms: row.get(9)?,
    })
}

fn delivery(row: &Row<'_>) -> rusqlite::Result<Delivery> {
    Ok(Delivery {
        id: row.get(0)?,
        event_id: row.get(1)?,
        plugin: row.get(2)?,
        topic: row.get(3)?,
        source: row.get(4)?,
        published_ms: row.get(5)?,
        attempt: row.get(6)?,
        content_type: row.get(7)?,
        payload: row.get(8)?,
    })
}

fn event(row: &Row<'_>) -> rusqlite::Result<EventRecord> {
    Ok(EventRecord {
        id: row.get(0)?,
        topic: row.get(1)?,
        source: row.get(2)?,
        content_type: row.get(3)?,
        published_ms: row.get(4)?,
        size: row.get::<_, i64>(5)?.unsigned_abs(),
    })
}

fn by_id(conn: &Connection, id: &str) -> rusqlite::Result<Option<DeliveryRecord>> {
    conn.query_row(&format!("{RECORD} WHERE d.id = ?1"), [id], record)
        .optional()
}

/// Lease `lane` for `host` and take its next `batch` due deliveries.
fn take_lane(
    conn: &Connection,
    host: &str,
    lane: &Lane,
    lease: Duration,
    batch: u32,
    now: i64,
) -> rusqlite::Result<Vec<Delivery>> {
    conn.execute(
        "UPDATE event_lanes SET host = ?4, lease_until_ms = ?5
         WHERE plugin = ?1 AND topic = ?2 AND source = ?3",
        params![
            lane.plugin,
            lane.topic,
            lane.source,
            host,
            now + millis(lease)
        ],
    )?;
    conn.execute(
        "UPDATE event_deliveries SET state = 'leased', attempt = attempt + 1, host = ?4,
             updated_ms = ?5
         WHERE id IN (SELECT id FROM event_deliveries
                      WHERE plugin = ?1 AND topic = ?2 AND source = ?3 AND state = 'pending'
                        AND due_ms <= ?5
                      ORDER BY event_seq LIMIT ?6)",
        params![lane.plugin, lane.topic, lane.source, host, now, batch],
    )?;
    let mut statement = conn.prepare_cached(&format!(
        "{DELIVERY} WHERE d.plugin = ?1 AND d.topic = ?2 AND d.source = ?3
             AND d.state = 'leased' AND d.host = ?4 ORDER BY d.event_seq"
    ))?;
    let rows = statement.query_map(
        params![lane.plugin, lane.topic, lane.source, host],
        delivery,
    )?;
    rows.collect()
}

impl EventStore for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn publish(
        &self,
        event: &NewEvent<'_>,
        subscribers: &[&str],
        deadline: Deadline,
    ) -> Result<EventRecord, StoreError> {
        let mut conn = self.conn_within(deadline)?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let now = now();
        let id = crate::secrets::random_hex(16);
        let topic = event.topic.as_str();
        tx.execute(
            "INSERT INTO events (id, topic, source, content_type, payload, published_ms,
                 expires_ms, keep_count)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                id,
                topic,
                event.source,
                event.content_type,
                event.payload,
                now,
                now.saturating_add(millis(event.retention)),
                event.retention_count
            ],
        )
        .map_err(backend)?;
        let seq = tx.last_insert_rowid();
        for plugin in subscribers {
            tx.execute(
                "INSERT INTO event_lanes (plugin, topic, source, touched_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (plugin, topic, source) DO UPDATE SET touched_ms = excluded.touched_ms",
                params![plugin, topic, event.source, now],
            )
            .map_err(backend)?;
            tx.execute(
                "INSERT INTO event_deliveries (id, event_seq, plugin, topic, source, state, due_ms,
                     updated_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?6)",
                params![
                    crate::secrets::random_hex(8),
                    seq,
                    plugin,
                    topic,
                    event.source,
                    now
                ],
            )
            .map_err(backend)?;
        }
        tx.commit().map_err(backend)?;
        Ok(EventRecord {
            id,
            topic: topic.to_string(),
            source: event.source.to_string(),
            content_type: event.content_type.to_string(),
            published_ms: now,
            size: event.payload.len() as u64,
        })
    }

    fn claim(
        &self,
        host: &str,
        wants: &[Want],
        lease: Duration,
    ) -> Result<Vec<Vec<Delivery>>, StoreError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let now = now();
        let mut taken = Vec::new();
        for want in wants {
            let busy: u32 = tx
                .query_row(
                    "SELECT COUNT(*) FROM event_lanes WHERE plugin = ?1 AND host IS NOT NULL",
                    [&want.plugin],
                    |row| row.get(0),
                )
                .map_err(backend)?;
            let free = want.max_in_flight.saturating_sub(busy).min(want.lanes);
            if free == 0 {
                continue;
            }
            let lanes: Vec<Lane> = {
                let mut statement = tx
                    .prepare_cached(
                        "SELECT l.topic, l.source FROM event_lanes l
                         JOIN event_deliveries h ON h.id = (
                             SELECT d.id FROM event_deliveries d
                             WHERE d.plugin = l.plugin AND d.topic = l.topic AND d.source = l.source
                               AND d.state IN ('pending', 'leased')
                             ORDER BY d.event_seq LIMIT 1)
                         WHERE l.plugin = ?1 AND l.host IS NULL AND h.state = 'pending'
                           AND h.due_ms <= ?2
                         ORDER BY h.event_seq LIMIT ?3",
                    )
                    .map_err(backend)?;
                let rows = statement
                    .query_map(params![want.plugin, now, free], |row| {
                        Ok(Lane {
                            plugin: want.plugin.clone(),
                            topic: row.get(0)?,
                            source: row.get(1)?,
                        })
                    })
                    .map_err(backend)?;
                rows.collect::<rusqlite::Result<_>>().map_err(backend)?
            };
            for lane in lanes {
                let batch = take_lane(&tx, host, &lane, lease, want.batch, now).map_err(backend)?;
                if !batch.is_empty() {
                    taken.push(batch);
                }
            }
        }
        tx.commit().map_err(backend)?;
        Ok(taken)
    }

    fn renew(&self, host: &str, lanes: &[Lane], lease: Duration) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let until = now() + millis(lease);
        for lane in lanes {
            tx.execute(
                "UPDATE event_lanes SET lease_until_ms = ?5
                 WHERE plugin = ?1 AND topic = ?2 AND source = ?3 AND host = ?4",
                params![lane.plugin, lane.topic, lane.source, host, until],
            )
            .map_err(backend)?;
        }
        tx.commit().map_err(backend)
    }

    fn settle(&self, host: &str, lane: &Lane, settled: &[Settled]) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let now = now();
        for one in settled {
            let (state, due, error, uncount) = match &one.outcome {
                Outcome::Delivered => ("delivered", None, None, 0),
                Outcome::Retry { after, error } => (
                    "pending",
                    Some(now + millis(*after)),
                    Some(error.as_str()),
                    0,
                ),
                Outcome::Dead { error } => ("dead", None, Some(error.as_str()), 0),
                Outcome::Released => ("pending", None, None, 1),
            };
            tx.execute(
                "UPDATE event_deliveries SET state = ?3, host = NULL, updated_ms = ?4,
                     due_ms = COALESCE(?5, due_ms), attempt = attempt - ?6,
                     last_error = COALESCE(?7, last_error)
                 WHERE id = ?1 AND state = 'leased' AND host = ?2",
                params![
                    one.id,
                    host,
                    state,
                    now,
                    due,
                    uncount,
                    error.map(|e| crate::text::cap(e, MAX_ERROR_BYTES))
                ],
            )
            .map_err(backend)?;
        }
        release(&tx, host, lane, now).map_err(backend)?;
        tx.commit().map_err(backend)
    }

    fn reap(&self) -> Result<u64, StoreError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let now = now();
        let lapsed: Vec<(Lane, String)> = {
            let mut statement = tx
                .prepare(
                    "SELECT plugin, topic, source, host FROM event_lanes
                     WHERE host IS NOT NULL AND lease_until_ms < ?1",
                )
                .map_err(backend)?;
            let rows = statement
                .query_map([now], |row| {
                    Ok((
                        Lane {
                            plugin: row.get(0)?,
                            topic: row.get(1)?,
                            source: row.get(2)?,
                        },
                        row.get(3)?,
                    ))
                })
                .map_err(backend)?;
            rows.collect::<rusqlite::Result<_>>().map_err(backend)?
        };
        for (lane, host) in &lapsed {
            release(&tx, host, lane, now).map_err(backend)?;
        }
        tx.commit().map_err(backend)?;
        Ok(lapsed.len() as u64)
    }

    fn events(&self, query: &EventQuery) -> Result<Vec<EventRecord>, StoreError> {
        let conn = self.conn();
        let mut statement = conn
            .prepare(
                "SELECT id, topic, source, content_type, published_ms, length(payload) FROM events
                 WHERE (?1 IS NULL OR topic = ?1) AND (?2 IS NULL OR source = ?2)
                 ORDER BY seq DESC LIMIT ?3",
            )
            .map_err(backend)?;
        let rows = statement
            .query_map(params![query.topic, query.source, query.limit], event)
            .map_err(backend)?;
        rows.collect::<rusqlite::Result<_>>().map_err(backend)
    }

    fn deliveries(&self, query: &DeliveryQuery) -> Result<Vec<DeliveryRecord>, StoreError> {
        let conn = self.conn();
        let mut statement = conn
            .prepare(&format!(
                "{RECORD} WHERE (?1 IS NULL OR d.plugin = ?1) AND (?2 IS NULL OR d.state = ?2)
                     AND (?3 IS NULL OR e.id = ?3)
                 ORDER BY d.event_seq DESC, d.plugin LIMIT ?4"
            ))
            .map_err(backend)?;
        let rows = statement
            .query_map(
                params![
                    query.plugin,
                    query.state.map(|s| s.as_str()),
                    query.event_id,
                    query.limit
                ],
                record,
            )
            .map_err(backend)?;
        rows.collect::<rusqlite::Result<_>>().map_err(backend)
    }

    fn replay(&self, id: &str) -> Result<Replay, StoreError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let Some(found) = by_id(&tx, id).map_err(backend)? else {
            return Ok(Replay::Missing);
        };
        if found.state != crate::capability::events::DeliveryState::Dead {
            return Ok(Replay::NotDead(found));
        }
        let now = now();
        tx.execute(
            "UPDATE event_deliveries SET state = 'pending', attempt = 0, due_ms = ?2,
                 updated_ms = ?2, last_error = NULL
             WHERE id = ?1",
            params![id, now],
        )
        .map_err(backend)?;
        tx.execute(
            "INSERT INTO event_lanes (plugin, topic, source, touched_ms) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (plugin, topic, source) DO UPDATE SET touched_ms = excluded.touched_ms",
            params![found.plugin, found.topic, found.source, now],
        )
        .map_err(backend)?;
        let replayed = by_id(&tx, id).map_err(backend)?;
        tx.commit().map_err(backend)?;
        Ok(replayed.map_or(Replay::Missing, Replay::Replayed))
    }

    fn drop_plugin(&self, plugin: &str) -> Result<u64, StoreError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let open: i64 = tx
            .query_row(
                "SELECT COUNT(*) FROM event_deliveries
                 WHERE plugin = ?1 AND state IN ('pending', 'leased')",
                [plugin],
                |row| row.get(0),
            )
            .map_err(backend)?;
        tx.execute("DELETE FROM event_deliveries WHERE plugin = ?1", [plugin])
            .map_err(backend)?;
        tx.execute("DELETE FROM event_lanes WHERE plugin = ?1", [plugin])
            .map_err(backend)?;
        tx.commit().map_err(backend)?;
        Ok(open.unsigned_abs())
    }

    fn prune(&self) -> Result<u64, StoreError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let now = now();
        let expired: Vec<i64> = {
            let mut statement = tx
                .prepare(
                    "SELECT e.seq FROM events e
                     WHERE (e.expires_ms < ?1 OR e.seq IN (
                              SELECT seq FROM (
                                  SELECT seq, keep_count,
                                         row_number() OVER (PARTITION BY topic ORDER BY seq DESC) AS n
                                  FROM events)
                              WHERE n > keep_count))
                       AND NOT EXISTS (SELECT 1 FROM event_deliveries d
                                       WHERE d.event_seq = e.seq AND d.state IN ('pending', 'leased'))",
                )
                .map_err(backend)?;
            let rows = statement
                .query_map([now], |row| row.get(0))
                .map_err(backend)?;
            rows.collect::<rusqlite::Result<_>>().map_err(backend)?
        };
        for seq in &expired {
            tx.execute("DELETE FROM event_deliveries WHERE event_seq = ?1", [seq])
                .map_err(backend)?;
            tx.execute("DELETE FROM events WHERE seq = ?1", [seq])
                .map_err(backend)?;
        }
        tx.execute(
            "DELETE FROM event_lanes WHERE host IS NULL AND touched_ms < ?1
               AND NOT EXISTS (SELECT 1 FROM event_deliveries d
                               WHERE d.plugin = event_lanes.plugin AND d.topic = event_lanes.topic
                                 AND d.source = event_lanes.source
                                 AND d.state IN ('pending', 'leased'))",
            [now - IDLE_LANE_MS],
        )
        .map_err(backend)?;
        tx.commit().map_err(backend)?;
        Ok(expired.len() as u64)
    }
}

/// Free `host`'s lease of `lane`; its deliveries still leased are pending again.
fn release(conn: &Connection, host: &str, lane: &Lane, now: i64) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE event_deliveries SET state = 'pending', host = NULL, updated_ms = ?5
         WHERE plugin = ?1 AND topic = ?2 AND source = ?3 AND state = 'leased' AND host = ?4",
        params![lane.plugin, lane.topic, lane.source, host, now],
    )?;
    conn.execute(
        "UPDATE event_lanes SET host = NULL, lease_until_ms = NULL
         WHERE plugin = ?1 AND topic = ?2 AND source = ?3 AND host = ?4",
        params![lane.plugin, lane.topic, lane.source, host],
    )?;
    Ok(())
}
