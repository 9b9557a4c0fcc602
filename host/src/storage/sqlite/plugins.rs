//! Installed plugins, their versions and host settings in SQLite.

use super::{SqliteStore, backend};
use crate::audit::to_millis;
use crate::storage::{PluginStore, StoreError, StoredPlugin, Upload, VersionInfo};
use rusqlite::{OptionalExtension, TransactionBehavior, params};
use std::time::SystemTime;

impl PluginStore for SqliteStore {
    fn add_version(
        &self,
        id: &str,
        version: &str,
        sha256: &str,
        upload: &Upload,
        tools: Option<&str>,
        signer: Option<&str>,
    ) -> Result<i64, StoreError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let seq: i64 = tx
            .query_row(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM plugin_versions WHERE id = ?1",
                [id],
                |r| r.get(0),
            )
            .map_err(backend)?;
        tx.execute(
            "INSERT INTO plugin_versions
             (id, seq, version, sha256, wasm, manifest, tools, installed_ms, signature, signer)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                id,
                seq,
                version,
                sha256,
                upload.wasm,
                upload.manifest,
                tools,
                to_millis(SystemTime::now()),
                upload.signature,
                signer
            ],
        )
        .map_err(backend)?;
        tx.execute(
            "INSERT INTO plugins (id, enabled, current_seq) VALUES (?1, 1, ?2)
             ON CONFLICT (id) DO UPDATE SET current_seq = excluded.current_seq",
            params![id, seq],
        )
        .map_err(backend)?;
        tx.commit().map_err(backend)?;
        Ok(seq)
    }

    fn set_current(&self, id: &str, seq: i64) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "UPDATE plugins SET current_seq = ?2 WHERE id = ?1",
                params![id, seq],
            )
            .map(drop)
            .map_err(backend)
    }

    fn set_enabled(&self, id: &str, enabled: bool) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "UPDATE plugins SET enabled = ?2 WHERE id = ?1",
                params![id, enabled],
            )
            .map(drop)
            .map_err(backend)
    }

    fn remove_plugin(&self, id: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let removed = tx
            .execute("DELETE FROM plugins WHERE id = ?1", [id])
            .map_err(backend)?;
        tx.execute("DELETE FROM plugin_versions WHERE id = ?1", [id])
            .map_err(backend)?;
        tx.commit().map_err(backend)?;
        Ok(removed > 0)
    }

    fn plugins(&self) -> Result<Vec<StoredPlugin>, StoreError> {
        let conn = self.conn();
        let mut statement = conn
            .prepare_cached("SELECT id, enabled, current_seq FROM plugins ORDER BY id")
            .map_err(backend)?;
        statement
            .query_map([], |row| {
                Ok(StoredPlugin {
                    id: row.get(0)?,
                    enabled: row.get(1)?,
                    current_seq: row.get(2)?,
                })
            })
            .and_then(Iterator::collect)
            .map_err(backend)
    }

    fn versions(&self, id: &str) -> Result<Vec<VersionInfo>, StoreError> {
        let conn = self.conn();
        let mut statement = conn
            .prepare_cached(
                "SELECT seq, version, sha256, installed_ms, signer FROM plugin_versions WHERE id = ?1 ORDER BY seq",
            )
            .map_err(backend)?;
        statement
            .query_map([id], |row| {
                Ok(VersionInfo {
                    seq: row.get(0)?,
                    version: row.get(1)?,
                    sha256: row.get(2)?,
                    installed_ms: row.get(3)?,
                    signer: row.get(4)?,
                })
            })
            .and_then(Iterator::collect)
            .map_err(backend)
    }

    fn upload(&self, id: &str, seq: i64) -> Result<Option<Upload>, StoreError> {
        self.conn()
            .query_row(
                "SELECT wasm, manifest, signature FROM plugin_versions WHERE id = ?1 AND seq = ?2",
                params![id, seq],
                |row| {
                    Ok(Upload {
                        wasm: row.get(0)?,
                        manifest: row.get(1)?,
                        signature: row.get(2)?,
                    })
                },
            )
            .optional()
            .map_err(backend)
    }

    fn tools(&self, id: &str, seq: i64) -> Result<Option<String>, StoreError> {
        self.conn()
            .query_row(
                "SELECT tools FROM plugin_versions WHERE id = ?1 AND seq = ?2",
                params![id, seq],
                |row| row.get::<_, Option<String>>(0),
            )
            .optional()
            .map(Option::flatten)
            .map_err(backend)
    }

    fn setting(&self, name: &str) -> Result<Option<String>, StoreError> {
        self.conn()
            .query_row(
                "SELECT value FROM settings WHERE name = ?1",
                [name],
                |row| row.get(0),
            )
            .optional()
            .map_err(backend)
    }

    fn set_setting(&self, name: &str, value: &str) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "INSERT INTO settings (name, value) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                [name, value],
            )
            .map(drop)
            .map_err(backend)
    }
}
