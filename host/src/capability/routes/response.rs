//! What a plugin's HTTP response must be before the host sends it: a real final status,
//! header names that are tokens and values without line breaks, bounded headers and
//! body, and no framing the host cannot honour. A response that breaks a rule is
//! refused (502 `invalid-response`), never repaired, so the plugin's author sees the bug.

use crate::bindings::exports::capstan::plugin::handler::Response;

/// Largest response body a plugin may return.
pub const MAX_RESPONSE_BYTES: usize = 10 * 1024 * 1024;
/// Most response headers.
pub const MAX_RESPONSE_HEADERS: usize = 100;
/// Most bytes of response header names and values together.
pub const MAX_RESPONSE_HEADER_BYTES: usize = 64 * 1024;

/// Headers that frame the message or the connection: the host owns them. A plugin's
/// `content-length` is accepted only when it is the body's length.
const FRAMING: &[&str] = &[
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-connection",
    "proxy-authenticate",
    "host",
];

/// `Err` says, in one sentence, what makes `response` unsendable.
pub fn check(response: &Response) -> Result<(), String> {
    if !(200..=599).contains(&response.status) {
        return Err(format!(
            "status {} is outside 200-599 (informational and invalid codes are the host's)",
            response.status
        ));
    }
    if response.body.len() > MAX_RESPONSE_BYTES {
        return Err(format!(
            "the body is {} bytes; the cap is {MAX_RESPONSE_BYTES}",
            response.body.len()
        ));
    }
    if response.headers.len() > MAX_RESPONSE_HEADERS {
        return Err(format!(
            "{} headers; the cap is {MAX_RESPONSE_HEADERS}",
            response.headers.len()
        ));
    }
    let bytes: usize = response
        .headers
        .iter()
        .map(|(n, v)| n.len() + v.len())
        .sum();
    if bytes > MAX_RESPONSE_HEADER_BYTES {
        return Err(format!(
            "headers total {bytes} bytes; the cap is {MAX_RESPONSE_HEADER_BYTES}"
        ));
    }
    for (name, value) in &response.headers {
        let shown = crate::text::shown_within(name, 64);
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(format!("header name `{shown}` is not an HTTP token"));
        }
        if value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
            return Err(format!("header `{shown}` has a CR, LF or NUL in its value"));
        }
        let lower = name.to_ascii_lowercase();
        if lower == "content-length" {
            if value.trim().parse::<usize>().ok() != Some(response.body.len()) {
                return Err(format!(
                    "content-length `{}` contradicts the body's {} bytes",
                    crate::text::shown_within(value, 32),
                    response.body.len()
                ));
            }
        } else if FRAMING.contains(&lower.as_str()) || lower.starts_with("proxy-") {
            return Err(format!(
                "header `{lower}` frames the message or the connection, which the host owns"
            ));
        }
    }
    Ok(())
}

/// RFC 9110 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Response {
        Response {
            status,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: body.to_vec(),
        }
    }

    #[test]
    fn ordinary_responses_pass() {
        assert!(check(&response(200, &[("content-type", "text/plain")], b"hi")).is_ok());
        assert!(check(&response(404, &[("content-length", "2")], b"hi")).is_ok());
        assert!(check(&response(599, &[], b"")).is_ok());
    }

    #[test]
    fn each_malformed_part_is_named() {
        let refused = |r: Response| check(&r).unwrap_err();
        assert!(refused(response(101, &[], b"")).contains("status 101"));
        assert!(refused(response(600, &[], b"")).contains("status 600"));
        assert!(refused(response(200, &[("bad name", "x")], b"")).contains("not an HTTP token"));
        assert!(
            refused(response(200, &[("x-a", "1\r\nSet-Cookie: s=1")], b""))
                .contains("CR, LF or NUL")
        );
        assert!(refused(response(200, &[("x-a", "a\0b")], b"")).contains("CR, LF or NUL"));
        assert!(
            refused(response(200, &[("content-length", "9999")], b"hi")).contains("contradicts")
        );
        assert!(
            refused(response(200, &[("Transfer-Encoding", "chunked")], b""))
                .contains("transfer-encoding")
        );
        assert!(refused(response(200, &[("connection", "upgrade")], b"")).contains("connection"));
        let many: Vec<(String, String)> =
            (0..101).map(|i| (format!("x-{i}"), "v".into())).collect();
        assert!(
            check(&Response {
                status: 200,
                headers: many,
                body: vec![]
            })
            .unwrap_err()
            .contains("101 headers")
        );
        let huge = "v".repeat(MAX_RESPONSE_HEADER_BYTES);
        assert!(refused(response(200, &[("x-big", &huge)], b"")).contains("headers total"));
        assert!(
            check(&response(200, &[], &vec![0; MAX_RESPONSE_BYTES + 1]))
                .unwrap_err()
                .contains("the body is")
        );
    }
}
