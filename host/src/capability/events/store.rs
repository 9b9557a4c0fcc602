//! Where events and their deliveries live, behind one trait with a SQL implementation
//! (SQLite for one host, PostgreSQL for a cluster) and a NATS JetStream one. Each event
//! gets one delivery per subscriber that receives it. Deliveries to one subscriber of one
//! topic from one publisher form a *lane*, delivered in publish order: a host leases a
//! lane (renewing the lease while it works), takes a batch of its next deliveries, and
//! settles each. A lease that lapses (its host died) frees the lane for another host, so
//! nothing is lost; a redelivery carries the same event id.

use super::topic::Topic;
use crate::capability::Deadline;
use crate::storage::StoreError;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// An event to publish.
#[derive(Debug, Clone)]
pub struct NewEvent<'a> {
    pub topic: &'a Topic,
    /// The publishing plugin, or `capstan` for the host.
    pub source: &'a str,
    pub content_type: &'a str,
    pub payload: &'a [u8],
    /// How long it is kept.
    pub retention: Duration,
    /// How many events of its topic are kept.
    pub retention_count: u32,
}

/// An event as stored and listed (without its payload).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EventRecord {
    pub id: String,
    pub topic: String,
    pub source: String,
    pub content_type: String,
    /// Milliseconds since the Unix epoch.
    pub published_ms: i64,
    /// Payload size in bytes.
    pub size: u64,
}

/// Subscriber, topic and publisher: the deliveries kept in publish order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Lane {
    pub plugin: String,
    pub topic: String,
    pub source: String,
}

/// A delivery handed to a host to make, with its event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: String,
    pub event_id: String,
    /// The subscriber.
    pub plugin: String,
    pub topic: String,
    pub source: String,
    pub published_ms: i64,
    /// 1 for the first delivery.
    pub attempt: u32,
    pub content_type: String,
    pub payload: Vec<u8>,
}

impl Delivery {
    pub fn lane(&self) -> Lane {
        Lane {
            plugin: self.plugin.clone(),
            topic: self.topic.clone(),
            source: self.source.clone(),
        }
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    /// Waiting to be delivered (a retry waits for its `due_ms`).
    Pending,
    /// A host is delivering it.
    Leased,
    /// The subscriber acknowledged it.
    Delivered,
    /// It was rejected, or failed every attempt: a dead letter, replayable.
    Dead,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Leased => "leased",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Dead => "dead",
        }
    }
}

impl std::str::FromStr for DeliveryState {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        Ok(match text {
            "pending" => DeliveryState::Pending,
            "leased" => DeliveryState::Leased,
            "delivered" => DeliveryState::Delivered,
            "dead" => DeliveryState::Dead,
            other => {
                return Err(format!(
                    "unknown delivery state `{}` (pending, leased, delivered, dead)",
                    crate::text::shown_within(other, 40)
                ));
            }
        })
    }
}

/// A delivery as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeliveryRecord {
    pub id: String,
    pub event_id: String,
    /// The subscriber.
    pub plugin: String,
    pub topic: String,
    pub source: String,
    pub state: DeliveryState,
    /// Deliveries made (or started) so far.
    pub attempt: u32,
    /// When a pending delivery is due, in ms since the epoch.
    pub due_ms: i64,
    /// Why the last attempt failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When it last changed, in ms since the epoch.
    pub updated_ms: i64,
}

/// How one leased delivery ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Acknowledged.
    Delivered,
    /// Deliver again after `after`.
    Retry { after: Duration, error: String },
    /// A dead letter.
    Dead { error: String },
    /// Never started (an earlier delivery of its lane is retried first): back to pending
    /// with its attempt uncounted.
    Released,
}

/// One settled delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct Settled {
    pub id: String,
    pub outcome: Outcome,
}

/// A subscriber this host can deliver to now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Want {
    pub plugin: String,
    /// Its lanes leased at once across the cluster, at most.
    pub max_in_flight: u32,
    /// Lanes this host takes now, at most.
    pub lanes: u32,
    /// Deliveries per lane, at most.
    pub batch: u32,
}

/// Which events to list; unset fields do not filter.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub topic: Option<String>,
    pub source: Option<String>,
    /// At most this many, newest first.
    pub limit: u32,
}

/// Which deliveries to list; unset fields do not filter.
#[derive(Debug, Clone, Default)]
pub struct DeliveryQuery {
    pub plugin: Option<String>,
    pub state: Option<DeliveryState>,
    pub event_id: Option<String>,
    /// At most this many, newest event first.
    pub limit: u32,
}

/// What a replay found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replay {
    /// The dead letter is pending again, with a fresh attempt count.
    Replayed(DeliveryRecord),
    /// The delivery exists but is not a dead letter.
    NotDead(DeliveryRecord),
    Missing,
}

/// The event log and its deliveries.
pub trait EventStore: Send + Sync {
    /// Which backend this is, for the host's start-up log.
    fn backend(&self) -> &'static str;

    /// Store `event` and one pending delivery per plugin of `subscribers`, atomically
    /// (within `deadline`).
    fn publish(
        &self,
        event: &NewEvent<'_>,
        subscribers: &[&str],
        deadline: Deadline,
    ) -> Result<EventRecord, StoreError>;

    /// Lease, for `host`, lanes of `wants` whose next delivery is due, each for
    /// `lease`, and take up to a batch of each lane's deliveries in publish order (their
    /// attempts counted). Lanes are returned whole, oldest first.
    fn claim(
        &self,
        host: &str,
        wants: &[Want],
        lease: Duration,
    ) -> Result<Vec<Vec<Delivery>>, StoreError>;

    /// Extend `host`'s leases of `lanes`.
    fn renew(&self, host: &str, lanes: &[Lane], lease: Duration) -> Result<(), StoreError>;

    /// Record how `host`'s deliveries of `lane` ended and free the lane.
    fn settle(&self, host: &str, lane: &Lane, settled: &[Settled]) -> Result<(), StoreError>;

    /// Free lanes whose lease lapsed, their leased deliveries pending again; returns how
    /// many lanes.
    fn reap(&self) -> Result<u64, StoreError>;

    /// Events matching `query`, newest first.
    fn events(&self, query: &EventQuery) -> Result<Vec<EventRecord>, StoreError>;

    /// Deliveries matching `query`, newest first.
    fn deliveries(&self, query: &DeliveryQuery) -> Result<Vec<DeliveryRecord>, StoreError>;

    /// Make dead letter `id` pending again.
    fn replay(&self, id: &str) -> Result<Replay, StoreError>;

    /// Forget `plugin`'s deliveries (it was removed); returns how many were not yet
    /// delivered.
    fn drop_plugin(&self, plugin: &str) -> Result<u64, StoreError>;

    /// Delete events past their retention (age or count) that no delivery waits for.
    fn prune(&self) -> Result<u64, StoreError>;

    /// Signals when another host published (None: this backend has no such signal and
    /// hosts poll).
    fn wakes(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<()>> {
        None
    }
}
