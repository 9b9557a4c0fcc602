//! In-process doubles for the host's capabilities, so plugins are unit-tested with plain
//! `cargo test` on the native target. They follow the host's rules: the plugin's own
//! `capstan.toml` (found through `CARGO_MANIFEST_DIR`) says what is declared, anything
//! else is `denied` exactly as on the host, and kv applies the host's default caps and the
//! manifest's quota. State is per thread (each `#[test]` runs on its own thread), so tests
//! do not see each other's keys, secrets or requests.
//!
//! ```ignore
//! use capstan_guest::{testing, prelude::*};
//!
//! #[test]
//! fn counts() {
//!     testing::reset();
//!     testing::set_secret("token", "s3cret");
//!     testing::respond("https://api.example.com/", 200, "{}");
//!     let response = MyPlugin::handle(Request::new("GET", "/")).unwrap();
//!     assert_eq!(response.status, 200);
//!     assert_eq!(testing::http_requests().len(), 1);
//! }
//! ```

pub mod kv;
mod manifest;
pub(crate) mod sql;

use crate::Error;
use crate::http::{Request as HttpRequest, Response as HttpResponse};
use crate::log::Level;
use manifest::Declared;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A capability the doubles can withhold, as an operator's policy would.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Capability {
    Kv,
    Http,
    Secrets,
    Config,
    Jobs,
    Sql,
    Events,
}

impl Capability {
    fn name(self) -> &'static str {
        match self {
            Capability::Kv => "storage.kv",
            Capability::Http => "http.outbound",
            Capability::Secrets => "secrets",
            Capability::Config => "config",
            Capability::Jobs => "jobs",
            Capability::Sql => "sql",
            Capability::Events => "events",
        }
    }
}

#[derive(Default)]
struct State {
    kv: BTreeMap<String, Vec<u8>>,
    secrets: HashMap<String, String>,
    responses: Vec<(String, HttpResponse)>,
    requests: Vec<HttpRequest>,
    logs: Vec<(Level, String)>,
    withheld: BTreeSet<Capability>,
    declared: Option<Declared>,
    config: serde_json::Map<String, serde_json::Value>,
    cancel_requested: bool,
    heartbeats: Vec<Option<String>>,
    published: Vec<Published>,
    answers: HashMap<String, Vec<u8>>,
}

/// An event the plugin published under test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub topic: String,
    pub payload: Vec<u8>,
    pub content_type: String,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

fn with<R>(f: impl FnOnce(&mut State) -> R) -> R {
    STATE.with(|state| f(&mut state.borrow_mut()))
}

impl State {
    /// What the plugin's manifest declares, read once per test.
    fn declared(&mut self) -> &Declared {
        self.declared.get_or_insert_with(Declared::load)
    }

    /// `Err(denied)` with the host's sentence unless `capability` is declared and not
    /// withheld.
    fn check(&mut self, capability: Capability) -> Result<(), Error> {
        let declared = self.declared().declares(capability);
        if !declared || self.withheld.contains(&capability) {
            return Err(Error::Denied(format!(
                "{} is not granted to plugin `{}`",
                capability.name(),
                self.declared().id
            )));
        }
        Ok(())
    }
}

/// Forget every key, secret, canned response, recorded request, log line, withholding and
/// SQL table.
pub fn reset() {
    with(|s| *s = State::default());
    sql::reset();
}

/// Answer as if the operator's policy withheld `capability`: every call is `denied`.
pub fn withhold(capability: Capability) {
    with(|s| s.withheld.insert(capability));
}

/// Use manifest text `toml` instead of the crate's `capstan.toml` for this test.
pub fn use_manifest(toml: &str) {
    with(|s| s.declared = Some(Declared::parse(toml)));
}

/// Set secret `name` to `value`, as an operator would (the plugin still reads only names
/// its manifest declares).
pub fn set_secret(name: &str, value: &str) {
    with(|s| s.secrets.insert(name.to_string(), value.to_string()));
}

/// Set the plugin's settings object, as an operator would (keys left out read as the
/// manifest schema's defaults).
pub fn set_config(values: serde_json::Value) {
    let serde_json::Value::Object(values) = values else {
        panic!("capstan_guest::testing::set_config takes a JSON object");
    };
    with(|s| s.config = values);
}

/// Answer outbound requests whose URL starts with `url_prefix` with `status` and `body`.
/// Later registrations win over earlier ones.
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

/// Ask the running job to stop, as an operator's cancel would: `job::cancelled()` returns
/// true from now on (if the manifest declares jobs and they are not withheld).
pub fn request_cancel() {
    with(|s| s.cancel_requested = true);
}

/// The progress of every heartbeat the job sent, in order.
pub fn heartbeats() -> Vec<Option<String>> {
    with(|s| s.heartbeats.clone())
}

/// Every event the plugin published, in order.
pub fn published() -> Vec<Published> {
    with(|s| s.published.clone())
}

/// Answer requests of `kind` with `answer`, as the plugin holding its claim would.
pub fn answer(kind: &str, answer: impl Into<Vec<u8>>) {
    with(|s| s.answers.insert(kind.to_string(), answer.into()));
}

/// Deliver `event` to plugin `P` as the host would (its `on_event`), if the manifest
/// subscribes to the event's topic; else `Reject`, as no such delivery would happen.
pub fn deliver<P: crate::Plugin>(
    event: &crate::events::Event,
) -> Result<(), crate::events::DeliveryError> {
    let subscribed = with(|s| s.declared().subscribes(&event.topic));
    if !subscribed {
        return Err(crate::events::DeliveryError::Reject(format!(
            "the manifest does not subscribe to `{}`",
            event.topic
        )));
    }
    P::on_event(event)
}

/// A copy of the plugin's key-value store.
pub fn kv_snapshot() -> BTreeMap<String, Vec<u8>> {
    with(|s| s.kv.clone())
}

pub(crate) fn heartbeat(progress: Option<&str>) {
    with(|s| {
        if s.check(Capability::Jobs).is_ok() {
            s.heartbeats.push(progress.map(str::to_string));
        }
    });
}

pub(crate) fn cancelled() -> bool {
    with(|s| s.check(Capability::Jobs).is_ok() && s.cancel_requested)
}

pub(crate) fn publish(topic: &str, payload: &[u8], content_type: &str) -> Result<String, Error> {
    with(|s| {
        s.check(Capability::Events)?;
        if topic.split('.').next() == Some("capstan") || !s.declared().publishes(topic) {
            return Err(Error::Denied(format!(
                "publishing on `{topic}` is not granted for plugin `{}`",
                s.declared().id
            )));
        }
        s.published.push(Published {
            topic: topic.to_string(),
            payload: payload.to_vec(),
            content_type: content_type.to_string(),
        });
        Ok(format!("test-event-{}", s.published.len()))
    })
}

pub(crate) fn request(kind: &str, _payload: &[u8]) -> Result<Vec<u8>, Error> {
    with(|s| {
        s.check(Capability::Events)?;
        if !s.declared().requests(kind) {
            return Err(Error::Denied(format!(
                "requesting `{kind}` is not granted for plugin `{}`",
                s.declared().id
            )));
        }
        s.answers.get(kind).cloned().ok_or(Error::NotFound)
    })
}

pub(crate) fn record_log(level: Level, message: &str) {
    with(|s| s.logs.push((level, message.to_string())));
}

pub(crate) fn secret(name: &str) -> Result<String, Error> {
    with(|s| {
        s.check(Capability::Secrets)?;
        if !s.declared().secrets.contains(name) {
            return Err(Error::Denied(format!(
                "secret `{name}` is not granted to plugin `{}`",
                s.declared().id
            )));
        }
        s.secrets.get(name).cloned().ok_or(Error::NotFound)
    })
}

/// The settings a plugin reads: stored values over the schema's defaults.
fn effective_config(s: &mut State) -> Result<serde_json::Map<String, serde_json::Value>, Error> {
    s.check(Capability::Config)?;
    let mut values = s.declared().config_defaults.clone();
    values.extend(s.config.clone());
    Ok(values)
}

pub(crate) fn config_get(key: &str) -> Result<Option<String>, Error> {
    with(|s| Ok(effective_config(s)?.get(key).map(ToString::to_string)))
}

pub(crate) fn config_all() -> Result<Vec<(String, String)>, Error> {
    with(|s| {
        Ok(effective_config(s)?
            .iter()
            .map(|(key, value)| (key.clone(), value.to_string()))
            .collect())
    })
}

pub(crate) fn http_send(request: &HttpRequest) -> Result<HttpResponse, Error> {
    with(|s| {
        s.check(Capability::Http)?;
        if !s.declared().allows_url(&request.url) {
            return Err(Error::Denied(format!(
                "{} matches none of the hosts the manifest declares",
                request.url
            )));
        }
        s.requests.push(request.clone());
        s.responses
            .iter()
            .rev()
            .find(|(prefix, _)| request.url.starts_with(prefix.as_str()))
            .map(|(_, response)| response.clone())
            .ok_or_else(|| {
                Error::Internal(format!(
                    "no test response registered for {} (see capstan_guest::testing::respond)",
                    request.url
                ))
            })
    })
}
