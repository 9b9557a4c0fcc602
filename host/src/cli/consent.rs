//! Renders the consent view (`crate::consent::Consent`, as JSON) for a person: each
//! capability as requested, allowed and granted, then the high-risk grants. Shared by
//! `capstan inspect` (computed locally) and `capstan plugin show` (fetched from a host).

use crate::text::escape;
use serde_json::Value;
use std::fmt::Write;

/// The report; every plugin- or policy-supplied string is escaped.
pub fn render(consent: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "grants (requested → allowed by the policy → what it gets)"
    );
    for row in consent["capabilities"].as_array().into_iter().flatten() {
        let decision = field(&row["decision"]);
        let _ = match row["reason"].as_str() {
            Some(reason) => writeln!(
                out,
                "  {:<16} {decision}: {}",
                field(&row["capability"]),
                escape(reason)
            ),
            None => writeln!(out, "  {:<16} {decision}", field(&row["capability"])),
        };
        for (label, key) in [
            ("requests", "requested"),
            ("allowed", "allowed"),
            ("gets", "grant"),
        ] {
            if !row[key].is_null() {
                let _ = writeln!(out, "      {label:<9} {}", escape(&row[key].to_string()));
            }
        }
    }
    let risks = consent["risks"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    if risks.is_empty() {
        let _ = writeln!(out, "\nrisks     none flagged");
        return out;
    }
    let _ = writeln!(out, "\nrisks");
    for risk in risks {
        let refused = if risk["refused"] == Value::Bool(true) {
            " [refused by the policy's refuse_risks]"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "  ! {}{refused}: {}",
            field(&risk["risk"]),
            escape(risk["detail"].as_str().unwrap_or("-"))
        );
    }
    out
}

fn field(value: &Value) -> String {
    escape(value.as_str().unwrap_or("-")).into_owned()
}
