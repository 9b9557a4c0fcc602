//! One conformance suite for every key-value backend: in-memory, SQLite and PostgreSQL.
//! PostgreSQL runs when CAPSTAN_TEST_DATABASE_URL is set (mandatory under CI=true), each
//! test in its own schema, dropped afterwards.

mod support;

/// A deadline no test operation comes near.
fn soon() -> capstan_host::capability::Deadline {
    capstan_host::capability::Deadline::after(std::time::Duration::from_secs(30))
}

use capstan_host::audit::{AuditEvent, AuditKind, AuditQuery, AuditSink, MemoryAudit};
use capstan_host::capability::CapabilityId;
use capstan_host::capability::kv::{KvStore, Quota};
use capstan_host::capability::log::LogLevel;
use capstan_host::capability::log::{LogQuery, LogRecord, LogSink, LogSource, MemoryLogs};
use capstan_host::retention::{self, Pass, Retention};
use capstan_host::storage::{MemoryKv, PostgresStore, SqliteStore, StateStore, StoreError};
use capstan_host::{Policy, Runtime, Services};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use support::{get, plugin, text};

const ROOMY: Quota = Quota {
    max_keys: 1000,
    max_bytes: 1 << 20,
};

/// A backend under test and whatever must outlive it.
struct Backend {
    store: Arc<dyn StateStore>,
    audit: Arc<dyn AuditSink>,
    logs: Arc<dyn LogSink>,
    cleanup: Option<Box<dyn FnOnce()>>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Some(cleanup) = self.cleanup.take() {
            cleanup();
        }
    }
}

fn memory() -> Option<Backend> {
    Some(Backend {
        store: Arc::new(MemoryKv::default()),
        audit: Arc::new(MemoryAudit::default()),
        logs: Arc::new(MemoryLogs::new(1 << 16)),
        cleanup: None,
    })
}

fn sqlite() -> Option<Backend> {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("state.db")).unwrap());
    Some(Backend {
        store: store.clone(),
        audit: store.clone(),
        logs: store,
        cleanup: Some(Box::new(move || drop(dir))),
    })
}

fn postgres() -> Option<Backend> {
    let url = support::postgres_url()?;
    let schema = support::unique_schema();
    let store = Arc::new(
        PostgresStore::connect(&url, Some(&schema)).unwrap_or_else(|e| panic!("{url}: {e}")),
    );
    let owner = store.clone();
    Some(Backend {
        store: store.clone(),
        audit: store.clone(),
        logs: store,
        cleanup: Some(Box::new(move || {
            owner.drop_schema(&schema).expect("dropping test schema")
        })),
    })
}

fn get_set_delete(kv: &dyn KvStore) {
    assert_eq!(kv.get("p", "k", soon()).unwrap(), None);
    kv.set("p", "k", b"one", ROOMY, soon()).unwrap();
    kv.set("p", "k", b"two", ROOMY, soon()).unwrap();
    assert_eq!(kv.get("p", "k", soon()).unwrap(), Some(b"two".to_vec()));
    kv.set("p", "empty", b"", ROOMY, soon()).unwrap();
    assert_eq!(kv.get("p", "empty", soon()).unwrap(), Some(Vec::new()));
    assert!(kv.delete("p", "k", soon()).unwrap());
    assert!(!kv.delete("p", "k", soon()).unwrap());
    assert_eq!(kv.get("p", "k", soon()).unwrap(), None);
}

fn namespaces_are_isolated(kv: &dyn KvStore) {
    kv.set("alice", "secret", b"a", ROOMY, soon()).unwrap();
    assert_eq!(kv.get("bob", "secret", soon()).unwrap(), None);
    assert!(!kv.delete("bob", "secret", soon()).unwrap());
    assert!(
        kv.list_keys("bob", "", None, 100, soon())
            .unwrap()
            .keys
            .is_empty()
    );
    assert_eq!(
        kv.get("alice", "secret", soon()).unwrap(),
        Some(b"a".to_vec())
    );
}

fn quota_counts_keys_and_bytes_and_frees_on_delete(kv: &dyn KvStore) {
    let tight = Quota {
        max_keys: 2,
        max_bytes: 10,
    };
    kv.set("q", "k1", b"123", tight, soon()).unwrap();
    kv.set("q", "k2", b"4", tight, soon()).unwrap();
    assert!(matches!(
        kv.set("q", "k3", b"", tight, soon()),
        Err(StoreError::QuotaExceeded(_))
    ));
    assert!(matches!(
        kv.set("q", "k1", b"12345678", tight, soon()),
        Err(StoreError::QuotaExceeded(_))
    ));
    assert_eq!(
        kv.get("q", "k1", soon()).unwrap(),
        Some(b"123".to_vec()),
        "a refused write changes nothing"
    );
    assert!(kv.delete("q", "k2", soon()).unwrap());
    kv.set("q", "k3", b"x", tight, soon()).unwrap();
    assert!(matches!(
        kv.increment("q", "k4", 1, tight, soon()),
        Err(StoreError::QuotaExceeded(_))
    ));
}

fn increment_and_compare_and_swap(kv: &dyn KvStore) {
    assert_eq!(kv.increment("c", "n", 5, ROOMY, soon()).unwrap(), 5);
    assert_eq!(kv.increment("c", "n", -7, ROOMY, soon()).unwrap(), -2);
    kv.set("c", "text", b"abc", ROOMY, soon()).unwrap();
    assert!(matches!(
        kv.increment("c", "text", 1, ROOMY, soon()),
        Err(StoreError::NotAnInteger(_))
    ));
    kv.set("c", "max", i64::MAX.to_string().as_bytes(), ROOMY, soon())
        .unwrap();
    assert!(matches!(
        kv.increment("c", "max", 1, ROOMY, soon()),
        Err(StoreError::NotAnInteger(_))
    ));
    assert!(
        kv.compare_and_swap("c", "s", None, b"1", ROOMY, soon())
            .unwrap()
    );
    assert!(
        !kv.compare_and_swap("c", "s", None, b"2", ROOMY, soon())
            .unwrap()
    );
    assert!(
        !kv.compare_and_swap("c", "s", Some(b"9"), b"2", ROOMY, soon())
            .unwrap()
    );
    assert!(
        kv.compare_and_swap("c", "s", Some(b"1"), b"2", ROOMY, soon())
            .unwrap()
    );
    assert_eq!(kv.get("c", "s", soon()).unwrap(), Some(b"2".to_vec()));
}

fn list_keys_pages_through_a_prefix(kv: &dyn KvStore) {
    for key in ["a%1", "a%2", "a%3", "ab", "a_x", "b"] {
        kv.set("l", key, b"", ROOMY, soon()).unwrap();
    }
    let first = kv.list_keys("l", "a%", None, 2, soon()).unwrap();
    assert_eq!(first.keys, ["a%1", "a%2"]);
    let second = kv
        .list_keys("l", "a%", first.next_cursor.as_deref(), 2, soon())
        .unwrap();
    assert_eq!(
        second.keys,
        ["a%3"],
        "wildcards in the prefix match literally"
    );
    assert_eq!(second.next_cursor, None);
    assert_eq!(
        kv.list_keys("l", "a_", None, 10, soon()).unwrap().keys,
        ["a_x"]
    );
    assert_eq!(
        kv.list_keys("l", "", None, 100, soon()).unwrap().keys.len(),
        6
    );
}

/// Alphabet of the random keys: ASCII case pairs, LIKE wildcards and escapes, multi-byte
/// letters whose case folds, and punctuation.
const KEY_CHARS: &[char] = &[
    'a', 'A', 'b', '%', '_', '\\', 'é', 'É', 'ß', '😀', '/', '.', ' ',
];

fn key_strategy(max: usize) -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    proptest::collection::vec(proptest::sample::select(KEY_CHARS), 0..=max)
        .prop_map(|chars| chars.into_iter().collect())
}

/// Random keys and prefixes: every backend lists exactly the keys a plain model says start
/// with the prefix, byte for byte, in byte order, across pages.
fn prefix_listing_matches_a_model(kv: &dyn KvStore, cases: u32) {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let namespaces = std::sync::atomic::AtomicU32::new(0);
    let strategy = (
        proptest::collection::btree_set(
            key_strategy(5).prop_filter("non-empty", |k| !k.is_empty()),
            0..24,
        ),
        key_strategy(3),
    );
    runner
        .run(&strategy, |(keys, prefix)| {
            let namespace = format!(
                "prop{}",
                namespaces.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            );
            for key in &keys {
                kv.set(&namespace, key, b"v", ROOMY, soon()).unwrap();
            }
            let expected: Vec<&String> = keys.iter().filter(|k| k.starts_with(&prefix)).collect();
            let mut listed = Vec::new();
            let mut cursor = None;
            loop {
                let page = kv
                    .list_keys(&namespace, &prefix, cursor.as_deref(), 3, soon())
                    .unwrap();
                listed.extend(page.keys);
                match page.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            prop_assert_eq!(
                listed.iter().collect::<Vec<_>>(),
                expected,
                "prefix {:?}",
                prefix
            );
            Ok(())
        })
        .unwrap();
}

/// 100 fresh instances of the counter plugin increment one key at once; none is lost.
fn concurrent_increments_from_fresh_instances(kv: Arc<dyn StateStore>) {
    let (services, _audit, _logs) = Services::in_memory();
    let runtime = Runtime::new(Services {
        state: kv.clone(),
        ..services
    })
    .unwrap();
    let policy =
        Policy::parse("[defaults.capabilities.routes]\n[defaults.capabilities.kv]\n").unwrap();
    let counter = runtime.load(&plugin("counter"), None, &policy).unwrap();
    std::thread::scope(|scope| {
        let calls: Vec<_> = (0..100)
            .map(|_| scope.spawn(|| counter.handle(&get("/race"))))
            .collect();
        for call in calls {
            let response = call.join().unwrap().unwrap();
            assert_eq!(response.status, 200, "{}", text(&response.body));
        }
    });
    assert_eq!(
        kv.get("counter", "hits:/race", soon()).unwrap(),
        Some(b"100".to_vec())
    );
}

fn audit_is_persisted_and_queryable(audit: &dyn AuditSink) {
    let t0 = SystemTime::now() - Duration::from_secs(100);
    let at = |secs: u64| t0 + Duration::from_secs(secs);
    let event = |plugin: &str, kind, secs, detail: &str| AuditEvent {
        time: at(secs),
        plugin: plugin.into(),
        kind,
        capability: Some(CapabilityId::Kv),
        detail: detail.into(),
    };
    audit.record(event("a", AuditKind::Denied, 1, "first"));
    audit.record(event("b", AuditKind::Denied, 2, "other plugin"));
    audit.record(event("a", AuditKind::LimitHit, 3, "second"));
    audit.record(event("a", AuditKind::Denied, 4, "third"));
    let details = |q: AuditQuery| -> Vec<String> {
        audit
            .query(&q)
            .unwrap()
            .into_iter()
            .map(|e| e.detail)
            .collect()
    };
    let all = AuditQuery {
        limit: 100,
        ..AuditQuery::default()
    };
    assert_eq!(
        details(all.clone()),
        ["third", "second", "other plugin", "first"],
        "newest first"
    );
    let of_a = AuditQuery {
        plugin: Some("a".into()),
        ..all.clone()
    };
    assert_eq!(details(of_a.clone()), ["third", "second", "first"]);
    assert_eq!(
        details(AuditQuery {
            kind: Some(AuditKind::Denied),
            ..of_a.clone()
        }),
        ["third", "first"]
    );
    assert_eq!(
        details(AuditQuery {
            since: Some(at(2)),
            until: Some(at(4)),
            ..all.clone()
        }),
        ["second", "other plugin"]
    );
    assert_eq!(details(AuditQuery { limit: 1, ..of_a }), ["third"]);
    let back = &audit.query(&all).unwrap()[0];
    assert_eq!(
        (back.kind, back.capability, back.plugin.as_str()),
        (AuditKind::Denied, Some(CapabilityId::Kv), "a")
    );
}

fn logs_are_persisted_and_queryable(logs: &dyn LogSink) {
    let line = |plugin: &str, level, message: &str| LogRecord {
        time: SystemTime::now(),
        plugin: plugin.into(),
        call_id: "c1".into(),
        level,
        source: LogSource::Guest,
        message: message.into(),
    };
    logs.write(line("a", LogLevel::Debug, "quiet"));
    logs.write(line("a", LogLevel::Warn, "loud"));
    logs.write(LogRecord {
        call_id: "c2".into(),
        ..line("a", LogLevel::Info, "another call")
    });
    logs.write(line("b", LogLevel::Error, "other"));
    let messages = |q: LogQuery| -> Vec<String> {
        logs.query(&q)
            .unwrap()
            .into_iter()
            .map(|r| r.message)
            .collect()
    };
    let of_a = LogQuery {
        plugin: Some("a".into()),
        limit: 10,
        ..LogQuery::default()
    };
    assert_eq!(messages(of_a.clone()), ["another call", "loud", "quiet"]);
    assert_eq!(
        messages(LogQuery {
            call: Some("c2".into()),
            ..LogQuery::default()
        }),
        ["another call"],
        "the lines of one call"
    );
    assert_eq!(
        messages(LogQuery {
            level: Some(LogLevel::Warn),
            ..of_a
        }),
        ["loud"]
    );
    let back = &logs
        .query(&LogQuery {
            limit: 1,
            ..LogQuery::default()
        })
        .unwrap()[0];
    assert_eq!(
        (back.level, back.source, back.call_id.as_str()),
        (LogLevel::Error, LogSource::Guest, "c1")
    );
}

/// Ten days ago, three days ago, and `n` lines or records of now, oldest first.
fn retention_ages(now: SystemTime, n: usize) -> Vec<(SystemTime, String)> {
    let days = |d: u64| now - Duration::from_secs(d * 24 * 3600);
    let mut ages = vec![
        (days(10), "ten days".into()),
        (days(3), "three days".into()),
    ];
    ages.extend((0..n).map(|i| (now, format!("now {i}"))));
    ages
}

/// Plugins "a" and "b" interleaved (b's rows between a's, so a count that ignored the
/// plugin would take some of b's): [`retention_ages`]`(now, 4)` each.
fn interleaved<R>(now: SystemTime, row: impl Fn(&str, (SystemTime, String)) -> R) -> Vec<R> {
    retention_ages(now, 4)
        .into_iter()
        .flat_map(|age| [row("b", age.clone()), row("a", age)])
        .collect()
}

/// 7 days and the newest 3.
fn week_and_three() -> Retention {
    Retention {
        age: Some(Duration::from_secs(7 * 24 * 3600)),
        newest: 3,
    }
}

/// 7 days and more than any test writes: only age deletes.
fn week_only() -> Retention {
    Retention {
        newest: 1_000_000,
        ..week_and_three()
    }
}

/// What [`week_and_three`] keeps of [`retention_ages`]`(now, 4)`, newest first.
const KEPT: [&str; 3] = ["now 3", "now 2", "now 1"];
/// What [`week_only`] keeps of it.
const YOUNG: [&str; 5] = ["now 3", "now 2", "now 1", "now 0", "three days"];

/// A log line of `plugin` written at `time`.
fn log_line(plugin: &str, (time, message): (SystemTime, String)) -> LogRecord {
    LogRecord {
        time,
        plugin: plugin.into(),
        call_id: "c1".into(),
        level: LogLevel::Info,
        source: LogSource::Guest,
        message,
    }
}

/// `plugin`'s log messages, newest first.
fn messages(logs: &dyn LogSink, plugin: &str) -> Vec<String> {
    logs.query(&LogQuery {
        plugin: Some(plugin.into()),
        limit: 100,
        ..LogQuery::default()
    })
    .unwrap()
    .into_iter()
    .map(|r| r.message)
    .collect()
}

/// More lines than two chunks: [`retention_ages`] with this many of now.
const MANY: usize = 2 * retention::DELETE_CHUNK as usize + 7;

/// Pruning deletes one plugin's lines past the newest few and past the age, in chunks when
/// there are many, and leaves other plugins' lines alone.
fn logs_are_pruned_to_their_retention(logs: &dyn LogSink) {
    let now = SystemTime::now();
    let to_the_end = Pass::to_the_end(now);
    logs.write_all(interleaved(now, log_line));
    assert_eq!(logs.plugins().unwrap(), ["a", "b"]);
    assert_eq!(logs.prune("a", week_and_three(), &to_the_end).unwrap(), 3);
    assert_eq!(messages(logs, "a"), KEPT);
    assert_eq!(messages(logs, "b").len(), 6, "untouched");
    assert_eq!(
        logs.prune("a", week_and_three(), &to_the_end).unwrap(),
        0,
        "idempotent"
    );
    assert_eq!(
        logs.prune("b", week_only(), &to_the_end).unwrap(),
        1,
        "only by age"
    );
    assert_eq!(messages(logs, "b"), YOUNG);

    logs.write_all(
        retention_ages(now, MANY)
            .into_iter()
            .map(|age| log_line("c", age))
            .collect(),
    );
    assert_eq!(
        logs.prune("c", week_and_three(), &to_the_end).unwrap(),
        MANY as u64 - 1,
        "all but the newest three, over several chunks"
    );
    assert_eq!(
        messages(logs, "c"),
        [2, 1, 0].map(|i| format!("now {}", MANY - 3 + i))
    );
}

/// A pass asked to stop (the server shutting down) ends a plugin's prune after the chunk
/// in flight instead of deleting every chunk first; the next pass finishes it. For the
/// backends that delete in chunks.
fn a_stopped_pass_ends_after_the_chunk_in_flight(logs: &dyn LogSink) {
    let now = SystemTime::now();
    logs.write_all(
        retention_ages(now, MANY)
            .into_iter()
            .map(|age| log_line("c", age))
            .collect(),
    );
    let stopping = Pass {
        now,
        stop: &|| true,
    };
    let chunk = u64::from(retention::DELETE_CHUNK);
    assert_eq!(logs.prune("c", week_and_three(), &stopping).unwrap(), chunk);
    assert_eq!(
        logs.prune("c", week_and_three(), &Pass::to_the_end(now))
            .unwrap(),
        MANY as u64 - 1 - chunk,
        "the next pass deletes the rest"
    );
    assert_eq!(messages(logs, "c").len(), 3);
}

/// The same for the audit trail, where only the records calls cause count toward the
/// newest kept: what operators did goes only for its age.
fn audit_is_pruned_to_its_retention(audit: &dyn AuditSink) {
    let now = SystemTime::now();
    let event = |plugin: &str, kind, (time, detail): (SystemTime, String)| AuditEvent {
        time,
        ..AuditEvent::new(plugin, kind, None, detail)
    };
    let mut events = interleaved(now, |plugin, age| event(plugin, AuditKind::Trapped, age));
    events.push(event(
        "a",
        AuditKind::PluginChanged,
        (now - Duration::from_secs(24 * 3600), "upgraded".into()),
    ));
    events.push(event("a", AuditKind::Trapped, (now, "now 4".into())));
    audit.record_all(events);
    let details = |plugin: &str| -> Vec<String> {
        audit
            .query(&AuditQuery {
                plugin: Some(plugin.into()),
                limit: 100,
                ..AuditQuery::default()
            })
            .unwrap()
            .into_iter()
            .map(|e| e.detail)
            .collect()
    };
    assert_eq!(audit.plugins().unwrap(), ["a", "b"]);
    assert_eq!(
        audit
            .prune("a", week_and_three(), &Pass::to_the_end(now))
            .unwrap(),
        4
    );
    assert_eq!(
        details("a"),
        ["now 4", "upgraded", "now 3", "now 2"],
        "the newest three traps, and the operator's change although older"
    );
    assert_eq!(details("b").len(), 6, "untouched");
    assert_eq!(
        audit
            .prune("a", week_and_three(), &Pass::to_the_end(now))
            .unwrap(),
        0
    );
    assert_eq!(
        audit
            .prune("b", week_only(), &Pass::to_the_end(now))
            .unwrap(),
        1,
        "only by age"
    );
    assert_eq!(details("b"), YOUNG);
    let ageless = Retention {
        age: None,
        newest: 1,
    };
    assert_eq!(
        audit.prune("a", ageless, &Pass::to_the_end(now)).unwrap(),
        2
    );
    assert_eq!(details("a"), ["now 4", "upgraded"]);
}

macro_rules! conformance {
    ($($backend:ident),*) => {$(
        mod $backend {
            #[test]
            fn get_set_delete() {
                let Some(b) = super::$backend() else { return };
                super::get_set_delete(&*b.store);
            }

            #[test]
            fn namespaces_are_isolated() {
                let Some(b) = super::$backend() else { return };
                super::namespaces_are_isolated(&*b.store);
            }

            #[test]
            fn quota_counts_keys_and_bytes_and_frees_on_delete() {
                let Some(b) = super::$backend() else { return };
                super::quota_counts_keys_and_bytes_and_frees_on_delete(&*b.store);
            }

            #[test]
            fn increment_and_compare_and_swap() {
                let Some(b) = super::$backend() else { return };
                super::increment_and_compare_and_swap(&*b.store);
            }

            #[test]
            fn list_keys_pages_through_a_prefix() {
                let Some(b) = super::$backend() else { return };
                super::list_keys_pages_through_a_prefix(&*b.store);
            }

            #[test]
            fn prefix_listing_matches_a_model() {
                let Some(b) = super::$backend() else { return };
                let cases = if stringify!($backend) == "postgres" { 48 } else { 192 };
                super::prefix_listing_matches_a_model(&*b.store, cases);
            }

            #[test]
            fn audit_is_persisted_and_queryable() {
                let Some(b) = super::$backend() else { return };
                super::audit_is_persisted_and_queryable(&*b.audit);
            }

            #[test]
            fn logs_are_persisted_and_queryable() {
                let Some(b) = super::$backend() else { return };
                super::logs_are_persisted_and_queryable(&*b.logs);
            }

            #[test]
            fn logs_are_pruned_to_their_retention() {
                let Some(b) = super::$backend() else { return };
                super::logs_are_pruned_to_their_retention(&*b.logs);
            }

            #[test]
            fn audit_is_pruned_to_its_retention() {
                let Some(b) = super::$backend() else { return };
                super::audit_is_pruned_to_its_retention(&*b.audit);
            }

            #[test]
            fn concurrent_increments_from_fresh_instances() {
                let Some(b) = super::$backend() else { return };
                super::concurrent_increments_from_fresh_instances(b.store.clone());
            }
        }
    )*};
}

conformance!(memory, sqlite, postgres);

#[test]
fn sqlite_a_stopped_pass_ends_after_the_chunk_in_flight() {
    let b = sqlite().unwrap();
    a_stopped_pass_ends_after_the_chunk_in_flight(&*b.logs);
}

#[test]
fn postgres_a_stopped_pass_ends_after_the_chunk_in_flight() {
    let Some(b) = postgres() else { return };
    a_stopped_pass_ends_after_the_chunk_in_flight(&*b.logs);
}

/// Hosts sharing a PostgreSQL database prune the same plugins every minute. While one
/// holds a plugin's pruning lock for a table (here a session standing in for it), another
/// leaves that plugin's rows of that table alone instead of deleting the same rows at once,
/// and prunes its other table as usual; once the lock is released, it prunes.
#[test]
fn postgres_a_plugin_being_pruned_by_another_host_is_left_to_it() {
    let Some(url) = support::postgres_url() else {
        return;
    };
    let schema = support::unique_schema();
    let store = PostgresStore::connect(&url, Some(&schema)).unwrap();
    let now = SystemTime::now();
    let to_the_end = Pass::to_the_end(now);
    store.write_all(interleaved(now, log_line));
    store.record_all(interleaved(now, |plugin, (time, detail)| AuditEvent {
        time,
        ..AuditEvent::new(plugin, AuditKind::Trapped, None, detail)
    }));

    let other_host = support::PostgresSession::connect(&url);
    other_host.execute(&format!(
        "SET search_path = {schema}; BEGIN; \
         SELECT pg_advisory_xact_lock(hashtext('capstan-prune:' || current_schema() || ':logs:a'))"
    ));
    assert_eq!(
        LogSink::prune(&store, "a", week_and_three(), &to_the_end).unwrap(),
        0,
        "left to the host pruning it"
    );
    assert_eq!(messages(&store, "a").len(), 6, "nothing deleted");
    assert_eq!(
        LogSink::prune(&store, "b", week_and_three(), &to_the_end).unwrap(),
        3,
        "another plugin's lines are pruned"
    );
    assert_eq!(
        AuditSink::prune(&store, "a", week_and_three(), &to_the_end).unwrap(),
        3,
        "the same plugin's audit records are pruned"
    );

    other_host.execute("ROLLBACK");
    assert_eq!(
        LogSink::prune(&store, "a", week_and_three(), &to_the_end).unwrap(),
        3,
        "released, it prunes"
    );
    assert_eq!(messages(&store, "a"), KEPT);
    store.drop_schema(&schema).expect("dropping test schema");
}

/// On PostgreSQL a kv write holds its namespace's usage row locked until it commits or
/// rolls back. A write refused for its quota, a non-integer increment, a compare-and-swap
/// that does not match and a delete of a missing key all end without writing: each must
/// still release that lock, or a second host writing the namespace would wait on a
/// connection idling in its transaction until its deadline.
#[test]
fn postgres_kv_writes_that_write_nothing_release_the_namespace_for_another_host() {
    let Some(url) = support::postgres_url() else {
        return;
    };
    let schema = support::unique_schema();
    let first = PostgresStore::connect(&url, Some(&schema)).unwrap();
    let second = PostgresStore::connect(&url, Some(&schema)).unwrap();
    let one_key = Quota {
        max_keys: 1,
        max_bytes: 1 << 20,
    };
    let brief = || capstan_host::capability::Deadline::after(Duration::from_secs(3));
    first.set("ns", "text", b"abc", one_key, soon()).unwrap();
    let over_quota = || {
        matches!(
            first.set("ns", "second-key", b"x", one_key, soon()),
            Err(StoreError::QuotaExceeded(_))
        )
    };
    let not_an_integer = || {
        matches!(
            first.increment("ns", "text", 1, one_key, soon()),
            Err(StoreError::NotAnInteger(_))
        )
    };
    let mismatch =
        || first.compare_and_swap("ns", "text", Some(b"no"), b"new", one_key, soon()) == Ok(false);
    let missing = || first.delete("ns", "missing", soon()) == Ok(false);
    let attempts: [(&str, &dyn Fn() -> bool); 4] = [
        ("over quota", &over_quota),
        ("not an integer", &not_an_integer),
        ("compare-and-swap mismatch", &mismatch),
        ("delete of a missing key", &missing),
    ];
    for (n, (what, attempt)) in attempts.iter().enumerate() {
        assert!(attempt(), "{what}: refused or a no-op as expected");
        let value = format!("from the second host {n}");
        second
            .set("ns", "text", value.as_bytes(), one_key, brief())
            .unwrap_or_else(|e| panic!("after {what}, the second host's write: {e}"));
        assert_eq!(
            first.get("ns", "text", soon()).unwrap(),
            Some(value.into_bytes()),
            "after {what}, the first host sees the second's write"
        );
    }
    first.drop_schema(&schema).expect("dropping test schema");
}
