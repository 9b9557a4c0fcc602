//! What the plugin under test declares, from its `capstan.toml`.

use super::Capability;
use std::collections::BTreeSet;

/// Default kv quota on the host when neither manifest nor policy names one.
const DEFAULT_MAX_KEYS: u64 = 10_000;
const DEFAULT_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// The declarations the doubles enforce.
pub(crate) struct Declared {
    pub id: String,
    kv: bool,
    http: bool,
    secrets_table: bool,
    pub secrets: BTreeSet<String>,
    hosts: Vec<String>,
    pub max_keys: u64,
    pub max_bytes: u64,
    config: bool,
    jobs: bool,
    sql: bool,
    events: bool,
    publish: Vec<String>,
    subscribe: Vec<String>,
    request: Vec<String>,
    /// The SQL migrations, in name order.
    pub migrations: Vec<(String, String)>,
    /// Each settings property's `default`.
    pub config_defaults: serde_json::Map<String, serde_json::Value>,
}

impl Declared {
    /// The crate's `capstan.toml`; with none, everything counts as declared.
    pub fn load() -> Declared {
        let path = std::env::var("CARGO_MANIFEST_DIR")
            .map(|dir| std::path::Path::new(&dir).join("capstan.toml"));
        match path.ok().and_then(|p| std::fs::read_to_string(p).ok()) {
            Some(text) => Declared::parse(&text),
            None => Declared::everything(),
        }
    }

    fn everything() -> Declared {
        Declared {
            id: "plugin".into(),
            kv: true,
            http: true,
            secrets_table: true,
            secrets: BTreeSet::new(),
            hosts: vec!["*".into()],
            max_keys: DEFAULT_MAX_KEYS,
            max_bytes: DEFAULT_MAX_BYTES,
            config: true,
            jobs: true,
            sql: true,
            events: true,
            publish: vec![">".into()],
            subscribe: vec![">".into()],
            request: vec![">".into()],
            migrations: Vec::new(),
            config_defaults: Default::default(),
        }
    }

    /// Declarations read from manifest text (which the host would also validate).
    pub fn parse(text: &str) -> Declared {
        let manifest: toml::Table = toml::from_str(text).unwrap_or_else(|e| {
            panic!("capstan_guest::testing: the manifest is not valid TOML: {e}")
        });
        let table = |key: &str| {
            manifest
                .get("capabilities")
                .and_then(|c| c.get(key))
                .and_then(toml::Value::as_table)
                .cloned()
        };
        let strings = |table: &Option<toml::Table>, key: &str| -> Vec<String> {
            table
                .as_ref()
                .and_then(|t| t.get(key))
                .and_then(toml::Value::as_array)
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        let kv = table("kv");
        let http = table("http");
        let secrets = table("secrets");
        let config = table("config");
        let jobs = table("jobs");
        let sql = table("sql");
        let events = table("events");
        let migrations = migrations_of(sql.as_ref());
        let config_defaults = config
            .as_ref()
            .and_then(|t| t.get("schema"))
            .and_then(|schema| schema.get("properties"))
            .and_then(toml::Value::as_table)
            .map(|properties| {
                properties
                    .iter()
                    .filter_map(|(key, property)| {
                        let default = property.get("default")?.clone();
                        Some((key.clone(), serde_json::to_value(default).ok()?))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let number = |key: &str, default: u64| {
            kv.as_ref()
                .and_then(|t| t.get(key))
                .and_then(toml::Value::as_integer)
                .map_or(default, |n| n.max(0) as u64)
        };
        Declared {
            id: manifest
                .get("id")
                .and_then(toml::Value::as_str)
                .unwrap_or("plugin")
                .to_string(),
            max_keys: number("max_keys", DEFAULT_MAX_KEYS),
            max_bytes: number("max_bytes", DEFAULT_MAX_BYTES),
            kv: kv.is_some(),
            hosts: strings(&http, "hosts"),
            http: http.is_some(),
            secrets: strings(&secrets, "names").into_iter().collect(),
            secrets_table: secrets.is_some(),
            config: config.is_some(),
            jobs: jobs.is_some(),
            sql: sql.is_some(),
            publish: strings(&events, "publish"),
            subscribe: strings(&events, "subscribe"),
            request: strings(&events, "request"),
            events: events.is_some(),
            migrations,
            config_defaults,
        }
    }

    pub fn declares(&self, capability: Capability) -> bool {
        match capability {
            Capability::Kv => self.kv,
            Capability::Http => self.http,
            Capability::Secrets => self.secrets_table,
            Capability::Config => self.config,
            Capability::Jobs => self.jobs,
            Capability::Sql => self.sql,
            Capability::Events => self.events,
        }
    }

    /// Whether a declared `publish` pattern selects `topic`.
    pub fn publishes(&self, topic: &str) -> bool {
        self.publish.iter().any(|p| topic_matches(p, topic))
    }

    /// Whether a declared `subscribe` pattern selects `topic`.
    pub fn subscribes(&self, topic: &str) -> bool {
        self.subscribe.iter().any(|p| topic_matches(p, topic))
    }

    /// Whether a declared `request` pattern selects `kind`.
    pub fn requests(&self, kind: &str) -> bool {
        self.request.iter().any(|p| topic_matches(p, kind))
    }

    /// Whether `url` falls under a declared host pattern (`scheme://host[:port]`, with
    /// `*.` for subdomains and `:*` for any port).
    pub fn allows_url(&self, url: &str) -> bool {
        let Some((scheme, rest)) = url.split_once("://") else {
            return false;
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        self.hosts.iter().any(|pattern| {
            if pattern == "*" {
                return true;
            }
            let Some((p_scheme, p_rest)) = pattern.split_once("://") else {
                return false;
            };
            let (p_host, p_port) = match p_rest.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (p_rest, None),
            };
            let host_ok = match p_host.strip_prefix("*.") {
                Some(domain) => host.ends_with(&format!(".{domain}")),
                None => host.eq_ignore_ascii_case(p_host),
            };
            let port_ok = p_port == Some("*") || p_port == port;
            p_scheme == scheme && host_ok && port_ok
        })
    }
}

/// Whether topic pattern `pattern` (`*` one segment, a final `>` the rest) selects `topic`.
fn topic_matches(pattern: &str, topic: &str) -> bool {
    let mut parts = topic.split('.');
    for segment in pattern.split('.') {
        match (segment, parts.next()) {
            (">", Some(_)) => return true,
            ("*", Some(_)) => {}
            (literal, Some(part)) if literal == part => {}
            _ => return false,
        }
    }
    parts.next().is_none()
}

/// The migrations a plugin carries: `[capabilities.sql.migrations]` if the manifest has
/// them, else the crate's `migrations/*.sql` (what the export macro embeds), by name.
fn migrations_of(sql: Option<&toml::Table>) -> Vec<(String, String)> {
    let inline = sql
        .and_then(|t| t.get("migrations"))
        .and_then(toml::Value::as_table)
        .map(|t| {
            t.iter()
                .filter_map(|(name, text)| Some((name.clone(), text.as_str()?.to_string())))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    if !inline.is_empty() || sql.is_none() {
        return inline;
    }
    let dir = std::env::var("CARGO_MANIFEST_DIR")
        .map(|dir| std::path::Path::new(&dir).join("migrations"))
        .ok();
    let mut files: Vec<(String, String)> = dir
        .and_then(|dir| std::fs::read_dir(dir).ok())
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|entry| entry.path().extension().is_some_and(|e| e == "sql"))
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            Some((name, std::fs::read_to_string(entry.path()).ok()?))
        })
        .collect();
    files.sort();
    files
}
