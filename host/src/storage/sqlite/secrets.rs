//! Sealed secrets in SQLite.

use super::{SqliteStore, backend};
use crate::secrets::{Sealed, SecretError, SecretStore};
use crate::storage::StoreError;
use rusqlite::{OptionalExtension, TransactionBehavior, params};
fn sealed_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Sealed> {
    Ok(Sealed {
        key_id: row.get(0)?,
        nonce: row.get(1)?,
        ciphertext: row.get(2)?,
    })
}

impl SecretStore for SqliteStore {
    fn put_secret(&self, plugin: &str, name: &str, sealed: &Sealed) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "INSERT INTO secrets (plugin, name, key_id, nonce, ciphertext) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (plugin, name) DO UPDATE
                 SET key_id = excluded.key_id, nonce = excluded.nonce, ciphertext = excluded.ciphertext",
                params![plugin, name, sealed.key_id, sealed.nonce, sealed.ciphertext],
            )
            .map(drop)
            .map_err(backend)
    }

    fn get_secret(&self, plugin: &str, name: &str) -> Result<Option<Sealed>, StoreError> {
        self.conn()
            .query_row(
                "SELECT key_id, nonce, ciphertext FROM secrets WHERE plugin = ?1 AND name = ?2",
                [plugin, name],
                sealed_from_row,
            )
            .optional()
            .map_err(backend)
    }

    fn delete_secret(&self, plugin: &str, name: &str) -> Result<bool, StoreError> {
        self.conn()
            .execute(
                "DELETE FROM secrets WHERE plugin = ?1 AND name = ?2",
                [plugin, name],
            )
            .map(|n| n > 0)
            .map_err(backend)
    }

    fn list_secrets(&self, plugin: Option<&str>) -> Result<Vec<(String, String)>, StoreError> {
        let conn = self.conn();
        let mut statement = conn
            .prepare_cached(
                "SELECT plugin, name FROM secrets WHERE ?1 IS NULL OR plugin = ?1 ORDER BY plugin, name",
            )
            .map_err(backend)?;
        statement
            .query_map([plugin], |row| Ok((row.get(0)?, row.get(1)?)))
            .and_then(Iterator::collect)
            .map_err(backend)
    }

    fn reseal_all(
        &self,
        reseal: &dyn Fn(&str, &str, &Sealed) -> Result<Sealed, SecretError>,
    ) -> Result<usize, SecretError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let rows: Vec<(String, String, Sealed)> = {
            let mut statement = tx
                .prepare("SELECT key_id, nonce, ciphertext, plugin, name FROM secrets")
                .map_err(backend)?;
            statement
                .query_map([], |row| {
                    Ok((row.get(3)?, row.get(4)?, sealed_from_row(row)?))
                })
                .and_then(Iterator::collect)
                .map_err(backend)?
        };
        for (plugin, name, sealed) in &rows {
            let fresh = reseal(plugin, name, sealed)?;
            tx.execute(
                "UPDATE secrets SET key_id = ?3, nonce = ?4, ciphertext = ?5 WHERE plugin = ?1 AND name = ?2",
                params![plugin, name, fresh.key_id, fresh.nonce, fresh.ciphertext],
            )
            .map_err(backend)?;
        }
        tx.commit().map_err(backend)?;
        Ok(rows.len())
    }
}
