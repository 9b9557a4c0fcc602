//! Python plugins (componentize-py, `guest-sdk/python`) and JavaScript plugins
//! (componentize-js, `guest-sdk/js`) under the same gate as Rust ones, on a real
//! `capstan serve`: `py-hello` and `js-hello` answer through their routes and their MCP
//! tools; an import the manifest does not declare is refused at install; a declared
//! capability the policy withholds gets the WIT `denied` error until the policy grants it;
//! a busy loop in either language ends at its deadline, and a memory limit below what
//! the interpreter needs fails its calls with `memory-limit`.

mod harness;

use harness::mcp::{Mcp, client};
use harness::support::{js_plugin, py_plugin};
use harness::*;
use reqwest::Method;
use serde_json::{Value, json};

/// Routes and tools for every plugin; no kv yet; the spinners get a short deadline, and
/// the hellos a long one, since each call starts an interpreter while another test may be
/// compiling one on both cores.
const POLICY: &str = "[defaults.capabilities.routes]\n[defaults.capabilities.mcp]\n[plugins.py-spin.limits]\ndeadline_ms = 300\n[plugins.js-spin.limits]\ndeadline_ms = 300\n[plugins.py-hello.limits]\ndeadline_ms = 10000\n[plugins.js-hello.limits]\ndeadline_ms = 10000\n";

/// `capstan serve` arguments for these tests: a compile budget that fits an interpreter.
/// Cranelift takes about 13 s for CPython's 19 MB on this 2-core machine when idle (debug
/// host), twice that with two tests compiling at once, and more on a busy CI machine: the
/// default 60 s budget would make these tests fail on load they do not test (the budget
/// itself is `compile_budget.rs`'s subject).
const SERVE: &[&str] = &["--compile-timeout-secs", "240"];

/// A language's plugins: `hello` (routes, kv, tools) and `spin` (a busy loop).
struct Lang {
    /// The prefix of its plugin ids (`py`, `js`).
    prefix: &'static str,
    build: fn(&str) -> Vec<u8>,
}

const PYTHON: Lang = Lang {
    prefix: "py",
    build: py_plugin,
};
const JAVASCRIPT: Lang = Lang {
    prefix: "js",
    build: js_plugin,
};

impl Lang {
    fn id(&self, plugin: &str) -> String {
        format!("{}-{plugin}", self.prefix)
    }

    fn bytes(&self, plugin: &str) -> Vec<u8> {
        (self.build)(&format!("{}_{plugin}", self.prefix))
    }
}

/// `bytes` without the `capstan-manifest` custom section the build embedded.
fn without_manifest(bytes: &[u8]) -> Vec<u8> {
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        if let Ok(wasmparser::Payload::CustomSection(reader)) = payload
            && reader.name() == "capstan-manifest"
        {
            // The section id byte and the length precede the name; it is the last section.
            let start = reader.range().start;
            let header = bytes[..start]
                .iter()
                .rposition(|&b| b == 0x00)
                .expect("the custom section's id byte");
            assert_eq!(
                reader.range().end,
                bytes.len(),
                "the manifest is the last section"
            );
            return bytes[..header].to_vec();
        }
    }
    panic!("no embedded manifest");
}

#[test]
fn py_hello_answers_on_its_route_and_its_tools_and_kv_is_denied_until_granted() {
    hello_answers_and_kv_is_denied_until_granted(&PYTHON);
}

#[test]
fn js_hello_answers_on_its_route_and_its_tools_and_kv_is_denied_until_granted() {
    hello_answers_and_kv_is_denied_until_granted(&JAVASCRIPT);
}

fn hello_answers_and_kv_is_denied_until_granted(lang: &Lang) {
    let id = lang.id("hello");
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, SERVE);
    let response = server.install(lang.bytes("hello"));
    assert_eq!(response.status(), 201, "{}", response.text().unwrap());

    let (status, body) = server.route(&format!("{id}/?name=Ada"));
    assert_eq!((status, body.as_str()), (200, "hello, Ada"));

    // Declared but not granted: the host's deny stub answers with the WIT `denied` error.
    let (status, body) = server.route(&format!("{id}/count"));
    assert_eq!(status, 403, "{body}");
    let denied: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(denied["error"], "denied");

    let (_, token) = client(&server, json!({"name": "agent", "plugins": [id]}));
    let mcp = Mcp::new(&server, Some(&token));
    let mut tools = mcp.list();
    tools.sort();
    assert_eq!(
        tools,
        ["add", "text-stats", "word-count"].map(|tool| format!("{id}__{tool}"))
    );
    let answer = mcp.call(&format!("{id}__add"), json!({"a": 2, "b": 3.5}));
    assert_eq!(answer["result"]["content"][0]["text"], "5.5", "{answer}");
    let answer = mcp.call(
        &format!("{id}__word-count"),
        json!({"text": "one two  three"}),
    );
    assert_eq!(answer["result"]["content"][0]["text"], "3", "{answer}");

    // The operator grants kv: the same plugin now counts.
    let granted = format!("{POLICY}[plugins.{id}.capabilities.kv]\n");
    let response = server
        .admin(Method::PUT, "/policy")
        .body(granted)
        .send()
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().unwrap());
    for expected in [1, 2] {
        let (status, body) = server.route(&format!("{id}/count"));
        assert_eq!(status, 200, "{body}");
        let hits: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(hits["hits"], expected);
    }
}

#[test]
fn an_import_the_manifest_does_not_declare_is_refused_at_install() {
    for lang in [&PYTHON, &JAVASCRIPT] {
        undeclared_import_is_refused(lang);
    }
}

fn undeclared_import_is_refused(lang: &Lang) {
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, SERVE);
    // The component imports kv; this manifest does not declare it.
    let bare = without_manifest(&lang.bytes("hello"));
    let response = server.install_with_manifest(
        bare,
        &format!(
            "id = \"{}\"\nversion = \"0.1.0\"\n[capabilities.routes]\n[capabilities.mcp]\ntools = [\"add\"]\n",
            lang.id("hello")
        ),
    );
    assert_eq!(response.status(), 422);
    let error: Value = response.json().unwrap();
    assert_eq!(error["code"], "undeclared-import");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("capstan:plugin/kv@0.2.0"),
        "{error}"
    );
    assert!(server.installed().is_empty());
}

#[test]
fn a_python_busy_loop_ends_at_its_deadline_and_its_memory_limit_holds() {
    busy_loop_ends_at_its_deadline(&PYTHON);
}

#[test]
fn a_javascript_busy_loop_ends_at_its_deadline_and_its_memory_limit_holds() {
    busy_loop_ends_at_its_deadline(&JAVASCRIPT);
}

fn busy_loop_ends_at_its_deadline(lang: &Lang) {
    let id = lang.id("spin");
    let hello = lang.id("hello");
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, SERVE);
    assert_eq!(server.install(lang.bytes("spin")).status(), 201);
    assert_eq!(server.install(lang.bytes("hello")).status(), 201);
    // hello now gets 4 MiB of linear memory: less than its interpreter needs.
    let limits = format!("[plugins.{hello}.limits]\n");
    assert!(POLICY.contains(&limits));
    let policy = POLICY.replace(&limits, &format!("{limits}memory_mib = 4\n"));
    let response = server
        .admin(Method::PUT, "/policy")
        .body(policy)
        .send()
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().unwrap());
    let (status, body) = server.route(&format!("{hello}/"));
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("memory-limit"), "{body}");
    let (status, body) = server.route(&format!("{id}/spin"));
    assert_eq!(status, 504, "{body}");
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["code"], "timeout");
    assert!(
        error["message"].as_str().unwrap().contains("300 ms"),
        "{error}"
    );
    // The next call gets a fresh instance and the same treatment, not a wedged host.
    assert_eq!(server.route(&format!("{id}/spin")).0, 504);
    let ready = server
        .http
        .get(format!("{}/readyz", server.base))
        .send()
        .unwrap();
    assert_eq!(ready.status(), 200);
}
