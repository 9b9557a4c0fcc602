//! The trait a plugin implements; the export macro wires it to the component's exports.

use crate::Error;
use crate::events::{DeliveryError, Event};
use crate::job::RunContext;
use crate::mcp::{CallContext, Tool};
use crate::route::{Request, Response};
use serde_json::Value;

/// A Capstan plugin. Implement the methods for what the manifest declares: `handle` for
/// `[capabilities.routes]`, `tools` and `call_tool` for `[capabilities.mcp]`, `run_job`
/// for `[capabilities.jobs]`, any of the `on_*` hooks for `[capabilities.lifecycle]`,
/// `on_event` for `[capabilities.events] subscribe` and `handle_claim` for its `claims`.
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

    /// Run job `name` (from `[capabilities.jobs.<name>]`). Check `job::cancelled()` in
    /// long loops and send `job::heartbeat` with progress. An `Err` marks the run failed
    /// (and retried if the job declares `retry`). Default: `not-found`.
    fn run_job(name: &str, context: &RunContext) -> Result<(), Error> {
        let _ = (name, context);
        Err(Error::NotFound)
    }

    /// Handle an event on a topic the plugin subscribes to. `Ok` acknowledges it;
    /// `DeliveryError::Retry` asks for it again later (with backoff, then a dead letter),
    /// `DeliveryError::Reject` makes it a dead letter now. An `Error` from a host call
    /// turns into `Retry` with `?`. Deliveries are at least once: use `event.id` to
    /// recognise a redelivery. Default: reject.
    fn on_event(event: &Event) -> Result<(), DeliveryError> {
        Err(DeliveryError::Reject(format!(
            "no handler for events on `{}`",
            event.topic
        )))
    }

    /// Handle a request of a `kind` the plugin claims; the answer goes back to the
    /// requester. Default: `not-found`.
    fn handle_claim(kind: &str, payload: &[u8]) -> Result<Vec<u8>, Error> {
        let _ = (kind, payload);
        Err(Error::NotFound)
    }

    /// After this version was installed, or upgraded to from `previous_version`, before
    /// it serves; an `Err` refuses the install. Must be idempotent. Default: nothing.
    fn on_install(previous_version: Option<&str>) -> Result<(), Error> {
        let _ = previous_version;
        Ok(())
    }

    /// Before the plugin is removed (best effort, a short budget). Default: nothing.
    fn on_remove() -> Result<(), Error> {
        Ok(())
    }

    /// After the operator changed the plugin's settings. Default: nothing.
    fn on_config_changed() -> Result<(), Error> {
        Ok(())
    }

    /// After the operator set or deleted secret `name` (its value is not passed; read
    /// it with `secrets::get`). Default: nothing.
    fn on_secret_changed(name: &str) -> Result<(), Error> {
        let _ = name;
        Ok(())
    }
}
