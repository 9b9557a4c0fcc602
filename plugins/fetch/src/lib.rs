//! Fetches `?url=` through the host's outbound HTTP and summarises the response.

use capstan_guest::prelude::*;

pub struct Fetch;

impl Plugin for Fetch {
    fn handle(request: Request) -> Result<Response, Error> {
        let Some(url) = request.query_param("url") else {
            return Ok(Response::text(400, "pass ?url=https://…"));
        };
        let fetched = http::get(url)?;
        Ok(Response::json(
            200,
            &json!({ "url": url, "status": fetched.status, "bytes": fetched.body.len() }),
        ))
    }
}

capstan_guest::export_plugin!(Fetch);

#[cfg(test)]
mod tests {
    use super::*;
    use capstan_guest::testing;

    #[test]
    fn reports_status_and_size() {
        testing::reset();
        testing::respond("https://example.com/", 200, "hello");
        let response = Fetch::handle(Request::new("GET", "/?url=https://example.com/x")).unwrap();
        assert_eq!(
            response.body_text(),
            r#"{"bytes":5,"status":200,"url":"https://example.com/x"}"#
        );
        assert_eq!(testing::http_requests()[0].url, "https://example.com/x");
    }

    #[test]
    fn an_undeclared_host_is_denied() {
        testing::reset();
        let error = Fetch::handle(Request::new("GET", "/?url=https://evil.test/")).unwrap_err();
        assert!(matches!(error, Error::Denied(_)), "{error}");
        assert_eq!(Response::from(error).status, 403);
        assert!(testing::http_requests().is_empty(), "nothing was sent");
    }
}
