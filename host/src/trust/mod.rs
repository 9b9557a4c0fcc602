//! Signed plugins: who vouches for a component. Signatures use the WebAssembly signatures
//! format (`wasmsign2`: Ed25519 over the component's sections, embedded as the first
//! custom section or detached in a `.sig` file); the operator's policy lists the keys it
//! trusts and whether a signature is required. Verified at install, before anything is
//! compiled; the signer's fingerprint is stored with the version and audited.

mod keys;

pub use keys::{Fingerprint, SigningKey, TrustedKey, fingerprint, openssh_line};

use serde::Serialize;
use std::collections::HashSet;

/// Largest detached signature accepted: a signature section holds at most a few hundred
/// bytes per signer, so anything bigger is not one.
pub const MAX_SIGNATURE_BYTES: usize = 64 * 1024;

/// What the policy asks of one plugin's signatures.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SignaturePolicy {
    /// Refuse components that no trusted key signed.
    pub require: bool,
    /// The keys whose signatures count.
    pub trusted: Vec<TrustedKey>,
}

/// Why a component's signature does not do.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SignatureError {
    #[error(
        "the policy requires a signature and the component has none (sign it with `capstan plugin sign`)"
    )]
    Missing,
    #[error("no key the policy trusts signed it{}", signed_by(.key_ids))]
    Untrusted { key_ids: usize },
    #[error("its signature does not verify: {0}")]
    Invalid(String),
}

fn signed_by(key_ids: &usize) -> String {
    match key_ids {
        0 => String::new(),
        n => format!(" ({n} signature(s) by other keys)"),
    }
}

impl SignatureError {
    /// Stable code for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            SignatureError::Missing => "signature-missing",
            SignatureError::Untrusted { .. } => "signature-untrusted",
            SignatureError::Invalid(_) => "signature-invalid",
        }
    }
}

/// Check `wasm` (with its `detached` signature, if it came with one) under `policy`:
/// `Ok(Some(fingerprint))` when a trusted key signed exactly these bytes, `Ok(None)` when
/// it is unsigned or signed by others and no signature is required. Where the policy
/// trusts any key, a signature that names one but does not match the bytes (tampered, or
/// made for another file) or that does not parse is refused even if none is required.
pub fn check(
    wasm: &[u8],
    detached: Option<&[u8]>,
    policy: &SignaturePolicy,
) -> Result<Option<Fingerprint>, SignatureError> {
    if policy.trusted.is_empty() && !policy.require {
        // Nobody's signature counts here: nothing to verify or record.
        return Ok(None);
    }
    match verify(wasm, detached, &policy.trusted) {
        Ok(signer) => Ok(Some(signer)),
        Err(SignatureError::Invalid(why)) => Err(SignatureError::Invalid(why)),
        Err(refusal) if policy.require => Err(refusal),
        Err(_) => Ok(None),
    }
}

/// The fingerprint of the trusted key that signed `wasm` (the smallest, if several did).
fn verify(
    wasm: &[u8],
    detached: Option<&[u8]>,
    trusted: &[TrustedKey],
) -> Result<Fingerprint, SignatureError> {
    if detached.is_some_and(|sig| sig.len() > MAX_SIGNATURE_BYTES) {
        return Err(SignatureError::Invalid(format!(
            "a detached signature is at most {MAX_SIGNATURE_BYTES} bytes"
        )));
    }
    let info = match detached {
        Some(sig) => wasmsign2::signature_info_from_detached(sig),
        None => wasmsign2::signature_info_from_reader(&mut &wasm[..], None),
    };
    let info = match info {
        Ok(info) => info,
        Err(wasmsign2::WSError::NoSignatures) => return Err(SignatureError::Missing),
        Err(error) => {
            return Err(SignatureError::Invalid(format!(
                "its signature section does not parse ({error})"
            )));
        }
    };
    if detached.is_some() && wasmsign2::signature_info_from_reader(&mut &wasm[..], None).is_ok() {
        return Err(SignatureError::Invalid(
            "it carries an embedded signature and came with a detached one; supply only one".into(),
        ));
    }
    let set = wasmsign2::PublicKeySet::new(trusted.iter().map(|k| k.key().clone()).collect());
    match set.verify(&mut &wasm[..], detached) {
        Ok(signers) => Ok(trusted
            .iter()
            .filter(|k| signers.contains(k.key()))
            .map(|k| k.fingerprint().clone())
            .min()
            .expect("verify returns at least one of the set's keys")),
        Err(wasmsign2::WSError::VerificationFailed) => {
            let ids: HashSet<&Vec<u8>> = info.key_ids().iter().collect();
            match trusted
                .iter()
                .find(|k| k.key().key_id().is_some_and(|id| ids.contains(id)))
            {
                Some(key) => Err(SignatureError::Invalid(format!(
                    "it names trusted key {} but was changed after signing, or the signature is for another file",
                    key.fingerprint()
                ))),
                None => Err(SignatureError::Untrusted {
                    key_ids: info.key_ids().len(),
                }),
            }
        }
        Err(error) => Err(SignatureError::Invalid(error.to_string())),
    }
}

/// `wasm` signed with `key`: the signed component (signature embedded as its first
/// section), or, when `detached`, the component unchanged and the `.sig` bytes.
pub fn sign(wasm: &[u8], key: &SigningKey, detached: bool) -> anyhow::Result<Signed> {
    let module = wasmsign2::Module::deserialize(&mut &wasm[..])
        .map_err(|e| anyhow::anyhow!("not a WebAssembly component: {e}"))?;
    let key_id = key.key_id();
    let (module, signature) = key
        .secret
        .sign_multi(module, Some(&key_id), detached, false)
        .map_err(|e| anyhow::anyhow!("signing failed: {e}"))?;
    if detached {
        return Ok(Signed::Detached(signature));
    }
    let mut out = Vec::with_capacity(wasm.len() + 256);
    module
        .serialize(&mut out)
        .map_err(|e| anyhow::anyhow!("writing the signed component failed: {e}"))?;
    Ok(Signed::Embedded(out))
}

/// The result of [`sign`].
pub enum Signed {
    /// The component with its signature inside.
    Embedded(Vec<u8>),
    /// A signature to ship beside the unchanged component.
    Detached(Vec<u8>),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small component with a core module and a custom section, like a real plugin.
    fn component(tag: &str) -> Vec<u8> {
        wat::parse_str(format!(
            r#"(component
                (core module (func (export "f") (result i32) (i32.const 7)))
                (@custom "note" "{tag}")
            )"#
        ))
        .unwrap()
    }

    fn trusting(keys: &[&SigningKey], require: bool) -> SignaturePolicy {
        SignaturePolicy {
            require,
            trusted: keys
                .iter()
                .map(|k| TrustedKey::parse(&k.public_line("test")).unwrap())
                .collect(),
        }
    }

    fn embedded(wasm: &[u8], key: &SigningKey) -> Vec<u8> {
        match sign(wasm, key, false).unwrap() {
            Signed::Embedded(bytes) => bytes,
            Signed::Detached(_) => unreachable!(),
        }
    }

    fn detached(wasm: &[u8], key: &SigningKey) -> Vec<u8> {
        match sign(wasm, key, true).unwrap() {
            Signed::Detached(sig) => sig,
            Signed::Embedded(_) => unreachable!(),
        }
    }

    #[test]
    fn a_component_signed_by_a_trusted_key_names_its_signer_embedded_or_detached() {
        let key = SigningKey::generate();
        let other = SigningKey::generate();
        let policy = trusting(&[&other, &key], true);
        let wasm = component("a");
        let signed = embedded(&wasm, &key);
        crate::inspect::inspect(&signed).expect("still a valid component");
        assert_eq!(check(&signed, None, &policy), Ok(Some(key.fingerprint())));
        let sig = detached(&wasm, &key);
        assert_eq!(
            check(&wasm, Some(&sig), &policy),
            Ok(Some(key.fingerprint()))
        );
    }

    #[test]
    fn unsigned_is_refused_only_when_required() {
        let key = SigningKey::generate();
        let wasm = component("a");
        assert_eq!(
            check(&wasm, None, &trusting(&[&key], true)),
            Err(SignatureError::Missing)
        );
        assert_eq!(check(&wasm, None, &trusting(&[&key], false)), Ok(None));
    }

    #[test]
    fn a_signature_by_an_untrusted_key_is_refused_when_required() {
        let trusted = SigningKey::generate();
        let stranger = SigningKey::generate();
        let signed = embedded(&component("a"), &stranger);
        let refusal = check(&signed, None, &trusting(&[&trusted], true)).unwrap_err();
        assert_eq!(refusal.code(), "signature-untrusted");
        assert_eq!(
            check(&signed, None, &trusting(&[&trusted], false)),
            Ok(None),
            "counts as unsigned when not required"
        );
    }

    #[test]
    fn a_file_changed_after_signing_is_invalid_even_when_not_required() {
        let key = SigningKey::generate();
        let mut signed = embedded(&component("aaaa"), &key);
        let at = signed
            .windows(4)
            .position(|w| w == b"aaaa")
            .expect("the custom section's text");
        signed[at] = b'b';
        for require in [true, false] {
            let refusal = check(&signed, None, &trusting(&[&key], require)).unwrap_err();
            assert_eq!(refusal.code(), "signature-invalid", "{refusal}");
            assert!(refusal.to_string().contains(&key.fingerprint().0));
        }
    }

    #[test]
    fn a_detached_signature_for_another_file_is_invalid() {
        let key = SigningKey::generate();
        let sig = detached(&component("one"), &key);
        let refusal = check(&component("two"), Some(&sig), &trusting(&[&key], true)).unwrap_err();
        assert_eq!(refusal.code(), "signature-invalid");
    }

    #[test]
    fn re_signing_a_tampered_file_with_another_key_does_not_launder_it() {
        let trusted = SigningKey::generate();
        let attacker = SigningKey::generate();
        let mut signed = embedded(&component("good"), &trusted);
        let at = signed.windows(4).position(|w| w == b"good").unwrap();
        signed[at..at + 4].copy_from_slice(b"evil");
        let resigned = embedded(&signed, &attacker);
        let refusal = check(&resigned, None, &trusting(&[&trusted], true)).unwrap_err();
        assert_eq!(refusal.code(), "signature-invalid");
    }

    #[test]
    fn garbage_and_oversized_detached_signatures_are_invalid_not_a_crash() {
        let key = SigningKey::generate();
        let wasm = component("a");
        let policy = trusting(&[&key], true);
        for sig in [
            vec![],
            vec![0xff; 16],
            vec![0x01, 0x01, 0x01, 0xff, 0xff, 0xff, 0xff, 0x0f],
            vec![0; MAX_SIGNATURE_BYTES + 1],
        ] {
            let refusal = check(&wasm, Some(&sig), &policy).unwrap_err();
            assert_eq!(refusal.code(), "signature-invalid", "{sig:?}: {refusal}");
        }
        let signed = embedded(&wasm, &key);
        let sig = detached(&wasm, &key);
        assert_eq!(
            check(&signed, Some(&sig), &policy).unwrap_err().code(),
            "signature-invalid",
            "embedded and detached at once"
        );
    }

    #[test]
    fn keys_round_trip_and_bad_key_lines_are_named() {
        let key = SigningKey::generate();
        let again = SigningKey::parse(&key.to_pem()).unwrap();
        assert_eq!(again.fingerprint(), key.fingerprint());
        let line = key.public_line("ops@example");
        assert!(
            line.starts_with("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5") && line.ends_with(" ops@example")
        );
        let trusted = TrustedKey::parse(&line).unwrap();
        assert_eq!(trusted.fingerprint(), &key.fingerprint());
        assert!(key.fingerprint().0.starts_with("SHA256:"));
        for bad in [
            "ssh-rsa AAAAB3NzaC1yc2E",
            "ssh-ed25519 !!!",
            "ssh-ed25519 AAAAB3NzaC1yc2EAAAADAQABAAABAQ",
            "",
        ] {
            assert!(TrustedKey::parse(bad).is_err(), "{bad:?}");
        }
        assert!(SigningKey::parse("not a key").is_err());
    }
}
