//! `capstan audit` and `capstan logs`: query a running server's audit trail and plugin logs.

use super::client::{Client, Remote};
use reqwest::Method;
use serde_json::Value;
use std::process::ExitCode;

/// Filters shared by both queries; times are milliseconds since the Unix epoch.
#[derive(Debug, clap::Args)]
pub struct Filter {
    /// Only this plugin's records.
    #[arg(long)]
    plugin: Option<String>,
    /// Records at or after this time.
    #[arg(long, value_name = "MS")]
    since: Option<i64>,
    /// Records before this time.
    #[arg(long, value_name = "MS")]
    until: Option<i64>,
    /// Most records to show, newest first.
    #[arg(long, default_value_t = 50)]
    limit: u32,
    #[command(flatten)]
    remote: Remote,
}

impl Filter {
    fn query(&self) -> Vec<(&'static str, String)> {
        let mut query = vec![("limit", self.limit.to_string())];
        query.extend(self.plugin.clone().map(|p| ("plugin", p)));
        query.extend(self.since.map(|t| ("since", t.to_string())));
        query.extend(self.until.map(|t| ("until", t.to_string())));
        query
    }
}

/// `capstan audit [--kind KIND]`.
pub fn audit(filter: Filter, kind: Option<String>) -> anyhow::Result<ExitCode> {
    query(filter, "/audit", kind.map(|k| ("kind", k)), |row| {
        format!(
            "{}  {:<16} {:<14} {:<12} {}",
            row["time_ms"],
            field(row, "plugin"),
            field(row, "kind"),
            field(row, "capability"),
            field(row, "detail"),
        )
    })
}

/// `capstan logs [--level LEVEL]`.
pub fn logs(filter: Filter, level: Option<String>) -> anyhow::Result<ExitCode> {
    query(filter, "/logs", level.map(|l| ("level", l)), |row| {
        format!(
            "{}  {:<16} {:<5} {:<6} {}",
            row["time_ms"],
            field(row, "plugin"),
            field(row, "level"),
            field(row, "source"),
            field(row, "message"),
        )
    })
}

/// Fetch `path` with the filter plus `extra`, printing each row with `line` (or the JSON).
fn query(
    filter: Filter,
    path: &str,
    extra: Option<(&'static str, String)>,
    line: impl Fn(&Value) -> String,
) -> anyhow::Result<ExitCode> {
    let client = Client::new(&filter.remote)?;
    let mut query = filter.query();
    query.extend(extra);
    let rows: Vec<Value> = client.fetch(client.request(Method::GET, path).query(&query))?;
    if !client.json {
        for row in &rows {
            println!("{}", line(row));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn field<'a>(row: &'a Value, key: &str) -> &'a str {
    row[key].as_str().unwrap_or("-")
}
