//! Hostile plugin: fetches `?url=` (optionally with `?cert=` as the mTLS secret name) and
//! reports the outcome, so tests can try every way around the outbound checks and the
//! call deadline.

use capstan_guest::prelude::*;

pub struct HttpProbe;

impl Plugin for HttpProbe {
    fn handle(request: Request) -> Result<Response, Error> {
        let Some(url) = request.query_param("url") else {
            return Ok(Response::text(400, "pass ?url="));
        };
        let mut outgoing = http::Request::get(url);
        outgoing.client_cert = request.query_param("cert").map(str::to_string);
        // `?times=N` sends it N times in a row and answers the last outcome, to try
        // outlasting a call's deadline through many slow host calls.
        let times: u32 = request
            .query_param("times")
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        for _ in 1..times {
            let _ = http::send(&outgoing);
        }
        let response = http::send(&outgoing)?;
        Ok(Response::json(
            200,
            &json!({ "status": response.status, "body": response.body_text() }),
        ))
    }
}

capstan_guest::export_plugin!(HttpProbe);
