//! Admin bearer token: given in CAPSTAN_ADMIN_TOKEN or generated on first start into the
//! data directory (0600) and printed once. Only its SHA-256 is kept in the database;
//! requests are compared in constant time.

use super::AppState;
use super::error::ApiError;
use crate::capability::events::publishers;
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

/// Reject admin requests without the right bearer token. `POST /events` also takes a
/// publish token (see [`crate::capability::events::publishers`]): the publisher it
/// belongs to rides along in the request's extensions, for the handler to scope.
pub async fn require_token(
    State(state): State<Arc<AppState>>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let presented = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    let unauthorized = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong admin bearer token",
        )
    };
    let Some(token) = presented else {
        return Err(unauthorized());
    };
    if bool::from(hash(&token).ct_eq(&state.token_hash)) {
        return Ok(next.run(request).await);
    }
    let publishing =
        request.method() == axum::http::Method::POST && request.uri().path() == "/events";
    if !publishing || !token.starts_with(publishers::TOKEN_PREFIX) {
        return Err(unauthorized());
    }
    let token_hash = crate::capability::mcp::clients::token_hash(&token);
    let app = state.clone();
    let found = super::blocking(move || {
        Ok(app
            .registry
            .runtime()
            .services()
            .state
            .publisher_by_token(&token_hash)?)
    })
    .await?;
    let now = crate::audit::to_millis(std::time::SystemTime::now());
    match found {
        Some(publisher) if publisher.expires_ms.is_none_or(|at| now < at) => {
            request.extensions_mut().insert(publisher);
            Ok(next.run(request).await)
        }
        _ => Err(unauthorized()),
    }
}
