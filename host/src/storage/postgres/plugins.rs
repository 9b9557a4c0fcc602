//! Installed plugins, their versions and host settings in PostgreSQL. Every change sends
//! a notification in its own transaction, and a listener relays other hosts' changes, so
//! hosts sharing the database converge without polling.

use super::{PostgresStore, backend};
use crate::audit::to_millis;
use crate::storage::{PluginStore, StoreError, StoredPlugin, Upload, VersionInfo};
use deadpool_postgres::GenericClient;
use futures_util::StreamExt;
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio_postgres::{AsyncMessage, NoTls};

/// Wait before reconnecting a listener whose connection failed.
const RECONNECT_DELAY: Duration = Duration::from_secs(1);

impl PostgresStore {
    /// Run `change` in a transaction that also notifies the other hosts.
    fn changing<R>(
        &self,
        change: impl AsyncFnOnce(&deadpool_postgres::Transaction<'_>) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        self.block_on(async {
            let mut client = self.pool.get().await.map_err(backend)?;
            let tx = client.transaction().await.map_err(backend)?;
            let result = change(&tx).await?;
            tx.execute("SELECT pg_notify($1, $2)", &[&self.channel, &self.origin])
                .await
                .map_err(backend)?;
            tx.commit().await.map_err(backend)?;
            Ok(result)
        })
    }
}

impl PluginStore for PostgresStore {
    fn add_version(
        &self,
        id: &str,
        version: &str,
        sha256: &str,
        upload: &Upload,
        tools: Option<&str>,
        signer: Option<&str>,
    ) -> Result<i64, StoreError> {
        self.changing(async |tx| {
            // Serialise installs of the same id across hosts.
            tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&id])
                .await
                .map_err(backend)?;
            let seq: i64 = tx
                .query_one(
                    "SELECT COALESCE(MAX(seq), 0) + 1 FROM plugin_versions WHERE id = $1",
                    &[&id],
                )
                .await
                .map_err(backend)?
                .get(0);
            tx.execute(
                "INSERT INTO plugin_versions
                 (id, seq, version, sha256, wasm, manifest, tools, installed_ms, signature, signer)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                &[
                    &id,
                    &seq,
                    &version,
                    &sha256,
                    &upload.wasm,
                    &upload.manifest,
                    &tools,
                    &to_millis(SystemTime::now()),
                    &upload.signature,
                    &signer,
                ],
            )
            .await
            .map_err(backend)?;
            tx.execute(
                "INSERT INTO plugins (id, enabled, current_seq) VALUES ($1, TRUE, $2)
                 ON CONFLICT (id) DO UPDATE SET current_seq = excluded.current_seq",
                &[&id, &seq],
            )
            .await
            .map_err(backend)?;
            Ok(seq)
        })
    }

    fn set_current(&self, id: &str, seq: i64) -> Result<(), StoreError> {
        self.changing(async |tx| {
            tx.execute(
                "UPDATE plugins SET current_seq = $2 WHERE id = $1",
                &[&id, &seq],
            )
            .await
            .map(drop)
            .map_err(backend)
        })
    }

    fn set_enabled(&self, id: &str, enabled: bool) -> Result<(), StoreError> {
        self.changing(async |tx| {
            tx.execute(
                "UPDATE plugins SET enabled = $2 WHERE id = $1",
                &[&id, &enabled],
            )
            .await
            .map(drop)
            .map_err(backend)
        })
    }

    fn remove_plugin(&self, id: &str) -> Result<bool, StoreError> {
        self.changing(async |tx| {
            let removed = tx
                .execute("DELETE FROM plugins WHERE id = $1", &[&id])
                .await
                .map_err(backend)?;
            tx.execute("DELETE FROM plugin_versions WHERE id = $1", &[&id])
                .await
                .map_err(backend)?;
            Ok(removed > 0)
        })
    }

    fn plugins(&self) -> Result<Vec<StoredPlugin>, StoreError> {
        self.block_on(async {
            let client = self.pool.get().await.map_err(backend)?;
            let rows = client
                .query(
                    "SELECT id, enabled, current_seq FROM plugins ORDER BY id",
                    &[],
                )
                .await
                .map_err(backend)?;
            Ok(rows
                .iter()
                .map(|row| StoredPlugin {
                    id: row.get(0),
                    enabled: row.get(1),
                    current_seq: row.get(2),
                })
                .collect())
        })
    }

    fn versions(&self, id: &str) -> Result<Vec<VersionInfo>, StoreError> {
        self.block_on(async {
            let client = self.pool.get().await.map_err(backend)?;
            let rows = client
                .query(
                    "SELECT seq, version, sha256, installed_ms, signer FROM plugin_versions
                     WHERE id = $1 ORDER BY seq",
                    &[&id],
                )
                .await
                .map_err(backend)?;
            Ok(rows
                .iter()
                .map(|row| VersionInfo {
                    seq: row.get(0),
                    version: row.get(1),
                    sha256: row.get(2),
                    installed_ms: row.get(3),
                    signer: row.get(4),
                })
                .collect())
        })
    }

    fn upload(&self, id: &str, seq: i64) -> Result<Option<Upload>, StoreError> {
        self.block_on(async {
            let client = self.pool.get().await.map_err(backend)?;
            let row = client
                .query_opt(
                    "SELECT wasm, manifest, signature FROM plugin_versions WHERE id = $1 AND seq = $2",
                    &[&id, &seq],
                )
                .await
                .map_err(backend)?;
            Ok(row.map(|row| Upload {
                wasm: row.get(0),
                manifest: row.get(1),
                signature: row.get(2),
            }))
        })
    }

    fn tools(&self, id: &str, seq: i64) -> Result<Option<String>, StoreError> {
        self.block_on(async {
            let client = self.pool.get().await.map_err(backend)?;
            let row = client
                .query_opt(
                    "SELECT tools FROM plugin_versions WHERE id = $1 AND seq = $2",
                    &[&id, &seq],
                )
                .await
                .map_err(backend)?;
            Ok(row.and_then(|row| row.get(0)))
        })
    }

    fn setting(&self, name: &str) -> Result<Option<String>, StoreError> {
        self.block_on(async {
            let client = self.pool.get().await.map_err(backend)?;
            let row = client
                .query_opt("SELECT value FROM settings WHERE name = $1", &[&name])
                .await
                .map_err(backend)?;
            Ok(row.map(|row| row.get(0)))
        })
    }

    fn set_setting(&self, name: &str, value: &str) -> Result<(), StoreError> {
        self.changing(async |tx| {
            tx.execute(
                "INSERT INTO settings (name, value) VALUES ($1, $2)
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                &[&name, &value],
            )
            .await
            .map(drop)
            .map_err(backend)
        })
    }

    fn watch(&self) -> Option<UnboundedReceiver<()>> {
        Some(self.listen_on(&self.channel))
    }
}

impl PostgresStore {
    /// Notifications on `channel` from other stores, relayed until the receiver is
    /// dropped (reconnecting after failures).
    pub(super) fn listen_on(&self, channel: &str) -> UnboundedReceiver<()> {
        let (sender, receiver) = unbounded_channel();
        let config = self.config.clone();
        let channel = channel.to_string();
        let origin = self.origin.clone();
        self.runtime
            .as_ref()
            .expect("runtime lives until drop")
            .spawn(async move {
                while !sender.is_closed() {
                    if let Err(error) = listen(&config, &channel, &origin, &sender).await {
                        tracing::warn!("listening on {channel} failed: {error}");
                    }
                    tokio::time::sleep(RECONNECT_DELAY).await;
                }
            });
        receiver
    }
}

/// Listen on `channel` until the connection ends, sending on `changed` for every
/// notification from another store, and once after connecting (changes made while this
/// host was not listening are picked up then).
async fn listen(
    config: &tokio_postgres::Config,
    channel: &str,
    origin: &str,
    changed: &UnboundedSender<()>,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let (forward, mut messages) = unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut stream = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = stream.next().await {
            match message {
                Ok(message) => {
                    if forward.send(message).is_err() {
                        break;
                    }
                }
                Err(error) => return Err(error),
            }
        }
        Ok(())
    });
    client.batch_execute(&format!("LISTEN {channel}")).await?;
    let _ = changed.send(());
    while let Some(message) = messages.recv().await {
        if let AsyncMessage::Notification(note) = message
            && note.payload() != origin
            && changed.send(()).is_err()
        {
            break;
        }
    }
    drop(client);
    driver.await.unwrap_or(Ok(()))
}
