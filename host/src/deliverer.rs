//! The event deliverer of one host. It leases lanes (subscriber, topic, publisher) whose
//! next delivery is due, for subscribers enabled here with call slots free and under
//! their `max_in_flight` across the cluster, and delivers each lane's batch in publish
//! order on a thread of its own, one fresh instance per event. `retry` (or a trap or
//! timeout) schedules the event again with backoff and holds the rest of its lane back;
//! the last allowed attempt, or `reject`, makes a dead letter. It wakes when this host
//! publishes, when another host's publish is signalled, when a lane ends, and at least
//! every [`POLL`]; it renews its leases, frees lapsed ones and prunes expired events.

use crate::capability::events::store::{Lane, Outcome};
use crate::capability::events::{Bus, Delivery, Grant, Settled, Want};
use crate::error::InvokeError;
use crate::runtime::{DeliveryError, Plugin, next_call_id};
use crate::server::AppState;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// Longest sleep between looks at the event log (the fallback when no wake-up comes).
pub const POLL: Duration = Duration::from_secs(1);
/// How long a leased lane is held without renewal before other hosts take it over.
pub const LEASE: Duration = Duration::from_secs(10);
const RENEW_EVERY: Duration = Duration::from_secs(3);
const REAP_EVERY: Duration = Duration::from_secs(1);
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// Deliveries taken from a lane at once.
pub const BATCH: u32 = 32;
/// Lanes this host delivers at once, over every subscriber: events never take more than
/// this many threads from routes and tools.
pub const MAX_ACTIVE_LANES: usize = 8;

/// One host's deliverer.
pub struct Deliverer {
    app: Arc<AppState>,
    bus: Arc<Bus>,
    active: Mutex<HashSet<Lane>>,
}

impl Deliverer {
    /// Start delivering on a thread of its own until `app.shutdown` is cancelled.
    pub fn start(app: Arc<AppState>) -> anyhow::Result<Arc<Deliverer>> {
        let bus = app.registry.runtime().services().events.clone();
        let deliverer = Arc::new(Deliverer {
            bus,
            app,
            active: Mutex::new(HashSet::new()),
        });
        if let Some(mut wakes) = deliverer.bus.store().wakes() {
            let bus = deliverer.bus.clone();
            std::thread::Builder::new()
                .name("capstan-event-wakes".into())
                .spawn(move || {
                    while wakes.blocking_recv().is_some() {
                        bus.ready.raise();
                    }
                })?;
        }
        let looping = deliverer.clone();
        std::thread::Builder::new()
            .name("capstan-deliverer".into())
            .spawn(move || looping.run())?;
        Ok(deliverer)
    }

    fn run(self: Arc<Self>) {
        let (mut last_renew, mut last_reap) = (Instant::now(), Instant::now());
        let mut last_prune = Instant::now() - PRUNE_EVERY;
        let store = self.bus.store().clone();
        while !self.app.shutdown.is_cancelled() {
            if last_renew.elapsed() >= RENEW_EVERY {
                last_renew = Instant::now();
                let lanes: Vec<Lane> = self.lock_active().iter().cloned().collect();
                if !lanes.is_empty()
                    && let Err(error) = store.renew(&self.app.host_id, &lanes, LEASE)
                {
                    tracing::warn!("renewing event leases failed: {error}");
                }
            }
            if last_reap.elapsed() >= REAP_EVERY {
                last_reap = Instant::now();
                match store.reap() {
                    Ok(0) => {}
                    Ok(freed) => tracing::info!("{freed} event lanes of vanished hosts freed"),
                    Err(error) => tracing::warn!("freeing lapsed event leases failed: {error}"),
                }
            }
            if last_prune.elapsed() >= PRUNE_EVERY {
                last_prune = Instant::now();
                if let Err(error) = store.prune() {
                    tracing::warn!("pruning expired events failed: {error}");
                }
            }
            self.claim_and_start();
            self.bus.ready.wait(POLL);
        }
    }

    fn lock_active(&self) -> std::sync::MutexGuard<'_, HashSet<Lane>> {
        self.active.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wait up to `within` for the lanes in flight to end (each stops after the delivery
    /// it is making and hands the rest back); what is still running then is left to its
    /// lease.
    pub fn drain(&self, within: Duration) {
        let until = Instant::now() + within;
        while !self.lock_active().is_empty() && Instant::now() < until {
            self.bus.ready.wait(Duration::from_millis(20));
        }
    }

    /// Lease due lanes of the subscribers served here and start delivering them.
    fn claim_and_start(self: &Arc<Self>) {
        let room = MAX_ACTIVE_LANES.saturating_sub(self.lock_active().len());
        if room == 0 {
            return;
        }
        let serving: Vec<(Arc<Plugin>, Grant)> = self
            .app
            .registry
            .event_subscribers()
            .into_iter()
            .filter_map(|plugin| {
                let grant = plugin.admission().grants.events.granted()?.clone();
                Some((plugin, grant))
            })
            .collect();
        let wants: Vec<Want> = serving
            .iter()
            .map(|(plugin, grant)| {
                let calls = plugin.admission().policy.limits.max_concurrent_calls;
                Want {
                    plugin: plugin.id().to_string(),
                    max_in_flight: grant.max_in_flight,
                    // Leave at least half of the plugin's call slots to its routes and tools.
                    lanes: (calls / 2).max(1).min(room as u32),
                    batch: BATCH,
                }
            })
            .collect();
        if wants.is_empty() {
            return;
        }
        let lanes = match self.bus.store().claim(&self.app.host_id, &wants, LEASE) {
            Ok(lanes) => lanes,
            Err(error) => {
                tracing::warn!("claiming event deliveries failed: {error}");
                return;
            }
        };
        for batch in lanes {
            let Some(lane) = batch.first().map(Delivery::lane) else {
                continue;
            };
            let found = serving.iter().find(|(p, _)| p.id() == lane.plugin);
            let caps = found.map_or(1.into(), |(p, _)| p.caps());
            let slot = self.app.slots.try_take(&lane.plugin, caps);
            let (Some((plugin, grant)), Ok(slot)) = (found, slot) else {
                self.hand_back(&lane, &batch);
                continue;
            };
            self.lock_active().insert(lane.clone());
            let deliverer = self.clone();
            let (plugin, grant) = (plugin.clone(), grant.clone());
            let spawned = std::thread::Builder::new()
                .name("capstan-delivery".into())
                .spawn(move || {
                    let _slot = slot;
                    deliverer.deliver_lane(&plugin, &grant, &lane, batch);
                });
            if let Err(error) = spawned {
                tracing::error!("cannot start a delivery thread: {error}");
            }
        }
    }

    /// Give a lane's batch back untouched (no call slot for it here now).
    fn hand_back(&self, lane: &Lane, batch: &[Delivery]) {
        let settled: Vec<Settled> = batch
            .iter()
            .map(|d| Settled {
                id: d.id.clone(),
                outcome: Outcome::Released,
            })
            .collect();
        if let Err(error) = self.bus.store().settle(&self.app.host_id, lane, &settled) {
            tracing::warn!("handing back event deliveries failed: {error}");
        }
    }

    /// Deliver `batch` in order, then settle it and free the lane.
    fn deliver_lane(&self, plugin: &Plugin, grant: &Grant, lane: &Lane, batch: Vec<Delivery>) {
        let mut settled = Vec::with_capacity(batch.len());
        let mut held_back = false;
        for delivery in &batch {
            if held_back || self.app.shutdown.is_cancelled() {
                settled.push(Settled {
                    id: delivery.id.clone(),
                    outcome: Outcome::Released,
                });
                continue;
            }
            let outcome = self.deliver(plugin, grant, delivery);
            held_back = matches!(outcome, Outcome::Retry { .. });
            settled.push(Settled {
                id: delivery.id.clone(),
                outcome,
            });
        }
        if let Err(error) = self.bus.store().settle(&self.app.host_id, lane, &settled) {
            tracing::warn!(plugin = %lane.plugin, "settling event deliveries failed: {error}");
        }
        self.lock_active().remove(lane);
        self.bus.ready.raise();
    }

    /// Make one delivery and say how it ended.
    fn deliver(&self, plugin: &Plugin, grant: &Grant, delivery: &Delivery) -> Outcome {
        if delivery.attempt > grant.max_attempts {
            // Earlier attempts never settled (their hosts died): do not try again.
            self.app
                .metrics
                .observe_delivery(&delivery.plugin, &delivery.topic, "dead_lettered");
            return Outcome::Dead {
                error: format!(
                    "attempt {} is past the policy's {}; the earlier ones never finished",
                    delivery.attempt, grant.max_attempts
                ),
            };
        }
        let lag = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .saturating_sub(Duration::from_millis(
                u64::try_from(delivery.published_ms).unwrap_or(0),
            ));
        let metrics = &self.app.metrics;
        metrics.observe_delivery_lag(lag);
        let failure = match plugin.deliver(delivery, next_call_id()) {
            Ok(Ok(())) => {
                metrics.observe_delivery(&delivery.plugin, &delivery.topic, "delivered");
                return Outcome::Delivered;
            }
            Ok(Err(DeliveryError::Reject(why))) => {
                metrics.observe_delivery(&delivery.plugin, &delivery.topic, "dead_lettered");
                return Outcome::Dead {
                    error: format!("rejected: {why}"),
                };
            }
            Ok(Err(DeliveryError::Retry(why))) => format!("retry asked: {why}"),
            Err(InvokeError::Timeout { deadline_ms }) => {
                format!("ran past its deadline of {deadline_ms} ms")
            }
            Err(error) => error.to_string(),
        };
        if delivery.attempt >= grant.max_attempts {
            metrics.observe_delivery(&delivery.plugin, &delivery.topic, "dead_lettered");
            return Outcome::Dead {
                error: format!(
                    "{failure} (attempt {} of {})",
                    delivery.attempt, grant.max_attempts
                ),
            };
        }
        metrics.observe_delivery(&delivery.plugin, &delivery.topic, "retried");
        Outcome::Retry {
            after: grant.retry_delay(delivery.attempt, jitter(&delivery.id)),
            error: failure,
        }
    }
}

/// A number in 0..1 drawn from a delivery's random id, spreading retries of many
/// deliveries that failed together.
fn jitter(id: &str) -> f64 {
    let digits = id.get(..4).and_then(|d| u16::from_str_radix(d, 16).ok());
    f64::from(digits.unwrap_or(u16::MAX / 2)) / f64::from(u16::MAX)
}

#[cfg(test)]
mod tests {
    use super::jitter;

    #[test]
    fn jitter_spreads_over_the_unit_interval() {
        assert_eq!(jitter("0000ab"), 0.0);
        assert_eq!(jitter("ffff12"), 1.0);
        assert!((jitter("8000") - 0.5).abs() < 0.001);
        assert_eq!(jitter("z"), jitter("zz"), "a malformed id gets the middle");
    }
}
