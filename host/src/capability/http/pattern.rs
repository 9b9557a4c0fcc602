//! Host patterns: `scheme://host[:port]`, where host may start with `*.` (any subdomain,
//! not the bare domain) and port may be `*` (any). Without a port a pattern matches the
//! scheme's default port only.

use serde::{Deserialize, Serialize};
use url::Url;

/// One parsed pattern.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HostPattern {
    scheme: String,
    host: HostMatch,
    port: PortMatch,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostMatch {
    Exact(String),
    /// `*.suffix`: any host ending in `.suffix`.
    Subdomains(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PortMatch {
    Default,
    Exact(u16),
    Any,
}

impl TryFrom<String> for HostPattern {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        HostPattern::parse(&text)
    }
}

impl From<HostPattern> for String {
    fn from(pattern: HostPattern) -> String {
        pattern.to_string()
    }
}

impl std::fmt::Display for HostPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://", self.scheme)?;
        match &self.host {
            HostMatch::Exact(host) => write!(f, "{host}")?,
            HostMatch::Subdomains(suffix) => write!(f, "*.{suffix}")?,
        }
        match self.port {
            PortMatch::Default => Ok(()),
            PortMatch::Exact(port) => write!(f, ":{port}"),
            PortMatch::Any => write!(f, ":*"),
        }
    }
}

fn default_port(scheme: &str) -> u16 {
    if scheme == "https" { 443 } else { 80 }
}

impl HostPattern {
    /// Parse `text`, naming what is wrong with it.
    pub fn parse(text: &str) -> Result<HostPattern, String> {
        let bad = |why: &str| format!("host pattern `{text}` {why}; expected scheme://host[:port]");
        let (scheme, rest) = text.split_once("://").ok_or_else(|| bad("has no scheme"))?;
        if scheme != "http" && scheme != "https" {
            return Err(bad("must use http or https"));
        }
        if rest.contains(['/', '?', '#', '@']) {
            return Err(bad("must not have a path, query or credentials"));
        }
        let (host, port) = match rest.strip_prefix('[') {
            Some(v6) => match v6.split_once("]:") {
                Some((addr, port)) => (format!("[{addr}]"), Some(port)),
                None => (rest.to_string(), None),
            },
            None => match rest.rsplit_once(':') {
                Some((host, port)) => (host.to_string(), Some(port)),
                None => (rest.to_string(), None),
            },
        };
        let port = match port {
            None => PortMatch::Default,
            Some("*") => PortMatch::Any,
            Some(digits) => {
                PortMatch::Exact(digits.parse().map_err(|_| bad("has an invalid port"))?)
            }
        };
        let (wildcard, name) = match host.strip_prefix("*.") {
            Some(suffix) => (true, suffix),
            None => (false, host.as_str()),
        };
        if name.is_empty() || name.contains('*') {
            return Err(bad("has an invalid host"));
        }
        // Normalise the way URLs are normalised (case, IPv6 and IDN forms) so they compare.
        let name = Url::parse(&format!("{scheme}://{name}/"))
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .ok_or_else(|| bad("has an invalid host"))?;
        let host = if wildcard {
            HostMatch::Subdomains(name)
        } else {
            HostMatch::Exact(name)
        };
        Ok(HostPattern {
            scheme: scheme.to_string(),
            host,
            port,
        })
    }

    /// Whether `url` (already parsed) is covered by this pattern.
    pub fn matches(&self, url: &Url) -> bool {
        let Some(host) = url.host_str() else {
            return false;
        };
        let port = url.port_or_known_default().unwrap_or(0);
        url.scheme() == self.scheme
            && self.host_matches(&host.to_ascii_lowercase())
            && self.port_matches(port)
    }

    fn host_matches(&self, host: &str) -> bool {
        match &self.host {
            HostMatch::Exact(exact) => host == exact,
            HostMatch::Subdomains(suffix) => host
                .strip_suffix(suffix.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
        }
    }

    fn port_matches(&self, port: u16) -> bool {
        match self.port {
            PortMatch::Any => true,
            PortMatch::Default => port == default_port(&self.scheme),
            PortMatch::Exact(exact) => port == exact,
        }
    }

    /// Whether it covers many hosts (`*.` every subdomain of a domain).
    pub fn is_wildcard(&self) -> bool {
        matches!(self.host, HostMatch::Subdomains(_))
    }

    /// Whether some URL could match both patterns (used to intersect manifest and policy).
    pub fn overlaps(&self, other: &HostPattern) -> bool {
        let ports = match (self.port, other.port) {
            (PortMatch::Any, _) | (_, PortMatch::Any) => true,
            (a, b) => self.effective_port(a) == other.effective_port(b),
        };
        let hosts = match (&self.host, &other.host) {
            (HostMatch::Exact(a), HostMatch::Exact(b)) => a == b,
            (HostMatch::Exact(h), HostMatch::Subdomains(_)) => other.host_matches(h),
            (HostMatch::Subdomains(_), HostMatch::Exact(h)) => self.host_matches(h),
            (HostMatch::Subdomains(a), HostMatch::Subdomains(b)) => {
                a == b || a.ends_with(&format!(".{b}")) || b.ends_with(&format!(".{a}"))
            }
        };
        self.scheme == other.scheme && ports && hosts
    }

    fn effective_port(&self, port: PortMatch) -> Option<u16> {
        match port {
            PortMatch::Default => Some(default_port(&self.scheme)),
            PortMatch::Exact(p) => Some(p),
            PortMatch::Any => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn exact_host_default_port() {
        let p = HostPattern::parse("https://api.example.com").unwrap();
        assert!(p.matches(&url("https://api.example.com/x?y")));
        assert!(p.matches(&url("https://API.example.com:443/")));
        assert!(!p.matches(&url("https://api.example.com:8443/")));
        assert!(!p.matches(&url("http://api.example.com/")));
        assert!(!p.matches(&url("https://api.example.com.evil.net/")));
    }

    #[test]
    fn subdomain_wildcard_excludes_bare_domain_and_lookalikes() {
        let p = HostPattern::parse("https://*.example.org").unwrap();
        assert!(p.matches(&url("https://a.example.org/")));
        assert!(p.matches(&url("https://a.b.example.org/")));
        assert!(!p.matches(&url("https://example.org/")));
        assert!(!p.matches(&url("https://badexample.org/")));
    }

    #[test]
    fn ip_literals_are_normalised_like_urls() {
        let p = HostPattern::parse("http://[::FFFF:127.0.0.1]:*").unwrap();
        assert!(p.matches(&url("http://[::ffff:7f00:1]:80/")));
        assert_eq!(p.to_string(), "http://[::ffff:7f00:1]:*");
    }

    #[test]
    fn port_wildcard_and_explicit_port() {
        assert!(
            HostPattern::parse("http://h.test:*")
                .unwrap()
                .matches(&url("http://h.test:9999/"))
        );
        let p = HostPattern::parse("http://h.test:8080").unwrap();
        assert!(p.matches(&url("http://h.test:8080/")));
        assert!(!p.matches(&url("http://h.test/")));
    }

    #[test]
    fn invalid_patterns_are_named() {
        for bad in [
            "example.com",
            "ftp://x",
            "https://x/path",
            "https://",
            "https://a*b.c",
            "https://x:port",
            "https://u@x",
        ] {
            let error = HostPattern::parse(bad).unwrap_err();
            assert!(error.contains(bad), "{error}");
        }
    }

    #[test]
    fn overlap_is_symmetric_and_respects_ports() {
        let wild = HostPattern::parse("https://*.example.org").unwrap();
        let exact = HostPattern::parse("https://a.example.org").unwrap();
        let other_port = HostPattern::parse("https://a.example.org:8443").unwrap();
        assert!(wild.overlaps(&exact) && exact.overlaps(&wild));
        assert!(!exact.overlaps(&other_port));
        assert!(
            !HostPattern::parse("https://example.org")
                .unwrap()
                .overlaps(&wild)
        );
    }
}
