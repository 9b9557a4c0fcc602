//! Hostile SQL: `POST /query` and `POST /execute` run the body as a statement against the
//! plugin's own database and answer `{"rows": …}`, `{"changed": n}` or `{"error": kind,
//! "message": …}` (always 200, so a test reads what the host answered the plugin). `POST
//! /kv` stores a key so a purge has something to delete, `GET /kv` says if it is there. No manifest: the sidecar decides
//! the id, dialect and migrations.

use capstan_guest::prelude::*;

pub struct Probe;

fn error(error: Error) -> Value {
    let kind = match &error {
        Error::Denied(_) => "denied",
        Error::NotFound => "not-found",
        Error::QuotaExceeded(_) => "quota-exceeded",
        Error::InvalidInput(_) => "invalid-input",
        Error::Timeout => "timeout",
        Error::TooLarge(_) => "too-large",
        Error::Internal(_) => "internal",
    };
    json!({"error": kind, "message": error.to_string()})
}

fn value(value: &sql::Value) -> Value {
    match value {
        sql::Value::Null => Value::Null,
        sql::Value::Integer(n) => json!(n),
        sql::Value::Real(x) => json!(x),
        sql::Value::Text(text) => json!(text),
        sql::Value::Blob(bytes) => json!(format!("<{} bytes>", bytes.len())),
    }
}

impl Plugin for Probe {
    fn handle(request: Request) -> Result<Response, Error> {
        let statement = String::from_utf8_lossy(&request.body).into_owned();
        let answer = match request.path.as_str() {
            "/query" => match sql::query(&statement, &[]) {
                Ok(rows) => json!({
                    "columns": rows.columns,
                    "rows": rows.rows.iter().map(|r| r.iter().map(value).collect::<Vec<_>>()).collect::<Vec<_>>(),
                }),
                Err(e) => error(e),
            },
            "/execute" => match sql::execute(&statement, &[]) {
                Ok(changed) => json!({"changed": changed}),
                Err(e) => error(e),
            },
            "/kv" if request.method == "POST" => {
                kv::set("left-behind", b"data")?;
                json!({"stored": true})
            }
            "/kv" => json!({"stored": kv::get("left-behind")?.is_some()}),
            _ => return Ok(Response::not_found()),
        };
        Ok(Response::json(200, &answer))
    }
}

capstan_guest::export_plugin!(Probe, manifest = none, exports = [routes]);
