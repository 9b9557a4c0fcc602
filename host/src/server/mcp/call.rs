//! One `tools/call`: arguments checked against the input schema before anything runs, a
//! call slot shared with the plugin's routes, the call in a fresh instance under the
//! plugin's deadline and limits, the result checked (size, output schema), then audited
//! and counted. Every failure is a result with `isError`; internals stay in the host log
//! under an error id.

use super::{Hub, Visible};
use crate::audit::{AuditEvent, AuditKind};
use crate::capability::CapabilityId;
use crate::capability::mcp::McpClient;
use crate::error::InvokeError;
use crate::runtime::{Caller, next_call_id};
use futures_util::FutureExt;
use rmcp::model::{CallToolResult, ContentBlock};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};

/// Largest tool result passed on to a client.
pub const MAX_RESULT_BYTES: usize = 4 * 1024 * 1024;
/// How long a call waits for a slot before it is turned away.
const ADMISSION_WAIT: Duration = Duration::from_millis(500);

/// How a call ended, for its audit record and metrics.
struct Outcome {
    /// `ok`, `tool-error`, `invalid-arguments`, `invalid-output`, `too-large`, `busy`,
    /// or the runtime's error code (`timeout`, `trap`, `memory-limit`, …).
    label: &'static str,
    result: CallToolResult,
}

impl Outcome {
    fn failed(label: &'static str, message: impl Into<String>) -> Outcome {
        Outcome {
            label,
            result: CallToolResult::error(vec![ContentBlock::text(message.into())]),
        }
    }
}

/// Run `tool` for `client` with `arguments`.
pub async fn run(
    hub: &Hub,
    client: &McpClient,
    tool: &Visible,
    arguments: Value,
) -> CallToolResult {
    let started = Instant::now();
    let call_id = next_call_id();
    let text = arguments.to_string();
    let outcome = attempt(hub, client, tool, arguments, &text, call_id.clone()).await;
    let elapsed = started.elapsed();
    let plugin = tool.server.plugin.id();
    let name = &tool.tool().spec.name;
    hub.app
        .metrics
        .observe_tool_call(plugin, name, outcome.label, elapsed);
    hub.app
        .registry
        .runtime()
        .services()
        .audit
        .record(AuditEvent::new(
            plugin,
            AuditKind::ToolCall,
            Some(CapabilityId::Mcp),
            format!(
                "client {} ({}) called {name}; call {call_id}; {} in {} ms; arguments sha256 {}",
                client.id,
                crate::text::escape(&client.name),
                outcome.label,
                elapsed.as_millis(),
                hex::encode(Sha256::digest(text.as_bytes())),
            ),
        ));
    outcome.result
}

async fn attempt(
    hub: &Hub,
    client: &McpClient,
    tool: &Visible,
    arguments: Value,
    text: &str,
    call_id: String,
) -> Outcome {
    let live = tool.tool();
    if let Err(invalid) = live.check_arguments(&arguments) {
        return Outcome::failed("invalid-arguments", format!("invalid arguments: {invalid}"));
    }
    let plugin = tool.server.plugin.clone();
    let slot = match hub
        .app
        .slots
        .take(plugin.id(), plugin.caps(), ADMISSION_WAIT)
        .await
    {
        Ok(slot) => slot,
        Err(refusal) => {
            let message = crate::server::routes::busy(plugin.id(), refusal).to_string();
            return Outcome::failed("busy", message);
        }
    };
    let caller = Caller {
        client_id: client.id.clone(),
        client_name: client.name.clone(),
    };
    // Like a route call, the call runs on this async thread (its wasm yields at every
    // epoch tick; host waits step off the thread first).
    let ran = std::panic::AssertUnwindSafe(plugin.call_tool_async(
        &live.spec.name,
        text,
        &caller,
        call_id,
    ))
    .catch_unwind()
    .await;
    drop(slot);
    match ran {
        Ok(Ok(Ok(result))) => checked(tool, result),
        Ok(Ok(Err(error))) => Outcome::failed("tool-error", crate::wit_error::describe(&error)),
        Ok(Err(error)) => failure(tool, error),
        Err(_) => failure(
            tool,
            InvokeError::Trap("the host panicked during the call".into()),
        ),
    }
}

/// A result the tool returned: within the size cap and, with an output schema, JSON that
/// matches it (then also sent as `structuredContent`).
fn checked(tool: &Visible, result: String) -> Outcome {
    if result.len() > MAX_RESULT_BYTES {
        return Outcome::failed(
            "too-large",
            format!(
                "the tool's result is {} bytes; the limit is {MAX_RESULT_BYTES}",
                result.len()
            ),
        );
    }
    let Some(validator) = tool.tool().output() else {
        return Outcome {
            label: "ok",
            result: CallToolResult::success(vec![ContentBlock::text(result)]),
        };
    };
    let structured = match serde_json::from_str::<Value>(&result) {
        Ok(value) => value,
        Err(error) => {
            return Outcome::failed(
                "invalid-output",
                format!("the tool's result is not the JSON its output schema asks for: {error}"),
            );
        }
    };
    if let Err(invalid) = crate::json_schema::check(validator, &structured) {
        return Outcome::failed(
            "invalid-output",
            format!("the tool's result does not match its output schema: {invalid}"),
        );
    }
    let mut answer = CallToolResult::success(vec![ContentBlock::text(result)]);
    answer.structured_content = Some(structured);
    Outcome {
        label: "ok",
        result: answer,
    }
}

/// A call the runtime stopped (deadline, trap, limit): the client learns the kind and an
/// error id, the host log the details.
fn failure(tool: &Visible, error: InvokeError) -> Outcome {
    let error_id = crate::server::next_error_id();
    let plugin = tool.server.plugin.id();
    tracing::warn!(plugin = %plugin, tool = %tool.tool().spec.name, error_id = %error_id, "tool call failed: {error}");
    let label = error.code();
    Outcome::failed(
        label,
        format!("the tool failed ({label}); error id {error_id}"),
    )
}
