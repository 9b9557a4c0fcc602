//! The tools the official MCP conformance suite (`@modelcontextprotocol/conformance`) calls
//! by fixed name: `test_simple_text` returns a text, `test_error_handling` fails, which the
//! gateway returns as a result with `isError: true`, and `json_schema_2020_12_tool` has the
//! input schema whose 2020-12 keywords the suite expects `tools/list` to keep as written.
//! Served without the `<plugin>__` prefix to a client created with `bare_names` (see
//! scripts/mcp-conformance).

use capstan_guest::prelude::*;

pub struct McpConformance;

impl Plugin for McpConformance {
    fn tools() -> Vec<Tool> {
        let no_arguments = json!({"type": "object", "properties": {}});
        vec![
            Tool::new(
                "test_simple_text",
                "Tests simple text content response",
                no_arguments.clone(),
            ),
            Tool::new(
                "test_error_handling",
                "Tests error response handling",
                no_arguments,
            ),
            // The schema of the suite's json-schema-2020-12 scenario, verbatim.
            Tool::new(
                "json_schema_2020_12_tool",
                "Tool with JSON Schema 2020-12 features",
                json!({
                    "$schema": "https://json-schema.org/draft/2020-12/schema",
                    "type": "object",
                    "$defs": {"address": {
                        "$anchor": "addressDef",
                        "type": "object",
                        "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
                    }},
                    "properties": {
                        "name": {"type": "string"},
                        "address": {"$ref": "#/$defs/address"},
                        "contactMethod": {"type": "string", "enum": ["phone", "email"]},
                        "phone": {"type": "string"},
                        "email": {"type": "string"},
                    },
                    "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
                    "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
                    "then": {"required": ["phone"]},
                    "else": {"required": ["email"]},
                    "additionalProperties": false,
                }),
            ),
        ]
    }

    fn call_tool(name: &str, _arguments: Value, _context: &CallContext) -> Result<Value, Error> {
        match name {
            "test_simple_text" => Ok(json!("This is a simple text response for testing.")),
            "json_schema_2020_12_tool" => Ok(json!("ok")),
            "test_error_handling" => Err(Error::Internal(
                "This tool intentionally returns an error for testing".into(),
            )),
            _ => Err(Error::NotFound),
        }
    }
}

capstan_guest::export_plugin!(McpConformance);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_error() {
        let ctx = CallContext::local("test");
        assert_eq!(
            McpConformance::call_tool("test_simple_text", json!({}), &ctx).unwrap(),
            json!("This is a simple text response for testing.")
        );
        assert!(McpConformance::call_tool("test_error_handling", json!({}), &ctx).is_err());
    }
}
