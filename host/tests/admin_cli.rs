//! The `capstan plugin|policy|secret|audit` admin client against a real server: each
//! command does what it says, errors print the API's message, refusals exit 2.

mod harness;

use harness::support::{capstan_bin, plugin_dir};
use harness::*;
use std::process::{Command, Output};

/// Run `capstan args…` against `server` with the token in the environment.
fn cli(server: &Server, args: &[&str]) -> Output {
    cli_with(server, args, &[("CAPSTAN_ADMIN_TOKEN", TOKEN)], None)
}

fn cli_with(server: &Server, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
    use std::io::Write;
    let mut child = Command::new(capstan_bin())
        .args(args)
        .env_remove("CAPSTAN_ADMIN_TOKEN")
        .env("CAPSTAN_SERVER", &server.base)
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Run a command that must succeed; returns its standard output.
fn ok(server: &Server, args: &[&str]) -> String {
    let output = cli(server, args);
    assert!(output.status.success(), "{args:?}: {}", stderr(&output));
    stdout(&output)
}

/// Assert `output` failed with exit code `exit` and `needle` in its error message.
fn fails(output: &Output, exit: i32, needle: &str) {
    assert_eq!(output.status.code(), Some(exit), "{}", stderr(output));
    assert!(
        stderr(output).contains(needle),
        "{needle:?} not in {}",
        stderr(output)
    );
}

fn component(name: &str) -> String {
    plugin_dir()
        .join(format!("{name}.wasm"))
        .display()
        .to_string()
}

#[test]
fn plugin_commands_manage_a_running_server() {
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, &[]);

    let installed = ok(&server, &["plugin", "install", &component("hello")]);
    assert!(
        installed.starts_with("installed hello 0.1.0 as version 1"),
        "{installed}"
    );
    assert_eq!(server.route("hello/").0, 200);

    let list = ok(&server, &["plugin", "list"]);
    assert!(
        list.lines()
            .any(|l| l.starts_with("hello ") && l.contains("running")),
        "{list}"
    );
    let show = ok(&server, &["plugin", "show", "hello"]);
    assert!(
        show.contains("http.routes") && show.contains("granted"),
        "{show}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&ok(&server, &["plugin", "show", "hello", "--json"])).unwrap();
    assert_eq!(json["id"], "hello");

    ok(&server, &["plugin", "disable", "hello"]);
    assert_eq!(server.route("hello/").0, 404);
    ok(&server, &["plugin", "enable", "hello"]);
    assert_eq!(server.route("hello/").0, 200);

    let upgrade = dir.join("hello-v2.wasm");
    std::fs::write(
        &upgrade,
        variant(std::fs::read(component("hello")).unwrap(), "v2"),
    )
    .unwrap();
    ok(&server, &["plugin", "install", upgrade.to_str().unwrap()]);
    let versions = ok(&server, &["plugin", "versions", "hello"]);
    assert_eq!(
        versions.lines().count(),
        3,
        "header + two versions: {versions}"
    );
    let rolled = ok(&server, &["plugin", "rollback", "hello"]);
    assert!(rolled.contains("now serves version 1"), "{rolled}");
    fails(
        &cli(&server, &["plugin", "rollback", "hello"]),
        1,
        "no earlier version",
    );

    ok(&server, &["plugin", "remove", "hello"]);
    fails(
        &cli(&server, &["plugin", "show", "hello"]),
        1,
        "no plugin `hello` is installed (plugin-not-found, HTTP 404)",
    );
}

#[test]
fn a_refused_install_exits_2_with_the_api_message_and_changes_nothing() {
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, &[]);
    ok(&server, &["plugin", "install", &component("hello")]);
    let before = server.installed();
    let unknown = component("hostile_unknown_import");
    fails(
        &cli(&server, &["plugin", "install", &unknown]),
        2,
        "unknown-import",
    );
    let not_wasm = dir.join("policy.toml");
    fails(
        &cli(&server, &["plugin", "install", not_wasm.to_str().unwrap()]),
        2,
        "not-wasm",
    );
    assert_eq!(server.installed(), before);
}

#[test]
fn the_token_comes_from_the_data_dir_and_a_wrong_one_is_refused() {
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, &[]);
    let client_dir = dir.join("client");
    std::fs::create_dir_all(&client_dir).unwrap();
    std::fs::write(client_dir.join("admin.token"), format!("{TOKEN}\n")).unwrap();
    let from_file = ["plugin", "list", "--data-dir", client_dir.to_str().unwrap()];
    let listed = cli_with(&server, &from_file, &[], None);
    assert!(listed.status.success(), "{}", stderr(&listed));

    let wrong = [("CAPSTAN_ADMIN_TOKEN", "not-the-token-0123456789")];
    fails(
        &cli_with(&server, &["plugin", "list"], &wrong, None),
        1,
        "unauthorized, HTTP 401",
    );
    let nowhere = ["plugin", "list", "--data-dir", "/nonexistent"];
    fails(&cli_with(&server, &nowhere, &[], None), 1, "no admin token");
}

#[test]
fn policy_secret_and_audit_commands_go_through_the_api() {
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, &[]);
    ok(&server, &["plugin", "install", &component("hello")]);

    assert_eq!(ok(&server, &["policy", "get"]), POLICY);
    let candidate = dir.join("candidate.toml");
    std::fs::write(
        &candidate,
        format!("{POLICY}[plugins.hello.limits]\ndeadline_ms = 300\n"),
    )
    .unwrap();
    let check = ok(&server, &["policy", "check", candidate.to_str().unwrap()]);
    assert!(
        check.starts_with("would apply: 0 grant change(s)"),
        "{check}"
    );
    assert_eq!(
        ok(&server, &["policy", "get"]),
        POLICY,
        "check changes nothing"
    );
    let invalid = dir.join("invalid.toml");
    std::fs::write(&invalid, "[defaults.capabilities.teleport]\n").unwrap();
    fails(
        &cli(&server, &["policy", "set", invalid.to_str().unwrap()]),
        1,
        "invalid-policy",
    );
    ok(&server, &["policy", "set", candidate.to_str().unwrap()]);
    assert!(ok(&server, &["policy", "get"]).contains("deadline_ms = 300"));

    let set = cli_with(
        &server,
        &["secret", "set", "hello", "api-token"],
        &[("CAPSTAN_ADMIN_TOKEN", TOKEN)],
        Some("s3cret-value\n"),
    );
    assert!(set.status.success(), "{}", stderr(&set));
    assert_eq!(ok(&server, &["secret", "list"]), "hello\tapi-token\n");
    ok(&server, &["secret", "rm", "hello", "api-token"]);
    assert_eq!(ok(&server, &["secret", "list"]), "");

    let audit = ok(
        &server,
        &["audit", "--plugin", "hello", "--kind", "secret-changed"],
    );
    assert_eq!(audit.lines().count(), 2, "{audit}");
    assert!(audit.contains("secret `api-token` removed"), "{audit}");
}

#[test]
fn mcp_clients_are_created_listed_and_revoked_from_the_cli() {
    let (_keep, dir) = temp();
    let server = start(&dir, "[defaults.capabilities.mcp]\n", &[]);
    let created = ok(
        &server,
        &[
            "mcp",
            "client",
            "add",
            "agent",
            "--plugin",
            "tools",
            "--expires-in",
            "1h",
        ],
    );
    let id = created
        .lines()
        .find_map(|line| line.strip_prefix("client "))
        .expect("the client id")
        .to_string();
    let token = created
        .lines()
        .find(|line| line.starts_with("cmcp_"))
        .expect("the token, shown once");
    let listed = ok(&server, &["mcp", "client", "list"]);
    assert!(listed.contains(&id) && listed.contains("agent") && listed.contains("plugins=tools"));
    assert!(!listed.contains(token), "the list never shows tokens");
    fails(
        &cli(
            &server,
            &[
                "mcp",
                "client",
                "add",
                "x",
                "--plugin",
                "a",
                "--plugin",
                "b",
                "--bare-names",
            ],
        ),
        2,
        "refused (invalid-client)",
    );
    assert!(ok(&server, &["mcp", "client", "rm", &id]).contains("revoked"));
    assert!(!ok(&server, &["mcp", "client", "list"]).contains(&id));
    fails(
        &cli(&server, &["mcp", "client", "rm", &id]),
        1,
        "client-not-found",
    );
}

#[test]
fn sessions_are_created_listed_renewed_and_closed_from_the_cli() {
    let (_keep, dir) = temp();
    let server = start(&dir, "[defaults.capabilities.routes]\n", &[]);
    let created = ok(
        &server,
        &[
            "session", "create", "notebook", "--ttl", "1h", "--deny", "http",
        ],
    );
    let id = created
        .split_whitespace()
        .next()
        .expect("the session id first")
        .to_string();
    let token = created
        .lines()
        .find(|line| line.starts_with("cses_"))
        .expect("the token, shown once")
        .to_string();
    let listed = ok(&server, &["session", "list"]);
    assert!(
        listed.contains(&id) && listed.contains("notebook"),
        "{listed}"
    );
    assert!(!listed.contains(&token), "the list never shows tokens");
    let upload = server
        .http
        .post(format!("{}/v1/session/plugins", server.base))
        .bearer_auth(&token)
        .header("content-type", "application/wasm")
        .body(std::fs::read(component("hello")).unwrap())
        .send()
        .unwrap();
    assert_eq!(upload.status(), 201);
    assert!(ok(&server, &["session", "show", &id]).contains("plugins=[hello]"));
    ok(&server, &["session", "renew", &id, "--ttl", "2h"]);
    fails(
        &cli(&server, &["session", "renew", &id, "--ttl", "forever"]),
        2,
        "refused (invalid-session)",
    );
    fails(
        &cli(
            &server,
            &[
                "session", "create", "x", "--ttl", "1h", "--deny", "nonsense",
            ],
        ),
        1,
        "unknown capability",
    );
    assert!(ok(&server, &["session", "close", &id]).contains("removed [hello]"));
    assert!(!ok(&server, &["session", "list"]).contains(&id));
    fails(
        &cli(&server, &["session", "close", &id]),
        1,
        "session-not-found",
    );
}
