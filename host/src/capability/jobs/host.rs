//! Host side of the WIT `job` interface: a running job's heartbeat and cancel flag. In a
//! call that is not a job run (a route, a tool) both do nothing.

use super::RunHandle;
use crate::bindings::capstan::plugin::job::Host;

/// The `job` interface, seen from one call.
pub struct JobHost<'a> {
    /// The run this call is, if it is one.
    pub run: Option<&'a RunHandle>,
}

impl Host for JobHost<'_> {
    fn heartbeat(&mut self, progress: Option<String>) {
        if let Some(run) = self.run {
            run.beat(progress);
        }
    }

    fn cancelled(&mut self) -> bool {
        self.run.is_some_and(RunHandle::is_cancelled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_sees_its_cancel_and_reports_capped_progress() {
        let run = RunHandle::new();
        let mut host = JobHost { run: Some(&run) };
        assert!(!host.cancelled());
        host.heartbeat(Some("x".repeat(5000)));
        let progress = run.take_beat().unwrap().unwrap();
        assert!(
            progress.len() < 1100 && progress.contains("truncated"),
            "{progress}"
        );
        assert_eq!(run.take_beat(), None, "each beat is taken once");
        run.cancel();
        assert!(host.cancelled());
        assert!(!run.is_stopped(), "a cancel is a request, not a stop");
    }

    #[test]
    fn outside_a_run_nothing_happens() {
        let mut host = JobHost { run: None };
        host.heartbeat(Some("ignored".into()));
        assert!(!host.cancelled());
    }
}
