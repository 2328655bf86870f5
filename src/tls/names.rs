//! The names and addresses this machine is reached by on a LAN: what the `local-ca`
//! server certificate covers and which https:// URLs the banner prints for headsets.

use std::net::IpAddr;

/// The machine's host name without a domain, if it has one that is a valid DNS label.
pub fn host_name() -> Option<String> {
    let name = hostname::get().ok()?.into_string().ok()?;
    let label = name.split('.').next()?.to_ascii_lowercase();
    let valid = !label.is_empty()
        && label.len() <= 63
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    valid.then_some(label)
}

/// Non-loopback, non-link-local addresses of the interfaces that are up (link-local
/// addresses change and cannot be put in a URL without a zone).
pub fn lan_addresses() -> Vec<IpAddr> {
    let Ok(interfaces) = if_addrs::get_if_addrs() else {
        return Vec::new();
    };
    let mut ips: Vec<IpAddr> = interfaces
        .iter()
        .filter(|i| !i.is_loopback() && !i.is_link_local())
        .map(|i| i.ip())
        .collect();
    ips.sort();
    ips.dedup();
    ips
}

/// Every name the local server certificate is for, sorted: localhost, the loopback
/// addresses, the LAN addresses, `<host>` and `<host>.local` (mDNS), and `extra`.
pub fn certificate_names(extra: &[String]) -> Vec<String> {
    let mut names: Vec<String> = ["localhost", "127.0.0.1", "::1"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    names.extend(lan_addresses().iter().map(IpAddr::to_string));
    if let Some(host) = host_name() {
        names.push(format!("{host}.local"));
        names.push(host);
    }
    names.extend(extra.iter().map(|n| n.to_ascii_lowercase()));
    names.sort();
    names.dedup();
    names
}
