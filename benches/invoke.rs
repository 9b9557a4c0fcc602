//! Invocation cost: a fresh-instance call of `hello`, and the cost of one kv host call and
//! of one SQL point query or upsert on each backend, derived from a request making N such
//! calls against a no-op request of the same plugin measured in the same run (per call =
//! (op-N − noop) / N); and one call making N outbound HTTP requests to a local keep-alive
//! server (the `http-probe` plugin).
//!
//! Run: `scripts/build-plugins && cargo bench --bench invoke`. PostgreSQL is included when
//! CAPSTAN_TEST_DATABASE_URL is set (the bench uses, then drops, its own schema).

use capstan_host::capability::sql::SqlEngine;
use capstan_host::runtime::Request;
use capstan_host::storage::{
    MemoryKv, PostgresSql, PostgresStore, SqliteSql, SqliteStore, StateStore,
};
use capstan_host::{Plugin, Policy, Runtime, Services};
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// kv calls per measured request.
const KV_CALLS: u32 = 100;

fn plugin_bytes(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/plugins/wasm32-wasip2/release")
        .join(format!("{name}.wasm"));
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run scripts/build-plugins", path.display()))
}

fn get(path: &str, query: &str) -> Request {
    Request {
        method: "GET".into(),
        path: path.into(),
        query: query.into(),
        headers: Vec::new(),
        body: Vec::new(),
    }
}

fn load(state: Arc<dyn StateStore>, name: &str) -> (Runtime, Plugin) {
    let (services, _audit, _logs) = Services::in_memory();
    load_with(Services { state, ..services }, name)
}

/// `name` loaded over `services`, its SQL migrations applied.
fn load_with(services: Services, name: &str) -> (Runtime, Plugin) {
    let runtime = Runtime::new(services).expect("runtime");
    let policy = Policy::parse(
        "[defaults.capabilities.routes]\n[defaults.capabilities.kv]\n\
         [defaults.capabilities.sql]\n[defaults.log]\nlevel = \"error\"\n",
    )
    .expect("policy");
    let plugin = runtime
        .load(&plugin_bytes(name), None, &policy)
        .expect("load");
    let admission = plugin.admission();
    if let Some(request) = &admission.manifest.capabilities.sql {
        capstan_host::capability::sql::migrate(
            &*runtime.services().sql,
            plugin.id(),
            request,
            &admission.grants.sql,
        )
        .expect("migrations");
    }
    (runtime, plugin)
}

fn fresh_instance(c: &mut Criterion) {
    let (_runtime, hello) = load(Arc::new(MemoryKv::default()), "hello");
    let (_runtime2, bench) = load(Arc::new(MemoryKv::default()), "bench");
    let mut group = c.benchmark_group("fresh-instance call");
    let request = get("/", "name=bench");
    group.bench_function("hello", |b| {
        b.iter(|| black_box(hello.handle(&request).unwrap()))
    });
    let noop = get("/noop", "");
    group.bench_function("bench noop (baseline)", |b| {
        b.iter(|| black_box(bench.handle(&noop).unwrap()))
    });
    group.finish();
}

/// A state backend and the operations measured on it.
struct Backend {
    name: &'static str,
    state: Arc<dyn StateStore>,
    sql: Arc<dyn SqlEngine>,
    ops: &'static [&'static str],
}

fn kv_backends(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (services, _audit, _logs) = Services::in_memory();
    let sqlite = Arc::new(SqliteStore::open(&dir.path().join("bench.db")).expect("sqlite"));
    let mut backends = vec![
        Backend {
            name: "memory",
            state: Arc::new(MemoryKv::default()),
            sql: services.sql.clone(),
            ops: &["kv-get", "kv-set"],
        },
        Backend {
            name: "sqlite",
            state: sqlite,
            sql: Arc::new(SqliteSql::open(&dir.path().join("sql")).expect("sqlite sql")),
            ops: &["kv-get", "kv-set", "sql-get", "sql-set"],
        },
    ];
    let schema = format!("capstan_bench_{}", std::process::id());
    let postgres = std::env::var("CAPSTAN_TEST_DATABASE_URL")
        .ok()
        .map(|url| Arc::new(PostgresStore::connect(&url, Some(&schema)).expect("postgres")));
    if let Some(store) = &postgres {
        let sql = PostgresSql::new(store.clone(), services.secrets.clone());
        backends.push(Backend {
            name: "postgres",
            state: store.clone(),
            sql: Arc::new(sql),
            ops: &["kv-get", "kv-set", "sql-get", "sql-set"],
        });
    }
    for Backend {
        name,
        state,
        sql,
        ops,
    } in backends
    {
        let (_runtime, bench) = load_with(
            Services {
                state,
                sql,
                ..services.clone()
            },
            "bench",
        );
        let mut group = c.benchmark_group(format!("store {name}"));
        group
            .sample_size(20)
            .measurement_time(Duration::from_secs(4));
        let noop = get("/noop", "");
        group.bench_function("noop (baseline)", |b| {
            b.iter(|| black_box(bench.handle(&noop).unwrap()))
        });
        for &op in ops {
            let request = get(&format!("/{op}"), &format!("n={KV_CALLS}"));
            group.bench_function(format!("{op} x{KV_CALLS}"), |b| {
                b.iter(|| black_box(bench.handle(&request).unwrap()))
            });
        }
        group.finish();
    }
    if let Some(store) = postgres {
        store.drop_schema(&schema).expect("dropping bench schema");
    }
}

/// Resolves every name to 127.0.0.1.
struct Loopback;

impl capstan_host::capability::http::Resolver for Loopback {
    fn resolve(&self, _host: &str) -> std::io::Result<Vec<std::net::IpAddr>> {
        Ok(vec![std::net::Ipv4Addr::LOCALHOST.into()])
    }
}

/// A keep-alive HTTP/1.1 server on 127.0.0.1 answering `ok`; its port.
fn local_server() -> u16 {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                    if line == "\r\n"
                        && stream
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                            .is_err()
                    {
                        return;
                    }
                    line.clear();
                }
            });
        }
    });
    port
}

/// HTTP requests per measured call.
const HTTP_CALLS: u32 = 10;

fn outbound_http(c: &mut Criterion) {
    let port = local_server();
    let outbound =
        capstan_host::capability::http::Outbound::new(Arc::new(Loopback)).expect("outbound client");
    let (services, _audit, _logs) = Services::in_memory_with(Arc::new(outbound));
    let runtime = Runtime::new(services).expect("runtime");
    let policy = Policy::parse(
        "[defaults.capabilities.routes]\n[defaults.log]\nlevel = \"error\"\n\
         [plugins.http-probe.capabilities.http]\nhosts = [\"http://good.test:*\"]\n\
         allow_networks = [\"127.0.0.0/8\"]\n",
    )
    .expect("policy");
    let probe = runtime
        .load(&plugin_bytes("hostile_http_probe"), None, &policy)
        .expect("load");
    let mut group = c.benchmark_group("outbound http");
    group.sample_size(20);
    for times in [1, HTTP_CALLS] {
        let request = get("/", &format!("url=http://good.test:{port}/&times={times}"));
        let answer = probe.handle(&request).expect("call");
        let body = String::from_utf8_lossy(&answer.body);
        assert!(body.contains("\"status\":200"), "{body}");
        group.bench_function(format!("requests x{times}"), |b| {
            b.iter(|| black_box(probe.handle(&request).unwrap()))
        });
    }
    group.finish();
}

criterion_group!(benches, fresh_instance, kv_backends, outbound_http);
criterion_main!(benches);
