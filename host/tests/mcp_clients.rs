//! Real MCP clients against the gateway: the official Python SDK (`mcp` 2.3.0) in modern
//! and legacy mode, the TypeScript SDK v1 (legacy) and the v2 client (modern), installed
//! into target/mcp-clients by scripts/mcp-clients (which scripts/test runs). Each lists
//! tools with a token scoped to `tools` (and does not see `bench`'s), calls `tools__add`,
//! gets `isError` for bad arguments, a 401 without a token and with a revoked one, and
//! hears `list_changed` after an install. Without the clients a plain `cargo test` skips
//! these with a printed reason; under CI=true that is a failure.

mod harness;

use harness::mcp::client;
use harness::support::plugin;
use harness::*;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc::channel;
use std::time::Duration;

const POLICY: &str = "[defaults.capabilities.mcp]\n";

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The installed clients' directory, or None (after saying why) when they are missing.
fn clients() -> Option<PathBuf> {
    let dir = repository().join("target/mcp-clients");
    let ready = dir.join("venv/bin/python").exists() && dir.join("node/node_modules").exists();
    if ready {
        return Some(dir);
    }
    let why = "the MCP clients are not installed (run scripts/mcp-clients)";
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{why}: required under CI"
    );
    eprintln!("skipping MCP client test: {why}");
    None
}

/// Run one client's scenario against a fresh server and check every step it reports.
fn scenario(mut command: Command) {
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, &[]);
    assert_eq!(server.install(plugin("tools")).status(), 201);
    assert_eq!(server.install(plugin("bench")).status(), 201);
    let (_, token) = client(&server, json!({"name": "agent", "plugins": ["tools"]}));
    let (revoked_id, revoked) = client(&server, json!({"name": "gone", "plugins": ["tools"]}));
    let revoke = server
        .admin(
            reqwest::Method::DELETE,
            &format!("/mcp/clients/{revoked_id}"),
        )
        .send()
        .unwrap();
    assert_eq!(revoke.status(), 204);

    let mut child = command
        .env("MCP_URL", format!("{}/mcp", server.base))
        .env("MCP_TOKEN", &token)
        .env("MCP_REVOKED_TOKEN", &revoked)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting the client");
    let (send, steps) = channel::<Value>();
    let output = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(output).lines().map_while(Result::ok) {
            let step = serde_json::from_str(&line)
                .unwrap_or_else(|_| json!({"step": "unparsed", "line": line}));
            if send.send(step).is_err() {
                return;
            }
        }
    });
    let next = || {
        steps
            .recv_timeout(Duration::from_secs(60))
            .expect("the client's next step")
    };

    let list = next();
    assert_eq!(list["step"], "list", "{list}");
    assert_eq!(
        list["tools"],
        json!(["tools__add", "tools__text-stats", "tools__word-count"]),
        "only the tools in its scope"
    );
    let call = next();
    assert_eq!(call["step"], "call", "{call}");
    assert_eq!(call["isError"], false, "{call}");
    assert_eq!(call["text"], "42.0");
    let bad = next();
    assert_eq!(bad["step"], "bad-args", "{bad}");
    assert_eq!(bad["isError"], true, "{bad}");
    for expected in ["no-token", "revoked"] {
        let refused = next();
        assert_eq!(refused["step"], expected, "{refused}");
        assert_eq!(refused["status"], 401, "{refused}");
    }
    let ready = next();
    assert_eq!(ready["step"], "ready", "{ready}");
    assert_eq!(server.install(variant(plugin("tools"), "v2")).status(), 201);
    let heard = next();
    assert_eq!(heard["step"], "list_changed", "{heard}");
    assert!(child.wait().unwrap().success(), "the client exits 0");
}

fn python(dir: &std::path::Path, mode: &str) -> Command {
    let mut command = Command::new(dir.join("venv/bin/python"));
    command
        .arg(repository().join("tests/mcp-clients/python_client.py"))
        .args(["--mode", mode]);
    command
}

fn node(script: &str) -> Command {
    let mut command = Command::new("node");
    command.arg(repository().join("tests/mcp-clients").join(script));
    command
}

#[test]
fn python_sdk_in_modern_mode() {
    let Some(dir) = clients() else { return };
    scenario(python(&dir, "modern"));
}

#[test]
fn python_sdk_in_legacy_mode() {
    let Some(dir) = clients() else { return };
    scenario(python(&dir, "legacy"));
}

#[test]
fn typescript_sdk_v1_legacy() {
    let Some(_) = clients() else { return };
    scenario(node("sdk_legacy.mjs"));
}

#[test]
fn typescript_client_v2_modern() {
    let Some(_) = clients() else { return };
    scenario(node("client_modern.mjs"));
}
