//! MCP clients in PostgreSQL, shared by every host of a cluster: a token created through
//! one host works on all, and a revocation reaches all within their lookup cache's life.

use super::{PostgresStore, backend};
use crate::capability::mcp::{McpClient, McpClientStore};
use crate::storage::StoreError;

fn parse(text: &str) -> Result<McpClient, StoreError> {
    serde_json::from_str(text).map_err(backend)
}

impl McpClientStore for PostgresStore {
    fn add_client(&self, client: &McpClient, token_hash: &str) -> Result<(), StoreError> {
        let text = serde_json::to_string(client).map_err(backend)?;
        self.block_on(async {
            let connection = self.pool.get().await.map_err(backend)?;
            connection
                .execute(
                    "INSERT INTO mcp_clients (id, token_sha256, client, created_ms)
                     VALUES ($1, $2, $3, $4)",
                    &[&client.id, &token_hash, &text, &client.created_ms],
                )
                .await
                .map(drop)
                .map_err(backend)
        })
    }

    fn clients(&self) -> Result<Vec<McpClient>, StoreError> {
        self.block_on(async {
            let connection = self.pool.get().await.map_err(backend)?;
            let rows = connection
                .query(
                    "SELECT client FROM mcp_clients ORDER BY created_ms, id",
                    &[],
                )
                .await
                .map_err(backend)?;
            rows.iter().map(|row| parse(row.get(0))).collect()
        })
    }

    fn client_by_token(&self, token_hash: &str) -> Result<Option<McpClient>, StoreError> {
        self.block_on(async {
            let connection = self.pool.get().await.map_err(backend)?;
            let row = connection
                .query_opt(
                    "SELECT client FROM mcp_clients WHERE token_sha256 = $1",
                    &[&token_hash],
                )
                .await
                .map_err(backend)?;
            row.map(|row| parse(row.get(0))).transpose()
        })
    }

    fn remove_client(&self, id: &str) -> Result<bool, StoreError> {
        self.block_on(async {
            let connection = self.pool.get().await.map_err(backend)?;
            connection
                .execute("DELETE FROM mcp_clients WHERE id = $1", &[&id])
                .await
                .map(|removed| removed > 0)
                .map_err(backend)
        })
    }
}
