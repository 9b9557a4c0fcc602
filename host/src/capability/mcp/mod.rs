//! `mcp`: the plugin's exported tools, served to MCP clients by the host's gateway.
//! The manifest declares the tools (and may annotate them); `list-tools` runs once at
//! install and its checked result is the plugin's [`Catalog`]; the policy may expose a
//! subset; each client token is scoped to some plugins and tools ([`McpClient`]).

pub mod catalog;
pub mod clients;

pub use catalog::{Catalog, LiveCatalog, LiveTool, Offered, ToolProblem, ToolSpec};
pub use clients::{ClientProblem, McpClient, McpClientStore, NewClient};

use super::{Capability, CapabilityId, CapabilityInfo, Direction};
use regex::Regex;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

/// A plugin's own tool names: `^[a-z][a-z0-9_-]{0,62}$` (the WIT contract's rule).
static TOOL_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new("^[a-z][a-z0-9_-]{0,62}$").expect("valid regex"));

/// Longest title a manifest may give a tool.
pub const MAX_TITLE_BYTES: usize = 256;

/// The `mcp` capability.
pub struct Mcp;

/// Manifest `[capabilities.mcp]`: the tools the plugin offers, and per tool
/// (`[capabilities.mcp.tool.<name>]`) its annotations and output schema.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub tools: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tool: BTreeMap<String, ToolOptions>,
}

/// What a manifest may say about one tool. The hints follow the MCP specification's
/// annotations; the output schema, when given, binds the tool's results.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ToolOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destructive: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotent: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_world: Option<bool>,
    /// A JSON Schema the tool's result (JSON text) must match; it is then returned to
    /// clients as `structuredContent` too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<serde_json::Value>,
}

/// Policy `[…capabilities.mcp]`: which tools may be exposed (absent = all declared).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Allowed {
    pub tools: Option<Vec<String>>,
}

/// The tools that may be listed and called.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Grant {
    pub tools: BTreeSet<String>,
}

impl Capability for Mcp {
    const INFO: CapabilityInfo = CapabilityInfo {
        id: CapabilityId::Mcp,
        name: "mcp",
        key: "mcp",
        interface: "mcp",
        standard: &[],
        exports: &[],
        direction: Direction::Export,
    };

    type Request = Request;
    type Allowed = Allowed;
    type Grant = Grant;

    fn grant(request: &Request, allowed: &Allowed) -> Result<Grant, String> {
        let tools: BTreeSet<String> = request
            .tools
            .iter()
            .filter(|t| allowed.tools.as_ref().is_none_or(|a| a.contains(t)))
            .cloned()
            .collect();
        if tools.is_empty() {
            return Err("none of the declared tools is allowed by the policy".into());
        }
        Ok(Grant { tools })
    }

    fn check_request(request: &Request) -> Result<(), String> {
        let mut seen = BTreeSet::new();
        for name in &request.tools {
            if !TOOL_NAME.is_match(name) {
                return Err(format!(
                    "tool name `{}` must match ^[a-z][a-z0-9_-]{{0,62}}$",
                    crate::text::shown_name(name)
                ));
            }
            if !seen.insert(name) {
                return Err(format!("tool `{name}` is declared twice"));
            }
        }
        for (name, options) in &request.tool {
            if !seen.contains(name) {
                return Err(format!(
                    "[capabilities.mcp.tool.{}] describes a tool that `tools` does not declare",
                    crate::text::shown_name(name)
                ));
            }
            if options
                .title
                .as_ref()
                .is_some_and(|t| t.len() > MAX_TITLE_BYTES)
            {
                return Err(format!(
                    "tool `{name}`: `title` is longer than {MAX_TITLE_BYTES} bytes"
                ));
            }
            if let Some(schema) = &options.output_schema {
                if schema.get("type") != Some(&serde_json::Value::String("object".into())) {
                    return Err(format!(
                        "tool `{name}`: `output-schema` must have `type = \"object\"` (MCP \
                         clients take structured results as objects)"
                    ));
                }
                crate::json_schema::compile(schema)
                    .map_err(|problem| format!("tool `{name}`: `output-schema`: {problem}"))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::capability::{Decision, Grants, Requested};

    #[test]
    fn the_policy_may_expose_a_subset_of_the_declared_tools() {
        let requested: Requested = toml::from_str("[mcp]\ntools = [\"add\", \"rm\"]\n").unwrap();
        let subset = Grants::decide(
            &requested,
            &toml::from_str("[mcp]\ntools = [\"add\"]\n").unwrap(),
        );
        assert_eq!(subset.mcp.granted().unwrap().tools.len(), 1);
        let none = Grants::decide(&requested, &toml::from_str("[mcp]\ntools = []\n").unwrap());
        assert!(matches!(none.mcp, Decision::Denied { .. }));
    }

    #[test]
    fn tool_names_annotations_and_output_schemas_are_checked_in_the_manifest() {
        let check = |text: &str| toml::from_str::<Requested>(text).unwrap().check();
        assert!(
            check(
                "[mcp]\ntools = [\"add\"]\n[mcp.tool.add]\ntitle = \"Add\"\nread-only = true\n\
                 [mcp.tool.add.output-schema]\ntype = \"object\"\n"
            )
            .is_ok()
        );
        let bad_name = check("[mcp]\ntools = [\"Add Numbers\"]\n").unwrap_err();
        assert!(bad_name.contains("`Add Numbers` must match"), "{bad_name}");
        let twice = check("[mcp]\ntools = [\"a\", \"a\"]\n").unwrap_err();
        assert!(twice.contains("declared twice"), "{twice}");
        let stray = check("[mcp]\ntools = [\"a\"]\n[mcp.tool.b]\ntitle = \"B\"\n").unwrap_err();
        assert!(stray.contains("[capabilities.mcp.tool.b]"), "{stray}");
        for schema in [
            "type = 7",
            "type = \"number\"",
            "type = \"object\"\nrequired = 3",
        ] {
            let problem = check(&format!(
                "[mcp]\ntools = [\"a\"]\n[mcp.tool.a.output-schema]\n{schema}\n"
            ))
            .unwrap_err();
            assert!(problem.contains("`output-schema`"), "{schema}: {problem}");
        }
        assert!(
            toml::from_str::<Requested>("[mcp]\ntools = [\"a\"]\n[mcp.tool.a]\nreadonly = true\n")
                .is_err(),
            "unknown annotation keys are refused"
        );
    }
}
