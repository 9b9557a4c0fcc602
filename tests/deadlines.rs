//! A call's wall-clock deadline holds while the plugin waits in the host, not only while
//! its own code runs: a WASI sleep, outbound requests to a server that never answers, and
//! kv on a database whose lock another connection holds all end at the deadline.

mod support;

use capstan_host::InvokeError;
use capstan_host::capability::http::{Outbound, Resolver};
use capstan_host::storage::{PostgresStore, SqliteStore, StateStore};
use capstan_host::{Policy, Runtime, Services};
use std::net::{IpAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{get, plugin};

const DEADLINE_MS: u64 = 500;
/// The most a call may overrun its deadline here.
const MARGIN: Duration = Duration::from_millis(250);

/// Load built plugin `file` on `runtime` with a 500 ms deadline and `extra` policy.
fn load(runtime: &Runtime, file: &str, id: &str, extra: &str) -> capstan_host::Plugin {
    let policy = format!(
        "[defaults.capabilities.routes]\n[plugins.{id}.limits]\ndeadline_ms = {DEADLINE_MS}\n{extra}"
    );
    runtime
        .load(&plugin(file), None, &Policy::parse(&policy).unwrap())
        .unwrap()
}

/// Run `call`, asserting it timed out within the deadline plus [`MARGIN`].
fn ends_at_the_deadline(what: &str, call: impl FnOnce() -> Result<u16, InvokeError>) {
    let started = Instant::now();
    let outcome = call();
    let took = started.elapsed();
    eprintln!("{what}: {outcome:?} after {took:?}");
    assert!(
        matches!(outcome, Err(InvokeError::Timeout { .. })),
        "{what}: {outcome:?}"
    );
    let bound = Duration::from_millis(DEADLINE_MS) + MARGIN;
    assert!(
        took < bound,
        "{what}: took {took:?}, the bound is {bound:?}"
    );
}

#[test]
fn a_wasi_sleep_ends_at_the_deadline() {
    let (services, _audit, _logs) = Services::in_memory();
    let runtime = Runtime::new(services).unwrap();
    let misbehave = load(&runtime, "hostile_misbehave", "misbehave", "");
    assert_eq!(
        misbehave.handle(&get("/sleep?ms=10")).unwrap().status,
        200,
        "a short nap is fine"
    );
    ends_at_the_deadline("a 5 s WASI sleep", || {
        misbehave.handle(&get("/sleep?ms=5000")).map(|r| r.status)
    });
}

/// Every name resolves to 127.0.0.1.
struct Loopback;

impl Resolver for Loopback {
    fn resolve(&self, _host: &str) -> std::io::Result<Vec<IpAddr>> {
        Ok(vec!["127.0.0.1".parse().unwrap()])
    }
}

#[test]
fn three_requests_to_a_server_that_never_answers_end_at_the_deadline() {
    // Accepts connections and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in silent.incoming().flatten() {
            held.push(stream);
        }
    });
    let outbound = Outbound::new(Arc::new(Loopback)).unwrap();
    let (services, _audit, _logs) = Services::in_memory_with(Arc::new(outbound));
    let runtime = Runtime::new(services).unwrap();
    let probe = load(
        &runtime,
        "hostile_http_probe",
        "http-probe",
        "[plugins.http-probe.capabilities.http]\nhosts = [\"http://*.test:*\"]\n\
         allow_networks = [\"127.0.0.1/32\"]\ntimeout_ms = 30000\n",
    );
    ends_at_the_deadline("three slow outbound requests", || {
        probe
            .handle(&get(&format!("/?url=http://silent.test:{port}/&times=3")))
            .map(|r| r.status)
    });
}

/// The counter plugin on `state`, with kv granted.
fn counter_on(state: Arc<dyn StateStore>) -> (Runtime, capstan_host::Plugin) {
    let (services, _audit, _logs) = Services::in_memory();
    let runtime = Runtime::new(Services { state, ..services }).unwrap();
    let counter = load(
        &runtime,
        "counter",
        "counter",
        "[plugins.counter.capabilities.kv]\n",
    );
    (runtime, counter)
}

#[test]
fn kv_on_a_locked_sqlite_database_ends_at_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    let (_runtime, counter) = counter_on(store);
    assert_eq!(
        counter.handle(&get("/a")).unwrap().status,
        200,
        "unlocked, it counts"
    );
    // Another process holds the database's write lock.
    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    ends_at_the_deadline("kv.increment on a locked SQLite file", || {
        counter.handle(&get("/a")).map(|r| r.status)
    });
    other.execute_batch("ROLLBACK").unwrap();
    assert_eq!(
        counter.handle(&get("/a")).unwrap().status,
        200,
        "released, it counts again"
    );
}

#[test]
fn kv_on_postgres_behind_a_held_row_lock_ends_at_the_deadline() {
    let Some(url) = support::postgres_url() else {
        return;
    };
    let schema = support::unique_schema();
    let store = Arc::new(PostgresStore::connect(&url, Some(&schema)).unwrap());
    let (_runtime, counter) = counter_on(store.clone());
    assert_eq!(counter.handle(&get("/a")).unwrap().status, 200);
    // Another session holds the plugin's usage row while a transaction stays open.
    let other = support::PostgresSession::connect(&url);
    other.execute(&format!(
        "SET search_path = {schema}; BEGIN; \
         SELECT * FROM kv_usage WHERE namespace = 'counter' FOR UPDATE"
    ));
    ends_at_the_deadline("kv.increment behind a PostgreSQL row lock", || {
        counter.handle(&get("/a")).map(|r| r.status)
    });
    other.execute("ROLLBACK");
    assert_eq!(
        counter.handle(&get("/a")).unwrap().status,
        200,
        "released, it counts again"
    );
    store.drop_schema(&schema).unwrap();
}
