//! `capstan event` and `capstan delivery`: publish events into a running server, list
//! recent events and delivery states, and replay dead letters.

use super::client::{Client, Remote};
use crate::text::escape;
use reqwest::Method;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum EventCommand {
    /// Publish an event: every plugin subscribed to its topic receives it.
    Publish {
        /// Dot-separated segments of a-z, 0-9, `_` and `-` (not under `capstan.`).
        topic: String,
        /// The payload as JSON text (published as application/json).
        #[arg(long, conflicts_with = "file", required_unless_present = "file")]
        json: Option<String>,
        /// Publish this file's bytes instead.
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
        /// How to read the payload (default application/json, or application/octet-stream
        /// for --file).
        #[arg(long)]
        content_type: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Recent events, newest first (without payloads).
    List {
        #[arg(long)]
        topic: Option<String>,
        /// A plugin id, `capstan` (the host) or `capstan:admin`.
        #[arg(long)]
        source: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum DeliveryCommand {
    /// Deliveries, newest event first.
    List {
        #[arg(long)]
        plugin: Option<String>,
        /// pending, leased, delivered or dead.
        #[arg(long)]
        state: Option<String>,
        /// Only the deliveries of this event.
        #[arg(long)]
        event: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[command(flatten)]
        remote: Remote,
    },
    /// Deliver a dead letter again, with a fresh attempt count.
    Retry {
        delivery: String,
        #[command(flatten)]
        remote: Remote,
    },
}

fn text(value: &Value) -> String {
    escape(value.as_str().unwrap_or("-")).into_owned()
}

fn time(value: &Value) -> String {
    value
        .as_i64()
        .map(super::records::rfc3339)
        .unwrap_or_else(|| "-".into())
}

fn print_event(event: &Value) {
    println!(
        "{}  {}  {:<24} from {:<16} {} bytes {}",
        text(&event["id"]),
        time(&event["published_ms"]),
        text(&event["topic"]),
        text(&event["source"]),
        event["size"],
        text(&event["content_type"]),
    );
}

fn print_delivery(delivery: &Value) {
    println!(
        "{}  {:<16} {:<9} attempt {}  event {} on {}{}",
        text(&delivery["id"]),
        text(&delivery["plugin"]),
        text(&delivery["state"]),
        delivery["attempt"],
        text(&delivery["event_id"]),
        text(&delivery["topic"]),
        delivery["last_error"]
            .as_str()
            .map(|e| format!("  ({})", escape(e)))
            .unwrap_or_default(),
    );
}

pub fn run_event(command: EventCommand) -> anyhow::Result<ExitCode> {
    match command {
        EventCommand::Publish {
            topic,
            json: payload,
            file,
            content_type,
            remote,
        } => {
            let mut body = json!({"topic": topic, "content_type": content_type});
            match (payload, file) {
                (Some(text), _) => {
                    body["payload"] = serde_json::from_str(&text)
                        .map_err(|e| anyhow::anyhow!("--json is not JSON: {e}"))?;
                }
                (None, Some(path)) => {
                    use base64::Engine;
                    let bytes = std::fs::read(&path)
                        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
                    body["data_base64"] = base64::engine::general_purpose::STANDARD
                        .encode(bytes)
                        .into();
                }
                (None, None) => anyhow::bail!("give --json or --file"),
            }
            if body["content_type"].is_null() {
                body.as_object_mut().map(|o| o.remove("content_type"));
            }
            let api = Client::new(&remote)?;
            let event: Value = api.fetch(api.request(Method::POST, "/events").json(&body))?;
            if !api.json {
                print_event(&event);
            }
        }
        EventCommand::List {
            topic,
            source,
            limit,
            remote,
        } => {
            let api = Client::new(&remote)?;
            let mut query = vec![("limit", limit.to_string())];
            query.extend(topic.map(|t| ("topic", t)));
            query.extend(source.map(|s| ("source", s)));
            let events: Vec<Value> =
                api.fetch(api.request(Method::GET, "/events").query(&query))?;
            if !api.json {
                events.iter().for_each(print_event);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run_delivery(command: DeliveryCommand) -> anyhow::Result<ExitCode> {
    match command {
        DeliveryCommand::List {
            plugin,
            state,
            event,
            limit,
            remote,
        } => {
            let api = Client::new(&remote)?;
            let mut query = vec![("limit", limit.to_string())];
            query.extend(plugin.map(|p| ("plugin", p)));
            query.extend(state.map(|s| ("state", s)));
            query.extend(event.map(|e| ("event", e)));
            let deliveries: Vec<Value> =
                api.fetch(api.request(Method::GET, "/deliveries").query(&query))?;
            if !api.json {
                deliveries.iter().for_each(print_delivery);
            }
        }
        DeliveryCommand::Retry { delivery, remote } => {
            let api = Client::new(&remote)?;
            let after: Value =
                api.fetch(api.request(Method::POST, &format!("/deliveries/{delivery}/retry")))?;
            if !api.json {
                print_delivery(&after);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
