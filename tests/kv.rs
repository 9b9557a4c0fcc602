//! Key-value storage attacked from real plugins on the default (SQLite) backend: quota,
//! oversized keys and values, and another plugin's keys, next to the legitimate paths.

mod support;

use capstan_host::audit::AuditKind;
use capstan_host::capability::CapabilityId;
use capstan_host::cli::state;
use capstan_host::{Plugin, Policy, Runtime};
use support::{get, plugin, text};

struct Host {
    runtime: Runtime,
    _dir: tempfile::TempDir,
}

fn host() -> Host {
    let dir = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(state::open(dir.path()).unwrap()).unwrap();
    Host { runtime, _dir: dir }
}

impl Host {
    fn load(&self, name: &str, kv_policy: &str) -> Plugin {
        let policy =
            format!("[defaults.capabilities.routes]\n[defaults.capabilities.kv]\n{kv_policy}\n");
        self.runtime
            .load(&plugin(name), None, &Policy::parse(&policy).unwrap())
            .unwrap()
    }
}

fn call(plugin: &Plugin, path: &str) -> (u16, String) {
    let response = plugin.handle(&get(path)).unwrap();
    (response.status, text(&response.body))
}

#[test]
fn quota_from_policy_stops_writes_with_quota_exceeded_and_is_audited() {
    let host = host();
    let hog = host.load("hostile_kv_hog", "max_keys = 5");
    let (status, body) = call(&hog, "/fill?n=10");
    assert_eq!(status, 200);
    assert_eq!(
        body,
        r#"{"error":"quota exceeded: at most 5 keys","written":5}"#
    );
    let audit = host
        .runtime
        .services()
        .audit
        .query(&Default::default())
        .unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.kind == AuditKind::LimitHit && e.capability == Some(CapabilityId::Kv))
    );
}

#[test]
fn manifest_may_ask_for_less_than_the_policy_allows() {
    let host = host();
    let hog = host.load("hostile_kv_hog", "max_keys = 5000");
    let (_, body) = call(&hog, "/fill?n=1001");
    assert!(
        body.ends_with(r#""written":1000}"#),
        "manifest's max_keys = 1000 applies: {body}"
    );
}

#[test]
fn oversized_values_and_keys_are_too_large_and_legitimate_sizes_pass() {
    let host = host();
    let hog = host.load("hostile_kv_hog", "max_value_bytes = 1000");
    assert_eq!(call(&hog, "/big?size=1000"), (200, "stored".into()));
    let (status, body) = call(&hog, "/big?size=1001");
    assert_eq!(status, 413);
    assert!(
        body.contains("value is 1001 bytes; the cap is 1000"),
        "{body}"
    );
    let (status, body) = call(&hog, &format!("/get?key={}", "k".repeat(513)));
    assert_eq!(status, 413);
    assert!(body.contains("the cap is 512"), "{body}");
}

#[test]
fn default_value_cap_is_one_mebibyte() {
    let host = host();
    let hog = host.load("hostile_kv_hog", "");
    assert_eq!(call(&hog, "/big?size=1048576").0, 200);
    assert_eq!(call(&hog, "/big?size=1048577").0, 413);
}

#[test]
fn another_plugins_keys_cannot_be_named() {
    let host = host();
    let counter = host.load("counter", "");
    assert_eq!(call(&counter, "/a").0, 200);
    let hog = host.load("hostile_kv_hog", "");
    for key in [
        "hits:/a",
        "counter/hits:/a",
        "../counter/hits:/a",
        "counter:hits:/a",
        "%",
        "*",
    ] {
        assert_eq!(call(&hog, &format!("/get?key={key}")).0, 404, "{key}");
    }
    assert_eq!(call(&hog, "/list?prefix=").1, "", "its namespace is empty");
    call(&hog, "/fill?n=2");
    assert_eq!(
        call(&hog, "/get?key=k1"),
        (200, "0123456789".into()),
        "its own keys work"
    );
    assert_eq!(call(&hog, "/list?prefix=k"), (200, "k0,k1".into()));
    assert_eq!(
        call(&counter, "/a").1,
        r#"{"hits":2,"path":"/a"}"#,
        "counter's data untouched"
    );
}
