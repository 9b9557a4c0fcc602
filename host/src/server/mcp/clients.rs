//! MCP clients as the gateway sees them: tokens (a client's, or a session's, which stands
//! for a client seeing that session's tools) resolved to clients through a short-lived
//! cache (so a revocation made through another host of a cluster takes effect within
//! [`LOOKUP_TTL`]), and each client's request-rate bucket on this host.

use crate::capability::mcp::clients::{session_client, token_hash};
use crate::capability::mcp::{McpClient, McpClientStore};
use crate::rate::RateLimiter;
use crate::storage::{StateStore, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// How long a token lookup (found or not) is reused before the store is asked again.
pub const LOOKUP_TTL: Duration = Duration::from_millis(500);
/// Cached lookups kept at most; a flood of made-up tokens cannot grow the cache further.
const MAX_CACHED: usize = 4096;

struct Cached {
    client: Option<Arc<McpClient>>,
    fetched: Instant,
}

/// Token → client, with a bounded cache and per-client rate buckets.
pub struct ClientDirectory {
    store: Arc<dyn StateStore>,
    cache: Mutex<HashMap<String, Cached>>,
    rates: Mutex<HashMap<String, Arc<RateLimiter>>>,
}

impl ClientDirectory {
    /// A directory over the clients in `store`.
    pub fn new(store: Arc<dyn StateStore>) -> ClientDirectory {
        ClientDirectory {
            store,
            cache: Mutex::new(HashMap::new()),
            rates: Mutex::new(HashMap::new()),
        }
    }

    /// The store clients live in (for the admin API).
    pub fn store(&self) -> &dyn McpClientStore {
        &*self.store
    }

    /// The live client whose token is `token`: `Ok(None)` when it is unknown, revoked or
    /// expired. Store lookups run on a blocking thread.
    pub async fn resolve(&self, token: &str) -> Result<Option<Arc<McpClient>>, StoreError> {
        let hash = token_hash(token);
        let cached = self.cached(&hash);
        let client = match cached {
            Some(client) => client,
            None => {
                let store = self.store.clone();
                let key = hash.clone();
                let of_session = token.starts_with(crate::sessions::TOKEN_PREFIX);
                let found = tokio::task::spawn_blocking(move || match of_session {
                    true => Ok(store
                        .session_by_token(&key)?
                        .map(|session| session_client(&session))),
                    false => store.client_by_token(&key),
                })
                .await
                .map_err(|_| StoreError::Backend("the token lookup panicked".into()))??
                .map(Arc::new);
                self.remember(hash, found.clone());
                found
            }
        };
        let now = crate::audit::to_millis(SystemTime::now());
        Ok(client.filter(|client| !client.expired_at(now)))
    }

    fn cached(&self, hash: &str) -> Option<Option<Arc<McpClient>>> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(hash)
            .filter(|entry| entry.fetched.elapsed() < LOOKUP_TTL)
            .map(|entry| entry.client.clone())
    }

    fn remember(&self, hash: String, client: Option<Arc<McpClient>>) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_CACHED {
            cache.retain(|_, entry| entry.fetched.elapsed() < LOOKUP_TTL);
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
        }
        cache.insert(
            hash,
            Cached {
                client,
                fetched: Instant::now(),
            },
        );
    }

    /// Drop every cached lookup (after a client is created or revoked on this host).
    pub fn forget(&self) {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Whether `client` may make one more request now (always, without a rate).
    pub fn admit(&self, client: &McpClient) -> bool {
        let Some(rate) = client.rate_per_minute else {
            return true;
        };
        let bucket = {
            let mut rates = self.rates.lock().unwrap_or_else(|p| p.into_inner());
            rates
                .entry(client.id.clone())
                .or_insert_with(|| Arc::new(RateLimiter::per_minute(rate)))
                .clone()
        };
        bucket.try_take()
    }

    /// The live client with id `id` (the anonymous client of a conformance listener).
    pub async fn resolve_id(&self, id: &str) -> Result<Option<Arc<McpClient>>, StoreError> {
        Ok(self.live().await?.remove(id))
    }

    /// Every live client, by id (the notifier drops subscribers of revoked ones). The
    /// store is read on a blocking thread.
    pub async fn live(&self) -> Result<HashMap<String, Arc<McpClient>>, StoreError> {
        let store = self.store.clone();
        let clients = tokio::task::spawn_blocking(move || store.clients())
            .await
            .map_err(|_| StoreError::Backend("the client lookup panicked".into()))??;
        let now = crate::audit::to_millis(SystemTime::now());
        Ok(clients
            .into_iter()
            .filter(|client| !client.expired_at(now))
            .map(|client| (client.id.clone(), Arc::new(client)))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capability::mcp::NewClient;
    use crate::capability::mcp::clients::new_token;
    use crate::storage::MemoryKv;

    fn client(rate: Option<u32>) -> McpClient {
        NewClient {
            name: "agent".into(),
            plugins: vec!["tools".into()],
            rate_per_minute: rate,
            ..NewClient::default()
        }
        .check(SystemTime::now())
        .unwrap()
    }

    #[tokio::test]
    async fn a_token_resolves_until_it_is_revoked_and_forgotten() {
        let store = Arc::new(MemoryKv::default());
        let directory = ClientDirectory::new(store.clone());
        let client = client(None);
        let (token, hash) = new_token();
        store.add_client(&client, &hash).unwrap();
        assert_eq!(
            directory.resolve(&token).await.unwrap().unwrap().id,
            client.id
        );
        assert!(directory.resolve("cmcp_forged").await.unwrap().is_none());
        store.remove_client(&client.id).unwrap();
        directory.forget();
        assert!(directory.resolve(&token).await.unwrap().is_none());
    }

    #[test]
    fn each_client_has_its_own_rate_bucket() {
        let directory = ClientDirectory::new(Arc::new(MemoryKv::default()));
        let limited = client(Some(2));
        let other = client(Some(2));
        assert!(directory.admit(&limited) && directory.admit(&limited));
        assert!(!directory.admit(&limited));
        assert!(directory.admit(&other));
        assert!((0..100).all(|_| directory.admit(&client(None))));
    }
}
