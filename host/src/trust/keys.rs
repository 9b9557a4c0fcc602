//! Ed25519 keys in the forms operators already handle: a public key is an OpenSSH line
//! (`ssh-ed25519 AAAA… comment`) in the policy, named by its OpenSSH SHA-256 fingerprint;
//! a signing key is an OpenSSH private key file or the PEM `capstan plugin keygen` writes.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The key type both OpenSSH and Capstan name Ed25519 keys by.
const SSH_ED25519: &str = "ssh-ed25519";

/// A public key an operator trusts to sign plugins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TrustedKey {
    /// The line as written, kept for showing the policy back.
    line: String,
    key: wasmsign2::PublicKey,
    fingerprint: Fingerprint,
}

/// A key's OpenSSH SHA-256 fingerprint (`SHA256:…`, what `ssh-keygen -lf` prints).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fingerprint(pub String);

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl TrustedKey {
    /// Parse one OpenSSH `ssh-ed25519` public key line.
    pub fn parse(line: &str) -> Result<TrustedKey, String> {
        let line = line.trim();
        let mut fields = line.split_whitespace();
        if fields.next() != Some(SSH_ED25519) {
            return Err(format!(
                "a trusted key must be an OpenSSH `{SSH_ED25519} AAAA…` line (only Ed25519 keys sign plugins)"
            ));
        }
        let blob = fields
            .next()
            .and_then(|b64| STANDARD.decode(b64).ok())
            .ok_or("the key's base64 does not decode")?;
        let raw = raw_key(&blob).ok_or("the key blob is not an Ed25519 public key")?;
        let mut bytes = vec![0x01];
        bytes.extend_from_slice(raw);
        let key = wasmsign2::PublicKey::from_bytes(&bytes)
            .map_err(|e| format!("not an Ed25519 public key: {e}"))?
            .attach_default_key_id();
        Ok(TrustedKey {
            line: line.to_string(),
            fingerprint: fingerprint_of_blob(&blob),
            key,
        })
    }

    /// Its fingerprint.
    pub fn fingerprint(&self) -> &Fingerprint {
        &self.fingerprint
    }

    /// The key, with the key id signatures made by `capstan plugin sign` carry.
    pub(super) fn key(&self) -> &wasmsign2::PublicKey {
        &self.key
    }
}

impl TryFrom<String> for TrustedKey {
    type Error = String;
    fn try_from(line: String) -> Result<Self, String> {
        TrustedKey::parse(&line)
    }
}

impl From<TrustedKey> for String {
    fn from(key: TrustedKey) -> String {
        key.line
    }
}

/// The OpenSSH wire form of an Ed25519 public key: `string "ssh-ed25519", string key`.
fn blob_of(raw: &[u8]) -> Vec<u8> {
    let mut blob = Vec::with_capacity(4 + SSH_ED25519.len() + 4 + raw.len());
    for part in [SSH_ED25519.as_bytes(), raw] {
        blob.extend_from_slice(&(part.len() as u32).to_be_bytes());
        blob.extend_from_slice(part);
    }
    blob
}

/// The 32 key bytes inside an OpenSSH Ed25519 blob, if that is what it is.
fn raw_key(blob: &[u8]) -> Option<&[u8]> {
    let expected_head = &blob_of(&[0; 32])[..4 + SSH_ED25519.len() + 4];
    (blob.len() == expected_head.len() + 32 && blob.starts_with(expected_head))
        .then(|| &blob[expected_head.len()..])
}

fn fingerprint_of_blob(blob: &[u8]) -> Fingerprint {
    Fingerprint(format!(
        "SHA256:{}",
        STANDARD_NO_PAD.encode(Sha256::digest(blob))
    ))
}

/// The fingerprint of a raw 32-byte Ed25519 public key.
pub fn fingerprint(raw: &[u8]) -> Fingerprint {
    fingerprint_of_blob(&blob_of(raw))
}

/// The OpenSSH public key line for a raw 32-byte Ed25519 key (what goes in `trusted_keys`).
pub fn openssh_line(raw: &[u8], comment: &str) -> String {
    format!("{SSH_ED25519} {} {comment}", STANDARD.encode(blob_of(raw)))
        .trim_end()
        .to_string()
}

/// A key that signs plugins.
pub struct SigningKey {
    pub(super) secret: wasmsign2::SecretKey,
    raw_public: Vec<u8>,
}

impl SigningKey {
    /// A new random key.
    pub fn generate() -> SigningKey {
        let pair = wasmsign2::KeyPair::generate();
        SigningKey {
            raw_public: pair.pk.pk.as_ref().to_vec(),
            secret: pair.sk,
        }
    }

    /// Read a key from an OpenSSH private key file (unencrypted) or the PEM `to_pem` writes.
    pub fn parse(text: &str) -> Result<SigningKey, String> {
        let secret = wasmsign2::SecretKey::from_openssh(text)
            .or_else(|_| wasmsign2::SecretKey::from_pem(text))
            .map_err(|_| {
                "not an unencrypted OpenSSH Ed25519 private key or a PEM Ed25519 private key"
                    .to_string()
            })?;
        Ok(SigningKey {
            raw_public: secret.sk.public_key().as_ref().to_vec(),
            secret,
        })
    }

    /// The private key as PEM, for storing.
    pub fn to_pem(&self) -> String {
        self.secret.to_pem()
    }

    /// The public half as an OpenSSH line for a policy's `trusted_keys`.
    pub fn public_line(&self, comment: &str) -> String {
        openssh_line(&self.raw_public, comment)
    }

    /// The public half's fingerprint.
    pub fn fingerprint(&self) -> Fingerprint {
        fingerprint(&self.raw_public)
    }

    /// The key id `capstan plugin sign` stores with each signature, so a verifier can tell
    /// a signature by a key it does not trust from one that does not match the file.
    pub(super) fn key_id(&self) -> Vec<u8> {
        let mut bytes = vec![0x01];
        bytes.extend_from_slice(&self.raw_public);
        wasmsign2::PublicKey::from_bytes(&bytes)
            .expect("a generated or parsed key's public half")
            .attach_default_key_id()
            .key_id()
            .cloned()
            .unwrap_or_default()
    }
}
