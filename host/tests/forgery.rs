//! Plugin-supplied text is data: a plugin that writes terminal escapes and a forged log
//! row into its log, or a megabyte into an audit record, cannot clear an operator's
//! screen, retitle the terminal, add rows to `capstan logs`/`capstan audit` or the
//! server's own log, or grow a record without bound.

mod harness;

use harness::support::{capstan_bin, plugin};
use harness::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const SNOOP_POLICY: &str =
    "[plugins.secret-snoop.capabilities.secrets]\nnames = [\"granted-token\"]\n";

fn cli(server: &Server, args: &[&str]) -> std::process::Output {
    Command::new(capstan_bin())
        .args(args)
        .args(["--server", &server.base])
        .env("CAPSTAN_ADMIN_TOKEN", TOKEN)
        .output()
        .unwrap()
}

#[test]
fn logs_and_audit_render_plugin_text_escaped_one_row_per_record() {
    let (_keep, dir) = temp();
    let server = start(&dir, &format!("{POLICY}{SNOOP_POLICY}"), &[]);
    assert_eq!(server.install(plugin("hostile_misbehave")).status(), 201);
    assert_eq!(server.route("misbehave/forge-log").0, 200);

    let shown = cli(
        &server,
        &["logs", "--plugin", "misbehave", "--level", "warn"],
    );
    assert!(shown.status.success());
    let out = String::from_utf8(shown.stdout).unwrap();
    let rows: Vec<&str> = out.lines().collect();
    assert_eq!(rows.len(), 1, "one record, one row: {out:?}");
    assert!(
        !out.bytes().any(|b| b == 0x1b || b == 0x07),
        "raw escapes reached the terminal: {out:?}"
    );
    assert!(
        rows[0].contains("benign\\x1b[2J\\x1b]0;pwned\\x07\\n2026-01-01T00:00:00Z  victim"),
        "{out}"
    );
    let time = rows[0].split_whitespace().next().unwrap();
    assert!(
        humantime_like(time),
        "RFC 3339 time, not epoch milliseconds: {time}"
    );

    let json = cli(
        &server,
        &["logs", "--plugin", "misbehave", "--level", "warn", "--json"],
    );
    let rows: serde_json::Value = serde_json::from_slice(&json.stdout).expect("--json stays JSON");
    assert!(
        rows[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("benign\u{1b}[2J"),
        "the raw record is kept"
    );

    // A plugin-supplied secret name of 20 KB lands in a denial record, capped.
    assert_eq!(server.install(plugin("hostile_secret_snoop")).status(), 201);
    let name = "n".repeat(20_000);
    assert_eq!(server.route(&format!("secret-snoop/?name={name}")).0, 403);
    let audit = cli(
        &server,
        &[
            "audit",
            "--plugin",
            "secret-snoop",
            "--kind",
            "denied",
            "--json",
        ],
    );
    let rows: serde_json::Value = serde_json::from_slice(&audit.stdout).unwrap();
    let detail = rows[0]["detail"].as_str().unwrap();
    assert!(
        detail.len() <= capstan_host::audit::MAX_DETAIL_BYTES + 40,
        "{} bytes",
        detail.len()
    );
    assert!(
        detail.contains("…[truncated"),
        "says it was cut: {}",
        &detail[detail.len() - 40..]
    );
}

/// `2026-12-01T20:58:13.123Z`.
fn humantime_like(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 24 && bytes[4] == b'-' && bytes[10] == b'T' && text.ends_with('Z')
}

#[test]
fn the_servers_text_log_shows_a_forged_plugin_line_escaped_on_one_line() {
    let (_keep, dir) = temp();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("policy.toml"), POLICY).unwrap();
    let mut child = Command::new(capstan_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.join("data"))
        .arg("--policy")
        .arg(dir.join("policy.toml"))
        .env("CAPSTAN_ADMIN_TOKEN", TOKEN)
        .env("CAPSTAN_LOG", "warn,capstan::plugin=warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_string();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let http = reqwest::blocking::Client::new();
    let install = http
        .post(format!("{base}/admin/v1/plugins"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/wasm")
        .body(plugin("hostile_misbehave"))
        .timeout(harness::INSTALL_WAIT)
        .send()
        .unwrap();
    assert_eq!(install.status(), 201);
    assert_eq!(
        http.get(format!("{base}/plugins/misbehave/forge-log"))
            .send()
            .unwrap()
            .status(),
        200
    );
    let mut lines = stderr.lines();
    let forged = lines
        .by_ref()
        .map(Result::unwrap)
        .find(|l| l.contains("benign"))
        .expect("the plugin's line reached the host log");
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        forged.contains("\\n2026-01-01T00:00:00Z  victim"),
        "{forged}"
    );
    assert!(!forged.contains('\u{1b}'), "{forged:?}");
}
