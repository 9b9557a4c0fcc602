//! Where runs live: one table shared by every host of a cluster. Each tick is decided and
//! inserted in one transaction holding a per-job lock, with `UNIQUE(plugin, job,
//! scheduled_ms, attempt)` behind it, so a tick runs once however many hosts ask; runs are
//! claimed with `FOR UPDATE SKIP LOCKED` and held by a lease the running host renews;
//! times come from the database's clock.

use super::{Due, LastRun, RunState, Trigger};
use crate::storage::StoreError;
use serde::Serialize;

/// One run as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Run {
    pub id: String,
    pub plugin: String,
    pub job: String,
    /// The tick it is for (ms since the epoch).
    pub scheduled_ms: i64,
    pub state: RunState,
    /// 1 for the first attempt at its tick.
    pub attempt: u32,
    pub trigger: Trigger,
    /// The host running (or that ran) it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heartbeat_ms: Option<i64>,
    /// The latest heartbeat's progress text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    /// Why it failed, timed out, was cancelled or abandoned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The call id its log lines carry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    /// An operator asked it to stop.
    pub cancel_requested: bool,
    /// For a `skipped` record: how many ticks were missed.
    pub skipped: u32,
}

/// A run to enqueue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRun {
    pub plugin: String,
    pub job: String,
    pub scheduled_ms: i64,
    pub attempt: u32,
    pub trigger: Trigger,
}

/// Which runs to list; unset fields do not filter.
#[derive(Debug, Clone, Default)]
pub struct RunQuery {
    pub plugin: Option<String>,
    pub job: Option<String>,
    pub state: Option<RunState>,
    /// At most this many, newest tick first.
    pub limit: u32,
}

/// A plugin whose queued runs this host may claim, and how many may run at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimable {
    pub plugin: String,
    pub max_running: u32,
}

/// The run table, in every backend that serves a cluster.
pub trait JobStore: Send + Sync {
    /// The database's clock, in ms since the epoch (every host schedules by it).
    fn now_ms(&self) -> Result<i64, StoreError>;

    /// In one transaction holding `plugin`/`job`'s lock: read its latest tick, ask `decide`
    /// (given it and the database's clock) whether a tick is due, and if so insert it as
    /// queued (preceded by a `skipped` record when ticks were missed). Returns the run
    /// inserted, if any.
    fn schedule(
        &self,
        plugin: &str,
        job: &str,
        decide: &mut dyn FnMut(Option<LastRun>, i64) -> Option<Due>,
    ) -> Result<Option<Run>, StoreError>;

    /// Insert `run` as queued; `None` if that tick and attempt already exists.
    fn enqueue(&self, run: &NewRun) -> Result<Option<Run>, StoreError>;

    /// Claim the oldest queued run of one of `plugins` whose plugin runs fewer than its
    /// `max_running` now, for `host`, leased for `lease_ms`.
    fn claim(
        &self,
        host: &str,
        plugins: &[Claimable],
        lease_ms: i64,
    ) -> Result<Option<Run>, StoreError>;

    /// Extend the leases of `host`'s running `runs` (recording heartbeats given as
    /// `(run, progress)`); returns the ids of those an operator asked to cancel.
    fn renew(
        &self,
        host: &str,
        runs: &[String],
        beats: &[(String, Option<String>)],
        lease_ms: i64,
    ) -> Result<Vec<String>, StoreError>;

    /// Record how `host`'s run `id` ended (no-op if it is no longer `host`'s running run).
    fn finish(
        &self,
        id: &str,
        host: &str,
        state: RunState,
        error: Option<&str>,
        call_id: &str,
    ) -> Result<Option<Run>, StoreError>;

    /// Mark running runs whose lease expired `abandoned`; returns them.
    fn reap(&self) -> Result<Vec<Run>, StoreError>;

    /// Ask run `id` to stop: a queued run is cancelled at once, a running one is flagged
    /// for its host. Returns the run as it is now.
    fn request_cancel(&self, id: &str) -> Result<Option<Run>, StoreError>;

    /// Cancel `plugin`'s queued runs and flag its running ones (disable, removal,
    /// upgrade); returns how many were touched.
    fn cancel_plugin(&self, plugin: &str) -> Result<u64, StoreError>;

    /// Runs matching `query`, newest tick first.
    fn runs(&self, query: &RunQuery) -> Result<Vec<Run>, StoreError>;

    /// Run `id`.
    fn run(&self, id: &str) -> Result<Option<Run>, StoreError>;

    /// Keep at most `keep` finished runs of `plugin`/`job` (the newest).
    fn prune(&self, plugin: &str, job: &str, keep: u32) -> Result<(), StoreError>;
}
