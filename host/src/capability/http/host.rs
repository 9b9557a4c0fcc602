//! Host side of the WIT `http` interface: caps, mTLS identity from a granted secret, the
//! checked client under the call's deadline, and one audit record per request.

use super::Grant;
use super::client::{ClientCert, Outbound, OutboundError, Outgoing, Rules, origin};
use crate::audit::AuditKind;
use crate::bindings::capstan::plugin::http::{Host, Method, Request, Response};
use crate::bindings::capstan::plugin::types::Error;
use crate::capability::log::Redactions;
use crate::capability::{CallScope, CapabilityId, secrets};
use sha2::Digest;
use std::time::{Duration, Instant};

/// The granted outbound client, seen from one call.
pub struct HttpHost<'a> {
    pub scope: CallScope<'a>,
    pub grant: &'a Grant,
    pub outbound: &'a Outbound,
    /// For client certificates: the secret store and the plugin's secrets grant, if any.
    pub secrets: &'a crate::secrets::Secrets,
    pub secrets_grant: Option<&'a secrets::Grant>,
    pub redactions: &'a mut Redactions,
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

impl HttpHost<'_> {
    /// The mTLS identity held in granted secret `name`.
    fn client_identity(&mut self, name: &str) -> Result<ClientCert, Error> {
        let plugin = self.scope.plugin;
        if !self.secrets_grant.is_some_and(|g| g.names.contains(name)) {
            return Err(Error::Denied(format!(
                "client-cert secret `{name}` is not granted to plugin `{plugin}`"
            )));
        }
        let pem = match self.secrets.get(plugin, name) {
            Ok(Some(pem)) => pem,
            Ok(None) => return Err(Error::NotFound),
            Err(error) => {
                tracing::error!(plugin = %plugin, "reading client-cert secret `{name}` failed: {error}");
                return Err(Error::Internal("secret store unavailable".into()));
            }
        };
        self.redactions.add(&pem);
        let identity = reqwest::Identity::from_pem(pem.as_bytes()).map_err(|_| {
            Error::InvalidInput(format!(
                "secret `{name}` is not a PEM certificate and private key"
            ))
        })?;
        Ok(ClientCert {
            identity,
            pem_sha256: sha2::Sha256::digest(pem.as_bytes()).into(),
        })
    }
}

impl Host for HttpHost<'_> {
    #[tracing::instrument(level = "debug", skip_all, fields(plugin = %self.scope.plugin))]
    fn send(&mut self, request: Request) -> Result<Response, Error> {
        let scope = self.scope;
        let grant = self.grant;
        let verb = method(request.method);
        let target = url::Url::parse(&request.url)
            .map_or_else(|_| "an invalid URL".to_string(), |u| origin(&u));
        // A request that went out is always recorded; one refused before it left can be
        // retried in a tight loop, so its records are rate-limited.
        let audit = |detail: String| {
            scope.audit(
                AuditKind::HttpRequest,
                CapabilityId::Http,
                format!("{verb} {target} {detail}"),
            );
        };
        let refused = |detail: String| {
            scope.fault(
                AuditKind::HttpRequest,
                CapabilityId::Http,
                format!("{verb} {target} {detail}"),
            );
        };
        let body_len = request.body.as_ref().map_or(0, Vec::len);
        if body_len > grant.max_request_bytes as usize {
            refused(format!(
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
                    .inspect_err(|e| refused(format!("refused: {e:?}")))?,
            ),
            None => None,
        };
        let wanted_ms = request
            .timeout_ms
            .unwrap_or(grant.timeout_ms)
            .min(grant.timeout_ms);
        let rules = Rules {
            plugin: scope.plugin,
            wanted: &grant.wanted,
            allowed: &grant.allowed,
            open_networks: &grant.allow_networks,
            timeout: scope
                .deadline
                .bound(Duration::from_millis(u64::from(wanted_ms))),
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
        let result = self.outbound.send(outgoing, &rules);
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
                let detail = format!("failed after {elapsed} ms: {error}");
                match error {
                    OutboundError::Denied(_) | OutboundError::InvalidInput(_) => refused(detail),
                    _ => audit(detail),
                }
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
