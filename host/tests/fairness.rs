//! Call slots are shared fairly: twenty plugins flooded past their caps cannot take the
//! slots a twenty-first needs, and whoever is turned away is told when to come back.

mod harness;

use harness::support::plugin;
use harness::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// Install the sleeper component under `id` with a sidecar manifest.
fn install_as(server: &Server, id: &str) {
    let manifest = format!("id = \"{id}\"\nversion = \"0.1.0\"\n[capabilities.routes]\n");
    let response = server.install_with_manifest(plugin("hostile_sleeper"), &manifest);
    assert_eq!(response.status(), 201, "{id}: {}", response.text().unwrap());
}

#[test]
fn twenty_flooded_plugins_leave_slots_for_a_twenty_first() {
    let (_keep, dir) = temp();
    // 20 plugins x 16 calls each wanted > 256 slots on the host.
    let policy = "[defaults.capabilities.routes]\n[defaults.limits]\ndeadline_ms = 30000\n";
    let server = start(&dir, policy, &[]);
    for n in 0..20 {
        install_as(&server, &format!("flood{n:02}"));
    }
    install_as(&server, "quiet");

    let flooding = Arc::new(AtomicBool::new(true));
    let (served, turned_away) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let floods: Vec<_> = (0..20 * 17)
        .map(|n| {
            let flooding = flooding.clone();
            let (served, turned_away) = (served.clone(), turned_away.clone());
            let url = format!("{}/plugins/flood{:02}/?ms=1500", server.base, n % 20);
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::new();
                while flooding.load(Ordering::Relaxed) {
                    let response = client.get(&url).send().unwrap();
                    match response.status().as_u16() {
                        200 => served.fetch_add(1, Ordering::Relaxed),
                        429 | 503 => {
                            assert_eq!(
                                response.headers()["retry-after"],
                                "1",
                                "a refusal says when to come back"
                            );
                            turned_away.fetch_add(1, Ordering::Relaxed)
                        }
                        other => panic!("flood got {other}: {}", response.text().unwrap()),
                    };
                }
            })
        })
        .collect();
    // Wait until the flood fills the host: every flooding plugin at its share.
    eventually(
        std::time::Duration::from_secs(30),
        "the flood holds its slots",
        || {
            let in_flight: f64 = (0..20)
                .filter_map(|n| {
                    server.metric(&format!(
                        "capstan_plugin_calls_in_flight{{plugin=\"flood{n:02}\"}}"
                    ))
                })
                .sum();
            in_flight >= 200.0
        },
    );
    for call in 0..20 {
        let (status, body) = server.route("quiet/");
        assert_eq!(
            (status, body.as_str()),
            (200, "awake"),
            "call {call} of the quiet plugin"
        );
    }
    flooding.store(false, Ordering::Relaxed);
    for flood in floods {
        flood.join().unwrap();
    }
    assert!(served.load(Ordering::Relaxed) > 0);
    eprintln!(
        "flood: {} served, {} turned away",
        served.load(Ordering::Relaxed),
        turned_away.load(Ordering::Relaxed)
    );
}

#[test]
fn a_plugin_at_its_cap_is_answered_429_with_retry_after_after_a_bounded_wait() {
    let (_keep, dir) = temp();
    let policy = "[defaults.capabilities.routes]\n[plugins.single.limits]\nmax_concurrent_calls = 1\ndeadline_ms = 10000\n";
    let server = start(&dir, policy, &[]);
    install_as(&server, "single");
    let long = {
        let url = format!("{}/plugins/single/?ms=3000", server.base);
        std::thread::spawn(move || reqwest::blocking::get(url).unwrap().status().as_u16())
    };
    eventually(
        std::time::Duration::from_secs(5),
        "the long call holds the slot",
        || server.metric("capstan_plugin_calls_in_flight{plugin=\"single\"}") == Some(1.0),
    );
    let started = std::time::Instant::now();
    let refused = server
        .http
        .get(format!("{}/plugins/single/", server.base))
        .send()
        .unwrap();
    let waited = started.elapsed();
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "1");
    let body: serde_json::Value = refused.json().unwrap();
    assert_eq!(body["code"], "busy");
    assert!(
        waited >= std::time::Duration::from_millis(400)
            && waited < std::time::Duration::from_secs(2),
        "a bounded wait, then the refusal: {waited:?}"
    );
    assert_eq!(long.join().unwrap(), 200);
}
