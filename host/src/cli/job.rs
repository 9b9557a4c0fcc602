//! `capstan job`: a running server's job schedules, runs and their history.

use super::client::{Client, Remote};
use crate::text::escape;
use reqwest::Method;
use serde_json::Value;
use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// A plugin's jobs: schedule, grant, next tick, latest run.
    List {
        plugin: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Run a job now (queued; a host with a free slot runs it).
    Run {
        plugin: String,
        job: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Runs, newest tick first.
    Runs {
        #[arg(long)]
        plugin: Option<String>,
        #[arg(long)]
        job: Option<String>,
        /// queued, running, succeeded, failed, cancelled, timed-out, abandoned, skipped.
        #[arg(long)]
        state: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[command(flatten)]
        remote: Remote,
    },
    /// One run and its log lines.
    Show {
        run: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Ask a run to stop (stopped by force after the policy's grace).
    Cancel {
        run: String,
        #[command(flatten)]
        remote: Remote,
    },
}

/// Milliseconds since the epoch (or `-`) as RFC 3339.
fn time(value: &Value) -> String {
    value
        .as_i64()
        .map(super::records::rfc3339)
        .unwrap_or_else(|| "-".into())
}

fn text(value: &Value) -> String {
    escape(value.as_str().unwrap_or("-")).into_owned()
}

fn print_run(run: &Value) {
    println!(
        "{}  {}/{}  {:<9}  tick {}  attempt {}  {}{}",
        text(&run["id"]),
        text(&run["plugin"]),
        text(&run["job"]),
        text(&run["state"]),
        time(&run["scheduled_ms"]),
        run["attempt"],
        text(&run["trigger"]),
        run["error"]
            .as_str()
            .map(|e| format!("  ({})", escape(e)))
            .unwrap_or_default(),
    );
}

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::List { plugin, remote } => {
            let api = Client::new(&remote)?;
            let jobs: Vec<Value> =
                api.fetch(api.request(Method::GET, &format!("/plugins/{plugin}/jobs")))?;
            if !api.json {
                for job in &jobs {
                    println!(
                        "{:<16} {:<24} {}  next {}  last {}",
                        text(&job["name"]),
                        escape(&job["schedule"].to_string()),
                        if job["granted"] == true {
                            "granted"
                        } else {
                            "denied"
                        },
                        time(&job["next_run_ms"]),
                        text(&job["last_run"]["state"]),
                    );
                }
            }
        }
        Command::Run {
            plugin,
            job,
            remote,
        } => {
            let api = Client::new(&remote)?;
            let run: Value =
                api.fetch(api.request(Method::POST, &format!("/plugins/{plugin}/jobs/{job}/run")))?;
            if !api.json {
                print_run(&run);
            }
        }
        Command::Runs {
            plugin,
            job,
            state,
            limit,
            remote,
        } => {
            let api = Client::new(&remote)?;
            let mut query = vec![("limit", limit.to_string())];
            query.extend(plugin.map(|p| ("plugin", p)));
            query.extend(job.map(|j| ("job", j)));
            query.extend(state.map(|s| ("state", s)));
            let runs: Vec<Value> = api.fetch(api.request(Method::GET, "/runs").query(&query))?;
            if !api.json {
                runs.iter().for_each(print_run);
            }
        }
        Command::Show { run, remote } => {
            let api = Client::new(&remote)?;
            let detail: Value = api.fetch(api.request(Method::GET, &format!("/runs/{run}")))?;
            if !api.json {
                print_run(&detail["run"]);
                println!("  progress: {}", text(&detail["run"]["progress"]));
                for line in detail["logs"].as_array().into_iter().flatten() {
                    println!(
                        "  {} {:<5} {}",
                        time(&line["time_ms"]),
                        text(&line["level"]),
                        text(&line["message"])
                    );
                }
            }
        }
        Command::Cancel { run, remote } => {
            let api = Client::new(&remote)?;
            let after: Value =
                api.fetch(api.request(Method::POST, &format!("/runs/{run}/cancel")))?;
            if !api.json {
                print_run(&after);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
