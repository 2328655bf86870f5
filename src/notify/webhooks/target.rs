//! Which webhook URLs panocast will call: http(s) only, and (unless
//! `webhooks.allow_private_targets`) never an address on loopback, a private or
//! link-local network, unspecified, multicast or broadcast, so that webhooks cannot be
//! used to probe the internal network. Checked when an endpoint is registered and again
//! at every send through [`GuardedResolver`], so a name that later resolves to an
//! internal address (DNS rebinding) is refused too.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use url::{Host, Url};

/// How long registering an endpoint waits for its name to resolve.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);

/// Why a URL is not a webhook target.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    #[error("webhook target refused: not a URL ({0})")]
    NotUrl(String),
    #[error("webhook target refused: the scheme must be http or https, not {0}")]
    Scheme(String),
    #[error("webhook target refused: the URL has no host")]
    NoHost,
    #[error("webhook target refused: URLs with user info are not accepted")]
    UserInfo,
    #[error("webhook target refused: {0} is a loopback, private, link-local, unspecified, multicast or broadcast address")]
    Internal(IpAddr),
    #[error("webhook target refused: cannot resolve {0}")]
    Unresolved(String),
}

/// Whether `ip` is an address on the public internet (not internal in any of the ways
/// the module header lists). IPv4-mapped IPv6 addresses are judged as IPv4.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    let shared = a == 100 && (64..128).contains(&b); // 100.64.0.0/10, carrier-grade NAT
    let this_network = a == 0; // 0.0.0.0/8
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_broadcast()
        || shared
        || this_network)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    let unique_local = first & 0xfe00 == 0xfc00; // fc00::/7
    let link_local = first & 0xffc0 == 0xfe80; // fe80::/10
    !(ip.is_loopback() || ip.is_unspecified() || ip.is_multicast() || unique_local || link_local)
}

/// `url` parsed and checked for shape (scheme, host, no user info); the host is not
/// resolved here.
pub fn parse(url: &str) -> Result<Url, TargetError> {
    let parsed = Url::parse(url).map_err(|e| TargetError::NotUrl(e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(TargetError::Scheme(parsed.scheme().to_string()));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(TargetError::UserInfo);
    }
    if parsed.host().is_none() {
        return Err(TargetError::NoHost);
    }
    Ok(parsed)
}

/// The literal address of `url`'s host, if it is one.
pub fn literal_ip(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        Host::Domain(_) => None,
    }
}

/// Checks `url` as a target: its shape, and unless `allow_private`, every address its
/// host resolves to.
pub async fn check(url: &str, allow_private: bool) -> Result<Url, TargetError> {
    let parsed = parse(url)?;
    if allow_private {
        return Ok(parsed);
    }
    if let Some(ip) = literal_ip(&parsed) {
        return if is_public(ip) {
            Ok(parsed)
        } else {
            Err(TargetError::Internal(ip))
        };
    }
    let host = parsed.host_str().unwrap_or_default().to_string();
    let port = parsed.port_or_known_default().unwrap_or(80);
    let addrs = tokio::time::timeout(
        RESOLVE_TIMEOUT,
        tokio::net::lookup_host((host.as_str(), port)),
    )
    .await
    .map_err(|_| TargetError::Unresolved(host.clone()))?
    .map_err(|_| TargetError::Unresolved(host.clone()))?;
    public_addrs(addrs.collect(), &host)?;
    Ok(parsed)
}

/// `addrs` if there is one and every one is public.
fn public_addrs(addrs: Vec<SocketAddr>, host: &str) -> Result<Vec<SocketAddr>, TargetError> {
    if addrs.is_empty() {
        return Err(TargetError::Unresolved(host.to_string()));
    }
    if let Some(bad) = addrs.iter().find(|a| !is_public(a.ip())) {
        return Err(TargetError::Internal(bad.ip()));
    }
    Ok(addrs)
}

/// The resolver of the delivery client when private targets are not allowed: resolves
/// like the system does and refuses a name with any internal address.
pub struct GuardedResolver;

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let addrs = public_addrs(addrs, &host)?;
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn internal_addresses_are_not_public() {
        for s in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "100.64.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(ip(s)), "{s}");
        }
        for s in [
            "93.184.215.14",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(ip(s)), "{s}");
        }
    }

    #[test]
    fn shapes_other_than_http_urls_are_refused() {
        assert!(matches!(
            parse("ftp://example.com/"),
            Err(TargetError::Scheme(_))
        ));
        assert!(matches!(
            parse("file:///etc/passwd"),
            Err(TargetError::Scheme(_))
        ));
        assert!(matches!(parse("not a url"), Err(TargetError::NotUrl(_))));
        assert_eq!(
            parse("http://u:p@example.com/").unwrap_err(),
            TargetError::UserInfo
        );
        assert!(parse("https://example.com/hook").is_ok());
    }

    #[tokio::test]
    async fn loopback_is_refused_unless_allowed() {
        for url in [
            "http://127.0.0.1:9/hook",
            "http://[::1]/",
            "http://localhost:8080/",
        ] {
            assert!(
                matches!(check(url, false).await, Err(TargetError::Internal(_))),
                "{url}"
            );
            assert!(check(url, true).await.is_ok(), "{url}");
        }
        assert!(check("gopher://127.0.0.1/", true).await.is_err());
    }
}
