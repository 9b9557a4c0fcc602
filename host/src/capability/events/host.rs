//! Host side of the WIT `events` interface: publish on a granted topic, request of a
//! granted kind. Anything outside the grant is `denied` and audited, like a withheld
//! import.

use super::store::NewEvent;
use super::{Bus, Grant, MAX_CONTENT_TYPE_BYTES, Topic};
use crate::bindings::capstan::plugin::events::Host;
use crate::bindings::capstan::plugin::types::Error;
use crate::capability::{CallScope, CapabilityId};
use crate::rate::RateLimiter;

/// Content type of a payload published without one.
pub const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

/// The granted events, seen from one call.
pub struct EventsHost<'a> {
    pub scope: CallScope<'a>,
    pub grant: &'a Grant,
    pub bus: &'a Bus,
    /// This plugin's publishes per second.
    pub rate: &'a RateLimiter,
}

/// `text` as a content type: printable ASCII without spaces at the ends, capped.
pub fn content_type(text: &str) -> Result<&str, String> {
    if text.is_empty() {
        return Ok(DEFAULT_CONTENT_TYPE);
    }
    if text.len() > MAX_CONTENT_TYPE_BYTES
        || !text.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
        || text.trim() != text
    {
        return Err(format!(
            "content type `{}` must be printable ASCII of at most {MAX_CONTENT_TYPE_BYTES} bytes",
            crate::text::shown_name(text)
        ));
    }
    Ok(text)
}

impl EventsHost<'_> {
    fn deny(&self, detail: String) -> Error {
        self.scope.deny(
            CapabilityId::Events,
            format!("call {}: {detail}", self.scope.call_id),
        );
        Error::Denied(format!("{detail} for plugin `{}`", self.scope.plugin))
    }

    fn payload_fits(&self, payload: &[u8]) -> Result<(), Error> {
        if payload.len() > self.grant.max_payload_bytes as usize {
            return Err(Error::TooLarge(format!(
                "payload of {} bytes is over the policy's {} bytes",
                payload.len(),
                self.grant.max_payload_bytes
            )));
        }
        Ok(())
    }
}

impl Host for EventsHost<'_> {
    #[tracing::instrument(level = "debug", skip_all, fields(plugin = %self.scope.plugin))]
    fn publish(
        &mut self,
        topic: String,
        payload: Vec<u8>,
        content: String,
    ) -> Result<String, Error> {
        let topic = Topic::parse(&topic).map_err(Error::InvalidInput)?;
        if topic.is_reserved() {
            return Err(self.deny(format!(
                "publishing on `{topic}` is refused: `capstan.` topics are the host's own"
            )));
        }
        if !self.grant.publishes(&topic) {
            return Err(self.deny(format!("publishing on `{topic}` is not granted")));
        }
        self.payload_fits(&payload)?;
        let content_type = content_type(&content).map_err(Error::InvalidInput)?;
        if !self.rate.try_take() {
            return Err(Error::QuotaExceeded(format!(
                "over the policy's {} events a second",
                self.grant.publish_rate
            )));
        }
        let event = NewEvent {
            topic: &topic,
            source: self.scope.plugin,
            content_type,
            payload: &payload,
            retention: self.grant.retention,
            retention_count: self.grant.retention_count,
        };
        match self.bus.publish(&event, self.scope.deadline) {
            Ok(record) => Ok(record.id),
            Err(crate::storage::StoreError::DeadlinePassed) => Err(Error::Timeout),
            Err(error) => {
                tracing::warn!(plugin = %self.scope.plugin, "publishing an event failed: {error}");
                Err(Error::Internal("the event log is unavailable".into()))
            }
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(plugin = %self.scope.plugin))]
    fn request(&mut self, kind: String, payload: Vec<u8>) -> Result<Vec<u8>, Error> {
        let kind = Topic::parse(&kind).map_err(Error::InvalidInput)?;
        if !self.grant.requests(&kind) {
            return Err(self.deny(format!("requesting `{kind}` is not granted")));
        }
        self.payload_fits(&payload)?;
        self.bus.request(&kind, &payload, self.scope.deadline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capability::scope::testing::{TestScope, grants};
    use crate::storage::SqliteStore;
    use std::sync::Arc;

    const MANIFEST: &str = "[events]\npublish = [\"orders.*\", \">\"]\nrequest = [\"notify.*\"]\n";
    const POLICY: &str = "[events]\npublish = [\"orders.*\", \">\"]\nrequest = [\"notify.*\"]\n\
                          max_payload_bytes = 64\npublish_rate = 3\n";

    struct Fixture {
        test: TestScope,
        grant: Grant,
        bus: Bus,
        rate: RateLimiter,
    }

    fn recent() -> crate::capability::events::EventQuery {
        crate::capability::events::EventQuery {
            limit: 10,
            ..Default::default()
        }
    }

    fn fixture() -> Fixture {
        let grant = grants(MANIFEST, POLICY).events.granted().unwrap().clone();
        Fixture {
            test: TestScope::new(),
            rate: RateLimiter::new(grant.publish_rate),
            grant,
            bus: Bus::new(Arc::new(SqliteStore::open_in_memory().unwrap())),
        }
    }

    impl Fixture {
        fn host(&self) -> EventsHost<'_> {
            EventsHost {
                scope: self.test.scope(),
                grant: &self.grant,
                bus: &self.bus,
                rate: &self.rate,
            }
        }
    }

    #[test]
    fn a_granted_topic_is_published_and_listed() {
        let f = fixture();
        let id = f
            .host()
            .publish(
                "orders.created".into(),
                b"{}".to_vec(),
                "application/json".into(),
            )
            .unwrap();
        let listed = f.bus.store().events(&recent()).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].id, id);
        assert_eq!(listed[0].source, "plugin");
        assert_eq!(listed[0].content_type, "application/json");
    }

    #[test]
    fn the_hosts_own_topics_are_refused_and_audited_even_under_a_catch_all_grant() {
        let f = fixture();
        let refused = f
            .host()
            .publish("capstan.plugin.installed".into(), Vec::new(), String::new())
            .unwrap_err();
        assert!(
            matches!(&refused, Error::Denied(m) if m.contains("host's own")),
            "{refused:?}"
        );
        assert_eq!(f.test.denials_of(CapabilityId::Events), 1);
        assert!(f.bus.store().events(&recent()).unwrap().is_empty());
    }

    #[test]
    fn bad_input_is_refused_naming_the_rule() {
        let f = fixture();
        let mut host = f.host();
        assert!(matches!(
            host.publish("Orders".into(), Vec::new(), String::new()),
            Err(Error::InvalidInput(m)) if m.contains("a-z")
        ));
        assert!(matches!(
            host.publish("orders.x".into(), vec![0; 65], String::new()),
            Err(Error::TooLarge(m)) if m.contains("64 bytes")
        ));
        assert!(matches!(
            host.publish("orders.x".into(), Vec::new(), "text/\u{7}".into()),
            Err(Error::InvalidInput(m)) if m.contains("content type")
        ));
        assert_eq!(
            f.test.denials_of(CapabilityId::Events),
            0,
            "bad input is not a denial"
        );
    }

    #[test]
    fn publishing_is_rate_limited() {
        let f = fixture();
        let mut host = f.host();
        for _ in 0..3 {
            host.publish("orders.x".into(), Vec::new(), String::new())
                .unwrap();
        }
        assert!(matches!(
            host.publish("orders.x".into(), Vec::new(), String::new()),
            Err(Error::QuotaExceeded(_))
        ));
    }

    #[test]
    fn requests_need_a_grant_and_a_holder() {
        let f = fixture();
        let mut host = f.host();
        assert!(matches!(
            host.request("billing.charge".into(), Vec::new()),
            Err(Error::Denied(_))
        ));
        assert_eq!(f.test.denials_of(CapabilityId::Events), 1);
        assert!(matches!(
            host.request("notify.email".into(), Vec::new()),
            Err(Error::NotFound)
        ));
    }
}
