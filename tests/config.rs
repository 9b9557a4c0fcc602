//! `config` from real plugins: an SDK plugin and two plain `wit-bindgen` components that
//! read the standard `wasi:config/store` in each spelling, granted, withheld and undeclared.

mod support;

use capstan_host::audit::AuditKind;
use capstan_host::capability::CapabilityId;
use capstan_host::{InstallError, Policy};
use support::{TestHost, get, plugin, root, text};

const ROUTES: &str = "[defaults.capabilities.routes]\n";

/// The sidecar manifest shipped beside plain component `name`.
fn sidecar(name: &str) -> Vec<u8> {
    std::fs::read(root().join(format!("plugins/{name}/capstan.toml"))).unwrap()
}

fn set(host: &TestHost, plugin: &str, values: serde_json::Value) {
    let values = values.as_object().unwrap().clone();
    host.runtime
        .services()
        .state
        .set_config(plugin, &values)
        .unwrap();
}

#[test]
fn components_written_for_either_wasi_config_spelling_read_a_granted_key() {
    for (name, file) in [
        ("wasi-config-rc", "wasi_config_rc"),
        ("wasi-config-draft", "wasi_config_draft"),
    ] {
        let host = TestHost::new();
        let component = host
            .runtime
            .load(
                &plugin(file),
                Some(&sidecar(name)),
                &Policy::parse(ROUTES).unwrap(),
            )
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let default = component.handle(&get("/")).unwrap();
        assert_eq!(
            (default.status, text(&default.body)),
            (200, "Hello from wasi:config".to_string()),
            "{name}: the schema's default, as the string's text"
        );
        set(&host, name, serde_json::json!({"greeting": "Ahoy"}));
        let set = component.handle(&get("/")).unwrap();
        assert_eq!(text(&set.body), "Ahoy", "{name}");
        assert!(!host.audited_denial(name, CapabilityId::Config));
    }
}

#[test]
fn a_component_importing_wasi_config_without_declaring_it_is_refused_at_install() {
    let host = TestHost::new();
    let undeclared = b"id = \"wasi-config-rc\"\nversion = \"0.1.0\"\n[capabilities.routes]\n";
    let error = host
        .runtime
        .load(
            &plugin("wasi_config_rc"),
            Some(undeclared),
            &Policy::parse(ROUTES).unwrap(),
        )
        .unwrap_err();
    assert!(
        matches!(&error, InstallError::Undeclared { import, capability: CapabilityId::Config }
            if import == "wasi:config/store@0.2.0-rc.1"),
        "{error:?}"
    );
    assert_eq!(error.code(), "undeclared-import");
}

#[test]
fn config_withheld_by_the_policy_answers_an_error_on_the_standard_interface_and_is_audited() {
    for (name, file) in [
        ("wasi-config-rc", "wasi_config_rc"),
        ("wasi-config-draft", "wasi_config_draft"),
    ] {
        let host = TestHost::new();
        let policy = format!("{ROUTES}[plugins.{name}]\ndeny = [\"config\"]\n");
        let component = host
            .runtime
            .load(
                &plugin(file),
                Some(&sidecar(name)),
                &Policy::parse(&policy).unwrap(),
            )
            .unwrap();
        set(&host, name, serde_json::json!({"greeting": "secret plans"}));
        let response = component.handle(&get("/")).unwrap();
        assert_eq!(response.status, 403, "{name}");
        assert_eq!(
            text(&response.body),
            format!("config is not granted to plugin `{name}`")
        );
        assert!(host.audited_denial(name, CapabilityId::Config), "{name}");
        let decisions = host.audit_of(name, AuditKind::GrantDecision);
        assert!(
            decisions
                .iter()
                .any(|e| e.capability == Some(CapabilityId::Config)
                    && e.detail.starts_with("denied")),
            "{decisions:?}"
        );
    }
}

#[test]
fn an_sdk_plugin_reads_set_values_over_its_schema_defaults() {
    let host = TestHost::new();
    let settings = host.load("settings", ROUTES);
    let response = settings.handle(&get("/?name=Ada")).unwrap();
    assert_eq!(text(&response.body), "Hello, Ada! (retries: 3)");
    set(&host, "settings", serde_json::json!({"retries": 7}));
    let response = settings.handle(&get("/?name=Ada")).unwrap();
    assert_eq!(text(&response.body), "Hello, Ada! (retries: 7)");
    let all: serde_json::Value =
        serde_json::from_slice(&settings.handle(&get("/settings")).unwrap().body).unwrap();
    assert_eq!(all, serde_json::json!({"greeting": "Hello", "retries": 7}));
}

#[test]
fn a_manifest_whose_settings_schema_is_not_json_schema_is_refused() {
    let host = TestHost::new();
    let bad = b"id = \"wasi-config-rc\"\nversion = \"0.1.0\"\n[capabilities.routes]\n\
                [capabilities.config.schema]\ntype = \"string\"\n";
    let error = host
        .runtime
        .load(
            &plugin("wasi_config_rc"),
            Some(bad),
            &Policy::parse(ROUTES).unwrap(),
        )
        .unwrap_err();
    assert_eq!(error.code(), "invalid-manifest");
    assert!(
        error.to_string().contains("[capabilities.config]") && error.to_string().contains("object"),
        "{error}"
    );
}
