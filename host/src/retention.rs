//! How long plugin log lines and audit records are kept. Both are written at a rate a
//! plugin (or a client driving it) chooses, up to its caps; without pruning they would
//! fill the disk. Every [`PRUNE_EVERY`] the server deletes, per plugin, what is older than
//! its retention and all but its newest lines or records, as the current policy says.

use crate::audit::{AuditEvent, AuditSink};
use crate::capability::log::{LogRecord, LogSink};
use crate::policy::Policy;
use crate::storage::StoreError;
use std::collections::{BTreeSet, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

/// How often the server prunes.
pub const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Rows one delete statement removes at most, so a large prune (the first after an
/// upgrade, or after the policy shortened a retention) never holds the database's write
/// lock for long: the batch writers' inserts go in between.
pub const DELETE_CHUNK: u32 = 10_000;

/// What is kept of one plugin's records: those younger than `age`, and of those at most
/// the `newest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub age: Duration,
    pub newest: u32,
}

impl Retention {
    /// Records written before this instant are deleted (never one before the epoch).
    pub fn cutoff(&self, now: SystemTime) -> SystemTime {
        now.checked_sub(self.age)
            .unwrap_or(SystemTime::UNIX_EPOCH)
            .max(SystemTime::UNIX_EPOCH)
    }
}

/// A table whose rows are pruned per plugin (its name is a constant, never input, so
/// backends may format it into their SQL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Audit,
    Logs,
}

impl Table {
    pub fn name(self) -> &'static str {
        match self {
            Table::Audit => "audit",
            Table::Logs => "logs",
        }
    }

    /// SQL (the same for SQLite and PostgreSQL) listing the plugins with rows in this
    /// table, walking its `(plugin, …)` index one name at a time instead of scanning it.
    pub fn plugins_sql(self) -> String {
        let t = self.name();
        format!(
            "WITH RECURSIVE names(plugin) AS (
               SELECT MIN(plugin) FROM {t}
               UNION ALL
               SELECT (SELECT MIN(plugin) FROM {t} WHERE plugin > names.plugin)
               FROM names WHERE names.plugin IS NOT NULL)
             SELECT plugin FROM names WHERE plugin IS NOT NULL"
        )
    }
}

/// What one pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub log_lines: u64,
    pub audit_records: u64,
}

/// Prune every plugin's log lines and audit records (also those of plugins no longer
/// installed) to what `policy` keeps, as of `now`.
pub fn prune(
    policy: &Policy,
    logs: &dyn LogSink,
    audit: &dyn AuditSink,
    now: SystemTime,
) -> Result<Pruned, StoreError> {
    let mut pruned = Pruned::default();
    for plugin in logs.plugins()? {
        let keep = policy.for_plugin(&plugin).log.retention();
        pruned.log_lines += logs.prune(&plugin, keep, now)?;
    }
    let keep = policy.audit.retention();
    for plugin in audit.plugins()? {
        pruned.audit_records += audit.prune(&plugin, keep, now)?;
    }
    Ok(pruned)
}

/// A record kept per plugin: whose it is and when it was written.
pub trait Record {
    fn plugin(&self) -> &str;
    fn time(&self) -> SystemTime;
}

impl Record for LogRecord {
    fn plugin(&self) -> &str {
        &self.plugin
    }

    fn time(&self) -> SystemTime {
        self.time
    }
}

impl Record for AuditEvent {
    fn plugin(&self) -> &str {
        &self.plugin
    }

    fn time(&self) -> SystemTime {
        self.time
    }
}

fn lock<R>(records: &Mutex<VecDeque<R>>) -> MutexGuard<'_, VecDeque<R>> {
    records.lock().unwrap_or_else(|p| p.into_inner())
}

/// The distinct plugins of in-memory `records`, in order: the in-memory backends' listing.
pub fn plugins_in_memory<R: Record>(records: &Mutex<VecDeque<R>>) -> Vec<String> {
    let records = lock(records);
    let plugins: BTreeSet<&str> = records.iter().map(Record::plugin).collect();
    plugins.into_iter().map(str::to_string).collect()
}

/// Delete from in-memory `records` (oldest first) what `keep` does not keep of
/// `plugin`'s as of `now`; how many: the in-memory backends' pruning.
pub fn prune_in_memory<R: Record>(
    records: &Mutex<VecDeque<R>>,
    plugin: &str,
    keep: Retention,
    now: SystemTime,
) -> u64 {
    let mut records = lock(records);
    let cutoff = keep.cutoff(now);
    let mut newer = 0u64;
    let mut expired = vec![false; records.len()];
    for (index, record) in records.iter().enumerate().rev() {
        if record.plugin() == plugin {
            newer += 1;
            expired[index] = newer > u64::from(keep.newest) || record.time() < cutoff;
        }
    }
    let mut index = 0;
    records.retain(|_| {
        index += 1;
        !expired[index - 1]
    });
    expired.iter().filter(|e| **e).count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Stamped(&'static str, SystemTime);

    impl Record for Stamped {
        fn plugin(&self) -> &str {
            self.0
        }

        fn time(&self) -> SystemTime {
            self.1
        }
    }

    #[test]
    fn keeps_the_newest_records_younger_than_the_age() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let keep = Retention {
            age: Duration::from_secs(100),
            newest: 2,
        };
        let at = |secs| SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
        let records = Mutex::new(VecDeque::from([
            Stamped("a", at(850)),
            Stamped("b", at(860)),
            Stamped("a", at(950)),
            Stamped("a", at(960)),
            Stamped("a", at(970)),
            Stamped("b", at(980)),
        ]));
        assert_eq!(plugins_in_memory(&records), ["a", "b"]);
        assert_eq!(prune_in_memory(&records, "a", keep, now), 2);
        assert_eq!(
            *lock(&records),
            [
                Stamped("b", at(860)),
                Stamped("a", at(960)),
                Stamped("a", at(970)),
                Stamped("b", at(980)),
            ],
            "a's too old one, then all but its newest two"
        );
        assert_eq!(prune_in_memory(&records, "b", keep, now), 1);
        assert_eq!(
            *lock(&records),
            [
                Stamped("a", at(960)),
                Stamped("a", at(970)),
                Stamped("b", at(980)),
            ]
        );
    }

    #[test]
    fn a_cutoff_before_the_epoch_keeps_everything_by_age() {
        let keep = Retention {
            age: Duration::from_secs(10),
            newest: 1,
        };
        assert_eq!(
            keep.cutoff(SystemTime::UNIX_EPOCH + Duration::from_secs(3)),
            SystemTime::UNIX_EPOCH
        );
    }
}
