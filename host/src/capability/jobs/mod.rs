//! `jobs`: scheduled work. The manifest names each job and its schedule
//! (`[capabilities.jobs.<name>]`, cron or every); the policy bounds them (shortest gap,
//! runtime, concurrency, cancel grace, history kept) and is deny-by-default. The plugin
//! exports `jobs` (the host calls `run`) and may import `job` (heartbeat, cancelled),
//! which is linked to its real host only when the capability is granted.

mod deny;
mod host;
pub mod run;
pub mod schedule;
pub mod store;

pub use host::JobHost;
pub use run::{RunHandle, RunState, Trigger};
pub use schedule::{Due, LastRun, Schedule};
pub use store::{JobStore, NewRun, Run, RunQuery};

use super::{CallScope, Capability, CapabilityId, CapabilityInfo, Decision, Direction, Import};
use crate::policy::period::{Bounds, TEN_YEARS, as_text};
use regex::Regex;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::LazyLock;
use std::time::Duration;
use wasmtime::component::{HasData, Linker};

/// Job names: `^[a-z][a-z0-9_-]{0,62}$`.
static JOB_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new("^[a-z][a-z0-9_-]{0,62}$").expect("valid regex"));

/// A job's deadline when neither it nor the policy sets one.
pub const DEFAULT_MAX_RUNTIME: Duration = Duration::from_secs(60);
/// The deadlines a job's `timeout` and the policy's `max_runtime` may set: 1 ms to 24 h.
pub const RUNTIMES: Bounds = Bounds::new(Duration::from_millis(1), Duration::from_secs(24 * 3600));
/// How long a cancelled run may keep going before the host stops it, by default.
pub const DEFAULT_CANCEL_GRACE: Duration = Duration::from_secs(5);
/// The cancel graces a policy may set: none to ten years (a run ends at its deadline, 24 h
/// at most, whatever the grace).
pub const CANCEL_GRACES: Bounds = Bounds::new(Duration::ZERO, TEN_YEARS);
/// The shortest gaps a policy may require between a job's runs: none to ten years.
pub const MIN_INTERVALS: Bounds = Bounds::new(Duration::ZERO, TEN_YEARS);
/// Runs kept per job, by default (older finished runs are deleted).
pub const DEFAULT_RETENTION: u32 = 1000;
/// Most retries a job may ask for.
pub const MAX_RETRY: u32 = 10;

/// The `jobs` capability.
pub struct Jobs;

/// Manifest `[capabilities.jobs]`: one table per job, by name.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(transparent)]
pub struct Request {
    pub jobs: BTreeMap<String, JobSpec>,
}

/// Manifest `[capabilities.jobs.<name>]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// 5-field UTC cron expression, e.g. `*/5 * * * *`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// Gap from the end of one run to the start of the next, e.g. `30s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<String>,
    /// The job's own deadline (the policy's `max_runtime` caps it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Attempts after a failed, timed-out or abandoned run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<u32>,
}

/// Policy `[…capabilities.jobs]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Allowed {
    /// Shortest gap a job's schedule may have (default 1s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_interval: Option<String>,
    /// A job's deadline at most (default 60s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_runtime: Option<String>,
    /// Runs of this plugin at once across the cluster (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent_runs: Option<u32>,
    /// How long a cancelled run may go on before it is stopped (default 5s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_grace: Option<String>,
    /// Runs kept per job (default 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<u32>,
}

/// One granted job.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Job {
    pub schedule: Schedule,
    /// Each run's deadline: the job's `timeout` capped by the policy's `max_runtime`.
    #[serde(serialize_with = "as_text")]
    pub deadline: Duration,
    pub retry: u32,
}

/// What the host enforces for a plugin's jobs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Grant {
    pub jobs: BTreeMap<String, Job>,
    pub max_concurrent_runs: u32,
    #[serde(serialize_with = "as_text")]
    pub cancel_grace: Duration,
    pub retention: u32,
}

fn schedule_of(name: &str, spec: &JobSpec) -> Result<Schedule, String> {
    match (&spec.cron, &spec.every) {
        (Some(cron), None) => Schedule::cron(cron),
        (None, Some(every)) => Schedule::every(every),
        _ => Err("give exactly one of `cron` and `every`".into()),
    }
    .map_err(|problem| format!("job `{name}`: {problem}"))
}

impl Allowed {
    fn max_runtime(&self) -> Result<Duration, String> {
        RUNTIMES.parse_or(
            "max_runtime",
            self.max_runtime.as_deref(),
            DEFAULT_MAX_RUNTIME,
        )
    }
}

impl Capability for Jobs {
    const INFO: CapabilityInfo = CapabilityInfo {
        id: CapabilityId::Jobs,
        name: "jobs",
        key: "jobs",
        interface: "job",
        standard: &[],
        exports: &["jobs"],
        direction: Direction::Import,
    };

    type Request = Request;
    type Allowed = Allowed;
    type Grant = Grant;

    fn grant(request: &Request, allowed: &Allowed) -> Result<Grant, String> {
        let min_interval = MIN_INTERVALS.parse_or(
            "min_interval",
            allowed.min_interval.as_deref(),
            schedule::EVERY.shortest,
        )?;
        let max_runtime = allowed.max_runtime()?;
        let mut jobs = BTreeMap::new();
        for (name, spec) in &request.jobs {
            let schedule = schedule_of(name, spec)?;
            if schedule.shortest_gap() < min_interval {
                return Err(format!(
                    "job `{name}` runs more often than the policy's min_interval of {}",
                    humantime::format_duration(min_interval)
                ));
            }
            let timeout = spec
                .timeout
                .as_deref()
                .map(|t| RUNTIMES.parse_field("timeout", t))
                .transpose()?;
            jobs.insert(
                name.clone(),
                Job {
                    schedule,
                    deadline: timeout.map_or(max_runtime, |t| t.min(max_runtime)),
                    retry: spec.retry.unwrap_or(0),
                },
            );
        }
        Ok(Grant {
            jobs,
            max_concurrent_runs: allowed.max_concurrent_runs.unwrap_or(1),
            cancel_grace: CANCEL_GRACES.parse_or(
                "cancel_grace",
                allowed.cancel_grace.as_deref(),
                DEFAULT_CANCEL_GRACE,
            )?,
            retention: allowed.retention.unwrap_or(DEFAULT_RETENTION),
        })
    }

    fn check_request(request: &Request) -> Result<(), String> {
        for (name, spec) in &request.jobs {
            if !JOB_NAME.is_match(name) {
                return Err(format!(
                    "job name `{}` must match ^[a-z][a-z0-9_-]{{0,62}}$",
                    crate::text::shown_name(name)
                ));
            }
            schedule_of(name, spec)?;
            if let Some(timeout) = &spec.timeout {
                RUNTIMES
                    .parse_field("timeout", timeout)
                    .map_err(|problem| format!("job `{name}`: {problem}"))?;
            }
            if spec.retry.is_some_and(|retry| retry > MAX_RETRY) {
                return Err(format!("job `{name}`: `retry` is at most {MAX_RETRY}"));
            }
        }
        Ok(())
    }

    fn check_allowed(allowed: &Allowed) -> Result<(), String> {
        if let Some(min) = &allowed.min_interval {
            MIN_INTERVALS.parse_field("min_interval", min)?;
        }
        allowed.max_runtime()?;
        if let Some(grace) = &allowed.cancel_grace {
            CANCEL_GRACES.parse_field("cancel_grace", grace)?;
        }
        if allowed
            .max_concurrent_runs
            .is_some_and(|n| !(1..=256).contains(&n))
        {
            return Err("`max_concurrent_runs` must be 1..=256".into());
        }
        if allowed
            .retention
            .is_some_and(|n| !(1..=1_000_000).contains(&n))
        {
            return Err("`retention` must be 1..=1000000".into());
        }
        Ok(())
    }
}

impl Import for Jobs {
    type View<'a> = JobHost<'a>;

    fn link<T: 'static>(
        linker: &mut Linker<T>,
        decision: &Decision<Grant>,
        view: fn(&mut T) -> JobHost<'_>,
        scope: fn(&mut T) -> CallScope<'_>,
    ) -> wasmtime::Result<()> {
        use crate::bindings::capstan::plugin::job::add_to_linker;
        match decision {
            Decision::Granted { .. } => add_to_linker::<T, Jobs>(linker, view),
            _ => add_to_linker::<T, deny::Withheld>(linker, scope),
        }
    }
}

impl HasData for Jobs {
    type Data<'a> = JobHost<'a>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capability::{Decision, Requested};

    fn decide(manifest: &str, policy: &str) -> Decision<Grant> {
        crate::capability::scope::testing::grants(manifest, policy).jobs
    }

    const MANIFEST: &str = "[jobs.sync]\nevery = \"30s\"\ntimeout = \"2m\"\nretry = 2\n\
                            [jobs.report]\ncron = \"0 3 * * *\"\n";

    #[test]
    fn jobs_are_not_granted_by_default() {
        assert!(matches!(decide(MANIFEST, ""), Decision::Denied { .. }));
    }

    #[test]
    fn a_grant_caps_each_deadline_at_the_policys_max_runtime() {
        let decision = decide(MANIFEST, "[jobs]\nmax_runtime = \"90s\"\n");
        let grant = decision.granted().unwrap();
        assert_eq!(grant.jobs["sync"].deadline, Duration::from_secs(90));
        assert_eq!(grant.jobs["sync"].retry, 2);
        assert_eq!(grant.jobs["report"].deadline, Duration::from_secs(90));
        assert_eq!(grant.cancel_grace, DEFAULT_CANCEL_GRACE);
        let default = decide(MANIFEST, "[jobs]\n");
        assert_eq!(
            default.granted().unwrap().jobs["report"].deadline,
            DEFAULT_MAX_RUNTIME
        );
    }

    #[test]
    fn a_job_more_frequent_than_the_policy_allows_is_withheld_naming_it() {
        let decision = decide(MANIFEST, "[jobs]\nmin_interval = \"1m\"\n");
        match decision {
            Decision::Denied { reason } => assert!(reason.contains("`sync`"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn invalid_schedules_are_refused_in_the_manifest_naming_the_job() {
        for (manifest, needle) in [
            ("[jobs.a]\ncron = \"* * * * * *\"\n", "job `a`"),
            ("[jobs.b]\nevery = \"0s\"\n", "job `b`"),
            (
                "[jobs.c]\ncron = \"* * * * *\"\nevery = \"1m\"\n",
                "exactly one",
            ),
            ("[jobs.d]\n", "exactly one"),
            ("[jobs.Bad]\nevery = \"1m\"\n", "job name `Bad`"),
            ("[jobs.e]\nevery = \"1m\"\nretry = 99\n", "`retry`"),
            ("[jobs.f]\nevery = \"1m\"\ntimeout = \"2d\"\n", "`timeout`"),
        ] {
            let requested: Requested = toml::from_str(manifest).unwrap();
            let problem = requested.check().unwrap_err();
            assert!(problem.contains(needle), "{manifest}: {problem}");
        }
        let duplicate = toml::from_str::<Requested>("[jobs.a]\nevery = \"1m\"\n[jobs.a]\n");
        assert!(duplicate.unwrap_err().to_string().contains("duplicate"));
        let unknown = toml::from_str::<Requested>("[jobs.a]\nevery = \"1m\"\nwhen = 3\n");
        assert!(
            unknown
                .unwrap_err()
                .to_string()
                .contains("unknown field `when`")
        );
    }

    #[test]
    fn policy_ranges_are_checked() {
        for (policy, needle) in [
            (
                "max_runtime = \"3d\"",
                "`max_runtime` = `3d` is not a duration from 1ms to 24h",
            ),
            ("max_concurrent_runs = 0", "`max_concurrent_runs`"),
            (
                "cancel_grace = \"later\"",
                "`cancel_grace` = `later` is not a duration",
            ),
            (
                "cancel_grace = \"11y\"",
                "`cancel_grace` = `11y` is not a duration from 0ms to 10y",
            ),
            (
                "min_interval = \"-1s\"",
                "`min_interval` = `-1s` is not a duration from 0ms to 10y",
            ),
            ("min_interval = \"20y\"", "`min_interval` = `20y`"),
        ] {
            let text = format!("[defaults.capabilities.jobs]\n{policy}\n");
            let error = crate::policy::Policy::parse(&text).unwrap_err().to_string();
            assert!(error.contains(needle), "{policy}: {error}");
        }
        for bounds in [
            "max_runtime = \"24h\"\ncancel_grace = \"0s\"\nmin_interval = \"10y\"",
            "max_runtime = \"1ms\"\ncancel_grace = \"10y\"\nmin_interval = \"0s\"",
        ] {
            let text = format!("[defaults.capabilities.jobs]\n{bounds}\n");
            assert!(crate::policy::Policy::parse(&text).is_ok(), "{bounds}");
        }
    }
}
