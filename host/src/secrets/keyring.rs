//! Master keys: loading from the environment or the data directory, sealing and opening.

use super::{Sealed, SecretError};
use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::Path;

/// Key file in the data directory (64 hex digits, mode 0600).
pub const KEY_FILE: &str = "master.key";
/// A key being rotated in; present only while a rotation is unfinished.
pub const NEXT_KEY_FILE: &str = "master.key.next";

/// One AES-256-GCM key and its id (a short hash, stored beside each ciphertext).
#[derive(Clone)]
pub struct MasterKey {
    id: String,
    cipher: Aes256Gcm,
}

impl MasterKey {
    /// A key from 64 hex digits.
    pub fn from_hex(text: &str) -> Result<MasterKey, SecretError> {
        let bytes = hex::decode(text.trim())
            .ok()
            .filter(|b| b.len() == 32)
            .ok_or_else(|| SecretError::Key("must be 64 hex digits (32 bytes)".into()))?;
        Ok(Self::from_bytes(&bytes))
    }

    fn from_bytes(bytes: &[u8]) -> MasterKey {
        MasterKey {
            id: hex::encode(&Sha256::digest(bytes)[..8]),
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(bytes)),
        }
    }

    /// A fresh random key, returned with its hex form for writing to a file.
    pub fn generate() -> (MasterKey, String) {
        let key = Aes256Gcm::generate_key(OsRng);
        (Self::from_bytes(&key), hex::encode(key))
    }

    /// This key's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn seal(&self, aad: &[u8], plain: &[u8]) -> Result<Sealed, SecretError> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ciphertext = self
            .cipher
            .encrypt(&nonce, Payload { msg: plain, aad })
            .map_err(|_| SecretError::Key("encryption failed".into()))?;
        Ok(Sealed {
            key_id: self.id.clone(),
            nonce: nonce.to_vec(),
            ciphertext,
        })
    }

    fn open(&self, aad: &[u8], sealed: &Sealed) -> Option<Vec<u8>> {
        if sealed.nonce.len() != 12 {
            return None;
        }
        self.cipher
            .decrypt(
                Nonce::from_slice(&sealed.nonce),
                Payload {
                    msg: &sealed.ciphertext,
                    aad,
                },
            )
            .ok()
    }
}

/// The current key plus any others still needed to open older ciphertexts.
pub struct Keyring {
    keys: Vec<MasterKey>,
}

impl Keyring {
    /// A keyring holding only `key`.
    pub fn single(key: MasterKey) -> Keyring {
        Keyring { keys: vec![key] }
    }

    /// Load the key from `CAPSTAN_MASTER_KEY`, or from `data_dir/master.key` (generated
    /// with mode 0600 on first use). A leftover `master.key.next` from an interrupted
    /// rotation is kept as a second key so nothing becomes unreadable.
    pub fn load(data_dir: &Path) -> Result<Keyring, SecretError> {
        if let Ok(hex) = std::env::var("CAPSTAN_MASTER_KEY") {
            return Ok(Keyring::single(MasterKey::from_hex(&hex)?));
        }
        let path = data_dir.join(KEY_FILE);
        let current = match std::fs::read_to_string(&path) {
            Ok(text) => MasterKey::from_hex(&text)
                .map_err(|e| SecretError::Key(format!("{}: {e}", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let (key, hex) = MasterKey::generate();
                write_key_file(&path, &hex)?;
                key
            }
            Err(e) => return Err(SecretError::Key(format!("{}: {e}", path.display()))),
        };
        let mut keys = vec![current];
        if let Ok(text) = std::fs::read_to_string(data_dir.join(NEXT_KEY_FILE)) {
            keys.push(MasterKey::from_hex(&text)?);
        }
        Ok(Keyring { keys })
    }

    /// The key new secrets are sealed with.
    pub fn current(&self) -> &MasterKey {
        &self.keys[0]
    }

    /// Add `key` so ciphertexts sealed with it can be opened.
    pub fn with(mut self, key: MasterKey) -> Keyring {
        self.keys.push(key);
        self
    }

    pub(crate) fn open(&self, aad: &[u8], sealed: &Sealed) -> Option<Vec<u8>> {
        self.keys
            .iter()
            .filter(|key| key.id == sealed.key_id)
            .find_map(|key| key.open(aad, sealed))
    }
}

/// Write `hex` to `path` readable by the owner only, refusing to overwrite.
pub fn write_key_file(path: &Path, hex: &str) -> Result<(), SecretError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(|e| SecretError::Key(format!("cannot create {}: {e}", path.display())))?;
    file.write_all(hex.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| SecretError::Key(format!("cannot write {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_aad_binding() {
        let (key, _) = MasterKey::generate();
        let sealed = key.seal(b"slot-a", b"hunter2").unwrap();
        assert!(!sealed.ciphertext.windows(7).any(|w| w == b"hunter2"));
        let ring = Keyring::single(key);
        assert_eq!(
            ring.open(b"slot-a", &sealed).as_deref(),
            Some(&b"hunter2"[..])
        );
        assert_eq!(ring.open(b"slot-b", &sealed), None, "moved to another slot");
    }

    #[test]
    fn other_key_cannot_open() {
        let (a, _) = MasterKey::generate();
        let (b, _) = MasterKey::generate();
        let sealed = a.seal(b"x", b"v").unwrap();
        assert_eq!(Keyring::single(b).open(b"x", &sealed), None);
    }

    #[test]
    fn key_file_is_generated_with_mode_0600_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = Keyring::load(dir.path()).unwrap();
        let second = Keyring::load(dir.path()).unwrap();
        assert_eq!(first.current().id(), second.current().id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
