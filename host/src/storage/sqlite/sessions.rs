//! Sessions in SQLite: the session as JSON, keyed by id and by its token's hash.

use super::SqliteStore;
use super::tokens::TokenTable;
use crate::sessions::{Session, SessionId, SessionStore};
use crate::storage::StoreError;

const SESSIONS: TokenTable = TokenTable {
    table: "sessions",
    column: "session",
};

impl SessionStore for SqliteStore {
    fn add_session(&self, session: &Session, token_hash: &str) -> Result<(), StoreError> {
        SESSIONS.add(
            self,
            session.id.as_str(),
            session.created_ms,
            session,
            token_hash,
        )
    }

    fn sessions(&self) -> Result<Vec<Session>, StoreError> {
        SESSIONS.all(self)
    }

    fn session(&self, id: &SessionId) -> Result<Option<Session>, StoreError> {
        SESSIONS.get(self, id.as_str())
    }

    fn session_by_token(&self, token_hash: &str) -> Result<Option<Session>, StoreError> {
        SESSIONS.by_token(self, token_hash)
    }

    fn update_session(&self, session: &Session) -> Result<bool, StoreError> {
        SESSIONS.replace(self, session.id.as_str(), session)
    }

    fn remove_session(&self, id: &SessionId) -> Result<bool, StoreError> {
        SESSIONS.remove(self, id.as_str())
    }
}
