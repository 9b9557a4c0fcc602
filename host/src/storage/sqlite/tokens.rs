//! Tables of records reached by a bearer token (MCP clients, event publishers, sessions): each row
//! is `(id, token_sha256, <record as JSON>, created_ms)`.

use super::{SqliteStore, backend};
use crate::storage::StoreError;
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// One such table: its name and the column holding the record.
pub(super) struct TokenTable {
    pub table: &'static str,
    pub column: &'static str,
}

fn parse<T: DeserializeOwned>(text: String) -> Result<T, StoreError> {
    serde_json::from_str(&text).map_err(backend)
}

impl TokenTable {
    pub fn add<T: Serialize>(
        &self,
        store: &SqliteStore,
        id: &str,
        created_ms: i64,
        record: &T,
        token_hash: &str,
    ) -> Result<(), StoreError> {
        let text = serde_json::to_string(record).map_err(backend)?;
        store
            .conn()
            .execute(
                &format!(
                    "INSERT INTO {} (id, token_sha256, {}, created_ms) VALUES (?1, ?2, ?3, ?4)",
                    self.table, self.column
                ),
                params![id, token_hash, text, created_ms],
            )
            .map(drop)
            .map_err(backend)
    }

    /// Every record, oldest first.
    pub fn all<T: DeserializeOwned>(&self, store: &SqliteStore) -> Result<Vec<T>, StoreError> {
        let conn = store.conn();
        let mut statement = conn
            .prepare(&format!(
                "SELECT {} FROM {} ORDER BY created_ms, id",
                self.column, self.table
            ))
            .map_err(backend)?;
        let rows = statement
            .query_map([], |row| row.get::<_, String>(0))
            .map_err(backend)?;
        rows.map(|row| row.map_err(backend).and_then(parse))
            .collect()
    }

    pub fn by_token<T: DeserializeOwned>(
        &self,
        store: &SqliteStore,
        token_hash: &str,
    ) -> Result<Option<T>, StoreError> {
        self.find(store, "token_sha256", token_hash)
    }

    pub fn get<T: DeserializeOwned>(
        &self,
        store: &SqliteStore,
        id: &str,
    ) -> Result<Option<T>, StoreError> {
        self.find(store, "id", id)
    }

    /// The record whose `key` column (`id` or `token_sha256`) is `value`.
    fn find<T: DeserializeOwned>(
        &self,
        store: &SqliteStore,
        key: &str,
        value: &str,
    ) -> Result<Option<T>, StoreError> {
        store
            .conn()
            .query_row(
                &format!(
                    "SELECT {} FROM {} WHERE {key} = ?1",
                    self.column, self.table
                ),
                [value],
                |row| row.get::<_, String>(0),
            )
            .optional()
            .map_err(backend)?
            .map(parse)
            .transpose()
    }

    /// Store `record` in place of record `id` (its token stays); whether it existed.
    pub fn replace<T: Serialize>(
        &self,
        store: &SqliteStore,
        id: &str,
        record: &T,
    ) -> Result<bool, StoreError> {
        let text = serde_json::to_string(record).map_err(backend)?;
        store
            .conn()
            .execute(
                &format!(
                    "UPDATE {} SET {} = ?2 WHERE id = ?1",
                    self.table, self.column
                ),
                params![id, text],
            )
            .map(|updated| updated > 0)
            .map_err(backend)
    }

    /// Whether a record was removed.
    pub fn remove(&self, store: &SqliteStore, id: &str) -> Result<bool, StoreError> {
        store
            .conn()
            .execute(&format!("DELETE FROM {} WHERE id = ?1", self.table), [id])
            .map(|removed| removed > 0)
            .map_err(backend)
    }
}
