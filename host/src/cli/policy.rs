//! `capstan policy`: show, replace and check the policy of a running server.

use super::client::{Client, Remote};
use reqwest::Method;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Print the current policy (TOML).
    Get {
        #[command(flatten)]
        remote: Remote,
    },
    /// Replace the policy with FILE: every installed plugin is re-granted under it, all or
    /// none; prints the grants that changed.
    Set {
        file: PathBuf,
        #[command(flatten)]
        remote: Remote,
    },
    /// Show what replacing the policy with FILE would change, changing nothing.
    Check {
        file: PathBuf,
        #[command(flatten)]
        remote: Remote,
    },
}

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Get { remote } => {
            let client = Client::new(&remote)?;
            print!(
                "{}",
                client
                    .send(client.request(Method::GET, "/policy"))?
                    .text()?
            );
        }
        Command::Set { file, remote } => {
            submit(&Client::new(&remote)?, Method::PUT, "/policy", &file)?
        }
        Command::Check { file, remote } => submit(
            &Client::new(&remote)?,
            Method::POST,
            "/policy/dry-run",
            &file,
        )?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Send the policy in `file` and print the grant changes the server reports.
fn submit(client: &Client, method: Method, path: &str, file: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    let answer: Value = client.fetch(
        client
            .request(method, path)
            .header(reqwest::header::CONTENT_TYPE, "application/toml")
            .body(text),
    )?;
    if client.json {
        return Ok(());
    }
    let changes = answer["changes"].as_array().cloned().unwrap_or_default();
    let verb = if answer["applied"] == true {
        "applied"
    } else {
        "would apply"
    };
    println!("{verb}: {} grant change(s)", changes.len());
    for change in &changes {
        println!(
            "  {:<20} {:<16} {} -> {}",
            change["plugin"].as_str().unwrap_or("-"),
            change["capability"].as_str().unwrap_or("-"),
            change["before"].as_str().unwrap_or("-"),
            change["after"].as_str().unwrap_or("-"),
        );
    }
    Ok(())
}
