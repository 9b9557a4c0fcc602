//! Sessions: private plugin sets a client brings for its own work. An operator creates a
//! session (its bearer token is shown once; only its SHA-256 is stored); with that token a
//! client installs plugins only it can reach, whose state lives apart from everyone
//! else's; closing or expiry removes them and purges what they kept.

mod id;
mod policy;

pub use id::{Owner, SEPARATOR, SessionId, belongs_to, local, owner};
pub use policy::{SessionPolicy, SessionRules};

use crate::storage::StoreError;
use serde::{Deserialize, Serialize};
use std::time::SystemTime;

/// Prefix of every session token, so secret scanners and people recognise one.
pub const TOKEN_PREFIX: &str = "cses_";
/// Longest session name.
pub const MAX_NAME_BYTES: usize = 64;

/// A session as stored and listed (never with its token).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Session {
    /// Generated id, e.g. `3f9a01b2d4e5f670`; its plugins' routes are under
    /// `/s/{id}/plugins/`.
    #[schema(value_type = String)]
    pub id: SessionId,
    /// What the operator called it (the client or task it is for).
    pub name: String,
    /// Milliseconds since the Unix epoch.
    pub created_ms: i64,
    /// When it closes by itself unless renewed, in milliseconds since the Unix epoch.
    pub expires_ms: i64,
    /// How it narrows the operator's policy for its plugins.
    #[serde(default)]
    pub policy: SessionPolicy,
    /// Global plugins whose MCP tools its token also lists at `/mcp` (ids, or `*` for
    /// all); its own plugins' tools it always sees.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub global_tools: Vec<String>,
}

impl Session {
    /// Whether it is still open at `now_ms`.
    pub fn is_open(&self, now_ms: i64) -> bool {
        now_ms < self.expires_ms
    }
}

/// What an operator asks for when creating a session.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSession {
    /// 1–64 characters, no control characters.
    pub name: String,
    /// How long it lives unless renewed, e.g. `30m`, `8h`.
    pub ttl: String,
    /// How it narrows the operator's policy (withheld capabilities, lower limits).
    #[serde(default)]
    pub policy: SessionPolicy,
    /// Global plugins (ids, or `*`) whose MCP tools its token also sees; none if absent.
    #[serde(default)]
    pub global_tools: Vec<String>,
}

/// Most entries in a session's `global_tools`.
pub const MAX_GLOBAL_TOOLS: usize = 256;

/// Why a session could not be created or renewed.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SessionProblem {
    /// A field breaks its rule (named in the text).
    #[error("{0}")]
    Invalid(String),
    /// The operator's `[sessions] max_sessions` are open already.
    #[error("{open} sessions are open; the policy allows {limit}")]
    TooMany { open: usize, limit: usize },
}

/// A time to live checked against the operator's longest.
pub fn check_ttl(text: &str, rules: &SessionRules) -> Result<std::time::Duration, SessionProblem> {
    let crate::policy::Period(ttl) = crate::policy::Period::parse(text)
        .map_err(|p| SessionProblem::Invalid(format!("`ttl`: {p}")))?;
    let longest = rules.max_ttl();
    if ttl > longest {
        return Err(SessionProblem::Invalid(format!(
            "`ttl`: {} is longer than the policy's [sessions] max_ttl of {}",
            humantime::format_duration(ttl),
            humantime::format_duration(longest)
        )));
    }
    Ok(ttl)
}

impl NewSession {
    /// Check every field and make the session (with a fresh id), created at `now`.
    pub fn check(self, now: SystemTime, rules: &SessionRules) -> Result<Session, SessionProblem> {
        let name = self.name.trim();
        if name.is_empty()
            || name.len() > MAX_NAME_BYTES
            || name.chars().any(crate::text::is_unsafe)
        {
            return Err(SessionProblem::Invalid(format!(
                "`name`: must be 1–{MAX_NAME_BYTES} bytes without control characters"
            )));
        }
        let ttl = check_ttl(&self.ttl, rules)?;
        self.policy.check().map_err(SessionProblem::Invalid)?;
        if self.global_tools.len() > MAX_GLOBAL_TOOLS {
            return Err(SessionProblem::Invalid(format!(
                "`global_tools`: at most {MAX_GLOBAL_TOOLS} plugins"
            )));
        }
        if let Some(bad) = self
            .global_tools
            .iter()
            .find(|id| *id != "*" && crate::manifest::validate_id(id).is_err())
        {
            return Err(SessionProblem::Invalid(format!(
                "`global_tools`: `{}` is neither a plugin id nor `*`",
                crate::text::shown_name(bad)
            )));
        }
        let created_ms = crate::audit::to_millis(now);
        Ok(Session {
            id: SessionId::generate(),
            name: name.to_string(),
            created_ms,
            expires_ms: created_ms.saturating_add(ttl.as_millis() as i64),
            policy: self.policy,
            global_tools: self.global_tools,
        })
    }
}

/// A fresh session token and the hash stored for it.
pub fn new_token() -> (String, String) {
    let token = format!("{TOKEN_PREFIX}{}", crate::secrets::random_hex(32));
    let hash = crate::capability::mcp::clients::token_hash(&token);
    (token, hash)
}

/// Where sessions live, in every state backend; shared by the hosts of a cluster.
pub trait SessionStore: Send + Sync {
    fn add_session(&self, session: &Session, token_hash: &str) -> Result<(), StoreError>;
    /// Every session, oldest first.
    fn sessions(&self) -> Result<Vec<Session>, StoreError>;
    fn session(&self, id: &SessionId) -> Result<Option<Session>, StoreError>;
    fn session_by_token(&self, token_hash: &str) -> Result<Option<Session>, StoreError>;
    /// Store `session`'s new fields (its token stays); whether it still existed.
    fn update_session(&self, session: &Session) -> Result<bool, StoreError>;
    /// Whether one was removed (its token stops working at once).
    fn remove_session(&self, id: &SessionId) -> Result<bool, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(ttl: &str) -> NewSession {
        NewSession {
            name: "notebook-7".into(),
            ttl: ttl.into(),
            policy: SessionPolicy::default(),
            global_tools: Vec::new(),
        }
    }

    #[test]
    fn a_session_lives_for_its_ttl() {
        let session = new("30m")
            .check(SystemTime::now(), &SessionRules::default())
            .unwrap();
        assert_eq!(session.expires_ms - session.created_ms, 30 * 60 * 1000);
        assert!(session.is_open(session.created_ms));
        assert!(!session.is_open(session.expires_ms));
    }

    #[test]
    fn each_field_is_checked_and_named() {
        let rules: SessionRules = toml::from_str("max_ttl = \"1h\"").unwrap();
        for (new, needle) in [
            (new("forever"), "`ttl`"),
            (new("0s"), "`ttl`"),
            (new("2h"), "max_ttl"),
            (
                NewSession {
                    global_tools: vec!["Not An Id".into()],
                    ..new("1m")
                },
                "`global_tools`",
            ),
            (
                NewSession {
                    name: "\u{1b}]0;pwned\u{7}".into(),
                    ..new("1m")
                },
                "`name`",
            ),
        ] {
            let problem = new.check(SystemTime::now(), &rules).unwrap_err();
            assert!(problem.to_string().contains(needle), "{problem}");
        }
    }

    #[test]
    fn tokens_are_random_prefixed_and_stored_hashed() {
        let (a, hash) = new_token();
        let (b, _) = new_token();
        assert!(a.starts_with(TOKEN_PREFIX) && a != b);
        assert_eq!(hash, crate::capability::mcp::clients::token_hash(&a));
    }
}
