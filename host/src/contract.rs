//! The WIT contract this host implements, and the rule for which plugin versions it accepts.

use semver::Version;

/// WIT package of the contract.
pub const PACKAGE: &str = "capstan:plugin";

/// Version of `wit/` this host was built from.
pub const VERSION: &str = "0.1.0";

/// The host's contract version, parsed.
pub fn host_version() -> Version {
    Version::parse(VERSION).expect("contract VERSION is valid semver")
}

/// Whether a plugin built against `plugin` can run here: the major must match and the
/// plugin may not be built for a newer minor than the host implements.
pub fn is_compatible(plugin: &Version) -> bool {
    let host = host_version();
    plugin.major == host.major && plugin.minor <= host.minor
}

/// Splits `capstan:plugin/kv@0.1.0` into (`kv`, version); `None` for other packages.
pub fn parse_interface(name: &str) -> Option<(&str, Option<&str>)> {
    let rest = name.strip_prefix(PACKAGE)?.strip_prefix('/')?;
    Some(match rest.split_once('@') {
        Some((iface, version)) => (iface, Some(version)),
        None => (rest, None),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_minor_and_older_patch_are_compatible() {
        assert!(is_compatible(&Version::parse("0.1.0").unwrap()));
        assert!(is_compatible(&Version::parse("0.1.9").unwrap()));
    }

    #[test]
    fn newer_minor_and_other_major_are_not() {
        assert!(!is_compatible(&Version::parse("0.2.0").unwrap()));
        assert!(!is_compatible(&Version::parse("1.1.0").unwrap()));
    }

    #[test]
    fn parses_interface_names() {
        assert_eq!(
            parse_interface("capstan:plugin/kv@0.1.0"),
            Some(("kv", Some("0.1.0")))
        );
        assert_eq!(parse_interface("capstan:plugin/kv"), Some(("kv", None)));
        assert_eq!(parse_interface("wasi:io/streams@0.2.6"), None);
    }
}
