//! `http.outbound`: requests to hosts in manifest ∩ policy, through a client that
//! resolves and checks every address itself, re-checks every redirect, caps time and
//! size, and audits every request (those refused before they leave, rate-limited).

mod client;
mod deny;
mod host;
mod network;
mod pattern;

pub use client::{Incoming, Outbound, OutboundError, Outgoing, Resolver, Rules, SystemResolver};
pub use host::HttpHost;
pub use network::blocked_range;
pub use pattern::HostPattern;

/// Headers the transport owns, never copied between a plugin and the wire in either
/// direction: hop-by-hop headers and message framing (the host sets length and host).
const TRANSPORT_HEADERS: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "proxy-authenticate",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
];

/// Whether `name` is a header the transport owns (see [`TRANSPORT_HEADERS`]).
fn is_transport_header(name: &str) -> bool {
    TRANSPORT_HEADERS
        .iter()
        .any(|owned| name.eq_ignore_ascii_case(owned))
}

use super::{CallScope, Capability, CapabilityId, CapabilityInfo, Decision, Direction, Import};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use wasmtime::component::{HasData, Linker};

/// The `http.outbound` capability.
pub struct Http;

/// Hard ceiling (and default) for one request's deadline.
pub const MAX_TIMEOUT_MS: u32 = 30_000;
/// Hard ceiling (and default) for a response body.
pub const MAX_RESPONSE_BYTES: u32 = 5 * 1024 * 1024;
/// Default cap on a request body.
pub const DEFAULT_MAX_REQUEST_BYTES: u32 = 1024 * 1024;

/// Manifest `[capabilities.http]`: the hosts the plugin wants to reach.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub hosts: Vec<HostPattern>,
}

/// Policy `[…capabilities.http]`: the hosts the operator allows, ranges it opens, caps.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Allowed {
    /// Host patterns; an empty list allows nothing.
    pub hosts: Vec<HostPattern>,
    /// Otherwise-blocked ranges (e.g. `10.0.0.0/8`) the operator opens on purpose.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_networks: Vec<IpNet>,
    pub timeout_ms: Option<u32>,
    pub max_response_bytes: Option<u32>,
    pub max_request_bytes: Option<u32>,
}

/// What a plugin may reach: a URL must match a manifest pattern AND a policy pattern.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Grant {
    pub wanted: Vec<HostPattern>,
    pub allowed: Vec<HostPattern>,
    pub allow_networks: Vec<IpNet>,
    pub timeout_ms: u32,
    pub max_response_bytes: u32,
    pub max_request_bytes: u32,
}

impl Grant {
    /// The manifest's patterns that the policy lets through (some URL matches both).
    pub fn reachable(&self) -> Vec<&HostPattern> {
        self.wanted
            .iter()
            .filter(|w| self.allowed.iter().any(|a| a.overlaps(w)))
            .collect()
    }

    /// The reachable patterns that still cover many hosts after the intersection: `*.`
    /// wildcards on both sides.
    pub fn wildcards(&self) -> Vec<&HostPattern> {
        self.wanted
            .iter()
            .filter(|w| {
                w.is_wildcard()
                    && self
                        .allowed
                        .iter()
                        .any(|a| a.is_wildcard() && a.overlaps(w))
            })
            .collect()
    }
}

impl Capability for Http {
    const INFO: CapabilityInfo = CapabilityInfo {
        id: CapabilityId::Http,
        name: "http.outbound",
        key: "http",
        interface: "http",
        standard: &[],
        exports: &[],
        direction: Direction::Import,
    };

    type Request = Request;
    type Allowed = Allowed;
    type Grant = Grant;

    fn grant(request: &Request, allowed: &Allowed) -> Result<Grant, String> {
        if allowed.hosts.is_empty() {
            return Err("the policy allows no hosts".into());
        }
        let overlap = request
            .hosts
            .iter()
            .any(|wanted| allowed.hosts.iter().any(|a| a.overlaps(wanted)));
        if !overlap {
            return Err("none of the requested hosts is allowed by the policy".into());
        }
        Ok(Grant {
            wanted: request.hosts.clone(),
            allowed: allowed.hosts.clone(),
            allow_networks: allowed.allow_networks.clone(),
            timeout_ms: allowed.timeout_ms.unwrap_or(MAX_TIMEOUT_MS),
            max_response_bytes: allowed.max_response_bytes.unwrap_or(MAX_RESPONSE_BYTES),
            max_request_bytes: allowed
                .max_request_bytes
                .unwrap_or(DEFAULT_MAX_REQUEST_BYTES),
        })
    }

    fn check_allowed(allowed: &Allowed) -> Result<(), String> {
        if allowed
            .timeout_ms
            .is_some_and(|t| t == 0 || t > MAX_TIMEOUT_MS)
        {
            return Err(format!("timeout_ms must be 1..={MAX_TIMEOUT_MS}"));
        }
        if allowed
            .max_response_bytes
            .is_some_and(|n| n > MAX_RESPONSE_BYTES)
        {
            return Err(format!(
                "max_response_bytes must be at most {MAX_RESPONSE_BYTES}"
            ));
        }
        if allowed
            .max_request_bytes
            .is_some_and(|n| n > MAX_RESPONSE_BYTES)
        {
            return Err(format!(
                "max_request_bytes must be at most {MAX_RESPONSE_BYTES}"
            ));
        }
        Ok(())
    }
}

impl Import for Http {
    type View<'a> = HttpHost<'a>;

    fn link<T: 'static>(
        linker: &mut Linker<T>,
        decision: &Decision<Grant>,
        view: fn(&mut T) -> HttpHost<'_>,
        scope: fn(&mut T) -> CallScope<'_>,
    ) -> wasmtime::Result<()> {
        use crate::bindings::capstan::plugin::http::add_to_linker;
        match decision {
            Decision::Granted { .. } => add_to_linker::<T, Http>(linker, view),
            _ => add_to_linker::<T, deny::Withheld>(linker, scope),
        }
    }
}

impl HasData for Http {
    type Data<'a> = HttpHost<'a>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::capstan::plugin::http::{Host, Method};
    use crate::bindings::capstan::plugin::types::Error;
    use crate::capability::log::Redactions;
    use crate::capability::scope::testing::TestScope;
    use std::sync::Arc;

    fn decide(manifest: &str, policy: &str) -> Decision<Grant> {
        crate::capability::scope::testing::grants(manifest, policy).http
    }

    /// A resolver that must never be asked: the tests below are refused before any lookup.
    struct NoLookups;

    impl Resolver for NoLookups {
        fn resolve(&self, host: &str) -> std::io::Result<Vec<std::net::IpAddr>> {
            panic!("resolved {host} for a request that should have been refused")
        }
    }

    fn request(url: &str) -> crate::bindings::capstan::plugin::http::Request {
        crate::bindings::capstan::plugin::http::Request {
            method: Method::Get,
            url: url.into(),
            headers: Vec::new(),
            body: None,
            timeout_ms: None,
            client_cert: None,
        }
    }

    #[test]
    fn the_intersection_of_manifest_and_policy_hosts_is_all_a_plugin_reaches() {
        let decision = decide(
            "[http]\nhosts = [\"https://api.example.com\", \"https://other.example.com\"]\n",
            "[http]\nhosts = [\"https://*.example.com\"]\n",
        );
        let outbound = Outbound::new(Arc::new(NoLookups)).unwrap();
        let vault = crate::secrets::Secrets::new(
            Arc::new(crate::storage::MemoryKv::default()),
            crate::secrets::Keyring::single(crate::secrets::MasterKey::generate().0),
        );
        let test = TestScope::new();
        let mut redactions = Redactions::default();
        let mut host = HttpHost {
            scope: test.scope(),
            grant: decision.granted().unwrap(),
            outbound: &outbound,
            secrets: &vault,
            secrets_grant: None,
            redactions: &mut redactions,
        };
        let refused = host
            .send(request("https://elsewhere.example.com/"))
            .unwrap_err();
        assert!(matches!(refused, Error::Denied(_)), "{refused:?}");
        let loopback = host.send(request("https://127.0.0.1/")).unwrap_err();
        assert!(matches!(loopback, Error::Denied(_)), "{loopback:?}");
        let cert = host
            .send(crate::bindings::capstan::plugin::http::Request {
                client_cert: Some("cert".into()),
                ..request("https://api.example.com/")
            })
            .unwrap_err();
        assert!(
            matches!(cert, Error::Denied(_)),
            "ungranted client-cert secret: {cert:?}"
        );
    }

    #[test]
    fn withheld_http_answers_denied_and_audits() {
        assert!(matches!(
            decide(
                "[http]\nhosts = [\"https://api.example.com\"]\n",
                "[http]\nhosts = [\"https://other.org\"]\n"
            ),
            Decision::Denied { .. }
        ));
        let test = TestScope::new();
        let mut scope = test.scope();
        assert!(matches!(
            Host::send(&mut scope, request("https://api.example.com/")),
            Err(Error::Denied(_))
        ));
        assert_eq!(test.denials_of(CapabilityId::Http), 1);
    }
}
