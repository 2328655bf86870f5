//! The server's public base URL: what links read away from the server (in mails) are
//! made absolute with, since a mail client has no page to resolve `/watch/…` against.
//! Configured as `public_url` (a reverse proxy's address, with a path prefix if it has
//! one); otherwise built from the bound listeners: HTTPS when it listens, else HTTP,
//! with `localhost` for a listener on every address.

use std::net::SocketAddr;

use url::Url;

/// An absolute `http`/`https` base URL without a trailing slash, query or fragment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicUrl(Url);

impl PublicUrl {
    /// A configured `public_url`: absolute `http` or `https` with a host, no
    /// credentials, query or fragment. A trailing `/` is dropped.
    pub fn parse(text: &str) -> Result<Self, String> {
        let url = Url::parse(text.trim())
            .map_err(|e| format!("public_url: {text:?} is not an absolute URL ({e})"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("public_url: {text:?} must be http:// or https://"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(format!("public_url: {text:?} has no host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("public_url must not carry a user name or password".into());
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!(
                "public_url: {text:?} must not have a query or a fragment"
            ));
        }
        Ok(Self::without_trailing_slash(url))
    }

    /// Built from where the server listens: `https://` on the HTTPS listener when there
    /// is one (named `name` when given: the ACME domain or the local CA's name), else
    /// `http://` on the HTTP listener; an unspecified address (`0.0.0.0`, `::`) becomes
    /// `localhost`. Default ports are left out. Fails only for a `name` that is no host.
    pub fn from_listeners(
        http: SocketAddr,
        https: Option<SocketAddr>,
        name: Option<&str>,
    ) -> Result<Self, String> {
        let (scheme, addr, name) = match https {
            Some(addr) => ("https", addr, name),
            None => ("http", http, None),
        };
        let host = match name {
            Some(name) => name.to_string(),
            None if addr.ip().is_unspecified() => "localhost".to_string(),
            None if addr.is_ipv6() => format!("[{}]", addr.ip()),
            None => addr.ip().to_string(),
        };
        // Url drops the port when it is the scheme's default.
        Self::parse(&format!("{scheme}://{host}:{}", addr.port()))
    }

    fn without_trailing_slash(mut url: Url) -> Self {
        let path = url.path().trim_end_matches('/').to_string();
        url.set_path(&path);
        Self(url)
    }

    /// The absolute URL of `path` (which starts with `/`) on this server.
    pub fn join(&self, path: &str) -> String {
        format!("{}{path}", self.as_str())
    }

    /// The base itself, without a trailing slash.
    pub fn as_str(&self) -> &str {
        self.0.as_str().trim_end_matches('/')
    }
}

impl std::fmt::Display for PublicUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_configured_url_is_a_base_for_paths() {
        let p = PublicUrl::parse("https://tv.example.com/").unwrap();
        assert_eq!(p.join("/watch/match"), "https://tv.example.com/watch/match");
        let p = PublicUrl::parse("https://example.com/panocast/").unwrap();
        assert_eq!(
            p.join("/watch/vod/as_1"),
            "https://example.com/panocast/watch/vod/as_1"
        );
        assert_eq!(
            PublicUrl::parse("http://10.0.0.5:8080").unwrap().as_str(),
            "http://10.0.0.5:8080"
        );
    }

    #[test]
    fn a_configured_url_must_be_absolute_http() {
        for bad in [
            "",
            "/watch",
            "tv.example.com",
            "ftp://tv.example.com",
            "https://user:pw@tv.example.com",
            "https://tv.example.com/?a=1",
            "https://tv.example.com/#top",
            "mailto:someone@example.com",
        ] {
            assert!(PublicUrl::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn the_default_follows_the_bound_listeners() {
        let from = |http, https, name| PublicUrl::from_listeners(http, https, name).unwrap();
        assert_eq!(
            from(addr("127.0.0.1:8080"), None, None).as_str(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            from(addr("0.0.0.0:80"), None, None).as_str(),
            "http://localhost"
        );
        assert_eq!(
            from(addr("[::1]:8080"), None, None).as_str(),
            "http://[::1]:8080"
        );
        assert_eq!(
            from(
                addr("0.0.0.0:8080"),
                Some(addr("0.0.0.0:443")),
                Some("tv.example.com")
            )
            .as_str(),
            "https://tv.example.com"
        );
        assert_eq!(
            from(addr("0.0.0.0:8080"), Some(addr("0.0.0.0:8443")), None).as_str(),
            "https://localhost:8443"
        );
    }
}
