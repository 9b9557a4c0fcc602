//! `events`: topics that plugins publish to and subscribe on, and claimed request kinds.
//! The manifest declares the topic patterns a plugin publishes and subscribes to, the
//! kinds it claims and those it requests; the policy grants patterns and bounds payloads,
//! publish rate, retention and retries. Each declared pattern is granted as what it and
//! the policy both select; one the policy selects nothing of withholds the capability,
//! naming it. Delivery is at least once ([`store::EventStore`], [`bus::Bus`]).

pub mod bus;
mod deny;
mod host;
pub mod publishers;
pub mod store;
pub mod topic;

pub use bus::{Bus, ClaimHandler, Directory, Subscriber};
pub use host::{DEFAULT_CONTENT_TYPE, EventsHost, content_type};
pub use store::{
    Delivery, DeliveryQuery, DeliveryRecord, DeliveryState, EventQuery, EventRecord, EventStore,
    NewEvent, Settled, Want,
};
pub use topic::{Pattern, Topic};

use super::{CallScope, Capability, CapabilityId, CapabilityInfo, Decision, Direction, Import};
use crate::policy::period::{Bounds, TEN_YEARS, as_text};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use wasmtime::component::{HasData, Linker};

/// Payload size unless the policy sets another.
pub const DEFAULT_MAX_PAYLOAD_BYTES: u32 = 256 * 1024;
/// The largest payload any policy may allow.
pub const MAX_PAYLOAD_CEILING: u32 = 1024 * 1024;
/// Events a plugin may publish per second unless the policy says otherwise.
pub const DEFAULT_PUBLISH_RATE: u32 = 100;
/// How long events are kept unless the policy says otherwise.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
/// Events kept per topic unless the policy says otherwise.
pub const DEFAULT_RETENTION_COUNT: u32 = 10_000;
/// Deliveries of one event to one subscriber before it becomes a dead letter.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;
/// The first retry's delay; each later one doubles it (with jitter).
pub const DEFAULT_BACKOFF: Duration = Duration::from_secs(1);
/// The longest delay between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(600);
/// The backoffs a policy may set: 1 ms to [`MAX_BACKOFF`].
const BACKOFFS: Bounds = Bounds::new(Duration::from_millis(1), MAX_BACKOFF);
/// How long a policy may keep events: a millisecond to ten years.
const RETENTIONS: Bounds = Bounds::new(Duration::from_millis(1), TEN_YEARS);
/// Deliveries to one plugin at once across the cluster unless manifest or policy lower it.
pub const DEFAULT_MAX_IN_FLIGHT: u32 = 4;
const MAX_IN_FLIGHT_CEILING: u32 = 256;
/// Longest content type.
pub const MAX_CONTENT_TYPE_BYTES: usize = 127;

/// The `events` capability.
pub struct Events;

/// Manifest `[capabilities.events]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// Topics it publishes on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub publish: Vec<Pattern>,
    /// Topics it receives (it exports `subscriber`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscribe: Vec<Pattern>,
    /// Request kinds it handles (it exports `claim`); one plugin per kind.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claims: Vec<Topic>,
    /// Request kinds it sends to their claimants.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub request: Vec<Pattern>,
    /// Deliveries to it at once (the policy's `max_in_flight` caps it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<u32>,
}

/// Policy `[…capabilities.events]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Allowed {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub publish: Vec<Pattern>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscribe: Vec<Pattern>,
    /// Kinds the plugin may claim (patterns).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claims: Vec<Pattern>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub request: Vec<Pattern>,
    /// Most deliveries at once (default 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<u32>,
    /// Largest payload it may publish or request with (default 256 KiB, at most 1 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_payload_bytes: Option<u32>,
    /// Events it may publish per second (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish_rate: Option<u32>,
    /// How long its events are kept, e.g. `7d` (default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<String>,
    /// How many of its events are kept per topic (default 10000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_count: Option<u32>,
    /// Deliveries of an event to it before a dead letter (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// Delay before its first redelivery, doubled each time (default 1s, at most 10m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<String>,
}

/// What the host enforces for a plugin's events.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Grant {
    pub publish: Vec<Pattern>,
    pub subscribe: Vec<Pattern>,
    pub claims: Vec<Topic>,
    pub request: Vec<Pattern>,
    pub max_in_flight: u32,
    pub max_payload_bytes: u32,
    pub publish_rate: u32,
    #[serde(serialize_with = "as_text")]
    pub retention: Duration,
    pub retention_count: u32,
    pub max_attempts: u32,
    #[serde(serialize_with = "as_text")]
    pub backoff: Duration,
}

impl Grant {
    /// Whether it may publish on `topic` (never a reserved one).
    pub fn publishes(&self, topic: &Topic) -> bool {
        !topic.is_reserved() && self.publish.iter().any(|p| p.matches(topic))
    }

    /// Whether it receives events on `topic`.
    pub fn receives(&self, topic: &Topic) -> bool {
        self.subscribe.iter().any(|p| p.matches(topic))
    }

    /// Whether it may send requests of `kind`.
    pub fn requests(&self, kind: &Topic) -> bool {
        self.request.iter().any(|p| p.matches(kind))
    }

    /// The delay before attempt `attempt + 1` after attempt `attempt` failed: the backoff
    /// doubled per attempt, capped, with up to ±20 % jitter from `unit` (0..1).
    pub fn retry_delay(&self, attempt: u32, unit: f64) -> Duration {
        let doubled = self
            .backoff
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
            .min(MAX_BACKOFF);
        doubled
            .mul_f64(0.8 + 0.4 * unit.clamp(0.0, 1.0))
            .min(MAX_BACKOFF)
    }
}

/// `declared` patterns narrowed to what `allowed` selects; each must keep something.
fn narrow(what: &str, declared: &[Pattern], allowed: &[Pattern]) -> Result<Vec<Pattern>, String> {
    for pattern in declared {
        if allowed.iter().all(|a| a.meet(pattern).is_none()) {
            return Err(format!(
                "{what} `{pattern}` is not granted by the operator's policy"
            ));
        }
    }
    Ok(topic::meet_all(declared, allowed))
}

impl Allowed {
    fn backoff(&self) -> Result<Duration, String> {
        BACKOFFS.parse_or("backoff", self.backoff.as_deref(), DEFAULT_BACKOFF)
    }

    fn retention(&self) -> Result<Duration, String> {
        RETENTIONS.parse_or("retention", self.retention.as_deref(), DEFAULT_RETENTION)
    }
}

impl Capability for Events {
    const INFO: CapabilityInfo = CapabilityInfo {
        id: CapabilityId::Events,
        name: "events",
        key: "events",
        interface: "events",
        standard: &[],
        exports: &["subscriber", "claim"],
        direction: Direction::Import,
    };

    type Request = Request;
    type Allowed = Allowed;
    type Grant = Grant;

    fn grant(request: &Request, allowed: &Allowed) -> Result<Grant, String> {
        let publish = narrow("publishing on", &request.publish, &allowed.publish)?;
        let subscribe = narrow("subscribing to", &request.subscribe, &allowed.subscribe)?;
        let request_kinds = narrow("requesting", &request.request, &allowed.request)?;
        if let Some(kind) = request
            .claims
            .iter()
            .find(|kind| !allowed.claims.iter().any(|p| p.matches(kind)))
        {
            return Err(format!(
                "claiming `{kind}` is not granted by the operator's policy"
            ));
        }
        let ceiling = allowed.max_in_flight.unwrap_or(DEFAULT_MAX_IN_FLIGHT);
        Ok(Grant {
            publish,
            subscribe,
            claims: request.claims.clone(),
            request: request_kinds,
            max_in_flight: request.max_in_flight.map_or(ceiling, |n| n.min(ceiling)),
            max_payload_bytes: allowed
                .max_payload_bytes
                .unwrap_or(DEFAULT_MAX_PAYLOAD_BYTES),
            publish_rate: allowed.publish_rate.unwrap_or(DEFAULT_PUBLISH_RATE),
            retention: allowed.retention()?,
            retention_count: allowed.retention_count.unwrap_or(DEFAULT_RETENTION_COUNT),
            max_attempts: allowed.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS),
            backoff: allowed.backoff()?,
        })
    }

    fn required_exports(request: &Request) -> Vec<&'static str> {
        let mut required = Vec::new();
        if !request.subscribe.is_empty() {
            required.push("subscriber");
        }
        if !request.claims.is_empty() {
            required.push("claim");
        }
        required
    }

    fn check_request(request: &Request) -> Result<(), String> {
        if let Some(pattern) = request.publish.iter().find(|p| p.is_reserved()) {
            return Err(format!(
                "`{pattern}`: topics under `capstan.` are the host's own; plugins do not publish there"
            ));
        }
        if let Some(kind) = request.claims.iter().find(|kind| kind.is_reserved()) {
            return Err(format!(
                "`{kind}`: kinds under `capstan.` are the host's own"
            ));
        }
        let mut claims = request.claims.clone();
        claims.sort();
        if let Some(pair) = claims.windows(2).find(|pair| pair[0] == pair[1]) {
            return Err(format!("kind `{}` is claimed twice", pair[0]));
        }
        if request
            .max_in_flight
            .is_some_and(|n| !(1..=MAX_IN_FLIGHT_CEILING).contains(&n))
        {
            return Err(format!(
                "`max_in_flight` must be 1..={MAX_IN_FLIGHT_CEILING}"
            ));
        }
        Ok(())
    }

    fn check_allowed(allowed: &Allowed) -> Result<(), String> {
        if allowed
            .max_in_flight
            .is_some_and(|n| !(1..=MAX_IN_FLIGHT_CEILING).contains(&n))
        {
            return Err(format!(
                "`max_in_flight` must be 1..={MAX_IN_FLIGHT_CEILING}"
            ));
        }
        if allowed
            .max_payload_bytes
            .is_some_and(|n| n == 0 || n > MAX_PAYLOAD_CEILING)
        {
            return Err(format!(
                "`max_payload_bytes` must be 1..={MAX_PAYLOAD_CEILING}"
            ));
        }
        if allowed
            .publish_rate
            .is_some_and(|n| !(1..=1_000_000).contains(&n))
        {
            return Err("`publish_rate` must be 1..=1000000 a second".into());
        }
        allowed.retention()?;
        if allowed
            .retention_count
            .is_some_and(|n| !(1..=100_000_000).contains(&n))
        {
            return Err("`retention_count` must be 1..=100000000".into());
        }
        if allowed
            .max_attempts
            .is_some_and(|n| !(1..=100).contains(&n))
        {
            return Err("`max_attempts` must be 1..=100".into());
        }
        allowed.backoff()?;
        Ok(())
    }
}

impl Import for Events {
    type View<'a> = EventsHost<'a>;

    fn link<T: 'static>(
        linker: &mut Linker<T>,
        decision: &Decision<Grant>,
        view: fn(&mut T) -> EventsHost<'_>,
        scope: fn(&mut T) -> CallScope<'_>,
    ) -> wasmtime::Result<()> {
        use crate::bindings::capstan::plugin::events::add_to_linker;
        match decision {
            Decision::Granted { .. } => add_to_linker::<T, Events>(linker, view),
            _ => add_to_linker::<T, deny::Withheld>(linker, scope),
        }
    }
}

impl HasData for Events {
    type Data<'a> = EventsHost<'a>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capability::{Decision, Requested};

    fn decide(manifest: &str, policy: &str) -> Decision<Grant> {
        crate::capability::scope::testing::grants(manifest, policy).events
    }

    const MANIFEST: &str = "[events]\npublish = [\"orders.*\"]\nsubscribe = [\"orders.created\"]\n\
                            claims = [\"notify.email\"]\nmax_in_flight = 8\n";

    fn topic(text: &str) -> Topic {
        Topic::parse(text).unwrap()
    }

    #[test]
    fn events_are_not_granted_by_default() {
        assert!(matches!(decide(MANIFEST, ""), Decision::Denied { .. }));
    }

    #[test]
    fn the_grant_is_what_manifest_and_policy_both_select() {
        let policy = "[events]\npublish = [\"orders.created\", \"orders.paid\"]\n\
                      subscribe = [\"orders.>\"]\nclaims = [\"notify.*\"]\nmax_in_flight = 2\n";
        let grant = decide(MANIFEST, policy).granted().unwrap().clone();
        assert!(grant.publishes(&topic("orders.created")));
        assert!(grant.publishes(&topic("orders.paid")));
        assert!(
            !grant.publishes(&topic("orders.deleted")),
            "the policy narrows"
        );
        assert!(grant.receives(&topic("orders.created")));
        assert!(
            !grant.receives(&topic("orders.paid")),
            "the manifest narrows"
        );
        assert_eq!(grant.max_in_flight, 2, "the policy caps the manifest");
        assert_eq!(grant.max_payload_bytes, DEFAULT_MAX_PAYLOAD_BYTES);
        assert_eq!(grant.max_attempts, DEFAULT_MAX_ATTEMPTS);
    }

    #[test]
    fn a_pattern_or_claim_the_policy_selects_nothing_of_withholds_the_capability_naming_it() {
        let all = "publish = [\">\"]\nsubscribe = [\">\"]\nclaims = [\">\"]\n";
        for (policy, needle) in [
            (
                "[events]\npublish = [\"users.>\"]\nsubscribe = [\">\"]\nclaims = [\">\"]\n",
                "publishing on `orders.*`",
            ),
            (
                "[events]\npublish = [\">\"]\nsubscribe = [\"orders.paid\"]\nclaims = [\">\"]\n",
                "subscribing to `orders.created`",
            ),
            (
                "[events]\npublish = [\">\"]\nsubscribe = [\">\"]\nclaims = [\"notify.sms\"]\n",
                "claiming `notify.email`",
            ),
        ] {
            match decide(MANIFEST, policy) {
                Decision::Denied { reason } => assert!(reason.contains(needle), "{reason}"),
                other => panic!("{policy}: {other:?}"),
            }
        }
        assert!(
            decide(MANIFEST, &format!("[events]\n{all}"))
                .granted()
                .is_some()
        );
    }

    #[test]
    fn no_grant_publishes_on_the_hosts_own_topics() {
        let grant = decide(
            "[events]\npublish = [\">\"]\n",
            "[events]\npublish = [\">\"]\n",
        );
        let grant = grant.granted().unwrap();
        assert!(grant.publishes(&topic("orders.created")));
        assert!(!grant.publishes(&topic("capstan.plugin.installed")));
    }

    #[test]
    fn manifests_are_checked_naming_the_problem() {
        for (manifest, needle) in [
            (
                "[events]\npublish = [\"capstan.plugin.installed\"]\n",
                "host's own",
            ),
            ("[events]\nclaims = [\"capstan.x\"]\n", "host's own"),
            ("[events]\nclaims = [\"a.b\", \"a.b\"]\n", "claimed twice"),
            ("[events]\nmax_in_flight = 0\n", "max_in_flight"),
        ] {
            let requested: Requested = toml::from_str(manifest).unwrap();
            let problem = requested.check().unwrap_err();
            assert!(problem.contains(needle), "{manifest}: {problem}");
        }
        for manifest in [
            "[events]\npublish = [\"Orders\"]\n",
            "[events]\nsubscribe = [\"a..b\"]\n",
            "[events]\nclaims = [\"notify.*\"]\n",
            "[events]\nsend = [\"a\"]\n",
        ] {
            assert!(toml::from_str::<Requested>(manifest).is_err(), "{manifest}");
        }
    }

    #[test]
    fn policy_ranges_are_checked() {
        for (policy, needle) in [
            ("max_payload_bytes = 2000000", "`max_payload_bytes`"),
            ("max_attempts = 0", "`max_attempts`"),
            (
                "backoff = \"1h\"",
                "`backoff` = `1h` is not a duration from 1ms to 10m",
            ),
            (
                "retention = \"soon\"",
                "`retention` = `soon` is not a duration",
            ),
            (
                "retention = \"20years\"",
                "`retention` = `20years` is not a duration from 1ms to 10y",
            ),
            ("publish_rate = 0", "`publish_rate`"),
        ] {
            let text = format!("[defaults.capabilities.events]\n{policy}\n");
            let error = crate::policy::Policy::parse(&text).unwrap_err().to_string();
            assert!(error.contains(needle), "{policy}: {error}");
        }
        let longest = "[defaults.capabilities.events]\nretention = \"10y\"\nbackoff = \"10m\"\n";
        assert!(crate::policy::Policy::parse(longest).is_ok());
    }

    #[test]
    fn retries_back_off_exponentially_with_bounded_jitter() {
        let grant = decide(
            MANIFEST,
            "[events]\npublish = [\">\"]\nsubscribe = [\">\"]\nclaims = [\">\"]\n",
        );
        let grant = grant.granted().unwrap();
        assert_eq!(grant.retry_delay(1, 0.5), Duration::from_secs(1));
        assert_eq!(grant.retry_delay(3, 0.5), Duration::from_secs(4));
        assert_eq!(grant.retry_delay(2, 0.0), Duration::from_millis(1600));
        assert_eq!(grant.retry_delay(2, 1.0), Duration::from_millis(2400));
        assert_eq!(grant.retry_delay(40, 0.5), MAX_BACKOFF);
    }
}
