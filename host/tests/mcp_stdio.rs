//! `capstan mcp stdio`: a stdio MCP client reaches the server's tools through the bridge,
//! with the token from the environment, and hears tool-list changes.

mod harness;

use harness::mcp::client;
use harness::support::{capstan_bin, plugin};
use harness::*;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc::channel;
use std::time::Duration;

#[test]
fn a_stdio_client_lists_calls_and_hears_changes_through_the_bridge() {
    let (_keep, dir) = temp();
    let server = start(&dir, "[defaults.capabilities.mcp]\n", &[]);
    assert_eq!(server.install(plugin("tools")).status(), 201);
    let (_, token) = client(&server, json!({"name": "desktop", "plugins": ["tools"]}));
    let mut bridge = Command::new(capstan_bin())
        .args(["mcp", "stdio", "--server", &server.base])
        .env("CAPSTAN_MCP_TOKEN", &token)
        .env("CAPSTAN_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut input = bridge.stdin.take().unwrap();
    let (send, lines) = channel::<Value>();
    let output = bridge.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(output).lines().map_while(Result::ok) {
            if let Ok(value) = serde_json::from_str(&line)
                && send.send(value).is_err()
            {
                return;
            }
        }
    });
    let mut say = |message: Value| writeln!(input, "{message}").unwrap();
    let wait = Duration::from_secs(20);
    let answer = |id: u64| loop {
        let message = lines.recv_timeout(wait).expect("an answer from the bridge");
        if message["id"] == id {
            return message;
        }
    };

    say(
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "stdio-test", "version": "1"}}}),
    );
    assert!(answer(1)["result"]["capabilities"]["tools"].is_object());
    say(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    say(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}));
    let names: Vec<String> = answer(2)["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tool| tool["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        ["tools__add", "tools__text-stats", "tools__word-count"]
    );
    say(json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": {"name": "tools__add", "arguments": {"a": 20, "b": 22}}}));
    assert_eq!(answer(3)["result"]["content"][0]["text"], "42.0");
    say(json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
        "params": {"name": "tools__add", "arguments": {"a": "x"}}}));
    assert_eq!(answer(4)["result"]["isError"], true);

    assert_eq!(server.install(variant(plugin("tools"), "v2")).status(), 201);
    let heard = loop {
        let message = lines
            .recv_timeout(wait)
            .expect("list_changed through the bridge");
        if message.get("method").is_some() {
            break message;
        }
    };
    assert_eq!(heard["method"], "notifications/tools/list_changed");

    drop(input);
    let status = bridge.wait().unwrap();
    assert!(
        status.success(),
        "the bridge exits when its client closes stdin"
    );
}

#[test]
fn the_bridge_without_a_token_says_how_to_get_one() {
    let output = Command::new(capstan_bin())
        .args(["mcp", "stdio", "--server", "http://127.0.0.1:9"])
        .env_remove("CAPSTAN_MCP_TOKEN")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(error.contains("CAPSTAN_MCP_TOKEN"), "{error}");
}
