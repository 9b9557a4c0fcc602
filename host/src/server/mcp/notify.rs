//! `notifications/tools/list_changed`: after every change of the live plugin set (made
//! here or caught up from another host), each connected client whose own tool list
//! changed is told, on its legacy session's GET stream or its 2026 `subscriptions/listen`
//! stream. Clients whose list did not change hear nothing; revoked clients are dropped
//! (and their listen streams ended) at the next change.

use super::Hub;
use crate::capability::mcp::McpClient;
use rmcp::service::{SubscriptionSendError, SubscriptionSink};
use rmcp::{Peer, RoleServer};
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

/// Where one client listens.
#[derive(Clone)]
enum Target {
    /// A legacy session (its GET stream).
    Session(Peer<RoleServer>),
    /// A 2026 `subscriptions/listen` stream, and the token that ends it.
    Stream(SubscriptionSink, CancellationToken),
}

#[derive(Clone)]
struct Subscriber {
    key: u64,
    client: String,
    target: Target,
    /// Fingerprint of the tool list this client was last told about.
    seen: u64,
}

/// Every connected listener.
#[derive(Default)]
pub struct Subscribers {
    next: AtomicU64,
    all: Mutex<Vec<Subscriber>>,
}

/// A fingerprint of what `client` sees: names and the exact plugin builds behind them, so
/// an upgrade counts as a change too.
fn fingerprint(hub: &Hub, client: &McpClient) -> u64 {
    let mut hasher = DefaultHasher::new();
    for tool in hub.visible(client) {
        tool.shown.hash(&mut hasher);
        tool.server.plugin.admission().sha256.hash(&mut hasher);
    }
    hasher.finish()
}

impl Subscribers {
    fn add(&self, hub: &Hub, client: &McpClient, target: Target) -> u64 {
        let key = self.next.fetch_add(1, Ordering::Relaxed);
        let subscriber = Subscriber {
            key,
            client: client.id.clone(),
            target,
            seen: fingerprint(hub, client),
        };
        self.lock().push(subscriber);
        key
    }

    /// A legacy session that finished `initialize`.
    pub fn add_session(&self, hub: &Hub, client: &McpClient, peer: Peer<RoleServer>) {
        self.add(hub, client, Target::Session(peer));
    }

    /// A 2026 listen stream; returns the key to remove it by when it ends, and a token
    /// cancelled when the server ends it (its client was revoked).
    pub fn add_stream(
        &self,
        hub: &Hub,
        client: &McpClient,
        sink: SubscriptionSink,
    ) -> (u64, CancellationToken) {
        let ended = CancellationToken::new();
        let key = self.add(hub, client, Target::Stream(sink, ended.clone()));
        (key, ended)
    }

    pub fn remove(&self, key: u64) {
        self.lock().retain(|subscriber| subscriber.key != key);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Subscriber>> {
        self.all.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Tell every subscriber whose list changed; drop closed and revoked ones. Counted
    /// when done, so an observer of the count knows every send of the pass happened.
    async fn announce(&self, hub: &Hub) {
        self.notify_changed(hub).await;
        hub.app.metrics.mcp_announcements.inc();
    }

    async fn notify_changed(&self, hub: &Hub) {
        let live = match hub.clients().live().await {
            Ok(live) => live,
            Err(error) => {
                tracing::warn!("cannot announce tool-list changes: {error}");
                return;
            }
        };
        let subscribers = self.lock().clone();
        let mut gone = Vec::new();
        let mut told = Vec::new();
        for subscriber in subscribers {
            let Some(client) = live.get(&subscriber.client) else {
                if let Target::Stream(_, ended) = &subscriber.target {
                    ended.cancel();
                }
                gone.push(subscriber.key);
                continue;
            };
            let now = fingerprint(hub, client);
            if now == subscriber.seen {
                continue;
            }
            let delivered = match &subscriber.target {
                Target::Session(peer) => {
                    !peer.is_transport_closed() && peer.notify_tool_list_changed().await.is_ok()
                }
                Target::Stream(sink, _) => !matches!(
                    sink.notify_tool_list_changed().await,
                    Err(SubscriptionSendError::SubscriptionClosed)
                ),
            };
            if delivered {
                hub.app.metrics.mcp_notifications.inc();
                told.push((subscriber.key, now));
            } else {
                gone.push(subscriber.key);
            }
        }
        let mut all = self.lock();
        all.retain(|subscriber| !gone.contains(&subscriber.key));
        for subscriber in all.iter_mut() {
            if let Some((_, seen)) = told.iter().find(|(key, _)| *key == subscriber.key) {
                subscriber.seen = *seen;
            }
        }
    }
}

/// Announce every change of the registry's live set, in order, until the host stops.
pub fn spawn(hub: Arc<Hub>, mut changes: tokio::sync::watch::Receiver<u64>) {
    tokio::spawn(async move {
        while changes.changed().await.is_ok() {
            hub.subscribers.announce(&hub).await;
        }
    });
}
