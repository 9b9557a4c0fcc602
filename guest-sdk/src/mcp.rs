//! MCP tool types and the glue that turns JSON text into values for [`crate::Plugin`].

use crate::{Error, Plugin};
use serde_json::Value;

pub use crate::bindings::tools::exports::capstan::plugin::mcp::{CallContext, Tool};

impl Tool {
    /// A tool named `name` whose arguments follow the JSON Schema `input_schema`.
    pub fn new(name: &str, description: &str, input_schema: Value) -> Self {
        Tool {
            name: name.to_string(),
            description: description.to_string(),
            input_schema: input_schema.to_string(),
        }
    }
}

impl CallContext {
    /// A context for tests and local runs: client `client` (its id and its name).
    pub fn local(client: &str) -> Self {
        CallContext {
            client_id: client.to_string(),
            client_name: client.to_string(),
            call_id: "local".to_string(),
        }
    }
}

/// Parse `arguments`, call `P::call_tool` and serialise its result for the host.
#[doc(hidden)]
pub fn dispatch<P: Plugin>(
    name: &str,
    arguments: &str,
    context: &CallContext,
) -> Result<String, crate::bindings::capstan::plugin::types::Error> {
    call::<P>(name, arguments, context).map_err(Into::into)
}

/// Parse `arguments`, call `P::call_tool` and serialise its result as the host receives
/// it (a string as its text, anything else as JSON): for native tests of a plugin's tools.
pub fn call<P: Plugin>(
    name: &str,
    arguments: &str,
    context: &CallContext,
) -> Result<String, Error> {
    let arguments: Value = if arguments.trim().is_empty() {
        Value::Object(Default::default())
    } else {
        serde_json::from_str(arguments)
            .map_err(|e| Error::InvalidInput(format!("arguments are not JSON: {e}")))?
    };
    Ok(match P::call_tool(name, arguments, context)? {
        Value::String(text) => text,
        value => value.to_string(),
    })
}

/// Fetch a required argument of type `T` from a tool's JSON arguments, naming it on error.
pub fn arg<T: serde::de::DeserializeOwned>(arguments: &Value, name: &str) -> Result<T, Error> {
    let value = arguments
        .get(name)
        .ok_or_else(|| Error::InvalidInput(format!("missing argument `{name}`")))?;
    serde_json::from_value(value.clone())
        .map_err(|e| Error::InvalidInput(format!("argument `{name}`: {e}")))
}
