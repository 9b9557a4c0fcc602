//! The job scheduler of one host. Every [`TICK`] it renews the leases of the runs it holds
//! (learning which an operator asked to cancel), stops cancelled runs that outlive the
//! grace period, marks runs whose host stopped renewing `abandoned` (queueing a retry if
//! the job has one), queues the ticks that are due (each decided once across the cluster,
//! see [`JobStore::schedule`]), and claims queued runs while the plugin has call slots and
//! its `max_concurrent_runs` allows. Each run gets a fresh instance on its own thread under
//! the job's deadline; its outcome, duration and lag are recorded and counted.

use crate::audit::{AuditEvent, AuditKind};
use crate::capability::jobs::Schedule;
use crate::capability::jobs::store::Claimable;
use crate::capability::jobs::{
    Grant, Job, JobStore, LastRun, NewRun, Run, RunHandle, RunState, Trigger,
};
use crate::error::InvokeError;
use crate::runtime::{Plugin, RunContext, next_call_id};
use crate::server::AppState;
use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How often the scheduler looks at its runs (leases, cancels); it also wakes when a
/// schedule may be due and when one of its runs ends.
pub const TICK: Duration = Duration::from_millis(250);
/// How long a claimed run is held without renewal before other hosts call it abandoned.
pub const LEASE: Duration = Duration::from_secs(5);
/// How often expired leases are looked for.
const REAP_EVERY: Duration = Duration::from_secs(1);

/// A run this host is running.
struct Active {
    plugin: String,
    /// The build it runs, to stop it when the plugin is upgraded.
    sha256: String,
    handle: Arc<RunHandle>,
    grace: Duration,
    /// When this host learnt of the cancel.
    cancelled_at: Option<Instant>,
}

/// When to ask the store about a job again.
struct Tracked {
    sha256: String,
    /// The time the schedule counts from when the job has no run yet (the database's
    /// clock when this host first saw this build's job).
    anchor_ms: i64,
    next_check: Instant,
}

/// One host's scheduler.
pub struct Scheduler {
    app: Arc<AppState>,
    store: Arc<dyn JobStore>,
    host: String,
    active: Mutex<HashMap<String, Active>>,
    tracked: Mutex<HashMap<(String, String), Tracked>>,
    /// Set (and signalled) to wake the loop before its tick: a run ended.
    wake: (Mutex<bool>, Condvar),
}

impl Scheduler {
    /// Start scheduling on a thread of its own until `app.shutdown` is cancelled.
    pub fn start(app: Arc<AppState>) -> anyhow::Result<Arc<Scheduler>> {
        let scheduler = Arc::new(Scheduler {
            store: app.jobs.clone(),
            host: app.host_id.clone(),
            app,
            active: Mutex::new(HashMap::new()),
            tracked: Mutex::new(HashMap::new()),
            wake: (Mutex::new(false), Condvar::new()),
        });
        let looping = scheduler.clone();
        std::thread::Builder::new()
            .name("capstan-scheduler".into())
            .spawn(move || looping.run())?;
        Ok(scheduler)
    }

    fn run(self: Arc<Self>) {
        let mut changes = self.app.registry.watch_changes();
        let mut last_reap = Instant::now();
        while !self.app.shutdown.is_cancelled() {
            let started = Instant::now();
            if changes.has_changed().unwrap_or(false) {
                changes.borrow_and_update();
                self.stop_changed_plugins();
            }
            self.renew();
            if last_reap.elapsed() >= REAP_EVERY {
                last_reap = Instant::now();
                self.reap();
            }
            self.schedule_due();
            self.claim_and_start();
            self.sleep(TICK.saturating_sub(started.elapsed()));
        }
    }

    /// Wait at most `most`, less if a schedule's next check falls earlier or a run ends.
    fn sleep(&self, most: Duration) {
        let earliest = self
            .tracked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .map(|t| t.next_check.saturating_duration_since(Instant::now()))
            .min()
            .unwrap_or(most);
        let (woken, signal) = &self.wake;
        let guard = woken.lock().unwrap_or_else(|p| p.into_inner());
        let (mut guard, _) = signal
            .wait_timeout_while(guard, most.min(earliest), |woken| !*woken)
            .unwrap_or_else(|p| p.into_inner());
        *guard = false;
    }

    /// Wake the loop now.
    fn nudge(&self) {
        let (woken, signal) = &self.wake;
        *woken.lock().unwrap_or_else(|p| p.into_inner()) = true;
        signal.notify_one();
    }

    fn lock_active(&self) -> std::sync::MutexGuard<'_, HashMap<String, Active>> {
        self.active.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Plugins that run jobs here now, with their grants.
    fn serving(&self) -> Vec<(Arc<Plugin>, Grant)> {
        self.app
            .registry
            .job_servers()
            .into_iter()
            .filter_map(|plugin| {
                let grant = plugin.admission().grants.jobs.granted()?.clone();
                Some((plugin, grant))
            })
            .collect()
    }

    /// Stop (after their grace) the runs of plugins that no longer run jobs here, or run
    /// another build now.
    fn stop_changed_plugins(&self) {
        let serving: HashMap<String, String> = self
            .serving()
            .into_iter()
            .map(|(plugin, _)| (plugin.id().to_string(), plugin.admission().sha256.clone()))
            .collect();
        let mut active = self.lock_active();
        for run in active.values_mut() {
            if serving.get(&run.plugin) != Some(&run.sha256) && run.cancelled_at.is_none() {
                run.handle.cancel();
                run.cancelled_at = Some(Instant::now());
            }
        }
    }

    /// Renew the leases of this host's runs, record their heartbeats, pass on cancels and
    /// stop runs still going after their grace.
    fn renew(&self) {
        let (ids, beats): (Vec<String>, Vec<(String, Option<String>)>) = {
            let active = self.lock_active();
            let ids = active.keys().cloned().collect();
            let beats = active
                .iter()
                .filter_map(|(id, run)| Some((id.clone(), run.handle.take_beat()?)))
                .collect();
            (ids, beats)
        };
        if ids.is_empty() {
            return;
        }
        let lease_ms = LEASE.as_millis() as i64;
        match self.store.renew(&self.host, &ids, &beats, lease_ms) {
            Ok(cancelled) => {
                let mut active = self.lock_active();
                for id in cancelled {
                    if let Some(run) = active.get_mut(&id)
                        && run.cancelled_at.is_none()
                    {
                        run.handle.cancel();
                        run.cancelled_at = Some(Instant::now());
                    }
                }
            }
            Err(error) => tracing::warn!("renewing job leases failed: {error}"),
        }
        for run in self.lock_active().values() {
            if run.cancelled_at.is_some_and(|at| at.elapsed() >= run.grace) {
                run.handle.stop();
            }
        }
    }

    /// Mark runs whose host vanished `abandoned`, and queue their retries.
    fn reap(&self) {
        match self.store.reap() {
            Ok(abandoned) => {
                let serving = self.serving();
                for run in abandoned {
                    self.app
                        .metrics
                        .observe_run(&run.plugin, &run.job, RunState::Abandoned);
                    let job = serving
                        .iter()
                        .find(|(plugin, _)| plugin.id() == run.plugin)
                        .and_then(|(_, grant)| grant.jobs.get(&run.job));
                    if let Some(job) = job {
                        self.retry(&run, job);
                    }
                }
            }
            Err(error) => tracing::warn!("looking for abandoned job runs failed: {error}"),
        }
    }

    /// Queue another attempt of `run` if its job allows one.
    fn retry(&self, run: &Run, job: &Job) {
        if run.attempt > job.retry {
            return;
        }
        let again = NewRun {
            plugin: run.plugin.clone(),
            job: run.job.clone(),
            scheduled_ms: run.scheduled_ms,
            attempt: run.attempt + 1,
            trigger: Trigger::Retry,
        };
        if let Err(error) = self.store.enqueue(&again) {
            tracing::warn!(plugin = %run.plugin, job = %run.job, "queueing a retry failed: {error}");
        }
    }

    /// Queue every tick that is due, asking the store only about jobs that may be due.
    fn schedule_due(&self) {
        for (plugin, grant) in self.serving() {
            let sha256 = &plugin.admission().sha256;
            for (name, job) in &grant.jobs {
                let key = (plugin.id().to_string(), name.clone());
                let anchor_ms = {
                    let mut tracked = self.tracked.lock().unwrap_or_else(|p| p.into_inner());
                    let now = Instant::now();
                    match tracked.get(&key) {
                        Some(t) if t.sha256 == *sha256 && t.next_check > now => continue,
                        Some(t) if t.sha256 == *sha256 => t.anchor_ms,
                        _ => {
                            let Ok(anchor_ms) = self.store.now_ms() else {
                                continue;
                            };
                            tracked.insert(
                                key.clone(),
                                Tracked {
                                    sha256: sha256.clone(),
                                    anchor_ms,
                                    next_check: now,
                                },
                            );
                            anchor_ms
                        }
                    }
                };
                let mut seen: Option<(Option<LastRun>, i64)> = None;
                let decided = self.store.schedule(plugin.id(), name, &mut |last, now_ms| {
                    seen = Some((last, now_ms));
                    job.schedule.due(last, anchor_ms, now_ms)
                });
                if let Err(error) = &decided {
                    tracing::warn!(plugin = %plugin.id(), job = %name, "scheduling failed: {error}");
                }
                let wait = match (decided, seen) {
                    (Ok(Some(_)), _) => TICK,
                    (_, Some((last, now_ms))) => {
                        match job.schedule.next_after(last, anchor_ms, now_ms) {
                            Some(next) => {
                                Duration::from_millis(u64::try_from(next - now_ms).unwrap_or(0))
                                    .clamp(Duration::from_millis(5), Duration::from_secs(30))
                            }
                            None => TICK,
                        }
                    }
                    _ => Duration::from_secs(1),
                };
                if let Some(tracked) = self
                    .tracked
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get_mut(&key)
                {
                    tracked.next_check = Instant::now() + wait;
                }
            }
        }
    }

    /// Claim and start queued runs while their plugins have call slots.
    fn claim_and_start(self: &Arc<Self>) {
        let serving = self.serving();
        loop {
            let mut slots = HashMap::new();
            let claimable: Vec<Claimable> = serving
                .iter()
                .filter_map(|(plugin, grant)| {
                    let slot = self.app.slots.try_take(plugin.id(), plugin.caps()).ok()?;
                    slots.insert(plugin.id().to_string(), slot);
                    Some(Claimable {
                        plugin: plugin.id().to_string(),
                        max_running: grant.max_concurrent_runs,
                    })
                })
                .collect();
            if claimable.is_empty() {
                return;
            }
            let claimed = match self
                .store
                .claim(&self.host, &claimable, LEASE.as_millis() as i64)
            {
                Ok(Some(run)) => run,
                Ok(None) => return,
                Err(error) => {
                    tracing::warn!("claiming a job run failed: {error}");
                    return;
                }
            };
            let Some((plugin, grant)) = serving.iter().find(|(p, _)| p.id() == claimed.plugin)
            else {
                continue;
            };
            let slot = slots.remove(&claimed.plugin);
            self.launch(claimed, plugin.clone(), grant, slot);
        }
    }

    /// Run `run` on a thread of its own, holding `slot` until it ends.
    fn launch(
        self: &Arc<Self>,
        run: Run,
        plugin: Arc<Plugin>,
        grant: &Grant,
        slot: Option<crate::slots::Slot>,
    ) {
        let Some(job) = grant.jobs.get(&run.job).cloned() else {
            let _ = self.store.finish(
                &run.id,
                &self.host,
                RunState::Cancelled,
                Some("the plugin's current version has no such job"),
                "-",
            );
            return;
        };
        let handle = RunHandle::new();
        self.lock_active().insert(
            run.id.clone(),
            Active {
                plugin: run.plugin.clone(),
                sha256: plugin.admission().sha256.clone(),
                handle: handle.clone(),
                grace: grant.cancel_grace,
                cancelled_at: None,
            },
        );
        if let (Trigger::Schedule, Some(started)) = (run.trigger, run.started_ms) {
            self.app.metrics.observe_job_lag(Duration::from_millis(
                u64::try_from(started - run.scheduled_ms).unwrap_or(0),
            ));
        }
        let scheduler = self.clone();
        let retention = grant.retention;
        let spawned = std::thread::Builder::new()
            .name("capstan-job".into())
            .spawn(move || {
                let _slot = slot;
                scheduler.execute(run, &plugin, &job, handle, retention);
            });
        if let Err(error) = spawned {
            tracing::error!("cannot start a job thread: {error}");
        }
    }

    fn execute(
        &self,
        run: Run,
        plugin: &Plugin,
        job: &Job,
        handle: Arc<RunHandle>,
        retention: u32,
    ) {
        let call_id = next_call_id();
        let context = RunContext {
            run_id: run.id.clone(),
            scheduled_for: u64::try_from(run.scheduled_ms).unwrap_or(0),
            attempt: run.attempt,
        };
        let started = Instant::now();
        let outcome = plugin.run_job(
            &run.job,
            &context,
            handle.clone(),
            job.deadline,
            call_id.clone(),
        );
        let (state, error) = if handle.is_stopped() {
            (
                RunState::Cancelled,
                Some("stopped: still running after the cancel grace".to_string()),
            )
        } else if handle.is_cancelled() {
            (RunState::Cancelled, Some("cancelled".to_string()))
        } else {
            match outcome {
                Ok(Ok(())) => (RunState::Succeeded, None),
                Ok(Err(error)) => (RunState::Failed, Some(crate::wit_error::describe(&error))),
                Err(InvokeError::Timeout { deadline_ms }) => (
                    RunState::TimedOut,
                    Some(format!("ran past its deadline of {deadline_ms} ms")),
                ),
                Err(error) => (RunState::Failed, Some(error.to_string())),
            }
        };
        self.lock_active().remove(&run.id);
        self.app.metrics.observe_run(&run.plugin, &run.job, state);
        self.app
            .metrics
            .observe_run_duration(&run.plugin, &run.job, started.elapsed());
        match self
            .store
            .finish(&run.id, &self.host, state, error.as_deref(), &call_id)
        {
            Ok(Some(finished)) if state.may_retry() => self.retry(&finished, job),
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(run = %run.id, "recording the end of a run failed: {error}")
            }
        }
        if let Err(error) = self.store.prune(&run.plugin, &run.job, retention) {
            tracing::warn!("pruning the run history failed: {error}");
        }
        // An `every` job is due one gap after this end: check then, not a tick later.
        if let Schedule::Every(gap) = &job.schedule
            && let Some(tracked) = self
                .tracked
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_mut(&(run.plugin.clone(), run.job.clone()))
        {
            tracked.next_check = Instant::now() + *gap;
        }
        self.nudge();
    }

    /// Queue a run of `plugin`'s job `job` now (an operator's "run now"), audited.
    pub fn run_now(
        app: &AppState,
        plugin: &str,
        job: &str,
    ) -> Result<Option<Run>, crate::storage::StoreError> {
        let now = app.jobs.now_ms()?;
        let run = app.jobs.enqueue(&NewRun {
            plugin: plugin.into(),
            job: job.into(),
            scheduled_ms: now,
            attempt: 1,
            trigger: Trigger::Manual,
        })?;
        if let Some(run) = &run {
            app.registry
                .runtime()
                .services()
                .audit
                .record(AuditEvent::new(
                    plugin,
                    AuditKind::JobControl,
                    Some(crate::capability::CapabilityId::Jobs),
                    format!("run {} of job {job} started by an operator", run.id),
                ));
        }
        Ok(run)
    }
}
