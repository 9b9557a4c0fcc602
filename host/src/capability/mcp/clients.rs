//! MCP clients: who may reach the gateway and which tools each sees. An operator creates
//! a client with a scope (plugins, optionally tools); its bearer token is shown once and
//! only its SHA-256 is stored. Nothing an MCP client can call creates, widens or removes
//! a client.

use crate::policy::period::{Bounds, TEN_YEARS};
use crate::storage::StoreError;
use regex::Regex;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::LazyLock;
use std::time::{Duration, SystemTime};

/// Prefix of every client token, so secret scanners and people recognise one.
pub const TOKEN_PREFIX: &str = "cmcp_";
/// Longest client name.
pub const MAX_NAME_BYTES: usize = 64;
/// Most plugins or tools one scope may list.
pub const MAX_SCOPE_ENTRIES: usize = 256;
/// Highest per-client rate.
pub const MAX_RATE_PER_MINUTE: u32 = 1_000_000;
/// The lifetimes a token may be given: a second to ten years.
const EXPIRES_IN: Bounds = Bounds::new(Duration::from_secs(1), TEN_YEARS);

/// Plugin id in a scope: a plugin id, or `*` for every plugin.
static PLUGIN_ENTRY: LazyLock<Regex> =
    LazyLock::new(|| Regex::new("^(\\*|[a-z][a-z0-9_-]{0,62})$").expect("valid regex"));
/// Exposed tool name in a scope.
static TOOL_ENTRY: LazyLock<Regex> =
    LazyLock::new(|| Regex::new("^[a-zA-Z0-9_-]{1,64}$").expect("valid regex"));

/// A client as stored and listed (never with its token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct McpClient {
    /// Generated id, e.g. `c3f9a01b2d4e5f67`.
    pub id: String,
    /// What the operator called it (e.g. the agent or task it is for).
    pub name: String,
    /// Plugins whose tools it sees: ids, or `*` for all.
    pub plugins: Vec<String>,
    /// If set, only these tools (by the name clients see, `<plugin>__<tool>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<String>>,
    /// Tools are listed without the `<plugin>__` prefix (allowed for a client scoped to
    /// exactly one plugin, for clients that call fixed tool names).
    #[serde(default)]
    pub bare_names: bool,
    /// Requests per minute this client may make to `/mcp` on one host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_per_minute: Option<u32>,
    /// Milliseconds since the Unix epoch.
    pub created_ms: i64,
    /// When its token stops working, in milliseconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_ms: Option<i64>,
    /// The session this client stands for (its token is a session's): it also sees that
    /// session's own plugins' tools. Never stored; operators create only plain clients.
    #[serde(skip)]
    pub session: Option<crate::sessions::SessionId>,
}

impl McpClient {
    /// Whether its scope includes tool `exposed` of `plugin`.
    pub fn admits(&self, plugin: &str, exposed: &str) -> bool {
        self.plugins.iter().any(|p| p == "*" || p == plugin)
            && self
                .tools
                .as_ref()
                .is_none_or(|tools| tools.iter().any(|t| t == exposed))
    }

    /// Whether its token has expired at `now` (ms since the epoch).
    pub fn expired_at(&self, now_ms: i64) -> bool {
        self.expires_ms.is_some_and(|at| now_ms >= at)
    }
}

/// What an operator asks for when creating a client.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewClient {
    /// 1–64 characters, no control characters.
    pub name: String,
    /// Plugin ids (or `*`) whose tools the client sees; at least one.
    pub plugins: Vec<String>,
    /// Narrow the scope to these tools (names as clients see them).
    #[serde(default)]
    pub tools: Option<Vec<String>>,
    /// List tools without the plugin prefix (one plugin only).
    #[serde(default)]
    pub bare_names: bool,
    /// Lifetime of the token, e.g. `30m`, `12h`, `90d`; forever if absent.
    #[serde(default)]
    pub expires_in: Option<String>,
    /// Requests per minute on one host; unlimited if absent.
    #[serde(default)]
    pub rate_per_minute: Option<u32>,
}

/// Why a client could not be created: the field and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{field}`: {rule}")]
pub struct ClientProblem {
    pub field: &'static str,
    pub rule: String,
}

fn problem(field: &'static str, rule: impl Into<String>) -> ClientProblem {
    ClientProblem {
        field,
        rule: rule.into(),
    }
}

impl NewClient {
    /// Check every field and make the client (with a fresh id), created at `now`.
    pub fn check(self, now: SystemTime) -> Result<McpClient, ClientProblem> {
        let name = self.name.trim();
        if name.is_empty()
            || name.len() > MAX_NAME_BYTES
            || name.chars().any(crate::text::is_unsafe)
        {
            return Err(problem(
                "name",
                format!("must be 1–{MAX_NAME_BYTES} bytes without control characters"),
            ));
        }
        if self.plugins.is_empty() || self.plugins.len() > MAX_SCOPE_ENTRIES {
            return Err(problem(
                "plugins",
                format!("list 1–{MAX_SCOPE_ENTRIES} plugin ids (or \"*\" for all)"),
            ));
        }
        if let Some(bad) = self.plugins.iter().find(|p| !PLUGIN_ENTRY.is_match(p)) {
            return Err(problem(
                "plugins",
                format!(
                    "`{}` is neither a plugin id nor \"*\"",
                    crate::text::shown_name(bad)
                ),
            ));
        }
        if let Some(tools) = &self.tools {
            if tools.len() > MAX_SCOPE_ENTRIES {
                return Err(problem(
                    "tools",
                    format!("at most {MAX_SCOPE_ENTRIES} tools"),
                ));
            }
            if let Some(bad) = tools.iter().find(|t| !TOOL_ENTRY.is_match(t)) {
                return Err(problem(
                    "tools",
                    format!(
                        "`{}` is not a tool name as clients see it (`<plugin>__<tool>`)",
                        crate::text::shown_name(bad)
                    ),
                ));
            }
        }
        if self.bare_names && (self.plugins.len() != 1 || self.plugins[0] == "*") {
            return Err(problem(
                "bare_names",
                "needs a scope of exactly one plugin (names could collide otherwise)",
            ));
        }
        if let Some(rate) = self.rate_per_minute
            && !(1..=MAX_RATE_PER_MINUTE).contains(&rate)
        {
            return Err(problem(
                "rate_per_minute",
                format!("must be 1..={MAX_RATE_PER_MINUTE}"),
            ));
        }
        let expires_in = self
            .expires_in
            .as_deref()
            .map(|text| {
                EXPIRES_IN
                    .parse(text)
                    .map_err(|error| problem("expires_in", error))
            })
            .transpose()?;
        let created_ms = crate::audit::to_millis(now);
        Ok(McpClient {
            id: crate::secrets::random_hex(8),
            name: name.to_string(),
            plugins: self.plugins,
            tools: self.tools,
            bare_names: self.bare_names,
            rate_per_minute: self.rate_per_minute,
            created_ms,
            expires_ms: expires_in.map(|d| created_ms.saturating_add(d.as_millis() as i64)),
            session: None,
        })
    }
}

/// The client a session's token stands for at `/mcp`: the session's own plugins' tools,
/// and those of the global plugins it names in `global_tools`, until it expires.
pub fn session_client(session: &crate::sessions::Session) -> McpClient {
    McpClient {
        id: format!("session-{}", session.id),
        name: session.name.clone(),
        plugins: session.global_tools.clone(),
        tools: None,
        bare_names: false,
        rate_per_minute: None,
        created_ms: session.created_ms,
        expires_ms: Some(session.expires_ms),
        session: Some(session.id.clone()),
    }
}

/// A fresh client token and the hash stored for it.
pub fn new_token() -> (String, String) {
    let token = format!("{TOKEN_PREFIX}{}", crate::secrets::random_hex(32));
    let hash = token_hash(&token);
    (token, hash)
}

/// The stored form of `token`: hex SHA-256.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Where clients live, in every backend; shared by the hosts of a cluster.
pub trait McpClientStore: Send + Sync {
    /// Store `client` with the hash of its token.
    fn add_client(&self, client: &McpClient, token_hash: &str) -> Result<(), StoreError>;
    /// Every client, oldest first.
    fn clients(&self) -> Result<Vec<McpClient>, StoreError>;
    /// The client whose token hashes to `token_hash`.
    fn client_by_token(&self, token_hash: &str) -> Result<Option<McpClient>, StoreError>;
    /// Revoke client `id` (its token stops working); true if it existed.
    fn remove_client(&self, id: &str) -> Result<bool, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(plugins: &[&str]) -> NewClient {
        NewClient {
            name: "agent".into(),
            plugins: plugins.iter().map(|p| p.to_string()).collect(),
            ..NewClient::default()
        }
    }

    #[test]
    fn a_scope_admits_its_plugins_and_tools_only() {
        let client = new(&["tools"]).check(SystemTime::now()).unwrap();
        assert!(client.admits("tools", "tools__add"));
        assert!(!client.admits("vault", "vault__read"));
        let narrow = NewClient {
            tools: Some(vec!["tools__add".into()]),
            ..new(&["*"])
        }
        .check(SystemTime::now())
        .unwrap();
        assert!(narrow.admits("tools", "tools__add"));
        assert!(!narrow.admits("tools", "tools__word-count"));
    }

    #[test]
    fn each_field_is_checked_and_named() {
        let now = SystemTime::now();
        let cases = [
            (
                NewClient {
                    name: " ".into(),
                    ..new(&["a"])
                },
                "name",
            ),
            (
                NewClient {
                    name: "a\u{1b}[2J".into(),
                    ..new(&["a"])
                },
                "name",
            ),
            (new(&[]), "plugins"),
            (new(&["../etc"]), "plugins"),
            (
                NewClient {
                    tools: Some(vec!["a b".into()]),
                    ..new(&["a"])
                },
                "tools",
            ),
            (
                NewClient {
                    bare_names: true,
                    ..new(&["a", "b"])
                },
                "bare_names",
            ),
            (
                NewClient {
                    bare_names: true,
                    ..new(&["*"])
                },
                "bare_names",
            ),
            (
                NewClient {
                    rate_per_minute: Some(0),
                    ..new(&["a"])
                },
                "rate_per_minute",
            ),
            (
                NewClient {
                    expires_in: Some("soon".into()),
                    ..new(&["a"])
                },
                "expires_in",
            ),
            (
                NewClient {
                    expires_in: Some("0s".into()),
                    ..new(&["a"])
                },
                "expires_in",
            ),
        ];
        for (case, field) in cases {
            assert_eq!(case.check(now).unwrap_err().field, field);
        }
    }

    #[test]
    fn a_token_expires_after_its_lifetime() {
        let now = SystemTime::now();
        let client = NewClient {
            expires_in: Some("1h".into()),
            ..new(&["a"])
        }
        .check(now)
        .unwrap();
        let created = crate::audit::to_millis(now);
        assert!(!client.expired_at(created + 3_599_000));
        assert!(client.expired_at(created + 3_600_000));
    }

    #[test]
    fn tokens_are_random_and_stored_hashed() {
        let (one, hash) = new_token();
        let (two, _) = new_token();
        assert_ne!(one, two);
        assert!(one.starts_with(TOKEN_PREFIX));
        assert_eq!(hash, token_hash(&one));
        assert!(!hash.contains(&one[TOKEN_PREFIX.len()..]));
    }
}
