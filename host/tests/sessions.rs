//! Sessions on the real binary: private plugin sets that share nothing with each other or
//! with the global set, tokens that reach only their own session, uploads of several
//! plugins with an outcome each, and closing or expiry that removes everything a session
//! brought — checked in storage, across a restart, and on both hosts of a PostgreSQL
//! cluster.

mod harness;

use capstan_host::capability::Deadline;
use capstan_host::capability::config::ConfigStore;
use capstan_host::capability::kv::KvStore;
use capstan_host::sessions::{SessionId, SessionStore};
use capstan_host::storage::{PluginStore, PostgresStore, SqliteStore};
use harness::mcp::{Mcp, client as mcp_client};
use harness::support::{plugin, postgres_url, unique_schema};
use harness::*;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, SystemTime};

const POLICY: &str = "[defaults.capabilities.routes]
[defaults.capabilities.mcp]
[defaults.capabilities.kv]
max_keys = 100
[defaults.capabilities.secrets]
names = [\"api-token\"]
[defaults.capabilities.sql]
[defaults.limits]
deadline_ms = 2000
[sessions]
max_plugins = 3
";

/// GET `path` with `token` (if any): status and JSON body (Null when not JSON).
fn get(server: &Server, token: Option<&str>, path: &str) -> (u16, Value) {
    let mut request = server.http.get(format!("{}{path}", server.base));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().unwrap();
    (
        response.status().as_u16(),
        response.json().unwrap_or(Value::Null),
    )
}

/// The counter's hits for `path` through `route` (a full path under the server).
fn hits(server: &Server, token: Option<&str>, route: &str) -> i64 {
    let (status, body) = get(server, token, route);
    assert_eq!(status, 200, "{route}: {body}");
    body["hits"].as_i64().unwrap()
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn two_sessions_with_one_plugin_id_share_nothing_with_each_other_or_the_global_one() {
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, &[]);
    let counter = plugin("counter");
    assert_eq!(server.install(counter.clone()).status(), 201);
    let (a, token_a) = open_session(&server, "agent-a", "1h", json!({}));
    let (b, token_b) = open_session(&server, "agent-b", "1h", json!({}));
    let other_code = variant(counter.clone(), "session-b");
    assert_eq!(
        session_upload(&server, &token_a, vec![("counter", counter)]).0,
        201
    );
    assert_eq!(
        session_upload(&server, &token_b, vec![("counter", other_code)]).0,
        201
    );

    // Each sees only its own plugin, with its own code; the global list is unchanged.
    let (_, mine) = get(&server, Some(&token_a), "/v1/session/plugins");
    let (_, theirs) = get(&server, Some(&token_b), "/v1/session/plugins");
    assert_eq!(ids(&mine), ["counter"]);
    assert_eq!(ids(&theirs), ["counter"]);
    assert_ne!(mine[0]["sha256"], theirs[0]["sha256"]);
    assert_eq!(mine[0]["session"], a.as_str());
    let (_, global) = server.json(Method::GET, "/plugins");
    assert_eq!(ids(&global), ["counter"]);
    assert!(global[0].get("session").is_none());

    // kv written by one is invisible to the other and to the global plugin of that id.
    let in_a = format!("/s/{a}/plugins/counter/x");
    let in_b = format!("/s/{b}/plugins/counter/x");
    assert_eq!(hits(&server, Some(&token_a), &in_a), 1);
    assert_eq!(hits(&server, Some(&token_a), &in_a), 2);
    assert_eq!(hits(&server, Some(&token_b), &in_b), 1);
    assert_eq!(hits(&server, None, "/plugins/counter/x"), 1);
    assert_eq!(hits(&server, Some(&token_a), &in_a), 3);

    // A's token cannot reach B's routes or plugins.
    let (status, body) = get(&server, Some(&token_a), &in_b);
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("wrong-session"))
    );
    let (status, _) = get(&server, None, &in_a);
    assert_eq!(status, 401, "a session route without a token");
    let (status, _) = get(&server, Some(TOKEN), &in_a);
    assert_eq!(status, 401, "the admin token is not a session token");
    // A session plugin is not reachable as a global plugin under its stored id.
    let (status, _) = get(&server, None, &format!("/plugins/counter~{a}/x"));
    assert_eq!(status, 404);
    // Nor can one session remove another's plugin: the id names its own session's.
    let removed = server
        .http
        .delete(format!("{}/v1/session/plugins/counter", server.base))
        .bearer_auth(&token_b)
        .send()
        .unwrap();
    assert_eq!(removed.status(), 204);
    assert_eq!(
        hits(&server, Some(&token_a), &in_a),
        4,
        "A's plugin still serves"
    );
    let (status, _) = get(&server, Some(&token_b), &in_b);
    assert_eq!(status, 404);
}

#[test]
fn a_session_token_reaches_neither_the_admin_api_nor_a_wider_policy() {
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, &[]);
    let (_, token) = open_session(&server, "agent", "1h", json!({}));
    let (_, policy_before) = server.json(Method::GET, "/policy");
    for (method, path) in [
        (Method::GET, "/admin/v1/plugins"),
        (Method::PUT, "/admin/v1/policy"),
        (Method::POST, "/admin/v1/sessions"),
        (Method::GET, "/metrics"),
    ] {
        let response = server
            .http
            .request(method.clone(), format!("{}{path}", server.base))
            .bearer_auth(&token)
            .body("[defaults.capabilities.secrets]\nnames = [\"*\"]\n")
            .send()
            .unwrap();
        assert_eq!(response.status(), 401, "{method} {path}");
    }
    let (_, policy_after) = server.json(Method::GET, "/policy");
    assert_eq!(policy_before, policy_after);
    let (status, _) = get(&server, Some(&token), "/v1/session");
    assert_eq!(status, 200, "the legitimate path");

    // A session policy has no grants to give: asking for one is refused by name.
    let response = server
        .admin(Method::POST, "/sessions")
        .json(&json!({"name": "greedy", "ttl": "1h",
                      "policy": {"capabilities": {"secrets": {"names": ["*"]}}}}))
        .send()
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.text().unwrap().contains("capabilities"));

    // What it can do is withhold: kv denied to this session's counter, even though the
    // operator grants kv to every plugin.
    let (narrow, narrow_token) = open_session(&server, "no-kv", "1h", json!({"deny": ["kv"]}));
    assert_eq!(
        session_upload(&server, &narrow_token, vec![("counter", plugin("counter"))]).0,
        201
    );
    let (_, list) = get(&server, Some(&narrow_token), "/v1/session/plugins");
    let kv = list[0]["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["capability"] == "storage.kv")
        .cloned()
        .unwrap();
    assert_ne!(kv["decision"], "granted", "{kv}");
    let (status, _) = get(
        &server,
        Some(&narrow_token),
        &format!("/s/{narrow}/plugins/counter/x"),
    );
    assert_eq!(status, 403, "the counter's kv call is denied");

    // A new operator policy re-grants every plugin; the session's narrowing still holds.
    let widened =
        format!("{POLICY}[defaults.capabilities.http]\nhosts = [\"https://*.example.com\"]\n");
    let response = server
        .admin(Method::PUT, "/policy")
        .body(widened)
        .send()
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().unwrap());
    let (status, _) = get(
        &server,
        Some(&narrow_token),
        &format!("/s/{narrow}/plugins/counter/x"),
    );
    assert_eq!(status, 403, "still denied under the new policy");
}

/// A manifest for the `sidecar` plugin (it embeds none) under `id`, with `extra` TOML.
fn sidecar_manifest(id: &str, extra: &str) -> Vec<u8> {
    format!("id = \"{id}\"\nversion = \"0.1.0\"\n[capabilities.routes]\n{extra}").into_bytes()
}

#[test]
fn a_load_of_three_reports_each_outcome_and_changes_nothing_else() {
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, &[]);
    assert_eq!(server.install(plugin("hello")).status(), 201);
    let (session, token) = open_session(&server, "loader", "1h", json!({}));
    let (status, answer) = session_upload(
        &server,
        &token,
        vec![
            ("good", plugin("counter")),
            ("garbage", b"not a wasm file".to_vec()),
            ("liar", plugin("sidecar")),
            (
                "liar.manifest",
                sidecar_manifest("liar", "[provides]\ntools = [\"summarise\"]\n"),
            ),
        ],
    );
    assert_eq!(status, 207, "{answer}");
    assert_eq!(
        (answer["loaded"].as_u64(), answer["refused"].as_u64()),
        (Some(1), Some(2))
    );
    let outcomes = answer["outcomes"].as_array().unwrap();
    assert_eq!(outcomes[0]["part"], "good");
    assert_eq!(outcomes[0]["loaded"]["id"], "counter");
    assert_eq!(outcomes[1]["part"], "garbage");
    assert_eq!(outcomes[1]["refused"]["code"], "not-wasm", "{answer}");
    assert_eq!(outcomes[2]["part"], "liar");
    assert_eq!(outcomes[2]["refused"]["code"], "not-provided", "{answer}");
    assert!(
        outcomes[2]["refused"]["message"]
            .as_str()
            .unwrap()
            .contains("summarise"),
        "{answer}"
    );
    let (_, list) = get(&server, Some(&token), "/v1/session/plugins");
    assert_eq!(ids(&list), ["counter"]);
    assert_eq!(server.installed().len(), 1, "the global set is untouched");
    assert_eq!(
        hits(
            &server,
            Some(&token),
            &format!("/s/{session}/plugins/counter/a")
        ),
        1
    );

    // A plugin that serves what it promises loads; the operator's max_plugins (3) bounds
    // the session.
    let mut parts = Vec::new();
    for id in ["c1", "c2", "c3"] {
        parts.push((id, plugin("sidecar")));
    }
    let manifests: Vec<(String, Vec<u8>)> = ["c1", "c2", "c3"]
        .iter()
        .map(|id| {
            let manifest = sidecar_manifest(id, "[provides]\nroutes = [\"/\"]\n");
            (format!("{id}.manifest"), manifest)
        })
        .collect();
    for (name, manifest) in &manifests {
        parts.push((name.as_str(), manifest.clone()));
    }
    let (status, answer) = session_upload(&server, &token, parts);
    assert_eq!(status, 207, "{answer}");
    assert_eq!(answer["loaded"], 2, "{answer}");
    assert_eq!(
        answer["outcomes"][2]["refused"]["code"], "session-full",
        "{answer}"
    );
}

#[test]
fn a_sessions_kv_quotas_add_up_to_at_most_the_operators_bound() {
    let (_keep, dir) = temp();
    let server = start(&dir, &format!("{POLICY}max_kv_bytes = 60000\n"), &[]);
    let (_, token) = open_session(&server, "frugal", "1h", json!({}));
    let (status, answer) = session_upload(
        &server,
        &token,
        vec![
            ("counter", plugin("counter")),
            ("plain", plugin("sidecar")),
            ("plain.manifest", sidecar_manifest("plain", "")),
        ],
    );
    assert_eq!(status, 207, "{answer}");
    let refused = &answer["outcomes"][0]["refused"];
    assert_eq!(refused["code"], "session-full", "{answer}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("max_kv_bytes"),
        "{answer}"
    );
    assert_eq!(answer["outcomes"][1]["loaded"]["id"], "plain", "{answer}");
}

#[test]
fn a_sessions_tools_are_listed_and_called_only_with_its_own_token() {
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, &[]);
    assert_eq!(server.install(plugin("tools")).status(), 201);
    let response = server
        .admin(Method::POST, "/sessions")
        .json(&json!({"name": "agent", "ttl": "1h", "global_tools": ["tools"]}))
        .send()
        .unwrap();
    let created: Value = response.json().unwrap();
    let (a, token_a) = (
        created["session"]["id"].as_str().unwrap().to_string(),
        created["token"].as_str().unwrap().to_string(),
    );
    let (_, token_b) = open_session(&server, "bystander", "1h", json!({}));
    assert_eq!(
        session_upload(&server, &token_a, vec![("mine", plugin("mcp_conformance"))]).0,
        201
    );
    let own_tool = "mcp-conformance__test_simple_text";

    // A sees its own tools next to the global ones it was given; B sees neither, and a
    // plain client scoped to every global plugin does not see A's.
    let listed_a = Mcp::new(&server, Some(&token_a)).list();
    assert!(listed_a.iter().any(|name| name == own_tool), "{listed_a:?}");
    assert!(
        listed_a.iter().any(|name| name == "tools__add"),
        "{listed_a:?}"
    );
    assert_eq!(
        Mcp::new(&server, Some(&token_b)).list(),
        Vec::<String>::new()
    );
    let (_, everything) = mcp_client(&server, json!({"name": "all", "plugins": ["*"]}));
    let listed_all = Mcp::new(&server, Some(&everything)).list();
    assert!(listed_all.iter().any(|name| name == "tools__add"));
    assert!(
        !listed_all
            .iter()
            .any(|name| name.starts_with("mcp-conformance"))
    );

    let called = Mcp::new(&server, Some(&token_a)).call(own_tool, json!({}));
    assert_eq!(called["result"]["isError"], false, "{called}");
    for other in [&token_b, &everything] {
        let refused = Mcp::new(&server, Some(other)).call(own_tool, json!({}));
        assert!(
            refused["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("Unknown tool")),
            "{refused}"
        );
    }

    // `available` names where each comes from.
    let (status, available) = get(&server, Some(&token_a), "/v1/session/available");
    assert_eq!(status, 200);
    let source = |name: &str| {
        available["tools"]
            .as_array()
            .unwrap()
            .iter()
            .find(|tool| tool["name"] == name)
            .map(|tool| (tool["plugin"].clone(), tool["source"].clone()))
    };
    assert_eq!(
        source(own_tool),
        Some((json!("mcp-conformance"), json!("session")))
    );
    assert_eq!(
        source("tools__add"),
        Some((json!("tools"), json!("global")))
    );

    // Closed: its token no longer reaches /mcp (after the token cache's half second).
    assert_eq!(
        server.json(Method::DELETE, &format!("/sessions/{a}")).0,
        200
    );
    eventually(
        Duration::from_secs(2),
        "the closed session's token is refused",
        || {
            Mcp::new(&server, Some(&token_a))
                .request("tools/list", json!({}))
                .0
                == 401
        },
    );
}

/// What a backend still holds of plugin `stored_id`: whether it is installed, and its kv
/// keys.
fn held(store: &(impl PluginStore + KvStore), stored_id: &str) -> (bool, usize) {
    let installed = store.plugins().unwrap().iter().any(|p| p.id == stored_id);
    let keys = store
        .list_keys(
            stored_id,
            "",
            None,
            100,
            Deadline::after(Duration::from_secs(5)),
        )
        .unwrap()
        .keys
        .len();
    (installed, keys)
}

/// Send `method` to `path` with `token` and a JSON or text body: the status.
fn send(
    server: &Server,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
    text: Option<&str>,
) -> u16 {
    let mut request = server
        .http
        .request(method, format!("{}{path}", server.base))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    if let Some(text) = text {
        request = request.body(text.to_string());
    }
    request.send().unwrap().status().as_u16()
}

fn text(server: &Server, token: &str, path: &str) -> String {
    let response = server
        .http
        .get(format!("{}{path}", server.base))
        .bearer_auth(token)
        .send()
        .unwrap();
    assert_eq!(response.status(), 200, "{path}");
    response.text().unwrap()
}

#[test]
fn closing_a_session_removes_its_plugins_and_their_state() {
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, &[]);
    assert_eq!(server.install(plugin("settings")).status(), 201);
    let (session, token) = open_session(&server, "closing", "1h", json!({}));
    let (other, other_token) = open_session(&server, "bystander", "1h", json!({}));
    let parts = vec![
        ("counter", plugin("counter")),
        ("settings", plugin("settings")),
        ("vault", plugin("vault")),
    ];
    assert_eq!(session_upload(&server, &token, parts).0, 201);
    assert_eq!(
        session_upload(
            &server,
            &other_token,
            vec![("settings", plugin("settings"))]
        )
        .0,
        201
    );
    let route = format!("/s/{session}/plugins/counter/x");
    assert_eq!(hits(&server, Some(&token), &route), 1);

    // Its settings and secrets are its own: set by the session, read by its plugins only.
    let config = "/v1/session/plugins/settings/config";
    assert_eq!(
        send(
            &server,
            &token,
            Method::PUT,
            config,
            Some(json!({"greeting": "Ahoy"})),
            None
        ),
        200
    );
    assert_eq!(
        send(
            &server,
            &token,
            Method::PUT,
            config,
            Some(json!({"greeting": 7})),
            None
        ),
        422,
        "checked against the plugin's schema"
    );
    let secret = "/v1/session/plugins/vault/secrets/api-token";
    assert_eq!(
        send(&server, &token, Method::PUT, secret, None, Some("hunter22")),
        204
    );
    assert_eq!(
        send(
            &server,
            &token,
            Method::PUT,
            "/v1/session/plugins/ghost/secrets/api-token",
            None,
            Some("x")
        ),
        404,
        "only for a plugin the session holds"
    );
    let greeting = |token: &str, path: &str| text(&server, token, path);
    assert!(greeting(&token, &format!("/s/{session}/plugins/settings/")).starts_with("Ahoy"));
    assert!(greeting(&other_token, &format!("/s/{other}/plugins/settings/")).starts_with("Hello"));
    assert!(
        server.route("settings/").1.starts_with("Hello"),
        "the global plugin's own"
    );
    assert!(greeting(&token, &format!("/s/{session}/plugins/vault/")).contains("\"length\":8"));

    let store = SqliteStore::open(&dir.join("data/capstan.db")).unwrap();
    let stored = |id: &str| format!("{id}~{session}");
    assert_eq!(held(&store, &stored("counter")), (true, 1));
    assert!(store.config(&stored("settings")).unwrap().is_some());
    let secrets_of = |id: &str| {
        server
            .json(Method::GET, &format!("/secrets?plugin={}", stored(id)))
            .1
            .as_array()
            .map_or(0, Vec::len)
    };
    assert_eq!(secrets_of("vault"), 1);

    let (status, closed) = server.json(Method::DELETE, &format!("/sessions/{session}"));
    assert_eq!(status, 200);
    assert_eq!(closed["removed"], json!(["counter", "settings", "vault"]));
    assert_eq!(
        held(&store, &stored("counter")),
        (false, 0),
        "gone from storage"
    );
    assert!(
        store
            .config(&stored("settings"))
            .unwrap()
            .is_none_or(|values| values.is_empty()),
        "its settings purged"
    );
    assert_eq!(secrets_of("vault"), 0, "its secrets purged");
    assert_eq!(get(&server, Some(&token), &route).0, 401, "token revoked");
    assert_eq!(get(&server, Some(&token), "/v1/session").0, 401);
    let (status, _) = server.json(Method::GET, &format!("/sessions/{session}"));
    assert_eq!(status, 404);
    assert!(
        greeting(&other_token, &format!("/s/{other}/plugins/settings/")).starts_with("Hello"),
        "the other session is untouched"
    );
    let (_, audit) = server.json(Method::GET, "/audit?kind=session-changed");
    let closing = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|record| record["detail"].as_str().unwrap_or("").contains("closed"))
        .cloned()
        .unwrap_or_else(|| panic!("no closing record: {audit}"));
    assert!(
        closing["detail"]
            .as_str()
            .unwrap()
            .contains("[counter, settings, vault]"),
        "{closing}"
    );
}

#[test]
fn a_sessions_database_is_its_own_and_goes_with_it() {
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, &[]);
    assert_eq!(server.install(plugin("notes")).status(), 201);
    let (a, token_a) = open_session(&server, "writer", "1h", json!({}));
    let (b, token_b) = open_session(&server, "reader", "1h", json!({}));
    for token in [&token_a, &token_b] {
        assert_eq!(
            session_upload(&server, token, vec![("notes", plugin("notes"))]).0,
            201
        );
    }
    let written = server
        .http
        .post(format!("{}/s/{a}/plugins/notes/notes", server.base))
        .bearer_auth(&token_a)
        .body("only in A")
        .send()
        .unwrap();
    assert_eq!(written.status(), 201);
    let notes = |token: Option<&str>, path: &str| get(&server, token, path).1;
    assert_eq!(
        notes(Some(&token_a), &format!("/s/{a}/plugins/notes/notes"))[0]["body"],
        "only in A"
    );
    assert_eq!(
        notes(Some(&token_b), &format!("/s/{b}/plugins/notes/notes")),
        json!([])
    );
    assert_eq!(notes(None, "/plugins/notes/notes"), json!([]));
    let database = dir.join(format!("data/sql/notes~{a}.db"));
    assert!(database.exists(), "A's notes have a file of their own");

    assert_eq!(
        server.json(Method::DELETE, &format!("/sessions/{a}")).0,
        200
    );
    assert!(!database.exists(), "its database is purged with it");
    assert!(dir.join(format!("data/sql/notes~{b}.db")).exists());
    assert!(dir.join("data/sql/notes.db").exists());
}

#[test]
fn a_session_that_expires_while_the_host_is_down_is_removed_at_restart() {
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, &[]);
    let response = server
        .admin(Method::POST, "/sessions")
        .json(&json!({"name": "short", "ttl": "2s"}))
        .send()
        .unwrap();
    let created: Value = response.json().unwrap();
    let session = created["session"]["id"].as_str().unwrap().to_string();
    let token = created["token"].as_str().unwrap().to_string();
    let expires_ms = created["session"]["expires_ms"].as_i64().unwrap();
    assert_eq!(
        session_upload(&server, &token, vec![("counter", plugin("counter"))]).0,
        201
    );
    assert_eq!(
        hits(
            &server,
            Some(&token),
            &format!("/s/{session}/plugins/counter/x")
        ),
        1
    );
    drop(server);

    // The expiry is a point in time: wait for the clock to pass it with the host down.
    let now_ms = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    if expires_ms > now_ms {
        std::thread::sleep(Duration::from_millis((expires_ms - now_ms) as u64 + 50));
    }
    let server = start(&dir, POLICY, &[]);
    let store = SqliteStore::open(&dir.join("data/capstan.db")).unwrap();
    let stored_id = format!("counter~{session}");
    eventually(
        Duration::from_secs(5),
        "the expired session's plugin is purged",
        || held(&store, &stored_id) == (false, 0),
    );
    assert_eq!(get(&server, Some(&token), "/v1/session").0, 401);
    let (_, sessions) = server.json(Method::GET, "/sessions");
    assert_eq!(sessions, json!([]));
}

#[test]
fn the_plugins_of_a_session_removed_behind_the_hosts_back_are_removed_too() {
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, &[]);
    let (session, token) = open_session(&server, "crashy", "1h", json!({}));
    assert_eq!(
        session_upload(&server, &token, vec![("counter", plugin("counter"))]).0,
        201
    );
    let route = format!("/s/{session}/plugins/counter/x");
    assert_eq!(hits(&server, Some(&token), &route), 1);
    // As if a host crashed after revoking the session and before removing its plugins.
    let store = SqliteStore::open(&dir.join("data/capstan.db")).unwrap();
    assert!(
        store
            .remove_session(&SessionId::parse(&session).unwrap())
            .unwrap()
    );
    let stored_id = format!("counter~{session}");
    eventually(
        Duration::from_secs(5),
        "the orphaned plugin is removed and purged",
        || held(&store, &stored_id) == (false, 0),
    );
    assert_eq!(get(&server, Some(&token), &route).0, 401);
}

#[test]
fn both_hosts_of_a_postgres_cluster_see_a_sessions_plugins_and_its_closing() {
    let Some(url) = postgres_url() else {
        return;
    };
    let schema = unique_schema();
    let (_keep_a, dir_a) = temp();
    let (_keep_b, dir_b) = temp();
    let args = [
        "--database-url",
        url.as_str(),
        "--database-schema",
        schema.as_str(),
    ];
    let host_a = start(&dir_a, POLICY, &args);
    let host_b = start(&dir_b, POLICY, &args);
    let (session, token) = open_session(&host_a, "clustered", "1h", json!({}));
    assert_eq!(
        session_upload(&host_a, &token, vec![("counter", plugin("counter"))]).0,
        201
    );
    let route = format!("/s/{session}/plugins/counter/x");
    let seen = eventually(
        Duration::from_secs(1),
        "host B serves the session's plugin",
        || get(&host_b, Some(&token), &route).0 == 200,
    );
    println!("host B served the session's plugin after {seen:?}");
    assert_eq!(
        hits(&host_a, Some(&token), &route),
        2,
        "one kv, shared by both hosts"
    );

    let (status, _) = host_b.json(Method::DELETE, &format!("/sessions/{session}"));
    assert_eq!(status, 200);
    let gone = eventually(Duration::from_secs(1), "host A stops serving it", || {
        get(&host_a, Some(&token), &route).0 == 401
            && host_a.json(Method::GET, &format!("/sessions/{session}")).0 == 404
    });
    println!("host A saw the closing after {gone:?}");
    let store = PostgresStore::connect(&url, Some(&schema)).unwrap();
    assert_eq!(held(&store, &format!("counter~{session}")), (false, 0));
    drop((host_a, host_b));
    let _ = store.drop_schema(&schema);
}
