//! Two `capstan serve` processes on one PostgreSQL database: a change made through one
//! is served by the other within a second (plus, for a new component, the other host's
//! own compile), and kv is shared. Mandatory in CI; skipped with a printed reason without
//! CAPSTAN_TEST_DATABASE_URL otherwise.

mod harness;

use capstan_host::storage::PostgresStore;
use harness::support::{plugin, postgres_url, unique_schema};
use harness::*;
use reqwest::Method;
use serde_json::Value;
use std::time::Duration;

/// How soon the other host must serve a change.
const PROPAGATION: Duration = Duration::from_secs(1);

/// Installs `component` through `server`, answering how long that took (about what the
/// other host needs to compile it again into its own artifact cache, which its
/// propagation bound adds to [`PROPAGATION`]) and the installed version.
fn install_timed(server: &Server, component: Vec<u8>) -> (Duration, Value) {
    let started = std::time::Instant::now();
    let response = server.install(component);
    let took = started.elapsed();
    let status = response.status();
    let body = response.text().unwrap();
    assert_eq!(status, 201, "{body}");
    (took, serde_json::from_str(&body).unwrap())
}

const CLUSTER_POLICY: &str = "[defaults.capabilities.routes]
[plugins.counter.capabilities.kv]
max_keys = 100
max_bytes = 65536
";

/// Drops the test's schema when the test ends, pass or fail.
struct Schema {
    url: String,
    name: String,
}

impl Drop for Schema {
    fn drop(&mut self) {
        if let Ok(store) = PostgresStore::connect(&self.url, Some(&self.name)) {
            let _ = store.drop_schema(&self.name);
        }
    }
}

impl Schema {
    /// A schema no other test uses.
    fn new(url: &str) -> Schema {
        Schema {
            url: url.to_string(),
            name: unique_schema(),
        }
    }

    /// `capstan serve` arguments keeping a host's state in this schema.
    fn serve_args(&self) -> [&str; 4] {
        ["--database-url", &self.url, "--database-schema", &self.name]
    }
}

fn sha_on(server: &Server, id: &str) -> Option<String> {
    let (status, info) = server.json(Method::GET, &format!("/plugins/{id}"));
    (status == 200).then(|| info["sha256"].as_str().unwrap().to_string())
}

#[test]
fn two_hosts_on_one_postgres_serve_each_others_changes() {
    let Some(url) = postgres_url() else { return };
    let schema = Schema::new(&url);
    let (_keep, dir) = temp();
    let args = schema.serve_args();
    let key = "ab".repeat(32);
    let env = [("CAPSTAN_MASTER_KEY", key.as_str())];
    let a = start_with(&dir.join("a"), CLUSTER_POLICY, &args, &env);
    let b = start_with(&dir.join("b"), CLUSTER_POLICY, &args, &env);

    // Install through A; B serves it.
    let v1 = plugin("hello");
    let (compile, _) = install_timed(&a, v1.clone());
    let took = eventually(
        PROPAGATION + compile,
        "B serves hello installed through A",
        || b.route("hello/").0 == 200,
    );
    eprintln!("install propagated in {took:?}");

    // Upgrade through A; B serves the new version.
    let v2 = variant(v1, "v2");
    let (compile, created) = install_timed(&a, v2);
    let new_sha = created["sha256"].as_str().unwrap().to_string();
    eventually(PROPAGATION + compile, "B serves the upgrade", || {
        sha_on(&b, "hello").as_deref() == Some(new_sha.as_str())
    });
    assert_eq!(b.route("hello/").0, 200);

    // Disable through B; A stops serving it.
    assert_eq!(b.json(Method::POST, "/plugins/hello/disable").0, 200);
    eventually(
        PROPAGATION,
        "A stops serving hello disabled through B",
        || a.route("hello/").0 == 404,
    );

    // A policy change through A reaches B.
    let tightened = format!("{CLUSTER_POLICY}[plugins.hello.limits]\ndeadline_ms = 300\n");
    let response = a
        .admin(Method::PUT, "/policy")
        .body(tightened.clone())
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    eventually(PROPAGATION, "B adopts A's policy", || {
        let response = b.admin(Method::GET, "/policy").send().unwrap();
        response.text().unwrap() == tightened
    });

    // kv written through A is read through B.
    let (compile, _) = install_timed(&a, plugin("counter"));
    eventually(PROPAGATION + compile, "B serves counter", || {
        b.route("counter/x").0 == 200
    });
    let hits = |server: &Server| -> i64 {
        let (status, body) = server.route("counter/shared");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<Value>(&body).unwrap()["hits"]
            .as_i64()
            .unwrap()
    };
    assert_eq!(hits(&a), 1);
    assert_eq!(hits(&a), 2);
    assert_eq!(hits(&b), 3, "B reads and increments what A wrote");

    // Removal through B reaches A.
    assert_eq!(b.json(Method::DELETE, "/plugins/counter").0, 204);
    eventually(PROPAGATION, "A drops counter removed through B", || {
        sha_on(&a, "counter").is_none()
    });
}

#[test]
fn a_host_started_later_restores_what_the_first_installed() {
    let Some(url) = postgres_url() else { return };
    let schema = Schema::new(&url);
    let (_keep, dir) = temp();
    let args = schema.serve_args();
    let a = start(&dir.join("a"), POLICY, &args);
    assert_eq!(a.install(plugin("hello")).status(), 201);
    let b = start(&dir.join("b"), "", &args);
    assert_eq!(b.route("hello/").0, 200, "B restored hello from PostgreSQL");
    assert_eq!(
        b.admin(Method::GET, "/policy")
            .send()
            .unwrap()
            .text()
            .unwrap(),
        POLICY,
        "the stored policy wins over B's (empty) seed"
    );
}

#[test]
fn a_config_change_through_one_host_is_what_the_other_hosts_plugin_reads() {
    let Some(url) = postgres_url() else { return };
    let schema = Schema::new(&url);
    let (_keep, dir) = temp();
    let args = schema.serve_args();
    let a = start_with(&dir.join("a"), CLUSTER_POLICY, &args, &[]);
    let b = start_with(&dir.join("b"), CLUSTER_POLICY, &args, &[]);
    let (compile, _) = install_timed(&a, plugin("settings"));
    eventually(PROPAGATION + compile, "B serves settings", || {
        b.route("settings/?name=Ada").1 == "Hello, Ada! (retries: 3)"
    });
    let set = b
        .admin(Method::PUT, "/plugins/settings/config")
        .json(&serde_json::json!({"greeting": "Ahoy"}))
        .send()
        .unwrap();
    assert_eq!(set.status(), 200);
    let took = eventually(
        PROPAGATION,
        "A's plugin reads the greeting set through B",
        || a.route("settings/?name=Ada").1 == "Ahoy, Ada! (retries: 3)",
    );
    eprintln!("config change seen by the other host in {took:?}");
}

#[test]
fn mcp_clients_and_tool_changes_are_shared_by_the_hosts_of_a_cluster() {
    let Some(url) = postgres_url() else { return };
    let schema = Schema::new(&url);
    let (_keep, dir) = temp();
    let args = schema.serve_args();
    let policy = format!("{CLUSTER_POLICY}[defaults.capabilities.mcp]\n");
    let a = start_with(&dir.join("a"), &policy, &args, &[]);
    let b = start_with(&dir.join("b"), &policy, &args, &[]);
    let (compile, _) = install_timed(&a, plugin("bench"));

    // A token made through A works on B.
    let (id, token) = mcp::client(&a, serde_json::json!({"name": "agent", "plugins": ["*"]}));
    let on_b = mcp::Mcp::new(&b, Some(&token));
    eventually(PROPAGATION + compile, "B lists bench's tool", || {
        on_b.request("tools/list", serde_json::json!({})).1["result"]["tools"]
            .as_array()
            .is_some_and(|tools| !tools.is_empty())
    });

    // B's connected client hears an install made through A.
    let session = on_b.session();
    let stream = session.stream();
    assert_eq!(a.install(plugin("tools")).status(), 201);
    let heard = stream
        .next(Duration::from_secs(5))
        .expect("list_changed on B after an install through A");
    assert_eq!(heard["method"], "notifications/tools/list_changed");
    assert!(on_b.list().contains(&"tools__add".to_string()));

    // Revoked through B, the token stops working on A within a second.
    let on_a = mcp::Mcp::new(&a, Some(&token));
    assert_eq!(on_a.request("tools/list", serde_json::json!({})).0, 200);
    assert_eq!(
        b.admin(Method::DELETE, &format!("/mcp/clients/{id}"))
            .send()
            .unwrap()
            .status(),
        204
    );
    let took = eventually(PROPAGATION, "A refuses the token revoked through B", || {
        on_a.request("tools/list", serde_json::json!({})).0 == 401
    });
    eprintln!("revocation took effect on the other host in {took:?}");
}
