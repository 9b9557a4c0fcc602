//! Reads the `api-token` secret and reports only whether it is set and its length.

use capstan_guest::prelude::*;

pub struct Vault;

impl Plugin for Vault {
    fn handle(_request: Request) -> Response {
        match secrets::get("api-token") {
            Ok(token) => Response::json(200, &json!({ "api-token": "set", "length": token.len() })),
            Err(error) => Response::from_error(&error),
        }
    }
}

capstan_guest::export_plugin!(Vault);

#[cfg(test)]
mod tests {
    use super::*;
    use capstan_guest::testing;

    #[test]
    fn reports_length_never_value() {
        testing::reset();
        testing::set_secret("api-token", "hunter2");
        let body = Vault::handle(Request::new("GET", "/")).body_text();
        assert_eq!(body, r#"{"api-token":"set","length":7}"#);
        assert!(!body.contains("hunter2"));
    }
}
