//! `serve --plugins-dir`: files in a directory become plugins under the same checks as an
//! upload; a bad file is reported and leaves what serves alone; removing a file removes
//! its plugin only with `--plugins-dir-prune`; killing the host mid-write loses nothing.

mod harness;

use harness::support::plugin;
use harness::*;
use reqwest::Method;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

const POLICY: &str = "[defaults.capabilities.routes]\n[plugins.counter.capabilities.kv]\n";
const WITHIN: Duration = Duration::from_secs(20);

fn serve(dir: &Path, plugins: &Path, extra: &[&str]) -> Server {
    let mut args = vec!["--plugins-dir", plugins.to_str().unwrap()];
    args.extend_from_slice(extra);
    start(dir, POLICY, &args)
}

/// Write `bytes` to `name` in `plugins` the way a deploy should: a temporary name, then a
/// rename, so the host never sees a half-written file.
fn drop_in(plugins: &Path, name: &str, bytes: &[u8]) {
    let part = plugins.join(format!(".{name}.part"));
    std::fs::write(&part, bytes).unwrap();
    std::fs::rename(&part, plugins.join(name)).unwrap();
}

fn readyz(server: &Server) -> Value {
    server
        .http
        .get(format!("{}/readyz", server.base))
        .send()
        .unwrap()
        .json()
        .unwrap()
}

fn problems(server: &Server) -> Vec<(String, String)> {
    readyz(server)["plugins_dir"]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["file"].as_str().unwrap().to_string(),
                p["code"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn sha_of(server: &Server, id: &str) -> Option<String> {
    let (status, info) = server.json(Method::GET, &format!("/plugins/{id}"));
    (status == 200).then(|| info["sha256"].as_str().unwrap().to_string())
}

fn hex_sha(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[test]
fn files_become_plugins_and_a_bad_file_is_reported_while_the_served_version_stays() {
    let (_keep, dir) = temp();
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::write(plugins.join("hello.wasm"), plugin("hello")).unwrap();
    std::fs::write(plugins.join("sidecar.wasm"), plugin("sidecar")).unwrap();
    std::fs::write(
        plugins.join("sidecar.toml"),
        "id = \"echo\"\nversion = \"0.1.0\"\n[capabilities.routes]\n",
    )
    .unwrap();
    std::fs::write(plugins.join("notes.txt"), "not a plugin").unwrap();
    let server = serve(&dir, &plugins, &[]);

    // Installed before the host listens; the sidecar manifest named the second one.
    assert_eq!(server.route("hello/").0, 200);
    assert_eq!(server.route("echo/hi").0, 200);
    assert_eq!(readyz(&server)["plugins_dir"]["serving"], 2);

    // A new file appears as a plugin.
    drop_in(&plugins, "counter.wasm", &plugin("counter"));
    eventually(WITHIN, "counter installed from the directory", || {
        sha_of(&server, "counter").is_some()
    });
    assert_eq!(server.counter_hits(), 1);

    // A bad file: reported with its code, and hello keeps serving the same version.
    let served = sha_of(&server, "hello").unwrap();
    drop_in(&plugins, "hello.wasm", b"this is not a component");
    eventually(WITHIN, "the bad file reported", || {
        problems(&server) == [("hello.wasm".to_string(), "not-wasm".to_string())]
    });
    assert_eq!(sha_of(&server, "hello").as_deref(), Some(served.as_str()));
    assert_eq!(server.route("hello/").0, 200);

    // A good file again: an upgrade, and the problem is gone.
    let upgraded = variant(plugin("hello"), "v2");
    drop_in(&plugins, "hello.wasm", &upgraded);
    // The directory's report is updated just after the install it records, so the two
    // are awaited together.
    eventually(
        WITHIN,
        "hello upgraded from the directory, its problem gone",
        || sha_of(&server, "hello") == Some(hex_sha(&upgraded)) && problems(&server).is_empty(),
    );
    let (_, versions) = server.json(Method::GET, "/plugins/hello/versions");
    assert_eq!(versions.as_array().unwrap().len(), 2, "{versions}");

    // Without --plugins-dir-prune, removing a file keeps its plugin.
    std::fs::remove_file(plugins.join("counter.wasm")).unwrap();
    eventually(WITHIN, "the removed file forgotten", || {
        readyz(&server)["plugins_dir"]["serving"] == 2
    });
    assert_eq!(server.counter_hits(), 2, "still installed and counting");
}

#[test]
fn with_prune_removing_a_file_removes_its_plugin_and_only_that_one() {
    let (_keep, dir) = temp();
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::write(plugins.join("hello.wasm"), plugin("hello")).unwrap();
    let server = serve(&dir, &plugins, &["--plugins-dir-prune"]);
    assert_eq!(server.install(plugin("counter")).status(), 201, "by upload");
    assert_eq!(server.route("hello/").0, 200);

    std::fs::remove_file(plugins.join("hello.wasm")).unwrap();
    eventually(WITHIN, "hello removed with its file", || {
        sha_of(&server, "hello").is_none()
    });
    assert!(
        sha_of(&server, "counter").is_some(),
        "a plugin the directory did not install is not pruned"
    );
}

#[test]
fn killing_the_host_while_a_file_is_half_written_loses_nothing() {
    let (_keep, dir) = temp();
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let counter = plugin("counter");
    std::fs::write(plugins.join("counter.wasm"), &counter).unwrap();
    let mut server = serve(&dir, &plugins, &[]);
    assert_eq!(server.counter_hits(), 1);

    // A copy in place (no rename) is cut off halfway, and the host dies with it.
    let next = variant(counter.clone(), "v2");
    std::fs::write(plugins.join("counter.wasm"), &next[..next.len() / 2]).unwrap();
    server.child.kill().unwrap();
    server.child.wait().unwrap();

    let server = serve(&dir, &plugins, &[]);
    assert_eq!(
        sha_of(&server, "counter"),
        Some(hex_sha(&counter)),
        "the version that served before still serves"
    );
    assert_eq!(server.counter_hits(), 2, "and its data is intact");
    let reported = problems(&server);
    assert_eq!(reported.len(), 1, "{reported:?}");
    assert_eq!(reported[0].0, "counter.wasm");

    // The copy finishes: the new version goes live.
    std::fs::write(plugins.join("counter.wasm"), &next).unwrap();
    eventually(
        WITHIN,
        "the finished file installed, its problem gone",
        || sha_of(&server, "counter") == Some(hex_sha(&next)) && problems(&server).is_empty(),
    );
    assert_eq!(server.counter_hits(), 3);
}
