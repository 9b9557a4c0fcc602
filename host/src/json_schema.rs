//! JSON Schema as the host uses it for schemas plugins declare (settings, tool inputs and
//! outputs): checked against the meta-schema they name, compiled without remote
//! references (the `jsonschema` crate's network and file resolvers are compiled out), and
//! a document that fails is reported by the field and the rule it broke.

use crate::text::shown;
use serde_json::Value;

/// Meta-schemas a declared schema may name in `$schema` (absent means 2020-12).
const KNOWN_DRAFTS: &[&str] = &[
    "https://json-schema.org/draft/2020-12/schema",
    "https://json-schema.org/draft/2019-09/schema",
    "http://json-schema.org/draft-07/schema#",
    "http://json-schema.org/draft-07/schema",
];

/// The most of a failure's own message (which repeats the value that failed) a refusal
/// keeps, so the rule it broke, after it, always shows.
const REPEATED_BYTES: usize = 300;

/// Why a document was refused: the field (a JSON pointer, `/` for the whole document)
/// and the rule. Both can repeat text from the document or the schema (keys, values, a
/// pattern), someone else's text to whoever reads the refusal: shown capped and escaped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{}`: {}", shown(.field), shown(.rule))]
pub struct Invalid {
    pub field: String,
    pub rule: String,
}

impl Invalid {
    /// A refusal of `field` for breaking `rule`.
    pub fn at(field: impl Into<String>, rule: impl Into<String>) -> Invalid {
        Invalid {
            field: field.into(),
            rule: rule.into(),
        }
    }
}

/// Compile `schema`, refusing anything that is not a JSON Schema object for a meta-schema
/// this host knows.
pub fn compile(schema: &Value) -> Result<jsonschema::Validator, String> {
    let object = schema
        .as_object()
        .ok_or("the schema must be a JSON Schema object")?;
    if let Some(draft) = object.get("$schema")
        && !draft.as_str().is_some_and(|d| KNOWN_DRAFTS.contains(&d))
    {
        return Err(format!(
            "`$schema` = {draft} is not a meta-schema this host knows ({})",
            KNOWN_DRAFTS.join(", ")
        ));
    }
    jsonschema::meta::validate(schema).map_err(|e| format!("not a valid JSON Schema: {e}"))?;
    jsonschema::validator_for(schema).map_err(|e| format!("not a usable JSON Schema: {e}"))
}

/// Check `document` against `validator`, naming the first field that fails and its rule.
pub fn check(validator: &jsonschema::Validator, document: &Value) -> Result<(), Invalid> {
    match validator.iter_errors(document).next() {
        None => Ok(()),
        Some(error) => {
            let field = error.instance_path().to_string();
            let field = if field.is_empty() { "/".into() } else { field };
            Err(Invalid::at(
                field,
                format!(
                    "{} (rule `{}`)",
                    crate::text::cap(&error.to_string(), REPEATED_BYTES),
                    error.kind().keyword()
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_failure_shows_the_document_and_schema_text_it_repeats_capped_and_escaped() {
        let hostile = format!("\u{1b}[2J{}", "A".repeat(5_000));
        let validator = compile(&json!({
            "type": "object",
            "properties": {"a": {"const": hostile.clone()}, "b": {"maxLength": 1}},
            "additionalProperties": false,
        }))
        .unwrap();
        for document in [
            json!({"a": "x"}),
            json!({"b": hostile.clone()}),
            json!({hostile.clone(): 1}),
        ] {
            let shown = check(&validator, &document).unwrap_err().to_string();
            assert!(!shown.chars().any(char::is_control), "{shown:.200}");
            assert!(shown.len() < 1_000, "{} bytes: {shown:.200}", shown.len());
        }
    }

    #[test]
    fn a_failure_names_the_field_and_the_rule() {
        let validator = compile(&json!({
            "type": "object",
            "properties": {"a": {"type": "number"}},
            "required": ["a"],
        }))
        .unwrap();
        assert!(check(&validator, &json!({"a": 1})).is_ok());
        let error = check(&validator, &json!({"a": "x"})).unwrap_err();
        assert_eq!(error.field, "/a");
        assert!(error.rule.contains("type"), "{error}");
        let error = check(&validator, &json!({})).unwrap_err();
        assert_eq!(error.field, "/");
        assert!(error.rule.contains("required"), "{error}");
    }

    #[test]
    fn unknown_meta_schemas_and_non_schemas_are_refused() {
        for bad in [
            json!([1]),
            json!({"type": 7}),
            json!({"$schema": "https://evil.example/meta"}),
        ] {
            assert!(compile(&bad).is_err(), "{bad}");
        }
    }
}
