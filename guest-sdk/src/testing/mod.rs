//! In-process doubles for the host's capabilities, so plugins are unit-tested with plain
//! `cargo test` on the native target. State is per thread (each `#[test]` runs on its own
//! thread), so tests do not see each other's keys, secrets or requests.
//!
//! ```ignore
//! use capstan_guest::{testing, prelude::*};
//!
//! #[test]
//! fn counts() {
//!     testing::reset();
//!     testing::set_secret("token", "s3cret");
//!     testing::respond("https://api.example.com/", 200, "{}");
//!     let response = MyPlugin::handle(Request::new("GET", "/"));
//!     assert_eq!(response.status, 200);
//!     assert_eq!(testing::http_requests().len(), 1);
//! }
//! ```

pub mod kv;

use crate::Error;
use crate::http::{Request as HttpRequest, Response as HttpResponse};
use crate::log::Level;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

#[derive(Default)]
struct State {
    kv: BTreeMap<String, Vec<u8>>,
    secrets: HashMap<String, String>,
    responses: Vec<(String, HttpResponse)>,
    requests: Vec<HttpRequest>,
    logs: Vec<(Level, String)>,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

fn with<R>(f: impl FnOnce(&mut State) -> R) -> R {
    STATE.with(|state| f(&mut state.borrow_mut()))
}

/// Forget every key, secret, canned response, recorded request and log line.
pub fn reset() {
    with(|s| *s = State::default());
}

/// Make secret `name` readable with `value` (as if declared, granted and set).
pub fn set_secret(name: &str, value: &str) {
    with(|s| s.secrets.insert(name.to_string(), value.to_string()));
}

/// Answer outbound requests whose URL starts with `url_prefix` with `status` and `body`.
/// Later registrations win over earlier ones; an unmatched request gets `denied`, as an
/// ungranted host would on the real host.
pub fn respond(url_prefix: &str, status: u16, body: impl Into<Vec<u8>>) {
    let response = HttpResponse {
        status,
        headers: Vec::new(),
        body: body.into(),
    };
    with(|s| s.responses.push((url_prefix.to_string(), response)));
}

/// Every outbound request the plugin sent, in order.
pub fn http_requests() -> Vec<HttpRequest> {
    with(|s| s.requests.clone())
}

/// Every log line the plugin wrote, in order.
pub fn logs() -> Vec<(Level, String)> {
    with(|s| s.logs.clone())
}

/// A copy of the plugin's key-value store.
pub fn kv_snapshot() -> BTreeMap<String, Vec<u8>> {
    with(|s| s.kv.clone())
}

pub(crate) fn record_log(level: Level, message: &str) {
    with(|s| s.logs.push((level, message.to_string())));
}

pub(crate) fn secret(name: &str) -> Result<String, Error> {
    with(|s| s.secrets.get(name).cloned()).ok_or_else(|| {
        Error::Denied(format!(
            "secret `{name}` is not set in capstan_guest::testing"
        ))
    })
}

pub(crate) fn http_send(request: &HttpRequest) -> Result<HttpResponse, Error> {
    with(|s| {
        s.requests.push(request.clone());
        s.responses
            .iter()
            .rev()
            .find(|(prefix, _)| request.url.starts_with(prefix.as_str()))
            .map(|(_, response)| response.clone())
            .ok_or_else(|| {
                Error::Denied(format!("no test response registered for {}", request.url))
            })
    })
}
