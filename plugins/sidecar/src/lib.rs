//! Echoes method, path, query and body; ships its manifest as a sidecar `capstan.toml`.

use capstan_guest::prelude::*;

pub struct Sidecar;

impl Plugin for Sidecar {
    fn handle(request: Request) -> Result<Response, Error> {
        Ok(Response::json(
            200,
            &json!({
                "method": request.method,
                "path": request.path,
                "query": request.query,
                "body": String::from_utf8_lossy(&request.body),
            }),
        ))
    }
}

capstan_guest::export_plugin!(Sidecar, manifest = none, exports = [routes]);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoes_path_and_query() {
        let body = Sidecar::handle(Request::new("post", "/x?y=1"))
            .unwrap()
            .body_text();
        assert_eq!(
            body,
            r#"{"body":"","method":"POST","path":"/x","query":"y=1"}"#
        );
    }
}
