//! Plugin settings (`config`) in PostgreSQL: one JSON object per plugin, read on every
//! call, so a change made through any host is what every host's plugins read next.

use super::{PostgresStore, backend};
use crate::audit::to_millis;
use crate::capability::config::ConfigStore;
use crate::storage::StoreError;
use serde_json::{Map, Value};
use std::time::SystemTime;

impl ConfigStore for PostgresStore {
    fn config(&self, plugin: &str) -> Result<Option<Map<String, Value>>, StoreError> {
        self.block_on(async {
            let client = self.pool.get().await.map_err(backend)?;
            let row = client
                .query_opt(
                    "SELECT settings FROM plugin_config WHERE plugin = $1",
                    &[&plugin],
                )
                .await
                .map_err(backend)?;
            row.map(|row| serde_json::from_str(row.get::<_, &str>(0)).map_err(backend))
                .transpose()
        })
    }

    fn set_config(&self, plugin: &str, values: &Map<String, Value>) -> Result<(), StoreError> {
        let text = serde_json::to_string(values).map_err(backend)?;
        self.block_on(async {
            let client = self.pool.get().await.map_err(backend)?;
            client
                .execute(
                    "INSERT INTO plugin_config (plugin, settings, updated_ms) VALUES ($1, $2, $3)
                     ON CONFLICT (plugin) DO UPDATE
                     SET settings = excluded.settings, updated_ms = excluded.updated_ms",
                    &[&plugin, &text, &to_millis(SystemTime::now())],
                )
                .await
                .map(drop)
                .map_err(backend)
        })
    }
}
