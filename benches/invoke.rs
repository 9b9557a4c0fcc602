//! Invocation cost: a fresh-instance call of `hello`, and the cost of one kv host call,
//! derived from a request making 1000 kv calls against a no-op request of the same
//! plugin measured in the same run (per call = (kv-1000 − noop) / 1000).
//!
//! Run: `cargo bench --bench invoke` (after scripts/build-plugins).

use capstan_host::runtime::Request;
use capstan_host::{Policy, Runtime, Services};
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::path::Path;

fn plugin(name: &str) -> Vec<u8> {
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

fn invoke(c: &mut Criterion) {
    let (services, _audit, _logs) = Services::in_memory();
    let runtime = Runtime::new(services).expect("runtime");
    let policy = Policy::parse(
        "[defaults.capabilities.routes]\n[defaults.capabilities.kv]\n[defaults.log]\nlevel = \"error\"\n",
    )
    .expect("policy");
    let hello = runtime
        .load(&plugin("hello"), None, &policy)
        .expect("hello");
    let bench = runtime
        .load(&plugin("bench"), None, &policy)
        .expect("bench");

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

    let mut group = c.benchmark_group("kv x1000 in one call");
    for op in ["kv-get", "kv-set"] {
        let request = get(&format!("/{op}"), "n=1000");
        group.bench_function(op, |b| {
            b.iter(|| black_box(bench.handle(&request).unwrap()))
        });
    }
    group.finish();
}

criterion_group!(benches, invoke);
criterion_main!(benches);
