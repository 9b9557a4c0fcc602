//! Starts the real `capstan serve` on an ephemeral port and drives it over HTTP, for the
//! end-to-end suites in this directory.

#![allow(dead_code)] // each test binary uses a different subset

#[path = "../../../tests/support/mod.rs"]
pub mod support;

pub mod mcp;

use reqwest::blocking::{Client, Response};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::{capstan_bin, plugin};

pub const TOKEN: &str = "e2e-admin-token-0123456789";
pub const POLICY: &str =
    "[defaults.capabilities.routes]\n[plugins.misbehave.limits]\ndeadline_ms = 200\n";

/// How long an install may take to answer: longer than any compile budget a test gives its
/// server (the default is 60 s), so a slow compile on a loaded machine ends in the
/// server's own answer (installed, or `compile-budget`) rather than in the client giving
/// up first; other requests keep the client's 30 s.
pub const INSTALL_WAIT: Duration = Duration::from_secs(300);

pub struct Server {
    pub child: Child,
    pub base: String,
    pub http: Client,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `capstan serve` with data under `dir`, seeded with `policy`, plus `extra` args.
pub fn start(dir: &Path, policy: &str, extra: &[&str]) -> Server {
    start_with(dir, policy, extra, &[])
}

/// Like [`start`], with extra environment variables.
pub fn start_with(dir: &Path, policy: &str, extra: &[&str], env: &[(&str, &str)]) -> Server {
    plugin("hello");
    std::fs::create_dir_all(dir).unwrap();
    let policy_path = dir.join("policy.toml");
    std::fs::write(&policy_path, policy).unwrap();
    let mut child = Command::new(capstan_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.join("data"))
        .arg("--policy")
        .arg(&policy_path)
        .args(extra)
        .env("CAPSTAN_ADMIN_TOKEN", TOKEN)
        .env("CAPSTAN_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting capstan serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    Server {
        child,
        base,
        http: Client::new(),
    }
}

impl Server {
    pub fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::blocking::RequestBuilder {
        self.http
            .request(method, format!("{}/admin/v1{path}", self.base))
            .bearer_auth(TOKEN)
    }

    pub fn install(&self, bytes: Vec<u8>) -> Response {
        self.admin(reqwest::Method::POST, "/plugins")
            .header("content-type", "application/wasm")
            .body(bytes)
            .timeout(INSTALL_WAIT)
            .send()
            .unwrap()
    }

    /// Install `bytes` with the sidecar manifest `manifest`.
    pub fn install_with_manifest(&self, bytes: Vec<u8>, manifest: &str) -> Response {
        let form = reqwest::blocking::multipart::Form::new()
            .part(
                "component",
                reqwest::blocking::multipart::Part::bytes(bytes).file_name("plugin.wasm"),
            )
            .part(
                "manifest",
                reqwest::blocking::multipart::Part::text(manifest.to_string())
                    .file_name("capstan.toml"),
            );
        self.admin(reqwest::Method::POST, "/plugins")
            .multipart(form)
            .timeout(INSTALL_WAIT)
            .send()
            .unwrap()
    }

    pub fn route(&self, path: &str) -> (u16, String) {
        let response = self
            .http
            .get(format!("{}/plugins/{path}", self.base))
            .send()
            .unwrap();
        (response.status().as_u16(), response.text().unwrap())
    }

    pub fn json(&self, method: reqwest::Method, path: &str) -> (u16, Value) {
        let response = self.admin(method, path).send().unwrap();
        (
            response.status().as_u16(),
            response.json().unwrap_or(Value::Null),
        )
    }

    /// The `counter` plugin's count after one more visit to its `/x`.
    pub fn counter_hits(&self) -> u64 {
        let (status, body) = self.route("counter/x");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<Value>(&body).unwrap()["hits"]
            .as_u64()
            .unwrap()
    }

    /// The Prometheus exposition from `/metrics`.
    pub fn metrics(&self) -> String {
        let response = self
            .http
            .get(format!("{}/metrics", self.base))
            .bearer_auth(TOKEN)
            .send()
            .unwrap();
        assert_eq!(response.status(), 200);
        response.text().unwrap()
    }

    /// The value of the sample line starting with `series` in `/metrics`, if present.
    pub fn metric(&self, series: &str) -> Option<f64> {
        self.metrics().lines().find_map(|line| {
            line.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
                .and_then(|value| value.parse().ok())
        })
    }

    pub fn installed(&self) -> Vec<(String, String)> {
        let (_, list) = self.json(reqwest::Method::GET, "/plugins");
        list.as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["id"].as_str().unwrap().to_string(),
                    p["sha256"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }
}

/// `bytes` with a custom section appended: the same plugin, a different sha256.
pub fn variant(mut bytes: Vec<u8>, tag: &str) -> Vec<u8> {
    let name = b"capstan-test-tag";
    let payload = tag.as_bytes();
    let len = 1 + name.len() + payload.len();
    assert!(len < 128 && name.len() < 128, "single-byte LEB128 lengths");
    bytes.extend([0x00, len as u8, name.len() as u8]);
    bytes.extend(name);
    bytes.extend(payload);
    bytes
}

/// Send the server SIGTERM (it drains and exits).
pub fn terminate(server: &Server) {
    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
}

pub fn temp() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    (dir, path)
}

/// Poll `check` every 20 ms until it holds or `within` has passed; returns how long it took.
pub fn eventually(
    within: std::time::Duration,
    what: &str,
    mut check: impl FnMut() -> bool,
) -> std::time::Duration {
    let start = std::time::Instant::now();
    loop {
        if check() {
            return start.elapsed();
        }
        assert!(start.elapsed() < within, "not within {within:?}: {what}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A session created through `server`'s admin API: (id, token).
pub fn open_session(server: &Server, name: &str, ttl: &str, policy: Value) -> (String, String) {
    let response = server
        .admin(reqwest::Method::POST, "/sessions")
        .json(&serde_json::json!({"name": name, "ttl": ttl, "policy": policy}))
        .send()
        .unwrap();
    assert_eq!(response.status(), 201);
    let created: Value = response.json().unwrap();
    (
        created["session"]["id"].as_str().unwrap().to_string(),
        created["token"].as_str().unwrap().to_string(),
    )
}

/// Upload `parts` (form part name, component) with a session token.
pub fn session_upload(server: &Server, token: &str, parts: Vec<(&str, Vec<u8>)>) -> (u16, Value) {
    let mut form = reqwest::blocking::multipart::Form::new();
    for (name, bytes) in parts {
        form = form.part(
            name.to_string(),
            reqwest::blocking::multipart::Part::bytes(bytes).file_name("p.wasm"),
        );
    }
    let response = server
        .http
        .post(format!("{}/v1/session/plugins", server.base))
        .bearer_auth(token)
        .multipart(form)
        .timeout(INSTALL_WAIT)
        .send()
        .unwrap();
    (response.status().as_u16(), response.json().unwrap())
}
