//! Publish tokens: let a system outside publish events on some topics (through `POST
//! /admin/v1/events`) without the admin token. An operator creates a publisher with its
//! topic patterns; its bearer token is shown once and only its SHA-256 is stored.

use super::Pattern;
use crate::policy::period::{Bounds, TEN_YEARS};
use crate::storage::StoreError;
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime};

/// Prefix of every publish token, so secret scanners and people recognise one.
pub const TOKEN_PREFIX: &str = "cevt_";
/// Longest publisher name.
pub const MAX_NAME_BYTES: usize = 64;
/// Most patterns one publisher may hold.
pub const MAX_TOPICS: usize = 64;
/// The lifetimes a token may be given: a second to ten years.
const EXPIRES_IN: Bounds = Bounds::new(Duration::from_secs(1), TEN_YEARS);

/// A publisher as stored and listed (never with its token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Publisher {
    /// Generated id, e.g. `3f9a01b2d4e5f670`.
    pub id: String,
    /// What the operator called it (the system it is for).
    pub name: String,
    /// The topics it may publish on (patterns; never `capstan.…`).
    #[schema(value_type = Vec<String>)]
    pub topics: Vec<Pattern>,
    /// Milliseconds since the Unix epoch.
    pub created_ms: i64,
    /// When its token stops working, in milliseconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_ms: Option<i64>,
}

impl Publisher {
    /// The source its events carry.
    pub fn source(&self) -> String {
        format!("capstan:publisher:{}", self.id)
    }

    /// Whether it may publish on `topic` at `now_ms`.
    pub fn may_publish(&self, topic: &super::Topic, now_ms: i64) -> bool {
        !topic.is_reserved()
            && self.expires_ms.is_none_or(|at| now_ms < at)
            && self.topics.iter().any(|p| p.matches(topic))
    }
}

/// What an operator asks for when creating a publisher.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPublisher {
    /// 1–64 characters, no control characters.
    pub name: String,
    /// Topic patterns it may publish on; at least one.
    pub topics: Vec<String>,
    /// Lifetime of the token, e.g. `30m`, `90d`; forever if absent.
    #[serde(default)]
    pub expires_in: Option<String>,
}

impl NewPublisher {
    /// Check every field and make the publisher (with a fresh id), created at `now`; `Err`
    /// names the field and the rule.
    pub fn check(self, now: SystemTime) -> Result<Publisher, String> {
        let name = self.name.trim();
        if name.is_empty()
            || name.len() > MAX_NAME_BYTES
            || name.chars().any(crate::text::is_unsafe)
        {
            return Err(format!(
                "`name`: must be 1–{MAX_NAME_BYTES} bytes without control characters"
            ));
        }
        if self.topics.is_empty() || self.topics.len() > MAX_TOPICS {
            return Err(format!("`topics`: list 1–{MAX_TOPICS} topic patterns"));
        }
        let topics = self
            .topics
            .iter()
            .map(|text| Pattern::parse(text).map_err(|problem| format!("`topics`: {problem}")))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(reserved) = topics.iter().find(|p| p.is_reserved()) {
            return Err(format!(
                "`topics`: `{reserved}` is the host's own; nobody else publishes there"
            ));
        }
        let expires_in = self
            .expires_in
            .as_deref()
            .map(|text| EXPIRES_IN.parse_field("expires_in", text))
            .transpose()?;
        let created_ms = crate::audit::to_millis(now);
        Ok(Publisher {
            id: crate::secrets::random_hex(8),
            name: name.to_string(),
            topics,
            created_ms,
            expires_ms: expires_in.map(|d| created_ms.saturating_add(d.as_millis() as i64)),
        })
    }
}

/// A fresh publish token and the hash stored for it.
pub fn new_token() -> (String, String) {
    let token = format!("{TOKEN_PREFIX}{}", crate::secrets::random_hex(32));
    let hash = crate::capability::mcp::clients::token_hash(&token);
    (token, hash)
}

/// Where publishers live, in every state backend; shared by the hosts of a cluster.
pub trait PublisherStore: Send + Sync {
    fn add_publisher(&self, publisher: &Publisher, token_hash: &str) -> Result<(), StoreError>;
    /// Every publisher, oldest first.
    fn publishers(&self) -> Result<Vec<Publisher>, StoreError>;
    fn publisher_by_token(&self, token_hash: &str) -> Result<Option<Publisher>, StoreError>;
    /// Whether one was removed.
    fn remove_publisher(&self, id: &str) -> Result<bool, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(topics: &[&str]) -> NewPublisher {
        NewPublisher {
            name: "billing".into(),
            topics: topics.iter().map(|t| t.to_string()).collect(),
            expires_in: None,
        }
    }

    #[test]
    fn a_publisher_publishes_on_its_topics_only_until_it_expires() {
        let publisher = NewPublisher {
            expires_in: Some("1h".into()),
            ..new(&["payments.*"])
        }
        .check(SystemTime::now())
        .unwrap();
        let now = publisher.created_ms;
        let topic = |t: &str| super::super::Topic::parse(t).unwrap();
        assert!(publisher.may_publish(&topic("payments.settled"), now));
        assert!(!publisher.may_publish(&topic("orders.created"), now));
        assert!(!publisher.may_publish(&topic("payments.settled"), now + 3_600_000));
    }

    #[test]
    fn each_field_is_checked_and_named() {
        for (new, needle) in [
            (new(&[]), "`topics`"),
            (new(&["Bad Topic"]), "`topics`"),
            (new(&["capstan.>"]), "host's own"),
            (
                NewPublisher {
                    name: "\u{1b}[2J".into(),
                    ..new(&["a"])
                },
                "`name`",
            ),
            (
                NewPublisher {
                    expires_in: Some("forever".into()),
                    ..new(&["a"])
                },
                "`expires_in`",
            ),
        ] {
            let problem = new.check(SystemTime::now()).unwrap_err();
            assert!(problem.contains(needle), "{problem}");
        }
    }

    #[test]
    fn tokens_are_random_prefixed_and_stored_hashed() {
        let (a, hash_a) = new_token();
        let (b, _) = new_token();
        assert!(a.starts_with(TOKEN_PREFIX) && a != b);
        assert_ne!(hash_a, a);
        assert_eq!(hash_a, crate::capability::mcp::clients::token_hash(&a));
    }
}
