//! Session ids and the plugin ids they scope. A session's plugin is stored, namespaced and
//! metered under `<local>~<session>`: `~` is outside the plugin-id grammar, so such an id
//! can never be a global plugin's, a policy entry's, or another session's.

use serde::{Deserialize, Serialize};

/// Separates a session plugin's own id from its session's id in the scoped id.
pub const SEPARATOR: char = '~';

/// Hex digits in a session id.
const ID_LEN: usize = 16;

/// A session's id: 16 lowercase hex digits, generated at creation.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SessionId(String);

impl SessionId {
    /// A fresh random id.
    pub fn generate() -> SessionId {
        SessionId(crate::secrets::random_hex(ID_LEN / 2))
    }

    /// `text` if it is a well-formed session id.
    pub fn parse(text: &str) -> Option<SessionId> {
        let well_formed = text.len() == ID_LEN
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        well_formed.then(|| SessionId(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id plugin `local` of this session is stored under.
    pub fn scope(&self, local: &str) -> String {
        format!("{local}{SEPARATOR}{}", self.0)
    }
}

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for SessionId {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        SessionId::parse(&text).ok_or_else(|| format!("`{text}` is not a session id"))
    }
}

impl From<SessionId> for String {
    fn from(id: SessionId) -> String {
        id.0
    }
}

/// Whose plugin a stored plugin id is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner<'a> {
    /// The operator's: visible to every caller the policy lets in.
    Global,
    /// A session's, known in it as `local`.
    Session { session: SessionId, local: &'a str },
}

/// Who owns the plugin stored under `id`.
pub fn owner(id: &str) -> Owner<'_> {
    match id.rsplit_once(SEPARATOR) {
        Some((local, session)) => match SessionId::parse(session) {
            Some(session) => Owner::Session { session, local },
            None => Owner::Global,
        },
        None => Owner::Global,
    }
}

/// The id a plugin is known by to its owner: its manifest id.
pub fn local(id: &str) -> &str {
    match owner(id) {
        Owner::Session { local, .. } => local,
        Owner::Global => id,
    }
}

/// Whether the plugin stored under `id` belongs to `session`.
pub fn belongs_to(id: &str, session: &SessionId) -> bool {
    matches!(owner(id), Owner::Session { session: ref s, .. } if s == session)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scoped_id_names_its_session_and_never_parses_as_global() {
        let session = SessionId::parse("0123456789abcdef").unwrap();
        let scoped = session.scope("hello");
        assert_eq!(scoped, "hello~0123456789abcdef");
        assert_eq!(
            owner(&scoped),
            Owner::Session {
                session: session.clone(),
                local: "hello"
            }
        );
        assert_eq!(local(&scoped), "hello");
        assert!(belongs_to(&scoped, &session));
        assert!(!belongs_to(
            &scoped,
            &SessionId::parse("fedcba9876543210").unwrap()
        ));
        assert!(crate::manifest::validate_id(&scoped).is_err());
        assert_eq!(owner("hello"), Owner::Global);
        assert_eq!(local("hello"), "hello");
    }

    #[test]
    fn malformed_session_ids_are_refused() {
        for bad in [
            "",
            "0123",
            "0123456789ABCDEF",
            "0123456789abcdeg",
            "../../etc/passwd",
        ] {
            assert!(SessionId::parse(bad).is_none(), "{bad}");
        }
        assert_eq!(SessionId::generate().as_str().len(), 16);
    }
}
