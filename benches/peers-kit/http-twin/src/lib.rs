//! The Capstan bench plugin's `/noop` route as a `wasi:http/proxy` component: every request
//! gets 200 `done` as `text/plain; charset=utf-8`, the bytes the plugin answers.

use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

struct Noop;

impl Guest for Noop {
    fn handle(_request: IncomingRequest, response_out: ResponseOutparam) {
        let headers = Fields::from_list(&[(
            "content-type".to_string(),
            b"text/plain; charset=utf-8".to_vec(),
        )])
        .expect("a valid header");
        let response = OutgoingResponse::new(headers);
        let body = response.body().expect("the response body");
        ResponseOutparam::set(response_out, Ok(response));
        let stream = body.write().expect("the body stream");
        stream
            .blocking_write_and_flush(b"done")
            .expect("writing the body");
        drop(stream);
        OutgoingBody::finish(body, None).expect("finishing the body");
    }
}

wasip2::http::proxy::export!(Noop);
