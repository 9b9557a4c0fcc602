//! What survives a crash and a restart: kill -9 in the middle of an upgrade leaves either
//! the old version or the new one serving, never a half-installed plugin; compiled
//! artifacts are reused across restarts, and a corrupt one is recompiled, not trusted.

mod harness;

use harness::support::plugin;
use harness::*;
use reqwest::Method;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::time::Duration;

fn cached_artifacts(data: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(data.join("cache"))
        .map(|dir| {
            dir.map(|entry| entry.unwrap().path())
                .filter(|path| path.extension().is_some_and(|ext| ext == "cwasm"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// When, during an upgrade, the server is killed.
#[derive(Debug, Clone, Copy)]
enum KillPoint {
    /// Half the body sent: the upload cannot have completed, so the old version must serve.
    HalfUploaded,
    /// This long after the whole request was handed to the socket: upload, compile,
    /// commit or answer may be under way.
    After(u64),
    /// After the server answered 201: the new version must serve.
    Answered,
}

#[test]
fn kill_9_during_an_upgrade_leaves_the_old_or_the_new_version() {
    let (_keep, dir) = temp();
    let v1 = plugin("hello");
    let mut current = hex::encode(Sha256::digest(&v1));
    {
        let server = start(&dir, POLICY, &[]);
        assert_eq!(server.install(v1.clone()).status(), 201);
    }
    let points = [
        KillPoint::HalfUploaded,
        KillPoint::After(0),
        KillPoint::After(2),
        KillPoint::After(5),
        KillPoint::After(10),
        KillPoint::After(20),
        KillPoint::After(40),
        KillPoint::After(80),
        KillPoint::Answered,
    ];
    let (mut old, mut new) = (0, 0);
    for (round, point) in points.into_iter().enumerate() {
        let mut server = start(&dir, POLICY, &[]);
        let upgrade = variant(v1.clone(), &format!("round-{round}"));
        let upgrade_sha = hex::encode(Sha256::digest(&upgrade));
        match point {
            KillPoint::HalfUploaded => {
                use std::io::Write;
                let address = server.base.trim_start_matches("http://").to_string();
                let mut socket = std::net::TcpStream::connect(address).unwrap();
                let head = format!(
                    "POST /admin/v1/plugins HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
                     Content-Type: application/wasm\r\nContent-Length: {}\r\n\r\n",
                    upgrade.len()
                );
                socket.write_all(head.as_bytes()).unwrap();
                socket.write_all(&upgrade[..upgrade.len() / 2]).unwrap();
                kill(&mut server);
            }
            KillPoint::After(delay_ms) => {
                let request = server
                    .admin(Method::POST, "/plugins")
                    .header("content-type", "application/wasm")
                    .body(upgrade);
                let upload = std::thread::spawn(move || request.send());
                std::thread::sleep(Duration::from_millis(delay_ms));
                kill(&mut server);
                let _ = upload.join();
            }
            KillPoint::Answered => {
                assert_eq!(server.install(upgrade).status(), 201);
                kill(&mut server);
            }
        }

        let restarted = start(&dir, POLICY, &[]);
        let installed = restarted.installed();
        assert_eq!(installed.len(), 1, "{point:?}: {installed:?}");
        let sha = &installed[0].1;
        let outcome = if *sha == current {
            old += 1;
            "old"
        } else if *sha == upgrade_sha {
            new += 1;
            "new"
        } else {
            panic!("{point:?}: serving {sha}, neither the old {current} nor the new {upgrade_sha}")
        };
        eprintln!("kill -9 at {point:?}: the {outcome} version serves");
        match (point, outcome) {
            (KillPoint::HalfUploaded, "new") => panic!("a half-sent upload was installed"),
            (KillPoint::Answered, "old") => panic!("an acknowledged upgrade was lost"),
            _ => {}
        }
        let (status, info) = restarted.json(Method::GET, "/plugins/hello");
        assert_eq!(status, 200);
        assert!(info["last_error"].is_null(), "{point:?}: {info}");
        assert_eq!(restarted.route("hello/").0, 200, "{point:?}");
        let (_, versions) = restarted.json(Method::GET, "/plugins/hello/versions");
        let listed = versions.as_array().unwrap();
        assert_eq!(
            listed.last().unwrap()["sha256"].as_str(),
            Some(sha.as_str()),
            "{point:?}: the newest stored version is complete and is the one serving"
        );
        current = sha.clone();
    }
    assert!(old >= 1 && new >= 1, "old {old}, new {new}");
    eprintln!("after kill -9: old version {old} times, new version {new} times");
}

fn kill(server: &mut Server) {
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
}

#[test]
fn restart_reuses_compiled_artifacts_and_recompiles_a_corrupt_one() {
    let (_keep, dir) = temp();
    let data = dir.join("data");
    {
        let server = start(&dir, POLICY, &[]);
        assert_eq!(server.install(plugin("hello")).status(), 201);
    }
    let files = cached_artifacts(&data);
    assert_eq!(files.len(), 1, "one compiled artifact: {files:?}");
    let pristine = std::fs::read(&files[0]).unwrap();
    {
        let server = start(&dir, POLICY, &[]);
        assert_eq!(server.route("hello/").0, 200);
        assert_eq!(
            server.metric("capstan_artifact_cache_hits_total"),
            Some(1.0)
        );
        assert_eq!(
            server.metric("capstan_artifact_cache_misses_total"),
            Some(0.0)
        );
    }

    // Flip bytes in the middle of the machine code: a corrupt entry must not be loaded.
    let mut corrupt = pristine.clone();
    let middle = corrupt.len() / 2;
    for byte in &mut corrupt[middle..middle + 64] {
        *byte ^= 0xa5;
    }
    std::fs::write(&files[0], &corrupt).unwrap();

    let server = start(&dir, POLICY, &[]);
    assert_eq!(
        server.route("hello/").0,
        200,
        "hello serves after recompiling"
    );
    assert_eq!(
        server.metric("capstan_artifact_cache_hits_total"),
        Some(0.0)
    );
    assert_eq!(
        server.metric("capstan_artifact_cache_misses_total"),
        Some(1.0)
    );
    let rewritten = std::fs::read(&files[0]).unwrap();
    assert_ne!(rewritten, corrupt, "the corrupt entry was replaced");

    let (status, cleared) = server.json(Method::DELETE, "/cache");
    assert_eq!(status, 200);
    assert_eq!(cleared["removed"], 1);
    assert!(cached_artifacts(&data).is_empty());
    assert_eq!(server.route("hello/").0, 200, "live plugins keep serving");
}
