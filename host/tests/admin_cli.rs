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

    let installed = cli(&server, &["plugin", "install", &component("hello")]);
    assert!(installed.status.success(), "{}", stderr(&installed));
    assert!(
        stdout(&installed).starts_with("installed hello 0.1.0 as version 1"),
        "{}",
        stdout(&installed)
    );
    assert_eq!(server.route("hello/").0, 200);

    let list = stdout(&cli(&server, &["plugin", "list"]));
    assert!(
        list.lines()
            .any(|l| l.starts_with("hello ") && l.contains("running")),
        "{list}"
    );

    let show = stdout(&cli(&server, &["plugin", "show", "hello"]));
    assert!(
        show.contains("http.routes") && show.contains("granted"),
        "{show}"
    );

    let json = stdout(&cli(&server, &["plugin", "show", "hello", "--json"]));
    let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(parsed["id"], "hello");

    assert!(
        cli(&server, &["plugin", "disable", "hello"])
            .status
            .success()
    );
    assert_eq!(server.route("hello/").0, 404);
    assert!(
        cli(&server, &["plugin", "enable", "hello"])
            .status
            .success()
    );
    assert_eq!(server.route("hello/").0, 200);

    let upgrade = dir.join("hello-v2.wasm");
    std::fs::write(
        &upgrade,
        variant(std::fs::read(component("hello")).unwrap(), "v2"),
    )
    .unwrap();
    assert!(
        cli(&server, &["plugin", "install", upgrade.to_str().unwrap()])
            .status
            .success()
    );
    let versions = stdout(&cli(&server, &["plugin", "versions", "hello"]));
    assert_eq!(
        versions.lines().count(),
        3,
        "header + two versions: {versions}"
    );
    let rolled = cli(&server, &["plugin", "rollback", "hello"]);
    assert!(
        stdout(&rolled).contains("now serves version 1"),
        "{}",
        stdout(&rolled)
    );
    let again = cli(&server, &["plugin", "rollback", "hello"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("no earlier version"),
        "{}",
        stderr(&again)
    );

    assert!(
        cli(&server, &["plugin", "remove", "hello"])
            .status
            .success()
    );
    let missing = cli(&server, &["plugin", "show", "hello"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("no plugin `hello` is installed (plugin-not-found, HTTP 404)"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn a_refused_install_exits_2_with_the_api_message_and_changes_nothing() {
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, &[]);
    assert!(
        cli(&server, &["plugin", "install", &component("hello")])
            .status
            .success()
    );
    let before = server.installed();
    let refused = cli(
        &server,
        &["plugin", "install", &component("hostile_unknown_import")],
    );
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        stderr(&refused).contains("unknown-import"),
        "{}",
        stderr(&refused)
    );
    let not_wasm = dir.join("policy.toml");
    let refused = cli(&server, &["plugin", "install", not_wasm.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        stderr(&refused).contains("not-wasm"),
        "{}",
        stderr(&refused)
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
    let data_dir = ["--data-dir", client_dir.to_str().unwrap()];
    let listed = cli_with(
        &server,
        &[&["plugin", "list"][..], &data_dir].concat(),
        &[],
        None,
    );
    assert!(listed.status.success(), "{}", stderr(&listed));

    let wrong = cli_with(
        &server,
        &["plugin", "list"],
        &[("CAPSTAN_ADMIN_TOKEN", "not-the-token-0123456789")],
        None,
    );
    assert_eq!(wrong.status.code(), Some(1));
    assert!(
        stderr(&wrong).contains("unauthorized, HTTP 401"),
        "{}",
        stderr(&wrong)
    );

    let none = cli_with(
        &server,
        &[&["plugin", "list"][..], &["--data-dir", "/nonexistent"]].concat(),
        &[],
        None,
    );
    assert!(
        stderr(&none).contains("no admin token"),
        "{}",
        stderr(&none)
    );
}

#[test]
fn policy_secret_and_audit_commands_go_through_the_api() {
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, &[]);
    assert!(
        cli(&server, &["plugin", "install", &component("hello")])
            .status
            .success()
    );

    let current = stdout(&cli(&server, &["policy", "get"]));
    assert_eq!(current, POLICY);
    let candidate = dir.join("candidate.toml");
    std::fs::write(
        &candidate,
        format!("{POLICY}[plugins.hello.limits]\ndeadline_ms = 300\n"),
    )
    .unwrap();
    let check = cli(&server, &["policy", "check", candidate.to_str().unwrap()]);
    assert!(
        stdout(&check).starts_with("would apply: 0 grant change(s)"),
        "{}",
        stdout(&check)
    );
    assert_eq!(
        stdout(&cli(&server, &["policy", "get"])),
        POLICY,
        "check changes nothing"
    );
    let invalid = dir.join("invalid.toml");
    std::fs::write(&invalid, "[defaults.capabilities.teleport]\n").unwrap();
    let rejected = cli(&server, &["policy", "set", invalid.to_str().unwrap()]);
    assert_eq!(rejected.status.code(), Some(1));
    assert!(
        stderr(&rejected).contains("invalid-policy"),
        "{}",
        stderr(&rejected)
    );
    assert!(
        cli(&server, &["policy", "set", candidate.to_str().unwrap()])
            .status
            .success()
    );
    assert!(stdout(&cli(&server, &["policy", "get"])).contains("deadline_ms = 300"));

    let set = cli_with(
        &server,
        &["secret", "set", "hello", "api-token"],
        &[("CAPSTAN_ADMIN_TOKEN", TOKEN)],
        Some("s3cret-value\n"),
    );
    assert!(set.status.success(), "{}", stderr(&set));
    let listed = stdout(&cli(&server, &["secret", "list"]));
    assert_eq!(listed, "hello\tapi-token\n");
    assert!(!listed.contains("s3cret-value"));
    assert!(
        cli(&server, &["secret", "rm", "hello", "api-token"])
            .status
            .success()
    );
    assert_eq!(stdout(&cli(&server, &["secret", "list"])), "");

    let audit = stdout(&cli(
        &server,
        &["audit", "--plugin", "hello", "--kind", "secret-changed"],
    ));
    assert_eq!(audit.lines().count(), 2, "{audit}");
    assert!(audit.contains("secret `api-token` removed"), "{audit}");
}
