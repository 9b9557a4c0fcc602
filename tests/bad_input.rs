//! Bad input of every kind gets a typed error that names the problem, never a panic,
//! and leaves already-loaded plugins serving.

mod support;

use capstan_host::audit::AuditKind;
use capstan_host::gate;
use capstan_host::manifest::ManifestError;
use capstan_host::{InstallError, Policy};
use support::{TestHost, get, plugin, root, text};

const ROUTES: &str = "[defaults.capabilities.routes]\n";

fn sidecar_manifest() -> String {
    std::fs::read_to_string(root().join("plugins/sidecar/capstan.toml")).unwrap()
}

/// Load `bytes` (with an optional sidecar) under a routes-only policy.
fn load(bytes: &[u8], sidecar: Option<&str>) -> Result<capstan_host::Plugin, InstallError> {
    let host = TestHost::new();
    host.runtime.load(
        bytes,
        sidecar.map(str::as_bytes),
        &Policy::parse(ROUTES).unwrap(),
    )
}

/// A component whose only content is `imports` and an embedded manifest `manifest`.
fn crafted(imports: &[&str], manifest: &str) -> Vec<u8> {
    let imports: String = imports
        .iter()
        .map(|name| format!("(import \"{name}\" (instance))"))
        .collect();
    let manifest = manifest
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n");
    wat::parse_str(format!(
        "(component {imports} (@custom \"capstan-manifest\" \"{manifest}\"))"
    ))
    .unwrap()
}

#[test]
fn random_bytes_are_not_wasm() {
    let error = load(b"\x7fELF\x02\x01\x01 definitely not wasm", None).unwrap_err();
    assert_eq!(error.code(), "not-wasm");
}

#[test]
fn truncated_component_is_malformed_and_says_where() {
    let hello = plugin("hello");
    let error = load(&hello[..hello.len() / 2], None).unwrap_err();
    assert_eq!(error.code(), "malformed-component");
    assert!(error.to_string().contains("offset"), "{error}");
}

#[test]
fn core_module_is_told_to_build_a_component() {
    let error = load(
        &wat::parse_str("(module (func (export \"run\")))").unwrap(),
        None,
    )
    .unwrap_err();
    assert!(matches!(error, InstallError::CoreModule));
    assert!(error.to_string().contains("wasm32-wasip2"));
}

#[test]
fn component_of_another_world_is_refused() {
    let error = load(&plugin("hostile-other-world"), None).unwrap_err();
    assert_eq!(error.code(), "wrong-world");
    assert!(error.to_string().contains("wasi:cli/run"), "{error}");
}

#[test]
fn sidecar_manifest_works_and_is_required_without_an_embedded_one() {
    let echo = load(&plugin("sidecar"), Some(&sidecar_manifest())).unwrap();
    let response = echo.handle(&get("/x?y=1")).unwrap();
    assert_eq!(
        text(&response.body),
        r#"{"body":"","method":"GET","path":"/x","query":"y=1"}"#
    );
    assert!(matches!(
        load(&plugin("sidecar"), None),
        Err(InstallError::NoManifest)
    ));
}

#[test]
fn manifest_with_unknown_key_is_refused_naming_the_key() {
    let manifest = format!("{}\nnetwork = \"all\"\n", sidecar_manifest());
    let error = load(&plugin("sidecar"), Some(&manifest)).unwrap_err();
    assert_eq!(error.code(), "invalid-manifest");
    assert!(
        error.to_string().contains("unknown field `network`"),
        "{error}"
    );
    assert!(error.to_string().contains("line "), "{error}");
}

#[test]
fn manifest_with_bad_id_is_refused() {
    let manifest = sidecar_manifest().replace("id = \"sidecar\"", "id = \"../etc\"");
    let error = load(&plugin("sidecar"), Some(&manifest)).unwrap_err();
    assert!(matches!(error, InstallError::Manifest(ManifestError::BadId(id)) if id == "../etc"));
}

#[test]
fn manifest_targeting_another_contract_is_refused() {
    for contract in ["0.1.0", "0.3.0", "1.0.0"] {
        let manifest = format!("contract = \"{contract}\"\n{}", sidecar_manifest());
        let error = load(&plugin("sidecar"), Some(&manifest)).unwrap_err();
        assert_eq!(error.code(), "incompatible-contract", "{contract}");
        assert!(error.to_string().contains(contract), "{error}");
    }
}

#[test]
fn import_of_another_contract_is_refused_naming_the_import() {
    let manifest = "id = \"future\"\nversion = \"1.0.0\"\n[capabilities.kv]\n";
    for version in ["0.1.0", "0.3.0", "1.0.0"] {
        let import = format!("capstan:plugin/kv@{version}");
        let error = load(&crafted(&[&import], manifest), None).unwrap_err();
        assert!(
            matches!(&error, InstallError::IncompatibleContract { import: i, found } if *i == import && found == version),
            "{error:?}"
        );
    }
}

#[test]
fn embedded_and_sidecar_manifests_must_agree() {
    let error = load(
        &plugin("hello"),
        Some("id = \"hello\"\nversion = \"9.9.9\"\n"),
    )
    .unwrap_err();
    assert!(matches!(error, InstallError::ManifestConflict));
}

#[test]
fn oversized_upload_is_refused_before_parsing() {
    let huge = vec![0u8; gate::DEFAULT_MAX_COMPONENT_BYTES + 1];
    let error = load(&huge, None).unwrap_err();
    assert!(matches!(error, InstallError::TooLarge { size, .. } if size == huge.len()));
}

#[test]
fn policy_with_unknown_capability_is_refused_naming_it() {
    let error =
        Policy::parse("[plugins.hello.capabilities.filesystem]\nroot = \"/\"\n").unwrap_err();
    assert!(
        error.to_string().contains("unknown field `filesystem`"),
        "{error}"
    );
}

#[test]
fn sha256_pin_admits_only_the_pinned_component() {
    let hello = plugin("hello");
    let host = TestHost::new();
    let wrong = Policy::parse(&format!(
        "{ROUTES}[plugins.hello]\nsha256 = \"{}\"\n",
        "0".repeat(64)
    ))
    .unwrap();
    let error = host.runtime.load(&hello, None, &wrong).unwrap_err();
    assert_eq!(error.code(), "pin-mismatch");
    let actual = match error {
        InstallError::PinMismatch { actual, .. } => actual,
        other => panic!("{other:?}"),
    };
    let right =
        Policy::parse(&format!("{ROUTES}[plugins.hello]\nsha256 = \"{actual}\"\n")).unwrap();
    assert!(host.runtime.load(&hello, None, &right).is_ok());
}

#[test]
fn refused_installs_leave_loaded_plugins_serving_and_are_audited() {
    let host = TestHost::new();
    let hello = host.load("hello", ROUTES);
    let policy = Policy::parse(ROUTES).unwrap();
    let hello_bytes = plugin("hello");
    let bad: Vec<Vec<u8>> = vec![
        b"garbage".to_vec(),
        hello_bytes[..hello_bytes.len() / 3].to_vec(),
        wat::parse_str("(module)").unwrap(),
        plugin("hostile-other-world"),
        plugin("hostile_unknown_import"),
        crafted(
            &["capstan:plugin/kv@7.0.0"],
            "id = \"x\"\nversion = \"1.0.0\"\n",
        ),
    ];
    for bytes in &bad {
        assert!(host.runtime.load(bytes, None, &policy).is_err());
        assert_eq!(hello.handle(&get("/")).unwrap().status, 200);
    }
    let refusals = host
        .audit
        .events()
        .into_iter()
        .filter(|e| e.kind == AuditKind::Refused)
        .count();
    assert_eq!(refusals, bad.len());
}

/// Text a hostile manifest puts in a field: a terminal escape (clear the screen) and far
/// more than any error should repeat.
fn hostile_text() -> String {
    format!("\u{1b}[2J\u{7}{}", "A".repeat(5_000))
}

/// One step into a TOML document.
#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
    /// The key itself, not its value.
    Rename(String),
}

/// Every variant of `manifest` with one string value or one table key replaced by
/// [`hostile_text`], with the steps to the place it went.
fn hostile_variants(manifest: &toml::Table) -> Vec<(Vec<Step>, toml::Table)> {
    fn places(value: &toml::Value, path: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
        match value {
            toml::Value::String(_) => out.push(path.clone()),
            toml::Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    path.push(Step::Index(i));
                    places(item, path, out);
                    path.pop();
                }
            }
            toml::Value::Table(table) => {
                for (key, item) in table {
                    path.push(Step::Rename(key.clone()));
                    out.push(path.clone());
                    path.pop();
                    path.push(Step::Key(key.clone()));
                    places(item, path, out);
                    path.pop();
                }
            }
            _ => {}
        }
    }
    fn replace(value: &mut toml::Value, path: &[Step]) {
        match (value, path) {
            (value, []) => *value = toml::Value::String(hostile_text()),
            (toml::Value::Table(table), [Step::Rename(key)]) => {
                let item = table.remove(key).unwrap();
                table.insert(hostile_text(), item);
            }
            (toml::Value::Table(table), [Step::Key(key), rest @ ..]) => {
                replace(table.get_mut(key).unwrap(), rest)
            }
            (toml::Value::Array(items), [Step::Index(i), rest @ ..]) => {
                replace(&mut items[*i], rest)
            }
            (other, path) => panic!("no {path:?} in {other:?}"),
        }
    }
    let document = toml::Value::Table(manifest.clone());
    let mut found = Vec::new();
    places(&document, &mut Vec::new(), &mut found);
    found
        .into_iter()
        .map(|place| {
            let mut variant = document.clone();
            replace(&mut variant, &place);
            let toml::Value::Table(table) = variant else {
                unreachable!("a table stays a table")
            };
            (place, table)
        })
        .collect()
}

/// Plugin-supplied text is data: wherever a manifest's string or key turns up in the error
/// refusing it, no control character reaches the operator's terminal (it is escaped, once)
/// and the error stays short (it is capped). Every string value and table key of every example
/// and hostile plugin's manifest, replaced in turn by a terminal escape and 5,000 bytes.
#[test]
fn hostile_text_anywhere_in_a_manifest_is_escaped_and_capped_in_the_error() {
    let forge = plugin("hostile_tool_forge");
    let manifests: Vec<std::path::PathBuf> = ["plugins", "plugins/hostile"]
        .iter()
        .flat_map(|dir| std::fs::read_dir(root().join(dir)).unwrap())
        .map(|entry| entry.unwrap().path().join("capstan.toml"))
        .filter(|path| path.exists())
        .collect();
    assert!(manifests.len() > 20, "{manifests:?}");
    let (mut refused, mut failures) = (0, Vec::new());
    for path in &manifests {
        let manifest: toml::Table = toml::from_str(&std::fs::read_to_string(path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for (place, variant) in hostile_variants(&manifest) {
            let text = toml::to_string(&variant).unwrap();
            let Err(error) = load(&forge, Some(&text)) else {
                continue;
            };
            refused += 1;
            let shown = error.to_string();
            let escaped_twice = shown.contains("\\\\x1b");
            if shown.chars().any(char::is_control) || shown.len() >= 1_000 || escaped_twice {
                let brief: String = shown.chars().take(160).collect();
                failures.push(format!(
                    "{} {place:?} ({} bytes): {brief:?}",
                    path.display(),
                    shown.len()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} errors show a control character, repeat too much or escape twice:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        refused > 100,
        "only {refused} hostile manifests were refused"
    );
}
