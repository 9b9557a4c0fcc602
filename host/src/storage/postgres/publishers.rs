//! Event publishers in PostgreSQL, shared by every host of a cluster.

use super::PostgresStore;
use super::tokens::TokenTable;
use crate::capability::events::publishers::{Publisher, PublisherStore};
use crate::storage::StoreError;

const PUBLISHERS: TokenTable = TokenTable {
    table: "event_publishers",
    column: "publisher",
};

impl PublisherStore for PostgresStore {
    fn add_publisher(&self, publisher: &Publisher, token_hash: &str) -> Result<(), StoreError> {
        PUBLISHERS.add(
            self,
            &publisher.id,
            publisher.created_ms,
            publisher,
            token_hash,
        )
    }

    fn publishers(&self) -> Result<Vec<Publisher>, StoreError> {
        PUBLISHERS.all(self)
    }

    fn publisher_by_token(&self, token_hash: &str) -> Result<Option<Publisher>, StoreError> {
        PUBLISHERS.by_token(self, token_hash)
    }

    fn remove_publisher(&self, id: &str) -> Result<bool, StoreError> {
        PUBLISHERS.remove(self, id)
    }
}
