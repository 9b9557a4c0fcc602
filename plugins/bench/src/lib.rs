//! Benchmark target: `/noop`, `/kv-get?n=N` and `/kv-set?n=N` (N host calls per request),
//! `/sql-get?n=N` and `/sql-set?n=N` (a point query and an upsert), `/count-vowels` (Extism's
//! benchmark workload over the request body, for benches/peers), and the tool `noop`, the MCP
//! twin of `/noop`.

use capstan_guest::prelude::*;

pub struct Bench;

fn count(request: &Request) -> u32 {
    request
        .query_param("n")
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

/// The vowels in `text`, counted byte by byte as every peer in benches/peers counts them.
fn count_vowels(text: &[u8]) -> usize {
    text.iter().filter(|b| b"aeiouAEIOU".contains(b)).count()
}

impl Plugin for Bench {
    fn handle(request: Request) -> Result<Response, Error> {
        if request.path == "/count-vowels" {
            return Ok(Response::json(
                200,
                &json!({ "count": count_vowels(&request.body) }),
            ));
        }
        let n = count(&request);
        match request.path.as_str() {
            "/kv-get" => (0..n).try_for_each(|_| kv::get("bench-key").map(drop))?,
            "/kv-set" => (0..n).try_for_each(|i| kv::set("bench-key", &i.to_le_bytes()))?,
            "/sql-get" => (0..n).try_for_each(|_| {
                sql::query("SELECT v FROM pairs WHERE k = ?", &["bench-key".into()]).map(drop)
            })?,
            "/sql-set" => (0..n).try_for_each(|i| {
                sql::execute(
                    "INSERT INTO pairs (k, v) VALUES (?, ?) \
                     ON CONFLICT (k) DO UPDATE SET v = excluded.v",
                    &["bench-key".into(), i.to_string().into()],
                )
                .map(drop)
            })?,
            _ => {}
        }
        Ok(Response::text(200, "done"))
    }

    fn tools() -> Vec<Tool> {
        vec![Tool::new(
            "noop",
            "Do nothing and answer `done`.",
            json!({"type": "object"}),
        )]
    }

    fn call_tool(name: &str, _arguments: Value, _context: &CallContext) -> Result<Value, Error> {
        match name {
            "noop" => Ok(json!("done")),
            _ => Err(Error::NotFound),
        }
    }
}

capstan_guest::export_plugin!(Bench);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_vowels_answers_the_vowels_of_the_body_in_either_case() {
        let mut request = Request::new("POST", "/count-vowels");
        request.body = b"Hello, World! AEIOU xyz".to_vec();
        let response = Bench::handle(request).unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.body, br#"{"count":8}"#);
    }
}
