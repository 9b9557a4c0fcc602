//! Records handed to storage by a background thread in batches, so a plugin call never
//! waits on a database write per log line or audit record, and one plugin's records never
//! queue behind another's writes. Queries first wait for every record written before
//! them, so readers still see their own writes; the queue is bounded, and a full queue
//! makes writers wait (back-pressure) instead of growing. Pruning waits the same way, so
//! it sees every record written before it.

use crate::audit::{AuditEvent, AuditQuery, AuditSink};
use crate::capability::log::{LogQuery, LogRecord, LogSink};
use crate::retention::{Pass, Retention};
use crate::storage::StoreError;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

/// Most records waiting for the writer before writers are made to wait.
pub const QUEUE_CAPACITY: usize = 16 * 1024;

/// Where a batch finally goes.
pub trait Store: Send + Sync + 'static {
    type Record: Send + 'static;
    /// Store `records`, in order, together.
    fn store_all(&self, records: Vec<Self::Record>);
}

impl Store for dyn LogSink {
    type Record = LogRecord;

    fn store_all(&self, records: Vec<LogRecord>) {
        self.write_all(records);
    }
}

impl Store for dyn AuditSink {
    type Record = AuditEvent;

    fn store_all(&self, records: Vec<AuditEvent>) {
        self.record_all(records);
    }
}

struct Queue<R> {
    pending: Vec<R>,
    capacity: usize,
    /// Records ever queued, and records the writer has stored; a reader waits for equality.
    queued: u64,
    stored: u64,
    /// Writers waiting for room.
    waiting: usize,
    closing: bool,
}

struct Shared<S: Store + ?Sized> {
    store: Arc<S>,
    queue: Mutex<Queue<S::Record>>,
    /// Signalled on every change of `queue`.
    changed: Condvar,
}

impl<S: Store + ?Sized> Shared<S> {
    fn lock(&self) -> MutexGuard<'_, Queue<S::Record>> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wait<'a>(
        &self,
        queue: MutexGuard<'a, Queue<S::Record>>,
    ) -> MutexGuard<'a, Queue<S::Record>> {
        self.changed.wait(queue).unwrap_or_else(|p| p.into_inner())
    }

    /// The writer thread: store whatever is queued, one batch at a time, until closed.
    fn run(&self) {
        loop {
            let (batch, last) = {
                let mut queue = self.lock();
                while queue.pending.is_empty() && !queue.closing {
                    queue = self.wait(queue);
                }
                if queue.pending.is_empty() {
                    return;
                }
                (std::mem::take(&mut queue.pending), queue.queued)
            };
            self.changed.notify_all();
            self.store.store_all(batch);
            self.lock().stored = last;
            self.changed.notify_all();
        }
    }
}

/// A sink that batches writes to `store` on its own thread.
pub struct Batched<S: Store + ?Sized> {
    shared: Arc<Shared<S>>,
    writer: Option<JoinHandle<()>>,
}

impl<S: Store + ?Sized> Batched<S> {
    /// Batch writes to `store`, queueing at most [`QUEUE_CAPACITY`] records.
    pub fn new(store: Arc<S>) -> std::io::Result<Batched<S>> {
        Self::with_capacity(store, QUEUE_CAPACITY)
    }

    /// Like [`Batched::new`] with another queue bound.
    pub fn with_capacity(store: Arc<S>, capacity: usize) -> std::io::Result<Batched<S>> {
        let shared = Arc::new(Shared {
            store,
            queue: Mutex::new(Queue {
                pending: Vec::new(),
                capacity: capacity.max(1),
                queued: 0,
                stored: 0,
                waiting: 0,
                closing: false,
            }),
            changed: Condvar::new(),
        });
        let writer = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("capstan-batch".into())
                .spawn(move || shared.run())?
        };
        Ok(Batched {
            shared,
            writer: Some(writer),
        })
    }

    /// Queue `record`, waiting while the queue is full.
    pub fn push(&self, record: S::Record) {
        let mut queue = self.shared.lock();
        while queue.pending.len() >= queue.capacity {
            queue.waiting += 1;
            self.shared.changed.notify_all();
            queue = self.shared.wait(queue);
            queue.waiting -= 1;
        }
        queue.pending.push(record);
        queue.queued += 1;
        drop(queue);
        self.shared.changed.notify_all();
    }

    /// Wait until every record queued so far is stored.
    pub fn flush(&self) {
        let mut queue = self.shared.lock();
        let target = queue.queued;
        while queue.stored < target {
            queue = self.shared.wait(queue);
        }
    }

    /// The store batches go to.
    pub fn store(&self) -> &S {
        &self.shared.store
    }
}

impl LogSink for Batched<dyn LogSink> {
    fn write(&self, record: LogRecord) {
        self.push(record);
    }

    fn query(&self, query: &LogQuery) -> Result<Vec<LogRecord>, StoreError> {
        self.flush();
        self.store().query(query)
    }

    fn plugins(&self) -> Result<Vec<String>, StoreError> {
        self.flush();
        self.store().plugins()
    }

    fn prune(&self, plugin: &str, keep: Retention, pass: &Pass) -> Result<u64, StoreError> {
        self.flush();
        self.store().prune(plugin, keep, pass)
    }
}

impl AuditSink for Batched<dyn AuditSink> {
    fn record(&self, event: AuditEvent) {
        crate::audit::trace(&event);
        self.push(event);
    }

    fn query(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>, StoreError> {
        self.flush();
        self.store().query(query)
    }

    fn plugins(&self) -> Result<Vec<String>, StoreError> {
        self.flush();
        self.store().plugins()
    }

    fn prune(&self, plugin: &str, keep: Retention, pass: &Pass) -> Result<u64, StoreError> {
        self.flush();
        self.store().prune(plugin, keep, pass)
    }
}

impl<S: Store + ?Sized> Drop for Batched<S> {
    /// Store what is still queued, then stop the writer.
    fn drop(&mut self) {
        self.shared.lock().closing = true;
        self.shared.changed.notify_all();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capability::log::{LogLevel, LogSource, MemoryLogs};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;

    fn line(plugin: &str, n: usize) -> LogRecord {
        LogRecord {
            time: std::time::SystemTime::now(),
            plugin: plugin.into(),
            call_id: "c".into(),
            level: LogLevel::Info,
            source: LogSource::Guest,
            message: format!("line {n}"),
        }
    }

    fn all(plugin: &str) -> LogQuery {
        LogQuery {
            plugin: Some(plugin.into()),
            limit: 100_000,
            ..Default::default()
        }
    }

    #[test]
    fn a_query_sees_every_line_written_before_it_in_order() {
        let store: Arc<dyn LogSink> = Arc::new(MemoryLogs::new(100_000));
        let logs = Batched::new(store).unwrap();
        for n in 0..5_000 {
            logs.write(line("p", n));
        }
        let lines = logs.query(&all("p")).unwrap();
        assert_eq!(lines.len(), 5_000);
        assert_eq!(lines[0].message, "line 4999", "newest first");
        assert_eq!(lines[4_999].message, "line 0");
    }

    /// A store that takes one batch, tells the test, and stalls until released.
    struct Stalled {
        inner: MemoryLogs,
        taken: Mutex<Option<mpsc::Sender<usize>>>,
        release: Mutex<mpsc::Receiver<()>>,
    }

    impl Store for Stalled {
        type Record = LogRecord;

        fn store_all(&self, records: Vec<LogRecord>) {
            if let Some(taken) = self.taken.lock().unwrap().take() {
                taken.send(records.len()).unwrap();
                self.release.lock().unwrap().recv().unwrap();
            }
            self.inner.write_all(records);
        }
    }

    #[test]
    fn a_stalled_store_makes_writers_wait_at_the_queue_bound() {
        const CAPACITY: usize = 64;
        let (taken_tx, taken_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel();
        let store = Arc::new(Stalled {
            inner: MemoryLogs::new(100_000),
            taken: Mutex::new(Some(taken_tx)),
            release: Mutex::new(release_rx),
        });
        let logs = Arc::new(Batched::with_capacity(store.clone(), CAPACITY).unwrap());
        let written = Arc::new(AtomicUsize::new(0));
        let writer = {
            let (logs, written) = (logs.clone(), written.clone());
            std::thread::spawn(move || {
                for n in 0..CAPACITY * 4 {
                    logs.push(line("p", n));
                    written.fetch_add(1, Ordering::SeqCst);
                }
            })
        };
        // The writer thread holds its first batch inside the stalled store...
        let in_store = taken_rx.recv().unwrap();
        // ...so the queue fills to its bound and the writer has to wait for room.
        loop {
            let queue = logs.shared.lock();
            assert!(queue.pending.len() <= CAPACITY);
            if queue.waiting == 1 && queue.pending.len() == CAPACITY {
                break;
            }
            drop(logs.shared.wait(queue));
        }
        assert_eq!(written.load(Ordering::SeqCst), in_store + CAPACITY);
        release_tx.send(()).unwrap();
        writer.join().unwrap();
        logs.flush();
        let lines = store.inner.query(&all("p")).unwrap();
        assert_eq!(lines.len(), CAPACITY * 4);
        assert_eq!(lines[0].message, format!("line {}", CAPACITY * 4 - 1));
    }

    #[test]
    fn dropping_stores_what_is_still_queued() {
        let store = Arc::new(MemoryLogs::new(100_000));
        let logs = Batched::new(store.clone() as Arc<dyn LogSink>).unwrap();
        for n in 0..1_000 {
            logs.write(line("p", n));
        }
        drop(logs);
        assert_eq!(store.query(&all("p")).unwrap().len(), 1_000);
    }
}
