//! Operator-set secrets, encrypted at rest with AES-256-GCM. The master key lives outside
//! the database (`CAPSTAN_MASTER_KEY` or a 0600 key file in the data directory). Values
//! are only ever decrypted for a plugin call that was granted the name; listings return
//! names only.

mod keyring;

pub use keyring::{KEY_FILE, Keyring, MasterKey, NEXT_KEY_FILE, write_key_file};

use crate::storage::StoreError;
use aes_gcm::aead::OsRng;
use aes_gcm::aead::rand_core::RngCore;
use std::sync::Arc;

/// `bytes` bytes from the OS random source, hex-encoded (tokens, instance ids).
pub fn random_hex(bytes: usize) -> String {
    let mut raw = vec![0u8; bytes];
    OsRng.fill_bytes(&mut raw);
    hex::encode(raw)
}

/// One sealed secret as stored: which key sealed it, the nonce and the ciphertext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: String,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

/// Where sealed secrets are kept; implemented by every storage backend.
pub trait SecretStore: Send + Sync {
    fn put_secret(&self, plugin: &str, name: &str, sealed: &Sealed) -> Result<(), StoreError>;
    fn get_secret(&self, plugin: &str, name: &str) -> Result<Option<Sealed>, StoreError>;
    fn delete_secret(&self, plugin: &str, name: &str) -> Result<bool, StoreError>;
    /// `(plugin, name)` pairs, optionally of one plugin, sorted.
    fn list_secrets(&self, plugin: Option<&str>) -> Result<Vec<(String, String)>, StoreError>;
    /// Replace every sealed secret in one transaction (key rotation).
    fn reseal_all(
        &self,
        reseal: &dyn Fn(&str, &str, &Sealed) -> Result<Sealed, SecretError>,
    ) -> Result<usize, SecretError>;
}

/// Why a secret operation failed. Never carries a secret value.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SecretError {
    #[error("secret name `{0}` is invalid: use 1-128 characters from [A-Za-z0-9._-]")]
    BadName(String),
    #[error("secret value is {0} bytes; the limit is 64 KiB")]
    TooLarge(usize),
    #[error(
        "secret `{name}` of plugin `{plugin}` cannot be decrypted with the configured master key"
    )]
    Undecryptable { plugin: String, name: String },
    #[error("master key: {0}")]
    Key(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Largest secret value accepted.
pub const MAX_SECRET_BYTES: usize = 64 * 1024;

/// Sets, reads, lists and rotates secrets over a [`SecretStore`].
#[derive(Clone)]
pub struct Secrets {
    store: Arc<dyn SecretStore>,
    keyring: Arc<Keyring>,
}

impl Secrets {
    pub fn new(store: Arc<dyn SecretStore>, keyring: Keyring) -> Self {
        Secrets {
            store,
            keyring: Arc::new(keyring),
        }
    }

    /// The same store opened with another keyring (for rotation).
    pub fn rekeyed(&self, keyring: Keyring) -> Secrets {
        Secrets::new(self.store.clone(), keyring)
    }

    /// Store `value` as secret `name` of `plugin`, encrypted.
    pub fn set(&self, plugin: &str, name: &str, value: &str) -> Result<(), SecretError> {
        validate_name(name)?;
        if value.len() > MAX_SECRET_BYTES {
            return Err(SecretError::TooLarge(value.len()));
        }
        let sealed = self
            .keyring
            .current()
            .seal(&aad(plugin, name), value.as_bytes())?;
        Ok(self.store.put_secret(plugin, name, &sealed)?)
    }

    /// The decrypted value of secret `name` of `plugin`, if set.
    pub fn get(&self, plugin: &str, name: &str) -> Result<Option<String>, SecretError> {
        let Some(sealed) = self.store.get_secret(plugin, name)? else {
            return Ok(None);
        };
        let undecryptable = || SecretError::Undecryptable {
            plugin: plugin.to_string(),
            name: name.to_string(),
        };
        let plain = self
            .keyring
            .open(&aad(plugin, name), &sealed)
            .ok_or_else(undecryptable)?;
        String::from_utf8(plain)
            .map(Some)
            .map_err(|_| undecryptable())
    }

    /// Remove secret `name` of `plugin`; true if it existed.
    pub fn remove(&self, plugin: &str, name: &str) -> Result<bool, SecretError> {
        Ok(self.store.delete_secret(plugin, name)?)
    }

    /// Names only, never values.
    pub fn list(&self, plugin: Option<&str>) -> Result<Vec<(String, String)>, SecretError> {
        Ok(self.store.list_secrets(plugin)?)
    }

    /// Re-encrypt every secret under `new_key` (which must be in the keyring); returns how many.
    pub fn reseal_under(&self, new_key: &MasterKey) -> Result<usize, SecretError> {
        self.store.reseal_all(&|plugin, name, sealed| {
            let plain = self
                .keyring
                .open(&aad(plugin, name), sealed)
                .ok_or_else(|| SecretError::Undecryptable {
                    plugin: plugin.to_string(),
                    name: name.to_string(),
                })?;
            new_key.seal(&aad(plugin, name), &plain)
        })
    }
}

/// Binds a ciphertext to its slot so a sealed value cannot be moved to another name.
fn aad(plugin: &str, name: &str) -> Vec<u8> {
    format!("capstan-secret\0{plugin}\0{name}").into_bytes()
}

/// Secret names: 1–128 chars of `[A-Za-z0-9._-]`.
pub fn validate_name(name: &str) -> Result<(), SecretError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(SecretError::BadName(name.to_string()))
    }
}
