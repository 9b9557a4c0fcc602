//! Shared helpers for the end-to-end tests: the built plugins, a runtime with in-memory
//! services, and the `capstan` binary.

#![allow(dead_code)] // each test binary uses a different subset

use capstan_host::audit::{AuditEvent, AuditKind, MemoryAudit};
use capstan_host::capability::CapabilityId;
use capstan_host::capability::log::MemoryLogs;
use capstan_host::runtime::Request;
use capstan_host::{Plugin, Policy, Runtime, Services};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

/// The repository root (these helpers serve tests of the root and the host package).
pub fn root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .find(|dir| dir.join("plugins/Cargo.toml").exists())
            .expect("repository root above CARGO_MANIFEST_DIR")
            .to_path_buf()
    })
}

/// Where the plugin components are built.
pub fn plugin_dir() -> PathBuf {
    root().join("target/plugins/wasm32-wasip2/release")
}

/// Build the plugins workspace once per test binary (a no-op when up to date; the test
/// scripts build it before `cargo test`, so this only matters for a bare `cargo test`).
fn ensure_plugins_built() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let status = Command::new(env!("CARGO"))
            .args([
                "build",
                "--release",
                "--target",
                "wasm32-wasip2",
                "--target-dir",
            ])
            .arg(root().join("target/plugins"))
            .current_dir(root().join("plugins"))
            .status()
            .expect("running cargo to build the plugins");
        assert!(
            status.success(),
            "building plugins/ failed; `rustup target add wasm32-wasip2` (scripts/test does it)"
        );
    });
}

/// The bytes of built plugin `name` (file stem, e.g. `hello` or `hostile_misbehave`).
pub fn plugin(name: &str) -> Vec<u8> {
    ensure_plugins_built();
    let path = plugin_dir().join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The bytes of Python plugin `name` (e.g. `py_hello`), built by
/// `scripts/build-py-plugins` (run here once per test binary; a no-op when up to date).
pub fn py_plugin(name: &str) -> Vec<u8> {
    static BUILT: OnceLock<()> = OnceLock::new();
    guest_plugin(
        &BUILT,
        "scripts/build-py-plugins",
        "target/py-plugins",
        name,
    )
}

/// The bytes of JavaScript plugin `name` (e.g. `js_hello`), built by
/// `scripts/build-js-plugins` (run here once per test binary; a no-op when up to date).
pub fn js_plugin(name: &str) -> Vec<u8> {
    static BUILT: OnceLock<()> = OnceLock::new();
    guest_plugin(
        &BUILT,
        "scripts/build-js-plugins",
        "target/js-plugins",
        name,
    )
}

fn guest_plugin(built: &OnceLock<()>, script: &str, dir: &str, name: &str) -> Vec<u8> {
    built.get_or_init(|| {
        let status = Command::new(root().join(script))
            .current_dir(root())
            .status()
            .unwrap_or_else(|e| panic!("running {script}: {e}"));
        assert!(
            status.success(),
            "{script} failed (it needs python3 and node/npm)"
        );
    });
    let path = root().join(dir).join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// A runtime with in-memory services, plus handles on its audit and log sinks.
pub struct TestHost {
    pub runtime: Runtime,
    pub audit: Arc<MemoryAudit>,
    pub logs: Arc<MemoryLogs>,
}

impl TestHost {
    pub fn new() -> TestHost {
        let (services, audit, logs) = Services::in_memory();
        TestHost {
            runtime: Runtime::new(services).expect("runtime"),
            audit,
            logs,
        }
    }

    /// Load built plugin `name` under policy text `policy`, panicking on refusal.
    pub fn load(&self, name: &str, policy: &str) -> Plugin {
        let policy = Policy::parse(policy).expect("test policy parses");
        self.runtime
            .load(&plugin(name), None, &policy)
            .unwrap_or_else(|e| panic!("loading {name}: {e}"))
    }

    /// Audit events of `kind` for `plugin`.
    pub fn audit_of(&self, plugin: &str, kind: AuditKind) -> Vec<AuditEvent> {
        self.audit
            .events()
            .into_iter()
            .filter(|e| e.plugin == plugin && e.kind == kind)
            .collect()
    }

    /// Whether a `denied` audit record exists for `plugin` and `capability`.
    pub fn audited_denial(&self, plugin: &str, capability: CapabilityId) -> bool {
        self.audit_of(plugin, AuditKind::Denied)
            .iter()
            .any(|e| e.capability == Some(capability))
    }
}

/// A GET request for `path_and_query`.
pub fn get(path_and_query: &str) -> Request {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    Request {
        method: "GET".into(),
        path: path.into(),
        query: query.into(),
        headers: Vec::new(),
        body: Vec::new(),
    }
}

/// The response body as text.
pub fn text(body: &[u8]) -> String {
    String::from_utf8_lossy(body).into_owned()
}

/// The text of policy file `file` shipped in `policy/`.
pub fn shipped_policy(file: &str) -> String {
    std::fs::read_to_string(root().join("policy").join(file)).expect("shipped policy")
}

/// The `capstan` binary built next to the test executables.
pub fn capstan_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps")
        .join("capstan");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p capstan-host`",
        bin.display()
    );
    bin
}

/// The PostgreSQL URL for tests, or `None` (with the reason printed) to skip them.
/// With `CI=true` a missing URL fails the test: in CI the PostgreSQL tests are mandatory.
pub fn postgres_url() -> Option<String> {
    match std::env::var("CAPSTAN_TEST_DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!(
                "CI=true but CAPSTAN_TEST_DATABASE_URL is unset: PostgreSQL tests are mandatory in CI"
            )
        }
        _ => {
            eprintln!(
                "skipping PostgreSQL test: set CAPSTAN_TEST_DATABASE_URL=postgres://user@host:port/db to run it"
            );
            None
        }
    }
}

/// The NATS URL for the JetStream event tests, or `None` (with the reason printed) to skip
/// them. With `CI=true` a missing URL fails the test, as for PostgreSQL.
pub fn nats_url() -> Option<String> {
    match std::env::var("CAPSTAN_TEST_NATS_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but CAPSTAN_TEST_NATS_URL is unset: NATS tests are mandatory in CI")
        }
        _ => {
            eprintln!(
                "skipping NATS test: set CAPSTAN_TEST_NATS_URL=nats://host:4222 (JetStream enabled) to run it"
            );
            None
        }
    }
}

/// A NATS namespace (subject prefix and stream names) no other test run uses.
pub fn unique_namespace() -> String {
    let schema = unique_schema();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in schema.bytes() {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("t{hash:016x}")
}

/// A schema name no other test run uses, so parallel and repeated runs never collide.
pub fn unique_schema() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "capstan_test_{}_{nanos}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A component that passes the gate (a manifest, a `handler` export by name) but whose
/// core module holds `functions` functions of `instructions` additions each: as slow to
/// compile as the numbers make it.
pub fn slow_to_compile(id: &str, functions: u32, instructions: u32) -> Vec<u8> {
    use wasm_encoder::{
        CodeSection, Component, ComponentExportKind, ComponentExportSection,
        ComponentInstanceSection, CustomSection, Function, FunctionSection, Instruction, Module,
        ModuleSection, TypeSection, ValType,
    };
    let mut types = TypeSection::new();
    types.ty().function([ValType::I32], [ValType::I32]);
    let mut declared = FunctionSection::new();
    let mut code = CodeSection::new();
    for _ in 0..functions {
        declared.function(0);
        let mut body = Function::new([]);
        for _ in 0..instructions {
            body.instruction(&Instruction::LocalGet(0))
                .instruction(&Instruction::I32Const(1))
                .instruction(&Instruction::I32Add)
                .instruction(&Instruction::LocalSet(0));
        }
        body.instruction(&Instruction::LocalGet(0))
            .instruction(&Instruction::End);
        code.function(&body);
    }
    let mut module = Module::new();
    module.section(&types).section(&declared).section(&code);
    let mut component = Component::new();
    component.section(&ModuleSection(&module));
    let mut instances = ComponentInstanceSection::new();
    instances.export_items(Vec::<(&str, ComponentExportKind, u32)>::new());
    component.section(&instances);
    let mut exports = ComponentExportSection::new();
    exports.export(
        "capstan:plugin/handler@0.2.0",
        ComponentExportKind::Instance,
        0,
        None,
    );
    component.section(&exports);
    let manifest = format!("id = \"{id}\"\nversion = \"0.1.0\"\n[capabilities.routes]\n");
    component.section(&CustomSection {
        name: "capstan-manifest".into(),
        data: manifest.as_bytes().into(),
    });
    component.finish()
}

/// A plain PostgreSQL session of its own, standing in for another host or an operator at
/// `psql`: it can hold locks and transactions open while the code under test runs.
pub struct PostgresSession {
    runtime: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
}

impl PostgresSession {
    /// Connect to `url`.
    pub fn connect(url: &str) -> PostgresSession {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (client, connection) = runtime
            .block_on(tokio_postgres::connect(url, tokio_postgres::NoTls))
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        runtime.spawn(connection);
        PostgresSession { runtime, client }
    }

    /// Run `statements` (separated by `;`), panicking on an error.
    pub fn execute(&self, statements: &str) {
        self.runtime
            .block_on(self.client.batch_execute(statements))
            .unwrap_or_else(|e| panic!("{statements}: {e}"));
    }
}
