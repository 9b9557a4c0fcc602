//! Runs: their states, what started them, and the handle a running call shares with the
//! host (the cancel flag the plugin reads, the progress it reports, the stop the host
//! forces after the grace period).

use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Where a run is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RunState {
    /// Waiting for a host to claim it.
    Queued,
    /// A host is running it (and renewing its lease).
    Running,
    Succeeded,
    /// The plugin returned an error, or trapped.
    Failed,
    /// Cancelled before it ran, or stopped after a cancel.
    Cancelled,
    /// Stopped at its deadline.
    TimedOut,
    /// Its host stopped renewing the lease (it died or lost the database).
    Abandoned,
    /// Not a run: ticks missed while no host ran, recorded once with their count.
    Skipped,
}

impl RunState {
    /// Every state, in the order above.
    pub const ALL: [RunState; 8] = [
        RunState::Queued,
        RunState::Running,
        RunState::Succeeded,
        RunState::Failed,
        RunState::Cancelled,
        RunState::TimedOut,
        RunState::Abandoned,
        RunState::Skipped,
    ];

    /// The kebab-case name used in storage and APIs.
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Queued => "queued",
            RunState::Running => "running",
            RunState::Succeeded => "succeeded",
            RunState::Failed => "failed",
            RunState::Cancelled => "cancelled",
            RunState::TimedOut => "timed-out",
            RunState::Abandoned => "abandoned",
            RunState::Skipped => "skipped",
        }
    }

    /// Whether the run is over.
    pub fn is_final(self) -> bool {
        !matches!(self, RunState::Queued | RunState::Running)
    }

    /// Whether a retry may follow it.
    pub fn may_retry(self) -> bool {
        matches!(
            self,
            RunState::Failed | RunState::TimedOut | RunState::Abandoned
        )
    }
}

impl std::str::FromStr for RunState {
    type Err = String;

    fn from_str(name: &str) -> Result<RunState, String> {
        RunState::ALL
            .into_iter()
            .find(|state| state.as_str() == name)
            .ok_or_else(|| format!("unknown run state `{name}`"))
    }
}

impl std::fmt::Display for RunState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What made a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Trigger {
    /// Its schedule's tick.
    Schedule,
    /// An operator's "run now".
    Manual,
    /// A retry of a failed, timed-out or abandoned attempt.
    Retry,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Manual => "manual",
            Trigger::Retry => "retry",
        }
    }
}

impl std::str::FromStr for Trigger {
    type Err = String;

    fn from_str(name: &str) -> Result<Trigger, String> {
        [Trigger::Schedule, Trigger::Manual, Trigger::Retry]
            .into_iter()
            .find(|trigger| trigger.as_str() == name)
            .ok_or_else(|| format!("unknown trigger `{name}`"))
    }
}

/// Longest progress text kept from a heartbeat.
pub const MAX_PROGRESS_BYTES: usize = 1024;

/// Shared between a running call and the host that runs it.
#[derive(Debug, Default)]
pub struct RunHandle {
    /// Asked to stop (the plugin sees it through `job.cancelled()`).
    cancelled: AtomicBool,
    /// Forced to stop: the call is interrupted at its next instruction.
    stopped: AtomicBool,
    /// The latest heartbeat's progress (capped), not yet recorded.
    progress: Mutex<Option<Option<String>>>,
}

impl RunHandle {
    pub fn new() -> Arc<RunHandle> {
        Arc::new(RunHandle::default())
    }

    /// Ask the run to stop.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    /// Stop the run now, whatever it is doing in wasm.
    pub fn stop(&self) {
        self.cancel();
        self.stopped.store(true, Ordering::Relaxed);
    }

    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Relaxed)
    }

    /// A heartbeat, with its progress capped.
    pub fn beat(&self, progress: Option<String>) {
        let progress =
            progress.map(|text| crate::text::cap(&text, MAX_PROGRESS_BYTES).into_owned());
        *self.progress.lock().unwrap_or_else(|p| p.into_inner()) = Some(progress);
    }

    /// The heartbeat since the last call, if any (its progress may be none).
    pub fn take_beat(&self) -> Option<Option<String>> {
        self.progress
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }
}
