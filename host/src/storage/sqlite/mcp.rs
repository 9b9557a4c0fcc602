//! MCP clients in SQLite: the client as JSON, keyed by id and by its token's hash.

use super::{SqliteStore, backend};
use crate::capability::mcp::{McpClient, McpClientStore};
use crate::storage::StoreError;
use rusqlite::{OptionalExtension, params};

fn parse(text: String) -> Result<McpClient, StoreError> {
    serde_json::from_str(&text).map_err(backend)
}

impl McpClientStore for SqliteStore {
    fn add_client(&self, client: &McpClient, token_hash: &str) -> Result<(), StoreError> {
        let text = serde_json::to_string(client).map_err(backend)?;
        self.conn()
            .execute(
                "INSERT INTO mcp_clients (id, token_sha256, client, created_ms)
                 VALUES (?1, ?2, ?3, ?4)",
                params![client.id, token_hash, text, client.created_ms],
            )
            .map(drop)
            .map_err(backend)
    }

    fn clients(&self) -> Result<Vec<McpClient>, StoreError> {
        let conn = self.conn();
        let mut statement = conn
            .prepare("SELECT client FROM mcp_clients ORDER BY created_ms, id")
            .map_err(backend)?;
        let rows = statement
            .query_map([], |row| row.get::<_, String>(0))
            .map_err(backend)?;
        rows.map(|row| row.map_err(backend).and_then(parse))
            .collect()
    }

    fn client_by_token(&self, token_hash: &str) -> Result<Option<McpClient>, StoreError> {
        self.conn()
            .query_row(
                "SELECT client FROM mcp_clients WHERE token_sha256 = ?1",
                [token_hash],
                |row| row.get::<_, String>(0),
            )
            .optional()
            .map_err(backend)?
            .map(parse)
            .transpose()
    }

    fn remove_client(&self, id: &str) -> Result<bool, StoreError> {
        self.conn()
            .execute("DELETE FROM mcp_clients WHERE id = ?1", [id])
            .map(|removed| removed > 0)
            .map_err(backend)
    }
}
