//! A small pool of query-only connections to the database file. In WAL mode a reader
//! sees the last committed state and takes no lock a writer waits for, so plugin kv reads
//! run beside a write instead of queueing behind the writer's mutex.

use rusqlite::Connection;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, TryLockError};

/// Readers per database: enough for every core's blocking calls to read at once.
const READERS: usize = 4;

/// The pooled read-only connections (empty when the database has no file to share).
pub(super) struct Readers {
    conns: Vec<Mutex<Connection>>,
    /// Where the next search for a free reader starts, so load spreads across them.
    next: AtomicUsize,
}

impl Readers {
    /// No pool: reads go to the writer (a private in-memory database).
    pub(super) fn none() -> Readers {
        Readers {
            conns: Vec::new(),
            next: AtomicUsize::new(0),
        }
    }

    /// Open the pool on the database file at `path`. Each read sets how long its reader
    /// waits for a lock, from its call's deadline.
    pub(super) fn open(path: &Path) -> rusqlite::Result<Readers> {
        let conns = (0..READERS)
            .map(|_| {
                let conn = Connection::open(path)?;
                conn.pragma_update(None, "query_only", true)?;
                Ok(Mutex::new(conn))
            })
            .collect::<rusqlite::Result<_>>()?;
        Ok(Readers {
            conns,
            next: AtomicUsize::new(0),
        })
    }

    /// A free reader, or (all busy) the next one once it is free; `None` without a pool.
    pub(super) fn take(&self) -> Option<MutexGuard<'_, Connection>> {
        if self.conns.is_empty() {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for offset in 0..self.conns.len() {
            match self.conns[(start + offset) % self.conns.len()].try_lock() {
                Ok(conn) => return Some(conn),
                Err(TryLockError::Poisoned(poisoned)) => return Some(poisoned.into_inner()),
                Err(TryLockError::WouldBlock) => {}
            }
        }
        let conn = &self.conns[start % self.conns.len()];
        Some(conn.lock().unwrap_or_else(|p| p.into_inner()))
    }
}
