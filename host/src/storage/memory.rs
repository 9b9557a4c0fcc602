//! In-memory key-value backend: one `BTreeMap` per namespace behind a mutex.

use super::StoreError;
use crate::capability::Deadline;
use crate::capability::config::ConfigStore;
use crate::capability::events::publishers::{Publisher, PublisherStore};
use crate::capability::kv::{KeyPage, KvStore, MAX_PAGE, Quota, Update, Updated, Usage, page};
use crate::capability::mcp::{McpClient, McpClientStore};
use crate::secrets::{Sealed, SecretError, SecretStore};
use crate::sessions::{Session, SessionId, SessionStore};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

#[derive(Default)]
struct Namespace {
    entries: BTreeMap<String, Vec<u8>>,
    usage: Usage,
}

/// Keys and values held in process memory; gone when the process exits.
#[derive(Default)]
pub struct MemoryKv {
    namespaces: Mutex<HashMap<String, Namespace>>,
    secrets: Mutex<BTreeMap<(String, String), Sealed>>,
    config: Mutex<HashMap<String, Map<String, Value>>>,
    clients: Tokened<McpClient>,
    publishers: Tokened<Publisher>,
    sessions: Tokened<Session>,
}

/// Records reached by a bearer token, with their token hashes, oldest first.
struct Tokened<T>(Mutex<Vec<(T, String)>>);

impl<T> Default for Tokened<T> {
    fn default() -> Self {
        Tokened(Mutex::new(Vec::new()))
    }
}

impl<T: Clone> Tokened<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(T, String)>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn add(&self, record: &T, token_hash: &str) {
        self.lock().push((record.clone(), token_hash.to_string()));
    }

    fn all(&self) -> Vec<T> {
        self.lock()
            .iter()
            .map(|(record, _)| record.clone())
            .collect()
    }

    fn by_token(&self, token_hash: &str) -> Option<T> {
        self.lock()
            .iter()
            .find(|(_, hash)| hash == token_hash)
            .map(|(record, _)| record.clone())
    }

    fn find(&self, is: impl Fn(&T) -> bool) -> Option<T> {
        self.lock()
            .iter()
            .find(|(record, _)| is(record))
            .map(|(record, _)| record.clone())
    }

    /// Put `record` in place of the one `is` picks (its token stays); whether there was
    /// one.
    fn replace(&self, record: &T, is: impl Fn(&T) -> bool) -> bool {
        let mut records = self.lock();
        match records.iter_mut().find(|(held, _)| is(held)) {
            Some((held, _)) => {
                *held = record.clone();
                true
            }
            None => false,
        }
    }

    /// Whether a record `is` picked was removed.
    fn remove(&self, is: impl Fn(&T) -> bool) -> bool {
        let mut records = self.lock();
        let before = records.len();
        records.retain(|(record, _)| !is(record));
        records.len() < before
    }
}

impl MemoryKv {
    fn with<R>(&self, namespace: &str, f: impl FnOnce(&mut Namespace) -> R) -> R {
        let mut all = self.namespaces.lock().unwrap_or_else(|p| p.into_inner());
        f(all.entry(namespace.to_string()).or_default())
    }
}

impl KvStore for MemoryKv {
    fn get(&self, namespace: &str, key: &str, _: Deadline) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.with(namespace, |ns| ns.entries.get(key).cloned()))
    }

    fn delete(&self, namespace: &str, key: &str, _: Deadline) -> Result<bool, StoreError> {
        Ok(self.with(namespace, |ns| match ns.entries.remove(key) {
            Some(old) => {
                ns.usage = ns.usage.after_delete(key, old.len());
                true
            }
            None => false,
        }))
    }

    fn list_keys(
        &self,
        namespace: &str,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
        _: Deadline,
    ) -> Result<KeyPage, StoreError> {
        let limit = limit.clamp(1, MAX_PAGE) as usize;
        Ok(self.with(namespace, |ns| {
            let keys = ns
                .entries
                .keys()
                .filter(|k| k.starts_with(prefix) && cursor.is_none_or(|c| k.as_str() > c))
                .take(limit + 1)
                .cloned()
                .collect();
            page(keys, limit)
        }))
    }

    fn update(
        &self,
        namespace: &str,
        key: &str,
        update: Update<'_>,
        quota: Quota,
        _: Deadline,
    ) -> Result<Updated, StoreError> {
        self.with(namespace, |ns| {
            let current = ns.entries.get(key);
            let (next, outcome) = update.apply(key, current.map(Vec::as_slice))?;
            if let Some(value) = next {
                ns.usage = ns
                    .usage
                    .after_put(key, current.map(Vec::len), value.len(), quota)?;
                ns.entries.insert(key.to_string(), value);
            }
            Ok(outcome)
        })
    }
}

impl MemoryKv {
    fn secrets(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String), Sealed>> {
        self.secrets.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl SecretStore for MemoryKv {
    fn put_secret(&self, plugin: &str, name: &str, sealed: &Sealed) -> Result<(), StoreError> {
        self.secrets()
            .insert((plugin.into(), name.into()), sealed.clone());
        Ok(())
    }

    fn get_secret(&self, plugin: &str, name: &str) -> Result<Option<Sealed>, StoreError> {
        Ok(self.secrets().get(&(plugin.into(), name.into())).cloned())
    }

    fn delete_secret(&self, plugin: &str, name: &str) -> Result<bool, StoreError> {
        Ok(self
            .secrets()
            .remove(&(plugin.into(), name.into()))
            .is_some())
    }

    fn list_secrets(&self, plugin: Option<&str>) -> Result<Vec<(String, String)>, StoreError> {
        Ok(self
            .secrets()
            .keys()
            .filter(|(p, _)| plugin.is_none_or(|want| p == want))
            .cloned()
            .collect())
    }

    fn reseal_all(
        &self,
        reseal: &dyn Fn(&str, &str, &Sealed) -> Result<Sealed, SecretError>,
    ) -> Result<usize, SecretError> {
        let mut secrets = self.secrets();
        let mut resealed = BTreeMap::new();
        for ((plugin, name), sealed) in secrets.iter() {
            resealed.insert(
                (plugin.clone(), name.clone()),
                reseal(plugin, name, sealed)?,
            );
        }
        let count = resealed.len();
        *secrets = resealed;
        Ok(count)
    }
}

impl ConfigStore for MemoryKv {
    fn config(&self, plugin: &str) -> Result<Option<Map<String, Value>>, StoreError> {
        let config = self.config.lock().unwrap_or_else(|p| p.into_inner());
        Ok(config.get(plugin).cloned())
    }

    fn set_config(&self, plugin: &str, values: &Map<String, Value>) -> Result<(), StoreError> {
        let mut config = self.config.lock().unwrap_or_else(|p| p.into_inner());
        config.insert(plugin.to_string(), values.clone());
        Ok(())
    }
}

impl McpClientStore for MemoryKv {
    fn add_client(&self, client: &McpClient, token_hash: &str) -> Result<(), StoreError> {
        self.clients.add(client, token_hash);
        Ok(())
    }

    fn clients(&self) -> Result<Vec<McpClient>, StoreError> {
        Ok(self.clients.all())
    }

    fn client_by_token(&self, token_hash: &str) -> Result<Option<McpClient>, StoreError> {
        Ok(self.clients.by_token(token_hash))
    }

    fn remove_client(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.clients.remove(|client| client.id == id))
    }
}

impl PublisherStore for MemoryKv {
    fn add_publisher(&self, publisher: &Publisher, token_hash: &str) -> Result<(), StoreError> {
        self.publishers.add(publisher, token_hash);
        Ok(())
    }

    fn publishers(&self) -> Result<Vec<Publisher>, StoreError> {
        Ok(self.publishers.all())
    }

    fn publisher_by_token(&self, token_hash: &str) -> Result<Option<Publisher>, StoreError> {
        Ok(self.publishers.by_token(token_hash))
    }

    fn remove_publisher(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.publishers.remove(|publisher| publisher.id == id))
    }
}

impl SessionStore for MemoryKv {
    fn add_session(&self, session: &Session, token_hash: &str) -> Result<(), StoreError> {
        self.sessions.add(session, token_hash);
        Ok(())
    }

    fn sessions(&self) -> Result<Vec<Session>, StoreError> {
        Ok(self.sessions.all())
    }

    fn session(&self, id: &SessionId) -> Result<Option<Session>, StoreError> {
        Ok(self.sessions.find(|session| session.id == *id))
    }

    fn session_by_token(&self, token_hash: &str) -> Result<Option<Session>, StoreError> {
        Ok(self.sessions.by_token(token_hash))
    }

    fn update_session(&self, session: &Session) -> Result<bool, StoreError> {
        Ok(self.sessions.replace(session, |held| held.id == session.id))
    }

    fn remove_session(&self, id: &SessionId) -> Result<bool, StoreError> {
        Ok(self.sessions.remove(|session| session.id == *id))
    }
}
