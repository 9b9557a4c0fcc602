//! Events in NATS JetStream, for clusters that would rather not queue deliveries in their
//! database (`serve --events-url nats://host:4222[/namespace]`). It needs JetStream on
//! NATS 2.9 or later and keeps three streams per namespace:
//!
//! - `<NS>_EVENTS` holds each event's record (`<ns>.ev.<topic>`, no payload), for listings;
//! - `<NS>_DELIVERIES`, a work queue, holds one message per recipient
//!   (`<ns>.to.<plugin>.<topic>`, with the payload), removed once acknowledged; each
//!   subscriber has a durable pull consumer over its own subjects, so a plugin that
//!   subscribes later sees nothing published before;
//! - `<NS>_DEAD` holds dead letters (`<ns>.dead.<plugin>`).
//!
//! A lease is the consumer's ack wait (renewed with `+WPI`), a retry is a `NAK` with the
//! backoff as its delay, a dead letter is copied to `<NS>_DEAD` and the delivery
//! terminated, and a replay publishes it to its plugin again. Publishes also send an empty
//! `<ns>.wake` so other hosts' deliverers look at once.
//!
//! What differs from the SQL backends: a publish stores its recipients' copies one after
//! another and then the event's record, not atomically (a failure mid-way may leave
//! copies of an event that is not listed, never a listed event missing a copy); order
//! holds per subscriber on one host (each takes one batch of it at a time) but two hosts
//! may deliver batches of one subscriber at once, `max_in_flight` × batch bounding its
//! unacknowledged deliveries; a retried event comes back after later ones instead of
//! holding its lane; a batch handed back unstarted by another host counts an attempt, and
//! attempts are JetStream's count of sends, which under load may run ahead of the claims;
//! retention is the streams' age and count limits, not each plugin's (an undelivered copy
//! is dropped after 7 days); and delivery listings show the oldest undelivered deliveries
//! and dead letters (a delivered one is gone), those leased by other hosts as pending.

use crate::capability::Deadline;
use crate::capability::events::store::{Lane, Outcome, Replay};
use crate::capability::events::{
    DEFAULT_RETENTION, DEFAULT_RETENTION_COUNT, Delivery, DeliveryQuery, DeliveryRecord,
    DeliveryState, EventQuery, EventRecord, EventStore, NewEvent, Settled, Want,
};
use crate::storage::StoreError;
use async_nats::HeaderMap;
use async_nats::jetstream::message::StreamMessage;
use async_nats::jetstream::{self, AckKind, consumer, stream};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const EVENT_ID: &str = "Capstan-Event-Id";
const TOPIC: &str = "Capstan-Topic";
const SOURCE: &str = "Capstan-Source";
const CONTENT_TYPE: &str = "Capstan-Content-Type";
const PUBLISHED_MS: &str = "Capstan-Published-Ms";
const SIZE: &str = "Capstan-Size";
const PLUGIN: &str = "Capstan-Plugin";
const ATTEMPT: &str = "Capstan-Attempt";
const ERROR: &str = "Capstan-Error";
/// How long any one NATS operation may take.
const OPERATION: Duration = Duration::from_secs(10);
/// Dead letters kept.
const MAX_DEAD_LETTERS: i64 = 100_000;
/// How long a consumer is trusted to exist before it is looked up again (another host may
/// have deleted it when the plugin was removed, and a fetch from a deleted consumer just
/// finds nothing).
const CONSUMER_RECHECK: Duration = Duration::from_secs(2);
/// How long a claim waits for a subscriber's deliveries (all subscribers at once).
const FETCH_WAIT: Duration = Duration::from_millis(10);
/// Hand-backs remembered, at most.
const MAX_RELEASED: usize = 10_000;
/// Messages a listing reads, at most.
const MAX_SCAN: usize = 5_000;
/// A dead letter's id is this prefix and its sequence in `<NS>_DEAD`; a delivery's is its
/// sequence in `<NS>_DELIVERIES`.
const DEAD_PREFIX: &str = "dead-";

fn backend(error: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("nats: {error}"))
}

fn sequence_id(sequence: u64) -> String {
    format!("{sequence:016x}")
}

/// A subscriber's consumer as last ensured.
#[derive(Clone)]
struct Ensured {
    consumer: consumer::PullConsumer,
    max_ack_pending: i64,
    at: Instant,
}

/// A delivery this host holds.
struct Held {
    delivery: Delivery,
    message: jetstream::Message,
}

/// The event log in NATS JetStream.
pub struct NatsEvents {
    client: async_nats::Client,
    jetstream: jetstream::Context,
    /// Subject prefix (`capstan` unless the URL names another).
    namespace: String,
    /// The three streams, looked up once at connect.
    events: stream::Stream,
    deliveries: stream::Stream,
    dead: stream::Stream,
    /// Deliveries this host holds, by id.
    held: Mutex<HashMap<String, Held>>,
    /// Times this host handed a delivery back unstarted, by id: not attempts.
    released: Mutex<HashMap<String, u32>>,
    consumers: Mutex<HashMap<String, Ensured>>,
    /// Always `Some` until dropped; taken in `Drop` to shut down without blocking.
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for NatsEvents {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Where `--events-url` points: the server (without credentials, so no log of the client
/// library can show them), the credentials apart, and the namespace.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    server: String,
    /// `host:port`, for errors.
    shown: String,
    /// `user:password@`, or a token as `token@`.
    credentials: Option<(String, Option<String>)>,
    namespace: String,
}

/// `nats://[user:password@|token@]host:port[/namespace]` taken apart.
fn split(url: &str) -> Result<Target, StoreError> {
    let mut parsed = url::Url::parse(url)
        .map_err(|e| StoreError::Backend(format!("invalid events URL: {e}")))?;
    if !matches!(parsed.scheme(), "nats" | "tls") {
        return Err(StoreError::Backend(format!(
            "invalid events URL: `{}` is not nats:// or tls://",
            parsed.scheme()
        )));
    }
    let namespace = match parsed.path().trim_matches('/') {
        "" => "capstan".to_string(),
        named => named.to_string(),
    };
    if namespace.len() > 32
        || !namespace
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(StoreError::Backend(format!(
            "invalid events URL: namespace `{namespace}` must be 1–32 of a-z, 0-9 and `_`"
        )));
    }
    let decode = |text: &str| {
        percent_encoding::percent_decode_str(text)
            .decode_utf8_lossy()
            .into_owned()
    };
    let credentials = (!parsed.username().is_empty())
        .then(|| (decode(parsed.username()), parsed.password().map(decode)));
    let shown = format!(
        "{}:{}",
        parsed.host_str().unwrap_or_default(),
        parsed.port().unwrap_or(4222)
    );
    // Setting these only fails on URLs without a host, which `nats://` URLs always have.
    let _ = parsed.set_username("");
    let _ = parsed.set_password(None);
    parsed.set_path("");
    Ok(Target {
        server: parsed.as_str().trim_end_matches('/').to_string(),
        shown,
        credentials,
        namespace,
    })
}

fn header(headers: Option<&HeaderMap>, name: &str) -> String {
    headers
        .and_then(|h| h.get(name))
        .map(|v| v.as_str().to_string())
        .unwrap_or_default()
}

fn stream_config(name: String, subjects: Vec<String>) -> stream::Config {
    stream::Config {
        name,
        subjects,
        max_age: DEFAULT_RETENTION,
        duplicate_window: Duration::from_secs(120),
        allow_direct: true,
        ..Default::default()
    }
}

impl NatsEvents {
    /// Connect to `url` and make sure the streams exist.
    pub fn connect(url: &str) -> Result<NatsEvents, StoreError> {
        let Target {
            server,
            shown,
            credentials,
            namespace,
        } = split(url)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("capstan-nats")
            .enable_all()
            .build()
            .map_err(backend)?;
        let upper = namespace.to_uppercase();
        let (events, deliveries, dead) = (
            format!("{upper}_EVENTS"),
            format!("{upper}_DELIVERIES"),
            format!("{upper}_DEAD"),
        );
        let streams = [
            stream::Config {
                max_messages_per_subject: i64::from(DEFAULT_RETENTION_COUNT),
                ..stream_config(events.clone(), vec![format!("{namespace}.ev.>")])
            },
            stream::Config {
                retention: stream::RetentionPolicy::WorkQueue,
                ..stream_config(deliveries.clone(), vec![format!("{namespace}.to.>")])
            },
            stream::Config {
                max_messages: MAX_DEAD_LETTERS,
                max_age: Duration::ZERO,
                ..stream_config(dead.clone(), vec![format!("{namespace}.dead.>")])
            },
        ];
        let (client, jetstream, [events, deliveries, dead]) = runtime.block_on(async {
            let options = match credentials {
                Some((user, Some(password))) => {
                    async_nats::ConnectOptions::with_user_and_password(user, password)
                }
                Some((token, None)) => async_nats::ConnectOptions::with_token(token),
                None => async_nats::ConnectOptions::new(),
            };
            let client = tokio::time::timeout(OPERATION, options.connect(server.as_str()))
                .await
                .map_err(|_| backend(format!("connecting to {shown} timed out")))?
                .map_err(|e| backend(format!("connecting to {shown}: {e}")))?;
            let jetstream = jetstream::new(client.clone());
            let mut opened = Vec::with_capacity(streams.len());
            for config in streams {
                let name = config.name.clone();
                opened.push(
                    tokio::time::timeout(OPERATION, jetstream.get_or_create_stream(config))
                        .await
                        .map_err(|_| backend(format!("creating stream {name} timed out")))?
                        .map_err(|e| backend(format!("stream {name}: {e}")))?,
                );
            }
            let streams: [stream::Stream; 3] = opened
                .try_into()
                .map_err(|_| backend("three streams were configured"))?;
            Ok::<_, StoreError>((client, jetstream, streams))
        })?;
        Ok(NatsEvents {
            client,
            jetstream,
            namespace,
            events,
            deliveries,
            dead,
            held: Mutex::new(HashMap::new()),
            released: Mutex::new(HashMap::new()),
            consumers: Mutex::new(HashMap::new()),
            runtime: Some(runtime),
        })
    }

    /// Delete this namespace's streams (test clean-up).
    pub fn delete_streams(&self) -> Result<(), StoreError> {
        self.block_on(async {
            for stream in [&self.events, &self.deliveries, &self.dead] {
                let name = &stream.cached_info().config.name;
                self.jetstream.delete_stream(name).await.map_err(backend)?;
            }
            Ok(())
        })
    }

    fn block_on<R>(
        &self,
        future: impl Future<Output = Result<R, StoreError>>,
    ) -> Result<R, StoreError> {
        let runtime = self.runtime.as_ref().expect("runtime lives until drop");
        crate::blocking::off_executor(|| {
            runtime.block_on(async {
                tokio::time::timeout(OPERATION, future)
                    .await
                    .map_err(|_| StoreError::DeadlinePassed)?
            })
        })
    }

    fn lock_held(&self) -> std::sync::MutexGuard<'_, HashMap<String, Held>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_released(&self) -> std::sync::MutexGuard<'_, HashMap<String, u32>> {
        self.released.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_consumers(&self) -> std::sync::MutexGuard<'_, HashMap<String, Ensured>> {
        self.consumers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The subjects of `plugin`'s deliveries.
    fn inbox(&self, plugin: &str) -> String {
        format!("{}.to.{plugin}.>", self.namespace)
    }

    /// The consumer of `plugin`'s deliveries, created or updated to allow
    /// `max_ack_pending` unacknowledged deliveries, leased for `lease`.
    async fn consumer(
        &self,
        plugin: &str,
        max_ack_pending: i64,
        lease: Duration,
    ) -> Result<consumer::PullConsumer, StoreError> {
        let known = self.lock_consumers().get(plugin).cloned();
        if let Some(known) = known
            && known.max_ack_pending == max_ack_pending
            && known.at.elapsed() < CONSUMER_RECHECK
        {
            return Ok(known.consumer);
        }
        let stream = &self.deliveries;
        let config = consumer::pull::Config {
            durable_name: Some(plugin.to_string()),
            filter_subject: self.inbox(plugin),
            deliver_policy: consumer::DeliverPolicy::All,
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: lease,
            max_deliver: -1,
            max_ack_pending,
            ..Default::default()
        };
        let consumer = match stream.get_consumer::<consumer::pull::Config>(plugin).await {
            Ok(existing) if existing.cached_info().config.max_ack_pending == max_ack_pending => {
                existing
            }
            Ok(_) => stream.update_consumer(config).await.map_err(backend)?,
            Err(_) => stream.create_consumer(config).await.map_err(backend)?,
        };
        self.lock_consumers().insert(
            plugin.to_string(),
            Ensured {
                consumer: consumer.clone(),
                max_ack_pending,
                at: Instant::now(),
            },
        );
        Ok(consumer)
    }

    /// Up to `limit` messages of `stream` on `subject`, oldest first.
    async fn oldest(
        stream: &stream::Stream,
        subject: &str,
        limit: usize,
    ) -> Result<Vec<StreamMessage>, StoreError> {
        let mut found = Vec::new();
        let mut next = None;
        while found.len() < limit {
            match stream
                .direct_get_next_for_subject(subject, next.map(|s: u64| s + 1))
                .await
            {
                Ok(message) => {
                    next = Some(message.sequence);
                    found.push(message);
                }
                Err(error) if error.kind() == stream::DirectGetErrorKind::NotFound => break,
                Err(error) => return Err(backend(error)),
            }
        }
        Ok(found)
    }

    /// Up to `limit` messages of `stream`, newest first.
    async fn newest(
        stream: &stream::Stream,
        limit: usize,
    ) -> Result<Vec<StreamMessage>, StoreError> {
        let state = stream.get_info().await.map_err(backend)?.state;
        let mut found = Vec::new();
        let mut sequence = state.last_sequence;
        let mut read = 0;
        while sequence >= state.first_sequence.max(1) && read < MAX_SCAN && found.len() < limit {
            read += 1;
            match stream.direct_get(sequence).await {
                Ok(message) => found.push(message),
                Err(error) if error.kind() == stream::DirectGetErrorKind::NotFound => {}
                Err(error) => return Err(backend(error)),
            }
            sequence -= 1;
        }
        Ok(found)
    }

    fn pending_record(&self, message: &StreamMessage) -> DeliveryRecord {
        let headers = Some(&message.headers);
        let id = sequence_id(message.sequence);
        let leased = self.lock_held().contains_key(&id);
        DeliveryRecord {
            event_id: header(headers, EVENT_ID),
            plugin: header(headers, PLUGIN),
            topic: header(headers, TOPIC),
            source: header(headers, SOURCE),
            state: if leased {
                DeliveryState::Leased
            } else {
                DeliveryState::Pending
            },
            attempt: 0,
            due_ms: header(headers, PUBLISHED_MS).parse().unwrap_or(0),
            last_error: None,
            updated_ms: message.time.unix_timestamp() * 1000,
            id,
        }
    }

    fn dead_record(message: &StreamMessage) -> DeliveryRecord {
        let headers = Some(&message.headers);
        DeliveryRecord {
            id: format!("{DEAD_PREFIX}{}", sequence_id(message.sequence)),
            event_id: header(headers, EVENT_ID),
            plugin: header(headers, PLUGIN),
            topic: header(headers, TOPIC),
            source: header(headers, SOURCE),
            state: DeliveryState::Dead,
            attempt: header(headers, ATTEMPT).parse().unwrap_or(0),
            due_ms: 0,
            last_error: Some(header(headers, ERROR)),
            updated_ms: message.time.unix_timestamp() * 1000,
        }
    }

    /// Publish `payload` to `plugin`'s deliveries with the event's headers.
    async fn address(
        &self,
        event_id: &str,
        plugin: &str,
        mut headers: HeaderMap,
        topic: &str,
        payload: Vec<u8>,
    ) -> Result<jetstream::context::PublishAckFuture, StoreError> {
        headers.insert(PLUGIN, plugin);
        headers.insert("Nats-Msg-Id", format!("{event_id}.{plugin}").as_str());
        self.jetstream
            .publish_with_headers(
                format!("{}.to.{plugin}.{topic}", self.namespace),
                headers,
                payload.into(),
            )
            .await
            .map_err(backend)
    }

    /// The next batch of `want`'s deliveries, leased for `lease`.
    async fn take(
        &self,
        want: &Want,
        lease: Duration,
    ) -> Result<Vec<jetstream::Message>, StoreError> {
        let max_ack_pending = i64::from(want.max_in_flight.max(1)) * i64::from(want.batch);
        let consumer = self.consumer(&want.plugin, max_ack_pending, lease).await?;
        let mut batch = consumer
            .fetch()
            .max_messages(want.batch as usize)
            // With an expiry the server answers when messages come or it passes (without
            // one, a consumer at its cap of unacknowledged messages never answers).
            .expires(FETCH_WAIT)
            .messages()
            .await
            .map_err(backend)?;
        let mut messages = Vec::new();
        while let Some(message) = batch.next().await {
            match message {
                Ok(message) => messages.push(message),
                // Keep what came before a status (a leadership change, say): those are
                // leased to this host now.
                Err(_) if !messages.is_empty() => break,
                Err(error) => return Err(backend(error)),
            }
        }
        Ok(messages)
    }

    async fn wake(&self) -> Result<(), StoreError> {
        self.client
            .publish(format!("{}.wake", self.namespace), bytes::Bytes::new())
            .await
            .map_err(backend)
    }

    /// Copy `delivery` to the dead letters with why it died.
    async fn bury(&self, delivery: &Delivery, error: &str) -> Result<(), StoreError> {
        let mut headers = HeaderMap::new();
        headers.insert(EVENT_ID, delivery.event_id.as_str());
        headers.insert(TOPIC, delivery.topic.as_str());
        headers.insert(SOURCE, delivery.source.as_str());
        headers.insert(CONTENT_TYPE, delivery.content_type.as_str());
        headers.insert(PUBLISHED_MS, delivery.published_ms.to_string().as_str());
        headers.insert(PLUGIN, delivery.plugin.as_str());
        headers.insert(ATTEMPT, delivery.attempt.to_string().as_str());
        headers.insert(ERROR, crate::text::cap(error, 1000).as_ref());
        self.jetstream
            .publish_with_headers(
                format!("{}.dead.{}", self.namespace, delivery.plugin),
                headers,
                delivery.payload.clone().into(),
            )
            .await
            .map_err(backend)?
            .await
            .map_err(backend)?;
        Ok(())
    }
}

impl EventStore for NatsEvents {
    fn backend(&self) -> &'static str {
        "nats"
    }

    fn publish(
        &self,
        event: &NewEvent<'_>,
        subscribers: &[&str],
        deadline: Deadline,
    ) -> Result<EventRecord, StoreError> {
        let id = crate::secrets::random_hex(16);
        let published_ms = crate::audit::to_millis(std::time::SystemTime::now());
        let mut headers = HeaderMap::new();
        headers.insert(EVENT_ID, id.as_str());
        headers.insert(TOPIC, event.topic.as_str());
        headers.insert(SOURCE, event.source);
        headers.insert(CONTENT_TYPE, event.content_type);
        headers.insert(PUBLISHED_MS, published_ms.to_string().as_str());
        self.block_on(async {
            let work = async {
                // The recipients' copies are stored first and the record only then, so a
                // listed event was addressed to every recipient, whatever fails mid-way.
                let mut copies = Vec::with_capacity(subscribers.len());
                for plugin in subscribers {
                    copies.push(
                        self.address(
                            &id,
                            plugin,
                            headers.clone(),
                            event.topic.as_str(),
                            event.payload.to_vec(),
                        )
                        .await?,
                    );
                }
                for copy in copies {
                    copy.await.map_err(backend)?;
                }
                let mut record = headers.clone();
                record.insert("Nats-Msg-Id", id.as_str());
                record.insert(SIZE, event.payload.len().to_string().as_str());
                self.jetstream
                    .publish_with_headers(
                        format!("{}.ev.{}", self.namespace, event.topic),
                        record,
                        bytes::Bytes::new(),
                    )
                    .await
                    .map_err(backend)?
                    .await
                    .map_err(backend)?;
                Ok::<_, StoreError>(())
            };
            tokio::time::timeout(deadline.remaining(), work)
                .await
                .map_err(|_| StoreError::DeadlinePassed)??;
            if !subscribers.is_empty()
                && let Err(error) = self.wake().await
            {
                // Stored all the same: the other hosts' deliverers poll too.
                tracing::warn!("waking other hosts after a publish failed: {error}");
            }
            Ok(())
        })?;
        Ok(EventRecord {
            id,
            topic: event.topic.to_string(),
            source: event.source.to_string(),
            content_type: event.content_type.to_string(),
            published_ms,
            size: event.payload.len() as u64,
        })
    }

    fn claim(
        &self,
        _host: &str,
        wants: &[Want],
        lease: Duration,
    ) -> Result<Vec<Vec<Delivery>>, StoreError> {
        let busy: Vec<String> = self
            .lock_held()
            .values()
            .map(|held| held.delivery.plugin.clone())
            .collect();
        let fetched = self.block_on(async {
            let takes = wants
                .iter()
                .filter(|w| !busy.contains(&w.plugin))
                .map(|want| async move {
                    let mut taken = self.take(want, lease).await;
                    if taken.is_err() {
                        // The consumer may have been deleted by another host (the plugin
                        // was removed, perhaps installed again): ensure it afresh.
                        self.lock_consumers().remove(&want.plugin);
                        taken = self.take(want, lease).await;
                    }
                    (want, taken)
                });
            let mut fetched = Vec::new();
            for (want, taken) in futures_util::future::join_all(takes).await {
                match taken {
                    Ok(messages) if messages.is_empty() => {}
                    Ok(messages) => fetched.push((want.plugin.clone(), messages)),
                    Err(error) => {
                        tracing::warn!(plugin = %want.plugin, "claiming event deliveries failed: {error}");
                    }
                }
            }
            Ok(fetched)
        })?;
        let mut lanes = Vec::with_capacity(fetched.len());
        let mut held = self.lock_held();
        let released = self.lock_released();
        for (plugin, messages) in fetched {
            let mut batch = Vec::with_capacity(messages.len());
            for message in messages {
                let Ok(info) = message.info() else {
                    continue;
                };
                let id = sequence_id(info.stream_sequence);
                let delivered = u32::try_from(info.delivered).unwrap_or(u32::MAX);
                let headers = message.headers.as_ref();
                let delivery = Delivery {
                    attempt: delivered
                        .saturating_sub(released.get(&id).copied().unwrap_or(0))
                        .max(1),
                    event_id: header(headers, EVENT_ID),
                    plugin: plugin.clone(),
                    topic: header(headers, TOPIC),
                    source: header(headers, SOURCE),
                    published_ms: header(headers, PUBLISHED_MS).parse().unwrap_or(0),
                    content_type: header(headers, CONTENT_TYPE),
                    payload: message.payload.to_vec(),
                    id: id.clone(),
                };
                held.insert(
                    id,
                    Held {
                        delivery: delivery.clone(),
                        message,
                    },
                );
                batch.push(delivery);
            }
            lanes.push(batch);
        }
        Ok(lanes)
    }

    fn renew(&self, _host: &str, lanes: &[Lane], _lease: Duration) -> Result<(), StoreError> {
        let messages: Vec<jetstream::Message> = self
            .lock_held()
            .values()
            .filter(|held| lanes.iter().any(|lane| lane.plugin == held.delivery.plugin))
            .map(|held| held.message.clone())
            .collect();
        self.block_on(async {
            for message in messages {
                message.ack_with(AckKind::Progress).await.map_err(backend)?;
            }
            Ok(())
        })
    }

    fn settle(&self, _host: &str, _lane: &Lane, settled: &[Settled]) -> Result<(), StoreError> {
        let taken: Vec<(String, Held, Outcome)> = {
            let mut held = self.lock_held();
            settled
                .iter()
                .filter_map(|s| Some((s.id.clone(), held.remove(&s.id)?, s.outcome.clone())))
                .collect()
        };
        {
            let mut released = self.lock_released();
            for (id, _, outcome) in &taken {
                if matches!(outcome, Outcome::Released) {
                    if released.len() >= MAX_RELEASED {
                        // Hand-backs of deliveries other hosts then took are never settled
                        // here: forget them all rather than grow (attempts may count high).
                        released.clear();
                    }
                    *released.entry(id.clone()).or_default() += 1;
                } else if matches!(outcome, Outcome::Delivered | Outcome::Dead { .. }) {
                    // Finished: a retry keeps its count of hand-backs (not attempts).
                    released.remove(id);
                }
            }
        }
        self.block_on(async {
            // Settle every delivery even when one fails, and report the first failure.
            let mut failed = None;
            let mut acks = Vec::with_capacity(taken.len());
            for (_, held, outcome) in taken {
                let kind = match outcome {
                    Outcome::Delivered => AckKind::Ack,
                    Outcome::Retry { after, .. } if after.is_zero() => AckKind::Nak(None),
                    Outcome::Retry { after, .. } => AckKind::Nak(Some(after)),
                    Outcome::Released => AckKind::Nak(None),
                    Outcome::Dead { error } => match self.bury(&held.delivery, &error).await {
                        Ok(()) => AckKind::Term,
                        Err(error) => {
                            // Not buried: let it come back rather than vanish.
                            failed.get_or_insert(error);
                            AckKind::Nak(None)
                        }
                    },
                };
                acks.push(async move { held.message.double_ack_with(kind).await });
            }
            // The server confirms each once it has applied it, so a claim made after this
            // returns sees the deliveries settled.
            for acked in futures_util::future::join_all(acks).await {
                if let Err(error) = acked {
                    failed.get_or_insert(backend(error));
                }
            }
            failed.map_or(Ok(()), Err)
        })
    }

    fn reap(&self) -> Result<u64, StoreError> {
        // The server redelivers what was not acknowledged within the ack wait.
        Ok(0)
    }

    fn events(&self, query: &EventQuery) -> Result<Vec<EventRecord>, StoreError> {
        let filtered = query.topic.is_some() || query.source.is_some();
        let wanted = if filtered {
            MAX_SCAN
        } else {
            (query.limit as usize).min(MAX_SCAN)
        };
        let found = self.block_on(Self::newest(&self.events, wanted))?;
        Ok(found
            .iter()
            .map(|m| {
                let headers = Some(&m.headers);
                EventRecord {
                    id: header(headers, EVENT_ID),
                    topic: header(headers, TOPIC),
                    source: header(headers, SOURCE),
                    content_type: header(headers, CONTENT_TYPE),
                    published_ms: header(headers, PUBLISHED_MS).parse().unwrap_or(0),
                    size: header(headers, SIZE).parse().unwrap_or(0),
                }
            })
            .filter(|e| query.topic.as_ref().is_none_or(|t| *t == e.topic))
            .filter(|e| query.source.as_ref().is_none_or(|s| *s == e.source))
            .take(query.limit as usize)
            .collect())
    }

    fn deliveries(&self, query: &DeliveryQuery) -> Result<Vec<DeliveryRecord>, StoreError> {
        let admits = |r: &DeliveryRecord| {
            query.plugin.as_ref().is_none_or(|p| *p == r.plugin)
                && query.state.is_none_or(|s| s == r.state)
                && query.event_id.as_ref().is_none_or(|e| *e == r.event_id)
        };
        let limit = query.limit as usize;
        let mut records = Vec::new();
        if query.state.is_none_or(|s| s == DeliveryState::Dead) {
            let subject = match &query.plugin {
                Some(plugin) => format!("{}.dead.{plugin}", self.namespace),
                None => format!("{}.dead.>", self.namespace),
            };
            let dead = self.block_on(Self::oldest(&self.dead, &subject, MAX_SCAN))?;
            records.extend(dead.iter().map(Self::dead_record).filter(admits));
        }
        if query
            .state
            .is_none_or(|s| matches!(s, DeliveryState::Pending | DeliveryState::Leased))
        {
            let subject = match &query.plugin {
                Some(plugin) => self.inbox(plugin),
                None => format!("{}.to.>", self.namespace),
            };
            let open = self.block_on(Self::oldest(&self.deliveries, &subject, MAX_SCAN))?;
            records.extend(open.iter().map(|m| self.pending_record(m)).filter(admits));
        }
        records.sort_by_key(|r| std::cmp::Reverse(r.updated_ms));
        records.truncate(limit);
        Ok(records)
    }

    fn replay(&self, id: &str) -> Result<Replay, StoreError> {
        let Some(sequence) = id
            .strip_prefix(DEAD_PREFIX)
            .and_then(|hex| u64::from_str_radix(hex, 16).ok())
        else {
            let Ok(sequence) = u64::from_str_radix(id, 16) else {
                return Ok(Replay::Missing);
            };
            let found =
                self.block_on(async { Ok(self.deliveries.direct_get(sequence).await.ok()) })?;
            return Ok(match found {
                Some(message) => Replay::NotDead(self.pending_record(&message)),
                None => Replay::Missing,
            });
        };
        self.block_on(async {
            let stream = &self.dead;
            let Ok(message) = stream.direct_get(sequence).await else {
                return Ok(Replay::Missing);
            };
            let record = Self::dead_record(&message);
            let mut headers = HeaderMap::new();
            for name in [EVENT_ID, TOPIC, SOURCE, CONTENT_TYPE, PUBLISHED_MS] {
                headers.insert(name, header(Some(&message.headers), name).as_str());
            }
            let replay = format!(
                "{}.replay-{}",
                record.event_id,
                crate::secrets::random_hex(4)
            );
            let ack = self
                .address(
                    &replay,
                    &record.plugin,
                    headers,
                    &record.topic,
                    message.payload.to_vec(),
                )
                .await?
                .await
                .map_err(backend)?;
            stream.delete_message(sequence).await.map_err(backend)?;
            if let Err(error) = self.wake().await {
                tracing::warn!("waking other hosts after a replay failed: {error}");
            }
            Ok(Replay::Replayed(DeliveryRecord {
                id: sequence_id(ack.sequence),
                state: DeliveryState::Pending,
                attempt: 0,
                last_error: None,
                ..record
            }))
        })
    }

    fn drop_plugin(&self, plugin: &str) -> Result<u64, StoreError> {
        self.lock_consumers().remove(plugin);
        let dropped: Vec<String> = {
            let mut held = self.lock_held();
            let ids: Vec<String> = held
                .iter()
                .filter(|(_, h)| h.delivery.plugin == plugin)
                .map(|(id, _)| id.clone())
                .collect();
            for id in &ids {
                held.remove(id);
            }
            ids
        };
        {
            let mut released = self.lock_released();
            for id in &dropped {
                released.remove(id);
            }
        }
        self.block_on(async {
            let stream = &self.deliveries;
            if stream
                .get_consumer::<consumer::pull::Config>(plugin)
                .await
                .is_ok()
            {
                stream.delete_consumer(plugin).await.map_err(backend)?;
            }
            let purged = stream
                .purge()
                .filter(self.inbox(plugin))
                .await
                .map_err(backend)?;
            Ok(purged.purged)
        })
    }

    fn prune(&self) -> Result<u64, StoreError> {
        // The streams' own limits (age, count per topic) discard old events.
        Ok(0)
    }

    fn wakes(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<()>> {
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        let client = self.client.clone();
        let subject = format!("{}.wake", self.namespace);
        self.runtime.as_ref()?.spawn(async move {
            let Ok(mut wakes) = client.subscribe(subject).await else {
                return;
            };
            while wakes.next().await.is_some() {
                if sender.send(()).is_err() {
                    break;
                }
            }
        });
        Some(receiver)
    }
}

#[cfg(test)]
mod tests {
    use super::{NatsEvents, Target, split};

    #[test]
    fn the_url_names_the_server_and_an_optional_namespace() {
        assert_eq!(
            split("nats://127.0.0.1:4222").unwrap(),
            Target {
                server: "nats://127.0.0.1:4222".into(),
                shown: "127.0.0.1:4222".into(),
                credentials: None,
                namespace: "capstan".into(),
            }
        );
        let target = split("nats://ops:p%40ss@n1:4222/prod_a").unwrap();
        assert_eq!(target.namespace, "prod_a");
        assert_eq!(target.server, "nats://n1:4222", "no credentials in the URL");
        assert_eq!(
            target.credentials,
            Some(("ops".to_string(), Some("p@ss".to_string())))
        );
        assert_eq!(
            split("nats://s3cret@n1").unwrap().credentials,
            Some(("s3cret".to_string(), None))
        );
        assert!(split("http://n1:4222").is_err());
        assert!(split("nats://n1/Bad.Name").is_err());
    }

    #[test]
    fn a_failed_connection_names_the_server_but_not_its_credentials() {
        let Err(error) = NatsEvents::connect("nats://alice:hunter2@127.0.0.1:1/ns") else {
            panic!("nothing listens on port 1")
        };
        let text = error.to_string();
        assert!(text.contains("127.0.0.1:1"), "{text}");
        assert!(
            !text.contains("hunter2") && !text.contains("alice"),
            "{text}"
        );
    }
}
