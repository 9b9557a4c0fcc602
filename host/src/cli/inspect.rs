//! `capstan inspect`: what a plugin is, what it imports, what it would be granted.

use super::PluginArgs;
use crate::consent::Consent;
use crate::gate::{self, Admission, ImportClass};
use crate::text::escape;
use serde_json::Value;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    plugin: PluginArgs,
    /// Print the admission as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (bytes, sidecar, policy) = args.plugin.read()?;
    let max = gate::DEFAULT_MAX_COMPONENT_BYTES;
    let parts = gate::Parts {
        wasm: &bytes,
        manifest: sidecar.as_deref(),
        signature: None,
    };
    let admission = match gate::assess_in(parts, &policy, max, None) {
        Ok(admission) => admission,
        Err(error) => {
            eprintln!("refused ({}): {error}", error.code());
            return Ok(ExitCode::from(2));
        }
    };
    let consent = serde_json::to_value(Consent::of(&admission))?;
    if args.json {
        let mut shown = serde_json::to_value(&admission)?;
        shown["consent"] = consent.clone();
        println!("{}", serde_json::to_string_pretty(&shown)?);
    } else {
        print!(
            "{}",
            render(&admission, &consent, args.plugin.policy.is_some())
        );
    }
    // The refusal an install would meet, after the view that explains it.
    match gate::refuse_risks(&admission) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(error) => {
            eprintln!("refused ({}): {error}", error.code());
            Ok(ExitCode::from(2))
        }
    }
}

/// The human-readable report.
fn render(a: &Admission, consent: &Value, has_policy: bool) -> String {
    use std::fmt::Write;
    let m = &a.manifest;
    let mut out = String::new();
    let _ = writeln!(out, "plugin    {} {}", m.id, m.version);
    if !m.description.is_empty() {
        let _ = writeln!(out, "          {}", escape(&m.description));
    }
    let _ = writeln!(out, "sha256    {}", a.sha256);
    let _ = writeln!(out, "\nimports");
    for row in &a.imports {
        let class = match row.class {
            ImportClass::WasiBaseline => "WASI baseline".to_string(),
            ImportClass::ContractTypes => "contract types".to_string(),
            ImportClass::Capability(id) => format!("capability {id}"),
        };
        let _ = writeln!(out, "  {:<42} {class}", escape(&row.name));
    }
    let _ = writeln!(out, "\nexports");
    for name in &a.exports {
        let _ = writeln!(out, "  {}", escape(name));
    }
    let policy = if has_policy {
        "the given policy"
    } else {
        "no policy (deny all)"
    };
    let _ = writeln!(out, "\nunder {policy}");
    out.push_str(&super::consent::render(consent));
    let l = &a.policy.limits;
    let _ = writeln!(
        out,
        "\nlimits    memory {} MiB, deadline {} ms, {} table elements, {} instances, {} concurrent calls",
        l.memory_mib, l.deadline_ms, l.table_elements, l.instances, l.max_concurrent_calls
    );
    out
}
