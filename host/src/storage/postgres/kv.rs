//! Plugin kv on PostgreSQL. A write is two pipelined round trips: `BEGIN`, lock the
//! namespace's usage row and read the key's value; then write the value and the usage and
//! `COMMIT`. Statements are prepared once per connection. The value is read by a statement
//! that starts after the lock is held, so under READ COMMITTED it sees the last write of
//! whoever held the lock before: quota accounting stays exact across hosts.

use super::{PostgresStore, StoreError, backend};
use crate::capability::Deadline;
use crate::capability::kv::{KeyPage, KvStore, MAX_PAGE, Quota, Update, Updated, Usage, page};
use deadpool_postgres::ClientWrapper;
use futures_util::try_join;
use tokio_postgres::Statement;
use tokio_postgres::types::ToSql;

/// Lock the namespace's usage row, creating it, and return its usage.
const LOCK_USAGE: &str = "INSERT INTO kv_usage (namespace, keys, bytes) VALUES ($1, 0, 0)
     ON CONFLICT (namespace) DO UPDATE SET keys = kv_usage.keys
     RETURNING keys, bytes";
const WRITE_USAGE: &str = "UPDATE kv_usage SET keys = $2, bytes = $3 WHERE namespace = $1";
const READ_VALUE: &str = "SELECT value FROM kv WHERE namespace = $1 AND key = $2";
const PUT_VALUE: &str = "INSERT INTO kv (namespace, key, value) VALUES ($1, $2, $3)
     ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value";
const DELETE_VALUE: &str = "DELETE FROM kv WHERE namespace = $1 AND key = $2";
// `key` is COLLATE "C", so `>=` seeks and starts_with compares bytes.
const LIST_KEYS: &str = "SELECT key FROM kv WHERE namespace = $1 AND key >= $2
       AND starts_with(key, $2) AND key > $3
     ORDER BY key LIMIT $4";

/// The statements of a kv write, prepared on this connection (all at once the first time).
struct Writes {
    lock_usage: Statement,
    write_usage: Statement,
    read_value: Statement,
    put_value: Statement,
    delete_value: Statement,
}

impl Writes {
    async fn prepare(client: &ClientWrapper) -> Result<Writes, tokio_postgres::Error> {
        let (lock_usage, write_usage, read_value, put_value, delete_value) = try_join!(
            client.prepare_cached(LOCK_USAGE),
            client.prepare_cached(WRITE_USAGE),
            client.prepare_cached(READ_VALUE),
            client.prepare_cached(PUT_VALUE),
            client.prepare_cached(DELETE_VALUE),
        )?;
        Ok(Writes {
            lock_usage,
            write_usage,
            read_value,
            put_value,
            delete_value,
        })
    }

    /// One round trip: begin, lock the namespace's usage, then read `key`'s value.
    async fn begin(
        &self,
        client: &ClientWrapper,
        namespace: &str,
        key: &str,
    ) -> Result<(Usage, Option<Vec<u8>>), tokio_postgres::Error> {
        let lock: [&(dyn ToSql + Sync); 1] = [&namespace];
        let read: [&(dyn ToSql + Sync); 2] = [&namespace, &key];
        let ((), usage, value) = try_join!(
            client.batch_execute("BEGIN"),
            client.query_one(&self.lock_usage, &lock),
            client.query_opt(&self.read_value, &read),
        )?;
        let usage = Usage {
            keys: usage.get::<_, i64>(0) as u64,
            bytes: usage.get::<_, i64>(1) as u64,
        };
        Ok((usage, value.map(|row| row.get(0))))
    }

    /// One round trip: the change (`statement` with `params`), the new usage, commit.
    async fn commit(
        &self,
        client: &ClientWrapper,
        statement: &Statement,
        params: &[&(dyn ToSql + Sync)],
        namespace: &str,
        usage: Usage,
    ) -> Result<(), tokio_postgres::Error> {
        let (keys, bytes) = (usage.keys as i64, usage.bytes as i64);
        let written: [&(dyn ToSql + Sync); 3] = [&namespace, &keys, &bytes];
        try_join!(
            client.execute(statement, params),
            client.execute(&self.write_usage, &written),
            client.batch_execute("COMMIT"),
        )?;
        Ok(())
    }
}

/// Run `work` in the transaction it begins, rolling back if it fails, so the connection
/// goes back to the pool outside any transaction.
async fn transaction<R>(
    client: &ClientWrapper,
    work: impl AsyncFnOnce(&Writes) -> Result<R, StoreError>,
) -> Result<R, StoreError> {
    let writes = Writes::prepare(client).await.map_err(backend)?;
    let done = work(&writes).await;
    if done.is_err() {
        // After a failed COMMIT this only warns; a connection that cannot roll back is
        // broken, and the pool drops closed connections rather than lend them again.
        let _ = client.batch_execute("ROLLBACK").await;
    }
    done
}

impl KvStore for PostgresStore {
    fn get(
        &self,
        namespace: &str,
        key: &str,
        deadline: Deadline,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.within(deadline, async |client| {
            let read = client.prepare_cached(READ_VALUE).await.map_err(backend)?;
            let row = client
                .query_opt(&read, &[&namespace, &key])
                .await
                .map_err(backend)?;
            Ok(row.map(|row| row.get(0)))
        })
    }

    fn delete(&self, namespace: &str, key: &str, deadline: Deadline) -> Result<bool, StoreError> {
        self.within(deadline, async |client| {
            let client: &ClientWrapper = client;
            transaction(client, async |writes| {
                let (usage, old) = writes
                    .begin(client, namespace, key)
                    .await
                    .map_err(backend)?;
                let Some(old) = old else {
                    client.batch_execute("ROLLBACK").await.map_err(backend)?;
                    return Ok(false);
                };
                let usage = usage.after_delete(key, old.len());
                let params: [&(dyn ToSql + Sync); 2] = [&namespace, &key];
                writes
                    .commit(client, &writes.delete_value, &params, namespace, usage)
                    .await
                    .map_err(backend)?;
                Ok(true)
            })
            .await
        })
    }

    fn list_keys(
        &self,
        namespace: &str,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
        deadline: Deadline,
    ) -> Result<KeyPage, StoreError> {
        let limit = limit.clamp(1, MAX_PAGE) as usize;
        self.within(deadline, async |client| {
            let list = client.prepare_cached(LIST_KEYS).await.map_err(backend)?;
            let rows = client
                .query(
                    &list,
                    &[
                        &namespace,
                        &prefix,
                        &cursor.unwrap_or(""),
                        &(limit as i64 + 1),
                    ],
                )
                .await
                .map_err(backend)?;
            Ok(page(rows.iter().map(|row| row.get(0)).collect(), limit))
        })
    }

    fn update(
        &self,
        namespace: &str,
        key: &str,
        update: Update<'_>,
        quota: Quota,
        deadline: Deadline,
    ) -> Result<Updated, StoreError> {
        self.within(deadline, async |client| {
            let client: &ClientWrapper = client;
            transaction(client, async |writes| {
                let (usage, current) = writes
                    .begin(client, namespace, key)
                    .await
                    .map_err(backend)?;
                let (next, outcome) = update.apply(key, current.as_deref())?;
                let Some(value) = next else {
                    client.batch_execute("ROLLBACK").await.map_err(backend)?;
                    return Ok(outcome);
                };
                let usage =
                    usage.after_put(key, current.as_ref().map(Vec::len), value.len(), quota)?;
                let params: [&(dyn ToSql + Sync); 3] = [&namespace, &key, &value];
                writes
                    .commit(client, &writes.put_value, &params, namespace, usage)
                    .await
                    .map_err(backend)?;
                Ok(outcome)
            })
            .await
        })
    }
}
