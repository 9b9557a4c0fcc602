//! `capstan plugin config get|set`: a plugin's settings on a running server.

use super::client::{ApiFailure, Client, Remote};
use reqwest::Method;
use serde_json::Value;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Print what the plugin reads (the values set over the schema's defaults); with
    /// `--json`, also the schema and the values as set.
    Get {
        id: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Replace the plugin's settings with the JSON object in FILE (or `-`, stdin). It is
    /// checked against the plugin's schema first; a refusal names the field and exits 2.
    Set {
        id: String,
        /// A JSON file, or `-` for standard input.
        #[arg(default_value = "-")]
        file: PathBuf,
        #[command(flatten)]
        remote: Remote,
    },
}

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Get { id, remote } => {
            let client = Client::new(&remote)?;
            let config: Value =
                client.fetch(client.request(Method::GET, &format!("/plugins/{id}/config")))?;
            if !client.json {
                println!("{}", serde_json::to_string_pretty(&config["effective"])?);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Set { id, file, remote } => {
            let client = Client::new(&remote)?;
            let text = read(&file)?;
            let values: Value = serde_json::from_str(&text)
                .map_err(|e| anyhow::anyhow!("{} is not JSON: {e}", file.display()))?;
            let request = client
                .request(Method::PUT, &format!("/plugins/{id}/config"))
                .json(&values);
            match client.fetch::<Value>(request) {
                Ok(answer) => {
                    if !client.json {
                        println!("config of {id} set; changed: {}", answer["changed"]);
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(error) => match error.downcast_ref::<ApiFailure>() {
                    Some(refused) if refused.status == 422 => {
                        eprintln!("error: {refused}");
                        Ok(ExitCode::from(2))
                    }
                    _ => Err(error),
                },
            }
        }
    }
}

fn read(file: &PathBuf) -> anyhow::Result<String> {
    if file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        return Ok(text);
    }
    std::fs::read_to_string(file)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))
}
