//! The bus every plugin's `events` import reaches: it knows who receives which topics and
//! who holds which claim (the [`Directory`], rebuilt by the registry at every change),
//! fans each event out to its subscribers through the [`EventStore`], wakes this host's
//! deliverer, and routes requests to their claimant.

use super::store::{EventRecord, EventStore, NewEvent};
use super::{Grant, Topic};
use crate::bindings::capstan::plugin::types::Error;
use crate::capability::Deadline;
use crate::storage::StoreError;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, OnceLock, RwLock, Weak};
use std::time::Duration;

/// How deep requests may nest (a claimant requesting in turn) on one thread.
pub const MAX_REQUEST_DEPTH: u32 = 4;
/// The largest answer a claimant may return.
pub const MAX_ANSWER_BYTES: usize = super::MAX_PAYLOAD_CEILING as usize;

thread_local! {
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// What handles the requests of a claimed kind (a loaded plugin).
pub trait ClaimHandler: Send + Sync {
    /// Handle a request of `kind` within `budget`.
    fn handle_claim(
        &self,
        kind: &Topic,
        payload: &[u8],
        budget: Duration,
    ) -> Result<Vec<u8>, Error>;
}

/// A plugin that receives events now, with its grant.
#[derive(Debug, Clone)]
pub struct Subscriber {
    pub plugin: String,
    pub grant: Grant,
}

/// Who receives and who handles what, on this host now.
#[derive(Default)]
pub struct Directory {
    /// Enabled plugins that export `subscriber` and are granted topics.
    pub subscribers: Vec<Subscriber>,
    /// Each claimed kind's holder.
    pub claims: BTreeMap<Topic, (String, Weak<dyn ClaimHandler>)>,
}

/// A wake-up flag a waiting thread sleeps on.
#[derive(Default)]
pub struct Signal {
    raised: Mutex<bool>,
    changed: Condvar,
}

impl Signal {
    /// Wake the waiter.
    pub fn raise(&self) {
        *self.raised.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.changed.notify_all();
    }

    /// Sleep until raised or `most` passed; lowers the flag.
    pub fn wait(&self, most: Duration) {
        let guard = self.raised.lock().unwrap_or_else(|p| p.into_inner());
        let (mut guard, _) = self
            .changed
            .wait_timeout_while(guard, most, |raised| !*raised)
            .unwrap_or_else(|p| p.into_inner());
        *guard = false;
    }
}

/// Counts each event published (by source and topic).
pub type PublishObserver = Box<dyn Fn(&str, &str) + Send + Sync>;

/// The events bus of one host.
pub struct Bus {
    store: Arc<dyn EventStore>,
    directory: RwLock<Arc<Directory>>,
    /// Raised when there may be deliveries to make here.
    pub ready: Signal,
    observer: OnceLock<PublishObserver>,
}

impl Bus {
    pub fn new(store: Arc<dyn EventStore>) -> Bus {
        Bus {
            store,
            directory: RwLock::new(Arc::new(Directory::default())),
            ready: Signal::default(),
            observer: OnceLock::new(),
        }
    }

    /// The event log.
    pub fn store(&self) -> &Arc<dyn EventStore> {
        &self.store
    }

    /// Replace who receives and handles what.
    pub fn set_directory(&self, directory: Directory) {
        *self.directory.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(directory);
        self.ready.raise();
    }

    /// Who receives and handles what now.
    pub fn directory(&self) -> Arc<Directory> {
        self.directory
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Count every publish with `observer` (set once, by the server).
    pub fn observe(&self, observer: PublishObserver) {
        let _ = self.observer.set(observer);
    }

    /// Store `event` with a delivery for every subscriber receiving its topic now.
    pub fn publish(
        &self,
        event: &NewEvent<'_>,
        deadline: Deadline,
    ) -> Result<EventRecord, StoreError> {
        let directory = self.directory();
        let subscribers: Vec<&str> = directory
            .subscribers
            .iter()
            .filter(|s| s.grant.receives(event.topic))
            .map(|s| s.plugin.as_str())
            .collect();
        let record = self.store.publish(event, &subscribers, deadline)?;
        if let Some(observer) = self.observer.get() {
            observer(event.source, event.topic.as_str());
        }
        if !subscribers.is_empty() {
            self.ready.raise();
        }
        Ok(record)
    }

    /// Ask the holder of `kind` to handle `payload` within `deadline`.
    pub fn request(
        &self,
        kind: &Topic,
        payload: &[u8],
        deadline: Deadline,
    ) -> Result<Vec<u8>, Error> {
        let holder = self
            .directory()
            .claims
            .get(kind)
            .and_then(|(_, handler)| handler.upgrade())
            .ok_or(Error::NotFound)?;
        let depth = DEPTH.with(Cell::get);
        if depth >= MAX_REQUEST_DEPTH {
            return Err(Error::QuotaExceeded(format!(
                "requests nest at most {MAX_REQUEST_DEPTH} deep"
            )));
        }
        DEPTH.with(|d| d.set(depth + 1));
        let answer = holder.handle_claim(kind, payload, deadline.remaining());
        DEPTH.with(|d| d.set(depth));
        let answer = answer?;
        if answer.len() > MAX_ANSWER_BYTES {
            return Err(Error::TooLarge(format!(
                "the answer to `{kind}` is larger than {MAX_ANSWER_BYTES} bytes"
            )));
        }
        Ok(answer)
    }
}
