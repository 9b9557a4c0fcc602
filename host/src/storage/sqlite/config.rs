//! Plugin settings (`config`) in SQLite: one JSON object per plugin.

use super::{SqliteStore, backend};
use crate::audit::to_millis;
use crate::capability::config::ConfigStore;
use crate::storage::StoreError;
use rusqlite::{OptionalExtension, params};
use serde_json::{Map, Value};
use std::time::SystemTime;

impl ConfigStore for SqliteStore {
    fn config(&self, plugin: &str) -> Result<Option<Map<String, Value>>, StoreError> {
        let text: Option<String> = self
            .conn()
            .query_row(
                "SELECT settings FROM plugin_config WHERE plugin = ?1",
                [plugin],
                |row| row.get(0),
            )
            .optional()
            .map_err(backend)?;
        text.map(|text| serde_json::from_str(&text).map_err(backend))
            .transpose()
    }

    fn set_config(&self, plugin: &str, values: &Map<String, Value>) -> Result<(), StoreError> {
        let text = serde_json::to_string(values).map_err(backend)?;
        self.conn()
            .execute(
                "INSERT INTO plugin_config (plugin, settings, updated_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT (plugin) DO UPDATE SET settings = excluded.settings, updated_ms = excluded.updated_ms",
                params![plugin, text, to_millis(SystemTime::now())],
            )
            .map(drop)
            .map_err(backend)
    }
}
