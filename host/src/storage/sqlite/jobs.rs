//! Job runs in SQLite: the one host's run history and queue. Each decision runs in a
//! `BEGIN IMMEDIATE` transaction on the one connection, so deciding and inserting a tick,
//! and counting and claiming runs, are atomic; the clock is this host's.

use super::{SqliteStore, backend};
use crate::audit::to_millis;
use crate::capability::jobs::store::Claimable;
use crate::capability::jobs::{Due, JobStore, LastRun, NewRun, Run, RunQuery, RunState, Trigger};
use crate::storage::StoreError;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use std::time::SystemTime;

const COLUMNS: &str = "id, plugin, job, scheduled_ms, state, attempt, cause, host, started_ms, \
                       finished_ms, heartbeat_ms, progress, error, call_id, cancel_requested, skipped";

fn now() -> i64 {
    to_millis(SystemTime::now())
}

fn parse<T: std::str::FromStr<Err = String>>(text: String) -> rusqlite::Result<T> {
    text.parse().map_err(|e: String| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
    })
}

fn read(row: &Row<'_>) -> rusqlite::Result<Run> {
    Ok(Run {
        id: row.get(0)?,
        plugin: row.get(1)?,
        job: row.get(2)?,
        scheduled_ms: row.get(3)?,
        state: parse(row.get(4)?)?,
        attempt: row.get(5)?,
        trigger: parse(row.get(6)?)?,
        host: row.get(7)?,
        started_ms: row.get(8)?,
        finished_ms: row.get(9)?,
        heartbeat_ms: row.get(10)?,
        progress: row.get(11)?,
        error: row.get(12)?,
        call_id: row.get(13)?,
        cancel_requested: row.get(14)?,
        skipped: row.get(15)?,
    })
}

fn by_id(conn: &Connection, id: &str) -> rusqlite::Result<Option<Run>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM job_runs WHERE id = ?1"),
        [id],
        read,
    )
    .optional()
}

/// Insert a run in `state`; None if its tick and attempt exist already.
fn insert(
    conn: &Connection,
    run: &NewRun,
    state: RunState,
    skipped: u32,
    now: i64,
) -> rusqlite::Result<Option<Run>> {
    let id = crate::secrets::random_hex(8);
    let finished = state.is_final().then_some(now);
    let inserted = conn.execute(
        "INSERT INTO job_runs (id, plugin, job, scheduled_ms, attempt, cause, state, skipped, finished_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (plugin, job, scheduled_ms, attempt) DO NOTHING",
        params![
            id,
            run.plugin,
            run.job,
            run.scheduled_ms,
            run.attempt,
            run.trigger.as_str(),
            state.as_str(),
            skipped,
            finished
        ],
    )?;
    if inserted == 0 {
        return Ok(None);
    }
    by_id(conn, &id)
}

impl JobStore for SqliteStore {
    fn now_ms(&self) -> Result<i64, StoreError> {
        Ok(now())
    }

    fn schedule(
        &self,
        plugin: &str,
        job: &str,
        decide: &mut dyn FnMut(Option<LastRun>, i64) -> Option<Due>,
    ) -> Result<Option<Run>, StoreError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let last = tx
            .query_row(
                "SELECT scheduled_ms, finished_ms FROM job_runs
                 WHERE plugin = ?1 AND job = ?2 AND cause <> 'manual' AND state <> 'skipped'
                 ORDER BY scheduled_ms DESC, attempt DESC LIMIT 1",
                params![plugin, job],
                |row| {
                    Ok(LastRun {
                        scheduled_ms: row.get(0)?,
                        finished_ms: row.get(1)?,
                    })
                },
            )
            .optional()
            .map_err(backend)?;
        let now = now();
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
            insert(&tx, &skipped, RunState::Skipped, due.skipped, now).map_err(backend)?;
        }
        let queued = insert(&tx, &run, RunState::Queued, 0, now).map_err(backend)?;
        tx.commit().map_err(backend)?;
        Ok(queued)
    }

    fn enqueue(&self, run: &NewRun) -> Result<Option<Run>, StoreError> {
        insert(&self.conn(), run, RunState::Queued, 0, now()).map_err(backend)
    }

    fn claim(
        &self,
        host: &str,
        plugins: &[Claimable],
        lease_ms: i64,
    ) -> Result<Option<Run>, StoreError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let now = now();
        let waiting: Vec<String> = {
            let mut statement = tx
                .prepare("SELECT DISTINCT plugin FROM job_runs WHERE state = 'queued'")
                .map_err(backend)?;
            let rows = statement.query_map([], |row| row.get(0)).map_err(backend)?;
            rows.collect::<rusqlite::Result<_>>().map_err(backend)?
        };
        for candidate in plugins.iter().filter(|c| waiting.contains(&c.plugin)) {
            let running: u32 = tx
                .query_row(
                    "SELECT COUNT(*) FROM job_runs WHERE plugin = ?1 AND state = 'running'",
                    [&candidate.plugin],
                    |row| row.get(0),
                )
                .map_err(backend)?;
            if running >= candidate.max_running {
                continue;
            }
            let claimed = tx
                .query_row(
                    &format!(
                        "UPDATE job_runs SET state = 'running', host = ?2, started_ms = ?3,
                             lease_until_ms = ?4, heartbeat_ms = ?3
                         WHERE id = (SELECT id FROM job_runs WHERE plugin = ?1 AND state = 'queued'
                                     ORDER BY scheduled_ms, attempt LIMIT 1)
                         RETURNING {COLUMNS}"
                    ),
                    params![candidate.plugin, host, now, now + lease_ms],
                    read,
                )
                .optional()
                .map_err(backend)?;
            if let Some(run) = claimed {
                tx.commit().map_err(backend)?;
                return Ok(Some(run));
            }
        }
        Ok(None)
    }

    fn renew(
        &self,
        host: &str,
        runs: &[String],
        beats: &[(String, Option<String>)],
        lease_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(backend)?;
        let now = now();
        let mut cancel = Vec::new();
        for id in runs {
            let flagged: Option<bool> = tx
                .query_row(
                    "UPDATE job_runs SET lease_until_ms = ?3
                     WHERE id = ?1 AND host = ?2 AND state = 'running'
                     RETURNING cancel_requested",
                    params![id, host, now + lease_ms],
                    |row| row.get(0),
                )
                .optional()
                .map_err(backend)?;
            if flagged == Some(true) {
                cancel.push(id.clone());
            }
        }
        for (id, progress) in beats {
            tx.execute(
                "UPDATE job_runs SET heartbeat_ms = ?3, progress = ?4 WHERE id = ?1 AND host = ?2",
                params![id, host, now, progress],
            )
            .map_err(backend)?;
        }
        tx.commit().map_err(backend)?;
        Ok(cancel)
    }

    fn finish(
        &self,
        id: &str,
        host: &str,
        state: RunState,
        error: Option<&str>,
        call_id: &str,
    ) -> Result<Option<Run>, StoreError> {
        self.conn()
            .query_row(
                &format!(
                    "UPDATE job_runs SET state = ?3, finished_ms = ?4, error = ?5, call_id = ?6,
                         lease_until_ms = NULL
                     WHERE id = ?1 AND host = ?2 AND state = 'running'
                     RETURNING {COLUMNS}"
                ),
                params![id, host, state.as_str(), now(), error, call_id],
                read,
            )
            .optional()
            .map_err(backend)
    }

    fn reap(&self) -> Result<Vec<Run>, StoreError> {
        let conn = self.conn();
        let mut statement = conn
            .prepare(&format!(
                "UPDATE job_runs SET state = 'abandoned', finished_ms = ?1,
                     error = 'its host stopped renewing the lease', lease_until_ms = NULL
                 WHERE state = 'running' AND lease_until_ms < ?1
                 RETURNING {COLUMNS}"
            ))
            .map_err(backend)?;
        let rows = statement.query_map([now()], read).map_err(backend)?;
        rows.collect::<rusqlite::Result<_>>().map_err(backend)
    }

    fn request_cancel(&self, id: &str) -> Result<Option<Run>, StoreError> {
        let conn = self.conn();
        conn.execute(
            "UPDATE job_runs SET
                 finished_ms = CASE WHEN state = 'queued' THEN ?2 ELSE finished_ms END,
                 error = CASE WHEN state = 'queued' THEN 'cancelled before it ran' ELSE error END,
                 cancel_requested = CASE WHEN state IN ('queued', 'running') THEN 1 ELSE cancel_requested END,
                 state = CASE WHEN state = 'queued' THEN 'cancelled' ELSE state END
             WHERE id = ?1",
            params![id, now()],
        )
        .map_err(backend)?;
        by_id(&conn, id).map_err(backend)
    }

    fn cancel_plugin(&self, plugin: &str) -> Result<u64, StoreError> {
        self.conn()
            .execute(
                "UPDATE job_runs SET
                     finished_ms = CASE WHEN state = 'queued' THEN ?2 ELSE finished_ms END,
                     error = CASE WHEN state = 'queued' THEN 'cancelled: the plugin changed' ELSE error END,
                     cancel_requested = 1,
                     state = CASE WHEN state = 'queued' THEN 'cancelled' ELSE state END
                 WHERE plugin = ?1 AND state IN ('queued', 'running')",
                params![plugin, now()],
            )
            .map(|n| n as u64)
            .map_err(backend)
    }

    fn runs(&self, query: &RunQuery) -> Result<Vec<Run>, StoreError> {
        let conn = self.conn();
        let mut statement = conn
            .prepare(&format!(
                "SELECT {COLUMNS} FROM job_runs
                 WHERE (?1 IS NULL OR plugin = ?1) AND (?2 IS NULL OR job = ?2)
                   AND (?3 IS NULL OR state = ?3)
                 ORDER BY scheduled_ms DESC, attempt DESC LIMIT ?4"
            ))
            .map_err(backend)?;
        let rows = statement
            .query_map(
                params![
                    query.plugin,
                    query.job,
                    query.state.map(RunState::as_str),
                    query.limit
                ],
                read,
            )
            .map_err(backend)?;
        rows.collect::<rusqlite::Result<_>>().map_err(backend)
    }

    fn run(&self, id: &str) -> Result<Option<Run>, StoreError> {
        by_id(&self.conn(), id).map_err(backend)
    }

    fn prune(&self, plugin: &str, job: &str, keep: u32) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "DELETE FROM job_runs WHERE plugin = ?1 AND job = ?2
                   AND state NOT IN ('queued', 'running')
                   AND id NOT IN (SELECT id FROM job_runs WHERE plugin = ?1 AND job = ?2
                                  ORDER BY scheduled_ms DESC, attempt DESC LIMIT ?3)",
                params![plugin, job, keep],
            )
            .map(drop)
            .map_err(backend)
    }
}
