//! Grants that, alone or together, amount to handing a plugin more than its job needs:
//! each found from what the plugin would get (manifest ∩ policy), named by a stable id and
//! explained in one sentence an operator can act on.

use crate::capability::{CapabilityId, Grants};
use crate::policy::Effective;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A kv or SQL quota at least this large is treated as unbounded: one plugin could fill a
/// disk other plugins and the host share.
pub const LARGE_STORAGE_BYTES: u64 = 1024 * 1024 * 1024;

/// A job that may run more often than this keeps a plugin busy without a caller.
pub const TIGHT_SCHEDULE: Duration = Duration::from_secs(60);

/// The kinds of high-risk grant, as written in a policy's `refuse_risks`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum RiskId {
    /// Secrets and outbound HTTP together: a secret's value can leave the host.
    Exfiltration,
    /// Outbound HTTP to every subdomain of a domain, on both sides of the intersection.
    HttpWildcard,
    /// Outbound HTTP into ranges that are blocked unless the policy opens them.
    PrivateNetwork,
    /// A kv or SQL quota of [`LARGE_STORAGE_BYTES`] or more.
    UnboundedStorage,
    /// MCP tools exposed without the policy naming them: every declared tool, including
    /// the ones a later upgrade adds, reaches every client scoped to the plugin.
    ToolsUnlisted,
    /// A job that runs more often than once a minute.
    TightSchedule,
}

impl RiskId {
    /// Every kind, in the order they are reported.
    pub const ALL: [RiskId; 6] = [
        RiskId::Exfiltration,
        RiskId::HttpWildcard,
        RiskId::PrivateNetwork,
        RiskId::UnboundedStorage,
        RiskId::ToolsUnlisted,
        RiskId::TightSchedule,
    ];

    /// The id as written in policies and shown in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            RiskId::Exfiltration => "exfiltration",
            RiskId::HttpWildcard => "http-wildcard",
            RiskId::PrivateNetwork => "private-network",
            RiskId::UnboundedStorage => "unbounded-storage",
            RiskId::ToolsUnlisted => "tools-unlisted",
            RiskId::TightSchedule => "tight-schedule",
        }
    }
}

impl std::fmt::Display for RiskId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One high-risk grant found for a plugin.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Risk {
    pub risk: RiskId,
    /// The capabilities whose grants make it up.
    pub capabilities: Vec<CapabilityId>,
    /// What the plugin could do, in one sentence naming the grants.
    pub detail: String,
    /// Whether the policy's `refuse_risks` lists it (an install would be refused).
    pub refused: bool,
}

/// Every high-risk grant in `grants` under `policy`, in [`RiskId::ALL`] order.
pub fn risks(grants: &Grants, policy: &Effective) -> Vec<Risk> {
    let found = [
        exfiltration(grants),
        http_wildcard(grants),
        private_network(grants),
        unbounded_storage(grants),
        tools_unlisted(grants, policy),
        tight_schedule(grants),
    ];
    found
        .into_iter()
        .flatten()
        .map(|(risk, capabilities, detail)| Risk {
            risk,
            capabilities,
            detail,
            refused: policy.refuse_risks.contains(&risk),
        })
        .collect()
}

type Found = Option<(RiskId, Vec<CapabilityId>, String)>;

fn list<T: std::fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    items
        .into_iter()
        .map(|item| format!("`{item}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn exfiltration(grants: &Grants) -> Found {
    let secrets = grants.secrets.granted()?;
    let http = grants.http.granted()?;
    Some((
        RiskId::Exfiltration,
        vec![CapabilityId::Secrets, CapabilityId::Http],
        format!(
            "it can read the secrets {} and send requests to {}: a secret's value can leave the host",
            list(&secrets.names),
            list(http.reachable())
        ),
    ))
}

fn http_wildcard(grants: &Grants) -> Found {
    let wildcards = grants.http.granted()?.wildcards();
    (!wildcards.is_empty()).then(|| {
        (
            RiskId::HttpWildcard,
            vec![CapabilityId::Http],
            format!(
                "it can send requests to every subdomain matched by {}, including hosts nobody has reviewed",
                list(wildcards)
            ),
        )
    })
}

fn private_network(grants: &Grants) -> Found {
    let http = grants.http.granted()?;
    (!http.allow_networks.is_empty()).then(|| {
        (
            RiskId::PrivateNetwork,
            vec![CapabilityId::Http],
            format!(
                "the policy opens {} to it: requests can reach internal services that are otherwise blocked",
                list(&http.allow_networks)
            ),
        )
    })
}

fn unbounded_storage(grants: &Grants) -> Found {
    let mut large = Vec::new();
    if let Some(kv) = grants.kv.granted()
        && kv.quota.max_bytes >= LARGE_STORAGE_BYTES
    {
        large.push((CapabilityId::Kv, kv.quota.max_bytes));
    }
    if let Some(sql) = grants.sql.granted()
        && sql.max_bytes >= LARGE_STORAGE_BYTES
    {
        large.push((CapabilityId::Sql, sql.max_bytes));
    }
    (!large.is_empty()).then(|| {
        let quotas = large
            .iter()
            .map(|(id, bytes)| format!("{} {} MiB", id.name(), bytes / (1024 * 1024)))
            .collect::<Vec<_>>()
            .join(" and ");
        (
            RiskId::UnboundedStorage,
            large.iter().map(|(id, _)| *id).collect(),
            format!(
                "it may store {quotas}: enough to fill the disk the host and other plugins share"
            ),
        )
    })
}

fn tools_unlisted(grants: &Grants, policy: &Effective) -> Found {
    let tools = &grants.mcp.granted()?.tools;
    let listed = policy
        .capabilities
        .mcp
        .as_ref()
        .is_some_and(|allowed| allowed.tools.is_some());
    (!listed).then(|| {
        (
            RiskId::ToolsUnlisted,
            vec![CapabilityId::Mcp],
            format!(
                "the policy exposes its tools without naming them: {} and any tool a later version adds reach every MCP client scoped to it or to `*`",
                list(tools)
            ),
        )
    })
}

fn tight_schedule(grants: &Grants) -> Found {
    let jobs = &grants.jobs.granted()?.jobs;
    let tight: Vec<String> = jobs
        .iter()
        .filter(|(_, job)| job.schedule.shortest_gap() < TIGHT_SCHEDULE)
        .map(|(name, job)| {
            format!(
                "`{name}` every {}",
                humantime::format_duration(job.schedule.shortest_gap())
            )
        })
        .collect();
    (!tight.is_empty()).then(|| {
        (
            RiskId::TightSchedule,
            vec![CapabilityId::Jobs],
            format!(
                "it runs {} without any caller: more often than once a minute, for as long as it is installed",
                tight.join(", ")
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Manifest;
    use crate::policy::Policy;

    /// The risks of a plugin whose manifest asks for `wants` under a policy granting
    /// `policy` in `[defaults]`.
    fn found(wants: &str, policy: &str) -> Vec<Risk> {
        let manifest =
            Manifest::parse(format!("id = \"p\"\nversion = \"1.0.0\"\n{wants}").as_bytes())
                .unwrap();
        let effective = Policy::parse(policy).unwrap().for_plugin("p");
        let grants = Grants::decide(&manifest.capabilities, &effective.capabilities);
        risks(&grants, &effective)
    }

    fn ids(risks: &[Risk]) -> Vec<RiskId> {
        risks.iter().map(|r| r.risk).collect()
    }

    const SECRETS_AND_HTTP: &str = "[capabilities.secrets]\nnames = [\"token\"]\n[capabilities.http]\nhosts = [\"https://api.example.com\"]\n";

    #[test]
    fn secrets_with_outbound_http_is_exfiltration_and_either_alone_is_not() {
        let both = found(
            SECRETS_AND_HTTP,
            "[defaults.capabilities.secrets]\nnames = [\"token\"]\n[defaults.capabilities.http]\nhosts = [\"https://api.example.com\"]\n",
        );
        assert_eq!(ids(&both), [RiskId::Exfiltration]);
        assert_eq!(
            both[0].capabilities,
            [CapabilityId::Secrets, CapabilityId::Http]
        );
        assert!(both[0].detail.contains("`token`"), "{}", both[0].detail);
        assert!(
            both[0].detail.contains("`https://api.example.com`"),
            "{}",
            both[0].detail
        );
        assert!(!both[0].refused);

        let secrets_only = found(
            SECRETS_AND_HTTP,
            "[defaults.capabilities.secrets]\nnames = [\"token\"]\n",
        );
        assert!(secrets_only.is_empty(), "{secrets_only:?}");
        let http_only = found(
            SECRETS_AND_HTTP,
            "[defaults.capabilities.http]\nhosts = [\"https://api.example.com\"]\n",
        );
        assert!(http_only.is_empty(), "{http_only:?}");
    }

    #[test]
    fn a_wildcard_is_flagged_only_when_both_sides_keep_it() {
        let wants = "[capabilities.http]\nhosts = [\"https://*.example.org\"]\n";
        let wide = found(
            wants,
            "[defaults.capabilities.http]\nhosts = [\"https://*.example.org\"]\n",
        );
        assert_eq!(ids(&wide), [RiskId::HttpWildcard]);
        assert!(wide[0].detail.contains("`https://*.example.org`"));
        let narrowed = found(
            wants,
            "[defaults.capabilities.http]\nhosts = [\"https://api.example.org\"]\n",
        );
        assert!(
            narrowed.is_empty(),
            "the policy names one host: {narrowed:?}"
        );
    }

    #[test]
    fn an_opened_private_range_is_flagged_with_the_range() {
        let risks = found(
            "[capabilities.http]\nhosts = [\"http://svc.internal\"]\n",
            "[defaults.capabilities.http]\nhosts = [\"http://svc.internal\"]\nallow_networks = [\"10.20.0.0/16\"]\n",
        );
        assert_eq!(ids(&risks), [RiskId::PrivateNetwork]);
        assert!(risks[0].detail.contains("`10.20.0.0/16`"));
    }

    #[test]
    fn storage_quotas_of_a_gibibyte_or_more_are_unbounded_and_smaller_ones_are_not() {
        let big = found(
            "[capabilities.kv]\n[capabilities.sql]\ndialect = \"portable\"\n",
            "[defaults.capabilities.kv]\nmax_bytes = 2147483648\n[defaults.capabilities.sql]\nmax_bytes = 1073741824\n",
        );
        assert_eq!(ids(&big), [RiskId::UnboundedStorage]);
        assert_eq!(big[0].capabilities, [CapabilityId::Kv, CapabilityId::Sql]);
        assert!(big[0].detail.contains("2048 MiB"), "{}", big[0].detail);
        let asked_less = found(
            "[capabilities.kv]\nmax_bytes = 1048576\n",
            "[defaults.capabilities.kv]\nmax_bytes = 2147483648\n",
        );
        assert!(
            asked_less.is_empty(),
            "the manifest's smaller quota is what it gets: {asked_less:?}"
        );
        let defaults = found(
            "[capabilities.kv]\n[capabilities.sql]\ndialect = \"portable\"\n",
            "[defaults.capabilities.kv]\n[defaults.capabilities.sql]\n",
        );
        assert!(defaults.is_empty(), "{defaults:?}");
    }

    #[test]
    fn tools_the_policy_does_not_name_are_flagged_and_named_ones_are_not() {
        let wants = "[capabilities.mcp]\ntools = [\"add\", \"wipe\"]\n";
        let open = found(wants, "[defaults.capabilities.mcp]\n");
        assert_eq!(ids(&open), [RiskId::ToolsUnlisted]);
        assert!(
            open[0].detail.contains("`add`, `wipe`"),
            "{}",
            open[0].detail
        );
        let listed = found(wants, "[defaults.capabilities.mcp]\ntools = [\"add\"]\n");
        assert!(listed.is_empty(), "{listed:?}");
    }

    #[test]
    fn a_job_more_often_than_once_a_minute_is_a_tight_schedule() {
        let policy = "[defaults.capabilities.jobs]\n";
        let tight = found("[capabilities.jobs.pulse]\nevery = \"2s\"\n", policy);
        assert_eq!(ids(&tight), [RiskId::TightSchedule]);
        assert!(
            tight[0].detail.contains("`pulse` every 2s"),
            "{}",
            tight[0].detail
        );
        let minutely = found("[capabilities.jobs.tick]\ncron = \"* * * * *\"\n", policy);
        assert!(minutely.is_empty(), "{minutely:?}");
    }

    #[test]
    fn denied_capabilities_carry_no_risk() {
        assert!(found(SECRETS_AND_HTTP, "").is_empty());
    }

    #[test]
    fn refuse_risks_marks_a_risk_refused_and_a_plugins_own_list_replaces_the_defaults() {
        let grants = "[defaults.capabilities.secrets]\nnames = [\"token\"]\n[defaults.capabilities.http]\nhosts = [\"https://api.example.com\"]\n";
        let refused = found(
            SECRETS_AND_HTTP,
            &format!("{grants}[defaults]\nrefuse_risks = [\"exfiltration\"]\n"),
        );
        assert!(refused[0].refused);
        let excepted = found(
            SECRETS_AND_HTTP,
            &format!(
                "{grants}[defaults]\nrefuse_risks = [\"exfiltration\"]\n[plugins.p]\nrefuse_risks = []\n"
            ),
        );
        assert!(!excepted[0].refused, "the plugin's own empty list wins");
    }

    #[test]
    fn an_unknown_risk_in_the_policy_is_named() {
        let error = Policy::parse("[defaults]\nrefuse_risks = [\"exfil\"]\n").unwrap_err();
        assert!(error.to_string().contains("exfil"), "{error}");
        for id in RiskId::ALL {
            let text = format!("[defaults]\nrefuse_risks = [\"{id}\"]\n");
            assert!(Policy::parse(&text).is_ok(), "{id} parses");
        }
    }
}
