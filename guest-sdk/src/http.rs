//! Outbound HTTP through the host (capability `http.outbound`).

use crate::Error;

pub use crate::bindings::capstan::plugin::http::{Method, Request, Response};

impl Request {
    /// A GET of `url` with no headers.
    pub fn get(url: &str) -> Self {
        Request {
            method: Method::Get,
            url: url.to_string(),
            headers: Vec::new(),
            body: None,
            timeout_ms: None,
            client_cert: None,
        }
    }
}

impl Response {
    /// The body as lossy UTF-8.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Send `request` through the host and wait for the whole response.
pub fn send(request: &Request) -> Result<Response, Error> {
    #[cfg(target_arch = "wasm32")]
    return crate::bindings::capstan::plugin::http::send(request).map_err(Error::from);
    #[cfg(not(target_arch = "wasm32"))]
    return crate::testing::http_send(request);
}

/// GET `url`.
pub fn get(url: &str) -> Result<Response, Error> {
    send(&Request::get(url))
}
