//! The checked outbound client. The host resolves names itself, refuses if any resolved
//! address is blocked, and hands reqwest exactly the addresses it checked (no DNS
//! rebinding window). Redirects are followed here, each hop re-checked, at most
//! [`MAX_REDIRECTS`]. One deadline covers the whole exchange; bodies are size-capped.
//! Each grant keeps its own client, so its connections (and TLS sessions) are reused
//! across requests but never shared with another plugin, range set or client identity.

use super::is_transport_header;
use super::network::blocked_range;
use super::pattern::HostPattern;
use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use url::{Host, Url};

/// Most redirects followed for one request.
pub const MAX_REDIRECTS: usize = 5;

/// Turns a host name into addresses. The system resolver in production; tests inject one.
pub trait Resolver: Send + Sync {
    fn resolve(&self, host: &str) -> std::io::Result<Vec<IpAddr>>;
}

/// The operating system's resolver.
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn resolve(&self, host: &str) -> std::io::Result<Vec<IpAddr>> {
        use std::net::ToSocketAddrs;
        Ok((host, 0).to_socket_addrs()?.map(|a| a.ip()).collect())
    }
}

/// Clients kept at once; past it they are all dropped and made again as needed.
const MAX_CLIENTS: usize = 256;

/// What a request may reach: manifest patterns, policy patterns, opened ranges, caps.
pub struct Rules<'a> {
    /// The plugin whose grant this is: its connections are its own.
    pub plugin: &'a str,
    pub wanted: &'a [HostPattern],
    pub allowed: &'a [HostPattern],
    pub open_networks: &'a [IpNet],
    pub timeout: Duration,
    pub max_response_bytes: usize,
}

/// A request as the plugin asked for it.
pub struct Outgoing {
    pub method: reqwest::Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub identity: Option<ClientCert>,
}

/// An mTLS client identity and the SHA-256 of the PEM it was read from, which tells
/// identities apart without keeping their keys around.
pub struct ClientCert {
    pub identity: reqwest::Identity,
    pub pem_sha256: [u8; 32],
}

/// What a kept client was built for: a request reuses it only when all of it matches.
#[derive(Clone, PartialEq, Eq, Hash)]
struct ClientKey {
    plugin: String,
    open_networks: Vec<IpNet>,
    identity: Option<[u8; 32]>,
}

/// The final response.
#[derive(Debug)]
pub struct Incoming {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// `scheme://host[:port]` of the last hop, for the audit record.
    pub origin: String,
}

/// Why a request did not complete. Texts name hosts and ranges, never bodies or secrets.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum OutboundError {
    #[error("{0}")]
    Denied(String),
    #[error("{0}")]
    InvalidInput(String),
    #[error("no response within {0} ms")]
    Timeout(u128),
    #[error("{0}")]
    TooLarge(String),
    #[error("request failed: {0}")]
    Failed(String),
}

/// A blocked resolution, carried through reqwest's error chain.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Blocked(String);

/// Resolves through the host's resolver and refuses names with any blocked address.
struct CheckingResolver {
    inner: Arc<dyn Resolver>,
    open_networks: Vec<IpNet>,
}

impl Resolve for CheckingResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let inner = self.inner.clone();
        let open = self.open_networks.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found = tokio::task::spawn_blocking({
                let host = host.clone();
                move || inner.resolve(&host)
            })
            .await
            .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)??;
            if found.is_empty() {
                return Err(Box::new(Blocked(format!("`{host}` did not resolve"))) as _);
            }
            if let Some((ip, range)) = found
                .iter()
                .find_map(|ip| blocked_range(*ip, &open).map(|r| (ip, r)))
            {
                return Err(Box::new(Blocked(format!(
                    "`{host}` resolves to {ip}, in blocked range {range}"
                ))) as _);
            }
            let addrs: Addrs = Box::new(found.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

/// The outbound HTTP service shared by all plugins of a host.
pub struct Outbound {
    resolver: Arc<dyn Resolver>,
    /// Trust roots added to the public web roots (an operator's internal CA).
    extra_roots: Vec<reqwest::Certificate>,
    /// One client (and so one connection pool) per grant and client identity.
    clients: Mutex<HashMap<ClientKey, reqwest::Client>>,
    /// Always `Some` until dropped; taken in `Drop` to shut down without blocking.
    runtime: Option<tokio::runtime::Runtime>,
}

impl Outbound {
    /// A client using `resolver` for every name.
    pub fn new(resolver: Arc<dyn Resolver>) -> anyhow::Result<Outbound> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("capstan-http")
            .enable_all()
            .build()?;
        Ok(Outbound {
            resolver,
            extra_roots: Vec::new(),
            clients: Mutex::new(HashMap::new()),
            runtime: Some(runtime),
        })
    }

    /// Also trust the CA certificates in `pem` (one or more PEM blocks).
    pub fn trusting(mut self, pem: &[u8]) -> anyhow::Result<Outbound> {
        let roots = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| anyhow::anyhow!("extra CA bundle is not valid PEM certificates: {e}"))?;
        anyhow::ensure!(!roots.is_empty(), "extra CA bundle holds no certificate");
        self.extra_roots.extend(roots);
        Ok(self)
    }

    /// The host's client: the system resolver, plus the CA bundle named by
    /// `CAPSTAN_HTTP_CA_FILE` if set.
    pub fn from_env() -> anyhow::Result<Outbound> {
        let outbound = Outbound::new(Arc::new(SystemResolver))?;
        match std::env::var_os("CAPSTAN_HTTP_CA_FILE") {
            Some(path) => {
                let pem = std::fs::read(&path).map_err(|e| {
                    anyhow::anyhow!("CAPSTAN_HTTP_CA_FILE {}: {e}", path.to_string_lossy())
                })?;
                outbound.trusting(&pem)
            }
            None => Ok(outbound),
        }
    }

    /// Send `request` under `rules`, following redirects, within `rules.timeout`.
    pub fn send(&self, request: Outgoing, rules: &Rules<'_>) -> Result<Incoming, OutboundError> {
        let started = Instant::now();
        let exchange =
            async { tokio::time::timeout(rules.timeout, self.exchange(request, rules)).await };
        let runtime = self.runtime.as_ref().expect("runtime lives until drop");
        match crate::blocking::off_executor(|| runtime.block_on(exchange)) {
            Ok(result) => result,
            Err(_) => Err(OutboundError::Timeout(started.elapsed().as_millis())),
        }
    }

    /// The kept client for `rules`' grant and `identity`, built on first use.
    fn client(
        &self,
        rules: &Rules<'_>,
        identity: Option<ClientCert>,
    ) -> Result<reqwest::Client, OutboundError> {
        let key = ClientKey {
            plugin: rules.plugin.to_string(),
            open_networks: rules.open_networks.to_vec(),
            identity: identity.as_ref().map(|cert| cert.pem_sha256),
        };
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(client) = clients.get(&key) {
            return Ok(client.clone());
        }
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(CheckingResolver {
                inner: self.resolver.clone(),
                open_networks: rules.open_networks.to_vec(),
            }));
        if let Some(cert) = identity {
            builder = builder.identity(cert.identity);
        }
        for root in &self.extra_roots {
            builder = builder.add_root_certificate(root.clone());
        }
        let client = builder
            .build()
            .map_err(|e| OutboundError::Failed(e.to_string()))?;
        if clients.len() >= MAX_CLIENTS {
            clients.clear();
        }
        clients.insert(key, client.clone());
        Ok(client)
    }

    async fn exchange(
        &self,
        request: Outgoing,
        rules: &Rules<'_>,
    ) -> Result<Incoming, OutboundError> {
        let client = self.client(rules, request.identity)?;
        let mut url = Url::parse(&request.url).map_err(|e| {
            OutboundError::InvalidInput(format!("invalid URL `{}`: {e}", request.url))
        })?;
        let mut method = request.method;
        let mut body = request.body;
        let headers = clean_headers(&request.headers)?;
        for _ in 0..=MAX_REDIRECTS {
            check_target(&url, rules)?;
            let mut outgoing = client
                .request(method.clone(), url.clone())
                .headers(headers.clone());
            if let Some(body) = &body {
                outgoing = outgoing.body(body.clone());
            }
            let response = outgoing.send().await.map_err(|e| classify(&url, e))?;
            let status = response.status();
            let location = response.headers().get(reqwest::header::LOCATION).cloned();
            if let (true, Some(location)) = (status.is_redirection(), location) {
                let location = location
                    .to_str()
                    .map_err(|_| OutboundError::Failed("redirect Location is not text".into()))?;
                url = url
                    .join(location)
                    .map_err(|e| OutboundError::Failed(format!("bad redirect Location: {e}")))?;
                if status == 303
                    || (matches!(status.as_u16(), 301 | 302) && method == reqwest::Method::POST)
                {
                    method = reqwest::Method::GET;
                    body = None;
                }
                continue;
            }
            return read_response(response, &url, rules.max_response_bytes).await;
        }
        Err(OutboundError::Denied(format!(
            "more than {MAX_REDIRECTS} redirects"
        )))
    }
}

impl Drop for Outbound {
    /// Shut the runtime down without waiting, so dropping is safe from any context.
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// `scheme://host[:port]` of `url`, for messages and audit (never path or query).
pub fn origin(url: &Url) -> String {
    let host = url.host_str().unwrap_or("");
    match url.port() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    }
}

/// Refuse a target outside manifest ∩ policy, or an IP literal in a blocked range.
fn check_target(url: &Url, rules: &Rules<'_>) -> Result<(), OutboundError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(OutboundError::Denied(format!(
            "scheme `{}` is not allowed",
            url.scheme()
        )));
    }
    if !rules.wanted.iter().any(|p| p.matches(url)) {
        return Err(OutboundError::Denied(format!(
            "{} is not declared in the plugin's manifest",
            origin(url)
        )));
    }
    if !rules.allowed.iter().any(|p| p.matches(url)) {
        return Err(OutboundError::Denied(format!(
            "{} is not allowed by the operator's policy",
            origin(url)
        )));
    }
    let literal = match url.host() {
        Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        _ => None,
    };
    if let Some(ip) = literal
        && let Some(range) = blocked_range(ip, rules.open_networks)
    {
        return Err(OutboundError::Denied(format!(
            "{ip} is in blocked range {range}"
        )));
    }
    Ok(())
}

fn clean_headers(
    headers: &[(String, String)],
) -> Result<reqwest::header::HeaderMap, OutboundError> {
    let mut map = reqwest::header::HeaderMap::new();
    for (name, value) in headers {
        if is_transport_header(name) {
            continue;
        }
        let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| OutboundError::InvalidInput(format!("invalid header name `{name}`")))?;
        let value = reqwest::header::HeaderValue::from_str(value).map_err(|_| {
            OutboundError::InvalidInput(format!("invalid value for header `{name}`"))
        })?;
        map.append(name, value);
    }
    Ok(map)
}

fn classify(url: &Url, error: reqwest::Error) -> OutboundError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(current) = source {
        if let Some(blocked) = current.downcast_ref::<Blocked>() {
            return OutboundError::Denied(blocked.0.clone());
        }
        source = current.source();
    }
    OutboundError::Failed(format!("{}: {}", origin(url), error.without_url()))
}

async fn read_response(
    mut response: reqwest::Response,
    url: &Url,
    cap: usize,
) -> Result<Incoming, OutboundError> {
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .filter(|(name, _)| !is_transport_header(name.as_str()))
        .map(|(name, value)| {
            (
                name.to_string(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    let too_large = || OutboundError::TooLarge(format!("response body exceeds the {cap}-byte cap"));
    if response
        .content_length()
        .is_some_and(|len| len > cap as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| classify(url, e))? {
        if body.len() + chunk.len() > cap {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Incoming {
        status,
        headers,
        body,
        origin: origin(url),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_and_client_owned_headers_are_stripped() {
        let headers = [
            ("Connection", "close"),
            ("Transfer-Encoding", "chunked"),
            ("Host", "evil.example"),
            ("Proxy-Authorization", "x"),
            ("Accept", "text/plain"),
        ]
        .map(|(n, v)| (n.to_string(), v.to_string()));
        let map = clean_headers(&headers).unwrap();
        assert_eq!(map.len(), 1);
        assert_eq!(map["accept"], "text/plain");
    }

    /// A keep-alive HTTP/1.1 server answering each request with the number of the
    /// connection it came on (1 for the first accepted, and so on).
    fn numbering_server() -> SocketAddr {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for (number, stream) in (1..).zip(listener.incoming()) {
                let Ok(mut stream) = stream else { return };
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut line = String::new();
                    let body = format!("{number}");
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    loop {
                        line.clear();
                        match reader.read_line(&mut line) {
                            Ok(0) | Err(_) => return,
                            Ok(_) if line == "\r\n" => {
                                if stream.write_all(answer.as_bytes()).is_err() {
                                    return;
                                }
                            }
                            Ok(_) => {}
                        }
                    }
                });
            }
        });
        address
    }

    fn get(address: SocketAddr) -> Outgoing {
        Outgoing {
            method: reqwest::Method::GET,
            url: format!("http://{address}/"),
            headers: Vec::new(),
            body: None,
            identity: None,
        }
    }

    #[test]
    fn a_grant_reuses_its_connection_and_another_plugin_gets_its_own() {
        let address = numbering_server();
        let outbound = Outbound::new(Arc::new(SystemResolver)).unwrap();
        let patterns = [HostPattern::parse("http://127.0.0.1:*").unwrap()];
        let loopback: [IpNet; 1] = ["127.0.0.0/8".parse().unwrap()];
        let rules = |plugin| Rules {
            plugin,
            wanted: &patterns,
            allowed: &patterns,
            open_networks: &loopback,
            timeout: Duration::from_secs(10),
            max_response_bytes: 1024,
        };
        let connection = |plugin| {
            let answer = outbound.send(get(address), &rules(plugin)).unwrap();
            assert_eq!(answer.status, 200);
            String::from_utf8(answer.body).unwrap()
        };
        // A finished connection goes back to the pool from the client's own threads, so a
        // request sent straight after may find it not back yet and open another: reuse
        // shows as fewer connections than requests, not as exactly one.
        let requests = 10;
        let ones: std::collections::BTreeSet<String> =
            (0..requests).map(|_| connection("one")).collect();
        assert!(
            ones.len() < requests,
            "one plugin's requests share connections: {ones:?} for {requests} requests"
        );
        let two = connection("two");
        assert!(
            !ones.contains(&two),
            "another plugin never rides the first one's connections: {two} in {ones:?}"
        );
        let narrower = Rules {
            open_networks: &[],
            ..rules("one")
        };
        let refused = outbound.send(get(address), &narrower).unwrap_err();
        assert!(
            matches!(&refused, OutboundError::Denied(why) if why.contains("blocked range")),
            "a grant without the range is refused, kept connection or not: {refused:?}"
        );
    }

    #[test]
    fn invalid_header_is_named() {
        let error = clean_headers(&[("bad header".into(), "v".into())]).unwrap_err();
        assert_eq!(
            error,
            OutboundError::InvalidInput("invalid header name `bad header`".into())
        );
    }
}
