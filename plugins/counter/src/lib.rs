//! Counts visits per path with an atomic kv increment.

use capstan_guest::prelude::*;

pub struct Counter;

impl Plugin for Counter {
    fn handle(request: Request) -> Response {
        let key = format!("hits:{}", request.path);
        match kv::increment(&key, 1) {
            Ok(hits) => Response::json(200, &json!({ "path": request.path, "hits": hits })),
            Err(error) => Response::from_error(&error),
        }
    }
}

capstan_guest::export_plugin!(Counter);

#[cfg(test)]
mod tests {
    use super::*;
    use capstan_guest::testing;

    #[test]
    fn counts_each_path_separately() {
        testing::reset();
        Counter::handle(Request::new("GET", "/a"));
        Counter::handle(Request::new("GET", "/a"));
        let response = Counter::handle(Request::new("GET", "/b"));
        assert_eq!(response.body_text(), r#"{"hits":1,"path":"/b"}"#);
        assert_eq!(testing::kv_snapshot()["hits:/a"], b"2");
    }
}
