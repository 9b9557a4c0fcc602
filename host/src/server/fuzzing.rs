//! Entry points for the `admin_requests` fuzz target (compiled only under `cfg(fuzzing)`):
//! the admin API's request extractors and the config check on arbitrary input.

use super::admin::{ApiQuery, AuditFilter, LogFilter, WasmUpload};
use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::Request;

/// An install upload: `data[0]` picks a bare body or a multipart form.
pub async fn upload(data: &[u8]) {
    let Some((&kind, body)) = data.split_first() else {
        return;
    };
    let content_type = match kind % 3 {
        0 => "application/wasm",
        1 => "multipart/form-data; boundary=X",
        _ => "multipart/form-data",
    };
    let request = Request::builder()
        .method("POST")
        .header("content-type", content_type)
        .body(Body::from(body.to_vec()))
        .expect("a request");
    let _ = WasmUpload::from_request(request, &()).await;
}

fn parts(query: &[u8]) -> Option<axum::http::request::Parts> {
    let uri = format!("/admin/v1/x?{}", String::from_utf8_lossy(query));
    let request = Request::builder().uri(uri).body(()).ok()?;
    Some(request.into_parts().0)
}

/// An audit query string.
pub async fn audit_query(query: &[u8]) {
    if let Some(mut parts) = parts(query) {
        let _ = ApiQuery::<AuditFilter>::from_request_parts(&mut parts, &()).await;
    }
}

/// A log query string.
pub async fn log_query(query: &[u8]) {
    if let Some(mut parts) = parts(query) {
        let _ = ApiQuery::<LogFilter>::from_request_parts(&mut parts, &()).await;
    }
}

/// A config body checked against a schema with every kind of rule the host applies.
pub async fn config_body(body: &[u8]) {
    let Ok(values) = serde_json::from_slice::<serde_json::Value>(body) else {
        return;
    };
    let request: crate::capability::config::Request = toml::from_str(
        "[schema]\ntype = \"object\"\nadditionalProperties = false\n\
         [schema.properties.greeting]\ntype = \"string\"\nmaxLength = 8\ndefault = \"hi\"\n\
         [schema.properties.retries]\ntype = \"integer\"\nminimum = 0\n\
         [schema.properties.token]\nx-capstan-secret = true\n",
    )
    .expect("the fuzz schema parses");
    let _ = crate::capability::config::validate(&request, 4096, &values);
}
