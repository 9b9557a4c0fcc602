//! Reads operator-set settings through `config`: a greeting and a retry count with
//! defaults from the manifest's JSON Schema.

include!("plugin.rs");

#[cfg(test)]
mod tests {
    use super::*;
    use capstan_guest::testing;

    #[test]
    fn reads_the_schema_defaults_until_the_operator_sets_values() {
        testing::reset();
        let response = Settings::handle(Request::new("GET", "/?name=Ada")).unwrap();
        assert_eq!(response.body_text(), "Hello, Ada! (retries: 3)");
        testing::set_config(json!({"greeting": "Ahoy"}));
        let response = Settings::handle(Request::new("GET", "/?name=Ada")).unwrap();
        assert_eq!(response.body_text(), "Ahoy, Ada! (retries: 3)");
    }

    #[test]
    fn a_withheld_config_is_denied() {
        testing::reset();
        testing::withhold(testing::Capability::Config);
        let error = Settings::handle(Request::new("GET", "/")).unwrap_err();
        assert!(matches!(error, Error::Denied(_)), "{error}");
    }
}
