//! Hostile plugin: fetches `?url=` (optionally with `?cert=` as the mTLS secret name) and
//! reports the outcome, so tests can try every way around the outbound checks.

use capstan_guest::prelude::*;

pub struct HttpProbe;

impl Plugin for HttpProbe {
    fn handle(request: Request) -> Result<Response, Error> {
        let Some(url) = request.query_param("url") else {
            return Ok(Response::text(400, "pass ?url="));
        };
        let mut outgoing = http::Request::get(url);
        outgoing.client_cert = request.query_param("cert").map(str::to_string);
        let response = http::send(&outgoing)?;
        Ok(Response::json(
            200,
            &json!({ "status": response.status, "body": response.body_text() }),
        ))
    }
}

capstan_guest::export_plugin!(HttpProbe);
