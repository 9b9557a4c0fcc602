//! Addresses a plugin may never reach unless the operator allows their range: loopback,
//! private, CGNAT, link-local (incl. cloud metadata), unique-local, multicast, reserved,
//! unspecified; IPv4-mapped and NAT64 IPv6 addresses are judged by their IPv4 part.

use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const BLOCKED: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "::/96",
    "::1/128",
    "100::/64",
    "2001:db8::/32",
    "fc00::/7",
    "fe80::/10",
    "ff00::/8",
];

/// The IPv4 address carried by an IPv4-mapped (`::ffff:a.b.c.d`) or NAT64
/// (`64:ff9b::a.b.c.d`) IPv6 address.
fn embedded_v4(ip: &Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = ip.segments();
    (s[..6] == [0x64, 0xff9b, 0, 0, 0, 0]).then(|| {
        let [a, b] = s[6].to_be_bytes();
        let [c, d] = s[7].to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    })
}

/// Why `ip` is blocked (the blocked range), or `None` if it may be reached.
/// `allowed` lists ranges the operator explicitly opened.
pub fn blocked_range(ip: IpAddr, allowed: &[IpNet]) -> Option<String> {
    let ip = match ip {
        IpAddr::V6(v6) => embedded_v4(&v6).map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    if allowed.iter().any(|net| net.contains(&ip)) {
        return None;
    }
    BLOCKED
        .iter()
        .map(|text| text.parse::<IpNet>().expect("valid built-in range"))
        .find(|net| net.contains(&ip))
        .map(|net| net.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocked(text: &str) -> bool {
        blocked_range(text.parse().unwrap(), &[]).is_some()
    }

    #[test]
    fn blocks_private_and_special_ranges() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.20.0.1",
            "192.168.1.1",
            "100.64.0.1",
            "169.254.169.254",
            "0.0.0.0",
            "224.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::10.0.0.1",
        ] {
            assert!(blocked(ip), "{ip} should be blocked");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for ip in [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700::1111",
            "::ffff:93.184.216.34",
        ] {
            assert!(!blocked(ip), "{ip} should pass");
        }
    }

    #[test]
    fn operator_can_open_a_range() {
        let allowed = vec!["127.0.0.0/8".parse().unwrap()];
        assert_eq!(blocked_range("127.0.0.1".parse().unwrap(), &allowed), None);
        assert!(blocked_range("10.0.0.1".parse().unwrap(), &allowed).is_some());
    }
}
