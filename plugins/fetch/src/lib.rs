//! Fetches `?url=` through the host's outbound HTTP and summarises the response.

use capstan_guest::prelude::*;

pub struct Fetch;

impl Plugin for Fetch {
    fn handle(request: Request) -> Response {
        let Some(url) = request.query_param("url") else {
            return Response::text(400, "pass ?url=https://…");
        };
        match http::get(url) {
            Ok(fetched) => Response::json(
                200,
                &json!({ "url": url, "status": fetched.status, "bytes": fetched.body.len() }),
            ),
            Err(error) => Response::from_error(&error),
        }
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
        let response = Fetch::handle(Request::new("GET", "/?url=https://example.com/x"));
        assert_eq!(
            response.body_text(),
            r#"{"bytes":5,"status":200,"url":"https://example.com/x"}"#
        );
        assert_eq!(testing::http_requests()[0].url, "https://example.com/x");
    }

    #[test]
    fn unanswered_host_is_denied() {
        testing::reset();
        let response = Fetch::handle(Request::new("GET", "/?url=https://evil.test/"));
        assert_eq!(response.status, 403);
    }
}
