//! What a plugin answers is checked before it is sent: a forged status, header or framing
//! is refused with a 502 `invalid-response` and a plugin log line naming the problem, the
//! connection stays in step, and request bodies are capped alike on every route path.

mod harness;

use harness::support::plugin;
use harness::*;
use reqwest::Method;
use std::io::{Read, Write};

/// Send `path` twice on one raw connection; return each answer's status line and head.
fn twice_on_one_connection(server: &Server, path: &str) -> Vec<String> {
    let address = server.base.trim_start_matches("http://").to_string();
    let mut connection = std::net::TcpStream::connect(address).unwrap();
    connection
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let request = format!("GET /plugins/misbehave{path} HTTP/1.1\r\nHost: capstan\r\n\r\n");
    let mut heads = Vec::new();
    for _ in 0..2 {
        connection.write_all(request.as_bytes()).unwrap();
        let mut answer = Vec::new();
        let mut buffer = [0u8; 8192];
        // Read one whole response: its head, then as many body bytes as it announces.
        loop {
            let read = connection.read(&mut buffer).unwrap();
            assert!(read > 0, "connection closed after {answer:?}");
            answer.extend_from_slice(&buffer[..read]);
            let text = String::from_utf8_lossy(&answer).to_string();
            if let Some(end) = text.find("\r\n\r\n") {
                let length: usize = text[..end]
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length: ")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .expect("content-length");
                if answer.len() >= end + 4 + length {
                    heads.push(text[..end + 4 + length].to_string());
                    break;
                }
            }
        }
    }
    heads
}

#[test]
fn malformed_responses_are_refused_named_and_logged_and_the_connection_stays_in_step() {
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, &[]);
    assert_eq!(server.install(plugin("hostile_misbehave")).status(), 201);
    let cases = [
        ("/status?code=101", "status 101"),
        ("/status?code=600", "status 600"),
        ("/split-header", "CR, LF or NUL"),
        ("/bad-header-name", "not an HTTP token"),
        ("/framing", "transfer-encoding"),
        ("/huge-header", "headers total"),
    ];
    for (path, what) in cases {
        for answer in twice_on_one_connection(&server, path) {
            let lower = answer.to_ascii_lowercase();
            assert!(lower.starts_with("http/1.1 502"), "{path}: {answer}");
            assert!(
                lower.contains("\"code\":\"invalid-response\""),
                "{path}: {answer}"
            );
            assert!(answer.contains(what), "{path}: {answer}");
            assert!(
                !lower.contains("set-cookie"),
                "{path}: the split header got out"
            );
            assert!(!lower.contains("upgrade"), "{path}: {answer}");
        }
        let (_, logs) = server.json(Method::GET, "/logs?plugin=misbehave&level=warn&limit=1");
        let line = logs[0]["message"].as_str().unwrap();
        assert!(
            line.starts_with("response refused:") && line.contains(what),
            "{path}: {line}"
        );
    }
    let (_, metrics) = (0, server.metrics());
    assert!(
        metrics.contains(
            r#"capstan_plugin_errors_total{plugin="misbehave",error="invalid-response"} 12"#
        ),
        "{metrics}"
    );
    // A well-formed answer still goes through on a connection that saw refusals.
    for answer in twice_on_one_connection(&server, "/ok") {
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
}

#[test]
fn request_bodies_are_capped_alike_on_every_route_path() {
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, &[]);
    assert_eq!(server.install(plugin("hello")).status(), 201);
    let big = vec![b'x'; 3 * 1024 * 1024];
    for path in ["hello", "hello/", "hello/deeper/path"] {
        let response = server
            .http
            .post(format!("{}/plugins/{path}", server.base))
            .body(big.clone())
            .send()
            .unwrap();
        assert_eq!(
            response.status(),
            200,
            "{path}: 3 MiB is under the 5 MiB route cap (the bare paths used to stop at 2 MiB)"
        );
    }
}

#[test]
fn unknown_paths_answer_404_in_the_error_shape() {
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, &[]);
    let (status, body) = server.json(Method::GET, "/no-such-thing");
    assert_eq!((status, body["code"].as_str()), (404, Some("not-found")));
    let response = server
        .http
        .get(format!("{}/elsewhere", server.base))
        .send()
        .unwrap();
    assert_eq!(response.status(), 404);
    let body: serde_json::Value = response.json().unwrap();
    assert_eq!(body["code"], "not-found");
    let anonymous = server
        .http
        .get(format!("{}/admin/v1/no-such-thing", server.base))
        .send()
        .unwrap();
    assert_eq!(
        anonymous.status(),
        401,
        "unknown admin paths still need the token"
    );
}
