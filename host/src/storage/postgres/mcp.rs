//! MCP clients in PostgreSQL, shared by every host of a cluster.

use super::PostgresStore;
use super::tokens::TokenTable;
use crate::capability::mcp::{McpClient, McpClientStore};
use crate::storage::StoreError;

const CLIENTS: TokenTable = TokenTable {
    table: "mcp_clients",
    column: "client",
};

impl McpClientStore for PostgresStore {
    fn add_client(&self, client: &McpClient, token_hash: &str) -> Result<(), StoreError> {
        CLIENTS.add(self, &client.id, client.created_ms, client, token_hash)
    }

    fn clients(&self) -> Result<Vec<McpClient>, StoreError> {
        CLIENTS.all(self)
    }

    fn client_by_token(&self, token_hash: &str) -> Result<Option<McpClient>, StoreError> {
        CLIENTS.by_token(self, token_hash)
    }

    fn remove_client(&self, id: &str) -> Result<bool, StoreError> {
        CLIENTS.remove(self, id)
    }
}
