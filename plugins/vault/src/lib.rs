//! Reads the `api-token` secret and reports only whether it is set and its length.

use capstan_guest::prelude::*;

pub struct Vault;

impl Plugin for Vault {
    fn handle(_request: Request) -> Result<Response, Error> {
        let token = secrets::get("api-token")?;
        Ok(Response::json(
            200,
            &json!({ "api-token": "set", "length": token.len() }),
        ))
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
        let body = Vault::handle(Request::new("GET", "/")).unwrap().body_text();
        assert_eq!(body, r#"{"api-token":"set","length":7}"#);
        assert!(!body.contains("hunter2"));
    }

    #[test]
    fn an_unset_token_is_not_found_as_on_the_host() {
        testing::reset();
        let error = Vault::handle(Request::new("GET", "/")).unwrap_err();
        assert_eq!(error, Error::NotFound);
    }
}
