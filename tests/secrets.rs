//! Secrets from real plugins: only declared ∩ granted names are readable, everything else
//! is denied and audited, and a secret value never shows up in logs, audit records,
//! error messages, listings or the database file.

mod support;

use capstan_host::capability::CapabilityId;
use capstan_host::cli::state;
use capstan_host::{Policy, Runtime};
use support::{TestHost, get, plugin, text};

const SNOOP_POLICY: &str = "[defaults.capabilities.routes]\n[plugins.secret-snoop.capabilities.secrets]\nnames = [\"granted-token\"]\n";

#[test]
fn granted_secret_is_readable_and_unset_is_not_found() {
    let host = TestHost::new();
    let policy = "[defaults.capabilities.routes]\n[plugins.vault.capabilities.secrets]\nnames = [\"api-token\"]\n";
    let vault = host.load("vault", policy);
    assert_eq!(vault.handle(&get("/")).unwrap().status, 404, "not set yet");
    host.runtime
        .services()
        .secrets
        .set("vault", "api-token", "abc123")
        .unwrap();
    let response = vault.handle(&get("/")).unwrap();
    assert_eq!(text(&response.body), r#"{"api-token":"set","length":6}"#);
}

#[test]
fn undeclared_secret_name_is_denied_and_audited() {
    let host = TestHost::new();
    let secrets = &host.runtime.services().secrets;
    secrets
        .set("secret-snoop", "admin-password", "root")
        .unwrap();
    let snoop = host.load("hostile_secret_snoop", SNOOP_POLICY);
    let response = snoop.handle(&get("/?name=admin-password")).unwrap();
    assert_eq!(response.status, 403);
    assert!(
        text(&response.body).contains("not granted"),
        "{}",
        text(&response.body)
    );
    assert!(host.audited_denial("secret-snoop", CapabilityId::Secrets));
}

#[test]
fn declared_but_not_granted_name_is_denied() {
    let host = TestHost::new();
    host.runtime
        .services()
        .secrets
        .set("secret-snoop", "granted-token", "t")
        .unwrap();
    let policy = "[defaults.capabilities.routes]\n[plugins.secret-snoop.capabilities.secrets]\nnames = [\"other\"]\n";
    let snoop = host.load("hostile_secret_snoop", policy);
    assert_eq!(
        snoop.handle(&get("/?name=granted-token")).unwrap().status,
        403
    );
    assert!(host.audited_denial("secret-snoop", CapabilityId::Secrets));
}

#[test]
fn another_plugins_secret_is_out_of_reach() {
    let host = TestHost::new();
    host.runtime
        .services()
        .secrets
        .set("vault", "granted-token", "vaults-own")
        .unwrap();
    let snoop = host.load("hostile_secret_snoop", SNOOP_POLICY);
    let response = snoop.handle(&get("/?name=granted-token")).unwrap();
    assert_eq!(
        response.status, 404,
        "secrets are per plugin: snoop's own slot is empty"
    );
    assert!(!text(&response.body).contains("vaults-own"));
}

#[test]
fn a_secret_value_never_leaks_into_logs_audit_errors_listings_or_the_database() {
    const VALUE: &str = "s3cr3t-VALUE-4242";
    let dir = tempfile::tempdir().unwrap();
    let services = state::open(dir.path()).unwrap();
    let (_, audit, logs) = capstan_host::Services::in_memory();
    let services = capstan_host::Services {
        audit: audit.clone(),
        logs: logs.clone(),
        ..services
    };
    services
        .secrets
        .set("secret-snoop", "granted-token", VALUE)
        .unwrap();
    services
        .secrets
        .set("secret-snoop", "admin-password", VALUE)
        .unwrap();
    let runtime = Runtime::new(services.clone()).unwrap();
    let snoop = runtime
        .load(
            &plugin("hostile_secret_snoop"),
            None,
            &Policy::parse(SNOOP_POLICY).unwrap(),
        )
        .unwrap();

    let mut said = Vec::new();
    let granted = snoop.handle(&get("/?name=granted-token")).unwrap();
    assert_eq!(text(&granted.body), VALUE, "the legitimate path works");
    let denied = snoop.handle(&get("/?name=admin-password")).unwrap();
    said.push(text(&denied.body));
    said.push(format!("{:?}", services.secrets.list(None).unwrap()));
    let other = runtime
        .load(
            &plugin("hostile_secret_snoop"),
            None,
            &Policy::parse("").unwrap(),
        )
        .unwrap();
    said.push(
        other
            .handle(&get("/?name=granted-token"))
            .unwrap_err()
            .to_string(),
    );

    let log_lines: Vec<String> = logs.records(None).into_iter().map(|r| r.message).collect();
    assert!(
        log_lines
            .iter()
            .any(|l| l == "leaking granted-token = [redacted]"),
        "{log_lines:?}"
    );
    assert!(
        log_lines.iter().any(|l| l == "stdout leak: [redacted]"),
        "{log_lines:?}"
    );
    said.extend(log_lines);
    said.extend(audit.events().into_iter().map(|e| format!("{e:?}")));
    let leaks: Vec<&String> = said.iter().filter(|s| s.contains(VALUE)).collect();
    assert!(leaks.is_empty(), "secret value leaked: {leaks:?}");

    drop((snoop, other, runtime, services));
    let mut files = Vec::new();
    let mut dirs = vec![dir.path().to_path_buf()];
    while let Some(next) = dirs.pop() {
        for entry in std::fs::read_dir(next).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    for path in files {
        let bytes = std::fs::read(&path).unwrap();
        let hits = bytes
            .windows(VALUE.len())
            .filter(|w| *w == VALUE.as_bytes())
            .count();
        assert_eq!(hits, 0, "{} holds the value in clear", path.display());
    }
}
