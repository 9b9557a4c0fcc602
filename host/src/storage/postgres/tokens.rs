//! Tables of records reached by a bearer token (MCP clients, event publishers, sessions), shared by
//! every host of a cluster: each row is `(id, token_sha256, <record as JSON>, created_ms)`.

use super::{PostgresStore, backend};
use crate::storage::StoreError;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// One such table: its name and the column holding the record.
pub(super) struct TokenTable {
    pub table: &'static str,
    pub column: &'static str,
}

fn parse<T: DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(backend)
}

impl TokenTable {
    pub fn add<T: Serialize>(
        &self,
        store: &PostgresStore,
        id: &str,
        created_ms: i64,
        record: &T,
        token_hash: &str,
    ) -> Result<(), StoreError> {
        let text = serde_json::to_string(record).map_err(backend)?;
        store.block_on(async {
            let connection = store.pool.get().await.map_err(backend)?;
            connection
                .execute(
                    &format!(
                        "INSERT INTO {} (id, token_sha256, {}, created_ms) VALUES ($1, $2, $3, $4)",
                        self.table, self.column
                    ),
                    &[&id, &token_hash, &text, &created_ms],
                )
                .await
                .map(drop)
                .map_err(backend)
        })
    }

    /// Every record, oldest first.
    pub fn all<T: DeserializeOwned>(&self, store: &PostgresStore) -> Result<Vec<T>, StoreError> {
        store.block_on(async {
            let connection = store.pool.get().await.map_err(backend)?;
            let rows = connection
                .query(
                    &format!(
                        "SELECT {} FROM {} ORDER BY created_ms, id",
                        self.column, self.table
                    ),
                    &[],
                )
                .await
                .map_err(backend)?;
            rows.iter().map(|row| parse(row.get(0))).collect()
        })
    }

    pub fn by_token<T: DeserializeOwned>(
        &self,
        store: &PostgresStore,
        token_hash: &str,
    ) -> Result<Option<T>, StoreError> {
        self.find(store, "token_sha256", token_hash)
    }

    pub fn get<T: DeserializeOwned>(
        &self,
        store: &PostgresStore,
        id: &str,
    ) -> Result<Option<T>, StoreError> {
        self.find(store, "id", id)
    }

    /// The record whose `key` column (`id` or `token_sha256`) is `value`.
    fn find<T: DeserializeOwned>(
        &self,
        store: &PostgresStore,
        key: &str,
        value: &str,
    ) -> Result<Option<T>, StoreError> {
        store.block_on(async {
            let connection = store.pool.get().await.map_err(backend)?;
            let row = connection
                .query_opt(
                    &format!(
                        "SELECT {} FROM {} WHERE {key} = $1",
                        self.column, self.table
                    ),
                    &[&value],
                )
                .await
                .map_err(backend)?;
            row.map(|row| parse(row.get(0))).transpose()
        })
    }

    /// Store `record` in place of record `id` (its token stays); whether it existed.
    pub fn replace<T: Serialize>(
        &self,
        store: &PostgresStore,
        id: &str,
        record: &T,
    ) -> Result<bool, StoreError> {
        let text = serde_json::to_string(record).map_err(backend)?;
        store.block_on(async {
            let connection = store.pool.get().await.map_err(backend)?;
            connection
                .execute(
                    &format!(
                        "UPDATE {} SET {} = $2 WHERE id = $1",
                        self.table, self.column
                    ),
                    &[&id, &text],
                )
                .await
                .map(|updated| updated > 0)
                .map_err(backend)
        })
    }

    /// Whether a record was removed.
    pub fn remove(&self, store: &PostgresStore, id: &str) -> Result<bool, StoreError> {
        store.block_on(async {
            let connection = store.pool.get().await.map_err(backend)?;
            connection
                .execute(&format!("DELETE FROM {} WHERE id = $1", self.table), &[&id])
                .await
                .map(|removed| removed > 0)
                .map_err(backend)
        })
    }
}
