//! The consent view on a real server: an operator sees what a plugin requests, what the
//! policy allows and what it would get, with its high-risk grants, before and after
//! installing it; `refuse_risks` refuses an install (or a policy) that would grant one.

mod harness;

use harness::support::{capstan_bin, plugin};
use harness::*;
use reqwest::Method;
use serde_json::Value;
use std::process::Command;

/// Grants secrets and outbound HTTP to `leaky` and `trusted`; refuses exfiltration by
/// default and accepts it for `trusted` alone.
const POLICY: &str = r#"
[defaults]
refuse_risks = ["exfiltration"]

[defaults.capabilities.routes]

[plugins.leaky.capabilities.secrets]
names = ["token"]
[plugins.leaky.capabilities.http]
hosts = ["https://api.example.com"]

[plugins.trusted]
refuse_risks = []
[plugins.trusted.capabilities.secrets]
names = ["token"]
[plugins.trusted.capabilities.http]
hosts = ["https://api.example.com"]
"#;

/// A sidecar manifest for the `sidecar` component asking for the secret and the host.
fn manifest(id: &str) -> String {
    format!(
        "id = \"{id}\"\nversion = \"0.1.0\"\n[capabilities.routes]\n[capabilities.secrets]\nnames = [\"token\"]\n[capabilities.http]\nhosts = [\"https://api.example.com\"]\n"
    )
}

fn form(id: &str) -> reqwest::blocking::multipart::Form {
    reqwest::blocking::multipart::Form::new()
        .part(
            "component",
            reqwest::blocking::multipart::Part::bytes(plugin("sidecar")).file_name("p.wasm"),
        )
        .part(
            "manifest",
            reqwest::blocking::multipart::Part::text(manifest(id)).file_name("capstan.toml"),
        )
}

/// POST the `sidecar` component with `id`'s manifest to `path` (an install or a dry run).
fn upload(server: &Server, path: &str, id: &str) -> reqwest::blocking::Response {
    server
        .admin(Method::POST, path)
        .multipart(form(id))
        .send()
        .unwrap()
}

fn risk_ids(view: &Value) -> Vec<&str> {
    view["risks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| r["risk"].as_str().unwrap())
        .collect()
}

#[test]
fn a_dry_run_shows_the_grants_and_the_refused_risk_and_installs_nothing() {
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, &[]);
    let response = upload(&server, "/grants/dry-run", "leaky");
    assert_eq!(response.status(), 200);
    let view: Value = response.json().unwrap();
    assert_eq!(view["plugin"], "leaky");
    assert_eq!(risk_ids(&view), ["exfiltration"]);
    assert_eq!(view["risks"][0]["refused"], true);
    assert_eq!(
        view["risks"][0]["capabilities"],
        serde_json::json!(["secrets", "http.outbound"])
    );
    let secrets = view["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["capability"] == "secrets")
        .expect("a secrets row");
    assert_eq!(secrets["requested"]["names"], serde_json::json!(["token"]));
    assert_eq!(secrets["allowed"]["names"], serde_json::json!(["token"]));
    assert_eq!(secrets["decision"], "granted");
    assert_eq!(secrets["grant"]["names"], serde_json::json!(["token"]));

    let (status, plugins) = server.json(Method::GET, "/plugins");
    assert_eq!(status, 200);
    assert_eq!(plugins, serde_json::json!([]), "a dry run installs nothing");

    let response = server
        .admin(Method::POST, "/grants/dry-run")
        .header("content-type", "application/wasm")
        .body(b"not wasm".to_vec())
        .send()
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(response.json::<Value>().unwrap()["code"], "not-wasm");
}

#[test]
fn refuse_risks_refuses_the_install_and_a_plugin_excepted_by_name_installs_and_serves() {
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, &[]);

    let refused = upload(&server, "/plugins", "leaky");
    assert_eq!(refused.status(), 422);
    let error: Value = refused.json().unwrap();
    assert_eq!(error["code"], "risk-refused");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("exfiltration") && message.contains("`token`"),
        "{message}"
    );
    assert_eq!(server.json(Method::GET, "/plugins/leaky").0, 404);

    let installed = upload(&server, "/plugins", "trusted");
    assert_eq!(installed.status(), 201);
    let info: Value = installed.json().unwrap();
    assert_eq!(risk_ids(&info), ["exfiltration"], "shown, not refused");
    assert_eq!(info["risks"][0]["refused"], false);
    assert_eq!(server.route("trusted/hi").0, 200, "it serves");

    let (status, view) = server.json(Method::GET, "/plugins/trusted/grants");
    assert_eq!(status, 200);
    assert_eq!(risk_ids(&view), ["exfiltration"]);
    assert_eq!(view["sha256"], info["sha256"]);
    assert_eq!(server.json(Method::GET, "/plugins/nobody/grants").0, 404);

    // A policy that would refuse what is installed is refused as a whole.
    let stricter = POLICY.replace("[plugins.trusted]\nrefuse_risks = []\n", "");
    let response = server
        .admin(Method::PUT, "/policy")
        .body(stricter)
        .send()
        .unwrap();
    assert_eq!(response.status(), 422);
    let error: Value = response.json().unwrap();
    assert!(
        error["message"].as_str().unwrap().contains("risk"),
        "{error}"
    );
    let policy = server
        .admin(Method::GET, "/policy")
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(policy, POLICY, "the policy in force is unchanged");
    assert_eq!(server.route("trusted/hi").0, 200, "still serving");
}

#[test]
fn plugin_show_and_inspect_print_the_risks_and_inspect_exits_2_on_a_refused_one() {
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, &[]);
    let installed = upload(&server, "/plugins", "trusted");
    assert_eq!(installed.status(), 201);

    let show = Command::new(capstan_bin())
        .args(["plugin", "show", "trusted"])
        .env("CAPSTAN_SERVER", &server.base)
        .env("CAPSTAN_ADMIN_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert!(show.status.success());
    let text = String::from_utf8_lossy(&show.stdout);
    assert!(text.contains("! exfiltration:"), "{text}");
    assert!(text.contains(r#"requests  {"names":["token"]}"#), "{text}");

    let policy = dir.join("policy.toml");
    let sidecar = dir.join("leaky.toml");
    std::fs::write(&sidecar, manifest("leaky")).unwrap();
    let wasm = dir.join("sidecar.wasm");
    std::fs::write(&wasm, plugin("sidecar")).unwrap();
    let inspect = Command::new(capstan_bin())
        .arg("inspect")
        .arg(&wasm)
        .arg("--manifest")
        .arg(&sidecar)
        .arg("--policy")
        .arg(&policy)
        .output()
        .unwrap();
    assert_eq!(inspect.status.code(), Some(2));
    let text = String::from_utf8_lossy(&inspect.stdout);
    assert!(
        text.contains("! exfiltration [refused by the policy's refuse_risks]"),
        "{text}"
    );
    assert!(
        String::from_utf8_lossy(&inspect.stderr).contains("refused (risk-refused)"),
        "{}",
        String::from_utf8_lossy(&inspect.stderr)
    );
}
