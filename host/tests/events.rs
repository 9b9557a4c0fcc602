//! Events on the real binary: an order published through a route reaches its subscriber
//! (and the subscriber's own count agrees with the delivery rows), denials next to the
//! legitimate path, retries with attempts 1–3, dead letters that replay, the host's own
//! `capstan.…` facts, disabled and removed subscribers, and two hosts on PostgreSQL (and
//! on NATS JetStream) delivering every event with one of them killed mid-stream.

mod harness;

use capstan_host::capability::kv::KvStore;
use harness::support::{nats_url, plugin, postgres_url, unique_namespace, unique_schema};
use harness::*;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

const POLICY: &str = r#"
[defaults.capabilities.routes]
[plugins.orders.capabilities.kv]
[plugins.orders.capabilities.events]
publish = ["orders.>"]
request = ["notify.*"]
publish_rate = 100000
[plugins.notifier.capabilities.kv]
max_keys = 100000
[plugins.notifier.capabilities.events]
subscribe = ["orders.*"]
claims = ["notify.*"]
[plugins.probe.capabilities.kv]
[plugins.probe.capabilities.events]
publish = ["probe.>", "capstan.>"]
subscribe = ["flaky.>", "stubborn.>", "poison.>", "slow.>", "capstan.plugin.*"]
request = ["notify.*"]
max_attempts = 3
backoff = "20ms"
[plugins.snoop.capabilities.events]
subscribe = ["orders.created"]
claims = ["notify.*"]
[plugins.patient.capabilities.kv]
[plugins.patient.capabilities.events]
subscribe = ["flaky.>"]
backoff = "10m"
"#;

const WAIT: Duration = Duration::from_secs(30);

fn probe_manifest(id: &str, events: &str) -> String {
    format!(
        "id = \"{id}\"\nversion = \"0.1.0\"\n[capabilities.routes]\n[capabilities.kv]\n\
         [capabilities.events]\n{events}"
    )
}

fn probe() -> String {
    std::fs::read_to_string(format!(
        "{}/../plugins/hostile/event-probe/capstan.toml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn install(server: &Server, name: &str) {
    let response = match name {
        "probe" => server.install_with_manifest(plugin("hostile_event_probe"), &probe()),
        _ => server.install(plugin(name)),
    };
    assert_eq!(
        response.status(),
        201,
        "{name}: {}",
        response.text().unwrap()
    );
}

fn post(server: &Server, path: &str, body: &str) -> (u16, Value) {
    let response = server
        .http
        .post(format!("{}/plugins/{path}", server.base))
        .body(body.to_string())
        .send()
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn publish(server: &Server, topic: &str, payload: Value) -> Value {
    let response = server
        .admin(Method::POST, "/events")
        .json(&json!({"topic": topic, "payload": payload}))
        .send()
        .unwrap();
    assert_eq!(response.status(), 201);
    response.json().unwrap()
}

fn deliveries(server: &Server, query: &str) -> Vec<Value> {
    let (status, list) = server.json(Method::GET, &format!("/deliveries?limit=10000&{query}"));
    assert_eq!(status, 200, "{list}");
    list.as_array().unwrap().clone()
}

fn counts(server: &Server) -> Value {
    let (status, body) = server.route("notifier/counts");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

#[test]
fn an_order_through_the_route_reaches_the_subscriber_and_the_counts_agree() {
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, &[]);
    install(&server, "notifier");
    install(&server, "orders");
    for n in 1..=5 {
        let (status, created) = post(
            &server,
            "orders/orders",
            &format!(r#"{{"item":"tea","quantity":{n}}}"#),
        );
        assert_eq!(status, 201, "{created}");
        assert_eq!(created["order"], n);
    }
    eventually(WAIT, "five orders counted", || {
        counts(&server)["orders"] == 5
    });
    let delivered = deliveries(&server, "plugin=notifier&state=delivered");
    assert_eq!(delivered.len(), 5, "one delivery row per order");
    assert_eq!(deliveries(&server, "plugin=notifier").len(), 5);
    assert!(
        delivered
            .iter()
            .all(|d| d["attempt"] == 1 && d["source"] == "orders")
    );
    assert_eq!(counts(&server)["redeliveries"], 0);

    let (status, events) = server.json(Method::GET, "/events?topic=orders.created");
    assert_eq!(status, 200);
    assert_eq!(events.as_array().unwrap().len(), 5);
    assert_eq!(
        server.metric("capstan_events_published_total{plugin=\"orders\",topic=\"orders.created\"}"),
        Some(5.0)
    );
    assert_eq!(
        server.metric(
            "capstan_event_deliveries_total{plugin=\"notifier\",topic=\"orders.created\",outcome=\"delivered\"}"
        ),
        Some(5.0)
    );

    let (status, answer) = post(&server, "orders/notify", "to=ops@example.com");
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer, "email 1 queued (18 bytes)");
    assert_eq!(counts(&server)["emails"], 1);
}

#[test]
fn denials_are_refused_with_their_codes_next_to_the_legitimate_path() {
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, &[]);
    install(&server, "notifier");
    install(&server, "probe");
    let denials_before = server
        .json(Method::GET, "/audit?plugin=probe&kind=denied")
        .1
        .as_array()
        .unwrap()
        .len();

    // Publishing: its granted topic works; another plugin's topic and the host's own are
    // refused, even though the policy lists `capstan.>` for it.
    let (_, ok) = post(&server, "probe/publish?topic=probe.hello", "hi");
    assert!(ok["ok"].is_string(), "{ok}");
    let (_, outside) = post(&server, "probe/publish?topic=orders.created", "{}");
    assert_eq!(outside["error"], "denied", "{outside}");
    let (_, reserved) = post(
        &server,
        "probe/publish?topic=capstan.plugin.installed",
        "{}",
    );
    assert_eq!(reserved["error"], "denied", "{reserved}");
    assert!(
        reserved["message"].as_str().unwrap().contains("host's own"),
        "{reserved}"
    );
    let (_, bad) = post(&server, "probe/publish?topic=Not..A.Topic", "{}");
    assert_eq!(bad["error"], "invalid-input", "{bad}");
    let audited = server
        .json(Method::GET, "/audit?plugin=probe&kind=denied")
        .1
        .as_array()
        .unwrap()
        .len();
    assert_eq!(audited, denials_before + 2, "each refusal is audited");
    let (_, from_probe) = server.json(Method::GET, "/events?source=probe");
    assert_eq!(
        from_probe.as_array().unwrap().len(),
        1,
        "only the granted event was stored"
    );

    // Requests: the granted kind reaches its claimant; another is refused.
    let (_, answer) = post(&server, "probe/request?kind=notify.email", "x");
    assert_eq!(answer["ok"], "email 1 queued (1 bytes)", "{answer}");
    let (_, refused) = post(&server, "probe/request?kind=billing.charge", "x");
    assert_eq!(refused["error"], "denied", "{refused}");
    let (_, nobody) = post(&server, "probe/request?kind=notify.sms", "x");
    assert_eq!(
        nobody["error"], "not-found",
        "no plugin holds notify.sms: {nobody}"
    );

    // A manifest subscribing to an ungranted topic: the capability is withheld, naming it,
    // and the plugin receives nothing.
    let snoop = probe_manifest("snoop", "subscribe = [\"payments.>\"]\n");
    let response = server.install_with_manifest(plugin("hostile_event_probe"), &snoop);
    assert_eq!(response.status(), 201);
    let info: Value = response.json().unwrap();
    let row = info["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["capability"] == "events")
        .unwrap()
        .clone();
    assert_eq!(row["decision"], "denied", "{row}");
    assert!(
        row["reason"]
            .as_str()
            .unwrap()
            .contains("subscribing to `payments.>`"),
        "{row}"
    );
    publish(&server, "payments.settled", json!({}));
    assert!(deliveries(&server, "plugin=snoop").is_empty());

    // A second claim of a held kind is refused naming the holder; the holder still answers.
    let thief = probe_manifest(
        "snoop",
        "subscribe = [\"orders.created\"]\nclaims = [\"notify.email\"]\n",
    );
    let response = server.install_with_manifest(plugin("hostile_event_probe"), &thief);
    assert_eq!(response.status(), 422);
    let refusal: Value = response.json().unwrap();
    assert_eq!(refusal["code"], "claim-taken", "{refusal}");
    assert!(
        refusal["message"].as_str().unwrap().contains("`notifier`"),
        "{refusal}"
    );
    let (_, answer) = post(&server, "probe/request?kind=notify.email", "x");
    assert_eq!(answer["ok"], "email 2 queued (1 bytes)", "{answer}");
}

#[test]
fn retries_are_delivered_again_and_rejections_become_dead_letters_that_replay() {
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, &[]);
    install(&server, "probe");

    // `flaky` asks for a retry twice, then takes it: three deliveries, attempts 1–3.
    let flaky = publish(&server, "flaky.one", json!({"n": 1}));
    let id = flaky["id"].as_str().unwrap();
    eventually(WAIT, "the flaky event delivered", || {
        deliveries(&server, &format!("event={id}"))[0]["state"] == "delivered"
    });
    let (_, seen) = post(&server, &format!("probe/deliveries?event={id}"), "");
    assert_eq!(seen["ok"], "1,2,3,");
    assert_eq!(deliveries(&server, &format!("event={id}"))[0]["attempt"], 3);
    assert_eq!(
        server.metric("capstan_event_deliveries_total{plugin=\"probe\",topic=\"flaky.one\",outcome=\"retried\"}"),
        Some(2.0)
    );

    // `stubborn` never takes it: a dead letter after the policy's three attempts.
    let stubborn = publish(&server, "stubborn.one", json!({}));
    let id = stubborn["id"].as_str().unwrap().to_string();
    eventually(WAIT, "the stubborn event dead-lettered", || {
        deliveries(&server, &format!("event={id}"))[0]["state"] == "dead"
    });
    let dead = &deliveries(&server, &format!("event={id}"))[0];
    assert_eq!(dead["attempt"], 3);
    assert!(
        dead["last_error"]
            .as_str()
            .unwrap()
            .contains("attempt 3 of 3"),
        "{dead}"
    );

    // `poison` is rejected at once; an operator replays it and it is rejected again.
    let poison = publish(&server, "poison.pill", json!({}));
    let id = poison["id"].as_str().unwrap().to_string();
    eventually(WAIT, "the poison event dead-lettered", || {
        deliveries(&server, &format!("event={id}"))[0]["state"] == "dead"
    });
    let dead = deliveries(&server, &format!("event={id}")).remove(0);
    assert_eq!(dead["attempt"], 1);
    assert!(
        dead["last_error"]
            .as_str()
            .unwrap()
            .starts_with("rejected: "),
        "{dead}"
    );
    let delivery = dead["id"].as_str().unwrap();
    let (status, replayed) = server.json(Method::POST, &format!("/deliveries/{delivery}/retry"));
    assert_eq!(status, 200, "{replayed}");
    assert_eq!(replayed["attempt"], 0);
    eventually(WAIT, "the replay delivered and rejected again", || {
        let (_, seen) = post(&server, &format!("probe/deliveries?event={id}"), "");
        seen["ok"] == "1,1,"
    });
    eventually(WAIT, "dead again", || {
        deliveries(&server, &format!("event={id}"))[0]["state"] == "dead"
    });
    let flaky_delivery = deliveries(&server, "state=delivered")
        .into_iter()
        .find(|d| d["topic"] == "flaky.one")
        .unwrap();
    let (status, refusal) = server.json(
        Method::POST,
        &format!(
            "/deliveries/{}/retry",
            flaky_delivery["id"].as_str().unwrap()
        ),
    );
    assert_eq!(
        (status, refusal["code"].as_str()),
        (409, Some("not-dead-letter"))
    );
    let (status, _) = server.json(Method::POST, "/deliveries/00000000deadbeef/retry");
    assert_eq!(status, 404);
}

#[test]
fn the_host_publishes_its_own_facts_to_granted_subscribers() {
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, &[]);
    install(&server, "probe");
    install(&server, "notifier");
    assert_eq!(
        server.json(Method::POST, "/plugins/notifier/disable").0,
        200
    );
    eventually(
        WAIT,
        "the probe saw notifier installed and disabled",
        || {
            let topics: Vec<Value> = deliveries(&server, "plugin=probe&state=delivered")
                .iter()
                .map(|d| d["topic"].clone())
                .collect();
            topics.contains(&json!("capstan.plugin.installed"))
                && topics.contains(&json!("capstan.plugin.disabled"))
        },
    );
    let (_, facts) = server.json(Method::GET, "/events?source=capstan&limit=100");
    let topics: Vec<&str> = facts
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["topic"].as_str().unwrap())
        .collect();
    assert!(topics.contains(&"capstan.plugin.installed"), "{topics:?}");
    let refused = server
        .admin(Method::POST, "/events")
        .json(&json!({"topic": "capstan.plugin.removed", "payload": {}}))
        .send()
        .unwrap();
    assert_eq!(
        refused.status(),
        422,
        "not even the admin API publishes there"
    );
    let body: Value = refused.json().unwrap();
    assert_eq!(body["code"], "reserved-topic");
}

#[test]
fn a_disabled_subscriber_keeps_its_pending_deliveries_and_a_removed_one_drops_them() {
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, &[]);
    let patient = probe_manifest("patient", "subscribe = [\"flaky.>\"]\n");
    assert_eq!(
        server
            .install_with_manifest(plugin("hostile_event_probe"), &patient)
            .status(),
        201
    );
    publish(&server, "flaky.slow", json!({}));
    eventually(
        WAIT,
        "the first attempt asked for a retry in ten minutes",
        || {
            let rows = deliveries(&server, "plugin=patient&state=pending");
            rows.len() == 1 && rows[0]["attempt"] == 1
        },
    );
    assert_eq!(server.json(Method::POST, "/plugins/patient/disable").0, 200);
    publish(&server, "flaky.while-disabled", json!({}));
    let rows = deliveries(&server, "plugin=patient");
    assert_eq!(
        rows.len(),
        1,
        "a disabled plugin receives nothing new: {rows:?}"
    );
    assert_eq!(rows[0]["state"], "pending", "its pending delivery is kept");

    let response = server
        .admin(Method::DELETE, "/plugins/patient")
        .send()
        .unwrap();
    assert_eq!(response.status(), 204);
    assert!(deliveries(&server, "plugin=patient").is_empty());
    let (_, audit) = server.json(Method::GET, "/audit?plugin=patient&kind=plugin-changed");
    assert!(
        audit.as_array().unwrap().iter().any(|r| r["detail"]
            .as_str()
            .unwrap()
            .contains("1 event deliveries not yet made were dropped")),
        "{audit}"
    );
}

#[test]
fn publishing_from_outside_is_checked_and_listed() {
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, &[]);
    let send = |body: Value| {
        server
            .admin(Method::POST, "/events")
            .json(&body)
            .send()
            .unwrap()
    };
    let response =
        send(json!({"topic": "ops.note", "data_base64": "aGk=", "content_type": "text/plain"}));
    assert_eq!(response.status(), 201);
    let event: Value = response.json().unwrap();
    assert_eq!(
        (event["size"].as_u64(), event["source"].as_str()),
        (Some(2), Some("capstan:admin"))
    );
    for (body, status, code) in [
        (
            json!({"topic": "Bad Topic", "payload": 1}),
            422,
            "invalid-topic",
        ),
        (json!({"topic": "a.b"}), 422, "invalid-payload"),
        (
            json!({"topic": "a.b", "payload": 1, "data_base64": "aGk="}),
            422,
            "invalid-payload",
        ),
        (
            json!({"topic": "a.b", "data_base64": "%%%"}),
            422,
            "invalid-payload",
        ),
        (
            json!({"topic": "a.b", "payload": 1, "content_type": "x\ny"}),
            422,
            "invalid-content-type",
        ),
        (
            json!({"topic": "a.b", "payload": "x".repeat(1024 * 1024 + 1)}),
            413,
            "too-large",
        ),
        (
            json!({"topic": "a.b", "payload": 1, "extra": true}),
            400,
            "bad-body",
        ),
    ] {
        let response = send(body.clone());
        assert_eq!(response.status(), status, "{body}");
        let error: Value = response.json().unwrap();
        assert_eq!(error["code"], code, "{body}: {error}");
    }
    let (_, listed) = server.json(Method::GET, "/events");
    assert_eq!(
        listed.as_array().unwrap().len(),
        1,
        "nothing refused was stored"
    );
    let (status, _) = server.json(Method::GET, "/deliveries?state=lost");
    assert_eq!(status, 400);
}

#[test]
fn a_subscriber_that_always_fails_holds_up_nobody_else() {
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, &[]);
    install(&server, "probe");
    install(&server, "notifier");
    install(&server, "orders");
    for n in 0..20 {
        publish(&server, &format!("stubborn.s{n}"), json!({}));
    }
    for n in 1..=5 {
        let order = format!(r#"{{"item":"x","quantity":{n}}}"#);
        assert_eq!(post(&server, "orders/orders", &order).0, 201);
    }
    eventually(WAIT, "the notifier got every order", || {
        counts(&server)["orders"] == 5
    });
    eventually(WAIT, "every stubborn event is a dead letter", || {
        deliveries(&server, "plugin=probe&state=dead").len() == 20
    });
    assert!(deliveries(&server, "plugin=notifier&state=dead").is_empty());
}

#[test]
fn sigterm_finishes_the_delivery_in_hand_and_hands_the_rest_back() {
    let (_keep, dir) = temp();
    let mut server = start(&dir, POLICY, &[]);
    install(&server, "probe");
    let ids: Vec<String> = (0..6)
        .map(|n| {
            publish(&server, "slow.work", json!({"n": n}))["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let attempts = |server: &Server, id: &str| {
        post(server, &format!("probe/deliveries?event={id}"), "").1["ok"].clone()
    };
    eventually(WAIT, "the first slow event delivered", || {
        attempts(&server, &ids[0]) == "1,"
    });
    terminate(&server);
    let status = server.child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");

    // Restarted, the host delivers what was handed back at once, each event exactly once:
    // a lease left to lapse would have counted a second attempt.
    let server = start(&dir, POLICY, &[]);
    eventually(WAIT, "every slow event delivered", || {
        deliveries(&server, "plugin=probe&state=delivered")
            .iter()
            .filter(|d| d["topic"] == "slow.work")
            .count()
            == ids.len()
    });
    for id in &ids {
        assert_eq!(
            attempts(&server, id),
            "1,",
            "event {id} was delivered once, as attempt 1"
        );
    }
}

#[test]
fn a_publish_token_publishes_on_its_topics_only_until_revoked() {
    let (_keep, dir) = temp();
    let server = start(&dir, POLICY, &[]);
    let created: Value = server
        .admin(Method::POST, "/events/publishers")
        .json(&json!({"name": "billing", "topics": ["payments.*"]}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let token = created["token"].as_str().unwrap().to_string();
    let id = created["publisher"]["id"].as_str().unwrap().to_string();
    assert!(token.starts_with("cevt_"), "{created}");
    let send = |token: &str, method: Method, path: &str, body: Value| {
        server
            .http
            .request(method, format!("{}/admin/v1{path}", server.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .unwrap()
    };
    let event = json!({"topic": "payments.settled", "payload": {"amount": 5}});
    let published = send(&token, Method::POST, "/events", event.clone());
    assert_eq!(published.status(), 201);
    let record: Value = published.json().unwrap();
    assert_eq!(record["source"], format!("capstan:publisher:{id}"));

    let outside = send(
        &token,
        Method::POST,
        "/events",
        json!({"topic": "orders.created", "payload": 1}),
    );
    assert_eq!(outside.status(), 403);
    assert_eq!(
        outside.json::<Value>().unwrap()["code"],
        "topic-not-granted"
    );
    let reserved = send(
        &token,
        Method::POST,
        "/events",
        json!({"topic": "capstan.plugin.removed", "payload": 1}),
    );
    assert_eq!(reserved.status(), 403);
    assert_eq!(
        send(&token, Method::GET, "/plugins", Value::Null).status(),
        401,
        "it is not an admin token"
    );
    assert_eq!(
        send(&token, Method::GET, "/events", Value::Null).status(),
        401
    );
    let forged = format!("cevt_{}", "0".repeat(64));
    assert_eq!(
        send(&forged, Method::POST, "/events", event.clone()).status(),
        401
    );

    let (_, listed) = server.json(Method::GET, "/events/publishers");
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(
        !listed.to_string().contains(&token),
        "tokens are never listed"
    );
    let (status, _) = server.json(Method::DELETE, &format!("/events/publishers/{id}"));
    assert_eq!(status, 204);
    assert_eq!(
        send(&token, Method::POST, "/events", event).status(),
        401,
        "revoked"
    );
    let (_, published) = server.json(Method::GET, "/events?topic=payments.settled");
    assert_eq!(
        published.as_array().unwrap().len(),
        1,
        "only the granted publish was stored"
    );
}

/// Two hosts on one PostgreSQL: 10,000 orders through both; one host is killed with
/// SIGKILL mid-stream. The notifier counts each event id once and every redelivery
/// apart: every stored event is delivered, none twice as a new order.
#[test]
fn two_hosts_deliver_ten_thousand_events_and_a_killed_host_loses_none() {
    let Some(url) = postgres_url() else { return };
    let schema = unique_schema();
    let args = [
        "--database-url",
        url.as_str(),
        "--database-schema",
        schema.as_str(),
    ];
    let state = capstan_host::storage::PostgresStore::connect(&url, Some(&schema)).unwrap();
    // Every stored event delivered; nothing pending, leased or dead.
    let (stored, counted, _) = two_hosts_with_one_killed(&args, 10_000, &state, |stored| {
        BTreeMap::from([("delivered".to_string(), stored)])
    });
    assert_eq!(
        counted, stored,
        "a publish is one transaction: nothing delivered that is not listed"
    );
    let _ = state.drop_schema(&schema);
}

/// The same with the events in NATS JetStream (`--events-url`) and the registry in
/// PostgreSQL: 2,000 orders, one host killed, every listed event counted once. A publish
/// cut short may have delivered an event it never listed (its copies are stored before
/// its record): by the kill, or by its call's deadline on the loaded host that is left.
/// Each such order got no 201, so there are at most as many as orders that got none.
#[test]
fn two_hosts_on_nats_deliver_every_event_and_a_killed_host_loses_none() {
    let Some(url) = postgres_url() else { return };
    let Some(nats) = nats_url() else { return };
    let schema = unique_schema();
    let events_url = format!("{}/{}", nats.trim_end_matches('/'), unique_namespace());
    let args = [
        "--database-url",
        url.as_str(),
        "--database-schema",
        schema.as_str(),
        "--events-url",
        events_url.as_str(),
    ];
    let state = capstan_host::storage::PostgresStore::connect(&url, Some(&schema)).unwrap();
    // Nothing pending, leased or dead (delivered ones leave the queue).
    let (stored, counted, unanswered) =
        two_hosts_with_one_killed(&args, 2_000, &state, |_| BTreeMap::new());
    assert!(
        (stored..=stored + unanswered).contains(&counted),
        "{counted} counted for {stored} listed and {unanswered} orders without a 201"
    );
    if let Ok(store) = capstan_host::storage::NatsEvents::connect(&events_url) {
        let _ = store.delete_streams();
    }
    let _ = state.drop_schema(&schema);
}

/// Connections posting orders in the two-host tests.
const CLIENTS: usize = 4;

/// Post `total` orders through two hosts started with `args`, SIGKILL the second at half
/// way, and wait until the notifier has seen every listed event (its `seen:<id>` keys in
/// `state`) and its listed deliveries by state are `settled(events listed)` (settling
/// follows the plugin's writes). Returns the events listed, the orders it counted, and the
/// orders posted that got no 201 (the warm-up's tries included).
fn two_hosts_with_one_killed(
    args: &[&str],
    total: usize,
    state: &dyn KvStore,
    settled: impl Fn(usize) -> BTreeMap<String, usize>,
) -> (usize, usize, usize) {
    let (_keep, dir) = temp();
    let key = "cd".repeat(32);
    let env = [("CAPSTAN_MASTER_KEY", key.as_str())];
    let a = start_with(&dir.join("a"), POLICY, args, &env);
    let mut b = start_with(&dir.join("b"), POLICY, args, &env);
    install(&a, "notifier");
    install(&a, "orders");
    let mut warm_ups_unanswered = 0;
    eventually(WAIT, "B serves orders", || {
        let answered = post(&b, "orders/orders", r#"{"item":"warm-up","quantity":1}"#).0 == 201;
        warm_ups_unanswered += usize::from(!answered);
        answered
    });

    let accepted = std::sync::atomic::AtomicUsize::new(1);
    let sent = std::sync::atomic::AtomicUsize::new(1);
    let killed = std::sync::atomic::AtomicBool::new(false);
    let b_base = b.base.clone();
    std::thread::scope(|scope| {
        for client in 0..CLIENTS {
            let (a, b_base, accepted, sent, killed) = (&a, &b_base, &accepted, &sent, &killed);
            scope.spawn(move || {
                let http = reqwest::blocking::Client::new();
                loop {
                    let n = sent.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if n >= total {
                        break;
                    }
                    let through_b =
                        n % 2 == client % 2 && !killed.load(std::sync::atomic::Ordering::SeqCst);
                    let base = if through_b {
                        b_base.as_str()
                    } else {
                        a.base.as_str()
                    };
                    let response = http
                        .post(format!("{base}/plugins/orders/orders"))
                        .body(format!(r#"{{"item":"n{n}","quantity":1}}"#))
                        .send();
                    if response.is_ok_and(|r| r.status() == 201) {
                        accepted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                }
            });
        }
        let (b_child, killed, sent) = (&mut b.child, &killed, &sent);
        scope.spawn(move || {
            let until = std::time::Instant::now() + WAIT;
            while sent.load(std::sync::atomic::Ordering::SeqCst) < total / 2
                && std::time::Instant::now() < until
            {
                std::thread::yield_now();
            }
            b_child.kill().unwrap();
            b_child.wait().unwrap();
            killed.store(true, std::sync::atomic::Ordering::SeqCst);
        });
    });
    let accepted = accepted.into_inner();
    let (_, events) = a.json(
        Method::GET,
        &format!("/events?topic=orders.created&limit={total}"),
    );
    let listed: Vec<String> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    let stored = listed.len();
    assert!(
        stored >= accepted,
        "every accepted order was published: {stored} < {accepted}"
    );
    assert!(
        accepted > total * 9 / 10,
        "most requests were accepted: {accepted}"
    );
    let by_state = || {
        deliveries(&a, "plugin=notifier").iter().fold(
            BTreeMap::<String, usize>::new(),
            |mut map, d| {
                *map.entry(d["state"].as_str().unwrap().to_string())
                    .or_default() += 1;
                map
            },
        )
    };
    let mut unseen = listed;
    let counting = std::time::Instant::now();
    loop {
        unseen.retain(|id| {
            let key = format!("seen:{id}");
            let deadline = capstan_host::capability::Deadline::after(WAIT);
            state.get("notifier", &key, deadline).unwrap().is_none()
        });
        if unseen.is_empty() {
            break;
        }
        assert!(
            counting.elapsed() < Duration::from_secs(600),
            "{} of {stored} listed events never reached the notifier (e.g. {}); deliveries by state {:?}",
            unseen.len(),
            unseen[0],
            by_state()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let expected = settled(stored);
    let waited = std::time::Instant::now();
    loop {
        let now = by_state();
        if now == expected {
            break;
        }
        assert!(
            waited.elapsed() < WAIT,
            "deliveries by state {now:?}, expected {expected:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let counts = counts(&a);
    let counted = counts["orders"].as_u64().unwrap() as usize;
    let redelivered = counts["redeliveries"].as_u64().unwrap();
    eprintln!(
        "{accepted} accepted, {stored} events listed, every one delivered; {counted} counted as new, {redelivered} redeliveries after the kill"
    );
    // The warm-up's 201 is counted in `accepted` (it starts at 1) and the clients post
    // the other `total - 1` orders.
    let unanswered = warm_ups_unanswered + (total - accepted);
    (stored, counted, unanswered)
}
