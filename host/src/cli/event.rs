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
        /// Publish with this publish token instead of the admin token.
        #[arg(long, env = "CAPSTAN_PUBLISH_TOKEN", hide_env_values = true)]
        publish_token: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Publish tokens: let another system publish on some topics, without the admin token.
    #[command(subcommand)]
    Publisher(PublisherCommand),
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
pub enum PublisherCommand {
    /// Create a publisher; prints its token once.
    Add {
        /// What it is (the system that will publish).
        name: String,
        /// A topic pattern it may publish on. Repeatable; at least one.
        #[arg(long = "topic", required = true)]
        topics: Vec<String>,
        /// Lifetime of the token, e.g. `30m`, `90d`.
        #[arg(long)]
        expires_in: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Every publisher (never with its token).
    List {
        #[command(flatten)]
        remote: Remote,
    },
    /// Revoke a publisher: its token stops working on every host.
    Rm {
        id: String,
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
            publish_token,
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
            let api = Client::with_token(&remote, publish_token)?;
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
        EventCommand::Publisher(command) => return publisher(command),
    }
    Ok(ExitCode::SUCCESS)
}

fn print_publisher(publisher: &Value) {
    let topics: Vec<String> = publisher["topics"]
        .as_array()
        .into_iter()
        .flatten()
        .map(text)
        .collect();
    println!(
        "{}  {:<20} [{}]{}",
        text(&publisher["id"]),
        text(&publisher["name"]),
        topics.join(", "),
        publisher["expires_ms"]
            .as_i64()
            .map(|at| format!("  expires {}", super::records::rfc3339(at)))
            .unwrap_or_default(),
    );
}

fn publisher(command: PublisherCommand) -> anyhow::Result<ExitCode> {
    match command {
        PublisherCommand::Add {
            name,
            topics,
            expires_in,
            remote,
        } => {
            let api = Client::new(&remote)?;
            let body = json!({"name": name, "topics": topics, "expires_in": expires_in});
            let created: Value =
                api.fetch(api.request(Method::POST, "/events/publishers").json(&body))?;
            if !api.json {
                print_publisher(&created["publisher"]);
                println!(
                    "token (shown once; send it as `Authorization: Bearer …` to POST /admin/v1/events):"
                );
                println!("{}", created["token"].as_str().unwrap_or("-"));
            }
        }
        PublisherCommand::List { remote } => {
            let api = Client::new(&remote)?;
            let publishers: Vec<Value> =
                api.fetch(api.request(Method::GET, "/events/publishers"))?;
            if !api.json {
                publishers.iter().for_each(print_publisher);
            }
        }
        PublisherCommand::Rm { id, remote } => {
            let api = Client::new(&remote)?;
            api.send(api.request(Method::DELETE, &format!("/events/publishers/{id}")))?;
            if !api.json {
                println!("publisher {} revoked", escape(&id));
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
