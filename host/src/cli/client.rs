//! The admin API client behind `capstan plugin|policy|audit|logs` and remote `secret`:
//! where the server is, the token (CAPSTAN_ADMIN_TOKEN or the data directory's
//! `admin.token`), and errors that carry the API's own `{code, message}`.

use super::state::DataDir;
use crate::server::auth::TOKEN_FILE;
use reqwest::Method;
use reqwest::blocking::{RequestBuilder, Response};
use serde::de::DeserializeOwned;
use std::time::Duration;

/// Longest a request may take; installs compile the component before answering.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// How to reach a running `capstan serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct Remote {
    /// Base URL of the server.
    #[arg(long, env = "CAPSTAN_SERVER", default_value = "http://127.0.0.1:7878")]
    pub server: String,
    /// Where to find `admin.token` when CAPSTAN_ADMIN_TOKEN is unset.
    #[command(flatten)]
    pub data: DataDir,
    /// Print the API's JSON answer instead of a summary.
    #[arg(long)]
    pub json: bool,
}

/// An error answer from the API.
#[derive(Debug, thiserror::Error)]
#[error("{message} ({code}, HTTP {status})")]
pub struct ApiFailure {
    pub status: u16,
    pub code: String,
    pub message: String,
}

/// A connection to the admin API.
pub struct Client {
    base: String,
    token: String,
    http: reqwest::blocking::Client,
    pub json: bool,
}

impl Client {
    /// A client for `remote`, failing if no token can be found.
    pub fn new(remote: &Remote) -> anyhow::Result<Client> {
        Self::with_token(remote, None)
    }

    /// Like [`Client::new`], sending `token` (e.g. a publish token) when given.
    pub fn with_token(remote: &Remote, token: Option<String>) -> anyhow::Result<Client> {
        let token = match token.map_or_else(|| std::env::var("CAPSTAN_ADMIN_TOKEN"), Ok) {
            Ok(token) => token,
            Err(_) => {
                let path = remote.data.path.join(TOKEN_FILE);
                std::fs::read_to_string(&path).map_err(|e| {
                    anyhow::anyhow!(
                        "no admin token: set CAPSTAN_ADMIN_TOKEN or point --data-dir at the \
                         server's data directory ({}: {e})",
                        path.display()
                    )
                })?
            }
        };
        let http = reqwest::blocking::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()?;
        Ok(Client {
            base: remote.server.trim_end_matches('/').to_string(),
            token: token.trim().to_string(),
            http,
            json: remote.json,
        })
    }

    /// A request to `path` under `/admin/v1`, with the token.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}/admin/v1{path}", self.base))
            .bearer_auth(&self.token)
    }

    /// Send `request`; an error status becomes an [`ApiFailure`] with the API's message.
    pub fn send(&self, request: RequestBuilder) -> anyhow::Result<Response> {
        let response = request
            .send()
            .map_err(|e| anyhow::anyhow!("cannot reach {}: {e}", self.base))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().unwrap_or_default();
        let (code, message) = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|body| {
                Some((
                    body["code"].as_str()?.to_string(),
                    body["message"].as_str()?.to_string(),
                ))
            })
            .unwrap_or_else(|| ("http-error".to_string(), text));
        Err(ApiFailure {
            status: status.as_u16(),
            code,
            message,
        }
        .into())
    }

    /// Send `request` and decode its JSON answer, printing it raw if `--json` was given.
    pub fn fetch<T: DeserializeOwned>(&self, request: RequestBuilder) -> anyhow::Result<T> {
        let text = self.send(request)?.text()?;
        if self.json {
            println!("{text}");
        }
        serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("unexpected answer: {e}"))
    }
}
