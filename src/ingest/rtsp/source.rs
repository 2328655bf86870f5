//! Where an RTSP camera is and how to log in: URL parsing, credentials and redaction.
//!
//! Credentials come either from the URL userinfo (`rtsp://user:pass@host/path`,
//! percent-decoded per RFC 3986 3.2.1) or from separate config fields, never both. The
//! URL kept here has no userinfo, so printing it cannot leak a password; error text
//! from the RTSP library goes through [`RtspSource::redact`] before it is logged or
//! shown in the API.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use percent_encoding::percent_decode_str;
use serde::{Deserialize, Serialize};
use url::Url;

/// The RTSP default port (RFC 2326 3.2).
pub const DEFAULT_PORT: u16 = 554;

/// How RTP reaches us.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RtspTransport {
    /// RTP interleaved on the RTSP TCP connection (RFC 2326 10.12): works through NAT
    /// and firewalls, and loses nothing.
    #[default]
    Tcp,
    /// RTP over UDP: lower latency on a clean LAN; lost or reordered packets are
    /// dropped (retina has no reorder buffer).
    Udp,
}

impl fmt::Display for RtspTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RtspTransport::Tcp => "tcp",
            RtspTransport::Udp => "udp",
        })
    }
}

/// Why a source cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    #[error("not a URL: {0}")]
    Url(String),
    #[error("scheme {0:?} is not supported; use rtsp://")]
    Scheme(String),
    #[error("the URL has no host")]
    NoHost,
    #[error("credentials are given both in the URL and as username/password; use one")]
    CredentialsTwice,
    #[error("a password without a username")]
    PasswordWithoutUser,
    #[error("the URL userinfo is not valid UTF-8 after percent-decoding")]
    Userinfo,
}

/// Username and password for the camera. `Debug` does not print the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// A camera to pull: URL without userinfo, credentials apart, transport.
#[derive(Clone, PartialEq, Eq)]
pub struct RtspSource {
    url: Url,
    credentials: Option<Credentials>,
    transport: RtspTransport,
}

impl fmt::Debug for RtspSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RtspSource")
            .field("url", &self.url.as_str())
            .field("credentials", &self.credentials)
            .field("transport", &self.transport)
            .finish()
    }
}

impl RtspSource {
    /// Parses `url` and takes the credentials out of it or from `username`/`password`.
    pub fn new(
        url: &str,
        username: Option<&str>,
        password: Option<&str>,
        transport: RtspTransport,
    ) -> Result<Self, SourceError> {
        let mut parsed = Url::parse(url).map_err(|e| SourceError::Url(e.to_string()))?;
        if parsed.scheme() != "rtsp" {
            return Err(SourceError::Scheme(parsed.scheme().to_owned()));
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(SourceError::NoHost);
        }
        let decode = |s: &str| {
            percent_decode_str(s)
                .decode_utf8()
                .map(|c| c.into_owned())
                .map_err(|_| SourceError::Userinfo)
        };
        let in_url = if parsed.username().is_empty() && parsed.password().is_none() {
            None
        } else {
            Some(Credentials {
                username: decode(parsed.username())?,
                password: decode(parsed.password().unwrap_or(""))?,
            })
        };
        let separate = match (username, password) {
            (None | Some(""), None | Some("")) => None,
            (None | Some(""), Some(_)) => return Err(SourceError::PasswordWithoutUser),
            (Some(user), pass) => Some(Credentials {
                username: user.to_owned(),
                password: pass.unwrap_or("").to_owned(),
            }),
        };
        let credentials = match (in_url, separate) {
            (Some(_), Some(_)) => return Err(SourceError::CredentialsTwice),
            (Some(c), None) | (None, Some(c)) => Some(c),
            (None, None) => None,
        };
        if in_url_has_password_without_user(&credentials) {
            return Err(SourceError::PasswordWithoutUser);
        }
        // Neither setter can fail on an rtsp:// URL with a host.
        let _ = parsed.set_username("");
        let _ = parsed.set_password(None);
        Ok(Self {
            url: parsed,
            credentials,
            transport,
        })
    }

    /// The URL to connect to; it carries no userinfo and is safe to print.
    pub fn url(&self) -> &Url {
        &self.url
    }

    pub fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }

    pub fn transport(&self) -> RtspTransport {
        self.transport
    }

    /// The camera's address as far as the URL tells it without a DNS lookup, for the
    /// hub's "who publishes" field: the IP and port, or the unspecified address with
    /// the port when the host is a name.
    pub fn peer(&self) -> SocketAddr {
        let port = self.url.port().unwrap_or(DEFAULT_PORT);
        // rtsp is not a "special" scheme to the URL standard, so the url crate keeps
        // its host opaque; parse the IP forms here.
        let host = self.url.host_str().unwrap_or_default();
        let ip = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        SocketAddr::new(ip, port)
    }

    /// `text` with anything that could be a credential removed: URL userinfo
    /// (`scheme://user:pass@` → `scheme://***@`) and the password itself wherever it
    /// appears. For error text from libraries, which may echo requests.
    pub fn redact(&self, text: &str) -> String {
        let mut out = redact_userinfo(text);
        if let Some(c) = &self.credentials {
            // A one- or two-character password would blank out ordinary words; such a
            // password is no secret anyway.
            if c.password.len() >= 3 {
                out = out.replace(&c.password, "***");
            }
        }
        out
    }
}

fn in_url_has_password_without_user(credentials: &Option<Credentials>) -> bool {
    credentials
        .as_ref()
        .is_some_and(|c| c.username.is_empty() && !c.password.is_empty())
}

/// Replaces the userinfo of every `scheme://userinfo@host` in `text` with `***`.
pub fn redact_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        // The authority ends at the first '/', whitespace or quote; userinfo is what
        // comes before its last '@'.
        let end = tail
            .find(|c: char| c == '/' || c.is_whitespace() || c == '"' || c == '\'')
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                out.push_str("***");
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_from_the_url_are_decoded_and_removed() {
        let s = RtspSource::new(
            "rtsp://admin:p%40ss%3Aw0rd@192.168.1.20:8554/live/ch0",
            None,
            None,
            RtspTransport::Tcp,
        )
        .unwrap();
        assert_eq!(s.url().as_str(), "rtsp://192.168.1.20:8554/live/ch0");
        let c = s.credentials().unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("admin", "p@ss:w0rd")
        );
        assert_eq!(s.peer(), "192.168.1.20:8554".parse().unwrap());
        let debug = format!("{s:?}");
        assert!(
            !debug.contains("p@ss") && !debug.contains("p%40ss"),
            "{debug}"
        );
    }

    #[test]
    fn credentials_from_fields() {
        let s = RtspSource::new(
            "rtsp://cam.local/stream",
            Some("viewer"),
            Some("secret-pw"),
            RtspTransport::Udp,
        )
        .unwrap();
        assert_eq!(s.credentials().unwrap().username, "viewer");
        assert_eq!(s.transport(), RtspTransport::Udp);
        assert_eq!(s.peer().port(), DEFAULT_PORT);
        assert!(s.peer().ip().is_unspecified());
        let none = RtspSource::new("rtsp://cam/x", None, None, RtspTransport::Tcp).unwrap();
        assert_eq!(none.credentials(), None);
    }

    #[test]
    fn bad_sources_are_refused() {
        let t = RtspTransport::Tcp;
        assert!(matches!(
            RtspSource::new("not a url", None, None, t),
            Err(SourceError::Url(_))
        ));
        assert_eq!(
            RtspSource::new("http://cam/x", None, None, t),
            Err(SourceError::Scheme("http".into()))
        );
        assert_eq!(
            RtspSource::new("rtsps://cam/x", None, None, t),
            Err(SourceError::Scheme("rtsps".into()))
        );
        assert_eq!(
            RtspSource::new("rtsp://u:p@cam/x", Some("u"), Some("p"), t),
            Err(SourceError::CredentialsTwice)
        );
        assert_eq!(
            RtspSource::new("rtsp://cam/x", None, Some("p"), t),
            Err(SourceError::PasswordWithoutUser)
        );
        assert_eq!(
            RtspSource::new("rtsp://:pw@cam/x", None, None, t),
            Err(SourceError::PasswordWithoutUser)
        );
    }

    #[test]
    fn redaction() {
        assert_eq!(
            redact_userinfo("GET rtsp://admin:hunter22@10.0.0.2:554/a failed; see http://x/y"),
            "GET rtsp://***@10.0.0.2:554/a failed; see http://x/y"
        );
        assert_eq!(redact_userinfo("no urls here"), "no urls here");
        assert_eq!(redact_userinfo("rtsp://a@b@c/d"), "rtsp://***@c/d");
        assert_eq!(redact_userinfo("trailing ://"), "trailing ://");
        let s = RtspSource::new(
            "rtsp://cam/x",
            Some("u"),
            Some("hunter22"),
            RtspTransport::Tcp,
        )
        .unwrap();
        assert_eq!(
            s.redact("server said: bad password hunter22"),
            "server said: bad password ***"
        );
    }
}
