//! Events between plugins (capability `events`): publish on topics the manifest and the
//! policy grant, receive the topics the plugin subscribes to (implement
//! [`Plugin::on_event`](crate::Plugin::on_event)), and send requests to the plugin that
//! claimed a kind.
//!
//! ```ignore
//! use capstan_guest::prelude::*;
//!
//! let id = events::publish_json("orders.created", &json!({"order": 42}))?;
//! let answer = events::request("notify.email", b"to=ops@example.com")?;
//! ```

use crate::Error;

pub use crate::bindings::subscribers::exports::capstan::plugin::subscriber::{
    DeliveryError, Event,
};

/// Publish `payload` on `topic`, read as `content_type`; returns the event's id.
pub fn publish(topic: &str, payload: &[u8], content_type: &str) -> Result<String, Error> {
    #[cfg(target_arch = "wasm32")]
    return crate::bindings::capstan::plugin::events::publish(topic, payload, content_type)
        .map_err(Error::from);
    #[cfg(not(target_arch = "wasm32"))]
    return crate::testing::publish(topic, payload, content_type);
}

/// Publish `value` as JSON on `topic`.
pub fn publish_json(topic: &str, value: &serde_json::Value) -> Result<String, Error> {
    publish(topic, value.to_string().as_bytes(), "application/json")
}

/// Ask the plugin that claimed `kind` to handle `payload`; returns its answer
/// (`not-found` when no plugin holds the claim).
pub fn request(kind: &str, payload: &[u8]) -> Result<Vec<u8>, Error> {
    #[cfg(target_arch = "wasm32")]
    return crate::bindings::capstan::plugin::events::request(kind, payload).map_err(Error::from);
    #[cfg(not(target_arch = "wasm32"))]
    return crate::testing::request(kind, payload);
}

impl Event {
    /// An event as a test would deliver it: first attempt, JSON when `payload` parses.
    pub fn local(topic: &str, payload: &[u8]) -> Event {
        let json = serde_json::from_slice::<serde_json::Value>(payload).is_ok();
        Event {
            id: format!("local-{topic}"),
            topic: topic.to_string(),
            source_plugin: "test".into(),
            published_at: 0,
            attempt: 1,
            content_type: if json {
                "application/json"
            } else {
                "application/octet-stream"
            }
            .into(),
            payload: payload.to_vec(),
        }
    }

    /// The payload read as JSON (`reject`-worthy `InvalidInput` when it is not).
    pub fn json(&self) -> Result<serde_json::Value, Error> {
        serde_json::from_slice(&self.payload)
            .map_err(|e| Error::InvalidInput(format!("event {} is not JSON: {e}", self.id)))
    }
}

impl From<Error> for DeliveryError {
    /// A failed host call is worth another try.
    fn from(error: Error) -> Self {
        DeliveryError::Retry(error.to_string())
    }
}
