//! Signed plugins on a real server with `require_signature = true`: a component signed by
//! the trusted key (an ordinary OpenSSH key from `ssh-keygen`) installs and names its
//! signer; unsigned, untrusted, tampered and wrong-file signatures are each refused with
//! their own code while what is served stays as it was; a detached signature is kept with
//! its version, so the plugin loads again after a restart.

mod harness;

use harness::support::{capstan_bin, plugin_dir};
use harness::*;
use reqwest::Method;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn run(command: &mut Command) -> Output {
    let output = command.output().expect("running a command");
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The `SHA256:…` fingerprint in `text`.
fn fingerprint_in(text: &str) -> String {
    text.split_whitespace()
        .find(|word| word.starts_with("SHA256:"))
        .unwrap_or_else(|| panic!("no fingerprint in {text:?}"))
        .to_string()
}

fn capstan(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(capstan_bin());
    command.args(args).current_dir(dir);
    command
}

fn copy_plugin(dir: &Path, name: &str) -> PathBuf {
    let to = dir.join(format!("{name}.wasm"));
    std::fs::copy(plugin_dir().join(format!("{name}.wasm")), &to).unwrap();
    to
}

/// `capstan plugin install` with the given files; returns the process output.
fn install(server: &Server, args: &[&str]) -> Output {
    Command::new(capstan_bin())
        .args(["plugin", "install"])
        .args(args)
        .env("CAPSTAN_SERVER", &server.base)
        .env("CAPSTAN_ADMIN_TOKEN", TOKEN)
        .output()
        .unwrap()
}

/// `capstan plugin sign FILE --key KEY --detached` in `dir`: the `.sig` it wrote.
fn sign_detached(dir: &Path, file: &str, key: &str) -> PathBuf {
    run(&mut capstan(
        dir,
        &["plugin", "sign", file, "--key", key, "--detached"],
    ));
    dir.join(format!("{file}.sig"))
}

/// Install `wasm` with the detached signature `sig`.
fn install_signed(server: &Server, wasm: &Path, sig: &Path) -> Output {
    install(
        server,
        &[wasm.to_str().unwrap(), "--signature", sig.to_str().unwrap()],
    )
}

fn refused_with(output: &Output, code: &str) {
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(code), "{code} not in {stderr}");
}

#[test]
fn only_what_the_trusted_key_signed_installs_and_every_other_signature_is_refused_by_code() {
    let (_keep, dir) = temp();
    // The trusted key is an ordinary OpenSSH key; the stranger's comes from capstan.
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "ops", "-f"])
        .arg(dir.join("ops")));
    let ops_pub = std::fs::read_to_string(dir.join("ops.pub")).unwrap();
    let ops_fingerprint = fingerprint_in(&stdout(&run(Command::new("ssh-keygen")
        .arg("-lf")
        .arg(dir.join("ops.pub")))));
    run(&mut capstan(&dir, &["plugin", "keygen", "stranger"]));

    let policy = format!(
        "[defaults]\nrequire_signature = true\ntrusted_keys = [\"{}\"]\n[defaults.capabilities.routes]\n[plugins.counter.capabilities.kv]\n",
        ops_pub.trim()
    );
    let server = start(&dir, &policy, &[]);

    copy_plugin(&dir, "hello");
    let counter = copy_plugin(&dir, "counter");
    let signed = stdout(&run(&mut capstan(
        &dir,
        &["plugin", "sign", "hello.wasm", "--key", "ops"],
    )));
    assert_eq!(
        fingerprint_in(&signed),
        ops_fingerprint,
        "capstan names an OpenSSH key by the fingerprint ssh-keygen prints"
    );
    let output = install(&server, &[dir.join("hello.signed.wasm").to_str().unwrap()]);
    assert!(output.status.success(), "{output:?}");
    let (status, info) = server.json(Method::GET, "/plugins/hello");
    assert_eq!(status, 200);
    assert_eq!(info["signer"], ops_fingerprint.as_str());
    assert_eq!(server.route("hello/").0, 200);
    let (_, versions) = server.json(Method::GET, "/plugins/hello/versions");
    assert_eq!(versions[0]["signer"], ops_fingerprint.as_str());
    let (_, audit) = server.json(Method::GET, "/audit?plugin=hello&kind=installed");
    assert!(
        audit
            .to_string()
            .contains(&format!("signed by {ops_fingerprint}")),
        "{audit}"
    );

    // Unsigned.
    refused_with(
        &install(&server, &[counter.to_str().unwrap()]),
        "signature-missing",
    );
    // Signed, by a key the policy does not trust.
    run(&mut capstan(
        &dir,
        &[
            "plugin",
            "sign",
            "counter.wasm",
            "--key",
            "stranger",
            "--out",
            "by-stranger.wasm",
        ],
    ));
    refused_with(
        &install(&server, &[dir.join("by-stranger.wasm").to_str().unwrap()]),
        "signature-untrusted",
    );
    // Signed by the trusted key, then changed: one letter of the embedded manifest's
    // description (still a valid manifest, so only the signature can tell).
    let mut tampered = std::fs::read(dir.join("hello.signed.wasm")).unwrap();
    let at = tampered
        .windows(6)
        .position(|w| w == b"Greets")
        .expect("the embedded manifest's description");
    tampered[at] = b'g';
    std::fs::write(dir.join("tampered.wasm"), &tampered).unwrap();
    refused_with(
        &install(&server, &[dir.join("tampered.wasm").to_str().unwrap()]),
        "signature-invalid",
    );
    // A genuine detached signature, but for another file.
    let hello_sig = sign_detached(&dir, "hello.wasm", "ops");
    refused_with(
        &install_signed(&server, &counter, &hello_sig),
        "signature-invalid",
    );

    // Nothing served changed.
    assert_eq!(server.installed().len(), 1, "{:?}", server.installed());
    let (_, again) = server.json(Method::GET, "/plugins/hello");
    assert_eq!(again["seq"], 1);
    assert_eq!(server.route("hello/").0, 200);

    // counter with its own detached signature installs, and survives a restart (its
    // signature is stored with the version and checked again when it is loaded).
    let counter_sig = sign_detached(&dir, "counter.wasm", "ops");
    let output = install_signed(&server, &counter, &counter_sig);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(server.counter_hits(), 1);
    terminate(&server);
    let mut server = server;
    server.child.wait().unwrap();
    let restarted = start(&dir, &policy, &[]);
    let (_, info): (u16, Value) = restarted.json(Method::GET, "/plugins/counter");
    assert_eq!(info["status"], "running", "{info}");
    assert_eq!(info["signer"], ops_fingerprint.as_str());
    assert_eq!(restarted.counter_hits(), 2, "its kv count goes on");
}

#[test]
fn a_policy_that_requires_signatures_but_trusts_no_key_is_refused_by_name() {
    let (_keep, dir) = temp();
    let server = start(&dir, "[defaults.capabilities.routes]\n", &[]);
    let response = server
        .admin(Method::PUT, "/policy")
        .body("[defaults]\nrequire_signature = true\n")
        .send()
        .unwrap();
    assert_eq!(response.status(), 400);
    let error: Value = response.json().unwrap();
    assert!(
        error["message"].as_str().unwrap().contains("trusts no key"),
        "{error}"
    );
    // Requiring signatures while an unsigned plugin is installed is refused as a whole.
    assert_eq!(
        server.install(harness::support::plugin("hello")).status(),
        201
    );
    run(&mut capstan(&dir, &["plugin", "keygen", "k"]));
    let line = std::fs::read_to_string(dir.join("k.pub")).unwrap();
    let response = server
        .admin(Method::PUT, "/policy")
        .body(format!(
            "[defaults]\nrequire_signature = true\ntrusted_keys = [\"{}\"]\n[defaults.capabilities.routes]\n",
            line.trim()
        ))
        .send()
        .unwrap();
    assert_eq!(response.status(), 422);
    let error: Value = response.json().unwrap();
    assert!(
        error["message"].as_str().unwrap().contains("signature"),
        "{error}"
    );
    assert_eq!(server.route("hello/").0, 200, "still serving");
}

#[test]
fn a_session_installs_a_plugin_with_its_detached_signature_and_not_without() {
    let (_keep, dir) = temp();
    run(&mut capstan(&dir, &["plugin", "keygen", "k"]));
    let line = std::fs::read_to_string(dir.join("k.pub")).unwrap();
    let policy = format!(
        "[defaults]\nrequire_signature = true\ntrusted_keys = [\"{}\"]\n[defaults.capabilities.routes]\n",
        line.trim()
    );
    let server = start(&dir, &policy, &[]);
    let hello = copy_plugin(&dir, "hello");
    let sig = std::fs::read(sign_detached(&dir, "hello.wasm", "k")).unwrap();
    let (_, token) = open_session(&server, "signed", "1h", serde_json::json!({}));
    let wasm = std::fs::read(&hello).unwrap();

    let (status, answer) = session_upload(&server, &token, vec![("hello", wasm.clone())]);
    assert_eq!(status, 422, "{answer}");
    assert_eq!(
        answer["outcomes"][0]["refused"]["code"], "signature-missing",
        "{answer}"
    );

    let (status, answer) = session_upload(
        &server,
        &token,
        vec![("hello", wasm), ("hello.sig", sig.clone())],
    );
    assert_eq!(status, 201, "{answer}");

    let (status, answer) = session_upload(&server, &token, vec![("other.sig", sig)]);
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["message"].as_str().unwrap().contains("other.sig"),
        "{answer}"
    );
}
