//! `capstan plugin sign` and `capstan plugin keygen`: an author's side of signed plugins.

use crate::trust::{self, Signed, SigningKey};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct SignArgs {
    /// The component to sign.
    file: PathBuf,
    /// The signing key: an unencrypted OpenSSH Ed25519 private key, or the PEM file
    /// `capstan plugin keygen` writes.
    #[arg(long, value_name = "KEY")]
    key: PathBuf,
    /// Write the signature to a separate `.sig` file and leave the component unchanged.
    #[arg(long)]
    detached: bool,
    /// Where to write (default: FILE.signed.wasm, or FILE.sig with --detached).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct KeygenArgs {
    /// Where to write the private key; the public key goes to FILE.pub.
    file: PathBuf,
    /// A comment for the public key line (e.g. who signs with it).
    #[arg(long, default_value = "capstan-plugin-signing")]
    comment: String,
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Sign FILE; prints where the result went and the key's fingerprint.
pub fn sign(args: SignArgs) -> anyhow::Result<ExitCode> {
    let wasm = read(&args.file)?;
    let key_text = String::from_utf8(read(&args.key)?)
        .map_err(|_| anyhow::anyhow!("{}: not a text key file", args.key.display()))?;
    let key =
        SigningKey::parse(&key_text).map_err(|e| anyhow::anyhow!("{}: {e}", args.key.display()))?;
    crate::inspect::inspect(&wasm)
        .map_err(|e| anyhow::anyhow!("{}: refused ({}): {e}", args.file.display(), e.code()))?;
    let (bytes, out) = match trust::sign(&wasm, &key, args.detached)? {
        Signed::Embedded(bytes) => {
            let default = args.file.with_extension("signed.wasm");
            (bytes, args.out.unwrap_or(default))
        }
        Signed::Detached(bytes) => (bytes, args.out.unwrap_or(with_suffix(&args.file, ".sig"))),
    };
    std::fs::write(&out, bytes)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", out.display()))?;
    println!("signed {} with {}", out.display(), key.fingerprint());
    Ok(ExitCode::SUCCESS)
}

/// Write a new key pair; refuses to overwrite a file.
pub fn keygen(args: KeygenArgs) -> anyhow::Result<ExitCode> {
    let key = SigningKey::generate();
    let public = with_suffix(&args.file, ".pub");
    for path in [&args.file, &public] {
        if path.exists() {
            anyhow::bail!("{} exists; choose another name", path.display());
        }
    }
    let mut private = private_file(&args.file)?;
    private
        .write_all(key.to_pem().as_bytes())
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", args.file.display()))?;
    std::fs::write(&public, format!("{}\n", key.public_line(&args.comment)))
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", public.display()))?;
    println!(
        "wrote {} (private) and {} (public)\nfingerprint {}\nadd to the policy: trusted_keys = [\"{}\"]",
        args.file.display(),
        public.display(),
        key.fingerprint(),
        key.public_line(&args.comment)
    );
    Ok(ExitCode::SUCCESS)
}

/// A new file only its owner can read.
fn private_file(path: &Path) -> anyhow::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", path.display()))
}
