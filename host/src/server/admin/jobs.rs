//! `/admin/v1/plugins/{id}/jobs` and `/admin/v1/runs`: a plugin's schedules, running a
//! job now, the run history (with each run's log lines), and cancelling a run (on
//! whichever host runs it: the flag reaches it within a scheduler tick).

use super::{ApiQuery, PluginId};
use crate::audit::{AuditEvent, AuditKind};
use crate::capability::CapabilityId;
use crate::capability::jobs::{LastRun, Run, RunQuery, RunState, Schedule};
use crate::capability::log::LogQuery;
use crate::server::error::{ApiError, ErrorBody};
use crate::server::{AppState, blocking};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Runs a list returns unless it asks for another number.
const DEFAULT_LIMIT: u32 = 100;
/// Log lines shown with a run.
const RUN_LOG_LINES: u32 = 1000;

/// One job of a plugin as operators see it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct JobInfo {
    pub name: String,
    /// `{"cron": "*/5 * * * *"}` or `{"every": "30s"}`.
    #[schema(value_type = Object)]
    pub schedule: serde_json::Value,
    /// Whether the policy grants the plugin its jobs.
    pub granted: bool,
    /// Why not, when not granted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Each run's deadline in ms, when granted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<u64>,
    pub retry: u32,
    /// When the next tick falls (ms since the epoch), if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_run_ms: Option<i64>,
    /// Its latest run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_run: Option<Run>,
}

/// Path naming a plugin's job.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct JobPath {
    /// The plugin's id.
    #[param(pattern = "^[a-z][a-z0-9_-]{0,62}$")]
    id: String,
    /// The job's name, from the plugin's manifest.
    #[param(pattern = "^[a-z][a-z0-9_-]{0,62}$")]
    name: String,
}

/// Path naming a run.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct RunId {
    /// The run's id.
    #[param(pattern = "^[0-9a-f]{16}$")]
    run: String,
}

/// Filter of a run query.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RunFilter {
    /// Only this plugin's runs.
    pub plugin: Option<String>,
    /// Only this job's runs.
    pub job: Option<String>,
    /// Only runs in this state.
    pub state: Option<RunState>,
    /// Most runs returned, newest tick first (default 100, at most 10000).
    pub limit: Option<u32>,
}

/// A run with its log lines.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RunDetail {
    pub run: Run,
    /// Its log lines (the plugin's and the host's about it), oldest first.
    pub logs: Vec<super::LogRow>,
}

fn not_found(what: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not-found", what.to_string())
}

fn run_not_found(run: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "run-not-found",
        format!("no run `{}`", crate::text::cap(run, 64)),
    )
}

/// `GET /admin/v1/plugins/{id}/jobs`.
#[utoipa::path(get, path = "/admin/v1/plugins/{id}/jobs", tag = "jobs", params(PluginId),
    responses(
        (status = 200, description = "The jobs the plugin declares, their schedules, grant, next tick and latest run", body = [JobInfo]),
        (status = 404, description = "No such plugin", body = ErrorBody),
    ))]
pub async fn list_jobs(
    State(state): State<Arc<AppState>>,
    Path(PluginId { id }): Path<PluginId>,
) -> Result<Json<Vec<JobInfo>>, ApiError> {
    let plugin = state
        .registry
        .plugin(&id)
        .ok_or_else(|| not_found(&format!("no plugin `{id}` is loaded")))?;
    blocking(move || {
        let admission = plugin.admission();
        let declared = admission
            .manifest
            .capabilities
            .jobs
            .clone()
            .unwrap_or_default();
        let decision = &admission.grants.jobs;
        let now = state.jobs.now_ms()?;
        let mut jobs = Vec::new();
        for (name, spec) in declared.jobs {
            let granted = decision.granted().and_then(|grant| grant.jobs.get(&name));
            let last_run = state
                .jobs
                .runs(&RunQuery {
                    plugin: Some(id.clone()),
                    job: Some(name.clone()),
                    limit: 1,
                    ..RunQuery::default()
                })?
                .into_iter()
                .next();
            let schedule = match (&spec.cron, &spec.every) {
                (Some(cron), _) => Schedule::cron(cron),
                (_, Some(every)) => Schedule::every(every),
                _ => Err(String::new()),
            };
            let last = last_run.as_ref().map(|run| LastRun {
                scheduled_ms: run.scheduled_ms,
                finished_ms: run.finished_ms,
            });
            jobs.push(JobInfo {
                schedule: serde_json::to_value(&spec).unwrap_or_default(),
                granted: granted.is_some(),
                reason: decision.reason().map(str::to_string),
                deadline_ms: granted.map(|job| job.deadline.as_millis() as u64),
                retry: spec.retry.unwrap_or(0),
                next_run_ms: schedule
                    .ok()
                    .filter(|_| granted.is_some())
                    .and_then(|schedule| schedule.next_after(last, now, now)),
                last_run,
                name,
            });
        }
        Ok(Json(jobs))
    })
    .await
}

/// `POST /admin/v1/plugins/{id}/jobs/{name}/run`.
#[utoipa::path(post, path = "/admin/v1/plugins/{id}/jobs/{name}/run", tag = "jobs", params(JobPath),
    responses(
        (status = 202, description = "Queued; a host with a free slot runs it", body = Run),
        (status = 404, description = "No such plugin or job", body = ErrorBody),
        (status = 409, description = "The policy does not grant the plugin its jobs", body = ErrorBody),
    ))]
pub async fn run_job(
    State(state): State<Arc<AppState>>,
    Path(JobPath { id, name }): Path<JobPath>,
) -> Result<(StatusCode, Json<Run>), ApiError> {
    let plugin = state
        .registry
        .plugin(&id)
        .ok_or_else(|| not_found(&format!("no plugin `{id}` is loaded")))?;
    let decision = &plugin.admission().grants.jobs;
    let declared = plugin
        .admission()
        .manifest
        .capabilities
        .jobs
        .as_ref()
        .is_some_and(|jobs| jobs.jobs.contains_key(&name));
    if !declared {
        return Err(not_found(&format!("plugin `{id}` has no job `{name}`")));
    }
    if decision.granted().is_none() || !plugin.runs_jobs() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "jobs-not-granted",
            format!(
                "plugin `{id}` may not run jobs: {}",
                decision
                    .reason()
                    .unwrap_or("its `jobs` export is not served")
            ),
        ));
    }
    blocking(move || {
        let run = crate::scheduler::Scheduler::run_now(&state, &id, &name)?.ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "run-exists",
                "a run for this very millisecond exists; retry",
            )
        })?;
        Ok((StatusCode::ACCEPTED, Json(run)))
    })
    .await
}

/// `GET /admin/v1/runs`.
#[utoipa::path(get, path = "/admin/v1/runs", tag = "jobs", params(RunFilter),
    responses(
        (status = 200, description = "Runs, newest tick first", body = [Run]),
        (status = 400, description = "Invalid filter", body = ErrorBody),
    ))]
pub async fn list_runs(
    State(state): State<Arc<AppState>>,
    ApiQuery(filter): ApiQuery<RunFilter>,
) -> Result<Json<Vec<Run>>, ApiError> {
    let query = RunQuery {
        plugin: filter.plugin,
        job: filter.job,
        state: filter.state,
        limit: filter
            .limit
            .unwrap_or(DEFAULT_LIMIT)
            .clamp(1, crate::audit::MAX_QUERY_ROWS),
    };
    blocking(move || Ok(Json(state.jobs.runs(&query)?))).await
}

/// `GET /admin/v1/runs/{run}`.
#[utoipa::path(get, path = "/admin/v1/runs/{run}", tag = "jobs", params(RunId),
    responses(
        (status = 200, description = "The run and its log lines", body = RunDetail),
        (status = 404, description = "No such run", body = ErrorBody),
    ))]
pub async fn show_run(
    State(state): State<Arc<AppState>>,
    Path(RunId { run }): Path<RunId>,
) -> Result<Json<RunDetail>, ApiError> {
    blocking(move || {
        let found = state.jobs.run(&run)?.ok_or_else(|| run_not_found(&run))?;
        let mut logs = match &found.call_id {
            Some(call) => state.registry.runtime().services().logs.query(&LogQuery {
                plugin: Some(found.plugin.clone()),
                call: Some(call.clone()),
                limit: RUN_LOG_LINES,
                ..LogQuery::default()
            })?,
            None => Vec::new(),
        };
        logs.reverse();
        Ok(Json(RunDetail {
            run: found,
            logs: logs.into_iter().map(super::LogRow::from).collect(),
        }))
    })
    .await
}

/// `POST /admin/v1/runs/{run}/cancel`.
#[utoipa::path(post, path = "/admin/v1/runs/{run}/cancel", tag = "jobs", params(RunId),
    responses(
        (status = 200, description = "A queued run is cancelled; a running one is asked to stop (and stopped after the policy's grace)", body = Run),
        (status = 404, description = "No such run", body = ErrorBody),
        (status = 409, description = "The run already ended", body = ErrorBody),
    ))]
pub async fn cancel_run(
    State(state): State<Arc<AppState>>,
    Path(RunId { run }): Path<RunId>,
) -> Result<Json<Run>, ApiError> {
    blocking(move || {
        let before = state.jobs.run(&run)?.ok_or_else(|| run_not_found(&run))?;
        if before.state.is_final() {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "run-finished",
                format!("run `{run}` already ended ({})", before.state),
            ));
        }
        let after = state
            .jobs
            .request_cancel(&run)?
            .ok_or_else(|| run_not_found(&run))?;
        state
            .registry
            .runtime()
            .services()
            .audit
            .record(AuditEvent::new(
                &after.plugin,
                AuditKind::JobControl,
                Some(CapabilityId::Jobs),
                format!("run {run} of job {} cancelled by an operator", after.job),
            ));
        Ok(Json(after))
    })
    .await
}

/// Tell the run table that `plugin` changed (disabled, removed or upgraded): its queued
/// runs are cancelled and its running ones asked to stop, on every host.
pub(super) async fn plugin_changed(state: &Arc<AppState>, plugin: String) -> Result<(), ApiError> {
    let state = state.clone();
    blocking(move || {
        state.jobs.cancel_plugin(&plugin)?;
        Ok(())
    })
    .await
}
