//! The gate's grant matrix, each cell tried from a real plugin: declared + granted works,
//! declared + denied returns `denied` and is audited, imported-but-undeclared and unknown
//! imports are refused at install by name.

mod support;

/// A deadline no test operation comes near.
fn soon() -> capstan_host::capability::Deadline {
    capstan_host::capability::Deadline::after(std::time::Duration::from_secs(30))
}

use capstan_host::audit::AuditKind;
use capstan_host::capability::CapabilityId;
use capstan_host::runtime::{Caller, next_call_id};
use capstan_host::{InstallError, InvokeError, Policy};
use support::{TestHost, get, plugin, shipped_policy, text};

const ROUTES_ONLY: &str = "[defaults.capabilities.routes]\n";

#[test]
fn log_is_always_granted_and_tagged_with_plugin_and_call() {
    let host = TestHost::new();
    let hello = host.load("hello", ROUTES_ONLY);
    let response = hello.handle(&get("/?name=Ada")).unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(text(&response.body), "Hello, Ada! (GET /)\n");
    let lines = host.logs.records(Some("hello"));
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0].message, "greeting Ada");
    assert!(!lines[0].call_id.is_empty());
}

#[test]
fn kv_declared_and_granted_persists_across_fresh_instances() {
    let host = TestHost::new();
    let counter = host.load("counter", &shipped_policy("examples.toml"));
    for expected in 1..=3 {
        let response = counter.handle(&get("/a")).unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(
            text(&response.body),
            format!(r#"{{"hits":{expected},"path":"/a"}}"#)
        );
    }
    assert!(!host.audited_denial("counter", CapabilityId::Kv));
}

#[test]
fn kv_declared_but_not_granted_gets_denied_and_is_audited() {
    let host = TestHost::new();
    let counter = host.load("counter", &shipped_policy("default.toml"));
    let response = counter.handle(&get("/a")).unwrap();
    assert_eq!(response.status, 403);
    assert!(
        text(&response.body).contains("storage.kv is not granted"),
        "{}",
        text(&response.body)
    );
    assert!(host.audited_denial("counter", CapabilityId::Kv));
}

#[test]
fn kv_imported_but_undeclared_is_refused_at_install() {
    let host = TestHost::new();
    let policy =
        Policy::parse("[defaults.capabilities.kv]\n[defaults.capabilities.routes]\n").unwrap();
    let error = host
        .runtime
        .load(&plugin("hostile_undeclared_kv"), None, &policy)
        .unwrap_err();
    assert!(
        matches!(&error, InstallError::Undeclared { import, capability: CapabilityId::Kv }
            if import == "capstan:plugin/kv@0.2.0"),
        "{error:?}"
    );
    assert_eq!(error.code(), "undeclared-import");
    assert!(error.to_string().contains("storage.kv"), "{error}");
}

#[test]
fn unknown_import_is_refused_naming_it() {
    let host = TestHost::new();
    let error = host
        .runtime
        .load(&plugin("hostile_unknown_import"), None, &Policy::deny_all())
        .unwrap_err();
    assert!(
        matches!(&error, InstallError::UnknownImport { import } if import == "evil:backdoor/shell"),
        "{error:?}"
    );
    assert!(error.to_string().contains("evil:backdoor/shell"));
}

#[test]
fn filesystem_import_is_refused_even_if_everything_is_granted() {
    let host = TestHost::new();
    let everything =
        "[defaults.capabilities.kv]\n[defaults.capabilities.routes]\n[defaults.capabilities.mcp]\n";
    let error = host
        .runtime
        .load(
            &plugin("hostile_fs_reader"),
            None,
            &Policy::parse(everything).unwrap(),
        )
        .unwrap_err();
    assert!(
        matches!(&error, InstallError::ForbiddenImport { import, .. } if import.starts_with("wasi:filesystem/")),
        "{error:?}"
    );
}

#[test]
fn http_and_secrets_declared_but_not_granted_get_denied_and_are_audited() {
    let host = TestHost::new();
    let fetch = host.load("fetch", &shipped_policy("default.toml"));
    let response = fetch.handle(&get("/?url=https://example.com/")).unwrap();
    assert_eq!(response.status, 403);
    assert!(host.audited_denial("fetch", CapabilityId::Http));
    let vault = host.load("vault", &shipped_policy("default.toml"));
    assert_eq!(vault.handle(&get("/")).unwrap().status, 403);
    assert!(host.audited_denial("vault", CapabilityId::Secrets));
}

#[test]
fn routes_granted_serve_and_withheld_refuse_without_running() {
    let host = TestHost::new();
    let served = host.load("hello", ROUTES_ONLY);
    assert_eq!(served.handle(&get("/")).unwrap().status, 200);

    let withheld = host.load(
        "hello",
        "[defaults.capabilities.routes]\n[plugins.hello]\ndeny = [\"routes\"]\n",
    );
    let audit_before = host.audit.events().len();
    for _ in 0..3 {
        assert_eq!(
            withheld.handle(&get("/")).unwrap_err(),
            InvokeError::Denied {
                plugin: "hello".into(),
                capability: CapabilityId::Routes
            }
        );
    }
    assert_eq!(
        host.audit.events().len(),
        audit_before,
        "a withheld export is refused as decided at load: no call, no audit row per request"
    );
    let decisions = host.audit_of("hello", AuditKind::GrantDecision);
    assert!(
        decisions
            .iter()
            .any(|e| e.capability == Some(CapabilityId::Routes) && e.detail.starts_with("denied")),
        "the withholding is audited once, at load: {decisions:?}"
    );
}

fn caller() -> Caller {
    Caller {
        client_id: "test".into(),
        client_name: "test".into(),
    }
}

#[test]
fn mcp_granted_tools_list_and_call() {
    let host = TestHost::new();
    let tools = host.load("tools", &shipped_policy("examples.toml"));
    let names: Vec<String> = tools
        .list_tools()
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(
        names,
        ["add", "word-count", "text-stats"],
        "in the plugin's own order"
    );
    assert_eq!(
        tools
            .call_tool("add", r#"{"a": 2, "b": 40}"#, &caller(), next_call_id())
            .unwrap()
            .unwrap(),
        "42.0"
    );
    assert_eq!(
        tools
            .call_tool(
                "word-count",
                r#"{"text": "a b c"}"#,
                &caller(),
                next_call_id()
            )
            .unwrap()
            .unwrap(),
        "3"
    );
}

#[test]
fn mcp_tool_not_exposed_by_policy_is_hidden_and_refused() {
    let host = TestHost::new();
    let tools = host.load(
        "tools",
        "[plugins.tools.capabilities.mcp]\ntools = [\"add\"]\n",
    );
    let names: Vec<String> = tools
        .list_tools()
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["add"]);
    assert_eq!(
        tools
            .call_tool("word-count", r#"{"text": "x"}"#, &caller(), next_call_id())
            .unwrap_err(),
        InvokeError::ToolNotGranted {
            tool: "word-count".into()
        }
    );
}

#[test]
fn mcp_not_granted_refuses_every_call() {
    let host = TestHost::new();
    let tools = host.load("tools", "");
    assert!(matches!(
        tools.list_tools(),
        Err(InvokeError::Denied {
            capability: CapabilityId::Mcp,
            ..
        })
    ));
    assert!(matches!(
        tools.call_tool("add", "{}", &caller(), next_call_id()),
        Err(InvokeError::Denied { .. })
    ));
}

#[test]
fn kv_namespaces_are_per_plugin() {
    let host = TestHost::new();
    let policy = "[defaults.capabilities.routes]\n[defaults.capabilities.kv]\n";
    let state = &host.runtime.services().state;
    let quota = capstan_host::capability::kv::DEFAULT_QUOTA;
    // Another plugin already holds the very key counter is about to use.
    state
        .set("other", "hits:/shared", b"41", quota, soon())
        .unwrap();
    let counter = host.load("counter", policy);
    counter.handle(&get("/shared")).unwrap();
    let response = counter.handle(&get("/shared")).unwrap();
    assert_eq!(
        text(&response.body),
        r#"{"hits":2,"path":"/shared"}"#,
        "counter counts from its own empty namespace, not from the other plugin's 41"
    );
    assert_eq!(
        state.get("counter", "hits:/shared", soon()).unwrap(),
        Some(b"2".to_vec())
    );
    assert_eq!(
        state.get("other", "hits:/shared", soon()).unwrap(),
        Some(b"41".to_vec()),
        "the other plugin's value is untouched"
    );
}
