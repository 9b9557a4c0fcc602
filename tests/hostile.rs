//! Hostile plugins attack the host's limits; each attack is stopped with a typed error
//! and the host keeps serving well-behaved plugins in the same process.

mod support;

use capstan_host::InvokeError;
use capstan_host::audit::AuditKind;
use capstan_host::capability::CapabilityId;
use capstan_host::capability::FAULT_RECORDS_PER_SECOND;
use capstan_host::capability::log::LogSource;
use std::time::{Duration, Instant};
use support::{TestHost, get, text};

const DEADLINE_MS: u32 = 200;

fn misbehave_policy(extra: &str) -> String {
    format!(
        "[defaults.capabilities.routes]\n[plugins.misbehave.limits]\ndeadline_ms = {DEADLINE_MS}\nmemory_mib = 16\n{extra}"
    )
}

#[test]
fn infinite_loop_is_killed_within_deadline_plus_half() {
    let host = TestHost::new();
    let plugin = host.load("hostile_misbehave", &misbehave_policy(""));
    let started = Instant::now();
    let error = plugin.handle(&get("/loop")).unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(
        error,
        InvokeError::Timeout {
            deadline_ms: DEADLINE_MS
        }
    );
    assert!(
        elapsed < Duration::from_millis(u64::from(DEADLINE_MS) * 3 / 2),
        "took {elapsed:?} for a {DEADLINE_MS} ms deadline"
    );
    assert!(
        elapsed >= Duration::from_millis(u64::from(DEADLINE_MS)),
        "stopped early: {elapsed:?}"
    );
    assert_eq!(host.audit_of("misbehave", AuditKind::LimitHit).len(), 1);
}

#[test]
fn memory_bomb_stops_at_the_policy_cap() {
    let host = TestHost::new();
    let plugin = host.load("hostile_misbehave", &misbehave_policy(""));
    assert_eq!(
        plugin.handle(&get("/memory")).unwrap_err(),
        InvokeError::MemoryLimit { limit_mib: 16 }
    );
}

#[test]
fn deep_recursion_traps() {
    let host = TestHost::new();
    let plugin = host.load("hostile_misbehave", &misbehave_policy(""));
    let error = plugin.handle(&get("/recursion")).unwrap_err();
    assert!(
        matches!(error, InvokeError::StackOverflow | InvokeError::Trap(_)),
        "{error:?}"
    );
    assert_eq!(host.audit_of("misbehave", AuditKind::Trapped).len(), 1);
}

/// A client calling a plugin that traps on every call: each call still gets its typed
/// error, but the trap records are rate-limited per plugin (the next record written
/// counts those that were not), so the requests do not each become an audit write.
#[test]
fn a_flood_of_trapping_calls_writes_a_bounded_number_of_trap_records() {
    let host = TestHost::new();
    let plugin = host.load("hostile_misbehave", &misbehave_policy(""));
    let calls = 100;
    let started = Instant::now();
    for _ in 0..calls {
        let error = plugin.handle(&get("/recursion")).unwrap_err();
        assert!(
            matches!(error, InvokeError::StackOverflow | InvokeError::Trap(_)),
            "{error:?}"
        );
    }
    let seconds = started.elapsed().as_secs();
    let bound = u64::from(FAULT_RECORDS_PER_SECOND) * (seconds + 2);
    assert!(
        bound < calls,
        "too slow to tell: {calls} calls took {seconds} s"
    );
    let written = host.audit_of("misbehave", AuditKind::Trapped).len() as u64;
    assert!(
        (1..=bound).contains(&written),
        "{written} trap records for {calls} trapping calls in {seconds} s"
    );
}

#[test]
fn log_flood_is_capped_per_call_and_reported_once() {
    let host = TestHost::new();
    let policy = "[defaults.capabilities.routes]\n[plugins.misbehave.limits]\ndeadline_ms = 10000\n\
                  [plugins.misbehave.log]\nlines_per_call = 50\nline_bytes = 64\n";
    let plugin = host.load("hostile_misbehave", policy);
    let response = plugin.handle(&get("/log-flood")).unwrap();
    assert_eq!(text(&response.body), "flooded");
    let lines = host.logs.records(Some("misbehave"));
    assert_eq!(lines.len(), 51, "50 kept + 1 drop notice");
    assert!(
        lines[..50]
            .iter()
            .all(|l| l.source == LogSource::Guest && l.message.len() <= 64 + 32)
    );
    assert!(
        lines[50].message.starts_with("dropped 99950 log lines"),
        "{}",
        lines[50].message
    );
    let hits = host.audit_of("misbehave", AuditKind::LimitHit);
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].capability, Some(CapabilityId::Log));
}

/// A plugin called over and over, each call logging past the per-second cap: the drop
/// reports are capped too (at most one a second), instead of one host line and one audit
/// record per call, which would be a flood of their own.
#[test]
fn a_flood_of_calls_over_the_log_rate_does_not_flood_the_drop_reports() {
    let host = TestHost::new();
    let policy = "[defaults.capabilities.routes]\n[plugins.hello.log]\nlines_per_second = 10\n";
    let plugin = host.load("hello", policy);
    let started = Instant::now();
    for _ in 0..300 {
        assert_eq!(plugin.handle(&get("/?name=flood")).unwrap().status, 200);
    }
    let seconds = started.elapsed().as_secs();
    let lines = host.logs.records(Some("hello"));
    let kept = lines
        .iter()
        .filter(|l| l.source == LogSource::Guest)
        .count();
    let reports: Vec<&str> = lines
        .iter()
        .filter(|l| l.source == LogSource::Host)
        .map(|l| l.message.as_str())
        .collect();
    assert!(
        kept as u64 <= 10 + 10 * (seconds + 1),
        "{kept} lines kept in {seconds} s"
    );
    assert!(
        !reports.is_empty() && reports.len() as u64 <= 1 + seconds,
        "{} drop reports for 300 calls in {seconds} s",
        reports.len()
    );
    assert!(
        reports[0].starts_with("dropped 1 log lines ("),
        "{reports:?}"
    );
    let hits = host.audit_of("hello", AuditKind::LimitHit);
    assert_eq!(hits.len(), reports.len());
}

#[test]
fn stdout_flood_is_captured_into_the_log_with_caps() {
    let host = TestHost::new();
    let policy = "[defaults.capabilities.routes]\n[plugins.misbehave.limits]\ndeadline_ms = 10000\n\
                  [plugins.misbehave.log]\nlines_per_call = 20\n";
    let plugin = host.load("hostile_misbehave", policy);
    assert_eq!(plugin.handle(&get("/stdout-flood")).unwrap().status, 200);
    let lines = host.logs.records(Some("misbehave"));
    assert_eq!(lines.len(), 21);
    assert_eq!(lines[0].source, LogSource::Stdout);
    assert_eq!(lines[0].message, "stdout flood line 0");
    assert!(
        lines[20].message.starts_with("dropped"),
        "{}",
        lines[20].message
    );
}

#[test]
fn host_serves_hello_after_every_attack_in_the_same_process() {
    let host = TestHost::new();
    let hostile = host.load("hostile_misbehave", &misbehave_policy(""));
    let hello = host.load("hello", "[defaults.capabilities.routes]\n");
    for attack in ["/loop", "/memory", "/recursion"] {
        assert!(
            hostile.handle(&get(attack)).is_err(),
            "{attack} should fail"
        );
        let response = hello.handle(&get("/?name=after")).unwrap();
        assert_eq!(
            text(&response.body),
            "Hello, after! (GET /)\n",
            "after {attack}"
        );
    }
    assert_eq!(
        hostile.handle(&get("/ok")).unwrap().status,
        200,
        "the hostile plugin itself recovers"
    );
}

#[test]
fn a_looping_call_does_not_block_other_plugins() {
    let host = TestHost::new();
    let hostile = host.load("hostile_misbehave", &misbehave_policy(""));
    let hello = host.load("hello", "[defaults.capabilities.routes]\n");
    std::thread::scope(|scope| {
        let looping = scope.spawn(|| hostile.handle(&get("/loop")));
        // Wait until the looping call holds its instance (this runtime's pool is ours alone).
        while host.runtime.pool_usage().expect("pooling allocator").0 == 0 {
            std::thread::yield_now();
        }
        let started = Instant::now();
        assert_eq!(hello.handle(&get("/")).unwrap().status, 200);
        assert!(started.elapsed() < Duration::from_millis(u64::from(DEADLINE_MS)));
        assert!(matches!(
            looping.join().unwrap(),
            Err(InvokeError::Timeout { .. })
        ));
    });
}

/// The pool resets a freed memory in place (up to 64 KiB of the pages a call dirtied stay
/// resident, the rest go back to the kernel), so a call scans all of its linear memory for
/// what the calls before it left: none of the marked words survives, a few pages' worth or
/// 2 MiB, while the call that wrote them sees every one.
#[test]
fn a_call_finds_nothing_that_an_earlier_call_left_in_memory() {
    let host = TestHost::new();
    let plugin = host.load("hostile_misbehave", &misbehave_policy(""));
    let count = |path: String| -> usize {
        let response = plugin.handle(&get(&path)).unwrap();
        text(&response.body).parse().unwrap()
    };
    for round in 0..4 {
        for kib in [16, 2048] {
            let tag = format!("left-behind-{round}-{kib}");
            let seen = count(format!("/leave?tag={tag}&kib={kib}"));
            assert!(seen >= kib * 1024 / 8, "{tag}: the writer saw only {seen}");
            assert_eq!(count(format!("/find?tag={tag}")), 0, "{tag}");
        }
    }
}

/// A plugin flooding its log call after call (as far as its caps let it) and trapping on
/// every call cannot grow what is stored past its retention: pruning keeps its newest
/// lines and trap records, while a well-behaved plugin's lines, within their retention,
/// all stay.
#[test]
fn a_log_and_trap_flood_is_pruned_to_the_plugins_retention() {
    let policy = misbehave_policy(
        "[plugins.misbehave.log]\nlines_per_call = 1000\nlines_per_second = 100000\n\
         retention_lines = 50\n[audit]\nretention_records = 5\n",
    )
    .replace("deadline_ms = 200", "deadline_ms = 10000");
    let host = TestHost::new();
    let hostile = host.load("hostile_misbehave", &policy);
    let hello = host.load("hello", &policy);
    assert_eq!(hello.handle(&get("/?name=kept")).unwrap().status, 200);
    for _ in 0..3 {
        assert_eq!(hostile.handle(&get("/stdout-flood")).unwrap().status, 200);
    }
    for _ in 0..10 {
        let error = hostile.handle(&get("/recursion")).unwrap_err();
        assert!(
            matches!(error, InvokeError::StackOverflow | InvokeError::Trap(_)),
            "{error:?}"
        );
    }
    let messages = |plugin: &str| -> Vec<String> {
        host.logs
            .records(Some(plugin))
            .into_iter()
            .map(|line| line.message)
            .collect()
    };
    let flooded = messages("misbehave");
    let greeted = messages("hello");
    // Traps of the same kind read alike; their times tell them apart.
    let trap_times = || -> Vec<std::time::SystemTime> {
        host.audit_of("misbehave", AuditKind::Trapped)
            .iter()
            .map(|e| e.time)
            .collect()
    };
    let traps = trap_times();
    assert!(
        flooded.len() > 3 * 1000,
        "1,000 lines a call and the drop reports: {}",
        flooded.len()
    );
    assert_eq!(traps.len(), 10);

    let pruned = capstan_host::retention::prune(
        &capstan_host::Policy::parse(&policy).unwrap(),
        &*host.logs,
        &*host.audit,
        &capstan_host::retention::Pass::to_the_end(std::time::SystemTime::now()),
    );
    assert_eq!(pruned.failures, 0);
    assert_eq!(messages("misbehave"), flooded[flooded.len() - 50..]);
    assert_eq!(pruned.log_lines, (flooded.len() - 50) as u64);
    assert_eq!(trap_times(), traps[5..], "the newest five traps");
    assert_eq!(messages("hello"), greeted, "within its retention: all kept");
    assert!(greeted.iter().any(|m| m == "greeting kept"), "{greeted:?}");
}
