//! How long plugin log lines and audit records are kept. Both are written at a rate a
//! plugin (or a client driving it) chooses, up to its caps; without pruning they would
//! fill the disk. Every [`PRUNE_EVERY`] the server deletes, per plugin, what is older than
//! its retention and all but its newest lines or records, as the current policy says.

use crate::audit::{AuditEvent, AuditKind, AuditSink};
use crate::capability::log::{LogRecord, LogSink};
use crate::policy::Policy;
use crate::storage::StoreError;
use std::collections::{BTreeSet, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

/// How often the server prunes.
pub const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Rows one delete statement removes at most, so a large prune (the first after an
/// upgrade, or after the policy shortened a retention) holds the database's write lock
/// for tens of milliseconds at a time, with the batch writers' inserts in between.
pub const DELETE_CHUNK: u32 = 10_000;

/// What is kept of one plugin's records: those younger than `age` (any age when `None`),
/// and of the records that count (see [`Record::counted`]) at most the `newest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// How long a record is kept; `None` keeps it whatever its age.
    pub age: Option<Duration>,
    /// How many of the plugin's newest counted records are kept.
    pub newest: u32,
}

impl Retention {
    /// Records written before this instant are deleted (never one before the epoch);
    /// `None` when age deletes nothing.
    pub fn cutoff(&self, now: SystemTime) -> Option<SystemTime> {
        self.age.map(|age| {
            now.checked_sub(age)
                .unwrap_or(SystemTime::UNIX_EPOCH)
                .max(SystemTime::UNIX_EPOCH)
        })
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
    /// The table's name in SQL.
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

    /// An SQL condition (after `AND`) true of the rows that count toward `newest`: every
    /// log line; the audit records calls cause (see [`AuditKind::caused_by_calls`]).
    pub fn counted_sql(self) -> String {
        match self {
            Table::Logs => "TRUE".into(),
            Table::Audit => {
                let kinds: Vec<String> = AuditKind::CAUSED_BY_CALLS
                    .iter()
                    .map(|kind| format!("'{}'", kind.as_str()))
                    .collect();
                format!("kind IN ({})", kinds.join(", "))
            }
        }
    }
}

/// How an SQL backend writes statement parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `?1`, `?2`, …
    Sqlite,
    /// `$1`, `$2`, …
    Postgres,
}

impl Dialect {
    fn param(self, n: u8) -> String {
        match self {
            Dialect::Sqlite => format!("?{n}"),
            Dialect::Postgres => format!("${n}"),
        }
    }
}

/// SQL for the id of `table`'s row just past a plugin's newest counted ones (the newest
/// row that `newest` drops), parameters: plugin, newest.
pub fn newest_dropped_sql(table: Table, dialect: Dialect) -> String {
    let (t, counted) = (table.name(), table.counted_sql());
    let (plugin, newest) = (dialect.param(1), dialect.param(2));
    format!(
        "SELECT id FROM {t} WHERE plugin = {plugin} AND {counted}
         ORDER BY id DESC LIMIT 1 OFFSET {newest}"
    )
}

/// One way a plugin's rows expire, deleted [`DELETE_CHUNK`] rows per statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// Counted rows at or before this id: past the plugin's newest.
    UpTo { newest_dropped: i64 },
    /// Rows written before this time (milliseconds since the epoch).
    Before { cutoff_ms: i64 },
}

impl Expiry {
    /// The ways `keep` expires a plugin's rows as of `now`, given the id of the newest
    /// row its count drops (if any).
    pub fn of(keep: Retention, now: SystemTime, newest_dropped: Option<i64>) -> Vec<Expiry> {
        let up_to = newest_dropped.map(|newest_dropped| Expiry::UpTo { newest_dropped });
        let before = keep.cutoff(now).map(|cutoff| Expiry::Before {
            cutoff_ms: crate::audit::to_millis(cutoff),
        });
        up_to.into_iter().chain(before).collect()
    }

    /// The bound the statement compares against.
    pub fn bound(self) -> i64 {
        match self {
            Expiry::UpTo { newest_dropped } => newest_dropped,
            Expiry::Before { cutoff_ms } => cutoff_ms,
        }
    }

    /// SQL deleting one chunk of these rows of `table`, parameters: plugin, bound, chunk.
    pub fn delete_sql(self, table: Table, dialect: Dialect) -> String {
        let t = table.name();
        let (plugin, bound, chunk) = (dialect.param(1), dialect.param(2), dialect.param(3));
        let condition = match self {
            Expiry::UpTo { .. } => format!("{} AND id <= {bound}", table.counted_sql()),
            Expiry::Before { .. } => format!("time_ms < {bound}"),
        };
        format!(
            "DELETE FROM {t} WHERE id IN
               (SELECT id FROM {t} WHERE plugin = {plugin} AND {condition} LIMIT {chunk})"
        )
    }
}

/// One pruning pass as each plugin's prune sees it: the instant retentions count back
/// from, and whether to stop (the server is shutting down) before the next chunk.
#[derive(Clone, Copy)]
pub struct Pass<'a> {
    pub now: SystemTime,
    pub stop: &'a dyn Fn() -> bool,
}

impl Pass<'static> {
    /// A pass as of `now` that is never asked to stop.
    pub fn to_the_end(now: SystemTime) -> Self {
        fn never() -> bool {
            false
        }
        Pass { now, stop: &never }
    }
}

/// What deleting one chunk came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunk {
    /// This many rows were deleted.
    Deleted(u64),
    /// Another host is pruning the same plugin's rows right now: they are left to it.
    Elsewhere,
}

/// Run `delete_chunk` for each expiry until a chunk comes back short of [`DELETE_CHUNK`],
/// calling `between` after each full chunk; the total deleted. Stops early, with what it
/// deleted so far, when another host turns out to be pruning the rows or, after any chunk,
/// when `pass` is asked to stop.
pub fn delete_in_chunks(
    expiries: &[Expiry],
    pass: &Pass,
    mut delete_chunk: impl FnMut(Expiry) -> Result<Chunk, StoreError>,
    mut between: impl FnMut(),
) -> Result<u64, StoreError> {
    let mut deleted = 0;
    for expiry in expiries {
        loop {
            let chunk = match delete_chunk(*expiry)? {
                Chunk::Deleted(chunk) => chunk,
                Chunk::Elsewhere => return Ok(deleted),
            };
            deleted += chunk;
            if (pass.stop)() {
                return Ok(deleted);
            }
            if chunk < u64::from(DELETE_CHUNK) {
                break;
            }
            between();
        }
    }
    Ok(deleted)
}

/// What one pass deleted, and for how many plugins pruning failed (each failure is in
/// the host log; the next pass tries again).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub log_lines: u64,
    pub audit_records: u64,
    pub failures: u32,
}

/// Prune every plugin's log lines and audit records (also those of plugins no longer
/// installed) to what `policy` keeps, as of the pass. A plugin whose pruning fails is
/// counted and skipped; the pass's `stop` (the server's shutdown) is asked between
/// plugins and between chunks.
pub fn prune(policy: &Policy, logs: &dyn LogSink, audit: &dyn AuditSink, pass: &Pass) -> Pruned {
    let mut failures = 0;
    let log_lines = prune_each("log lines", logs.plugins(), pass, &mut failures, |plugin| {
        logs.prune(plugin, policy.for_plugin(plugin).log.retention(), pass)
    });
    let keep = policy.audit.retention();
    let audit_records = prune_each(
        "audit records",
        audit.plugins(),
        pass,
        &mut failures,
        |plugin| audit.prune(plugin, keep, pass),
    );
    Pruned {
        log_lines,
        audit_records,
        failures,
    }
}

/// Run `prune_one` for each of `plugins` (the plugins with `what`) until the pass is asked
/// to stop, adding up what it deleted; each failure is logged and counted in `failures`.
fn prune_each(
    what: &str,
    plugins: Result<Vec<String>, StoreError>,
    pass: &Pass,
    failures: &mut u32,
    prune_one: impl Fn(&str) -> Result<u64, StoreError>,
) -> u64 {
    let plugins = plugins.unwrap_or_else(|error| {
        tracing::warn!("listing the plugins with {what} failed: {error}");
        *failures += 1;
        Vec::new()
    });
    let mut deleted = 0;
    for plugin in plugins.iter().take_while(|_| !(pass.stop)()) {
        match prune_one(plugin) {
            Ok(n) => deleted += n,
            Err(error) => {
                tracing::warn!(plugin = %plugin, "pruning its {what} failed: {error}");
                *failures += 1;
            }
        }
    }
    deleted
}

/// A record kept per plugin: whose it is, when it was written, and whether it counts
/// toward the plugin's `newest`.
pub trait Record {
    /// The plugin whose record it is.
    fn plugin(&self) -> &str;
    /// When it was written.
    fn time(&self) -> SystemTime;
    /// Whether it counts toward (and may be deleted for) [`Retention::newest`].
    fn counted(&self) -> bool {
        true
    }
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

    fn counted(&self) -> bool {
        self.kind.caused_by_calls()
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
/// `plugin`'s as of the pass (all at once: there are no chunks to stop between); how many:
/// the in-memory backends' pruning.
pub fn prune_in_memory<R: Record>(
    records: &Mutex<VecDeque<R>>,
    plugin: &str,
    keep: Retention,
    pass: &Pass,
) -> u64 {
    let mut records = lock(records);
    let cutoff = keep.cutoff(pass.now);
    let mut newer = 0u64;
    let mut expired = vec![false; records.len()];
    for (index, record) in records.iter().enumerate().rev() {
        if record.plugin() == plugin {
            let too_many = record.counted() && {
                newer += 1;
                newer > u64::from(keep.newest)
            };
            expired[index] = too_many || cutoff.is_some_and(|cutoff| record.time() < cutoff);
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

    /// A record of plugin `.0` written at `.1`, counted toward `newest` when `.2`.
    #[derive(Debug, PartialEq)]
    struct Stamped(&'static str, SystemTime, bool);

    impl Record for Stamped {
        fn plugin(&self) -> &str {
            self.0
        }

        fn time(&self) -> SystemTime {
            self.1
        }

        fn counted(&self) -> bool {
            self.2
        }
    }

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn keeps_the_newest_records_younger_than_the_age() {
        let keep = Retention {
            age: Some(Duration::from_secs(100)),
            newest: 2,
        };
        let records = Mutex::new(VecDeque::from([
            Stamped("a", at(850), true),
            Stamped("b", at(860), true),
            Stamped("a", at(950), true),
            Stamped("a", at(960), true),
            Stamped("a", at(970), true),
            Stamped("b", at(980), true),
        ]));
        let pass = Pass::to_the_end(at(1_000));
        assert_eq!(plugins_in_memory(&records), ["a", "b"]);
        assert_eq!(prune_in_memory(&records, "a", keep, &pass), 2);
        assert_eq!(
            *lock(&records),
            [
                Stamped("b", at(860), true),
                Stamped("a", at(960), true),
                Stamped("a", at(970), true),
                Stamped("b", at(980), true),
            ],
            "a's too old one, then all but its newest two"
        );
        assert_eq!(prune_in_memory(&records, "b", keep, &pass), 1);
        assert_eq!(
            *lock(&records),
            [
                Stamped("a", at(960), true),
                Stamped("a", at(970), true),
                Stamped("b", at(980), true),
            ]
        );
    }

    #[test]
    fn records_that_do_not_count_are_deleted_only_for_their_age() {
        let keep = Retention {
            age: None,
            newest: 1,
        };
        let records = Mutex::new(VecDeque::from([
            Stamped("a", at(1), false),
            Stamped("a", at(2), true),
            Stamped("a", at(3), false),
            Stamped("a", at(4), true),
        ]));
        assert_eq!(
            prune_in_memory(&records, "a", keep, &Pass::to_the_end(at(1_000_000))),
            1
        );
        assert_eq!(
            *lock(&records),
            [
                Stamped("a", at(1), false),
                Stamped("a", at(3), false),
                Stamped("a", at(4), true),
            ],
            "no age limit: only the counted one past the newest goes"
        );
    }

    #[test]
    fn chunks_go_on_until_one_is_short_unless_the_rows_are_elsewhere_or_the_pass_stops() {
        let chunk = u64::from(DELETE_CHUNK);
        let expiries = [
            Expiry::UpTo { newest_dropped: 9 },
            Expiry::Before { cutoff_ms: 5 },
        ];
        let run = |outcomes: Vec<Chunk>, pass: &Pass| {
            let (mut outcomes, mut asked, mut between) = (outcomes.into_iter(), vec![], 0);
            let deleted = delete_in_chunks(
                &expiries,
                pass,
                |expiry| {
                    asked.push(expiry);
                    Ok(outcomes.next().expect("no chunk asked for past the end"))
                },
                || between += 1,
            )
            .unwrap();
            (deleted, asked, between)
        };
        let full = Chunk::Deleted(chunk);
        let to_the_end = Pass::to_the_end(at(0));
        let (deleted, asked, between) = run(
            vec![full, full, Chunk::Deleted(4), Chunk::Deleted(2)],
            &to_the_end,
        );
        assert_eq!(deleted, 2 * chunk + 6);
        assert_eq!(asked, [expiries[0], expiries[0], expiries[0], expiries[1]]);
        assert_eq!(between, 2, "a pause after each full chunk");

        let (deleted, asked, _) = run(vec![full, Chunk::Elsewhere], &to_the_end);
        assert_eq!((deleted, asked.len()), (chunk, 2), "another host has them");

        let stopping = Pass {
            now: at(0),
            stop: &|| true,
        };
        let (deleted, asked, between) = run(vec![full], &stopping);
        assert_eq!((deleted, asked.len(), between), (chunk, 1, 0), "stopped");
        let (deleted, asked, _) = run(vec![Chunk::Deleted(4)], &stopping);
        assert_eq!(
            (deleted, asked.len()),
            (4, 1),
            "stopped before the next expiry too"
        );
    }

    #[test]
    fn a_cutoff_is_never_before_the_epoch() {
        let keep = Retention {
            age: Some(Duration::from_secs(10)),
            newest: 1,
        };
        assert_eq!(keep.cutoff(at(3)), Some(SystemTime::UNIX_EPOCH));
        assert_eq!(keep.cutoff(at(30)), Some(at(20)));
        let ageless = Retention { age: None, ..keep };
        assert_eq!(ageless.cutoff(at(30)), None);
    }
}
