//! Sealed secrets in PostgreSQL.

use super::{PostgresStore, backend};
use crate::secrets::{Sealed, SecretError, SecretStore};
use crate::storage::StoreError;
use deadpool_postgres::GenericClient;
fn sealed_from_row(row: &tokio_postgres::Row) -> Sealed {
    Sealed {
        key_id: row.get("key_id"),
        nonce: row.get("nonce"),
        ciphertext: row.get("ciphertext"),
    }
}

impl SecretStore for PostgresStore {
    fn put_secret(&self, plugin: &str, name: &str, sealed: &Sealed) -> Result<(), StoreError> {
        self.block_on(async {
            let client = self.pool.get().await.map_err(backend)?;
            client
                .execute(
                    "INSERT INTO secrets (plugin, name, key_id, nonce, ciphertext) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (plugin, name) DO UPDATE
                     SET key_id = excluded.key_id, nonce = excluded.nonce, ciphertext = excluded.ciphertext",
                    &[&plugin, &name, &sealed.key_id, &sealed.nonce, &sealed.ciphertext],
                )
                .await
                .map(drop)
                .map_err(backend)
        })
    }

    fn get_secret(&self, plugin: &str, name: &str) -> Result<Option<Sealed>, StoreError> {
        self.block_on(async {
            let client = self.pool.get().await.map_err(backend)?;
            let row = client
                .query_opt(
                    "SELECT key_id, nonce, ciphertext FROM secrets WHERE plugin = $1 AND name = $2",
                    &[&plugin, &name],
                )
                .await
                .map_err(backend)?;
            Ok(row.as_ref().map(sealed_from_row))
        })
    }

    fn delete_secret(&self, plugin: &str, name: &str) -> Result<bool, StoreError> {
        self.block_on(async {
            let client = self.pool.get().await.map_err(backend)?;
            client
                .execute(
                    "DELETE FROM secrets WHERE plugin = $1 AND name = $2",
                    &[&plugin, &name],
                )
                .await
                .map(|n| n > 0)
                .map_err(backend)
        })
    }

    fn list_secrets(&self, plugin: Option<&str>) -> Result<Vec<(String, String)>, StoreError> {
        self.block_on(async {
            let client = self.pool.get().await.map_err(backend)?;
            let rows = client
                .query(
                    "SELECT plugin, name FROM secrets WHERE $1::TEXT IS NULL OR plugin = $1 ORDER BY plugin, name",
                    &[&plugin],
                )
                .await
                .map_err(backend)?;
            Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
        })
    }

    fn reseal_all(
        &self,
        reseal: &dyn Fn(&str, &str, &Sealed) -> Result<Sealed, SecretError>,
    ) -> Result<usize, SecretError> {
        self.block_on(async {
            let mut client = self.pool.get().await.map_err(backend)?;
            let tx = client.transaction().await.map_err(backend)?;
            let rows = tx
                .query("SELECT plugin, name, key_id, nonce, ciphertext FROM secrets FOR UPDATE", &[])
                .await
                .map_err(backend)?;
            for row in &rows {
                let (plugin, name): (String, String) = (row.get("plugin"), row.get("name"));
                let fresh = reseal(&plugin, &name, &sealed_from_row(row))?;
                tx.execute(
                    "UPDATE secrets SET key_id = $3, nonce = $4, ciphertext = $5 WHERE plugin = $1 AND name = $2",
                    &[&plugin, &name, &fresh.key_id, &fresh.nonce, &fresh.ciphertext],
                )
                .await
                .map_err(backend)?;
            }
            tx.commit().await.map_err(backend)?;
            Ok(rows.len())
        })
    }
}
