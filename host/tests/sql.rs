//! `sql` on the real binary, one suite for both backends (SQLite always; PostgreSQL when
//! CAPSTAN_TEST_DATABASE_URL is set, mandatory under CI): every attack a plugin can send
//! as SQL next to the legitimate path, recorded migrations that refuse a failing or edited
//! one without touching the database, dialect refusals, and purge.

mod harness;

use capstan_host::storage::PostgresStore;
use harness::support::{plugin, postgres_url, unique_schema};
use harness::*;
use reqwest::Method;
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

const POLICY: &str = "[defaults.capabilities.routes]
[defaults.limits]
deadline_ms = 5000
[plugins.probe.capabilities.kv]
[plugins.probe.capabilities.sql]
max_bytes = 1048576
max_rows = 1000
statement_timeout_ms = 500
[plugins.probe.capabilities.secrets]
names = [\"token\"]
[plugins.other.capabilities.sql]
[plugins.notes.capabilities.sql]
";

/// Where a test's server keeps its state.
enum Backend {
    Sqlite,
    Postgres { url: String, schema: String },
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Backend::Postgres { url, schema } = self
            && let Ok(store) = PostgresStore::connect(url, Some(schema))
        {
            let _ = store.drop_schema(schema);
        }
    }
}

impl Backend {
    fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres { .. } => "postgres",
        }
    }

    fn start(&self, dir: &Path, policy: &str) -> Server {
        match self {
            Backend::Sqlite => start(dir, policy, &[]),
            // Hosts of one cluster share the master key (plugin role passwords are sealed).
            Backend::Postgres { url, schema } => start_with(
                dir,
                policy,
                &["--database-url", url, "--database-schema", schema],
                &[("CAPSTAN_MASTER_KEY", &"5a".repeat(32))],
            ),
        }
    }
}

/// SQLite, and PostgreSQL when a database is configured.
fn backends() -> Vec<Backend> {
    let mut all = vec![Backend::Sqlite];
    if let Some(url) = postgres_url() {
        all.push(Backend::Postgres {
            url,
            schema: unique_schema(),
        });
    }
    all
}

const PROBE: &str = include_str!("../../plugins/hostile/sql-probe/capstan.toml");

/// The probe's sidecar manifest with `id`, `dialect` and `migrations` (name, SQL).
fn probe_manifest(id: &str, dialect: &str, migrations: &[(&str, &str)]) -> String {
    let manifest = json!({
        "id": id,
        "version": "0.1.0",
        "capabilities": {
            "routes": {},
            "kv": {},
            "secrets": {"names": ["token"]},
            "sql": {
                "dialect": dialect,
                "migrations": migrations.iter().map(|(n, s)| (n.to_string(), json!(s))).collect::<serde_json::Map<_, _>>(),
            },
        },
    });
    toml::to_string(&manifest).unwrap()
}

fn install_probe(server: &Server, manifest: &str) -> reqwest::blocking::Response {
    server.install_with_manifest(plugin("hostile_sql_probe"), manifest)
}

/// Send `statement` to `id`'s `/query` or `/execute`: what the host answered the plugin.
fn probe(server: &Server, id: &str, route: &str, statement: &str) -> Value {
    let response = server
        .http
        .post(format!("{}/plugins/{id}/{route}", server.base))
        .body(statement.to_string())
        .send()
        .unwrap();
    assert_eq!(response.status(), 200, "{statement}");
    response.json().unwrap()
}

fn refused(answer: &Value, kind: &str, what: &str) {
    assert_eq!(answer["error"], kind, "{what}: {answer}");
}

#[test]
fn a_plugin_reaches_its_own_database_and_nothing_else() {
    for backend in backends() {
        let (_keep, dir) = temp();
        let server = backend.start(&dir, POLICY);
        assert_eq!(
            install_probe(&server, PROBE).status(),
            201,
            "{}",
            backend.name()
        );
        let other = probe_manifest(
            "other",
            "portable",
            &[(
                "0001_init.sql",
                "CREATE TABLE secrets_of_other (v TEXT); INSERT INTO secrets_of_other VALUES ('other-only');",
            )],
        );
        assert_eq!(install_probe(&server, &other).status(), 201);

        // The legitimate path: its own table, written by its migration.
        let own = probe(&server, "probe", "query", "SELECT v FROM secrets_of_probe");
        assert_eq!(own["rows"], json!([["probe-only"]]), "{}", backend.name());

        // Another plugin's tables and the host's are out of reach.
        for statement in [
            "SELECT * FROM secrets_of_other",
            "SELECT * FROM kv",
            "SELECT * FROM secrets",
            "SELECT * FROM audit",
        ] {
            let answer = probe(&server, "probe", "query", statement);
            assert!(
                answer["error"].is_string(),
                "{}: {statement}: {answer}",
                backend.name()
            );
        }

        // A runaway recursive query is stopped at the statement deadline.
        let started = Instant::now();
        let runaway = probe(
            &server,
            "probe",
            "query",
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
        );
        refused(&runaway, "timeout", "runaway");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );

        // A million-row result is capped.
        let million = probe(
            &server,
            "probe",
            "query",
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000) \
             SELECT x FROM c",
        );
        refused(&million, "too-large", "a million rows");

        // Writing past max_bytes (1 MiB) is refused; what fit stays.
        let (create, insert) = match backend {
            Backend::Sqlite => (
                "CREATE TABLE big (b BLOB)",
                "INSERT INTO big SELECT randomblob(200000)",
            ),
            Backend::Postgres { .. } => (
                "CREATE TABLE big (b TEXT)",
                "INSERT INTO big SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 8000)",
            ),
        };
        assert_eq!(probe(&server, "probe", "execute", create)["changed"], 0);
        let mut quota = None;
        for attempt in 0..30 {
            let answer = probe(&server, "probe", "execute", insert);
            if answer["error"].is_string() {
                quota = Some((attempt, answer));
                break;
            }
        }
        let (attempt, answer) = quota.expect("the quota is reached within 30 inserts");
        refused(&answer, "quota-exceeded", "past max_bytes");
        assert!(attempt >= 1, "some inserts fit first");
        let stored = probe(&server, "probe", "query", "SELECT count(*) AS n FROM big");
        assert_eq!(
            stored["rows"][0][0],
            attempt,
            "{}: what fit stays",
            backend.name()
        );
        // At the quota, a write that adds nothing still goes through, so a plugin can
        // always make room.
        let emptied = probe(&server, "probe", "execute", "DELETE FROM big");
        assert_eq!(emptied["changed"], attempt, "{}: {emptied}", backend.name());

        match backend {
            Backend::Sqlite => sqlite_attacks(&server, &dir),
            Backend::Postgres { ref schema, .. } => postgres_attacks(&server, schema),
        }
    }
}

fn sqlite_attacks(server: &Server, dir: &Path) {
    let other = dir.join("data/sql/other.db");
    assert!(other.exists(), "the other plugin has its own file");
    for (statement, kind) in [
        (
            format!("ATTACH DATABASE '{}' AS o", other.display()),
            "denied",
        ),
        ("ATTACH DATABASE ':memory:' AS m".to_string(), "denied"),
        ("PRAGMA writable_schema = ON".to_string(), "denied"),
        ("PRAGMA max_page_count = 1000000".to_string(), "denied"),
        ("PRAGMA trusted_schema = ON".to_string(), "denied"),
        (
            "SELECT load_extension('/usr/lib/libc.so.6')".to_string(),
            "denied",
        ),
        ("DELETE FROM _capstan_migrations".to_string(), "denied"),
        (
            "UPDATE sqlite_master SET sql = 'CREATE TABLE x (y)' WHERE name = 'big'".to_string(),
            "invalid-input",
        ),
    ] {
        let route = if statement.starts_with("SELECT") {
            "query"
        } else {
            "execute"
        };
        refused(&probe(server, "probe", route, &statement), kind, &statement);
    }
    let allowed = probe(server, "probe", "query", "PRAGMA table_info(big)");
    assert!(
        allowed["rows"].is_array(),
        "reading its own schema: {allowed}"
    );
    let own = probe(server, "probe", "query", "SELECT v FROM secrets_of_probe");
    assert_eq!(own["rows"], json!([["probe-only"]]), "still intact");
}

fn postgres_attacks(server: &Server, host_schema: &str) {
    let mine = probe(server, "probe", "query", "SELECT current_schema()")["rows"][0][0].clone();
    // The other plugin's schema, asked of that plugin: listing every `capstan_sql_%` schema
    // would also catch those of tests running beside this one against the same database,
    // which may be dropped between the listing and the attack.
    let theirs = probe(server, "other", "query", "SELECT current_schema()")["rows"][0][0].clone();
    let theirs = theirs.as_str().expect("the other plugin names its schema");
    assert_ne!(json!(theirs), mine, "each plugin has a schema of its own");
    let visible = probe(
        server,
        "probe",
        "query",
        &format!("SELECT count(*) FROM pg_namespace WHERE nspname = '{theirs}'"),
    );
    assert_eq!(
        visible["rows"][0][0], 1,
        "the other plugin's schema exists: {visible}"
    );
    let answer = probe(
        server,
        "probe",
        "query",
        &format!("SELECT * FROM {theirs}.secrets_of_other"),
    );
    refused(&answer, "denied", "another plugin's schema");
    for statement in [
        format!("SELECT * FROM {host_schema}.kv"),
        format!("SELECT * FROM {host_schema}.secrets"),
        format!("SELECT * FROM {host_schema}.plugin_versions"),
        "SELECT pg_read_file('/etc/passwd')".to_string(),
    ] {
        refused(
            &probe(server, "probe", "query", &statement),
            "denied",
            &statement,
        );
    }
    for statement in [
        "SET ROLE postgres",
        "CREATE EXTENSION IF NOT EXISTS dblink",
        "CREATE ROLE rogue",
    ] {
        let answer = probe(server, "probe", "execute", statement);
        assert!(answer["error"].is_string(), "{statement}: {answer}");
    }
    // Resetting the role or the search path changes nothing it can reach.
    let reset = probe(server, "probe", "execute", "RESET ROLE");
    assert!(reset["changed"].is_number(), "{reset}");
    let who = probe(server, "probe", "query", "SELECT current_user");
    assert_eq!(who["rows"][0][0], mine, "still the plugin's own role");
    assert!(
        probe(
            server,
            "probe",
            "execute",
            &format!("SET search_path TO {host_schema}")
        )["changed"]
            .is_number()
    );
    // On the same connection the read is denied; on another the path is the plugin's own
    // again: either way no row of the host's table comes back.
    let after = probe(server, "probe", "query", "SELECT * FROM kv");
    assert!(
        ["denied", "invalid-input"].contains(&after["error"].as_str().unwrap_or("rows")),
        "host table after SET search_path: {after}"
    );
}

#[test]
fn migrations_are_recorded_and_a_failing_or_edited_one_changes_nothing() {
    for backend in backends() {
        let (_keep, dir) = temp();
        let server = backend.start(&dir, POLICY);
        let first = (
            "0001_init.sql",
            "CREATE TABLE t1 (v TEXT); INSERT INTO t1 VALUES ('kept');",
        );
        let v1 = probe_manifest("probe", "portable", &[first]);
        assert_eq!(install_probe(&server, &v1).status(), 201);
        let served = server.installed();
        let (_, applied) = server.json(Method::GET, "/plugins/probe/sql/migrations");
        assert_eq!(applied.as_array().unwrap().len(), 1, "{applied}");

        let broken = probe_manifest(
            "probe",
            "portable",
            &[
                first,
                ("0002_more.sql", "CREATE TABLE t2 (v TEXT);"),
                ("0003_broken.sql", "CREATE TABLE t1 (v TEXT);"),
            ],
        );
        let refused = install_probe(&server, &broken);
        assert_eq!(refused.status(), 422, "{}", backend.name());
        let body: Value = refused.json().unwrap();
        assert_eq!(body["code"], "migration-failed", "{body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("0003_broken.sql"),
            "{body}"
        );
        assert_eq!(server.installed(), served, "the old version keeps serving");
        let t2 = probe(&server, "probe", "query", "SELECT * FROM t2");
        assert!(
            t2["error"].is_string(),
            "0002 was rolled back with 0003: {t2}"
        );
        let kept = probe(&server, "probe", "query", "SELECT v FROM t1");
        assert_eq!(kept["rows"], json!([["kept"]]));
        let (_, applied) = server.json(Method::GET, "/plugins/probe/sql/migrations");
        assert_eq!(
            applied.as_array().unwrap().len(),
            1,
            "nothing recorded: {applied}"
        );

        let edited = probe_manifest(
            "probe",
            "portable",
            &[("0001_init.sql", "CREATE TABLE t1 (v TEXT, w TEXT);")],
        );
        let refused = install_probe(&server, &edited);
        assert_eq!(refused.status(), 422);
        let body: Value = refused.json().unwrap();
        assert_eq!(body["code"], "migration-edited", "{body}");

        let next = probe_manifest(
            "probe",
            "portable",
            &[first, ("0002_more.sql", "CREATE TABLE t2 (v TEXT);")],
        );
        assert_eq!(install_probe(&server, &next).status(), 201);
        let (_, applied) = server.json(Method::GET, "/plugins/probe/sql/migrations");
        let names: Vec<&str> = applied
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            ["0001_init.sql", "0002_more.sql"],
            "{}",
            backend.name()
        );
        assert!(probe(&server, "probe", "query", "SELECT * FROM t2")["rows"].is_array());
    }
}

#[test]
fn a_plugin_of_the_other_dialect_is_refused_and_purge_deletes_its_data() {
    for backend in backends() {
        let (_keep, dir) = temp();
        let server = backend.start(&dir, POLICY);
        let foreign = match backend {
            Backend::Sqlite => "postgres",
            Backend::Postgres { .. } => "sqlite",
        };
        let refused = install_probe(&server, &probe_manifest("probe", foreign, &[]));
        assert_eq!(refused.status(), 422);
        let body: Value = refused.json().unwrap();
        assert_eq!(body["code"], "dialect-unavailable", "{body}");
        assert!(
            body["message"].as_str().unwrap().contains(foreign),
            "{body}"
        );

        // Removal keeps the data; a purge deletes it (database, kv, secrets).
        assert_eq!(install_probe(&server, PROBE).status(), 201);
        probe(
            &server,
            "probe",
            "execute",
            "INSERT INTO secrets_of_probe VALUES ('extra')",
        );
        server
            .http
            .post(format!("{}/plugins/probe/kv", server.base))
            .send()
            .unwrap();
        let put = server
            .admin(Method::PUT, "/secrets/probe/token")
            .body("s3cret")
            .send()
            .unwrap();
        assert_eq!(put.status(), 204);
        let count = |server: &Server| {
            probe(
                server,
                "probe",
                "query",
                "SELECT count(*) AS n FROM secrets_of_probe",
            )["rows"][0][0]
                .clone()
        };
        assert_eq!(server.json(Method::DELETE, "/plugins/probe").0, 204);
        assert_eq!(install_probe(&server, PROBE).status(), 201);
        assert_eq!(count(&server), 2, "{}: kept without purge", backend.name());
        assert_eq!(
            server.json(Method::DELETE, "/plugins/probe?purge=true").0,
            204
        );
        let (_, secrets) = server.json(Method::GET, "/secrets?plugin=probe");
        assert_eq!(secrets, json!([]));
        assert_eq!(install_probe(&server, PROBE).status(), 201);
        assert_eq!(count(&server), 1, "{}: a fresh database", backend.name());
        let (_, kv) = server.route("probe/kv");
        assert_eq!(serde_json::from_str::<Value>(&kv).unwrap()["stored"], false);
        let (_, audit) = server.json(Method::GET, "/audit?plugin=probe&kind=plugin-changed");
        assert!(audit.to_string().contains("purged"), "{audit}");
    }
}

#[test]
fn notes_run_the_same_portable_sql_on_both_backends() {
    for backend in backends() {
        let (_keep, dir) = temp();
        let server = backend.start(&dir, POLICY);
        assert_eq!(server.install(plugin("notes")).status(), 201);
        let added = server
            .http
            .post(format!("{}/plugins/notes/notes", server.base))
            .body("buy milk")
            .send()
            .unwrap();
        assert_eq!(added.status(), 201, "{}", backend.name());
        let (status, listed) = server.route("notes/notes");
        assert_eq!(status, 200);
        assert_eq!(
            serde_json::from_str::<Value>(&listed).unwrap()[0]["body"],
            "buy milk"
        );
    }
}

/// The host keeps a plugin's statements prepared (PostgreSQL, per connection): a kept
/// `SELECT *` still answers after its table changes shape, and after the plugin drops every
/// prepared statement itself with `DEALLOCATE ALL`; a repeated statement is prepared once,
/// not once per call; and however many distinct statements a plugin sends, a connection
/// keeps a bounded number. SQLite answers the same first half.
#[test]
fn kept_statements_follow_schema_changes_and_stay_bounded() {
    for backend in backends() {
        let (_keep, dir) = temp();
        let server = backend.start(&dir, POLICY);
        assert_eq!(install_probe(&server, PROBE).status(), 201);
        let execute = |statement: &str| {
            let answer = probe(&server, "probe", "execute", statement);
            assert!(answer["changed"].is_number(), "{statement}: {answer}");
        };
        let columns = || probe(&server, "probe", "query", "SELECT * FROM shape")["columns"].clone();
        execute("CREATE TABLE shape (a INTEGER)");
        execute("INSERT INTO shape VALUES (1)");
        for _ in 0..3 {
            assert_eq!(columns(), json!(["a"]), "{}", backend.name());
        }
        execute("ALTER TABLE shape ADD COLUMN b TEXT");
        for _ in 0..3 {
            assert_eq!(columns(), json!(["a", "b"]), "{}", backend.name());
        }
        let Backend::Postgres { .. } = backend else {
            continue;
        };
        let kept = |statement: &str| {
            probe(
                &server,
                "probe",
                "query",
                &format!(
                    "SELECT count(*) FROM pg_prepared_statements WHERE statement = '{statement}'"
                ),
            )["rows"][0][0]
                .clone()
        };
        // Sequential calls share one pooled connection, whose own statements the view lists.
        assert_eq!(kept("SELECT * FROM shape"), 1, "prepared once, kept");
        execute("DEALLOCATE ALL");
        assert_eq!(columns(), json!(["a", "b"]), "after DEALLOCATE ALL");
        assert_eq!(columns(), json!(["a", "b"]));
        for n in 0..100 {
            let answer = probe(&server, "probe", "query", &format!("SELECT {n} AS n"));
            assert_eq!(answer["rows"][0][0], n, "{answer}");
        }
        let all = probe(
            &server,
            "probe",
            "query",
            "SELECT count(*) FROM pg_prepared_statements",
        );
        let all = all["rows"][0][0]
            .as_u64()
            .unwrap_or_else(|| panic!("{all}"));
        assert!(
            (1..=64).contains(&all),
            "a connection keeps at most 64 statements, it holds {all}"
        );
    }
}

#[test]
fn migrations_run_once_with_two_hosts_on_postgres() {
    let Some(url) = postgres_url() else { return };
    let backend = Backend::Postgres {
        url,
        schema: unique_schema(),
    };
    let (_keep, dir) = temp();
    let a = backend.start(&dir.join("a"), POLICY);
    let b = backend.start(&dir.join("b"), POLICY);
    assert_eq!(install_probe(&a, PROBE).status(), 201);
    eventually(Duration::from_secs(2), "B serves the probe", || {
        b.route("probe/kv").0 == 200
    });
    let (_, on_a) = a.json(Method::GET, "/plugins/probe/sql/migrations");
    assert_eq!(
        install_probe(&b, PROBE).status(),
        201,
        "the same version through B"
    );
    let (_, on_b) = b.json(Method::GET, "/plugins/probe/sql/migrations");
    assert_eq!(on_a, on_b, "applied once, never again");
    let rows = probe(&b, "probe", "query", "SELECT v FROM secrets_of_probe");
    assert_eq!(rows["rows"], json!([["probe-only"]]), "its insert ran once");
}
