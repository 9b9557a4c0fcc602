//! MCP tools: `add` two numbers, `word-count` a text, and `text-stats`, whose result is
//! structured (its manifest gives an output schema).

use capstan_guest::mcp::arg;
use capstan_guest::prelude::*;

pub struct Tools;

impl Plugin for Tools {
    fn tools() -> Vec<Tool> {
        vec![
            Tool::new(
                "add",
                "Add two numbers.",
                json!({"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}, "required": ["a", "b"]}),
            ),
            Tool::new(
                "word-count",
                "Count the words in a text.",
                json!({"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}),
            ),
            Tool::new(
                "text-stats",
                "Count the words, characters and lines of a text.",
                json!({"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}),
            ),
        ]
    }

    fn call_tool(name: &str, arguments: Value, context: &CallContext) -> Result<Value, Error> {
        capstan_guest::debug!("{} called {name}", context.client_name);
        match name {
            "add" => Ok(json!(
                arg::<f64>(&arguments, "a")? + arg::<f64>(&arguments, "b")?
            )),
            "word-count" => Ok(json!(
                arg::<String>(&arguments, "text")?
                    .split_whitespace()
                    .count()
            )),
            "text-stats" => {
                let text = arg::<String>(&arguments, "text")?;
                Ok(json!({
                    "words": text.split_whitespace().count(),
                    "characters": text.chars().count(),
                    "lines": text.lines().count(),
                }))
            }
            _ => Err(Error::NotFound),
        }
    }
}

capstan_guest::export_plugin!(Tools);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_and_counts() {
        let ctx = CallContext::local("test");
        assert_eq!(
            Tools::call_tool("add", json!({"a": 2, "b": 3.5}), &ctx).unwrap(),
            json!(5.5)
        );
        assert_eq!(
            Tools::call_tool("word-count", json!({"text": "a b  c"}), &ctx).unwrap(),
            json!(3)
        );
        assert_eq!(
            Tools::call_tool("text-stats", json!({"text": "a b\nc"}), &ctx).unwrap(),
            json!({"words": 3, "characters": 5, "lines": 2})
        );
    }

    #[test]
    fn missing_argument_is_named() {
        let err =
            Tools::call_tool("add", json!({"a": 1}), &CallContext::local("test")).unwrap_err();
        assert!(matches!(err, Error::InvalidInput(msg) if msg.contains("`b`")));
    }
}
