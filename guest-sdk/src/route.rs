//! HTTP route types with helpers for reading requests and building responses.

use crate::Error;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use crate::bindings::routes::exports::capstan::plugin::handler::{Request, Response};

impl Request {
    /// A request for tests: `method` and `path` (the path may carry `?query`).
    pub fn new(method: &str, path_and_query: &str) -> Self {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        Request {
            method: method.to_ascii_uppercase(),
            path: path.to_string(),
            query: query.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first query parameter named `name`, not percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .split('&')
            .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }

    /// The body as UTF-8 text.
    pub fn body_text(&self) -> Result<&str, Error> {
        std::str::from_utf8(&self.body)
            .map_err(|e| Error::InvalidInput(format!("request body is not UTF-8: {e}")))
    }

    /// The body parsed as JSON into `T`.
    pub fn body_json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body)
            .map_err(|e| Error::InvalidInput(format!("request body is not the expected JSON: {e}")))
    }
}

impl Response {
    /// A `text/plain` response.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Response {
            status,
            headers: vec![("content-type".into(), "text/plain; charset=utf-8".into())],
            body: body.into().into_bytes(),
        }
    }

    /// An `application/json` response; a value that cannot serialise gives a 500.
    pub fn json<T: Serialize>(status: u16, value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => Response {
                status,
                headers: vec![("content-type".into(), "application/json".into())],
                body,
            },
            Err(e) => Response::text(500, format!("response did not serialise: {e}")),
        }
    }

    /// 404 with a short text body.
    pub fn not_found() -> Self {
        Response::text(404, "not found")
    }

    /// The body as lossy UTF-8, handy in tests.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl From<Error> for Response {
    /// A text response saying what went wrong, with the status that fits it
    /// (see [`Error::status`]).
    fn from(error: Error) -> Self {
        Response::text(error.status(), error.to_string())
    }
}

/// What the host receives for a route's result: the response, or the error's response.
#[doc(hidden)]
pub fn respond(result: Result<Response, Error>) -> Response {
    result.unwrap_or_else(Response::from)
}
