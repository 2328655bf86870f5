//! `GET /api/v1/streams/{stream}/ingest`: the exact server URLs an encoder (OBS)
//! publishes a stream to, so the console shows them instead of guessing.
//!
//! The host is `rtmp_ingest.public_host` when configured; otherwise the RTMP
//! listener's address, or, when it listens on every address, the host the request
//! reached this server by (what the browser showing the console used). Ports are the
//! bound listeners' (RTMP, and RTMPS when on).

use std::net::SocketAddr;
use std::sync::OnceLock;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::access::Authed;
use super::problem::ApiError;
use super::AppState;

/// The RTMP and RTMPS listeners as encoders reach them.
pub struct IngestListeners {
    app: String,
    public_host: Option<String>,
    configured_rtmp: SocketAddr,
    configured_rtmps: Option<SocketAddr>,
    /// The bound addresses, known once the listeners are up (a configured port 0
    /// becomes a real one); until then the configured ones.
    bound: OnceLock<(SocketAddr, Option<SocketAddr>)>,
}

impl IngestListeners {
    pub fn new(config: &crate::config::Config) -> Self {
        let rtmps = (config.tls.mode != crate::config::TlsMode::Off)
            .then_some(config.tls.rtmps)
            .flatten();
        Self {
            app: config.rtmp_ingest.app.clone(),
            public_host: config.rtmp_ingest.public_host.clone(),
            configured_rtmp: config.rtmp,
            configured_rtmps: rtmps,
            bound: OnceLock::new(),
        }
    }

    /// Records the bound listeners.
    pub fn bound(&self, rtmp: SocketAddr, rtmps: Option<SocketAddr>) {
        let _ = self.bound.set((rtmp, rtmps));
    }

    /// The URLs for a request that reached the server as `request_host` (the `Host`
    /// header, if any).
    pub fn urls(&self, request_host: Option<&str>) -> IngestUrls {
        let (rtmp, rtmps) = self
            .bound
            .get()
            .copied()
            .unwrap_or((self.configured_rtmp, self.configured_rtmps));
        let url = |scheme: &str, addr: SocketAddr| {
            let host = self.host(addr, request_host);
            format!("{scheme}://{host}:{}/{}", addr.port(), self.app)
        };
        IngestUrls {
            rtmp_url: url("rtmp", rtmp),
            rtmps_url: rtmps.map(|a| url("rtmps", a)),
            app: self.app.clone(),
        }
    }

    fn host(&self, listener: SocketAddr, request_host: Option<&str>) -> String {
        if let Some(host) = &self.public_host {
            return host.clone();
        }
        if !listener.ip().is_unspecified() {
            return match listener.ip() {
                std::net::IpAddr::V4(ip) => ip.to_string(),
                std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            };
        }
        request_host
            .and_then(host_of_authority)
            .unwrap_or_else(|| "localhost".into())
    }
}

/// The host of a `Host` header value (`name`, `name:port`, `[v6]:port`), if it is
/// one; what a client sent is never echoed unchecked.
fn host_of_authority(authority: &str) -> Option<String> {
    let parsed: axum::http::uri::Authority = authority.parse().ok()?;
    let host = parsed.host();
    url::Host::parse(host).ok().map(|h| h.to_string())
}

/// Where an encoder publishes: server URL plus the stream key as the stream name.
#[derive(Serialize, ToSchema)]
pub struct IngestUrls {
    /// `rtmp://host:port/app`: OBS's "Server".
    pub rtmp_url: String,
    /// `rtmps://host:port/app` when RTMPS is on; `null` otherwise.
    pub rtmps_url: Option<String>,
    /// The application name (the URL's path).
    pub app: String,
}

/// Where an encoder publishes this stream (its owner and admins): the server URL to
/// paste into OBS; the stream key is the stream name.
#[utoipa::path(get, path = "/api/v1/streams/{stream}/ingest", tag = "streams",
    operation_id = "get_stream_ingest", security(("bearer" = [])),
    params(("stream" = String, Path, description = "stream id or slug")),
    responses((status = 200, body = IngestUrls),
              (status = 403, description = "neither the owner nor an admin"),
              (status = 404, description = "no such stream")))]
pub async fn ingest_urls(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<IngestUrls>, ApiError> {
    super::catalog::managed(&state, &caller, &id)?;
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    Ok(Json(state.ingest.urls(host)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listeners(rtmp: &str, rtmps: Option<&str>, public_host: Option<&str>) -> IngestListeners {
        let config = crate::config::Config {
            rtmp: rtmp.parse().expect("addr"),
            rtmp_ingest: crate::config::RtmpIngestConfig {
                public_host: public_host.map(str::to_owned),
                ..Default::default()
            },
            ..Default::default()
        };
        let l = IngestListeners::new(&config);
        l.bound(config.rtmp, rtmps.map(|a| a.parse().expect("rtmps addr")));
        l
    }

    #[test]
    fn the_host_comes_from_config_then_listener_then_request() {
        let configured = listeners("0.0.0.0:1935", None, Some("live.example.com"));
        assert_eq!(
            configured.urls(Some("10.0.0.5:8080")).rtmp_url,
            "rtmp://live.example.com:1935/live"
        );
        let bound = listeners("192.168.1.20:1940", Some("192.168.1.20:1936"), None);
        let urls = bound.urls(Some("portal.example.com"));
        assert_eq!(urls.rtmp_url, "rtmp://192.168.1.20:1940/live");
        assert_eq!(
            urls.rtmps_url.as_deref(),
            Some("rtmps://192.168.1.20:1936/live")
        );
        let any = listeners("0.0.0.0:1935", None, None);
        assert_eq!(
            any.urls(Some("studio.lan:8080")).rtmp_url,
            "rtmp://studio.lan:1935/live"
        );
        assert_eq!(
            any.urls(Some("[fe80::1]:8080")).rtmp_url,
            "rtmp://[fe80::1]:1935/live"
        );
        let v6 = listeners("[::1]:1935", None, None);
        assert_eq!(v6.urls(None).rtmp_url, "rtmp://[::1]:1935/live");
    }

    #[test]
    fn a_host_header_that_is_no_host_is_not_echoed() {
        let any = listeners("0.0.0.0:1935", None, None);
        for bad in ["evil.example/path", "a b", "", "x:y:z"] {
            assert_eq!(
                any.urls(Some(bad)).rtmp_url,
                "rtmp://localhost:1935/live",
                "{bad:?}"
            );
        }
        assert_eq!(any.urls(None).rtmp_url, "rtmp://localhost:1935/live");
    }
}
