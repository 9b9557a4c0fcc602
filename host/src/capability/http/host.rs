//! Host side of the WIT `http` interface: caps, mTLS identity from a granted secret, the
//! checked client, and one audit record per request.

use super::client::{OutboundError, Outgoing, Rules, origin};
use crate::audit::{AuditEvent, AuditKind};
use crate::bindings::capstan::plugin::http::{Host, Method, Request, Response};
use crate::bindings::capstan::plugin::types::Error;
use crate::capability::CapabilityId;
use crate::runtime::CallState;
use std::time::{Duration, Instant};
use wasmtime::component::HasData;

/// Marker selecting the granted implementation when linking.
pub(crate) struct Granted;

impl HasData for Granted {
    type Data<'a> = &'a mut CallState;
}

pub(crate) fn view(state: &mut CallState) -> &mut CallState {
    state
}

fn method(method: Method) -> reqwest::Method {
    match method {
        Method::Get => reqwest::Method::GET,
        Method::Head => reqwest::Method::HEAD,
        Method::Post => reqwest::Method::POST,
        Method::Put => reqwest::Method::PUT,
        Method::Patch => reqwest::Method::PATCH,
        Method::Delete => reqwest::Method::DELETE,
        Method::Options => reqwest::Method::OPTIONS,
    }
}

impl CallState {
    /// The mTLS identity held in granted secret `name`.
    fn client_identity(&mut self, name: &str) -> Result<reqwest::Identity, Error> {
        let plugin = self.plugin.clone();
        let granted = plugin
            .grants
            .secrets
            .granted()
            .is_some_and(|g| g.names.contains(name));
        if !granted {
            return Err(Error::Denied(format!(
                "client-cert secret `{name}` is not granted to plugin `{}`",
                plugin.id
            )));
        }
        let pem = match plugin.services.secrets.get(&plugin.id, name) {
            Ok(Some(pem)) => pem,
            Ok(None) => return Err(Error::NotFound),
            Err(error) => {
                tracing::error!(plugin = %plugin.id, "reading client-cert secret `{name}` failed: {error}");
                return Err(Error::Internal("secret store unavailable".into()));
            }
        };
        self.log.redact(&pem);
        reqwest::Identity::from_pem(pem.as_bytes()).map_err(|_| {
            Error::InvalidInput(format!(
                "secret `{name}` is not a PEM certificate and private key"
            ))
        })
    }
}

impl Host for &mut CallState {
    #[tracing::instrument(level = "debug", skip_all, fields(plugin = %self.plugin.id))]
    fn send(&mut self, request: Request) -> Result<Response, Error> {
        let plugin = self.plugin.clone();
        let grant = plugin
            .grants
            .http
            .granted()
            .expect("http is linked to the real host only when granted");
        let verb = method(request.method);
        let target = url::Url::parse(&request.url)
            .map_or_else(|_| "an invalid URL".to_string(), |u| origin(&u));
        let audit = |detail: String| {
            plugin.services.audit.record(AuditEvent::new(
                &plugin.id,
                AuditKind::HttpRequest,
                Some(CapabilityId::Http),
                format!("{verb} {target} {detail}"),
            ));
        };
        let body_len = request.body.as_ref().map_or(0, Vec::len);
        if body_len > grant.max_request_bytes as usize {
            audit(format!(
                "refused: request body of {body_len} bytes over the cap"
            ));
            return Err(Error::TooLarge(format!(
                "request body is {body_len} bytes; the cap is {}",
                grant.max_request_bytes
            )));
        }
        let identity = match &request.client_cert {
            Some(name) => Some(
                self.client_identity(name)
                    .inspect_err(|e| audit(format!("refused: {e:?}")))?,
            ),
            None => None,
        };
        let wanted_ms = request
            .timeout_ms
            .unwrap_or(grant.timeout_ms)
            .min(grant.timeout_ms);
        let rules = Rules {
            wanted: &grant.wanted,
            allowed: &grant.allowed,
            open_networks: &grant.allow_networks,
            timeout: Duration::from_millis(u64::from(wanted_ms)),
            max_response_bytes: grant.max_response_bytes as usize,
        };
        let outgoing = Outgoing {
            method: verb.clone(),
            url: request.url,
            headers: request.headers,
            body: request.body,
            identity,
        };
        let started = Instant::now();
        let result = plugin.services.outbound.send(outgoing, &rules);
        let elapsed = started.elapsed().as_millis();
        match result {
            Ok(incoming) => {
                audit(format!(
                    "-> {} ({}), {} bytes, {elapsed} ms",
                    incoming.status,
                    incoming.origin,
                    incoming.body.len()
                ));
                Ok(Response {
                    status: incoming.status,
                    headers: incoming.headers,
                    body: incoming.body,
                })
            }
            Err(error) => {
                audit(format!("failed after {elapsed} ms: {error}"));
                Err(match error {
                    OutboundError::Denied(why) => Error::Denied(why),
                    OutboundError::InvalidInput(why) => Error::InvalidInput(why),
                    OutboundError::Timeout(_) => Error::Timeout,
                    OutboundError::TooLarge(why) => Error::TooLarge(why),
                    OutboundError::Failed(why) => Error::Internal(why),
                })
            }
        }
    }
}
