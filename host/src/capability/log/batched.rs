//! Plugin log lines handed to storage by a background thread in batches, so a call never
//! waits on a database write per line and one plugin's logging never queues behind
//! another's. Queries first wait for every line written before them, so readers still
//! see their own writes; the queue is bounded, and a full queue makes writers wait.

use super::sink::{LogQuery, LogRecord, LogSink};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

/// Most lines waiting for the writer before loggers are made to wait.
const QUEUE_CAPACITY: usize = 16 * 1024;

struct Queue {
    pending: Vec<LogRecord>,
    /// Lines ever queued, and lines the writer has stored; a reader waits for equality.
    queued: u64,
    stored: u64,
    closing: bool,
}

struct Shared {
    sink: Arc<dyn LogSink>,
    queue: Mutex<Queue>,
    /// Signalled on every change of `queue`.
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wait<'a>(&self, queue: MutexGuard<'a, Queue>) -> MutexGuard<'a, Queue> {
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
            self.sink.write_all(batch);
            self.lock().stored = last;
            self.changed.notify_all();
        }
    }
}

/// A [`LogSink`] that batches writes to `sink` on its own thread.
pub struct BatchedLogs {
    shared: Arc<Shared>,
    writer: Option<JoinHandle<()>>,
}

impl BatchedLogs {
    pub fn new(sink: Arc<dyn LogSink>) -> std::io::Result<BatchedLogs> {
        let shared = Arc::new(Shared {
            sink,
            queue: Mutex::new(Queue {
                pending: Vec::new(),
                queued: 0,
                stored: 0,
                closing: false,
            }),
            changed: Condvar::new(),
        });
        let writer = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("capstan-logs".into())
                .spawn(move || shared.run())?
        };
        Ok(BatchedLogs {
            shared,
            writer: Some(writer),
        })
    }

    /// Wait until every line queued so far is stored.
    fn flush(&self) {
        let mut queue = self.shared.lock();
        let target = queue.queued;
        while queue.stored < target {
            queue = self.shared.wait(queue);
        }
    }
}

impl LogSink for BatchedLogs {
    fn write(&self, record: LogRecord) {
        let mut queue = self.shared.lock();
        while queue.pending.len() >= QUEUE_CAPACITY {
            queue = self.shared.wait(queue);
        }
        queue.pending.push(record);
        queue.queued += 1;
        drop(queue);
        self.shared.changed.notify_all();
    }

    fn query(&self, query: &LogQuery) -> Result<Vec<LogRecord>, crate::storage::KvError> {
        self.flush();
        self.shared.sink.query(query)
    }
}

impl Drop for BatchedLogs {
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
    use crate::capability::log::{LogSource, MemoryLogs};
    use crate::policy::LogLevel;

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
        let store = Arc::new(MemoryLogs::new(100_000));
        let logs = BatchedLogs::new(store.clone()).unwrap();
        for n in 0..5_000 {
            logs.write(line("p", n));
        }
        let lines = logs.query(&all("p")).unwrap();
        assert_eq!(lines.len(), 5_000);
        assert_eq!(lines[0].message, "line 4999", "newest first");
        assert_eq!(lines[4_999].message, "line 0");
    }

    #[test]
    fn writers_beyond_the_queue_capacity_wait_instead_of_growing_it() {
        let store = Arc::new(MemoryLogs::new(100_000));
        let logs = Arc::new(BatchedLogs::new(store.clone()).unwrap());
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let logs = logs.clone();
                std::thread::spawn(move || {
                    for n in 0..QUEUE_CAPACITY / 2 {
                        logs.write(line(&format!("w{w}"), n));
                        assert!(logs.shared.lock().pending.len() <= QUEUE_CAPACITY);
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().unwrap();
        }
        for w in 0..4 {
            let lines = logs.query(&all(&format!("w{w}"))).unwrap();
            assert_eq!(lines.len(), QUEUE_CAPACITY / 2);
        }
    }

    #[test]
    fn dropping_stores_what_is_still_queued() {
        let store = Arc::new(MemoryLogs::new(100_000));
        let logs = BatchedLogs::new(store.clone()).unwrap();
        for n in 0..1_000 {
            logs.write(line("p", n));
        }
        drop(logs);
        assert_eq!(store.query(&all("p")).unwrap().len(), 1_000);
    }
}
