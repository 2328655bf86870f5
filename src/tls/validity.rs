//! What a PEM certificate says about itself that renewal decisions need: its validity
//! and the names it covers.

use std::net::IpAddr;
use std::path::Path;

use time::OffsetDateTime;
use x509_parser::extensions::GeneralName;

/// Whether the server certificate in `path` has more than a third of its lifetime
/// left and covers every one of `names`.
pub fn server_is_current(path: &Path, names: &[String], now: OffsetDateTime) -> bool {
    let Ok(pem) = std::fs::read_to_string(path) else {
        return false;
    };
    let Some((begin, end, covered)) = validity_and_names(&pem) else {
        return false;
    };
    let fresh = end - now > (end - begin) / 3;
    fresh && names.iter().all(|n| covered.contains(n))
}

pub fn not_after(pem: &str) -> Option<OffsetDateTime> {
    validity_and_names(pem).map(|(_, end, _)| end)
}

/// notBefore, notAfter and the subject alternative names (DNS names and addresses as
/// text) of a PEM certificate.
pub fn validity_and_names(pem: &str) -> Option<(OffsetDateTime, OffsetDateTime, Vec<String>)> {
    let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).ok()?;
    let cert = block.parse_x509().ok()?;
    let validity = cert.validity();
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(dns) => names.push(dns.to_string()),
                GeneralName::IPAddress(bytes) => {
                    let ip = match bytes.len() {
                        4 => <[u8; 4]>::try_from(*bytes).ok().map(IpAddr::from),
                        16 => <[u8; 16]>::try_from(*bytes).ok().map(IpAddr::from),
                        _ => None,
                    };
                    names.extend(ip.map(|ip| ip.to_string()));
                }
                _ => {}
            }
        }
    }
    Some((
        validity.not_before.to_datetime(),
        validity.not_after.to_datetime(),
        names,
    ))
}
