//! The MCP gateway (`/mcp`) on the real binary: scoped clients, tokens, the checks made at
//! install, hostile tools, list-change notifications in both protocol generations, the
//! guards, and that nothing a client sends reaches grants, tokens or the policy.

mod harness;

use harness::mcp::{Mcp, client};
use harness::support::plugin;
use harness::*;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const POLICY: &str = "[defaults.capabilities.routes]
[defaults.capabilities.mcp]
[plugins.forge.limits]
deadline_ms = 500
memory_mib = 256
";

fn installed(server: &Server, name: &str) {
    let response = server.install(plugin(name));
    assert_eq!(
        response.status(),
        201,
        "{name}: {}",
        response.text().unwrap()
    );
}

/// A sidecar manifest for the tool-forge plugin: `declared` tools, and `offer` (what its
/// `list-tools` will answer) as its config default.
fn forge_manifest(id: &str, declared: &[&str], offer: Value) -> String {
    let manifest = json!({
        "id": id,
        "version": "0.1.0",
        "capabilities": {
            "mcp": {"tools": declared},
            "config": {"schema": {
                "type": "object",
                "properties": {"offer": {"type": "array", "default": offer}},
            }},
        },
    });
    toml::to_string(&manifest).unwrap()
}

fn offer(names: &[&str]) -> Value {
    names
        .iter()
        .map(|name| json!({"name": name, "description": format!("{name} tool")}))
        .collect()
}

fn forge(
    server: &Server,
    id: &str,
    declared: &[&str],
    offered: Value,
) -> reqwest::blocking::Response {
    server.install_with_manifest(
        plugin("hostile_tool_forge"),
        &forge_manifest(id, declared, offered),
    )
}

/// The installed forge with its default tools (spin, hog, flood, echo, fail).
fn default_forge(server: &Server) {
    let manifest = std::fs::read_to_string(format!(
        "{}/../plugins/hostile/tool-forge/capstan.toml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let response = server.install_with_manifest(plugin("hostile_tool_forge"), &manifest);
    assert_eq!(response.status(), 201, "{}", response.text().unwrap());
}

fn result_text(answer: &Value) -> &str {
    answer["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text content in {answer}"))
}

fn is_error(answer: &Value) -> bool {
    answer["result"]["isError"] == true
}

#[test]
fn a_client_lists_and_calls_only_the_tools_in_its_scope() {
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, &[]);
    installed(&server, "tools");
    installed(&server, "bench");
    let (_, tools_token) = client(&server, json!({"name": "agent", "plugins": ["tools"]}));
    let (_, bench_token) = client(&server, json!({"name": "bencher", "plugins": ["bench"]}));
    let (_, all_token) = client(&server, json!({"name": "ops", "plugins": ["*"]}));
    let (_, add_token) = client(
        &server,
        json!({"name": "adder", "plugins": ["tools"], "tools": ["tools__add"]}),
    );
    let tools = Mcp::new(&server, Some(&tools_token));

    assert_eq!(
        tools.list(),
        ["tools__add", "tools__text-stats", "tools__word-count"]
    );
    assert_eq!(
        Mcp::new(&server, Some(&bench_token)).list(),
        ["bench__noop"]
    );
    assert_eq!(
        Mcp::new(&server, Some(&all_token)).list(),
        [
            "bench__noop",
            "tools__add",
            "tools__text-stats",
            "tools__word-count"
        ]
    );
    let adder = Mcp::new(&server, Some(&add_token));
    assert_eq!(adder.list(), ["tools__add"]);

    let sum = tools.call("tools__add", json!({"a": 2, "b": 40}));
    assert!(!is_error(&sum), "{sum}");
    assert_eq!(result_text(&sum), "42.0");

    // Out of scope, or not there at all: the same answer, which reveals nothing.
    for (client, name) in [
        (&tools, "bench__noop"),
        (&adder, "tools__word-count"),
        (&tools, "nothing__here"),
    ] {
        let answer = client.call(name, json!({}));
        assert_eq!(answer["error"]["code"], -32602, "{name}: {answer}");
        assert_eq!(
            answer["error"]["message"],
            format!("Unknown tool: {name}"),
            "{answer}"
        );
    }

    // Annotations and output schemas from the manifest; a structured result.
    let (_, listing) = tools.request("tools/list", json!({}));
    let add = &listing["result"]["tools"][0];
    assert_eq!(add["annotations"]["readOnlyHint"], true, "{add}");
    assert_eq!(add["title"], "Add two numbers");
    assert_eq!(listing["result"]["cacheScope"], "private");
    let stats = tools.call("tools__text-stats", json!({"text": "a b\nc"}));
    assert_eq!(
        stats["result"]["structuredContent"],
        json!({"words": 3, "characters": 5, "lines": 2}),
        "{stats}"
    );
}

#[test]
fn arguments_are_checked_before_the_plugin_runs_and_errors_come_back_as_results() {
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, &[]);
    installed(&server, "tools");
    default_forge(&server);
    let (client_id, token) = client(
        &server,
        json!({"name": "agent", "plugins": ["tools", "forge"]}),
    );
    let mcp = Mcp::new(&server, Some(&token));

    let bad = mcp.call("tools__add", json!({"a": 1, "b": "two"}));
    assert!(is_error(&bad), "{bad}");
    assert!(
        result_text(&bad).contains("`/b`") && result_text(&bad).contains("number"),
        "{bad}"
    );
    let (_, logs) = server.json(Method::GET, "/logs?plugin=tools");
    assert!(
        logs.as_array().unwrap().is_empty(),
        "the plugin never ran: {logs}"
    );

    let failed = mcp.call("forge__fail", json!({}));
    assert!(is_error(&failed));
    assert!(
        result_text(&failed).contains("the forge refuses"),
        "{failed}"
    );

    // The call context carries the client's id and name and the call id, which is also
    // in the audit record, with the arguments' hash and never the arguments.
    let echoed = mcp.call("forge__echo", json!({"secret-looking": "hunter2"}));
    let context: Value = serde_json::from_str(result_text(&echoed)).unwrap();
    assert_eq!(context["client_id"], client_id.as_str());
    assert_eq!(context["client_name"], "agent");
    let call_id = context["call_id"].as_str().unwrap().to_string();
    let (_, audit) = server.json(Method::GET, "/audit?plugin=forge&kind=tool-call");
    let record = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["detail"].as_str().unwrap().contains(&call_id))
        .unwrap_or_else(|| panic!("no audit record of call {call_id}: {audit}"));
    let detail = record["detail"].as_str().unwrap();
    assert!(
        detail.contains(&client_id) && detail.contains("echo") && detail.contains("ok"),
        "{detail}"
    );
    assert!(detail.contains("arguments sha256 "), "{detail}");
    assert!(!detail.contains("hunter2"), "{detail}");

    let metrics = server.metrics();
    assert!(
        metrics.contains(
            r#"capstan_mcp_calls_total{plugin="tools",tool="add",outcome="invalid-arguments"} 1"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"capstan_mcp_calls_total{plugin="forge",tool="fail",outcome="tool-error"} 1"#
        ),
        "{metrics}"
    );
}

#[test]
fn hostile_tools_end_in_is_error_within_their_deadline_while_others_are_served() {
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, &[]);
    installed(&server, "tools");
    default_forge(&server);
    let (_, attacker) = client(&server, json!({"name": "attacker", "plugins": ["forge"]}));
    let (_, bystander) = client(&server, json!({"name": "bystander", "plugins": ["tools"]}));
    let base = server.base.clone();
    let served = std::thread::spawn(move || {
        let mcp = Mcp::at(&base, Some(&bystander));
        (0..20)
            .map(|n| mcp.call("tools__add", json!({"a": n, "b": 1})))
            .filter(|answer| !is_error(answer) && answer["result"].is_object())
            .count()
    });
    let attack = Mcp::new(&server, Some(&attacker));
    for (tool, outcome) in [
        ("forge__spin", "timeout"),
        ("forge__hog", "memory-limit"),
        ("forge__flood", "too-large"),
    ] {
        let started = Instant::now();
        let answer = attack.call(tool, json!({}));
        let took = started.elapsed();
        assert!(is_error(&answer), "{tool}: {answer}");
        let text = result_text(&answer);
        assert!(
            text.contains(outcome) || text.contains("bytes; the limit is"),
            "{tool}: {text}"
        );
        assert!(
            !text.contains("wasm") && !text.contains("backtrace"),
            "no internals: {text}"
        );
        assert!(
            took < Duration::from_millis(750),
            "{tool} took {took:?} (deadline 500 ms + 50 %)"
        );
    }
    assert_eq!(
        served.join().unwrap(),
        20,
        "the bystander was served throughout"
    );
}

#[test]
fn installs_refuse_undeclared_overlong_colliding_and_malformed_tools() {
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, &[]);
    installed(&server, "tools");
    let before = server.installed();
    let refusals = [
        (
            forge(
                &server,
                "forge",
                &["echo"],
                offer(&["echo", "rm-everything"]),
            ),
            "undeclared-tool",
            "rm-everything",
        ),
        (
            forge(&server, "forge", &["echo", "spin"], offer(&["echo"])),
            "invalid-tool",
            "spin",
        ),
        (
            forge(
                &server,
                &"f".repeat(40),
                &[&"t".repeat(30)],
                offer(&[&"t".repeat(30)]),
            ),
            "invalid-tool",
            "at most 64",
        ),
        (
            forge(
                &server,
                "forge",
                &["echo"],
                json!([{"name": "echo", "schema": "{\"type\": \"string\"}"}]),
            ),
            "invalid-tool",
            "\"type\": \"object\"",
        ),
        (
            forge(
                &server,
                "forge",
                &["echo"],
                json!([{"name": "echo", "description": "Echo.\u{202e}hidden"}]),
            ),
            "invalid-tool",
            "bidi",
        ),
    ];
    for (response, code, named) in refusals {
        assert_eq!(response.status(), 422);
        let body: Value = response.json().unwrap();
        assert_eq!(body["code"], code, "{body}");
        assert!(body["message"].as_str().unwrap().contains(named), "{body}");
    }
    assert_eq!(
        server.installed(),
        before,
        "nothing was installed or changed"
    );

    // `a` + `b__c` and `a__b` + `c` would both be `a__b__c`.
    assert_eq!(
        forge(&server, "a", &["b__c"], offer(&["b__c"])).status(),
        201
    );
    let collision = forge(&server, "a__b", &["c"], offer(&["c"]));
    assert_eq!(collision.status(), 422);
    let body: Value = collision.json().unwrap();
    assert_eq!(body["code"], "tool-collision", "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("a__b__c") && message.contains("`a`"),
        "{message}"
    );
}

#[test]
fn missing_forged_revoked_and_expired_tokens_are_refused_and_open_nothing_else() {
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, &[]);
    installed(&server, "tools");
    let (id, token) = client(&server, json!({"name": "agent", "plugins": ["tools"]}));
    let (_, short) = client(
        &server,
        json!({"name": "brief", "plugins": ["tools"], "expires_in": "1s"}),
    );
    let status = |token: Option<&str>| {
        let response = Mcp::new(&server, token)
            .modern("tools/list", json!({}))
            .send()
            .unwrap();
        let challenge = response
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_string());
        (response.status().as_u16(), challenge)
    };
    assert_eq!(status(Some(&token)).0, 200);
    let (missing, challenge) = status(None);
    assert_eq!(missing, 401);
    assert!(challenge.unwrap().starts_with("Bearer"));
    assert_eq!(status(Some("cmcp_forged")).0, 401);
    assert_eq!(
        status(Some(TOKEN)).0,
        401,
        "the admin token is not an MCP token"
    );

    // An MCP token opens nothing under /admin, nor /metrics.
    for path in ["/admin/v1/plugins", "/admin/v1/mcp/clients", "/metrics"] {
        let response = server
            .http
            .get(format!("{}{path}", server.base))
            .bearer_auth(&token)
            .send()
            .unwrap();
        assert_eq!(response.status(), 401, "{path}");
    }

    let revoked = server
        .admin(Method::DELETE, &format!("/mcp/clients/{id}"))
        .send()
        .unwrap();
    assert_eq!(revoked.status(), 204);
    assert_eq!(status(Some(&token)).0, 401, "revoked at once on this host");

    eventually(Duration::from_secs(5), "the 1 s token expires", || {
        status(Some(&short)).0 == 401
    });

    let (_, listed) = server.json(Method::GET, "/mcp/clients");
    let listed = listed.to_string();
    assert!(
        !listed.contains("cmcp_"),
        "tokens are never listed: {listed}"
    );
}

#[test]
fn nothing_a_client_calls_or_sends_changes_grants_tokens_or_policy() {
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, &[]);
    installed(&server, "tools");
    installed(&server, "bench");
    default_forge(&server);
    let (_, token) = client(&server, json!({"name": "agent", "plugins": ["*"]}));
    let snapshot = || {
        (
            server.json(Method::GET, "/plugins").1,
            server.json(Method::GET, "/mcp/clients").1,
            server
                .admin(Method::GET, "/policy")
                .send()
                .unwrap()
                .text()
                .unwrap(),
        )
    };
    let before = snapshot();
    let mcp = Mcp::new(&server, Some(&token));
    let grant_like = json!({
        "plugins": ["*"], "tools": ["*"], "policy": "[defaults.capabilities.kv]",
        "capability": "secrets", "grant": true, "token": TOKEN,
    });
    for name in mcp.list() {
        if matches!(name.as_str(), "forge__spin" | "forge__hog" | "forge__flood") {
            continue;
        }
        mcp.call(&name, grant_like.clone());
        mcp.call(&name, json!({}));
    }
    // Every admin operation, tried with the MCP token.
    let (_, document) = server.json(Method::GET, "/openapi.json");
    for (path, item) in document["paths"].as_object().unwrap() {
        let path = path
            .replace("{id}", "tools")
            .replace("{plugin}", "tools")
            .replace("{name}", "x");
        let methods = item.as_object().unwrap().keys();
        for method in methods.filter(|m| ["get", "put", "post", "delete"].contains(&m.as_str())) {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let response = server
                .http
                .request(method.clone(), format!("{}{path}", server.base))
                .bearer_auth(&token)
                .body("[defaults.capabilities.kv]")
                .send()
                .unwrap();
            assert_eq!(response.status(), 401, "{method} {path}");
        }
    }
    // JSON-RPC methods a client might try for more power.
    for method in ["resources/list", "prompts/list", "capstan/grant"] {
        let (status, answer) = mcp.request(method, grant_like.clone());
        assert!(
            status >= 400 || answer.get("error").is_some(),
            "{method}: {status} {answer}"
        );
    }
    assert_eq!(snapshot(), before);
}

#[test]
fn clients_hear_list_changed_only_when_their_own_list_changes() {
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, &[]);
    installed(&server, "tools");
    installed(&server, "bench");
    let (_, tools_token) = client(&server, json!({"name": "legacy", "plugins": ["tools"]}));
    let (_, bench_token) = client(&server, json!({"name": "modern", "plugins": ["bench"]}));
    let legacy_client = Mcp::new(&server, Some(&tools_token));
    let session = legacy_client.session();
    let tools_stream = session.stream();
    let modern_client = Mcp::new(&server, Some(&bench_token));
    let bench_stream = modern_client.listen();
    let passes = || {
        server
            .metric("capstan_mcp_announcements_total")
            .unwrap_or(0.0)
    };
    let sent = || {
        server
            .metric("capstan_mcp_list_changed_total")
            .unwrap_or(0.0)
    };
    let wait = Duration::from_secs(10);

    // Upgrading bench changes only the modern client's list.
    let done = passes();
    assert_eq!(server.install(variant(plugin("bench"), "b2")).status(), 201);
    let heard = bench_stream.next(wait).expect("the bench client hears it");
    assert_eq!(
        heard["method"], "notifications/tools/list_changed",
        "{heard}"
    );
    eventually(wait, "the announcement is done", || passes() > done);
    assert_eq!(sent(), 1.0, "only the bench client was told");

    // A change to tools reaches the legacy session's GET stream.
    let done = passes();
    assert_eq!(server.install(variant(plugin("tools"), "t2")).status(), 201);
    let heard = tools_stream.next(wait).expect("the tools client hears it");
    assert_eq!(
        heard["method"], "notifications/tools/list_changed",
        "{heard}"
    );
    eventually(wait, "the announcement is done", || passes() > done);
    assert_eq!(sent(), 2.0);
    assert!(bench_stream.pending().is_empty());

    // Disabling, enabling, a policy change and removal are changes too.
    let done = passes();
    assert_eq!(server.json(Method::POST, "/plugins/tools/disable").0, 200);
    tools_stream.next(wait).expect("disable is announced");
    eventually(wait, "the announcement is done", || passes() > done);
    let policy = format!("{POLICY}[plugins.bench.capabilities.mcp]\ntools = []\n");
    let changed = server
        .admin(Method::PUT, "/policy")
        .body(policy)
        .send()
        .unwrap();
    assert_eq!(changed.status(), 200, "{}", changed.text().unwrap());
    bench_stream
        .next(wait)
        .expect("the policy change is announced");
    assert!(Mcp::new(&server, Some(&bench_token)).list().is_empty());
    assert_eq!(server.json(Method::DELETE, "/plugins/bench").0, 204);
    // The session still answers requests after all that.
    let listed = session.request("tools/list", json!({}));
    assert!(
        listed["result"]["tools"].as_array().unwrap().is_empty(),
        "{listed}"
    );
}

#[test]
fn host_origin_size_and_rate_guards_hold() {
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, &[]);
    installed(&server, "tools");
    let (_, token) = client(&server, json!({"name": "agent", "plugins": ["tools"]}));
    let (_, slow) = client(
        &server,
        json!({"name": "slow", "plugins": ["tools"], "rate_per_minute": 3}),
    );
    let mcp = Mcp::new(&server, Some(&token));
    let rebinding = mcp
        .modern("tools/list", json!({}))
        .header("host", "evil.example:80")
        .send()
        .unwrap();
    assert_eq!(rebinding.status(), 403, "a Host it does not serve");
    let cross_site = mcp
        .modern("tools/list", json!({}))
        .header("origin", "https://evil.example")
        .send()
        .unwrap();
    assert_eq!(cross_site.status(), 403, "an Origin it does not allow");
    let port = server.base.rsplit(':').next().unwrap();
    for own in [
        format!("http://127.0.0.1:{port}"),
        format!("http://localhost:{port}"),
    ] {
        let same_origin = mcp
            .modern("tools/list", json!({}))
            .header("origin", &own)
            .send()
            .unwrap();
        assert_eq!(same_origin.status(), 200, "its own loopback origin {own}");
    }
    let huge = mcp
        .modern(
            "tools/call",
            json!({"name": "tools__word-count", "arguments": {"text": "w ".repeat(700_000)}}),
        )
        .send()
        .unwrap();
    assert_eq!(huge.status(), 413);

    let limited = Mcp::new(&server, Some(&slow));
    for _ in 0..3 {
        assert_eq!(limited.request("tools/list", json!({})).0, 200);
    }
    let refused = limited.modern("tools/list", json!({})).send().unwrap();
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "1");
    assert_eq!(
        mcp.request("tools/list", json!({})).0,
        200,
        "others are not limited"
    );
}

#[test]
fn a_2026_notification_without_mcp_method_is_accepted_and_dropped() {
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, &[]);
    let (_, token) = client(&server, json!({"name": "agent", "plugins": ["*"]}));
    let response = server
        .http
        .post(format!("{}/mcp", server.base))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .json(
            &json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
            "params": {"requestId": "listen:0"}}),
        )
        .send()
        .unwrap();
    assert_eq!(response.status(), 202);
    let request_without_method = server
        .http
        .post(format!("{}/mcp", server.base))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}))
        .send()
        .unwrap();
    assert_eq!(
        request_without_method.status(),
        400,
        "requests still need their headers"
    );
}

#[test]
fn a_revoked_clients_listen_stream_ends_at_the_next_change() {
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, &[]);
    let (id, token) = client(&server, json!({"name": "agent", "plugins": ["*"]}));
    let (_, other) = client(&server, json!({"name": "other", "plugins": ["*"]}));
    let doomed = Mcp::new(&server, Some(&token)).listen();
    let kept = Mcp::new(&server, Some(&other)).listen();
    let revoked = server
        .admin(Method::DELETE, &format!("/mcp/clients/{id}"))
        .send()
        .unwrap();
    assert_eq!(revoked.status(), 204);
    installed(&server, "tools");
    assert!(doomed.ends_within(Duration::from_secs(10)));
    let heard = kept
        .next(Duration::from_secs(10))
        .expect("the other client hears it");
    assert_eq!(heard["method"], "notifications/tools/list_changed");
}

#[test]
fn paging_is_deterministic_and_cursors_are_checked() {
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, &[]);
    let names: Vec<String> = (0..120).map(|n| format!("t{n:03}")).collect();
    let declared: Vec<&str> = names.iter().map(String::as_str).collect();
    assert_eq!(
        forge(&server, "forge", &declared, offer(&declared)).status(),
        201
    );
    let (_, token) = client(&server, json!({"name": "agent", "plugins": ["forge"]}));
    let mcp = Mcp::new(&server, Some(&token));
    let (_, first) = mcp.request("tools/list", json!({}));
    assert_eq!(first["result"]["tools"].as_array().unwrap().len(), 100);
    let all = mcp.list();
    let expected: Vec<String> = names.iter().map(|n| format!("forge__{n}")).collect();
    assert_eq!(all, expected);
    assert_eq!(mcp.list(), all, "the same order every time");
    let (_, bad) = mcp.request("tools/list", json!({"cursor": "zz-not-a-cursor"}));
    assert_eq!(bad["error"]["code"], -32602, "{bad}");
}

#[test]
fn a_bare_names_client_sees_one_plugins_tools_unprefixed() {
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, &[]);
    installed(&server, "tools");
    let (_, token) = client(
        &server,
        json!({"name": "fixed", "plugins": ["tools"], "bare_names": true}),
    );
    let mcp = Mcp::new(&server, Some(&token));
    assert_eq!(mcp.list(), ["add", "text-stats", "word-count"]);
    assert_eq!(
        result_text(&mcp.call("add", json!({"a": 1, "b": 1}))),
        "2.0"
    );
    let refused = server
        .admin(Method::POST, "/mcp/clients")
        .json(&json!({"name": "x", "plugins": ["tools", "bench"], "bare_names": true}))
        .send()
        .unwrap();
    assert_eq!(refused.status(), 422);
    let body: Value = refused.json().unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("bare_names"),
        "{body}"
    );
}
