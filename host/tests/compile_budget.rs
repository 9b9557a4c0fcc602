//! Compiling runs in a child process under a time and a memory budget: a component built
//! to be slow or hungry to compile is refused with `compile-budget` within the budget,
//! and what is already installed keeps serving.

mod harness;

use harness::support::{plugin, slow_to_compile};
use harness::*;
use std::time::{Duration, Instant};

fn refused_for_its_budget(server: &Server, component: Vec<u8>, what: &str, within: Duration) {
    let started = Instant::now();
    let response = server.install(component);
    let took = started.elapsed();
    assert_eq!(response.status(), 422);
    let body: serde_json::Value = response.json().unwrap();
    assert_eq!(body["code"], "compile-budget", "{body}");
    assert!(body["message"].as_str().unwrap().contains(what), "{body}");
    assert!(took < within, "refused after {took:?}");
    assert_eq!(
        server.route("hello/").0,
        200,
        "the installed plugin keeps serving"
    );
    let ids: Vec<String> = server.installed().into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids, ["hello"], "nothing else was installed");
}

#[test]
fn a_component_slower_to_compile_than_the_budget_is_refused_at_the_budget() {
    let (_keep, dir) = temp();
    // hello compiles in about 0.2 s idle; 3 s leaves room for a loaded machine.
    let server = start(&dir, POLICY, &["--compile-timeout-secs", "3"]);
    assert_eq!(
        server.install(plugin("hello")).status(),
        201,
        "ordinary components compile"
    );
    // About 8 s of Cranelift work on this machine kind.
    let slow = slow_to_compile("slow", 500, 2000);
    refused_for_its_budget(
        &server,
        slow,
        "longer than the 3 s budget",
        Duration::from_secs(8),
    );
}

#[test]
fn a_component_hungrier_to_compile_than_the_budget_is_refused() {
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, &["--compile-memory-mib", "400"]);
    assert_eq!(server.install(plugin("hello")).status(), 201);
    // One function of a million instructions: about 1 GiB of compiler memory.
    let hungry = slow_to_compile("hungry", 1, 250_000);
    refused_for_its_budget(
        &server,
        hungry,
        "400 MiB memory budget",
        Duration::from_secs(30),
    );
}

/// Whether a compile child of process `parent` is running.
fn compiling_under(parent: u32) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        // stat: "pid (comm) state ppid ..."
        let ppid = stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.split(' ').nth(1));
        ppid == Some(&parent.to_string()) && cmdline.windows(9).any(|w| w == b"__compile")
    })
}

#[test]
fn other_admin_changes_go_on_while_a_slow_component_compiles() {
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, &[]);
    assert_eq!(server.install(plugin("hello")).status(), 201);
    let slow = slow_to_compile("slow", 500, 2000);
    let request = server
        .admin(reqwest::Method::POST, "/plugins")
        .header("content-type", "application/wasm")
        .body(slow);
    let _upload = std::thread::spawn(move || request.send());
    let pid = server.child.id();
    eventually(
        Duration::from_secs(20),
        "the slow component is compiling",
        || compiling_under(pid),
    );
    let started = Instant::now();
    let (status, info) = server.json(reqwest::Method::POST, "/plugins/hello/disable");
    assert_eq!((status, info["enabled"].as_bool()), (200, Some(false)));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "disable waited {:?} behind the compile",
        started.elapsed()
    );
    assert!(
        compiling_under(pid),
        "the compile was still running meanwhile"
    );
}
