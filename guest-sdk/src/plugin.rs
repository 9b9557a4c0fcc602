//! The trait a plugin implements; the export macro wires it to the component's exports.

use crate::Error;
use crate::mcp::{CallContext, Tool};
use crate::route::{Request, Response};
use serde_json::Value;

/// A Capstan plugin. Implement the methods for what the manifest declares: `handle` for
/// `[capabilities.routes]`, `tools` and `call_tool` for `[capabilities.mcp]`.
pub trait Plugin {
    /// Handle an HTTP request routed to `/plugins/<id>/…`. An `Err` becomes a response
    /// with the status that fits it (403 for `denied`, 404 for `not-found`, …) and the
    /// error's sentence as its body. Default: 404.
    fn handle(request: Request) -> Result<Response, Error> {
        let _ = request;
        Ok(Response::not_found())
    }

    /// The MCP tools this plugin offers. Default: none.
    fn tools() -> Vec<Tool> {
        Vec::new()
    }

    /// Run tool `name` with its JSON `arguments`; a returned string is sent to the client
    /// as that text, any other value as JSON. Default: `not-found`.
    fn call_tool(name: &str, arguments: Value, context: &CallContext) -> Result<Value, Error> {
        let _ = (name, arguments, context);
        Err(Error::NotFound)
    }
}
