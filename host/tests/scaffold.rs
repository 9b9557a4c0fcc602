//! `capstan new` for each language (Rust, Python, JavaScript): the project it writes passes its own test and builds,
//! with no edits, into a component the gate admits under the policy written beside it.

mod harness;

use harness::support::{capstan_bin, js_plugin, py_plugin, root};
use harness::temp;
use std::path::Path;
use std::process::{Command, Output};

fn run(command: &mut Command) -> Output {
    let output = command.output().expect("running a command");
    assert!(
        output.status.success(),
        "{command:?}\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn capstan(dir: &Path) -> Command {
    let mut command = Command::new(capstan_bin());
    command.current_dir(dir).env("CAPSTAN_LOG", "warn");
    command
}

#[test]
fn a_new_rust_plugin_passes_its_test_builds_and_answers() {
    let (_keep, dir) = temp();
    run(capstan(&dir).args(["new", "scaffold-rs", "--with", "kv,secrets,mcp"]));
    let project = dir.join("scaffold-rs");
    // The same dependency versions as plugins/, so the shared target dir is reused.
    std::fs::copy(
        root().join("plugins/Cargo.lock"),
        project.join("Cargo.lock"),
    )
    .unwrap();
    let target = root().join("target/plugins");
    let tested = run(Command::new(env!("CARGO"))
        .args(["test", "--quiet"])
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(&project));
    let report = String::from_utf8_lossy(&tested.stdout);
    assert!(report.contains("2 passed"), "{report}");
    run(Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--release", "--target", "wasm32-wasip2"])
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(&project));
    let wasm = target.join("wasm32-wasip2/release/scaffold_rs.wasm");

    let inspected = run(capstan(&project)
        .arg("inspect")
        .arg(&wasm)
        .args(["--policy", "policy.toml"]));
    let text = String::from_utf8_lossy(&inspected.stdout);
    for capability in ["storage.kv", "secrets", "mcp", "http.routes"] {
        assert!(
            text.lines()
                .any(|l| l.contains(capability) && l.contains("granted")),
            "{capability}: {text}"
        );
    }
    let answered = run(capstan(&project).arg("run").arg(&wasm).args([
        "--policy",
        "policy.toml",
        "--get",
        "/",
    ]));
    let text = String::from_utf8_lossy(&answered.stdout);
    assert!(text.contains("\"visits\":1"), "{text}");
    let echoed = run(capstan(&project).arg("run").arg(&wasm).args([
        "--policy",
        "policy.toml",
        "--tool",
        "echo",
        "--args",
        r#"{"text":"hi"}"#,
    ]));
    assert!(String::from_utf8_lossy(&echoed.stdout).contains("hi"));
}

#[test]
fn a_new_python_plugin_passes_its_test_builds_and_answers() {
    py_plugin("py_hello"); // installs componentize-py into target/py-guest
    let (_keep, dir) = temp();
    run(capstan(&dir).args([
        "new",
        "scaffold-py",
        "--lang",
        "python",
        "--with",
        "kv,http,secrets,mcp",
    ]));
    let project = dir.join("scaffold-py");
    let tested = run(Command::new("python3")
        .args(["-m", "unittest", "-v"])
        .env("PYTHONPATH", root().join("guest-sdk/python"))
        .current_dir(&project));
    let report = String::from_utf8_lossy(&tested.stderr);
    assert!(
        report.contains("Ran 2 tests") && report.contains("OK"),
        "{report}"
    );
    run(Command::new(project.join("build.sh")).env(
        "COMPONENTIZE_PY",
        root().join("target/py-guest/bin/componentize-py"),
    ));
    let inspected =
        run(capstan(&project).args(["inspect", "scaffold-py.wasm", "--policy", "policy.toml"]));
    let text = String::from_utf8_lossy(&inspected.stdout);
    assert!(text.contains("plugin    scaffold-py 0.1.0"), "{text}");
    assert!(
        text.contains("! exfiltration"),
        "secrets with http is flagged: {text}"
    );
    let answered = run(capstan(&project).args([
        "run",
        "scaffold-py.wasm",
        "--policy",
        "policy.toml",
        "--tool",
        "echo",
        "--args",
        r#"{"text":"hi"}"#,
    ]));
    assert!(String::from_utf8_lossy(&answered.stdout).contains("hi"));
}

#[test]
fn a_new_javascript_plugin_passes_its_test_builds_and_answers() {
    js_plugin("js_hello"); // installs componentize-js into target/js-guest
    let (_keep, dir) = temp();
    run(capstan(&dir).args([
        "new",
        "scaffold-js",
        "--lang",
        "js",
        "--with",
        "kv,http,secrets,mcp",
    ]));
    let project = dir.join("scaffold-js");
    // What `npm install` would fetch: the same pinned toolchain the build scripts use.
    std::os::unix::fs::symlink(
        root().join("target/js-guest/node_modules"),
        project.join("node_modules"),
    )
    .unwrap();
    let tested = run(Command::new("npm").args(["test"]).current_dir(&project));
    let report = String::from_utf8_lossy(&tested.stdout);
    assert!(
        report.contains("# pass 2") && report.contains("# fail 0"),
        "{report}"
    );
    run(Command::new("npm")
        .args(["run", "build"])
        .current_dir(&project));
    let inspected =
        run(capstan(&project).args(["inspect", "scaffold-js.wasm", "--policy", "policy.toml"]));
    let text = String::from_utf8_lossy(&inspected.stdout);
    assert!(text.contains("plugin    scaffold-js 0.1.0"), "{text}");
    assert!(
        !text.contains("wasi:"),
        "no WASI import reaches the gate: {text}"
    );
    let answered = run(capstan(&project).args([
        "run",
        "scaffold-js.wasm",
        "--policy",
        "policy.toml",
        "--tool",
        "echo",
        "--args",
        r#"{"text":"hi"}"#,
    ]));
    assert!(String::from_utf8_lossy(&answered.stdout).contains("hi"));
}
