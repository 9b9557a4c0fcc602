//! `capstan serve` driven over HTTP as an operator would: the real binary on an
//! ephemeral port with its own data directory.

mod harness;

use harness::support::plugin;
use harness::*;
use reqwest::blocking::Client;
use serde_json::Value;
use std::process::Command;

#[test]
fn install_route_upgrade_rollback_disable_delete() {
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, &[]);
    let v1 = plugin("hello");
    let v2 = variant(v1.clone(), "v2");

    let created = server.install(v1);
    assert_eq!(created.status(), 201);
    let created: Value = created.json().unwrap();
    assert_eq!(
        (created["id"].as_str(), created["seq"].as_i64()),
        (Some("hello"), Some(1))
    );
    assert_eq!(
        server.route("hello/hi?name=Ada"),
        (200, "Hello, Ada! (GET /hi)\n".into())
    );

    let upgraded: Value = server.install(v2).json().unwrap();
    assert_eq!(upgraded["seq"], 2);
    let v2_sha = upgraded["sha256"].as_str().unwrap().to_string();
    assert_eq!(server.route("hello/").0, 200);

    let (status, rolled) = server.json(reqwest::Method::POST, "/plugins/hello/rollback");
    assert_eq!((status, rolled["seq"].as_i64()), (200, Some(1)));
    assert_ne!(rolled["sha256"].as_str(), Some(v2_sha.as_str()));
    let (_, versions) = server.json(reqwest::Method::GET, "/plugins/hello/versions");
    assert_eq!(versions.as_array().unwrap().len(), 2);

    assert_eq!(
        server
            .json(reqwest::Method::POST, "/plugins/hello/disable")
            .0,
        200
    );
    assert_eq!(server.route("hello/").0, 404);
    assert_eq!(
        server
            .json(reqwest::Method::POST, "/plugins/hello/enable")
            .0,
        200
    );
    assert_eq!(server.route("hello/").0, 200);

    assert_eq!(
        server
            .admin(reqwest::Method::DELETE, "/plugins/hello")
            .send()
            .unwrap()
            .status(),
        204
    );
    assert_eq!(server.route("hello/").0, 404);
    assert!(server.installed().is_empty());
    assert_eq!(server.json(reqwest::Method::GET, "/plugins/hello").0, 404);
}

#[test]
fn failed_upgrade_leaves_the_old_version_serving() {
    let (_keep, dir) = temp();
    let v1 = plugin("hello");
    let sha = {
        use std::fmt::Write;
        let digest = <sha2::Sha256 as sha2::Digest>::digest(&v1);
        digest.iter().fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    };
    let server = start(
        &dir,
        &format!("{POLICY}[plugins.hello]\nsha256 = \"{sha}\"\n"),
        &[],
    );
    assert_eq!(server.install(v1).status(), 201);
    let refused = server.install(variant(plugin("hello"), "unpinned"));
    assert_eq!(refused.status(), 422);
    let body: Value = refused.json().unwrap();
    assert_eq!(body["code"], "pin-mismatch");
    assert_eq!(server.installed(), [("hello".to_string(), sha)]);
    assert_eq!(server.route("hello/").0, 200);
}

#[test]
fn bad_uploads_get_4xx_with_a_code_and_change_nothing() {
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, &["--max-upload-bytes", "1000000"]);
    assert_eq!(server.install(plugin("hello")).status(), 201);
    let before = server.installed();
    let hello = plugin("hello");
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (b"not wasm at all".to_vec(), 400, "not-wasm"),
        (
            hello[..hello.len() / 2].to_vec(),
            400,
            "malformed-component",
        ),
        (wat::parse_str("(module)").unwrap(), 400, "core-module"),
        (plugin("hostile-other-world"), 422, "wrong-world"),
        (plugin("hostile_unknown_import"), 422, "unknown-import"),
        (plugin("hostile_undeclared_kv"), 422, "undeclared-import"),
        (plugin("hostile_fs_reader"), 422, "forbidden-import"),
        (vec![0u8; 1_000_001], 413, "too-large"),
    ];
    for (bytes, status, code) in cases {
        let response = server.install(bytes);
        assert_eq!(response.status().as_u16(), status, "{code}");
        let body: Value = response.json().unwrap();
        assert_eq!(body["code"], code);
        assert!(!body["message"].as_str().unwrap().is_empty());
        assert_eq!(server.installed(), before, "after {code}");
    }
    assert_eq!(server.route("hello/").0, 200);
}

#[test]
fn admin_api_requires_the_bearer_token() {
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, &[]);
    let url = format!("{}/admin/v1/plugins", server.base);
    assert_eq!(server.http.get(&url).send().unwrap().status(), 401);
    assert_eq!(
        server
            .http
            .get(&url)
            .bearer_auth("wrong-token-0123456789")
            .send()
            .unwrap()
            .status(),
        401
    );
    // Its own client: the server answers 401 without reading the body and closes that connection.
    let forged = Client::new()
        .post(&url)
        .bearer_auth("")
        .body(wat::parse_str("(component)").unwrap())
        .send()
        .unwrap();
    assert_eq!(forged.status(), 401);
    assert_eq!(
        server
            .http
            .get(&url)
            .bearer_auth(TOKEN)
            .send()
            .unwrap()
            .status(),
        200
    );
    assert!(
        server.installed().is_empty(),
        "the forged install did nothing"
    );
}

#[test]
fn installed_plugins_survive_a_restart() {
    let (_keep, dir) = temp();
    {
        let server = start(&dir, POLICY, &[]);
        assert_eq!(server.install(plugin("hello")).status(), 201);
        assert_eq!(
            server
                .json(reqwest::Method::POST, "/plugins/hello/disable")
                .0,
            200
        );
    }
    let server = start(&dir, POLICY, &[]);
    let (_, info) = server.json(reqwest::Method::GET, "/plugins/hello");
    assert_eq!(
        (info["status"].as_str(), info["enabled"].as_bool()),
        (Some("running"), Some(false))
    );
    assert_eq!(
        server
            .json(reqwest::Method::POST, "/plugins/hello/enable")
            .0,
        200
    );
    assert_eq!(server.route("hello/x").0, 200);
}

#[test]
fn plugin_failures_map_to_504_and_502_without_internals() {
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, &[]);
    assert_eq!(server.install(plugin("hostile_misbehave")).status(), 201);
    let (status, body) = server.route("misbehave/loop");
    assert_eq!(status, 504, "{body}");
    let (status, body) = server.route("misbehave/recursion");
    assert_eq!(status, 502, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["code"], "plugin-failed");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("error id e"), "{message}");
    assert!(
        !message.contains("wasm") && !message.contains("backtrace"),
        "{message}"
    );
    assert_eq!(server.route("misbehave/ok"), (200, "ok".into()));
    assert_eq!(server.route("nobody/").0, 404);
}

#[test]
fn health_and_readiness_report_the_plugins_loaded() {
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, &[]);
    assert_eq!(
        server
            .http
            .get(format!("{}/healthz", server.base))
            .send()
            .unwrap()
            .status(),
        200
    );
    assert_eq!(server.install(plugin("hello")).status(), 201);
    let ready: Value = server
        .http
        .get(format!("{}/readyz", server.base))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        ready,
        serde_json::json!({ "status": "ready", "plugins": 1, "failed": 0 })
    );
}

#[test]
fn sigterm_drains_and_exits_zero() {
    let (_keep, dir) = temp();
    // A 3 s deadline, so polling /metrics on a loaded machine still sees the call in
    // flight before it ends.
    let policy = POLICY.replace("deadline_ms = 200", "deadline_ms = 3000");
    assert_ne!(policy, POLICY);
    let mut server = start(&dir, &policy, &[]);
    assert_eq!(server.install(plugin("hostile_misbehave")).status(), 201);
    // A call that runs until its deadline is in flight when SIGTERM arrives.
    let in_flight = {
        let url = format!("{}/plugins/misbehave/loop", server.base);
        std::thread::spawn(move || Client::new().get(url).send().map(|r| r.status().as_u16()))
    };
    eventually(
        std::time::Duration::from_secs(5),
        "the looping call is in flight",
        || server.metric("capstan_plugin_calls_in_flight{plugin=\"misbehave\"}") == Some(1.0),
    );
    terminate(&server);
    assert_eq!(
        in_flight.join().unwrap().unwrap(),
        504,
        "the call finished, not cut off"
    );
    let status = server.child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[test]
fn draining_is_bounded_by_drain_seconds() {
    use std::io::Write;
    let (_keep, dir) = temp();
    let mut server = start(&dir, POLICY, &["--drain-seconds", "1"]);
    assert_eq!(server.install(plugin("hello")).status(), 201);
    // A client that announces a body and never sends it keeps its request in flight; the
    // server's `100 Continue` says the handler is already waiting for that body.
    let address = server.base.trim_start_matches("http://").to_string();
    let mut stalled = std::net::TcpStream::connect(address).unwrap();
    stalled
        .write_all(
            b"POST /plugins/hello/ HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n",
        )
        .unwrap();
    let mut interim = [0u8; 25];
    std::io::Read::read_exact(&mut stalled, &mut interim).unwrap();
    assert!(
        interim.starts_with(b"HTTP/1.1 100 Continue"),
        "{}",
        String::from_utf8_lossy(&interim)
    );
    stalled.write_all(b"abc").unwrap();
    let signalled = std::time::Instant::now();
    terminate(&server);
    let status = server.child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");
    let took = signalled.elapsed();
    assert!(
        took >= std::time::Duration::from_millis(900) && took < std::time::Duration::from_secs(5),
        "exited {took:?} after SIGTERM; the drain bound is 1 s"
    );
}

impl Server {
    fn send_text(&self, method: reqwest::Method, path: &str, body: &str) -> (u16, Value) {
        let response = self
            .admin(method, path)
            .body(body.to_string())
            .send()
            .unwrap();
        (
            response.status().as_u16(),
            response.json().unwrap_or(Value::Null),
        )
    }
}

const KV_GRANTED: &str = "[defaults.capabilities.routes]\n[plugins.counter.capabilities.kv]\n";

#[test]
fn policy_change_regrants_live_plugins_atomically_and_persists() {
    let (_keep, dir) = temp();
    {
        let server = start(&dir, POLICY, &[]);
        assert_eq!(server.install(plugin("counter")).status(), 201);
        assert_eq!(
            server.route("counter/x").0,
            403,
            "kv denied under the seed policy"
        );

        let (status, dry) = server.send_text(reqwest::Method::POST, "/policy/dry-run", KV_GRANTED);
        assert_eq!(status, 200);
        assert_eq!(
            dry,
            serde_json::json!({"applied": false, "changes": [
                {"plugin": "counter", "capability": "storage.kv", "before": "denied", "after": "granted"}
            ]})
        );
        assert_eq!(
            server.route("counter/x").0,
            403,
            "a dry run changes nothing"
        );

        let (status, body) = server.send_text(
            reqwest::Method::PUT,
            "/policy",
            "[defaults.capabilities.sockets]\n",
        );
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("invalid-policy"))
        );
        assert!(
            body["message"].as_str().unwrap().contains("sockets"),
            "{body}"
        );

        let pinned = format!(
            "{KV_GRANTED}[plugins.counter]\nsha256 = \"{}\"\n",
            "0".repeat(64)
        );
        let (status, body) = server.send_text(reqwest::Method::PUT, "/policy", &pinned);
        assert_eq!(
            (status, body["code"].as_str()),
            (422, Some("policy-rejected"))
        );
        assert!(
            body["message"].as_str().unwrap().contains("counter"),
            "{body}"
        );
        assert_eq!(
            server.route("counter/x").0,
            403,
            "a rejected policy changes nothing"
        );

        let (status, applied) = server.send_text(reqwest::Method::PUT, "/policy", KV_GRANTED);
        assert_eq!((status, applied["applied"].as_bool()), (200, Some(true)));
        assert_eq!(
            server.route("counter/x"),
            (200, r#"{"hits":1,"path":"/x"}"#.into())
        );
        let policy = server
            .admin(reqwest::Method::GET, "/policy")
            .send()
            .unwrap()
            .text()
            .unwrap();
        assert_eq!(policy, KV_GRANTED);
    }
    let server = start(&dir, POLICY, &[]);
    assert_eq!(
        server.route("counter/x"),
        (200, r#"{"hits":2,"path":"/x"}"#.into()),
        "the stored policy wins over the seed"
    );
}

#[test]
fn secrets_are_write_only_over_the_api() {
    const VALUE: &str = "api-secret-value-98765";
    let (_keep, dir) = temp();
    let policy = "[defaults.capabilities.routes]\n[plugins.vault.capabilities.secrets]\nnames = [\"api-token\"]\n";
    let server = start(&dir, policy, &[]);
    assert_eq!(server.install(plugin("vault")).status(), 201);
    assert_eq!(server.route("vault/").0, 404, "not set yet");
    let put = server
        .admin(reqwest::Method::PUT, "/secrets/vault/api-token")
        .body(VALUE)
        .send()
        .unwrap();
    assert_eq!(put.status(), 204);
    assert_eq!(
        server.route("vault/"),
        (200, r#"{"api-token":"set","length":22}"#.into())
    );
    let listing = server
        .admin(reqwest::Method::GET, "/secrets")
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(listing, r#"[{"plugin":"vault","name":"api-token"}]"#);
    let audit = server
        .admin(reqwest::Method::GET, "/audit?limit=1000")
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(audit.contains("secret `api-token` set"), "{audit}");
    assert!(!audit.contains(VALUE) && !listing.contains(VALUE));
    let (status, body) = server.send_text(reqwest::Method::PUT, "/secrets/vault/bad name", "x");
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid-secret"))
    );
    assert_eq!(
        server
            .admin(reqwest::Method::DELETE, "/secrets/vault/api-token")
            .send()
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        server
            .admin(reqwest::Method::DELETE, "/secrets/vault/api-token")
            .send()
            .unwrap()
            .status(),
        404
    );
    assert_eq!(server.route("vault/").0, 404);
}

#[test]
fn audit_and_logs_are_queryable() {
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, &[]);
    assert_eq!(server.install(plugin("hello")).status(), 201);
    assert_eq!(server.route("hello/?name=Query").0, 200);
    let (status, logs) = server.json(reqwest::Method::GET, "/logs?plugin=hello&level=info");
    assert_eq!(status, 200);
    assert_eq!(logs[0]["message"], "greeting Query");
    assert_eq!(logs[0]["source"], "guest");
    let (_, none) = server.json(reqwest::Method::GET, "/logs?plugin=hello&level=error");
    assert_eq!(none, serde_json::json!([]));
    let (status, installed) =
        server.json(reqwest::Method::GET, "/audit?kind=installed&plugin=hello");
    assert_eq!(status, 200);
    assert_eq!(installed.as_array().unwrap().len(), 1);
    let later = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
        + 60_000;
    let (_, future) = server.json(reqwest::Method::GET, &format!("/audit?since={later}"));
    assert_eq!(future, serde_json::json!([]));
    let (status, body) = server.json(reqwest::Method::GET, "/audit?kind=nonsense");
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid-query"))
    );
}

/// The server itself deletes log lines and audit records past the policy's retention (at
/// start, then every minute): by age for every plugin, by count for the plugin whose
/// policy keeps only its newest lines; what is kept stays queryable.
#[test]
fn records_past_their_retention_are_pruned_by_the_server() {
    use capstan_host::audit::{AuditEvent, AuditKind, AuditSink};
    use capstan_host::capability::log::{LogLevel, LogRecord, LogSink, LogSource};
    use std::time::{Duration, SystemTime};
    let (_keep, dir) = temp();
    let now = SystemTime::now();
    let days = |n: u64| now - Duration::from_secs(n * 24 * 3600);
    let line = |plugin: &str, time, message: &str| LogRecord {
        time,
        plugin: plugin.into(),
        call_id: "c1".into(),
        level: LogLevel::Info,
        source: LogSource::Guest,
        message: message.into(),
    };
    std::fs::create_dir_all(dir.join("data")).unwrap();
    {
        let store = capstan_host::storage::SqliteStore::open(
            &dir.join("data")
                .join(capstan_host::cli::state::DATABASE_FILE),
        )
        .unwrap();
        let mut lines = vec![
            line("quiet", days(10), "ten days old"),
            line("quiet", days(3), "three days old"),
        ];
        lines.extend((0..5).map(|n| line("chatty", now, &format!("recent {n}"))));
        store.write_all(lines);
        store.record_all(vec![
            AuditEvent {
                time: days(40),
                ..AuditEvent::new("quiet", AuditKind::Denied, None, "forty days old".into())
            },
            AuditEvent::new("quiet", AuditKind::Denied, None, "today".into()),
        ]);
    }
    let policy = format!(
        "{POLICY}[defaults.log]\nretention = \"7d\"\n[plugins.chatty.log]\nretention_lines = 2\n\
         [audit]\nretention = \"30d\"\n"
    );
    let server = start(&dir, &policy, &[]);
    let listed = |path: &str, field: &str| -> Vec<String> {
        let (status, rows) = server.json(reqwest::Method::GET, path);
        assert_eq!(status, 200, "{rows}");
        rows.as_array()
            .unwrap()
            .iter()
            .map(|row| row[field].as_str().unwrap().to_string())
            .collect()
    };
    eventually(
        Duration::from_secs(30),
        "records past retention pruned",
        || {
            listed("/logs?plugin=quiet", "message") == ["three days old"]
                && listed("/logs?plugin=chatty", "message") == ["recent 4", "recent 3"]
                && listed("/audit?plugin=quiet", "detail") == ["today"]
        },
    );
}

#[test]
fn metrics_count_calls_errors_and_latency_behind_the_token() {
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, &[]);
    assert_eq!(server.install(plugin("hello")).status(), 201);
    assert_eq!(server.install(plugin("hostile_misbehave")).status(), 201);
    for _ in 0..3 {
        assert_eq!(server.route("hello/").0, 200);
    }
    assert_eq!(server.route("misbehave/loop").0, 504);

    let anonymous = server
        .http
        .get(format!("{}/metrics", server.base))
        .send()
        .unwrap();
    assert_eq!(anonymous.status(), 401, "metrics need the admin token");

    let calls = |plugin: &str| {
        server.metric(&format!(
            "capstan_plugin_calls_total{{plugin=\"{plugin}\"}}"
        ))
    };
    assert_eq!(calls("hello"), Some(3.0));
    assert_eq!(calls("misbehave"), Some(1.0));
    assert_eq!(
        server.metric(r#"capstan_plugin_errors_total{plugin="misbehave",error="timeout"}"#),
        Some(1.0)
    );
    assert_eq!(
        server.metric(r#"capstan_plugin_call_duration_seconds_count{plugin="hello"}"#),
        Some(3.0)
    );
    // The timed-out call took at least its 200 ms deadline.
    assert_eq!(
        server
            .metric(r#"capstan_plugin_call_duration_seconds_bucket{le="0.1",plugin="misbehave"}"#),
        Some(0.0)
    );
    assert_eq!(server.metric("capstan_pool_component_instances"), Some(0.0));
    assert_eq!(
        server.metric("capstan_pool_component_instances_capacity"),
        Some(256.0)
    );
}

#[test]
fn the_openapi_document_describes_the_admin_api() {
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, &[]);
    let response = server
        .http
        .get(format!("{}/admin/v1/openapi.json", server.base))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200, "served without a token");
    let document: Value = response.json().unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    let paths = document["paths"].as_object().unwrap();
    for path in [
        "/admin/v1/plugins",
        "/admin/v1/plugins/{id}",
        "/admin/v1/plugins/{id}/rollback",
        "/admin/v1/policy",
        "/admin/v1/policy/dry-run",
        "/admin/v1/secrets/{plugin}/{name}",
        "/admin/v1/audit",
        "/admin/v1/logs",
        "/admin/v1/cache",
    ] {
        assert!(
            paths.contains_key(path),
            "{path} missing from {:?}",
            paths.keys()
        );
    }
    assert_eq!(
        document["components"]["securitySchemes"]["admin-token"]["scheme"],
        "bearer"
    );
    let install = &paths["/admin/v1/plugins"]["post"];
    assert!(install["requestBody"]["content"]["application/wasm"].is_object());
    assert!(install["responses"]["422"].is_object());
}

#[test]
fn json_log_format_writes_one_json_object_per_line() {
    use std::io::{BufRead, BufReader};
    let (_keep, dir) = temp();
    let mut child = Command::new(harness::support::capstan_bin())
        .args([
            "--log-format",
            "json",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.join("data"))
        .env("CAPSTAN_ADMIN_TOKEN", TOKEN)
        .env("CAPSTAN_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let line: Value = serde_json::from_str(&first).unwrap_or_else(|e| panic!("{first:?}: {e}"));
    assert_eq!(line["level"], "INFO");
    assert!(
        line["fields"]["message"]
            .as_str()
            .unwrap()
            .starts_with("listening on http://127.0.0.1:"),
        "{line}"
    );
}
