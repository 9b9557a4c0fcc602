//! Admin bearer token: given in CAPSTAN_ADMIN_TOKEN or generated on first start into the
//! data directory (0600) and printed once. Only its SHA-256 is kept in the database;
//! requests are compared in constant time.

use super::AppState;
use super::error::ApiError;
use crate::storage::PluginStore;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// File in the data directory holding a generated token, for the CLI.
pub const TOKEN_FILE: &str = "admin.token";
const HASH_SETTING: &str = "admin-token-sha256";

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.trim().as_bytes()).into()
}

/// The hash to check requests against, creating (and printing) a token if there is none.
pub fn load_or_create(store: &dyn PluginStore, data_dir: &Path) -> anyhow::Result<[u8; 32]> {
    if let Ok(token) = std::env::var("CAPSTAN_ADMIN_TOKEN") {
        anyhow::ensure!(
            token.trim().len() >= 16,
            "CAPSTAN_ADMIN_TOKEN must be at least 16 characters"
        );
        let digest = hash(&token);
        store.set_setting(HASH_SETTING, &hex::encode(digest))?;
        return Ok(digest);
    }
    if let Some(stored) = store.setting(HASH_SETTING)? {
        let bytes = hex::decode(&stored).ok().filter(|b| b.len() == 32);
        if let Some(bytes) = bytes {
            return Ok(bytes.try_into().expect("32 bytes"));
        }
    }
    let token = crate::secrets::random_hex(32);
    let path = data_dir.join(TOKEN_FILE);
    let _ = std::fs::remove_file(&path);
    crate::secrets::write_key_file(&path, &token)?;
    store.set_setting(HASH_SETTING, &hex::encode(hash(&token)))?;
    eprintln!(
        "admin token (shown once, also saved to {}): {token}",
        path.display()
    );
    Ok(hash(&token))
}

/// Reject admin requests without the right bearer token.
pub async fn require_token(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let presented = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let valid = presented.is_some_and(|token| bool::from(hash(token).ct_eq(&state.token_hash)));
    if !valid {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong admin bearer token",
        ));
    }
    Ok(next.run(request).await)
}
