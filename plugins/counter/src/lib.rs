//! Counts visits per path with an atomic kv increment.

use capstan_guest::prelude::*;

pub struct Counter;

impl Plugin for Counter {
    fn handle(request: Request) -> Result<Response, Error> {
        let hits = kv::increment(&format!("hits:{}", request.path), 1)?;
        Ok(Response::json(
            200,
            &json!({ "path": request.path, "hits": hits }),
        ))
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
        Counter::handle(Request::new("GET", "/a")).unwrap();
        Counter::handle(Request::new("GET", "/a")).unwrap();
        let response = Counter::handle(Request::new("GET", "/b")).unwrap();
        assert_eq!(response.body_text(), r#"{"hits":1,"path":"/b"}"#);
        assert_eq!(testing::kv_snapshot()["hits:/a"], b"2");
    }

    #[test]
    fn a_withheld_kv_answers_403_with_the_hosts_sentence() {
        testing::reset();
        testing::withhold(testing::Capability::Kv);
        let error = Counter::handle(Request::new("GET", "/a")).unwrap_err();
        let response = Response::from(error);
        assert_eq!(response.status, 403);
        assert_eq!(
            response.body_text(),
            "denied: storage.kv is not granted to plugin `counter`"
        );
    }
}
