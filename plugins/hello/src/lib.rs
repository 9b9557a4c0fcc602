//! The smallest useful plugin: an HTTP route that greets the caller.

use capstan_guest::prelude::*;

pub struct Hello;

impl Plugin for Hello {
    fn handle(request: Request) -> Result<Response, Error> {
        let name = request.query_param("name").unwrap_or("world");
        capstan_guest::info!("greeting {name}");
        Ok(Response::text(
            200,
            format!("Hello, {name}! ({} {})\n", request.method, request.path),
        ))
    }
}

capstan_guest::export_plugin!(Hello);

#[cfg(test)]
mod tests {
    use super::*;
    use capstan_guest::testing;

    #[test]
    fn greets_by_name_and_logs_it() {
        testing::reset();
        let response = Hello::handle(Request::new("GET", "/hi?name=Ada")).unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.body_text(), "Hello, Ada! (GET /hi)\n");
        assert_eq!(testing::logs().len(), 1);
        assert_eq!(testing::logs()[0].1, "greeting Ada");
    }
}
