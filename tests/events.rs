//! One delivery suite for every event backend: SQLite, PostgreSQL (when
//! CAPSTAN_TEST_DATABASE_URL is set) and NATS JetStream (when CAPSTAN_TEST_NATS_URL is
//! set), both mandatory under CI=true. It drives the event store the way hosts do:
//! publish fans out to subscribers, deliveries come in publish order, a retry comes back
//! first, a lapsed lease hands the delivery to another host with the same event id, dead
//! letters replay, and removal drops what was pending. Where NATS keeps a weaker promise
//! (lanes per subscriber rather than per topic, no fencing of a vanished host's late
//! acknowledgement, delivered deliveries not listed, retention by stream limits) the test
//! checks that promise instead, and the SQL-only ones run on SQL backends only.

mod support;

use capstan_host::capability::Deadline;
use capstan_host::capability::events::store::{Lane, Outcome, Replay};
use capstan_host::capability::events::{
    Delivery, DeliveryQuery, DeliveryState, EventQuery, EventStore, NewEvent, Settled, Topic, Want,
};
use capstan_host::storage::{NatsEvents, PostgresStore, SqliteStore};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How a backend keeps deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Rows in SQLite or PostgreSQL: lanes per topic, fenced leases, delivered rows kept.
    Sql,
    /// A JetStream work queue: one lane per subscriber, acknowledged messages removed.
    Nats,
}

/// A backend under test and whatever must outlive it.
struct Backend {
    kind: Kind,
    store: Arc<dyn EventStore>,
    /// A second handle on the same state (another host), where the backend has one.
    other: Arc<dyn EventStore>,
    cleanup: Option<Box<dyn FnOnce()>>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Some(cleanup) = self.cleanup.take() {
            cleanup();
        }
    }
}

fn sqlite() -> Option<Backend> {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("state.db")).unwrap());
    Some(Backend {
        kind: Kind::Sql,
        other: store.clone(),
        store,
        cleanup: Some(Box::new(move || drop(dir))),
    })
}

fn postgres() -> Option<Backend> {
    let url = support::postgres_url()?;
    let schema = support::unique_schema();
    let store = Arc::new(PostgresStore::connect(&url, Some(&schema)).unwrap());
    let other = Arc::new(PostgresStore::connect(&url, Some(&schema)).unwrap());
    let owner = store.clone();
    Some(Backend {
        kind: Kind::Sql,
        store,
        other,
        cleanup: Some(Box::new(move || {
            owner.drop_schema(&schema).expect("dropping test schema")
        })),
    })
}

fn nats() -> Option<Backend> {
    let url = format!(
        "{}/{}",
        support::nats_url()?.trim_end_matches('/'),
        support::unique_namespace()
    );
    let store = Arc::new(NatsEvents::connect(&url).unwrap());
    let other = Arc::new(NatsEvents::connect(&url).unwrap());
    let owner = store.clone();
    Some(Backend {
        kind: Kind::Nats,
        store,
        other,
        cleanup: Some(Box::new(move || {
            owner.delete_streams().expect("deleting test streams")
        })),
    })
}

fn soon() -> Deadline {
    Deadline::after(Duration::from_secs(30))
}

fn publish(store: &dyn EventStore, topic: &str, source: &str, body: &str, to: &[&str]) -> String {
    let topic = Topic::parse(topic).unwrap();
    let event = NewEvent {
        topic: &topic,
        source,
        content_type: "text/plain",
        payload: body.as_bytes(),
        retention: Duration::from_secs(3600),
        retention_count: 1000,
    };
    store.publish(&event, to, soon()).unwrap().id
}

fn want(plugin: &str, max_in_flight: u32, lanes: u32, batch: u32) -> Want {
    Want {
        plugin: plugin.into(),
        max_in_flight,
        lanes,
        batch,
    }
}

/// The first batch host `h2` claims for `plugin` through `store`, freeing lapsed leases
/// between tries; fails with `never` after 20 s.
fn first_claimed(store: &dyn EventStore, plugin: &str, never: &str) -> Vec<Delivery> {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        store.reap().unwrap();
        let claimed = store
            .claim("h2", &[want(plugin, 1, 1, 10)], Duration::from_secs(30))
            .unwrap();
        if let Some(batch) = claimed.into_iter().next() {
            return batch;
        }
        assert!(Instant::now() < until, "{never}");
        std::thread::yield_now();
    }
}

fn lane_of(batch: &[Delivery]) -> Lane {
    batch[0].lane()
}

fn all(batch: &[Delivery], outcome: Outcome) -> Vec<Settled> {
    batch
        .iter()
        .map(|d| Settled {
            id: d.id.clone(),
            outcome: outcome.clone(),
        })
        .collect()
}

fn states(store: &dyn EventStore, plugin: &str) -> Vec<(String, DeliveryState, u32)> {
    let mut rows: Vec<_> = store
        .deliveries(&DeliveryQuery {
            plugin: Some(plugin.into()),
            limit: 1000,
            ..Default::default()
        })
        .unwrap()
        .into_iter()
        .map(|d| (d.event_id, d.state, d.attempt))
        .collect();
    rows.reverse();
    rows
}

fn bodies(batch: &[Delivery]) -> Vec<String> {
    batch
        .iter()
        .map(|d| String::from_utf8(d.payload.clone()).unwrap())
        .collect()
}

fn each_subscriber_gets_one_delivery_per_event_in_publish_order(b: &Backend) {
    let store = &*b.store;
    let first = publish(store, "orders.created", "shop", "1", &["mail", "stats"]);
    publish(store, "orders.created", "shop", "2", &["mail", "stats"]);
    publish(store, "orders.created", "shop", "3", &["mail"]);
    let lanes = store
        .claim(
            "h1",
            &[want("mail", 4, 4, 10), want("stats", 4, 4, 10)],
            Duration::from_secs(30),
        )
        .unwrap();
    assert_eq!(lanes.len(), 2, "one lane per subscriber");
    let mail = lanes.iter().find(|l| l[0].plugin == "mail").unwrap();
    let stats = lanes.iter().find(|l| l[0].plugin == "stats").unwrap();
    assert_eq!(bodies(mail), ["1", "2", "3"]);
    assert_eq!(bodies(stats), ["1", "2"]);
    assert_eq!(mail[0].event_id, first);
    assert_eq!(mail[0].attempt, 1);
    assert_eq!(mail[0].source, "shop");
    for lane in &lanes {
        store
            .settle("h1", &lane_of(lane), &all(lane, Outcome::Delivered))
            .unwrap();
    }
    let rows = states(store, "mail");
    match b.kind {
        Kind::Sql => assert!(rows.iter().all(|(_, s, _)| *s == DeliveryState::Delivered)),
        Kind::Nats => assert!(
            rows.is_empty(),
            "acknowledged deliveries are gone: {rows:?}"
        ),
    }
    let again = store
        .claim("h1", &[want("mail", 4, 4, 10)], Duration::from_secs(30))
        .unwrap();
    assert!(
        again.is_empty(),
        "delivered events are not delivered again: {again:?}"
    );
}

fn a_retry_holds_its_lane_back_and_comes_first(b: &Backend) {
    let store = &*b.store;
    for body in ["a", "b", "c"] {
        publish(store, "jobs.done", "worker", body, &["sink"]);
    }
    let lane = store
        .claim("h1", &[want("sink", 4, 4, 10)], Duration::from_secs(30))
        .unwrap()
        .remove(0);
    let mut settled = vec![Settled {
        id: lane[0].id.clone(),
        outcome: Outcome::Retry {
            after: Duration::ZERO,
            error: "not yet".into(),
        },
    }];
    settled.extend(all(&lane[1..], Outcome::Released));
    store.settle("h1", &lane_of(&lane), &settled).unwrap();
    let again = store
        .claim("h1", &[want("sink", 4, 4, 10)], Duration::from_secs(30))
        .unwrap()
        .remove(0);
    assert_eq!(
        bodies(&again),
        ["a", "b", "c"],
        "publish order holds after a retry"
    );
    assert_eq!(
        again.iter().map(|d| d.attempt).collect::<Vec<_>>(),
        [2, 1, 1],
        "only the retried delivery counts a second attempt"
    );
    let rows = states(store, "sink");
    assert_eq!(rows[0].1, DeliveryState::Leased);
}

fn a_delayed_retry_blocks_its_lane_until_due_but_not_other_lanes(b: &Backend) {
    let store = &*b.store;
    publish(store, "a.x", "p", "held", &["sub"]);
    publish(store, "b.x", "p", "free", &["sub"]);
    let lanes = store
        .claim("h1", &[want("sub", 4, 4, 10)], Duration::from_secs(30))
        .unwrap();
    let expected = match b.kind {
        Kind::Sql => 2,
        Kind::Nats => 1,
    };
    assert_eq!(
        lanes.len(),
        expected,
        "SQL lanes are per topic, NATS per subscriber"
    );
    for lane in &lanes {
        let settled: Vec<Settled> = lane
            .iter()
            .map(|d| Settled {
                id: d.id.clone(),
                outcome: if d.topic == "a.x" {
                    Outcome::Retry {
                        after: Duration::from_secs(3600),
                        error: "later".into(),
                    }
                } else {
                    Outcome::Released
                },
            })
            .collect();
        store.settle("h1", &lane_of(lane), &settled).unwrap();
    }
    let lanes = store
        .claim("h1", &[want("sub", 4, 4, 10)], Duration::from_secs(30))
        .unwrap();
    assert_eq!(lanes.len(), 1, "what waits for its retry is not claimed");
    assert_eq!(bodies(&lanes[0]), ["free"]);
}

fn max_in_flight_bounds_what_is_leased_across_hosts(b: &Backend) {
    if b.kind == Kind::Nats {
        return max_in_flight_bounds_unacknowledged_deliveries(b);
    }
    for topic in ["t.one", "t.two", "t.three"] {
        publish(&*b.store, topic, "p", topic, &["busy"]);
    }
    let first = b
        .store
        .claim("h1", &[want("busy", 2, 8, 10)], Duration::from_secs(30))
        .unwrap();
    assert_eq!(first.len(), 2);
    let second = b
        .other
        .claim("h2", &[want("busy", 2, 8, 10)], Duration::from_secs(30))
        .unwrap();
    assert!(
        second.is_empty(),
        "two lanes are leased already: {second:?}"
    );
    b.store
        .settle(
            "h1",
            &lane_of(&first[0]),
            &all(&first[0], Outcome::Delivered),
        )
        .unwrap();
    let third = b
        .other
        .claim("h2", &[want("busy", 2, 8, 10)], Duration::from_secs(30))
        .unwrap();
    assert_eq!(third.len(), 1, "a freed lane lets one more in");
}

/// NATS: `max_in_flight` batches of a subscriber are unacknowledged at once, cluster-wide.
fn max_in_flight_bounds_unacknowledged_deliveries(b: &Backend) {
    for n in 0..25 {
        publish(&*b.store, "t.many", "p", &n.to_string(), &["busy"]);
    }
    let first = b
        .store
        .claim("h1", &[want("busy", 1, 8, 10)], Duration::from_secs(30))
        .unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].len(), 10);
    let second = b
        .other
        .claim("h2", &[want("busy", 1, 8, 10)], Duration::from_secs(30))
        .unwrap();
    assert!(second.is_empty(), "one batch is leased already: {second:?}");
    b.store
        .settle(
            "h1",
            &lane_of(&first[0]),
            &all(&first[0], Outcome::Delivered),
        )
        .unwrap();
    let third = b
        .other
        .claim("h2", &[want("busy", 1, 8, 10)], Duration::from_secs(30))
        .unwrap();
    assert_eq!(
        bodies(&third[0]),
        (10..20).map(|n| n.to_string()).collect::<Vec<_>>(),
        "the next batch, in order"
    );
}

fn a_lapsed_lease_frees_the_lane_for_another_host_with_the_same_event(b: &Backend) {
    let id = publish(&*b.store, "orders.created", "shop", "x", &["mail"]);
    // Long enough that the second host's first claim, right after, cannot miss it on a
    // loaded machine; short enough that waiting for it to lapse stays cheap.
    let lease = Duration::from_secs(1);
    let taken = b
        .store
        .claim("dead-host", &[want("mail", 1, 1, 10)], lease)
        .unwrap()
        .remove(0);
    assert!(
        b.other
            .claim("h2", &[want("mail", 1, 1, 10)], lease)
            .unwrap()
            .is_empty(),
        "leased to the first host"
    );
    let again = first_claimed(&*b.other, "mail", "the lease never lapsed");
    assert_eq!(
        again[0].event_id, id,
        "a redelivery carries the same event id"
    );
    match b.kind {
        Kind::Sql => assert_eq!(again[0].attempt, 2),
        // JetStream counts what its server sent, claimed or not: under load (a CI run
        // saw 3) the count may run ahead of the claims. The event id does not change.
        Kind::Nats => assert!(again[0].attempt >= 2, "a redelivery: {again:?}"),
    }
    if b.kind == Kind::Sql {
        b.store
            .settle(
                "dead-host",
                &lane_of(&taken),
                &all(&taken, Outcome::Delivered),
            )
            .unwrap();
    }
    assert_eq!(
        states(&*b.other, "mail")[0].1,
        DeliveryState::Leased,
        "the vanished host's late settle changes nothing"
    );
    b.other
        .settle("h2", &lane_of(&again), &all(&again, Outcome::Delivered))
        .unwrap();
    let rows = states(&*b.other, "mail");
    match b.kind {
        Kind::Sql => assert_eq!(rows[0].1, DeliveryState::Delivered),
        Kind::Nats => assert!(rows.is_empty(), "acknowledged: {rows:?}"),
    }
}

fn dead_letters_replay_with_a_fresh_attempt_count(b: &Backend) {
    let store = &*b.store;
    publish(store, "poison.pill", "p", "x", &["victim"]);
    let lane = store
        .claim("h1", &[want("victim", 1, 1, 10)], Duration::from_secs(30))
        .unwrap()
        .remove(0);
    store
        .settle(
            "h1",
            &lane_of(&lane),
            &all(
                &lane,
                Outcome::Dead {
                    error: "rejected: no".into(),
                },
            ),
        )
        .unwrap();
    let dead = store
        .deliveries(&DeliveryQuery {
            state: Some(DeliveryState::Dead),
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].last_error.as_deref(), Some("rejected: no"));
    let Replay::Replayed(replayed) = store.replay(&dead[0].id).unwrap() else {
        panic!("a dead letter replays")
    };
    assert_eq!(
        (replayed.state, replayed.attempt),
        (DeliveryState::Pending, 0)
    );
    assert!(
        !matches!(store.replay(&dead[0].id).unwrap(), Replay::Replayed(_)),
        "a dead letter replays once"
    );
    assert_eq!(store.replay("0000000000000000").unwrap(), Replay::Missing);
    let again = store
        .claim("h1", &[want("victim", 1, 1, 10)], Duration::from_secs(30))
        .unwrap()
        .remove(0);
    assert_eq!(
        (
            again[0].id.as_str(),
            again[0].attempt,
            again[0].payload.as_slice()
        ),
        (replayed.id.as_str(), 1, b"x".as_slice())
    );
}

fn only_subscribers_at_publish_time_receive_and_removal_drops_pending(b: &Backend) {
    let store = &*b.store;
    publish(store, "news.a", "p", "old", &["early"]);
    publish(store, "news.a", "p", "new", &["early", "late"]);
    assert_eq!(states(store, "early").len(), 2);
    assert_eq!(
        states(store, "late").len(),
        1,
        "a later subscriber sees no older event"
    );
    assert_eq!(store.drop_plugin("early").unwrap(), 2);
    assert!(states(store, "early").is_empty());
    assert_eq!(states(store, "late").len(), 1, "others keep theirs");
    let listed = store
        .events(&EventQuery {
            topic: Some("news.a".into()),
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(listed.len(), 2, "events stay listed");
    assert_eq!(listed[0].size, 3, "newest first");
}

fn a_subscriber_removed_and_installed_again_through_one_host_is_served_by_another(b: &Backend) {
    publish(&*b.store, "news.a", "p", "before", &["reader"]);
    let first = b
        .other
        .claim("h2", &[want("reader", 1, 1, 10)], Duration::from_secs(30))
        .unwrap()
        .remove(0);
    b.other
        .settle("h2", &lane_of(&first), &all(&first, Outcome::Delivered))
        .unwrap();
    b.store.drop_plugin("reader").unwrap();
    publish(&*b.store, "news.a", "p", "after", &["reader"]);
    // NATS hosts look their consumers up again every few seconds.
    let again = first_claimed(&*b.other, "reader", "the other host never served it");
    assert_eq!(bodies(&again), ["after"]);
}

fn retention_prunes_only_what_no_delivery_waits_for(b: &Backend) {
    let store = &*b.store;
    let topic = Topic::parse("metrics.tick").unwrap();
    let mut ids = Vec::new();
    for n in 0..5 {
        let body = n.to_string();
        let event = NewEvent {
            topic: &topic,
            source: "p",
            content_type: "text/plain",
            payload: body.as_bytes(),
            retention: Duration::from_secs(3600),
            retention_count: 2,
        };
        let to: &[&str] = if n == 0 { &["slow"] } else { &[] };
        ids.push(store.publish(&event, to, soon()).unwrap().id);
    }
    assert_eq!(
        store.prune().unwrap(),
        2,
        "events 1 and 2 are past the count"
    );
    let kept: Vec<String> = store
        .events(&EventQuery {
            limit: 10,
            ..Default::default()
        })
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(
        kept,
        [ids[4].clone(), ids[3].clone(), ids[0].clone()],
        "event 0 waits for its delivery"
    );
}

macro_rules! conformance {
    ($backend:ident: $($test:ident),* $(,)?) => {
        mod $backend {
            $(
                #[test]
                fn $test() {
                    let Some(b) = super::$backend() else { return };
                    super::$test(&b);
                }
            )*
        }
    };
}

conformance!(sqlite:
    each_subscriber_gets_one_delivery_per_event_in_publish_order,
    a_retry_holds_its_lane_back_and_comes_first,
    a_delayed_retry_blocks_its_lane_until_due_but_not_other_lanes,
    max_in_flight_bounds_what_is_leased_across_hosts,
    a_lapsed_lease_frees_the_lane_for_another_host_with_the_same_event,
    dead_letters_replay_with_a_fresh_attempt_count,
    only_subscribers_at_publish_time_receive_and_removal_drops_pending,
    a_subscriber_removed_and_installed_again_through_one_host_is_served_by_another,
    retention_prunes_only_what_no_delivery_waits_for,
);

conformance!(postgres:
    each_subscriber_gets_one_delivery_per_event_in_publish_order,
    a_retry_holds_its_lane_back_and_comes_first,
    a_delayed_retry_blocks_its_lane_until_due_but_not_other_lanes,
    max_in_flight_bounds_what_is_leased_across_hosts,
    a_lapsed_lease_frees_the_lane_for_another_host_with_the_same_event,
    dead_letters_replay_with_a_fresh_attempt_count,
    only_subscribers_at_publish_time_receive_and_removal_drops_pending,
    a_subscriber_removed_and_installed_again_through_one_host_is_served_by_another,
    retention_prunes_only_what_no_delivery_waits_for,
);

// Retention is the streams' age and per-topic count in NATS, not a prune the host runs.
conformance!(nats:
    each_subscriber_gets_one_delivery_per_event_in_publish_order,
    a_retry_holds_its_lane_back_and_comes_first,
    a_delayed_retry_blocks_its_lane_until_due_but_not_other_lanes,
    max_in_flight_bounds_what_is_leased_across_hosts,
    a_lapsed_lease_frees_the_lane_for_another_host_with_the_same_event,
    dead_letters_replay_with_a_fresh_attempt_count,
    only_subscribers_at_publish_time_receive_and_removal_drops_pending,
    a_subscriber_removed_and_installed_again_through_one_host_is_served_by_another,
);
