//! The settings schema a manifest declares: checked at install, applied to what operators
//! set. Values are validated with the `jsonschema` crate (no remote references: the
//! crate's network and file resolvers are compiled out), and a failure names the field
//! and the rule it broke.

use serde_json::{Map, Value};
use std::collections::BTreeSet;

/// Keyword marking a property as a secret reference: its value must be
/// `{"secret": "<name>"}`, never the secret itself.
pub const SECRET_KEYWORD: &str = "x-capstan-secret";

pub use crate::json_schema::Invalid;

/// A declared settings schema.
#[derive(Debug, Clone, PartialEq)]
pub struct SettingsSchema<'a> {
    schema: &'a Value,
}

impl<'a> SettingsSchema<'a> {
    /// The schema `schema`, refused if it is not a JSON Schema for an object.
    pub fn new(schema: &'a Value) -> Result<SettingsSchema<'a>, String> {
        let object = schema
            .as_object()
            .ok_or("the schema must be a table (a JSON Schema object)")?;
        match object.get("type") {
            None => {}
            Some(Value::String(t)) if t == "object" => {}
            Some(other) => return Err(format!("`type` must be \"object\", not {other}")),
        }
        crate::json_schema::compile(schema)?;
        let this = SettingsSchema { schema };
        for (key, property) in this.properties() {
            if !property.is_object() {
                return Err(format!("property `{key}` must be a table"));
            }
        }
        Ok(this)
    }

    fn properties(&self) -> impl Iterator<Item = (&'a String, &'a Value)> {
        let schema: &'a Value = self.schema;
        schema
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
    }

    /// Each property's `default`, if it has one.
    pub fn defaults(&self) -> Map<String, Value> {
        self.properties()
            .filter_map(|(key, property)| Some((key.clone(), property.get("default")?.clone())))
            .collect()
    }

    /// Properties marked as secret references.
    pub fn secret_fields(&self) -> BTreeSet<String> {
        self.properties()
            .filter(|(_, property)| property.get(SECRET_KEYWORD) == Some(&Value::Bool(true)))
            .map(|(key, _)| key.clone())
            .collect()
    }

    /// Check `values` (what the operator sets; defaults fill what it leaves out) and
    /// return them as an object.
    pub fn validate(&self, values: &Value) -> Result<Map<String, Value>, Invalid> {
        let set = values
            .as_object()
            .ok_or_else(|| Invalid::at("/", "settings must be a JSON object"))?;
        for field in self.secret_fields() {
            if let Some(value) = set.get(&field) {
                check_secret_reference(&field, value)?;
            }
        }
        let mut effective = self.defaults();
        effective.extend(set.clone());
        let validator = jsonschema::validator_for(self.schema)
            .map_err(|e| Invalid::at("/", format!("the plugin's schema is unusable: {e}")))?;
        crate::json_schema::check(&validator, &Value::Object(effective))?;
        Ok(set.clone())
    }
}

/// A secret field holds `{"secret": "<name>"}` and nothing else.
fn check_secret_reference(field: &str, value: &Value) -> Result<(), Invalid> {
    let pointer = format!("/{field}");
    let name = value
        .as_object()
        .filter(|object| object.len() == 1)
        .and_then(|object| object.get("secret"))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            Invalid::at(
                &pointer,
                "this field is a secret reference: set {\"secret\": \"<name>\"} and store the \
                 value with the secrets API, never in config",
            )
        })?;
    crate::secrets::validate_name(name).map_err(|e| Invalid::at(&pointer, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "required": ["greeting"],
            "additionalProperties": false,
            "properties": {
                "greeting": {"type": "string", "default": "Hello"},
                "retries": {"type": "integer", "minimum": 0, "maximum": 5},
                "api_token": {"x-capstan-secret": true},
            }
        })
    }

    #[test]
    fn defaults_fill_required_fields_and_valid_values_pass() {
        let schema = schema();
        let settings = SettingsSchema::new(&schema).unwrap();
        assert_eq!(settings.defaults()["greeting"], "Hello");
        assert!(settings.validate(&json!({})).is_ok());
        let set = settings.validate(&json!({"retries": 3})).unwrap();
        assert_eq!(set.len(), 1, "defaults are applied when read, not stored");
    }

    #[test]
    fn a_failure_names_the_field_and_the_rule() {
        let schema = schema();
        let settings = SettingsSchema::new(&schema).unwrap();
        let error = settings.validate(&json!({"retries": 9})).unwrap_err();
        assert_eq!(error.field, "/retries");
        assert!(error.rule.contains("maximum"), "{error}");
        let error = settings.validate(&json!({"colour": "red"})).unwrap_err();
        assert!(error.rule.contains("additionalProperties"), "{error}");
        let error = settings.validate(&json!([1, 2])).unwrap_err();
        assert_eq!(error.field, "/");
    }

    #[test]
    fn secret_fields_take_references_only() {
        let schema = schema();
        let settings = SettingsSchema::new(&schema).unwrap();
        assert!(
            settings
                .validate(&json!({"api_token": {"secret": "token"}}))
                .is_ok()
        );
        let error = settings
            .validate(&json!({"api_token": "sk-live-123"}))
            .unwrap_err();
        assert_eq!(error.field, "/api_token");
        assert!(error.rule.contains("secret reference"), "{error}");
        assert!(
            settings
                .validate(&json!({"api_token": {"secret": "bad name!"}}))
                .is_err()
        );
    }

    #[test]
    fn schemas_that_are_not_for_an_object_or_not_json_schema_are_refused() {
        for bad in [
            json!({"type": "string"}),
            json!([1]),
            json!({"type": "object", "properties": {"a": {"type": 7}}}),
            json!({"$schema": "https://evil.example/meta"}),
            json!({"properties": {"a": true}}),
        ] {
            assert!(SettingsSchema::new(&bad).is_err(), "{bad}");
        }
    }
}
