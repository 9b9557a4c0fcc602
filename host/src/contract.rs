//! The WIT contract this host implements, and the rule for which plugin versions it accepts.

use semver::Version;

/// WIT package of the contract.
pub const PACKAGE: &str = "capstan:plugin";

/// Version of `wit/` this host was built from.
pub const VERSION: &str = "0.2.0";

/// The host's contract version, parsed.
pub fn host_version() -> Version {
    Version::parse(VERSION).expect("contract VERSION is valid semver")
}

/// Whether a plugin built against `plugin` can run here, by semver as wasmtime's linker
/// reads it: from 1.0 the major must match and the plugin may not be built for a newer
/// minor; before 1.0 the minor is the compatibility track and must match.
pub fn is_compatible(plugin: &Version) -> bool {
    let host = host_version();
    match host.major {
        0 => plugin.major == 0 && plugin.minor == host.minor,
        major => plugin.major == major && plugin.minor <= host.minor,
    }
}

/// Splits `capstan:plugin/kv@0.2.0` into (`kv`, version); `None` for other packages.
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
    fn same_minor_and_any_patch_are_compatible() {
        assert!(is_compatible(&Version::parse("0.2.0").unwrap()));
        assert!(is_compatible(&Version::parse("0.2.9").unwrap()));
    }

    #[test]
    fn another_minor_before_one_and_another_major_are_not() {
        for version in ["0.1.0", "0.3.0", "1.2.0"] {
            assert!(
                !is_compatible(&Version::parse(version).unwrap()),
                "{version}"
            );
        }
    }

    #[test]
    fn parses_interface_names() {
        assert_eq!(
            parse_interface("capstan:plugin/kv@0.2.0"),
            Some(("kv", Some("0.2.0")))
        );
        assert_eq!(parse_interface("capstan:plugin/kv"), Some(("kv", None)));
        assert_eq!(parse_interface("wasi:io/streams@0.2.6"), None);
    }
}
