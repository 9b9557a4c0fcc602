//! Scheduled jobs and lifecycle hooks on the real binary: ticks run once (on one host and
//! on two sharing PostgreSQL), runs are recorded with their outcome, cancel stops runs
//! cooperatively or by force, a host that dies leaves its run `abandoned`, spinning jobs
//! end at their deadline, and hooks see installs, settings and secret names (never values).

mod harness;

use harness::support::{plugin, postgres_url, unique_schema};
use harness::*;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const POLICY: &str = "[defaults.capabilities.routes]
[plugins.scheduled.capabilities.kv]
[plugins.scheduled.capabilities.jobs]
[plugins.workers.capabilities.jobs]
max_runtime = \"3s\"
cancel_grace = \"1s\"
max_concurrent_runs = 4
[plugins.hooks.capabilities.kv]
[plugins.hooks.capabilities.secrets]
names = [\"api-token\"]
";

fn installed(server: &Server, name: &str) {
    let response = match name {
        "hostile_workers" => {
            let manifest = std::fs::read_to_string(format!(
                "{}/../plugins/hostile/workers/capstan.toml",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap();
            server.install_with_manifest(plugin(name), &manifest)
        }
        _ => server.install(plugin(name)),
    };
    assert_eq!(
        response.status(),
        201,
        "{name}: {}",
        response.text().unwrap()
    );
}

fn runs(server: &Server, query: &str) -> Vec<Value> {
    let (status, runs) = server.json(Method::GET, &format!("/runs?limit=10000&{query}"));
    assert_eq!(status, 200, "{runs}");
    runs.as_array().unwrap().clone()
}

fn run(server: &Server, id: &str) -> Value {
    let (status, detail) = server.json(Method::GET, &format!("/runs/{id}"));
    assert_eq!(status, 200, "{detail}");
    detail
}

/// Start job `job` of `plugin` now; returns the run's id.
fn run_now(server: &Server, plugin: &str, job: &str) -> String {
    let (status, run) = server.json(Method::POST, &format!("/plugins/{plugin}/jobs/{job}/run"));
    assert_eq!(status, 202, "{run}");
    run["id"].as_str().unwrap().to_string()
}

fn state_of(server: &Server, id: &str) -> String {
    run(server, id)["run"]["state"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn an_every_job_runs_once_per_gap_measured_from_the_end_of_the_last_run() {
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, &[]);
    installed(&server, "scheduled");
    eventually(Duration::from_secs(20), "three pulse runs", || {
        runs(&server, "plugin=scheduled&job=pulse&state=succeeded").len() >= 3
    });
    let mut pulses = runs(&server, "plugin=scheduled&job=pulse&state=succeeded");
    pulses.reverse();
    for pair in pulses.windows(2) {
        assert_eq!(
            pair[1]["scheduled_ms"].as_i64().unwrap(),
            pair[0]["finished_ms"].as_i64().unwrap() + 2000,
            "each tick is 2 s after the previous run ended: {pair:?}"
        );
    }
    let (_, counts) = server.route("scheduled/counts");
    let counts: Value = serde_json::from_str(&counts).unwrap();
    assert_eq!(counts["pulse"]["duplicates"], 0);
    assert!(counts["pulse"]["runs"].as_i64().unwrap() >= 3);
    let (_, jobs) = server.json(Method::GET, "/plugins/scheduled/jobs");
    let pulse = jobs
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == "pulse")
        .unwrap();
    assert_eq!(pulse["granted"], true);
    assert_eq!(pulse["deadline_ms"], 10_000);
    let metrics = server.metrics();
    assert!(
        metrics.contains(
            r#"capstan_job_runs_total{plugin="scheduled",job="pulse",state="succeeded"}"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("capstan_job_scheduler_lag_seconds_count"),
        "{metrics}"
    );
}

#[test]
fn cancel_stops_a_cooperative_job_within_a_second_and_a_stubborn_one_at_the_grace() {
    let (_keep, dir) = temp();
    // A 10 s max_runtime, so a loaded machine cannot time the stubborn job out before
    // its cancel and grace have run (about 2-3 s after it starts).
    let policy = POLICY.replace("max_runtime = \"3s\"", "max_runtime = \"10s\"");
    assert_ne!(policy, POLICY);
    let server = start(&dir, &policy, &[]);
    installed(&server, "hostile_workers");
    let patient = run_now(&server, "workers", "patient");
    let stubborn = run_now(&server, "workers", "stubborn");
    for id in [&patient, &stubborn] {
        eventually(Duration::from_secs(10), "the run starts", || {
            state_of(&server, id) == "running"
        });
    }
    let cancel = |id: &str| {
        let (status, after) = server.json(Method::POST, &format!("/runs/{id}/cancel"));
        assert_eq!(status, 200, "{after}");
        assert_eq!(after["cancel_requested"], true);
        Instant::now()
    };
    let asked = cancel(&patient);
    let stopped_within = eventually(Duration::from_secs(5), "the patient job stops", || {
        state_of(&server, &patient) == "cancelled"
    });
    assert!(
        asked.elapsed() < Duration::from_secs(2) && stopped_within < Duration::from_secs(1),
        "stopped {stopped_within:?} after the cancel"
    );
    let progress = run(&server, &patient)["run"]["progress"].clone();
    assert!(
        progress.as_str().unwrap().starts_with("step "),
        "{progress}"
    );

    cancel(&stubborn);
    let took = eventually(
        Duration::from_secs(5),
        "the stubborn job is stopped",
        || state_of(&server, &stubborn) == "cancelled",
    );
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(2500),
        "stopped at the 1 s grace (+ a tick), took {took:?}"
    );
    let detail = run(&server, &stubborn);
    assert!(
        detail["run"]["error"].as_str().unwrap().contains("grace"),
        "{detail}"
    );
    let (status, again) = server.json(Method::POST, &format!("/runs/{stubborn}/cancel"));
    assert_eq!(
        (status, again["code"].as_str()),
        (409, Some("run-finished"))
    );
}

#[test]
fn a_job_that_spins_forever_ends_at_its_max_runtime_and_routes_are_served_meanwhile() {
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, &[]);
    installed(&server, "hostile_workers");
    installed(&server, "hello");
    let spin = run_now(&server, "workers", "spin");
    eventually(Duration::from_secs(10), "the spin starts", || {
        state_of(&server, &spin) == "running"
    });
    for _ in 0..10 {
        assert_eq!(server.route("hello/").0, 200);
    }
    eventually(Duration::from_secs(10), "the spin ends", || {
        state_of(&server, &spin) == "timed-out"
    });
    let ended = run(&server, &spin)["run"].clone();
    let ran = ended["finished_ms"].as_i64().unwrap() - ended["started_ms"].as_i64().unwrap();
    assert!(
        (3000..3600).contains(&ran),
        "ran {ran} ms under a 3 s max_runtime"
    );
}

#[test]
fn the_jobs_api_refuses_unknown_jobs_ungranted_plugins_and_bad_filters() {
    let (_keep, dir) = temp();
    let server = start(&dir, "[defaults.capabilities.routes]\n", &[]);
    installed(&server, "hostile_workers");
    let (status, body) = server.json(Method::POST, "/plugins/workers/jobs/nothing/run");
    assert_eq!((status, body["code"].as_str()), (404, Some("not-found")));
    let (status, body) = server.json(Method::POST, "/plugins/workers/jobs/noop/run");
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("jobs-not-granted"))
    );
    let (_, jobs) = server.json(Method::GET, "/plugins/workers/jobs");
    assert!(
        jobs.as_array()
            .unwrap()
            .iter()
            .all(|job| job["granted"] == false)
    );
    let (status, body) = server.json(Method::GET, "/runs?state=sleeping");
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid-query"))
    );
    let (status, body) = server.json(Method::GET, "/runs/0123456789abcdef");
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("run-not-found"))
    );
}

#[test]
fn a_failed_run_is_retried_as_the_job_says_and_history_is_kept_to_the_retention() {
    let (_keep, dir) = temp();
    let policy = POLICY.replace(
        "max_concurrent_runs = 4",
        "max_concurrent_runs = 4\nretention = 3",
    );
    let server = start(&dir, &policy, &[]);
    installed(&server, "hostile_workers");
    let first = run_now(&server, "workers", "fail");
    eventually(Duration::from_secs(10), "the retry ran", || {
        runs(&server, "plugin=workers&job=fail&state=failed").len() == 2
    });
    let failed = runs(&server, "plugin=workers&job=fail");
    let attempts: Vec<(i64, &str)> = failed
        .iter()
        .map(|r| {
            (
                r["attempt"].as_i64().unwrap(),
                r["trigger"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        attempts,
        [(2, "retry"), (1, "manual")],
        "one retry, no more"
    );
    assert_eq!(failed[0]["scheduled_ms"], failed[1]["scheduled_ms"]);
    assert!(failed[1]["id"] == first.as_str());
    assert!(
        failed[0]["error"]
            .as_str()
            .unwrap()
            .contains("always fails")
    );

    for _ in 0..5 {
        let id = run_now(&server, "workers", "noop");
        eventually(Duration::from_secs(10), "the run ends", || {
            state_of(&server, &id) == "succeeded"
        });
    }
    assert_eq!(
        runs(&server, "plugin=workers&job=noop").len(),
        3,
        "only the newest 3 runs are kept"
    );
}

#[test]
fn disabling_a_plugin_cancels_its_running_jobs() {
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, &[]);
    installed(&server, "hostile_workers");
    let patient = run_now(&server, "workers", "patient");
    eventually(Duration::from_secs(10), "the run starts", || {
        state_of(&server, &patient) == "running"
    });
    assert_eq!(server.json(Method::POST, "/plugins/workers/disable").0, 200);
    eventually(Duration::from_secs(5), "the run is cancelled", || {
        state_of(&server, &patient) == "cancelled"
    });
}

#[test]
fn hooks_see_installs_settings_and_secret_names_and_a_failing_install_keeps_the_old_version() {
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, &[]);
    installed(&server, "hooks");
    let state = || -> Value { serde_json::from_str(&server.route("hooks/").1).unwrap() };
    assert_eq!(state()["installs"], "1");
    assert_eq!(state()["upgraded-from"], "-");

    let set = server
        .admin(Method::PUT, "/plugins/hooks/config")
        .json(&json!({"greeting": "Ahoy"}))
        .send()
        .unwrap();
    assert_eq!(set.status(), 200);
    assert_eq!(
        state()["greeting-seen"],
        "Ahoy",
        "on-config-changed read the new value"
    );

    let value = "s3cret-value-never-shown";
    let put = server
        .admin(Method::PUT, "/secrets/hooks/api-token")
        .body(value)
        .send()
        .unwrap();
    assert_eq!(put.status(), 204);
    assert_eq!(state()["secret-changed"], "api-token");
    let (_, audit) = server.json(Method::GET, "/audit?plugin=hooks&limit=1000");
    let (_, logs) = server.json(Method::GET, "/logs?plugin=hooks&limit=1000");
    for (what, text) in [
        ("plugin state", state().to_string()),
        ("audit", audit.to_string()),
        ("logs", logs.to_string()),
    ] {
        assert!(!text.contains(value), "the secret's value is in the {what}");
    }
    assert!(
        audit
            .to_string()
            .contains("on-secret-changed for secret `api-token`: ok")
    );

    // Upgrading while on-install refuses: the old version keeps serving.
    let served = server.installed();
    let refuse = server
        .admin(Method::PUT, "/plugins/hooks/config")
        .json(&json!({"refuse_install": true}))
        .send()
        .unwrap();
    assert_eq!(refuse.status(), 200);
    let upgrade = server.install(variant(plugin("hooks"), "v2"));
    assert_eq!(upgrade.status(), 422);
    let body: Value = upgrade.json().unwrap();
    assert_eq!(body["code"], "hook-failed", "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("refuse_install"),
        "{body}"
    );
    assert_eq!(server.installed(), served, "the old version keeps serving");
    assert_eq!(server.route("hooks/").0, 200);
    let allow = server
        .admin(Method::PUT, "/plugins/hooks/config")
        .json(&json!({}))
        .send()
        .unwrap();
    assert_eq!(allow.status(), 200);
    assert_eq!(server.install(variant(plugin("hooks"), "v2")).status(), 201);
    assert_eq!(state()["upgraded-from"], "0.1.0");
    assert_eq!(state()["installs"], "2");

    assert_eq!(server.json(Method::DELETE, "/plugins/hooks").0, 204);
    let (_, audit) = server.json(Method::GET, "/audit?plugin=hooks&kind=hook&limit=100");
    let hooks: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["detail"].as_str().unwrap())
        .collect();
    assert_eq!(hooks.first(), Some(&"on-remove: ok"), "{hooks:?}");
    assert!(
        hooks.contains(&"on-install: failed: invalid input: refuse_install is set"),
        "{hooks:?}"
    );
}

/// Drops the test's schema when the test ends.
struct Schema {
    url: String,
    name: String,
}

impl Drop for Schema {
    fn drop(&mut self) {
        if let Ok(store) =
            capstan_host::storage::PostgresStore::connect(&self.url, Some(&self.name))
        {
            let _ = store.drop_schema(&self.name);
        }
    }
}

fn cluster() -> Option<(Schema, tempfile::TempDir, std::path::PathBuf)> {
    let url = postgres_url()?;
    let schema = Schema {
        url,
        name: unique_schema(),
    };
    let (keep, dir) = temp();
    Some((schema, keep, dir))
}

#[test]
fn every_tick_runs_exactly_once_across_two_hosts_on_postgres() {
    let Some((schema, _keep, dir)) = cluster() else {
        return;
    };
    let args = [
        "--database-url",
        &schema.url,
        "--database-schema",
        &schema.name,
    ];
    let a = start(&dir.join("a"), POLICY, &args);
    let b = start(&dir.join("b"), POLICY, &args);
    installed(&a, "scheduled");
    // A window holding at least one minute boundary and many 2 s pulses.
    eventually(Duration::from_secs(75), "a minutely tick ran", || {
        !runs(&a, "plugin=scheduled&job=minutely&state=succeeded").is_empty()
    });
    eventually(Duration::from_secs(10), "no run is in flight", || {
        runs(&b, "plugin=scheduled&state=running").is_empty()
            && runs(&b, "plugin=scheduled&state=queued").is_empty()
    });
    let all = runs(&b, "plugin=scheduled");
    let mut ticks = BTreeSet::new();
    let mut hosts = BTreeSet::new();
    for run in &all {
        if run["state"] == "skipped" {
            continue;
        }
        assert!(
            ticks.insert((
                run["job"].to_string(),
                run["scheduled_ms"].as_i64(),
                run["attempt"].as_i64()
            )),
            "tick ran twice: {run}"
        );
        hosts.insert(run["host"].to_string());
    }
    let (_, counts) = a.route("scheduled/counts");
    let counts: Value = serde_json::from_str(&counts).unwrap();
    for job in ["pulse", "minutely"] {
        let succeeded = all
            .iter()
            .filter(|r| r["job"] == job && r["state"] == "succeeded")
            .count() as i64;
        assert_eq!(counts[job]["duplicates"], 0, "{job}: {counts}");
        assert_eq!(
            counts[job]["runs"], succeeded,
            "{job}: kv and the run table agree"
        );
    }
    let mut pulses: Vec<&Value> = all.iter().filter(|r| r["job"] == "pulse").collect();
    pulses.reverse();
    for pair in pulses.windows(2) {
        assert_eq!(
            pair[1]["scheduled_ms"].as_i64().unwrap(),
            pair[0]["finished_ms"].as_i64().unwrap() + 2000,
            "no gap and no overlap between pulses"
        );
    }
    eprintln!(
        "{} runs ({} pulses) on {} host(s)",
        all.len(),
        pulses.len(),
        hosts.len()
    );
}

#[test]
fn a_killed_hosts_run_is_abandoned_within_the_lease_and_the_other_host_goes_on() {
    let Some((schema, _keep, dir)) = cluster() else {
        return;
    };
    let args = [
        "--database-url",
        &schema.url,
        "--database-schema",
        &schema.name,
    ];
    let mut a = start(&dir.join("a"), POLICY, &args);
    let b = start(&dir.join("b"), POLICY, &args);
    installed(&a, "hostile_workers");
    installed(&a, "scheduled");
    eventually(Duration::from_secs(10), "B serves workers", || {
        b.json(Method::GET, "/plugins/workers").0 == 200
    });
    // Start long runs until one lands on A.
    let on_a = format!("\"{}-", a.child.id());
    let victim = loop {
        let id = run_now(&b, "workers", "patient");
        eventually(Duration::from_secs(10), "the run starts", || {
            state_of(&b, &id) == "running"
        });
        if run(&b, &id)["run"]["host"].to_string().starts_with(&on_a) {
            break id;
        }
    };
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    let killed = Instant::now();
    eventually(Duration::from_secs(8), "the run is abandoned", || {
        state_of(&b, &victim) == "abandoned"
    });
    let took = killed.elapsed();
    assert!(
        took <= Duration::from_secs(7),
        "abandoned {took:?} after the kill (lease 5 s)"
    );
    let before = runs(&b, "plugin=scheduled&job=pulse&state=succeeded").len();
    eventually(Duration::from_secs(10), "B goes on scheduling", || {
        runs(&b, "plugin=scheduled&job=pulse&state=succeeded").len() > before + 1
    });
    eprintln!("run abandoned {took:?} after its host was killed");
}
