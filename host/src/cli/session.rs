//! `capstan session`: create, list, show, renew and close a running server's sessions.

use super::client::{ApiFailure, Client, Remote};
use reqwest::Method;
use serde_json::Value;
use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create a session; prints its id and its token once.
    Create {
        /// What the session is for (a client, an agent's task).
        name: String,
        /// How long it lives unless renewed, e.g. `30m`, `8h`.
        #[arg(long, default_value = "1h")]
        ttl: String,
        /// Withhold this capability (by key, e.g. `http`) from its plugins. Repeatable.
        #[arg(long = "deny")]
        deny: Vec<String>,
        /// A lower per-call deadline for its plugins, in milliseconds.
        #[arg(long)]
        deadline_ms: Option<u32>,
        /// A global plugin (or `*`) whose MCP tools its token also sees. Repeatable.
        #[arg(long = "global-tools")]
        global_tools: Vec<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// List open sessions with their plugins (never their tokens).
    List {
        #[command(flatten)]
        remote: Remote,
    },
    /// Show one session and its plugins.
    Show {
        id: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Give a session a new time to live, counted from now.
    Renew {
        id: String,
        #[arg(long)]
        ttl: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Close a session: its token stops working, its plugins are removed and their state
    /// purged.
    Close {
        id: String,
        #[command(flatten)]
        remote: Remote,
    },
}

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Create {
            name,
            ttl,
            deny,
            deadline_ms,
            global_tools,
            remote,
        } => {
            let api = Client::new(&remote)?;
            let body = serde_json::json!({
                "name": name,
                "ttl": ttl,
                "policy": {"deny": deny, "limits": {"deadline_ms": deadline_ms}},
                "global_tools": global_tools,
            });
            let created: Value = match api.fetch(api.request(Method::POST, "/sessions").json(&body))
            {
                Ok(created) => created,
                Err(error) => return refused(error),
            };
            if !api.json {
                print_session(&created["session"], None);
                println!("token (shown once; the client sends it as `Authorization: Bearer …`):");
                println!("{}", created["token"].as_str().unwrap_or("-"));
            }
        }
        Command::List { remote } => {
            let api = Client::new(&remote)?;
            let sessions: Vec<Value> = api.fetch(api.request(Method::GET, "/sessions"))?;
            if !api.json {
                for info in &sessions {
                    print_session(&info["session"], Some(&info["plugins"]));
                }
            }
        }
        Command::Show { id, remote } => {
            let api = Client::new(&remote)?;
            let info: Value = api.fetch(api.request(Method::GET, &format!("/sessions/{id}")))?;
            if !api.json {
                print_session(&info["session"], Some(&info["plugins"]));
            }
        }
        Command::Renew { id, ttl, remote } => {
            let api = Client::new(&remote)?;
            let request = api
                .request(Method::POST, &format!("/sessions/{id}/renew"))
                .json(&serde_json::json!({ "ttl": ttl }));
            let session: Value = match api.fetch(request) {
                Ok(session) => session,
                Err(error) => return refused(error),
            };
            if !api.json {
                print_session(&session, None);
            }
        }
        Command::Close { id, remote } => {
            let api = Client::new(&remote)?;
            let closed: Value =
                api.fetch(api.request(Method::DELETE, &format!("/sessions/{id}")))?;
            if !api.json {
                let removed: Vec<&str> = closed["removed"]
                    .as_array()
                    .map(|ids| ids.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                println!("closed {id}; removed [{}]", removed.join(", "));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A refused request exits 2 with the API's message; anything else is an error.
fn refused(error: anyhow::Error) -> anyhow::Result<ExitCode> {
    match error.downcast_ref::<ApiFailure>() {
        Some(failure) if matches!(failure.status, 409 | 422) => {
            eprintln!("refused ({}): {}", failure.code, failure.message);
            Ok(ExitCode::from(2))
        }
        _ => Err(error),
    }
}

fn print_session(session: &Value, plugins: Option<&Value>) {
    let text = |key: &str| session[key].as_str().unwrap_or("-").to_string();
    let expires = session["expires_ms"]
        .as_i64()
        .map(super::records::rfc3339)
        .unwrap_or_else(|| "-".into());
    let plugins = plugins
        .and_then(Value::as_array)
        .map(|list| {
            let ids: Vec<&str> = list.iter().filter_map(|p| p["id"].as_str()).collect();
            format!(" plugins=[{}]", ids.join(","))
        })
        .unwrap_or_default();
    println!(
        "{}  {:<24} expires={expires}{plugins}",
        text("id"),
        crate::text::escape(&text("name")),
    );
}
