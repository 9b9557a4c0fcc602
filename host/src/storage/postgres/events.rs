//! Events in PostgreSQL, shared by every host of a cluster (see [`EventStore`]). A
//! publish locks its lanes (in a fixed order), then writes the event and one delivery per
//! subscriber in one transaction, and `NOTIFY`s other hosts only to wake their
//! deliverers (they also poll). Claims hold a per-plugin advisory lock while they count
//! the plugin's leased lanes, and take lanes with `FOR UPDATE SKIP LOCKED`; leases lapse
//! by the database's clock.

use super::{PostgresStore, backend};
use crate::capability::Deadline;
use crate::capability::events::store::{Lane, Outcome, Replay};
use crate::capability::events::{
    Delivery, DeliveryQuery, DeliveryRecord, DeliveryState, EventQuery, EventRecord, EventStore,
    NewEvent, Settled, Want,
};
use crate::storage::StoreError;
use deadpool_postgres::GenericClient;
use std::time::Duration;
use tokio_postgres::Row;

/// The database's clock in ms since the epoch, as SQL.
const NOW: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";
/// Lanes idle this long with nothing to deliver are forgotten.
const IDLE_LANE_MS: i64 = 3_600_000;
/// Longest error text kept with a delivery.
const MAX_ERROR_BYTES: usize = 1000;
/// How long housekeeping and listings may take.
const HOUSEKEEPING: Duration = Duration::from_secs(30);

const RECORD: &str = "SELECT d.id, e.id, d.plugin, d.topic, d.source, d.state, d.attempt, d.due_ms, \
                      d.last_error, d.updated_ms FROM event_deliveries d JOIN events e ON e.seq = d.event_seq";

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn count(row: &Row, index: usize) -> Result<u32, StoreError> {
    u32::try_from(row.get::<_, i64>(index)).map_err(backend)
}

fn record(row: &Row) -> Result<DeliveryRecord, StoreError> {
    Ok(DeliveryRecord {
        id: row.get(0),
        event_id: row.get(1),
        plugin: row.get(2),
        topic: row.get(3),
        source: row.get(4),
        state: row.get::<_, &str>(5).parse().map_err(backend)?,
        attempt: count(row, 6)?,
        due_ms: row.get(7),
        last_error: row.get(8),
        updated_ms: row.get(9),
    })
}

fn delivery(row: &Row) -> Result<Delivery, StoreError> {
    Ok(Delivery {
        id: row.get(0),
        event_id: row.get(1),
        plugin: row.get(2),
        topic: row.get(3),
        source: row.get(4),
        published_ms: row.get(5),
        attempt: count(row, 6)?,
        content_type: row.get(7),
        payload: row.get(8),
    })
}

async fn by_id(
    client: &impl GenericClient,
    id: &str,
) -> Result<Option<DeliveryRecord>, StoreError> {
    let row = client
        .query_opt(&format!("{RECORD} WHERE d.id = $1"), &[&id])
        .await
        .map_err(backend)?;
    row.as_ref().map(record).transpose()
}

/// Free `host`'s lease of `lane`; its deliveries still leased are pending again.
async fn release(client: &impl GenericClient, host: &str, lane: &Lane) -> Result<(), StoreError> {
    client
        .execute(
            &format!(
                "UPDATE event_deliveries SET state = 'pending', host = NULL, updated_ms = {NOW}
                 WHERE plugin = $1 AND topic = $2 AND source = $3 AND state = 'leased' AND host = $4"
            ),
            &[&lane.plugin, &lane.topic, &lane.source, &host],
        )
        .await
        .map_err(backend)?;
    client
        .execute(
            "UPDATE event_lanes SET host = NULL, lease_until_ms = NULL
             WHERE plugin = $1 AND topic = $2 AND source = $3 AND host = $4",
            &[&lane.plugin, &lane.topic, &lane.source, &host],
        )
        .await
        .map_err(backend)?;
    Ok(())
}

impl PostgresStore {
    fn housekeeping<R>(
        &self,
        work: impl AsyncFnOnce(&mut deadpool_postgres::Object) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        self.within(Deadline::after(HOUSEKEEPING), work)
    }
}

impl EventStore for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn publish(
        &self,
        event: &NewEvent<'_>,
        subscribers: &[&str],
        deadline: Deadline,
    ) -> Result<EventRecord, StoreError> {
        let mut sorted: Vec<&str> = subscribers.to_vec();
        sorted.sort_unstable();
        let channel = &self.events_channel;
        let origin = &self.origin;
        self.within(deadline, async |client| {
            let tx = client.transaction().await.map_err(backend)?;
            let topic = event.topic.as_str();
            if !sorted.is_empty() {
                tx.execute(
                    &format!(
                        "INSERT INTO event_lanes (plugin, topic, source, touched_ms)
                         SELECT plugin, $2, $3, {NOW} FROM unnest($1::text[]) AS plugin
                         ON CONFLICT (plugin, topic, source)
                         DO UPDATE SET touched_ms = excluded.touched_ms"
                    ),
                    &[&sorted, &topic, &event.source],
                )
                .await
                .map_err(backend)?;
            }
            let id = crate::secrets::random_hex(16);
            let row = tx
                .query_one(
                    &format!(
                        "INSERT INTO events (id, topic, source, content_type, payload, published_ms,
                             expires_ms, keep_count)
                         VALUES ($1, $2, $3, $4, $5, {NOW}, {NOW} + $6, $7)
                         RETURNING seq, published_ms"
                    ),
                    &[
                        &id,
                        &topic,
                        &event.source,
                        &event.content_type,
                        &event.payload,
                        &millis(event.retention),
                        &i64::from(event.retention_count),
                    ],
                )
                .await
                .map_err(backend)?;
            let (seq, published_ms): (i64, i64) = (row.get(0), row.get(1));
            if !sorted.is_empty() {
                let ids: Vec<String> = sorted
                    .iter()
                    .map(|_| crate::secrets::random_hex(8))
                    .collect();
                tx.execute(
                    "INSERT INTO event_deliveries (id, event_seq, plugin, topic, source, state,
                         due_ms, updated_ms)
                     SELECT id, $3, plugin, $4, $5, 'pending', $6, $6
                     FROM unnest($1::text[], $2::text[]) AS t(id, plugin)",
                    &[&ids, &sorted, &seq, &topic, &event.source, &published_ms],
                )
                .await
                .map_err(backend)?;
                tx.execute("SELECT pg_notify($1, $2)", &[channel, origin])
                    .await
                    .map_err(backend)?;
            }
            tx.commit().await.map_err(backend)?;
            Ok(EventRecord {
                id,
                topic: topic.to_string(),
                source: event.source.to_string(),
                content_type: event.content_type.to_string(),
                published_ms,
                size: event.payload.len() as u64,
            })
        })
    }

    fn claim(
        &self,
        host: &str,
        wants: &[Want],
        lease: Duration,
    ) -> Result<Vec<Vec<Delivery>>, StoreError> {
        self.housekeeping(async |client| {
            let mut taken = Vec::new();
            for want in wants {
                let tx = client.transaction().await.map_err(backend)?;
                tx.execute(
                    "SELECT pg_advisory_xact_lock(hashtext('capstan-events:' || $1))",
                    &[&want.plugin],
                )
                .await
                .map_err(backend)?;
                let busy: i64 = tx
                    .query_one(
                        "SELECT COUNT(*) FROM event_lanes WHERE plugin = $1 AND host IS NOT NULL",
                        &[&want.plugin],
                    )
                    .await
                    .map_err(backend)?
                    .get(0);
                let free = i64::from(want.max_in_flight.min(want.lanes))
                    .min(i64::from(want.max_in_flight) - busy);
                if free <= 0 {
                    continue;
                }
                let lanes = tx
                    .query(
                        &format!(
                            "SELECT l.topic, l.source FROM event_lanes l
                             CROSS JOIN LATERAL (
                                 SELECT d.state, d.due_ms, d.event_seq FROM event_deliveries d
                                 WHERE d.plugin = l.plugin AND d.topic = l.topic
                                   AND d.source = l.source AND d.state IN ('pending', 'leased')
                                 ORDER BY d.event_seq LIMIT 1) h
                             WHERE l.plugin = $1 AND l.host IS NULL AND h.state = 'pending'
                               AND h.due_ms <= {NOW}
                             ORDER BY h.event_seq LIMIT $2
                             FOR UPDATE OF l SKIP LOCKED"
                        ),
                        &[&want.plugin, &free],
                    )
                    .await
                    .map_err(backend)?;
                for row in lanes {
                    let (topic, source): (String, String) = (row.get(0), row.get(1));
                    tx.execute(
                        &format!(
                            "UPDATE event_lanes SET host = $4, lease_until_ms = {NOW} + $5
                             WHERE plugin = $1 AND topic = $2 AND source = $3"
                        ),
                        &[&want.plugin, &topic, &source, &host, &millis(lease)],
                    )
                    .await
                    .map_err(backend)?;
                    let rows = tx
                        .query(
                            &format!(
                                "WITH taken AS (
                                     UPDATE event_deliveries SET state = 'leased',
                                         attempt = attempt + 1, host = $4, updated_ms = {NOW}
                                     WHERE id IN (
                                         SELECT id FROM event_deliveries
                                         WHERE plugin = $1 AND topic = $2 AND source = $3
                                           AND state = 'pending' AND due_ms <= {NOW}
                                         ORDER BY event_seq LIMIT $5)
                                     RETURNING id, event_seq, plugin, topic, source, attempt)
                                 SELECT t.id, e.id, t.plugin, t.topic, t.source, e.published_ms,
                                        t.attempt, e.content_type, e.payload
                                 FROM taken t JOIN events e ON e.seq = t.event_seq
                                 ORDER BY t.event_seq"
                            ),
                            &[&want.plugin, &topic, &source, &host, &i64::from(want.batch)],
                        )
                        .await
                        .map_err(backend)?;
                    let batch = rows.iter().map(delivery).collect::<Result<Vec<_>, _>>()?;
                    if !batch.is_empty() {
                        taken.push(batch);
                    }
                }
                tx.commit().await.map_err(backend)?;
            }
            Ok(taken)
        })
    }

    fn renew(&self, host: &str, lanes: &[Lane], lease: Duration) -> Result<(), StoreError> {
        let plugins: Vec<&str> = lanes.iter().map(|l| l.plugin.as_str()).collect();
        let topics: Vec<&str> = lanes.iter().map(|l| l.topic.as_str()).collect();
        let sources: Vec<&str> = lanes.iter().map(|l| l.source.as_str()).collect();
        self.housekeeping(async |client| {
            client
                .execute(
                    &format!(
                        "UPDATE event_lanes l SET lease_until_ms = {NOW} + $5
                         FROM unnest($1::text[], $2::text[], $3::text[]) AS t(plugin, topic, source)
                         WHERE l.plugin = t.plugin AND l.topic = t.topic AND l.source = t.source
                           AND l.host = $4"
                    ),
                    &[&plugins, &topics, &sources, &host, &millis(lease)],
                )
                .await
                .map_err(backend)?;
            Ok(())
        })
    }

    fn settle(&self, host: &str, lane: &Lane, settled: &[Settled]) -> Result<(), StoreError> {
        let mut ids = Vec::new();
        let mut states = Vec::new();
        let mut delays: Vec<Option<i64>> = Vec::new();
        let mut uncounts = Vec::new();
        let mut errors: Vec<Option<String>> = Vec::new();
        for one in settled {
            let (state, delay, error, uncount) = match &one.outcome {
                Outcome::Delivered => ("delivered", None, None, 0i64),
                Outcome::Retry { after, error } => {
                    ("pending", Some(millis(*after)), Some(error), 0)
                }
                Outcome::Dead { error } => ("dead", None, Some(error), 0),
                Outcome::Released => ("pending", None, None, 1),
            };
            ids.push(one.id.as_str());
            states.push(state);
            delays.push(delay);
            uncounts.push(uncount);
            errors.push(error.map(|e| crate::text::cap(e, MAX_ERROR_BYTES).into_owned()));
        }
        self.housekeeping(async |client| {
            let tx = client.transaction().await.map_err(backend)?;
            tx.execute(
                &format!(
                    "UPDATE event_deliveries d SET state = t.state, host = NULL,
                         updated_ms = {NOW}, due_ms = COALESCE({NOW} + t.delay, d.due_ms),
                         attempt = d.attempt - t.uncount,
                         last_error = COALESCE(t.error, d.last_error)
                     FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::text[])
                          AS t(id, state, delay, uncount, error)
                     WHERE d.id = t.id AND d.state = 'leased' AND d.host = $6"
                ),
                &[&ids, &states, &delays, &uncounts, &errors, &host],
            )
            .await
            .map_err(backend)?;
            release(&tx, host, lane).await?;
            tx.commit().await.map_err(backend)
        })
    }

    fn reap(&self) -> Result<u64, StoreError> {
        self.housekeeping(async |client| {
            let tx = client.transaction().await.map_err(backend)?;
            let lapsed = tx
                .query(
                    &format!(
                        "SELECT plugin, topic, source, host FROM event_lanes
                         WHERE host IS NOT NULL AND lease_until_ms < {NOW}
                         FOR UPDATE SKIP LOCKED"
                    ),
                    &[],
                )
                .await
                .map_err(backend)?;
            for row in &lapsed {
                let lane = Lane {
                    plugin: row.get(0),
                    topic: row.get(1),
                    source: row.get(2),
                };
                let host: String = row.get(3);
                release(&tx, &host, &lane).await?;
            }
            tx.commit().await.map_err(backend)?;
            Ok(lapsed.len() as u64)
        })
    }

    fn events(&self, query: &EventQuery) -> Result<Vec<EventRecord>, StoreError> {
        self.housekeeping(async |client| {
            let rows = client
                .query(
                    "SELECT id, topic, source, content_type, published_ms, length(payload)::bigint
                     FROM events
                     WHERE ($1::text IS NULL OR topic = $1) AND ($2::text IS NULL OR source = $2)
                     ORDER BY seq DESC LIMIT $3",
                    &[&query.topic, &query.source, &i64::from(query.limit)],
                )
                .await
                .map_err(backend)?;
            rows.iter()
                .map(|row| {
                    Ok(EventRecord {
                        id: row.get(0),
                        topic: row.get(1),
                        source: row.get(2),
                        content_type: row.get(3),
                        published_ms: row.get(4),
                        size: u64::try_from(row.get::<_, i64>(5)).map_err(backend)?,
                    })
                })
                .collect()
        })
    }

    fn deliveries(&self, query: &DeliveryQuery) -> Result<Vec<DeliveryRecord>, StoreError> {
        let state = query.state.map(DeliveryState::as_str);
        self.housekeeping(async |client| {
            let rows = client
                .query(
                    &format!(
                        "{RECORD} WHERE ($1::text IS NULL OR d.plugin = $1)
                             AND ($2::text IS NULL OR d.state = $2)
                             AND ($3::text IS NULL OR e.id = $3)
                         ORDER BY d.event_seq DESC, d.plugin LIMIT $4"
                    ),
                    &[
                        &query.plugin,
                        &state,
                        &query.event_id,
                        &i64::from(query.limit),
                    ],
                )
                .await
                .map_err(backend)?;
            rows.iter().map(record).collect()
        })
    }

    fn replay(&self, id: &str) -> Result<Replay, StoreError> {
        self.housekeeping(async |client| {
            let tx = client.transaction().await.map_err(backend)?;
            let Some(found) = by_id(&tx, id).await? else {
                return Ok(Replay::Missing);
            };
            if found.state != DeliveryState::Dead {
                return Ok(Replay::NotDead(found));
            }
            tx.execute(
                &format!(
                    "INSERT INTO event_lanes (plugin, topic, source, touched_ms)
                     VALUES ($1, $2, $3, {NOW})
                     ON CONFLICT (plugin, topic, source) DO UPDATE SET touched_ms = excluded.touched_ms"
                ),
                &[&found.plugin, &found.topic, &found.source],
            )
            .await
            .map_err(backend)?;
            tx.execute(
                &format!(
                    "UPDATE event_deliveries SET state = 'pending', attempt = 0, due_ms = {NOW},
                         updated_ms = {NOW}, last_error = NULL
                     WHERE id = $1 AND state = 'dead'"
                ),
                &[&id],
            )
            .await
            .map_err(backend)?;
            let replayed = by_id(&tx, id).await?;
            tx.execute("SELECT pg_notify($1, '')", &[&self.events_channel])
                .await
                .map_err(backend)?;
            tx.commit().await.map_err(backend)?;
            Ok(replayed.map_or(Replay::Missing, Replay::Replayed))
        })
    }

    fn drop_plugin(&self, plugin: &str) -> Result<u64, StoreError> {
        self.housekeeping(async |client| {
            let tx = client.transaction().await.map_err(backend)?;
            let open: i64 = tx
                .query_one(
                    "SELECT COUNT(*) FROM event_deliveries
                     WHERE plugin = $1 AND state IN ('pending', 'leased')",
                    &[&plugin],
                )
                .await
                .map_err(backend)?
                .get(0);
            tx.execute("DELETE FROM event_deliveries WHERE plugin = $1", &[&plugin])
                .await
                .map_err(backend)?;
            tx.execute("DELETE FROM event_lanes WHERE plugin = $1", &[&plugin])
                .await
                .map_err(backend)?;
            tx.commit().await.map_err(backend)?;
            u64::try_from(open).map_err(backend)
        })
    }

    fn prune(&self) -> Result<u64, StoreError> {
        self.housekeeping(async |client| {
            let tx = client.transaction().await.map_err(backend)?;
            let expired: Vec<i64> = tx
                .query(
                    &format!(
                        "SELECT e.seq FROM events e
                         WHERE (e.expires_ms < {NOW} OR e.seq IN (
                                  SELECT seq FROM (
                                      SELECT seq, keep_count,
                                             row_number() OVER (PARTITION BY topic ORDER BY seq DESC) AS n
                                      FROM events) ranked
                                  WHERE n > keep_count))
                           AND NOT EXISTS (SELECT 1 FROM event_deliveries d
                                           WHERE d.event_seq = e.seq
                                             AND d.state IN ('pending', 'leased'))"
                    ),
                    &[],
                )
                .await
                .map_err(backend)?
                .iter()
                .map(|row| row.get(0))
                .collect();
            tx.execute(
                "DELETE FROM event_deliveries WHERE event_seq = ANY($1)",
                &[&expired],
            )
            .await
            .map_err(backend)?;
            tx.execute("DELETE FROM events WHERE seq = ANY($1)", &[&expired])
                .await
                .map_err(backend)?;
            tx.execute(
                &format!(
                    "DELETE FROM event_lanes l WHERE l.host IS NULL AND l.touched_ms < {NOW} - $1
                       AND NOT EXISTS (SELECT 1 FROM event_deliveries d
                                       WHERE d.plugin = l.plugin AND d.topic = l.topic
                                         AND d.source = l.source
                                         AND d.state IN ('pending', 'leased'))"
                ),
                &[&IDLE_LANE_MS],
            )
            .await
            .map_err(backend)?;
            tx.commit().await.map_err(backend)?;
            Ok(expired.len() as u64)
        })
    }

    fn wakes(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<()>> {
        Some(self.listen_on(&self.events_channel))
    }
}
