//! Route and MCP tool calls run on the server's async threads (one per core): calls that
//! spin in wasm, wait on their database or wait on a claimer that spins, more of them
//! than there are threads, leave those threads to everyone else. Kept apart from other
//! suites, whose timing checks the hogs here would load.

mod harness;

use harness::mcp::{Mcp, client};
use harness::support::plugin;
use harness::*;
use serde_json::json;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Held by each test here for its whole run: each loads the machine with its hogs, and
/// its bound is for one set of hogs, not three.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static ALONE: Mutex<()> = Mutex::new(());
    ALONE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

const MCP_POLICY: &str = "[defaults.capabilities.routes]
[defaults.capabilities.mcp]
[plugins.forge.limits]
deadline_ms = 10000
";

/// The installed forge with its default tools (spin among them).
fn default_forge(server: &Server) {
    let manifest = include_str!("../../plugins/hostile/tool-forge/capstan.toml");
    let response = server.install_with_manifest(plugin("hostile_tool_forge"), manifest);
    assert_eq!(response.status(), 201, "{}", response.text().unwrap());
}

/// While the hogs hold on (for seconds yet), `/healthz` and `other` are answered long
/// before they end, five times: the bound leaves room for a loaded machine, not for
/// waiting on a hog.
fn answered_beside_hogs(server: &Server, what: &str, mut other: impl FnMut(usize)) {
    for attempt in 0..5 {
        let started = Instant::now();
        let health = server
            .http
            .get(format!("{}/healthz", server.base))
            .send()
            .unwrap();
        assert_eq!(health.status(), 200);
        other(attempt);
        let waited = started.elapsed();
        assert!(
            waited < Duration::from_secs(3),
            "attempt {attempt}: /healthz and {what} took {waited:?} beside the hogs"
        );
    }
}

#[test]
fn route_calls_that_spin_or_query_leave_the_async_threads_to_everyone_else() {
    let _alone = one_at_a_time();
    let (_keep, dir) = temp();
    let policy = "[defaults.capabilities.routes]
[defaults.limits]
deadline_ms = 10000
[plugins.probe.capabilities.kv]
[plugins.probe.capabilities.sql]
statement_timeout_ms = 9500
";
    let server = start(&dir, policy, &[]);
    assert_eq!(server.install(plugin("hostile_misbehave")).status(), 201);
    let probe = include_str!("../../plugins/hostile/sql-probe/capstan.toml");
    assert_eq!(
        server
            .install_with_manifest(plugin("hostile_sql_probe"), probe)
            .status(),
        201
    );
    assert_eq!(server.install(plugin("hello")).status(), 201);

    // Six calls spin in wasm and six run a query that never ends on its own, until their
    // deadlines (10 s): twelve calls against a server with one async thread per core.
    const COUNT: usize = 6;
    let endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) \
                   SELECT count(*) FROM c";
    let hogs: Vec<_> = (0..COUNT)
        .flat_map(|_| {
            let client = reqwest::blocking::Client::new();
            let spin = client.get(format!("{}/plugins/misbehave/loop", server.base));
            let query = client
                .post(format!("{}/plugins/probe/query", server.base))
                .body(endless);
            [spin, query]
        })
        .map(|request| std::thread::spawn(move || request.send().unwrap().status().as_u16()))
        .collect();
    eventually(Duration::from_secs(8), "every hog is in flight", || {
        ["misbehave", "probe"].iter().all(|id| {
            server.metric(&format!(
                "capstan_plugin_calls_in_flight{{plugin=\"{id}\"}}"
            )) == Some(COUNT as f64)
        })
    });
    answered_beside_hogs(&server, "hello", |_| {
        let (status, body) = server.route("hello/?name=Ada");
        assert_eq!((status, body.as_str()), (200, "Hello, Ada! (GET /)\n"));
    });
    let statuses: Vec<u16> = hogs.into_iter().map(|hog| hog.join().unwrap()).collect();
    // The spinners end at their deadline; the probe reports its query's timeout itself.
    assert_eq!(
        statuses.iter().filter(|&&s| s == 504).count(),
        COUNT,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|&&s| s == 200).count(),
        COUNT,
        "{statuses:?}"
    );
}

#[test]
fn spinning_tool_calls_leave_the_async_threads_to_everyone_else() {
    let _alone = one_at_a_time();
    let (_keep, dir) = temp();
    let server = start(&dir, MCP_POLICY, &[]);
    assert_eq!(server.install(plugin("tools")).status(), 201);
    default_forge(&server);
    let (_, attacker) = client(&server, json!({"name": "attacker", "plugins": ["forge"]}));
    let (_, bystander) = client(&server, json!({"name": "bystander", "plugins": ["tools"]}));
    // Six tool calls spin until their 10 s deadline: more than the server's async threads
    // (one per core), on which tool calls run.
    const SPINNERS: usize = 6;
    let spinners: Vec<_> = (0..SPINNERS)
        .map(|_| {
            let (base, token) = (server.base.clone(), attacker.clone());
            std::thread::spawn(move || Mcp::at(&base, Some(&token)).call("forge__spin", json!({})))
        })
        .collect();
    eventually(
        Duration::from_secs(8),
        "every spinning call is in flight",
        || {
            server.metric("capstan_plugin_calls_in_flight{plugin=\"forge\"}")
                == Some(SPINNERS as f64)
        },
    );
    let mcp = Mcp::new(&server, Some(&bystander));
    answered_beside_hogs(&server, "a tool call", |attempt| {
        let answer = mcp.call("tools__add", json!({"a": attempt, "b": 1}));
        assert_ne!(answer["result"]["isError"], true, "{answer}");
    });
    for spinner in spinners {
        let answer = spinner.join().unwrap();
        let text = answer["result"]["content"][0]["text"]
            .as_str()
            .unwrap_or_default();
        assert!(text.contains("timeout"), "{answer}");
    }
}

#[test]
fn route_calls_waiting_on_a_spinning_claimer_leave_the_async_threads_to_everyone_else() {
    let _alone = one_at_a_time();
    let (_keep, dir) = temp();
    let policy = "[defaults.capabilities.routes]
[defaults.limits]
deadline_ms = 10000
[plugins.asker.capabilities.events]
request = [\"spin.*\"]
[plugins.spinner.capabilities.events]
claims = [\"spin.*\"]
";
    let server = start(&dir, policy, &[]);
    // The probe imports kv too, so each manifest declares it (the policy grants none).
    for manifest in [
        "id = \"asker\"\nversion = \"0.1.0\"\n[capabilities.routes]\n[capabilities.kv]\n\
         [capabilities.events]\nrequest = [\"spin.*\"]\n",
        "id = \"spinner\"\nversion = \"0.1.0\"\n[capabilities.kv]\n\
         [capabilities.events]\nclaims = [\"spin.now\"]\n",
    ] {
        let response = server.install_with_manifest(plugin("hostile_event_probe"), manifest);
        assert_eq!(response.status(), 201, "{}", response.text().unwrap());
    }
    assert_eq!(server.install(plugin("hello")).status(), 201);

    // Six route calls each send a request whose claimer spins until the asker's deadline
    // (10 s): the claimer's call runs inside the asker's, on the thread serving it.
    const COUNT: usize = 6;
    let askers: Vec<_> = (0..COUNT)
        .map(|_| {
            let request = reqwest::blocking::Client::new().post(format!(
                "{}/plugins/asker/request?kind=spin.now",
                server.base
            ));
            std::thread::spawn(move || request.send().unwrap().status().as_u16())
        })
        .collect();
    eventually(Duration::from_secs(8), "every asker is in flight", || {
        server.metric("capstan_plugin_calls_in_flight{plugin=\"asker\"}") == Some(COUNT as f64)
    });
    answered_beside_hogs(&server, "hello", |_| {
        let (status, body) = server.route("hello/?name=Ada");
        assert_eq!((status, body.as_str()), (200, "Hello, Ada! (GET /)\n"));
    });
    // The claims end at the askers' deadline, and with them the askers.
    let statuses: Vec<u16> = askers
        .into_iter()
        .map(|asker| asker.join().unwrap())
        .collect();
    assert_eq!(statuses, vec![504; COUNT]);
}
