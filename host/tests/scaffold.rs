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

/// `capstan new NAME --with WITH [--lang LANG]` in `dir`; the project's path.
fn generate(dir: &Path, name: &str, lang: &str, with: &str) -> std::path::PathBuf {
    run(capstan(dir).args(["new", name, "--lang", lang, "--with", with]));
    dir.join(name)
}

/// `capstan inspect` of the built component under the project's own policy: its report.
fn inspect(project: &Path, wasm: &Path) -> String {
    let output = run(capstan(project)
        .arg("inspect")
        .arg(wasm)
        .args(["--policy", "policy.toml"]));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Call the generated `echo` tool through `capstan run` and check it echoes.
fn echoes(project: &Path, wasm: &Path) {
    let output = run(capstan(project).arg("run").arg(wasm).args([
        "--policy",
        "policy.toml",
        "--tool",
        "echo",
        "--args",
        r#"{"text":"hi"}"#,
    ]));
    assert!(String::from_utf8_lossy(&output.stdout).contains("hi"));
}

#[test]
fn a_new_rust_plugin_passes_its_test_builds_and_answers() {
    let (_keep, dir) = temp();
    let project = generate(&dir, "scaffold-rs", "rust", "kv,secrets,mcp");
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

    let text = inspect(&project, &wasm);
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
    echoes(&project, &wasm);
}

#[test]
fn a_new_python_plugin_passes_its_test_builds_and_answers() {
    py_plugin("py_hello"); // installs componentize-py into target/py-guest
    let (_keep, dir) = temp();
    let project = generate(&dir, "scaffold-py", "python", "kv,http,secrets,mcp");
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
    let wasm = project.join("scaffold-py.wasm");
    let text = inspect(&project, &wasm);
    assert!(text.contains("plugin    scaffold-py 0.1.0"), "{text}");
    assert!(
        text.contains("! exfiltration"),
        "secrets with http is flagged: {text}"
    );
    echoes(&project, &wasm);
}

#[test]
fn a_new_javascript_plugin_passes_its_test_builds_and_answers() {
    js_plugin("js_hello"); // installs componentize-js into target/js-guest
    let (_keep, dir) = temp();
    let project = generate(&dir, "scaffold-js", "js", "kv,http,secrets,mcp");
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
    let wasm = project.join("scaffold-js.wasm");
    let text = inspect(&project, &wasm);
    assert!(text.contains("plugin    scaffold-js 0.1.0"), "{text}");
    assert!(
        !text.contains("wasi:"),
        "no WASI import reaches the gate: {text}"
    );
    echoes(&project, &wasm);
}
