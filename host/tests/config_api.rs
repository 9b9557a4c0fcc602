//! Operators set a plugin's settings through the real server: checked against the
//! plugin's schema (a refusal names the field and the rule and stores nothing), read by
//! the plugin on its next call, audited by key, and kept across upgrades only when the
//! new schema still accepts them.

mod harness;

use harness::support::{capstan_bin, plugin};
use harness::*;
use reqwest::Method;
use serde_json::{Value, json};

fn put_config(server: &Server, id: &str, values: Value) -> (u16, Value) {
    let response = server
        .admin(Method::PUT, &format!("/plugins/{id}/config"))
        .json(&values)
        .send()
        .unwrap();
    (response.status().as_u16(), response.json().unwrap())
}

#[test]
fn settings_are_validated_stored_read_and_audited() {
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, &[]);
    assert_eq!(server.install(plugin("settings")).status(), 201);
    assert_eq!(
        server.route("settings/?name=Ada").1,
        "Hello, Ada! (retries: 3)"
    );

    let (status, config) = server.json(Method::GET, "/plugins/settings/config");
    assert_eq!(status, 200);
    assert_eq!(config["values"], json!({}));
    assert_eq!(
        config["effective"],
        json!({"greeting": "Hello", "retries": 3})
    );
    assert_eq!(config["schema"]["properties"]["retries"]["maximum"], 10);

    let (status, answer) = put_config(
        &server,
        "settings",
        json!({"greeting": "Ahoy", "retries": 5}),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["changed"], json!(["greeting", "retries"]));
    assert_eq!(
        server.route("settings/?name=Ada").1,
        "Ahoy, Ada! (retries: 5)"
    );

    // Refused by the schema: the field and the rule are named, nothing is stored.
    let (status, refused) = put_config(&server, "settings", json!({"retries": 99}));
    assert_eq!(status, 422);
    assert_eq!(refused["code"], "invalid-config");
    let message = refused["message"].as_str().unwrap();
    assert!(
        message.contains("`/retries`") && message.contains("maximum"),
        "{message}"
    );
    let (status, refused) = put_config(&server, "settings", json!({"colour": "red"}));
    assert_eq!(status, 422, "{refused}");
    assert_eq!(
        server.route("settings/?name=Ada").1,
        "Ahoy, Ada! (retries: 5)"
    );

    // A secret-reference field refuses a plain value and takes a reference.
    let (status, refused) = put_config(&server, "settings", json!({"api_token": "sk-live-1"}));
    assert_eq!(status, 422);
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("`/api_token`")
    );
    let (status, _) = put_config(
        &server,
        "settings",
        json!({"greeting": "Ahoy", "retries": 5, "api_token": {"secret": "token"}}),
    );
    assert_eq!(status, 200);

    let (_, audit) = server.json(Method::GET, "/audit?plugin=settings&kind=config-changed");
    let details: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["detail"].as_str().unwrap())
        .collect();
    assert_eq!(
        details,
        [
            "config set; changed keys: [api_token]",
            "config set; changed keys: [greeting, retries]"
        ]
    );
    assert!(
        details.iter().all(|d| !d.contains("Ahoy")),
        "audit names keys, never values"
    );
}

#[test]
fn bad_config_requests_get_their_own_codes() {
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, &[]);
    assert_eq!(server.install(plugin("hello")).status(), 201);
    let (status, refused) = put_config(&server, "hello", json!({"a": 1}));
    assert_eq!(
        (status, refused["code"].as_str()),
        (409, Some("config-not-declared"))
    );
    let (status, refused) = put_config(&server, "nobody", json!({}));
    assert_eq!(
        (status, refused["code"].as_str()),
        (404, Some("plugin-not-found"))
    );
    let not_json = server
        .admin(Method::PUT, "/plugins/hello/config")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .unwrap();
    assert_eq!(not_json.status(), 400);
}

#[test]
fn an_upgrade_whose_schema_rejects_the_stored_settings_is_refused_and_the_old_version_serves() {
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, &[]);
    assert_eq!(server.install(plugin("settings")).status(), 201);
    assert_eq!(
        put_config(&server, "settings", json!({"retries": 5})).0,
        200
    );

    // 0.2.0 allows at most 3 retries.
    let refused = server.install(plugin("settings_v2"));
    assert_eq!(refused.status(), 422);
    let refused: Value = refused.json().unwrap();
    assert_eq!(refused["code"], "state-rejected");
    let message = refused["message"].as_str().unwrap();
    assert!(message.contains("`/retries`"), "{message}");
    let (_, info) = server.json(Method::GET, "/plugins/settings");
    assert_eq!(info["version"], "0.1.0");
    assert_eq!(
        server.route("settings/?name=Ada").1,
        "Hello, Ada! (retries: 5)"
    );

    // Once the settings fit, the upgrade goes through and keeps them.
    assert_eq!(
        put_config(&server, "settings", json!({"retries": 2})).0,
        200
    );
    assert_eq!(server.install(plugin("settings_v2")).status(), 201);
    let (_, info) = server.json(Method::GET, "/plugins/settings");
    assert_eq!(info["version"], "0.2.0");
    assert_eq!(
        server.route("settings/?name=Ada").1,
        "Hello, Ada! (retries: 2)"
    );
}

#[test]
fn the_cli_sets_and_shows_config() {
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, &[]);
    assert_eq!(server.install(plugin("settings")).status(), 201);
    let cli = |args: &[&str], input: &str| {
        use std::io::Write;
        let mut child = std::process::Command::new(capstan_bin())
            .args(args)
            .args(["--server", &server.base])
            .env("CAPSTAN_ADMIN_TOKEN", TOKEN)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let set = cli(
        &["plugin", "config", "set", "settings", "-"],
        r#"{"greeting": "Moin"}"#,
    );
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    let shown = cli(&["plugin", "config", "get", "settings"], "");
    let effective: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(effective, json!({"greeting": "Moin", "retries": 3}));
    let refused = cli(
        &["plugin", "config", "set", "settings", "-"],
        r#"{"retries": -1}"#,
    );
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("invalid-config") && stderr.contains("/retries"),
        "{stderr}"
    );
}
