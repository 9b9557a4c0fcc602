//! Job runs in PostgreSQL, shared by every host of a cluster. A tick is decided and
//! inserted in one transaction holding a transaction-scoped advisory lock on its job (never
//! a session lock, which pooled connections would leak or lose), with
//! `UNIQUE(plugin, job, scheduled_ms, attempt)` behind it; claims lock the plugin the same
//! way to respect its concurrency and take rows with `FOR UPDATE SKIP LOCKED`; every time
//! is the database's clock.

use super::{PostgresStore, backend};
use crate::capability::jobs::store::Claimable;
use crate::capability::jobs::{Due, JobStore, LastRun, NewRun, Run, RunQuery, RunState, Trigger};
use crate::storage::StoreError;
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

const COLUMNS: &str = "id, plugin, job, scheduled_ms, state, attempt, cause, host, started_ms, \
                       finished_ms, heartbeat_ms, progress, error, call_id, cancel_requested, skipped";

/// The database's clock in ms since the epoch, as SQL.
const NOW: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

fn read(row: &Row) -> Result<Run, StoreError> {
    let count = |index: usize| u32::try_from(row.get::<_, i64>(index)).map_err(backend);
    Ok(Run {
        id: row.get(0),
        plugin: row.get(1),
        job: row.get(2),
        scheduled_ms: row.get(3),
        state: row.get::<_, &str>(4).parse().map_err(backend)?,
        attempt: count(5)?,
        trigger: row.get::<_, &str>(6).parse().map_err(backend)?,
        host: row.get(7),
        started_ms: row.get(8),
        finished_ms: row.get(9),
        heartbeat_ms: row.get(10),
        progress: row.get(11),
        error: row.get(12),
        call_id: row.get(13),
        cancel_requested: row.get(14),
        skipped: count(15)?,
    })
}

fn one(row: Option<Row>) -> Result<Option<Run>, StoreError> {
    row.as_ref().map(read).transpose()
}

/// Insert a run in `state`; None if its tick and attempt exist already.
async fn insert(
    client: &impl GenericClient,
    run: &NewRun,
    state: RunState,
    skipped: u32,
) -> Result<Option<Run>, StoreError> {
    let row = client
        .query_opt(
            &format!(
                "INSERT INTO job_runs (id, plugin, job, scheduled_ms, attempt, cause, state, skipped,
                     finished_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, CASE WHEN $9 THEN {NOW} END)
                 ON CONFLICT (plugin, job, scheduled_ms, attempt) DO NOTHING
                 RETURNING {COLUMNS}"
            ),
            &[
                &crate::secrets::random_hex(8),
                &run.plugin,
                &run.job,
                &run.scheduled_ms,
                &i64::from(run.attempt),
                &run.trigger.as_str(),
                &state.as_str(),
                &i64::from(skipped),
                &state.is_final(),
            ],
        )
        .await
        .map_err(backend)?;
    one(row)
}

impl JobStore for PostgresStore {
    fn now_ms(&self) -> Result<i64, StoreError> {
        self.block_on(async {
            let client = self.pool.get().await.map_err(backend)?;
            let row = client
                .query_one(&format!("SELECT {NOW}"), &[])
                .await
                .map_err(backend)?;
            Ok(row.get(0))
        })
    }

    fn schedule(
        &self,
        plugin: &str,
        job: &str,
        decide: &mut dyn FnMut(Option<LastRun>, i64) -> Option<Due>,
    ) -> Result<Option<Run>, StoreError> {
        self.block_on(async {
            let mut client = self.pool.get().await.map_err(backend)?;
            let tx = client.transaction().await.map_err(backend)?;
            tx.execute(
                "SELECT pg_advisory_xact_lock(hashtext('capstan-job:' || $1 || '/' || $2))",
                &[&plugin, &job],
            )
            .await
            .map_err(backend)?;
            let last = tx
                .query_opt(
                    "SELECT scheduled_ms, finished_ms FROM job_runs
                     WHERE plugin = $1 AND job = $2 AND cause <> 'manual' AND state <> 'skipped'
                     ORDER BY scheduled_ms DESC, attempt DESC LIMIT 1",
                    &[&plugin, &job],
                )
                .await
                .map_err(backend)?
                .map(|row| LastRun {
                    scheduled_ms: row.get(0),
                    finished_ms: row.get(1),
                });
            let now: i64 = tx
                .query_one(&format!("SELECT {NOW}"), &[])
                .await
                .map_err(backend)?
                .get(0);
            let Some(due) = decide(last, now) else {
                return Ok(None);
            };
            let run = NewRun {
                plugin: plugin.into(),
                job: job.into(),
                scheduled_ms: due.scheduled_ms,
                attempt: 1,
                trigger: Trigger::Schedule,
            };
            if due.skipped > 0 {
                let skipped = NewRun {
                    attempt: 0,
                    ..run.clone()
                };
                insert(&tx, &skipped, RunState::Skipped, due.skipped).await?;
            }
            let queued = insert(&tx, &run, RunState::Queued, 0).await?;
            tx.commit().await.map_err(backend)?;
            Ok(queued)
        })
    }

    fn enqueue(&self, run: &NewRun) -> Result<Option<Run>, StoreError> {
        self.block_on(async {
            let client = self.pool.get().await.map_err(backend)?;
            insert(&client, run, RunState::Queued, 0).await
        })
    }

    fn claim(
        &self,
        host: &str,
        plugins: &[Claimable],
        lease_ms: i64,
    ) -> Result<Option<Run>, StoreError> {
        self.block_on(async {
            let mut client = self.pool.get().await.map_err(backend)?;
            let waiting: Vec<String> = client
                .query(
                    "SELECT DISTINCT plugin FROM job_runs WHERE state = 'queued'",
                    &[],
                )
                .await
                .map_err(backend)?
                .iter()
                .map(|row| row.get(0))
                .collect();
            for candidate in plugins.iter().filter(|c| waiting.contains(&c.plugin)) {
                let tx = client.transaction().await.map_err(backend)?;
                tx.execute(
                    "SELECT pg_advisory_xact_lock(hashtext('capstan-jobs-of:' || $1))",
                    &[&candidate.plugin],
                )
                .await
                .map_err(backend)?;
                let running: i64 = tx
                    .query_one(
                        "SELECT COUNT(*) FROM job_runs WHERE plugin = $1 AND state = 'running'",
                        &[&candidate.plugin],
                    )
                    .await
                    .map_err(backend)?
                    .get(0);
                if running >= i64::from(candidate.max_running) {
                    continue;
                }
                let claimed = tx
                    .query_opt(
                        &format!(
                            "UPDATE job_runs SET state = 'running', host = $2, started_ms = {NOW},
                                 lease_until_ms = {NOW} + $3, heartbeat_ms = {NOW}
                             WHERE id = (SELECT id FROM job_runs
                                         WHERE plugin = $1 AND state = 'queued'
                                         ORDER BY scheduled_ms, attempt LIMIT 1
                                         FOR UPDATE SKIP LOCKED)
                             RETURNING {COLUMNS}"
                        ),
                        &[&candidate.plugin, &host, &lease_ms],
                    )
                    .await
                    .map_err(backend)?;
                tx.commit().await.map_err(backend)?;
                if let Some(run) = one(claimed)? {
                    return Ok(Some(run));
                }
            }
            Ok(None)
        })
    }

    fn renew(
        &self,
        host: &str,
        runs: &[String],
        beats: &[(String, Option<String>)],
        lease_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        self.block_on(async {
            let client = self.pool.get().await.map_err(backend)?;
            for (id, progress) in beats {
                client
                    .execute(
                        &format!(
                            "UPDATE job_runs SET heartbeat_ms = {NOW}, progress = $3
                             WHERE id = $1 AND host = $2"
                        ),
                        &[id, &host, progress],
                    )
                    .await
                    .map_err(backend)?;
            }
            let rows = client
                .query(
                    &format!(
                        "UPDATE job_runs SET lease_until_ms = {NOW} + $3
                         WHERE id = ANY($1) AND host = $2 AND state = 'running'
                         RETURNING id, cancel_requested"
                    ),
                    &[&runs, &host, &lease_ms],
                )
                .await
                .map_err(backend)?;
            Ok(rows
                .iter()
                .filter(|row| row.get::<_, bool>(1))
                .map(|row| row.get(0))
                .collect())
        })
    }

    fn finish(
        &self,
        id: &str,
        host: &str,
        state: RunState,
        error: Option<&str>,
        call_id: &str,
    ) -> Result<Option<Run>, StoreError> {
        self.block_on(async {
            let client = self.pool.get().await.map_err(backend)?;
            let row = client
                .query_opt(
                    &format!(
                        "UPDATE job_runs SET state = $3, finished_ms = {NOW}, error = $4,
                             call_id = $5, lease_until_ms = NULL
                         WHERE id = $1 AND host = $2 AND state = 'running'
                         RETURNING {COLUMNS}"
                    ),
                    &[&id, &host, &state.as_str(), &error, &call_id],
                )
                .await
                .map_err(backend)?;
            one(row)
        })
    }

    fn reap(&self) -> Result<Vec<Run>, StoreError> {
        self.block_on(async {
            let client = self.pool.get().await.map_err(backend)?;
            let rows = client
                .query(
                    &format!(
                        "UPDATE job_runs SET state = 'abandoned', finished_ms = {NOW},
                             error = 'its host stopped renewing the lease', lease_until_ms = NULL
                         WHERE state = 'running' AND lease_until_ms < {NOW}
                         RETURNING {COLUMNS}"
                    ),
                    &[],
                )
                .await
                .map_err(backend)?;
            rows.iter().map(read).collect()
        })
    }

    fn request_cancel(&self, id: &str) -> Result<Option<Run>, StoreError> {
        self.block_on(async {
            let client = self.pool.get().await.map_err(backend)?;
            client
                .execute(
                    &format!(
                        "UPDATE job_runs SET
                             finished_ms = CASE WHEN state = 'queued' THEN {NOW} ELSE finished_ms END,
                             error = CASE WHEN state = 'queued' THEN 'cancelled before it ran'
                                     ELSE error END,
                             cancel_requested = cancel_requested OR state IN ('queued', 'running'),
                             state = CASE WHEN state = 'queued' THEN 'cancelled' ELSE state END
                         WHERE id = $1"
                    ),
                    &[&id],
                )
                .await
                .map_err(backend)?;
            let row = client
                .query_opt(&format!("SELECT {COLUMNS} FROM job_runs WHERE id = $1"), &[&id])
                .await
                .map_err(backend)?;
            one(row)
        })
    }

    fn cancel_plugin(&self, plugin: &str) -> Result<u64, StoreError> {
        self.block_on(async {
            let client = self.pool.get().await.map_err(backend)?;
            client
                .execute(
                    &format!(
                        "UPDATE job_runs SET
                             finished_ms = CASE WHEN state = 'queued' THEN {NOW} ELSE finished_ms END,
                             error = CASE WHEN state = 'queued' THEN 'cancelled: the plugin changed'
                                     ELSE error END,
                             cancel_requested = TRUE,
                             state = CASE WHEN state = 'queued' THEN 'cancelled' ELSE state END
                         WHERE plugin = $1 AND state IN ('queued', 'running')"
                    ),
                    &[&plugin],
                )
                .await
                .map_err(backend)
        })
    }

    fn runs(&self, query: &RunQuery) -> Result<Vec<Run>, StoreError> {
        self.block_on(async {
            let client = self.pool.get().await.map_err(backend)?;
            let rows = client
                .query(
                    &format!(
                        "SELECT {COLUMNS} FROM job_runs
                         WHERE ($1::text IS NULL OR plugin = $1) AND ($2::text IS NULL OR job = $2)
                           AND ($3::text IS NULL OR state = $3)
                         ORDER BY scheduled_ms DESC, attempt DESC LIMIT $4"
                    ),
                    &[
                        &query.plugin,
                        &query.job,
                        &query.state.map(RunState::as_str),
                        &i64::from(query.limit),
                    ],
                )
                .await
                .map_err(backend)?;
            rows.iter().map(read).collect()
        })
    }

    fn run(&self, id: &str) -> Result<Option<Run>, StoreError> {
        self.block_on(async {
            let client = self.pool.get().await.map_err(backend)?;
            let row = client
                .query_opt(
                    &format!("SELECT {COLUMNS} FROM job_runs WHERE id = $1"),
                    &[&id],
                )
                .await
                .map_err(backend)?;
            one(row)
        })
    }

    fn prune(&self, plugin: &str, job: &str, keep: u32) -> Result<(), StoreError> {
        self.block_on(async {
            let client = self.pool.get().await.map_err(backend)?;
            client
                .execute(
                    "DELETE FROM job_runs WHERE plugin = $1 AND job = $2
                       AND state NOT IN ('queued', 'running')
                       AND id NOT IN (SELECT id FROM job_runs WHERE plugin = $1 AND job = $2
                                      ORDER BY scheduled_ms DESC, attempt DESC LIMIT $3)",
                    &[&plugin, &job, &i64::from(keep)],
                )
                .await
                .map(drop)
                .map_err(backend)
        })
    }
}
