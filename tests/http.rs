//! Outbound HTTP attacked from a real plugin: every way around the host allowlist and the
//! blocked networks is tried next to the legitimate path. Names resolve through an
//! injected resolver; the only server contacted is a local one on 127.0.0.1.

mod support;

use capstan_host::audit::AuditKind;
use capstan_host::capability::http::{Outbound, Resolver};
use capstan_host::capability::{CapabilityId, FAULT_RECORDS_PER_SECOND};
use capstan_host::{Plugin, Policy, Runtime, Services};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{get, plugin, text};

/// Resolves a fixed table of names; anything else does not exist.
struct TableResolver(HashMap<&'static str, IpAddr>);

impl Resolver for TableResolver {
    fn resolve(&self, host: &str) -> std::io::Result<Vec<IpAddr>> {
        self.0
            .get(host)
            .map(|ip| vec![*ip])
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such test host"))
    }
}

/// A tiny HTTP/1.1 server on 127.0.0.1 recording the paths it was asked for.
struct TestServer {
    port: u16,
    paths: Arc<Mutex<Vec<String>>>,
}

impl TestServer {
    fn start() -> TestServer {
        TestServer::on(TcpListener::bind("127.0.0.1:0").unwrap())
    }

    fn on(listener: TcpListener) -> TestServer {
        let port = listener.local_addr().unwrap().port();
        let paths = Arc::new(Mutex::new(Vec::new()));
        let seen = paths.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let seen = seen.clone();
                std::thread::spawn(move || serve(stream, &seen));
            }
        });
        TestServer { port, paths }
    }

    fn paths(&self) -> Vec<String> {
        self.paths.lock().unwrap().clone()
    }
}

fn serve(mut stream: TcpStream, seen: &Mutex<Vec<String>>) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
        if stream.read(&mut byte).unwrap_or(0) == 0 {
            return;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let target = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    seen.lock().unwrap().push(target.clone());
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let mut reply = |status: &str, extra: &str, body: &[u8]| {
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n",
            body.len()
        );
        let _ = stream
            .write_all(head.as_bytes())
            .and_then(|()| stream.write_all(body));
    };
    match path {
        "/ok" => reply("200 OK", "", b"hello"),
        "/big" => reply("200 OK", "", &vec![b'x'; 64 * 1024]),
        "/slow" => {
            std::thread::sleep(Duration::from_millis(1500));
            reply("200 OK", "", b"late");
        }
        "/redirect" => {
            let to = query.strip_prefix("to=").unwrap_or("/ok");
            reply("302 Found", &format!("Location: {to}\r\n"), b"");
        }
        "/loop" => reply("302 Found", "Location: /loop\r\n", b""),
        _ => reply("404 Not Found", "", b""),
    }
}

struct Probe {
    plugin: Plugin,
    runtime: Runtime,
    audit: Arc<capstan_host::audit::MemoryAudit>,
    server: TestServer,
}

/// The probe plugin under `http_policy` (the body of its `[…capabilities.http]` table).
fn probe(http_policy: &str) -> Probe {
    probe_trusting(http_policy, None)
}

/// Like [`probe`], with the outbound client also trusting the CA in `extra_ca` (PEM).
fn probe_trusting(http_policy: &str, extra_ca: Option<&str>) -> Probe {
    let server = TestServer::start();
    let resolver = TableResolver(HashMap::from([
        ("good.test", "127.0.0.1".parse().unwrap()),
        ("loopback.test", "127.0.0.1".parse().unwrap()),
        ("metadata.test", "169.254.169.254".parse().unwrap()),
        ("private.test", "10.0.0.1".parse().unwrap()),
        ("mtls.test", "127.0.0.1".parse().unwrap()),
    ]));
    let outbound = Outbound::new(Arc::new(resolver)).unwrap();
    let outbound = match extra_ca {
        Some(pem) => outbound.trusting(pem.as_bytes()).unwrap(),
        None => outbound,
    };
    let (services, audit, _logs) = Services::in_memory_with(Arc::new(outbound));
    let runtime = Runtime::new(services).unwrap();
    let policy = format!(
        "[defaults.capabilities.routes]\n[plugins.http-probe.capabilities.http]\n{http_policy}\n\
         [plugins.http-probe.capabilities.secrets]\nnames = [\"client-cert\"]\n"
    );
    let plugin = runtime
        .load(
            &plugin("hostile_http_probe"),
            None,
            &Policy::parse(&policy).unwrap(),
        )
        .unwrap();
    Probe {
        plugin,
        runtime,
        audit,
        server,
    }
}

const LOCAL_ONLY: &str = "hosts = [\"http://*.test:*\"]\nallow_networks = [\"127.0.0.1/32\"]";

impl Probe {
    fn fetch(&self, url: &str) -> (u16, String) {
        let url = url.replace("PORT", &self.server.port.to_string());
        let response = self.plugin.handle(&get(&format!("/?url={url}"))).unwrap();
        (response.status, text(&response.body))
    }

    fn http_audit(&self) -> Vec<String> {
        self.audit
            .events()
            .into_iter()
            .filter(|e| {
                e.kind == AuditKind::HttpRequest && e.capability == Some(CapabilityId::Http)
            })
            .map(|e| e.detail)
            .collect()
    }
}

#[test]
fn allowed_host_on_an_opened_range_is_fetched_and_audited() {
    let p = probe(LOCAL_ONLY);
    let (status, body) = p.fetch("http://good.test:PORT/ok");
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"body":"hello","status":200}"#)
    );
    assert_eq!(p.server.paths(), ["/ok"]);
    let audit = p.http_audit();
    assert_eq!(audit.len(), 1);
    assert!(
        audit[0].starts_with(&format!("GET http://good.test:{}", p.server.port)),
        "{}",
        audit[0]
    );
    assert!(
        audit[0].contains("-> 200") && audit[0].contains("5 bytes"),
        "{}",
        audit[0]
    );
}

#[test]
fn host_not_in_the_manifest_is_denied() {
    let p = probe("hosts = [\"http://*.test:*\", \"https://*.example.net\"]");
    let (status, body) = p.fetch("https://api.example.net/");
    assert_eq!(status, 403);
    assert!(
        body.contains("not declared in the plugin's manifest"),
        "{body}"
    );
}

#[test]
fn declared_host_not_allowed_by_policy_is_denied() {
    let p = probe(LOCAL_ONLY);
    let (status, body) = p.fetch("https://example.com/");
    assert_eq!(status, 403);
    assert!(
        body.contains("not allowed by the operator's policy"),
        "{body}"
    );
    assert!(
        p.http_audit()[0].contains("failed"),
        "denials are audited too"
    );
}

#[test]
fn loopback_literal_is_blocked_unless_opened() {
    let p = probe("hosts = [\"http://127.0.0.1:*\"]");
    let (status, body) = p.fetch("http://127.0.0.1:PORT/ok");
    assert_eq!(status, 403);
    assert!(body.contains("blocked range 127.0.0.0/8"), "{body}");
    assert!(p.server.paths().is_empty(), "no connection was made");
}

#[test]
fn name_resolving_to_loopback_is_blocked() {
    let p = probe("hosts = [\"http://*.test:*\"]");
    let (status, body) = p.fetch("http://loopback.test:PORT/ok");
    assert_eq!(status, 403);
    assert!(body.contains("resolves to 127.0.0.1"), "{body}");
    assert!(p.server.paths().is_empty());
}

#[test]
fn name_resolving_to_cloud_metadata_is_blocked() {
    let p = probe(LOCAL_ONLY);
    let (status, body) = p.fetch("http://metadata.test/latest/meta-data/");
    assert_eq!(status, 403);
    assert!(
        body.contains("169.254.169.254") && body.contains("169.254.0.0/16"),
        "{body}"
    );
}

/// A plugin retrying a blocked request in a tight loop: every attempt is refused, but the
/// refusal records are rate-limited per plugin (the next record written counts those that
/// were not), while a request that goes out is still recorded every time.
#[test]
fn a_blocked_request_retried_in_a_loop_writes_a_bounded_number_of_records() {
    let p = probe(LOCAL_ONLY);
    let attempts = 100;
    let started = Instant::now();
    for _ in 0..attempts {
        let (status, body) = p.fetch("http://metadata.test/latest/meta-data/");
        assert_eq!(status, 403, "{body}");
    }
    let seconds = started.elapsed().as_secs();
    let bound = u64::from(FAULT_RECORDS_PER_SECOND) * (seconds + 2);
    assert!(
        bound < attempts,
        "too slow to tell: {attempts} attempts took {seconds} s"
    );
    let refusals = p.http_audit().len();
    assert!(
        (1..=bound).contains(&(refusals as u64)),
        "{refusals} records for {attempts} refused attempts in {seconds} s"
    );
    let (status, _) = p.fetch("http://good.test:PORT/ok");
    assert_eq!(status, 200);
    let audit = p.http_audit();
    assert_eq!(
        audit.len(),
        refusals + 1,
        "the request that went out is recorded"
    );
    assert!(audit[refusals].contains("-> 200"), "{}", audit[refusals]);
}

#[test]
fn ipv4_mapped_ipv6_literal_is_blocked() {
    let p = probe("hosts = [\"http://[::ffff:127.0.0.1]:*\"]");
    let (status, body) = p.fetch("http://[::ffff:127.0.0.1]:PORT/ok");
    assert_eq!(status, 403);
    assert!(body.contains("blocked range 127.0.0.0/8"), "{body}");
    assert!(p.server.paths().is_empty());
}

#[test]
fn redirect_from_an_allowed_host_to_a_private_address_is_refused() {
    let p = probe(LOCAL_ONLY);
    for target in ["http://metadata.test/", "http://private.test:PORT/ok"] {
        let (status, body) = p.fetch(&format!("http://good.test:PORT/redirect?to={target}"));
        assert_eq!(status, 403, "{target}: {body}");
        assert!(body.contains("blocked range"), "{body}");
    }
    assert!(
        p.server
            .paths()
            .iter()
            .all(|path| path.starts_with("/redirect")),
        "{:?}",
        p.server.paths()
    );
}

#[test]
fn redirect_within_the_allowlist_is_followed_and_loops_are_cut() {
    let p = probe(LOCAL_ONLY);
    let (status, body) = p.fetch("http://good.test:PORT/redirect?to=/ok");
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"body":"hello","status":200}"#)
    );
    let (status, body) = p.fetch("http://good.test:PORT/loop");
    assert_eq!(status, 403);
    assert!(body.contains("more than 5 redirects"), "{body}");
}

#[test]
fn body_over_the_cap_is_too_large() {
    let p = probe(&format!("{LOCAL_ONLY}\nmax_response_bytes = 1024"));
    let (status, body) = p.fetch("http://good.test:PORT/big");
    assert_eq!(status, 413);
    assert!(body.contains("1024-byte cap"), "{body}");
}

#[test]
fn server_slower_than_the_timeout_times_out() {
    let p = probe(&format!("{LOCAL_ONLY}\ntimeout_ms = 300"));
    let started = Instant::now();
    let (status, _) = p.fetch("http://good.test:PORT/slow");
    assert_eq!(status, 504);
    assert!(
        started.elapsed() < Duration::from_millis(1400),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn client_certificate_must_be_a_granted_secret_holding_a_pem_identity() {
    let p = probe(LOCAL_ONLY);
    let (status, body) = p.fetch("http://good.test:PORT/ok&cert=other");
    assert_eq!(status, 403, "{body}");
    p.runtime
        .services()
        .secrets
        .set("http-probe", "client-cert", "not a pem")
        .unwrap();
    let (status, body) = p.fetch("http://good.test:PORT/ok&cert=client-cert");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("not a PEM certificate"), "{body}");
    assert!(
        !body.contains("not a pem"),
        "the secret's bytes are not echoed"
    );
}

/// A TLS server on 127.0.0.1 for `mtls.test` that requires a client certificate signed by
/// the returned CA. Returns (port, CA PEM, client identity PEM: certificate + key).
fn mtls_server() -> (u16, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    use tokio_rustls::rustls;

    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let ca = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let server_cert = CertificateParams::new(vec!["mtls.test".to_string()])
        .unwrap()
        .signed_by(&server_key, &ca)
        .unwrap();
    let client_key = KeyPair::generate().unwrap();
    let client_cert = CertificateParams::new(vec!["plugin-client".to_string()])
        .unwrap()
        .signed_by(&client_key, &ca)
        .unwrap();

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca_cert.der().clone()).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![server_cert.der().clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    continue;
                };
                let mut buffer = [0u8; 4096];
                let _ = tls.read(&mut buffer).await;
                let presented = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .is_some_and(|c| !c.is_empty());
                let body = if presented {
                    "client certificate accepted"
                } else {
                    "no client certificate"
                };
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(reply.as_bytes()).await;
                let _ = tls.shutdown().await;
            }
        });
    });
    let identity = format!("{}{}", client_cert.pem(), client_key.serialize_pem());
    (port, ca_cert.pem(), identity)
}

#[test]
fn mtls_client_certificate_from_a_granted_secret_completes_the_handshake() {
    let (port, ca, identity) = mtls_server();
    let p = probe_trusting(
        "hosts = [\"https://*.test:*\"]\nallow_networks = [\"127.0.0.1/32\"]",
        Some(&ca),
    );
    let url = format!("https://mtls.test:{port}/");
    let (status, body) = p.fetch(&url);
    assert_ne!(
        status, 200,
        "without a client certificate the server refuses the handshake: {body}"
    );
    p.runtime
        .services()
        .secrets
        .set("http-probe", "client-cert", &identity)
        .unwrap();
    let (status, body) = p.fetch(&format!("{url}&cert=client-cert"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        r#"{"body":"client certificate accepted","status":200}"#
    );
    assert!(!body.contains("PRIVATE KEY"));
}

/// Answers a name with `first` on its first lookup and `then` on every later one: what a
/// rebinding attacker's DNS server does between the host's check and a connect.
struct Rebinding {
    first: IpAddr,
    then: IpAddr,
    lookups: Mutex<u32>,
}

impl Resolver for Rebinding {
    fn resolve(&self, _host: &str) -> std::io::Result<Vec<IpAddr>> {
        let mut lookups = self.lookups.lock().unwrap();
        *lookups += 1;
        Ok(vec![if *lookups == 1 { self.first } else { self.then }])
    }
}

/// The probe plugin resolving every name through a fresh [`Rebinding`] resolver that
/// answers 127.0.0.2 (opened by the policy) first and 127.0.0.1 (blocked) afterwards.
fn rebinding_probe() -> (Plugin, Arc<Rebinding>, Runtime) {
    let resolver = Arc::new(Rebinding {
        first: "127.0.0.2".parse().unwrap(),
        then: "127.0.0.1".parse().unwrap(),
        lookups: Mutex::new(0),
    });
    let outbound = Outbound::new(resolver.clone()).unwrap();
    let (services, _audit, _logs) = Services::in_memory_with(Arc::new(outbound));
    let runtime = Runtime::new(services).unwrap();
    let policy = "[defaults.capabilities.routes]\n[plugins.http-probe.capabilities.http]\n\
                  hosts = [\"http://*.test:*\"]\nallow_networks = [\"127.0.0.2/32\"]\n";
    let probe = runtime
        .load(
            &plugin("hostile_http_probe"),
            None,
            &Policy::parse(policy).unwrap(),
        )
        .unwrap();
    (probe, resolver, runtime)
}

#[test]
fn dns_rebinding_cannot_move_a_checked_request_to_a_blocked_address() {
    // The allowed service on 127.0.0.2 and an "internal" one on 127.0.0.1, same port.
    let (allowed, internal) = loop {
        let allowed = TestServer::on(TcpListener::bind("127.0.0.2:0").unwrap());
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", allowed.port)) {
            break (allowed, TestServer::on(listener));
        }
    };
    let port = allowed.port;
    let fetch = |probe: &Plugin, path: &str| {
        let response = probe
            .handle(&get(&format!("/?url=http://rebind.test:{port}{path}")))
            .unwrap();
        (response.status, text(&response.body))
    };

    // The connection goes to the address that was checked: one lookup serves both.
    let (probe, resolver, _runtime) = rebinding_probe();
    let (status, body) = fetch(&probe, "/ok");
    assert_eq!(status, 200, "{body}");
    assert_eq!(allowed.paths(), ["/ok"]);
    assert_eq!(*resolver.lookups.lock().unwrap(), 1);

    // Within one request, a redirect back to the same name is resolved and checked again:
    // the name now rebinds to loopback, which the policy does not open, so the hop is
    // refused before any connection is made.
    let (probe, resolver, _runtime) = rebinding_probe();
    let (status, body) = fetch(
        &probe,
        &format!("/redirect?to=http://rebind.test:{port}/secret"),
    );
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("127.0.0.1"), "{body}");
    assert_eq!(allowed.paths().len(), 2, "{:?}", allowed.paths());
    assert!(allowed.paths()[1].starts_with("/redirect"));
    assert_eq!(*resolver.lookups.lock().unwrap(), 2);
    assert!(
        internal.paths().is_empty(),
        "the internal service was never reached"
    );
}
