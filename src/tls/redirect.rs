//! Plain HTTP while TLS is on: clients on this machine keep it (players on localhost
//! are a secure context already, and every local tool speaks it); everyone else is sent
//! to HTTPS with 308 (method and body kept, RFC 9110 §15.4.9). The CA download and the
//! page explaining it stay on HTTP: a device has to fetch the CA before it trusts the
//! HTTPS certificate.

use std::net::IpAddr;

use axum::http::{header, HeaderValue, Request, Response, StatusCode, Uri};

/// Paths plain HTTP serves to every client.
const PLAIN_PATHS: [&str; 2] = ["/ca.crt", "/tls"];

/// Where a plain HTTP request from `peer` is sent instead, if anywhere: the same host
/// (from `Host`, without its port) on `https_port`, same path and query.
pub fn target(peer: IpAddr, host: Option<&str>, uri: &Uri, https_port: u16) -> Option<String> {
    if peer.is_loopback() || peer.to_canonical().is_loopback() {
        return None;
    }
    let path = uri.path();
    if PLAIN_PATHS.contains(&path) || path.starts_with("/.well-known/acme-challenge/") {
        return None;
    }
    let host = host_without_port(host?)?;
    let path_and_query = uri.path_and_query().map_or("/", |pq| pq.as_str());
    Some(if https_port == 443 {
        format!("https://{host}{path_and_query}")
    } else {
        format!("https://{host}:{https_port}{path_and_query}")
    })
}

/// `example.com:8080` → `example.com`, `[fe80::1]:8080` → `[fe80::1]`; `None` for a
/// value that is not a plain host (which could put anything in a `Location`).
fn host_without_port(host: &str) -> Option<String> {
    let authority: axum::http::uri::Authority = host.parse().ok()?;
    let name = authority.host();
    (!name.is_empty() && !authority.as_str().contains('@')).then(|| name.to_string())
}

/// The 308 answer for [`target`].
pub fn response<B: Default>(location: &str) -> Response<B> {
    let mut response = Response::new(B::default());
    *response.status_mut() = StatusCode::PERMANENT_REDIRECT;
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// The `Host` of an HTTP/1 request, or the authority of an HTTP/2 one.
pub fn request_host<B>(request: &Request<B>) -> Option<&str> {
    request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(s: &str) -> Uri {
        s.parse().unwrap()
    }

    #[test]
    fn lan_clients_are_sent_to_https_on_the_same_host() {
        let lan: IpAddr = "192.168.1.20".parse().unwrap();
        assert_eq!(
            target(lan, Some("192.168.1.5:8080"), &uri("/watch/demo?x=1"), 8443).as_deref(),
            Some("https://192.168.1.5:8443/watch/demo?x=1")
        );
        assert_eq!(
            target(lan, Some("pano.example"), &uri("/"), 443).as_deref(),
            Some("https://pano.example/")
        );
        assert_eq!(
            target(lan, Some("[fd00::5]:8080"), &uri("/hls/a/index.m3u8"), 8443).as_deref(),
            Some("https://[fd00::5]:8443/hls/a/index.m3u8")
        );
    }

    #[test]
    fn loopback_the_ca_download_and_acme_challenges_stay_on_http() {
        let lan: IpAddr = "10.0.0.2".parse().unwrap();
        for local in ["127.0.0.1", "::1", "::ffff:127.0.0.1"] {
            let ip: IpAddr = local.parse().unwrap();
            assert_eq!(
                target(ip, Some("localhost:8080"), &uri("/watch/a"), 8443),
                None
            );
        }
        for path in ["/ca.crt", "/tls", "/.well-known/acme-challenge/abc"] {
            assert_eq!(
                target(lan, Some("h:8080"), &uri(path), 8443),
                None,
                "{path}"
            );
        }
    }

    #[test]
    fn a_host_header_that_is_not_a_host_is_not_echoed() {
        let lan: IpAddr = "10.0.0.2".parse().unwrap();
        for bad in ["", "evil.example/path", "user@evil.example", "a b"] {
            assert_eq!(target(lan, Some(bad), &uri("/"), 8443), None, "{bad:?}");
        }
        assert_eq!(target(lan, None, &uri("/"), 8443), None);
    }
}
