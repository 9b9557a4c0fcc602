//! The `capstan` binary as an author uses it: `inspect` and `run` (and `serve` refusing
//! an unusable events URL).

#[path = "../../tests/support/mod.rs"]
mod support;

use std::process::{Command, Output};
use support::{capstan_bin, plugin, plugin_dir, root};

fn capstan(args: &[&str]) -> Output {
    plugin("hello"); // builds the plugins if needed
    Command::new(capstan_bin())
        .args(args)
        .current_dir(root())
        .env("CAPSTAN_LOG", "warn")
        .output()
        .expect("running capstan")
}

fn wasm(name: &str) -> String {
    plugin_dir()
        .join(format!("{name}.wasm"))
        .display()
        .to_string()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn inspect_shows_imports_capabilities_and_grants() {
    let out = capstan(&[
        "inspect",
        &wasm("counter"),
        "--policy",
        "policy/default.toml",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("plugin    counter 0.1.0"), "{text}");
    assert!(text.contains("capstan:plugin/kv@0.2.0"), "{text}");
    assert!(text.contains("capability storage.kv"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.contains("storage.kv") && l.contains("denied")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("http.routes") && l.contains("granted")),
        "{text}"
    );
}

#[test]
fn inspect_json_is_machine_readable() {
    let out = capstan(&[
        "inspect",
        &wasm("tools"),
        "--policy",
        "policy/examples.toml",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["manifest"]["id"], "tools");
    assert_eq!(json["grants"]["mcp"]["decision"], "granted");
    assert_eq!(
        json["grants"]["mcp"]["grant"]["tools"],
        serde_json::json!(["add", "text-stats", "word-count"])
    );
}

#[test]
fn inspect_of_a_refused_plugin_exits_2_with_the_reason() {
    let out = capstan(&["inspect", &wasm("hostile_undeclared_kv")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("refused (undeclared-import)"),
        "{}",
        stderr(&out)
    );
}

/// The `counter` plugin's `/x` route run `times` times by `capstan run`, with `extra`
/// arguments; its standard output.
fn counter_repeated(times: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "run",
        "--policy",
        "policy/examples.toml",
        "--get",
        "/x",
        "--repeat",
        times,
    ];
    args.extend(extra);
    let counter = wasm("counter");
    args.push(&counter);
    let out = capstan(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}

#[test]
fn run_calls_the_route_and_kv_persists_across_repeats() {
    let text = counter_repeated("2", &[]);
    assert!(text.contains(r#"{"hits":1,"path":"/x"}"#), "{text}");
    assert!(text.contains(r#"{"hits":2,"path":"/x"}"#), "{text}");
}

#[test]
fn run_quiet_makes_every_call_but_prints_only_the_last() {
    let text = counter_repeated("3", &["--quiet"]);
    assert!(text.contains(r#"{"hits":3,"path":"/x"}"#), "{text}");
    assert_eq!(text.matches("HTTP 200").count(), 1, "{text}");
}

#[test]
fn run_calls_a_tool() {
    let out = capstan(&[
        "run",
        &wasm("tools"),
        "--policy",
        "policy/examples.toml",
        "--tool",
        "add",
        "--args",
        r#"{"a":1,"b":2}"#,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "3.0");
}

#[test]
fn run_reports_a_timeout_with_exit_3() {
    let out = capstan(&[
        "run",
        &wasm("hostile_misbehave"),
        "--policy",
        "policy/default.toml",
        "--get",
        "/loop",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("call failed (timeout)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn invalid_policy_file_is_named_with_its_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[defaults.capabilities.sockets]\n").unwrap();
    let out = capstan(&[
        "run",
        &wasm("hello"),
        "--policy",
        path.to_str().unwrap(),
        "--get",
        "/",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("bad.toml") && err.contains("unknown field `sockets`"),
        "{err}"
    );
}

#[test]
fn serve_refuses_an_events_url_it_cannot_use_naming_why_and_no_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for (url, why) in [
        ("http://127.0.0.1:4222", "is not nats:// or tls://"),
        ("nats://127.0.0.1:4222/Bad.Name", "namespace `Bad.Name`"),
        (
            "nats://ops:hunter2@127.0.0.1:1",
            "connecting to 127.0.0.1:1",
        ),
    ] {
        let out = capstan(&[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data.to_str().unwrap(),
            "--events-url",
            url,
        ]);
        assert_eq!(out.status.code(), Some(1), "{url}");
        let err = stderr(&out);
        assert!(
            err.contains("event log") && err.contains(why),
            "{url}: {err}"
        );
        assert!(!err.contains("hunter2"), "the password leaked: {err}");
    }
}

#[test]
fn run_without_a_data_dir_still_reads_the_http_ca_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("ca.pem");
    std::fs::write(&bundle, "not a certificate").unwrap();
    plugin("hello");
    let out = Command::new(capstan_bin())
        .args([
            "run",
            &wasm("hello"),
            "--policy",
            "policy/default.toml",
            "--get",
            "/",
        ])
        .current_dir(root())
        .env("CAPSTAN_LOG", "warn")
        .env("CAPSTAN_HTTP_CA_FILE", &bundle)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("extra CA bundle"), "{}", stderr(&out));
}

#[test]
fn run_job_runs_a_granted_job_once_and_refuses_an_ungranted_one() {
    let granted = capstan(&[
        "run",
        &wasm("scheduled"),
        "--policy",
        "policy/examples.toml",
        "--job",
        "pulse",
    ]);
    assert!(granted.status.success(), "{}", stderr(&granted));
    let printed = stdout(&granted);
    assert!(printed.contains("job pulse succeeded"), "{printed}");
    assert!(
        printed.contains("last progress: pulse for tick"),
        "{printed}"
    );
    let denied = capstan(&["run", &wasm("scheduled"), "--job", "pulse"]);
    assert_eq!(denied.status.code(), Some(3));
    assert!(
        stderr(&denied).contains("not granted jobs"),
        "{}",
        stderr(&denied)
    );
}

#[test]
fn run_applies_a_plugins_migrations_before_the_call() {
    let out = capstan(&[
        "run",
        &wasm("notes"),
        "--policy",
        "policy/examples.toml",
        "--get",
        "/notes",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("HTTP 200"), "{}", stdout(&out));
}
