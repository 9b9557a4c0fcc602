//! `http.outbound`: requests to hosts in manifest ∩ policy, through a client that
//! resolves and checks every address itself, re-checks every redirect, caps time and
//! size, and audits every request.

mod client;
mod host;
mod network;
mod pattern;

pub use client::{Incoming, Outbound, OutboundError, Outgoing, Resolver, Rules, SystemResolver};
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
pub fn is_transport_header(name: &str) -> bool {
    TRANSPORT_HEADERS
        .iter()
        .any(|owned| name.eq_ignore_ascii_case(owned))
}

use super::{CapabilityId, CapabilityInfo, Decision, Direction};
use crate::runtime::CallState;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use wasmtime::component::Linker;

/// Registry entry.
pub const INFO: CapabilityInfo = CapabilityInfo {
    id: CapabilityId::Http,
    name: "http.outbound",
    key: "http",
    interface: "http",
    direction: Direction::Import,
};

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

impl Allowed {
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self
            .timeout_ms
            .is_some_and(|t| t == 0 || t > MAX_TIMEOUT_MS)
        {
            return Err(format!("timeout_ms must be 1..={MAX_TIMEOUT_MS}"));
        }
        if self
            .max_response_bytes
            .is_some_and(|n| n > MAX_RESPONSE_BYTES)
        {
            return Err(format!(
                "max_response_bytes must be at most {MAX_RESPONSE_BYTES}"
            ));
        }
        if self
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

/// manifest ∩ policy for outbound hosts.
pub fn grant(request: &Request, allowed: &Allowed) -> Result<Grant, String> {
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

/// Link the real client when granted, the deny stub otherwise.
pub(crate) fn link(
    linker: &mut Linker<CallState>,
    decision: &Decision<Grant>,
) -> wasmtime::Result<()> {
    use crate::bindings::capstan::plugin::http::add_to_linker;
    match decision {
        Decision::Granted { .. } => add_to_linker::<CallState, host::Granted>(linker, host::view),
        _ => add_to_linker::<CallState, super::deny::DenyAll>(linker, super::deny::view),
    }
}
