//! What a running job tells the host and asks it (capability `jobs`): heartbeats with
//! progress, and whether it was asked to stop. Outside a job run both are harmless.

pub use crate::bindings::scheduled::exports::capstan::plugin::jobs::RunContext;

impl RunContext {
    /// A context for tests and local runs: run `run_id`, first attempt, tick now.
    pub fn local(run_id: &str) -> Self {
        RunContext {
            run_id: run_id.to_string(),
            scheduled_for: 0,
            attempt: 1,
        }
    }
}

/// Show the run is alive, with optional progress text (the host caps it).
pub fn heartbeat(progress: Option<&str>) {
    #[cfg(target_arch = "wasm32")]
    crate::bindings::capstan::plugin::job::heartbeat(progress);
    #[cfg(not(target_arch = "wasm32"))]
    crate::testing::heartbeat(progress);
}

/// Whether the run was asked to stop (an operator's cancel, or a disable, removal or
/// upgrade of the plugin). Stop soon: the host stops a run that goes on after the
/// policy's grace period.
pub fn cancelled() -> bool {
    #[cfg(target_arch = "wasm32")]
    return crate::bindings::capstan::plugin::job::cancelled();
    #[cfg(not(target_arch = "wasm32"))]
    return crate::testing::cancelled();
}
