//! `capstan audit` and `capstan logs`: query a running server's audit trail and plugin
//! logs. Rows are printed one per line with RFC 3339 times; every field is escaped (see
//! [`crate::text::escape`]), so plugin-supplied text cannot move the cursor, retitle the
//! terminal or forge a row. `--json` prints the API's answer untouched.

use super::client::{Client, Remote};
use crate::text::escape;
use reqwest::Method;
use serde_json::Value;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A point in time on the command line: RFC 3339 (`2026-12-01T20:00:00Z`) or
/// milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy)]
pub struct When(i64);

impl std::str::FromStr for When {
    type Err = String;

    fn from_str(text: &str) -> Result<When, String> {
        if let Ok(millis) = text.parse::<i64>() {
            return Ok(When(millis));
        }
        let time = humantime::parse_rfc3339_weak(text).map_err(|e| {
            format!("`{text}` is neither an RFC 3339 time nor milliseconds since the epoch: {e}")
        })?;
        let millis = time
            .duration_since(UNIX_EPOCH)
            .map_err(|_| format!("`{text}` is before 1970"))?
            .as_millis();
        Ok(When(millis as i64))
    }
}

/// Filters shared by both queries.
#[derive(Debug, clap::Args)]
pub struct Filter {
    /// Only this plugin's records.
    #[arg(long)]
    plugin: Option<String>,
    /// Records at or after this time (RFC 3339, or ms since the epoch).
    #[arg(long, value_name = "TIME")]
    since: Option<When>,
    /// Records before this time (RFC 3339, or ms since the epoch).
    #[arg(long, value_name = "TIME")]
    until: Option<When>,
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
        query.extend(self.since.map(|When(t)| ("since", t.to_string())));
        query.extend(self.until.map(|When(t)| ("until", t.to_string())));
        query
    }
}

/// `capstan audit [--kind KIND]`.
pub fn audit(filter: Filter, kind: Option<String>) -> anyhow::Result<ExitCode> {
    query(filter, "/audit", kind.map(|k| ("kind", k)), |row| {
        format!(
            "{}  {:<16} {:<14} {:<12} {}",
            time(row),
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
            time(row),
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

/// A row's `time_ms` as RFC 3339 with milliseconds, in UTC.
fn time(row: &Value) -> String {
    rfc3339(row["time_ms"].as_i64().unwrap_or(0))
}

/// Milliseconds since the epoch as RFC 3339 with milliseconds, in UTC.
pub(super) fn rfc3339(millis: i64) -> String {
    let millis = u64::try_from(millis).unwrap_or(0);
    humantime::format_rfc3339_millis(SystemTime::UNIX_EPOCH + Duration::from_millis(millis))
        .to_string()
}

/// A text field of `row`, escaped for the terminal.
fn field(row: &Value, key: &str) -> String {
    escape(row[key].as_str().unwrap_or("-")).into_owned()
}
