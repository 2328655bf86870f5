//! The one typed configuration: defaults → TOML file → `PANOCAST_*` environment →
//! command-line flags → [`Config::validate`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::pipeline::profile::{self, LadderProfile};
use crate::streams::definition::is_valid_slug;
use crate::streams::definition::{DualFisheyeLenses, RecordSettings, DEFAULT_RECONNECT_WINDOW_S};
use crate::streams::{Orientation, Projection, StreamDef, StreamSource, Visibility};

/// Everything `panocast serve` needs.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// HTTP listen address (HLS delivery, API, metrics).
    pub http: SocketAddr,
    /// RTMP listen address (publishers).
    pub rtmp: SocketAddr,
    /// The address users reach the server at (`https://tv.example.com`, with a path
    /// prefix behind a proxy), for links read away from the server: the ones in
    /// mails. None: built from the bound listeners ([`crate::public_url`]).
    pub public_url: Option<String>,
    /// Where keys and recordings live.
    pub data_dir: PathBuf,
    /// Log as JSON lines instead of human-readable text.
    pub log_json: bool,
    pub hls: HlsConfig,
    pub rtmp_ingest: RtmpIngestConfig,
    pub rtsp_ingest: RtspIngestConfig,
    /// Connection caps and timeouts on both ports.
    pub limits: LimitsConfig,
    /// Browser access to the REST API (CORS).
    pub api: ApiConfig,
    /// Accounts, tokens and playback gating.
    pub auth: AuthConfig,
    /// Webhook delivery (src/notify/webhooks).
    pub webhooks: WebhooksConfig,
    /// Email over SMTP (src/notify/mail); off without `smtp_host`.
    pub mail: MailConfig,
    /// Transcoding ladders by name, added to (or replacing) the built-in `default`,
    /// `360` and `360-hd`.
    pub ladders: BTreeMap<String, LadderProfile>,
    /// Streams imported into an empty catalog; none (and an empty catalog) means "make
    /// a demo stream".
    pub streams: Vec<StreamConfig>,
    /// The background job queue (audio extraction, …).
    pub jobs: JobsConfig,
    /// File uploads (tus and multipart).
    pub uploads: UploadsConfig,
    /// HTTPS and RTMPS (src/tls); off by default.
    pub tls: TlsConfig,
    /// Audience analytics from the server's own HLS traffic (src/analytics).
    pub analytics: AnalyticsConfig,
    /// On-demand transcoding of uploads.
    pub vod: VodConfig,
}

/// Where the certificate comes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    /// Plain HTTP and RTMP only.
    #[default]
    Off,
    /// `cert` and `key` PEM files, re-read when they change.
    Files,
    /// A certificate authority generated in the data directory signs a certificate for
    /// this machine's addresses; devices trust the CA from `/ca.crt`.
    LocalCa,
    /// Certificates for `domains` from an ACME CA (Let's Encrypt by default) over
    /// HTTP-01, answered on the plain HTTP port (which must be reachable as port 80).
    Acme,
}

/// HTTPS (HTTP/2 and HTTP/1.1 by ALPN) and RTMPS.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    pub mode: TlsMode,
    /// Certificate chain (PEM, leaf first) for `mode = "files"`.
    pub cert: Option<PathBuf>,
    /// Private key (PEM: PKCS#8, PKCS#1 or SEC1) for `mode = "files"`.
    pub key: Option<PathBuf>,
    /// HTTPS listen address; plain HTTP keeps serving on `http` (redirecting clients
    /// that are not on this machine).
    pub https: SocketAddr,
    /// RTMPS listen address; none means no RTMPS.
    pub rtmps: Option<SocketAddr>,
    /// How often the certificate files are checked for a change.
    pub reload_interval_ms: u64,
    /// Extra names for the `local-ca` server certificate, beside localhost, the
    /// machine's addresses and `<hostname>.local`.
    pub names: Vec<String>,
    /// The ACME directory URL for `mode = "acme"`.
    pub acme_directory: String,
    /// Host names the ACME certificate is for.
    pub domains: Vec<String>,
    /// Account contacts, e.g. `"mailto:ops@example.com"`.
    pub contact: Vec<String>,
    /// A PEM root to trust for the ACME server itself (a test CA such as pebble's);
    /// none means the system's roots.
    pub acme_ca_root: Option<PathBuf>,
    /// How often the ACME certificate is checked for renewal (due when less than a
    /// third of its lifetime is left).
    pub acme_check_interval_s: u64,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            mode: TlsMode::Off,
            cert: None,
            key: None,
            https: SocketAddr::from(([0, 0, 0, 0], 8443)),
            rtmps: None,
            reload_interval_ms: 2_000,
            names: Vec::new(),
            acme_directory: "https://acme-v02.api.letsencrypt.org/directory".into(),
            domains: Vec::new(),
            contact: Vec::new(),
            acme_ca_root: None,
            acme_check_interval_s: 12 * 3600,
        }
    }
}

/// Audience analytics (src/analytics): viewer sessions, figures, heatmaps.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnalyticsConfig {
    /// Count viewers at all. Off: no session ids are handed out, nothing is recorded.
    pub enabled: bool,
    /// A session is a view once it received this many media seconds.
    pub view_threshold_s: u64,
    /// A session ends after 3 x the target duration without a request, never sooner
    /// than this.
    pub session_timeout_floor_s: u64,
    /// 1-minute points are kept this long.
    pub minute_retention_days: u64,
    /// Hourly points (and ended sessions, heatmaps) are kept this long; 396 days is 13
    /// months.
    pub hourly_retention_days: u64,
}

impl Default for AnalyticsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            view_threshold_s: 10,
            session_timeout_floor_s: 10,
            minute_retention_days: 30,
            hourly_retention_days: 396,
        }
    }
}

impl TlsConfig {
    fn validate(&self) -> Result<(), String> {
        match self.mode {
            TlsMode::Files if self.cert.is_none() || self.key.is_none() => {
                return Err("tls.mode = \"files\" needs tls.cert and tls.key".into());
            }
            TlsMode::Acme if self.domains.is_empty() => {
                return Err("tls.mode = \"acme\" needs tls.domains".into());
            }
            TlsMode::Off | TlsMode::LocalCa | TlsMode::Acme
                if self.cert.is_some() || self.key.is_some() =>
            {
                return Err("tls.cert and tls.key are only read with tls.mode = \"files\"".into());
            }
            _ => {}
        }
        if self.mode == TlsMode::Off && self.rtmps.is_some() {
            return Err("tls.rtmps needs a tls.mode other than \"off\"".into());
        }
        if self.mode == TlsMode::Acme {
            for domain in &self.domains {
                let valid = !domain.is_empty()
                    && domain.len() <= 253
                    && domain.split('.').all(|l| {
                        !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    });
                if !valid {
                    return Err(format!("tls.domains: {domain:?} is not a host name"));
                }
            }
            if !self.acme_directory.starts_with("https://") {
                return Err("tls.acme_directory must be an https:// URL".into());
            }
            if !(60..=7 * 24 * 3600).contains(&self.acme_check_interval_s) {
                return Err(format!(
                    "tls.acme_check_interval_s must be 60..=604800, not {}",
                    self.acme_check_interval_s
                ));
            }
        }
        if !(100..=3_600_000).contains(&self.reload_interval_ms) {
            return Err(format!(
                "tls.reload_interval_ms must be 100..=3600000, not {}",
                self.reload_interval_ms
            ));
        }
        Ok(())
    }
}

impl AnalyticsConfig {
    fn validate(&self) -> Result<(), String> {
        if !(1..=3600).contains(&self.session_timeout_floor_s) {
            return Err(format!(
                "analytics.session_timeout_floor_s must be 1..=3600, not {}",
                self.session_timeout_floor_s
            ));
        }
        if self.minute_retention_days == 0
            || self.hourly_retention_days < self.minute_retention_days
        {
            return Err("analytics.minute_retention_days must be at least 1 and hourly_retention_days at least as long".into());
        }
        Ok(())
    }
}

/// On-demand transcoding of uploads.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VodConfig {
    /// The ladder profile every upload is encoded to (one of `ladders` or the
    /// built-in ones); `default` makes the source rendition alone.
    pub ladder: String,
}

impl Default for VodConfig {
    fn default() -> Self {
        Self {
            ladder: profile::PASSTHROUGH.into(),
        }
    }
}

/// The background job queue.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobsConfig {
    /// Jobs run at once (1..=16); each holds a blocking thread while it runs.
    pub concurrency: usize,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self { concurrency: 1 }
    }
}

/// File uploads.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UploadsConfig {
    /// Largest accepted file; larger ones are refused with 413.
    pub max_bytes: u64,
    /// An unfinished tus upload is deleted this long after its creation.
    pub expire_after_s: u64,
}

impl Default for UploadsConfig {
    fn default() -> Self {
        Self {
            max_bytes: 4 << 30,
            expire_after_s: 24 * 3600,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            http: SocketAddr::from(([0, 0, 0, 0], 8080)),
            rtmp: SocketAddr::from(([0, 0, 0, 0], 1935)),
            public_url: None,
            data_dir: PathBuf::from("./data"),
            log_json: false,
            hls: HlsConfig::default(),
            rtmp_ingest: RtmpIngestConfig::default(),
            rtsp_ingest: RtspIngestConfig::default(),
            limits: LimitsConfig::default(),
            api: ApiConfig::default(),
            auth: AuthConfig::default(),
            webhooks: WebhooksConfig::default(),
            mail: MailConfig::default(),
            ladders: BTreeMap::new(),
            streams: Vec::new(),
            jobs: JobsConfig::default(),
            uploads: UploadsConfig::default(),
            tls: TlsConfig::default(),
            analytics: AnalyticsConfig::default(),
            vod: VodConfig::default(),
        }
    }
}

/// LL-HLS shape.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HlsConfig {
    /// PART-TARGET in milliseconds.
    pub part_target_ms: u64,
    /// Segments end on the first keyframe at or after this many milliseconds.
    pub segment_target_ms: u64,
    /// Complete segments kept in memory per rendition.
    pub window_segments: usize,
    /// PART-HOLD-BACK in part targets: how far behind the live edge players stay.
    /// The HLS rules allow 2 or more and recommend 3; 2 plays closer to the edge
    /// with less room for a late part.
    pub part_hold_back_parts: f64,
}

impl Default for HlsConfig {
    fn default() -> Self {
        Self {
            part_target_ms: 200,
            segment_target_ms: 2000,
            window_segments: 10,
            part_hold_back_parts: 3.0,
        }
    }
}

/// Which web origins may call the REST API from a browser. HLS, the player and media
/// downloads stay open to every origin: WebGL players sample cross-origin video only
/// with CORS.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// `["*"]` (the default: the API authenticates with bearer tokens, never cookies)
    /// or a list of origins such as `"https://portal.example.com"`.
    pub cors_origins: Vec<String>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            cors_origins: vec!["*".into()],
        }
    }
}

impl ApiConfig {
    fn validate(&self) -> Result<(), String> {
        if self.cors_origins.iter().any(|o| o == "*") {
            return if self.cors_origins.len() == 1 {
                Ok(())
            } else {
                Err(
                    "api.cors_origins: \"*\" allows every origin and cannot be listed with others"
                        .into(),
                )
            };
        }
        for origin in &self.cors_origins {
            let parsed = url::Url::parse(origin)
                .map_err(|e| format!("api.cors_origins: {origin:?}: {e}"))?;
            let bare = parsed.path() == "/" && !origin.ends_with('/') && parsed.query().is_none();
            if !matches!(parsed.scheme(), "http" | "https") || !bare || parsed.host().is_none() {
                return Err(format!(
                    "api.cors_origins: {origin:?} is not an origin (scheme://host[:port], no path)"
                ));
            }
        }
        Ok(())
    }
}

/// What one peer, one address and everyone together may hold (see `crate::limits`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// HTTP connections held at once, in total and per address (IPv6: per /64). A
    /// classroom of headsets behind one NAT is one address: keep this generous.
    pub http_connections: usize,
    pub http_connections_per_address: usize,
    /// RTMP connections held at once, in total and per address.
    pub rtmp_connections: usize,
    pub rtmp_connections_per_address: usize,
    /// Time for an HTTP client's first byte and for each request head.
    pub http_header_timeout_ms: u64,
    /// An HTTP connection on which nothing moves for this long is closed.
    pub http_idle_timeout_ms: u64,
    /// Publish attempts with unknown keys one address may make per window before it
    /// is refused for `publish_block_s`.
    pub publish_failures_per_address: u32,
    pub publish_failure_window_s: u64,
    pub publish_block_s: u64,
    /// LL-HLS requests held open at once, waiting for their part or playlist; past it,
    /// 503 with `Retry-After`. Each viewer holds about two.
    pub max_held_requests: usize,
    /// Streams that may be live at once; a publish past it is refused
    /// (`NetStream.Publish.BadName`) and logged. A takeover of a live stream counts
    /// once.
    pub max_live_streams: usize,
    /// Bytes one stream may hold in memory: its media queue, every rendition's live
    /// window and what a ladder holds back. A publisher that takes its stream past it
    /// is dropped (logged, `panocast_stream_memory_budget_drops_total`) and the live
    /// session ends, so the next publisher starts afresh.
    pub stream_memory_bytes: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            http_connections: 8_192,
            http_connections_per_address: 256,
            rtmp_connections: 256,
            rtmp_connections_per_address: 16,
            http_header_timeout_ms: 10_000,
            http_idle_timeout_ms: 30_000,
            publish_failures_per_address: 10,
            publish_failure_window_s: 60,
            publish_block_s: 300,
            max_held_requests: 20_000,
            max_live_streams: 64,
            stream_memory_bytes: crate::streams::memory::DEFAULT_BUDGET,
        }
    }
}

impl LimitsConfig {
    fn validate(&self) -> Result<(), String> {
        for (name, value) in [
            ("http_connections", self.http_connections),
            (
                "http_connections_per_address",
                self.http_connections_per_address,
            ),
            ("rtmp_connections", self.rtmp_connections),
            ("max_live_streams", self.max_live_streams),
            (
                "rtmp_connections_per_address",
                self.rtmp_connections_per_address,
            ),
        ] {
            if value == 0 {
                return Err(format!("limits.{name} must be at least 1"));
            }
        }
        for (name, value) in [
            ("http_header_timeout_ms", self.http_header_timeout_ms),
            ("http_idle_timeout_ms", self.http_idle_timeout_ms),
        ] {
            if value < 100 {
                return Err(format!("limits.{name} must be at least 100, not {value}"));
            }
        }
        if self.publish_failure_window_s == 0 {
            return Err("limits.publish_failure_window_s must be at least 1".into());
        }
        // Less than a few parts of any real stream would drop every publisher.
        if self.stream_memory_bytes < 1 << 20 {
            return Err(format!(
                "limits.stream_memory_bytes must be at least 1048576 (1 MiB), not {}",
                self.stream_memory_bytes
            ));
        }
        Ok(())
    }
}

/// RTMP connection limits.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RtmpIngestConfig {
    /// The application name in `rtmp://host/<app>/<key>`.
    pub app: String,
    pub handshake_timeout_ms: u64,
    /// A publisher that sends nothing for this long is dropped.
    pub idle_timeout_ms: u64,
    /// The host name (or address) encoders reach this server by, shown in the OBS
    /// settings (`rtmp://<public_host>:<port>/<app>`). None: the RTMP listener's
    /// address, or the page's host when the listener is on every address.
    pub public_host: Option<String>,
}

impl Default for RtmpIngestConfig {
    fn default() -> Self {
        Self {
            app: "live".into(),
            handshake_timeout_ms: 5_000,
            idle_timeout_ms: 10_000,
            public_host: None,
        }
    }
}

/// Webhook delivery.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    /// Allow targets on loopback, private and link-local networks (tests, an
    /// in-house receiver). Off: such URLs are refused with 422, and at send time.
    pub allow_private_targets: bool,
    /// Each attempt's limit: connect, send and the receiver's answer.
    pub timeout_ms: u64,
    /// Waits before the 2nd, 3rd, … attempt; a delivery gets one attempt more than
    /// there are entries. A receiver's longer `Retry-After` wins.
    pub retry_delays_ms: Vec<u64>,
    /// An endpoint is disabled after this many deliveries in a row used every
    /// attempt.
    pub disable_after_failures: u32,
    /// How often the dispatcher looks for new outbox messages and due retries.
    pub poll_interval_ms: u64,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        Self {
            allow_private_targets: false,
            timeout_ms: 10_000,
            // The Standard Webhooks suggestion: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
            retry_delays_ms: vec![
                5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000,
            ],
            disable_after_failures: 5,
            poll_interval_ms: 100,
        }
    }
}

impl WebhooksConfig {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    pub fn retry_delays(&self) -> Vec<Duration> {
        self.retry_delays_ms
            .iter()
            .map(|ms| Duration::from_millis(*ms))
            .collect()
    }

    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
    }

    fn validate(&self) -> Result<(), String> {
        if !(100..=60_000).contains(&self.timeout_ms) {
            return Err(format!(
                "webhooks.timeout_ms must be 100..=60000, not {}",
                self.timeout_ms
            ));
        }
        if self.retry_delays_ms.len() > 20
            || self
                .retry_delays_ms
                .iter()
                .any(|d| !(1..=86_400_000).contains(d))
        {
            return Err("webhooks.retry_delays_ms: at most 20 delays of 1..=86400000 ms".into());
        }
        if self.disable_after_failures == 0 {
            return Err("webhooks.disable_after_failures must be at least 1".into());
        }
        if !(10..=10_000).contains(&self.poll_interval_ms) {
            return Err(format!(
                "webhooks.poll_interval_ms must be 10..=10000, not {}",
                self.poll_interval_ms
            ));
        }
        Ok(())
    }
}

/// How mail reaches the SMTP server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTls {
    /// Plain SMTP (a relay on the same host or network).
    None,
    /// Plain connection upgraded with STARTTLS, which must succeed (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

/// Email over SMTP.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailConfig {
    /// The SMTP server; no mail is sent without one.
    pub smtp_host: Option<String>,
    pub smtp_port: u16,
    pub tls: MailTls,
    /// SMTP AUTH user; with `password`, or neither.
    pub username: Option<String>,
    /// Never logged.
    pub password: Option<Secret>,
    /// The sender, e.g. `panocast <noreply@example.com>`.
    pub from: String,
    /// Each SMTP session's limit.
    pub timeout_ms: u64,
    /// Waits before the 2nd, 3rd, … attempt of a mail.
    pub retry_delays_ms: Vec<u64>,
    /// How often the dispatcher looks for new outbox messages and due retries.
    pub poll_interval_ms: u64,
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            smtp_host: None,
            smtp_port: 587,
            tls: MailTls::Starttls,
            username: None,
            password: None,
            from: "panocast <noreply@localhost>".into(),
            timeout_ms: 10_000,
            // 10 s, 1 min, 5 min, 30 min, 2 h, 6 h.
            retry_delays_ms: vec![10_000, 60_000, 300_000, 1_800_000, 7_200_000, 21_600_000],
            poll_interval_ms: 200,
        }
    }
}

impl MailConfig {
    pub fn enabled(&self) -> bool {
        self.smtp_host.is_some()
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    pub fn retry_delays(&self) -> Vec<Duration> {
        self.retry_delays_ms
            .iter()
            .map(|ms| Duration::from_millis(*ms))
            .collect()
    }

    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
    }

    fn validate(&self) -> Result<(), String> {
        if self
            .smtp_host
            .as_deref()
            .is_some_and(|h| h.trim().is_empty())
        {
            return Err("mail.smtp_host must not be empty (leave it out to turn mail off)".into());
        }
        if self.username.is_some() != self.password.is_some() {
            return Err("mail.username and mail.password go together".into());
        }
        if self.from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(format!("mail.from is not a mailbox: {:?}", self.from));
        }
        if !(100..=120_000).contains(&self.timeout_ms) {
            return Err(format!(
                "mail.timeout_ms must be 100..=120000, not {}",
                self.timeout_ms
            ));
        }
        if self.retry_delays_ms.len() > 20
            || self
                .retry_delays_ms
                .iter()
                .any(|d| !(1..=86_400_000).contains(d))
        {
            return Err("mail.retry_delays_ms: at most 20 delays of 1..=86400000 ms".into());
        }
        if !(10..=10_000).contains(&self.poll_interval_ms) {
            return Err(format!(
                "mail.poll_interval_ms must be 10..=10000, not {}",
                self.poll_interval_ms
            ));
        }
        Ok(())
    }
}

/// Timing of RTSP pulls (streams with `source = { kind = "rtsp-pull", ... }`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RtspIngestConfig {
    /// Each of DESCRIBE, SETUP and PLAY must be answered within this.
    pub step_timeout_ms: u64,
    /// A camera that delivers no media for this long has failed and is reconnected.
    pub stall_timeout_ms: u64,
    /// First delay after a failure; doubles per consecutive failure.
    pub retry_min_ms: u64,
    /// Longest delay between attempts.
    pub retry_max_ms: u64,
    /// A session live this long resets the delay to `retry_min_ms`.
    pub healthy_after_ms: u64,
}

impl Default for RtspIngestConfig {
    fn default() -> Self {
        Self {
            step_timeout_ms: 10_000,
            stall_timeout_ms: 10_000,
            retry_min_ms: 1_000,
            retry_max_ms: 30_000,
            healthy_after_ms: 30_000,
        }
    }
}

/// How tokens are signed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub enum JwtAlgorithm {
    /// Ed25519; the key pair is generated into the data directory on first start and
    /// the public half published at `/.well-known/jwks.json`.
    #[default]
    EdDSA,
    /// HMAC-SHA256 with `auth.jwt_secret` (or `PANOCAST_JWT_SECRET`); nothing is
    /// published, so only holders of the secret can verify.
    HS256,
}

/// A secret from the config or the environment; never printed.
pub use crate::streams::definition::Secret;

/// Accounts, tokens and playback gating.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Signing algorithm; tokens are verified with this one only, whatever their
    /// header says.
    pub jwt_algorithm: JwtAlgorithm,
    /// HS256 secret, at least 32 bytes.
    pub jwt_secret: Option<Secret>,
    /// `iss` of every token, checked on every token.
    pub issuer: String,
    /// Lifetime of access tokens (audience `api`).
    pub access_ttl_s: u64,
    /// Lifetime of refresh tokens.
    pub refresh_ttl_s: u64,
    /// Lifetime of playback tokens (audience `playback`). A player needs a new token
    /// (a reload) after this.
    pub playback_ttl_s: u64,
    /// Lets anyone create a `viewer` account with `POST /api/v1/auth/register`.
    pub open_registration: bool,
    /// Login and refresh attempts: burst per client address, then one every
    /// `60 / per_minute` seconds.
    pub address_burst: u32,
    pub address_per_minute: u32,
    /// Login attempts per account name.
    pub account_burst: u32,
    pub account_per_minute: u32,
    /// Largest accepted request body on the REST API.
    pub max_body_bytes: usize,
    /// Password of the first admin (user `admin`), used only while there is no
    /// account at all; from `PANOCAST_ADMIN_PASSWORD` only, never from the file.
    #[serde(skip)]
    pub bootstrap_admin_password: Option<Secret>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            jwt_algorithm: JwtAlgorithm::EdDSA,
            jwt_secret: None,
            issuer: "panocast".into(),
            access_ttl_s: 15 * 60,
            refresh_ttl_s: 30 * 24 * 3600,
            playback_ttl_s: 3600,
            open_registration: false,
            address_burst: 30,
            address_per_minute: 30,
            account_burst: 10,
            account_per_minute: 5,
            max_body_bytes: 64 * 1024,
            bootstrap_admin_password: None,
        }
    }
}

/// A stream declared in the config file.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamConfig {
    pub slug: String,
    /// Secret RTMP stream key; never logged. Required for `rtmp-push` streams; an
    /// `rtsp-pull` stream has none and cannot be published over RTMP.
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub projection: Projection,
    #[serde(default)]
    pub orientation: Orientation,
    #[serde(default)]
    pub source: StreamSource,
    /// The lenses of a `dual-fisheye` stream (defaults: two circles side by side).
    #[serde(default)]
    pub fisheye: DualFisheyeLenses,
    /// Turn the pictures by `orientation` instead of signalling it.
    #[serde(default)]
    pub bake_orientation: bool,
    /// Deliver every rendition as an equi-angular cubemap (3x2) for panocast's player.
    #[serde(default)]
    pub cubemap: bool,
    /// Transcoding ladder profile; `default` passes the source through alone.
    #[serde(default)]
    pub ladder: Option<String>,
    #[serde(default = "default_visibility")]
    pub visibility: Visibility,
    #[serde(default = "default_true")]
    pub enabled: bool,
    #[serde(default = "default_reconnect_window")]
    pub reconnect_window_s: u32,
    /// Off unless asked for: a config-file stream (the demo) would otherwise fill the
    /// disk of a server nobody looks after.
    #[serde(default = "no_recording")]
    pub record: RecordSettings,
}

fn no_recording() -> RecordSettings {
    RecordSettings::OFF
}

fn default_visibility() -> Visibility {
    Visibility::Public
}

fn default_true() -> bool {
    true
}

fn default_reconnect_window() -> u32 {
    DEFAULT_RECONNECT_WINDOW_S
}

impl StreamConfig {
    /// The stream record this entry seeds the catalog with.
    pub fn definition(&self) -> StreamDef {
        StreamDef {
            projection: self.projection,
            orientation: self.orientation,
            fisheye: self.fisheye,
            bake_orientation: self.bake_orientation,
            cubemap: self.cubemap,
            ladder: self
                .ladder
                .clone()
                .unwrap_or_else(|| crate::pipeline::profile::PASSTHROUGH.into()),
            visibility: self.visibility,
            enabled: self.enabled,
            reconnect_window_s: self.reconnect_window_s,
            record: self.record,
            source: self.source.clone(),
            ..StreamDef::new(&self.slug)
        }
    }
}

impl std::fmt::Debug for StreamConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamConfig")
            .field("slug", &self.slug)
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .field("projection", &self.projection)
            .field("orientation", &self.orientation)
            .field("fisheye", &self.fisheye)
            .field("bake_orientation", &self.bake_orientation)
            .field("cubemap", &self.cubemap)
            .field("source", &self.source)
            .field("ladder", &self.ladder)
            .field("visibility", &self.visibility)
            .field("enabled", &self.enabled)
            .field("reconnect_window_s", &self.reconnect_window_s)
            .field("record", &self.record)
            .finish()
    }
}

/// A configuration that cannot run.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("environment variable {name}: cannot parse {value:?}")]
    Env { name: &'static str, value: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Defaults, overlaid by `file` when given.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let Some(path) = file else {
            return Ok(Self::default());
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })
    }

    /// Applies `PANOCAST_*` variables from `vars` (the process environment in `serve`).
    pub fn apply_env(&mut self, vars: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        fn parse<T: std::str::FromStr>(
            name: &'static str,
            vars: &impl Fn(&str) -> Option<String>,
            target: &mut T,
        ) -> Result<(), ConfigError> {
            if let Some(value) = vars(name) {
                *target = value
                    .parse()
                    .map_err(|_| ConfigError::Env { name, value })?;
            }
            Ok(())
        }
        parse("PANOCAST_HTTP", &vars, &mut self.http)?;
        parse("PANOCAST_RTMP", &vars, &mut self.rtmp)?;
        parse("PANOCAST_DATA_DIR", &vars, &mut self.data_dir)?;
        if let Some(url) = vars("PANOCAST_PUBLIC_URL").filter(|u| !u.is_empty()) {
            self.public_url = Some(url);
        }
        parse("PANOCAST_LOG_JSON", &vars, &mut self.log_json)?;
        parse(
            "PANOCAST_HLS_PART_TARGET_MS",
            &vars,
            &mut self.hls.part_target_ms,
        )?;
        parse(
            "PANOCAST_HLS_SEGMENT_TARGET_MS",
            &vars,
            &mut self.hls.segment_target_ms,
        )?;
        if let Some(secret) = vars("PANOCAST_JWT_SECRET") {
            self.auth.jwt_secret = Some(Secret::new(secret));
        }
        if let Some(password) = vars("PANOCAST_ADMIN_PASSWORD").filter(|p| !p.is_empty()) {
            self.auth.bootstrap_admin_password = Some(Secret::new(password));
        }
        parse(
            "PANOCAST_HLS_WINDOW_SEGMENTS",
            &vars,
            &mut self.hls.window_segments,
        )?;
        Ok(())
    }

    /// Refuses what cannot work, with the reason.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |msg: String| Err(ConfigError::Invalid(msg));
        let hls = &self.hls;
        if !(50..=2000).contains(&hls.part_target_ms) {
            return bad(format!(
                "hls.part_target_ms must be 50..=2000, not {}",
                hls.part_target_ms
            ));
        }
        if hls.segment_target_ms < 2 * hls.part_target_ms || hls.segment_target_ms > 20_000 {
            return bad(format!(
                "hls.segment_target_ms must be at least twice the part target and at most 20000, not {}",
                hls.segment_target_ms
            ));
        }
        if !(2.0..=10.0).contains(&hls.part_hold_back_parts) {
            return bad(format!(
                "hls.part_hold_back_parts must be 2..=10 (RFC 8216bis 4.4.3.8: at least 2), not {}",
                hls.part_hold_back_parts
            ));
        }
        if !(3..=100).contains(&hls.window_segments) {
            return bad(format!(
                "hls.window_segments must be 3..=100, not {}",
                hls.window_segments
            ));
        }
        if let Some(url) = &self.public_url {
            crate::public_url::PublicUrl::parse(url).map_err(ConfigError::Invalid)?;
        }
        self.limits.validate().map_err(ConfigError::Invalid)?;
        self.analytics.validate().map_err(ConfigError::Invalid)?;
        self.api.validate().map_err(ConfigError::Invalid)?;
        if self.rtmp_ingest.app.is_empty() || self.rtmp_ingest.app.contains('/') {
            return bad("rtmp_ingest.app must be one non-empty path segment".into());
        }
        if let Some(host) = &self.rtmp_ingest.public_host {
            if url::Host::parse(host).is_err() {
                return bad(format!(
                    "rtmp_ingest.public_host: {host:?} is not a host name or address"
                ));
            }
        }
        let rtsp = &self.rtsp_ingest;
        for (name, value, min) in [
            ("step_timeout_ms", rtsp.step_timeout_ms, 500),
            ("stall_timeout_ms", rtsp.stall_timeout_ms, 500),
            ("retry_min_ms", rtsp.retry_min_ms, 100),
            ("healthy_after_ms", rtsp.healthy_after_ms, 1_000),
        ] {
            if !(min..=600_000).contains(&value) {
                return bad(format!(
                    "rtsp_ingest.{name} must be {min}..=600000, not {value}"
                ));
            }
        }
        if !(rtsp.retry_min_ms..=600_000).contains(&rtsp.retry_max_ms) {
            return bad(format!(
                "rtsp_ingest.retry_max_ms must be retry_min_ms..=600000, not {}",
                rtsp.retry_max_ms
            ));
        }
        self.auth.validate().map_err(ConfigError::Invalid)?;
        self.webhooks.validate().map_err(ConfigError::Invalid)?;
        self.mail.validate().map_err(ConfigError::Invalid)?;
        self.tls.validate().map_err(ConfigError::Invalid)?;
        if !(1..=16).contains(&self.jobs.concurrency) {
            return bad(format!(
                "jobs.concurrency must be 1..=16, not {}",
                self.jobs.concurrency
            ));
        }
        if self.uploads.max_bytes == 0 {
            return bad("uploads.max_bytes must be at least 1".into());
        }
        if !(60..=30 * 24 * 3600).contains(&self.uploads.expire_after_s) {
            return bad(format!(
                "uploads.expire_after_s must be 60..=2592000, not {}",
                self.uploads.expire_after_s
            ));
        }
        let ladders = self.ladder_profiles();
        for (name, ladder) in &ladders {
            ladder.validate(name).map_err(ConfigError::Invalid)?;
        }
        if !ladders.contains_key(&self.vod.ladder) {
            return bad(format!(
                "vod.ladder: unknown ladder {:?} (known: {})",
                self.vod.ladder,
                ladders.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        for (i, s) in self.streams.iter().enumerate() {
            if let Some(ladder) = &s.ladder {
                if !ladders.contains_key(ladder) {
                    return bad(format!(
                        "stream {}: unknown ladder {ladder:?} (known: {})",
                        s.slug,
                        ladders.keys().cloned().collect::<Vec<_>>().join(", ")
                    ));
                }
            }
            if !is_valid_slug(&s.slug) {
                return bad(format!(
                    "stream slug {:?}: use 1-64 characters a-z, 0-9 and -",
                    s.slug
                ));
            }
            if let Err(why) = s.definition().validate() {
                return bad(format!("stream {}: {why}", s.slug));
            }
            match (&s.source, &s.key) {
                (StreamSource::RtmpPush, None) => {
                    return bad(format!(
                        "stream {}: an rtmp-push stream needs a key",
                        s.slug
                    ));
                }
                (StreamSource::RtmpPush, Some(key)) => {
                    if key.len() < 8 || key.contains(['/', '?', ' ']) {
                        return bad(format!(
                            "stream {}: the key needs at least 8 characters and no '/', '?' or spaces",
                            s.slug
                        ));
                    }
                }
                (StreamSource::RtspPull(_), Some(_)) => {
                    return bad(format!(
                        "stream {}: an rtsp-pull stream cannot be published over RTMP; remove its key",
                        s.slug
                    ));
                }
                (StreamSource::RtspPull(pull), None) => {
                    if let Err(e) = pull.source() {
                        // The error text never contains the password.
                        return bad(format!("stream {}: source url: {e}", s.slug));
                    }
                }
            }
            for other in &self.streams[..i] {
                if other.slug == s.slug {
                    return bad(format!("stream slug {} is declared twice", s.slug));
                }
                if other.key.is_some() && other.key == s.key {
                    return bad(format!("streams {} and {} share a key", other.slug, s.slug));
                }
            }
        }
        Ok(())
    }

    /// The built-in ladder profiles overlaid by the config file's.
    pub fn ladder_profiles(&self) -> BTreeMap<String, LadderProfile> {
        let mut all = profile::builtin_profiles();
        all.extend(self.ladders.clone());
        all
    }

    pub fn part_target(&self) -> Duration {
        Duration::from_millis(self.hls.part_target_ms)
    }

    pub fn segment_target(&self) -> Duration {
        Duration::from_millis(self.hls.segment_target_ms)
    }

    /// The RTSP ingest timing as the supervisors take it.
    pub fn rtsp_settings(&self) -> crate::ingest::rtsp::RtspIngestSettings {
        let ms = Duration::from_millis;
        let r = &self.rtsp_ingest;
        crate::ingest::rtsp::RtspIngestSettings {
            pull: crate::ingest::rtsp::puller::PullSettings {
                step_timeout: ms(r.step_timeout_ms),
                stall_timeout: ms(r.stall_timeout_ms),
            },
            retry_min: ms(r.retry_min_ms),
            retry_max: ms(r.retry_max_ms),
            healthy_after: ms(r.healthy_after_ms),
        }
    }
}

impl AuthConfig {
    fn validate(&self) -> Result<(), String> {
        if self.jwt_algorithm == JwtAlgorithm::HS256
            && self
                .jwt_secret
                .as_ref()
                .is_none_or(|s| s.expose().len() < 32)
        {
            return Err(
                "auth.jwt_algorithm = \"HS256\" needs auth.jwt_secret (or PANOCAST_JWT_SECRET) of at least 32 bytes".into(),
            );
        }
        if self.issuer.is_empty() {
            return Err("auth.issuer must not be empty".into());
        }
        for (name, v) in [
            ("access_ttl_s", self.access_ttl_s),
            ("refresh_ttl_s", self.refresh_ttl_s),
            ("playback_ttl_s", self.playback_ttl_s),
        ] {
            if !(10..=365 * 24 * 3600).contains(&v) {
                return Err(format!("auth.{name} must be 10 s .. 1 year, not {v}"));
            }
        }
        for (name, v) in [
            ("address_burst", self.address_burst),
            ("address_per_minute", self.address_per_minute),
            ("account_burst", self.account_burst),
            ("account_per_minute", self.account_per_minute),
        ] {
            if v == 0 {
                return Err(format!("auth.{name} must be at least 1"));
            }
        }
        if !(1024..=16 << 20).contains(&self.max_body_bytes) {
            return Err("auth.max_body_bytes must be 1 KiB .. 16 MiB".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::rtsp::RtspTransport;

    #[test]
    fn analytics_section() {
        let config = Config::default();
        assert!(config.analytics.enabled);
        assert_eq!(config.analytics.view_threshold_s, 10);
        assert_eq!(config.analytics.hourly_retention_days, 396);
        let config: Config =
            toml::from_str("[analytics]\nenabled = false\nview_threshold_s = 30\n").expect("toml");
        assert!(!config.analytics.enabled);
        assert_eq!(config.analytics.view_threshold_s, 30);
        config.validate().expect("valid");
        let config: Config =
            toml::from_str("[analytics]\nminute_retention_days = 40\nhourly_retention_days = 30\n")
                .expect("toml");
        assert!(
            config.validate().is_err(),
            "hourly points kept shorter than minutes"
        );
        assert!(toml::from_str::<Config>("[analytics]\nenable = true\n").is_err());
    }

    #[test]
    fn public_url_is_an_absolute_http_url() {
        let config: Config =
            toml::from_str("public_url = \"https://tv.example.com/\"\n").expect("toml");
        config.validate().expect("valid");
        let mut config = Config::default();
        assert_eq!(config.public_url, None);
        config
            .apply_env(|name| (name == "PANOCAST_PUBLIC_URL").then(|| "/watch".into()))
            .expect("env");
        assert!(config.validate().is_err(), "a path is not a public URL");
        for bad in [
            "tv.example.com",
            "ftp://tv.example.com",
            "https://tv.example.com/?x",
        ] {
            config.public_url = Some(bad.into());
            assert!(config.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn file_then_environment_override_defaults() {
        let mut config: Config = toml::from_str(
            r#"
            http = "127.0.0.1:9000"
            [hls]
            part_target_ms = 250
            [[streams]]
            slug = "cam1"
            key = "secret-key-1"
            projection = "equirect-stereo-tb"
            orientation = { yaw = 90.0 }
            "#,
        )
        .expect("valid toml");
        config
            .apply_env(|name| (name == "PANOCAST_HLS_PART_TARGET_MS").then(|| "300".into()))
            .expect("valid env");
        assert_eq!(config.http.port(), 9000);
        assert_eq!(config.rtmp.port(), 1935);
        assert_eq!(config.hls.part_target_ms, 300);
        assert_eq!(config.streams[0].projection, Projection::EquirectStereoTb);
        assert_eq!(config.streams[0].orientation.yaw, 90.0);
        config.validate().expect("valid");
    }

    #[test]
    fn rtsp_pull_streams() {
        let config: Config = toml::from_str(
            r#"
            [rtsp_ingest]
            stall_timeout_ms = 3000
            [[streams]]
            slug = "theta"
            source = { kind = "rtsp-pull", url = "rtsp://admin:s3cret-pw@10.1.2.3/live", transport = "udp" }
            [[streams]]
            slug = "insta"
            source = { kind = "rtsp-pull", url = "rtsp://10.1.2.4:8554/ch0", username = "u", password = "s3cret-pw" }
            [[streams]]
            slug = "obs"
            key = "secret-key-1"
            source = { kind = "rtmp-push" }
            "#,
        )
        .expect("valid toml");
        config.validate().expect("valid");
        let StreamSource::RtspPull(pull) = &config.streams[0].source else {
            panic!("rtsp-pull expected");
        };
        assert_eq!(pull.transport, RtspTransport::Udp);
        let source = pull.source().expect("source");
        assert_eq!(source.url().as_str(), "rtsp://10.1.2.3/live");
        let StreamSource::RtspPull(pull) = &config.streams[1].source else {
            panic!("rtsp-pull expected");
        };
        assert_eq!(pull.transport, RtspTransport::Tcp);
        assert_eq!(config.streams[2].source, StreamSource::RtmpPush);
        assert_eq!(config.rtsp_settings().pull.stall_timeout.as_millis(), 3000);
        // Nothing secret in Debug output.
        let debug = format!("{config:?}");
        assert!(
            !debug.contains("s3cret-pw") && !debug.contains("secret-key-1"),
            "{debug}"
        );
    }

    #[test]
    fn rtsp_pull_mistakes_are_refused() {
        let check = |streams: &str| {
            let config: Config = toml::from_str(streams).expect("toml");
            config.validate().map_err(|e| e.to_string())
        };
        let e = check(
            r#"[[streams]]
            slug = "a"
            key = "secret-key-1"
            source = { kind = "rtsp-pull", url = "rtsp://cam/x" }"#,
        )
        .unwrap_err();
        assert!(e.contains("cannot be published over RTMP"), "{e}");
        let e = check(
            r#"[[streams]]
            slug = "a"
            source = { kind = "rtsp-pull", url = "http://user:pw-secret@cam/x" }"#,
        )
        .unwrap_err();
        assert!(e.contains("scheme") && !e.contains("pw-secret"), "{e}");
        let e = check(
            r#"[[streams]]
            slug = "a"
            source = { kind = "rtsp-pull", url = "rtsp://u:p@cam/x", username = "u" }"#,
        )
        .unwrap_err();
        assert!(e.contains("both"), "{e}");
        let e = check(
            r#"[[streams]]
            slug = "a""#,
        )
        .unwrap_err();
        assert!(e.contains("needs a key"), "{e}");
        assert!(toml::from_str::<Config>(
            r#"[[streams]]
            slug = "a"
            source = { kind = "rtsp-pull", url = "rtsp://cam/x", transport = "sctp" }"#
        )
        .is_err());
        assert!(toml::from_str::<Config>(
            r#"[[streams]]
            slug = "a"
            source = { kind = "rtsp-pull", url = "rtsp://cam/x", passwrd = "x" }"#
        )
        .is_err());
        let mut config = Config::default();
        config.rtsp_ingest.retry_max_ms = 10;
        assert!(config.validate().is_err());
    }

    #[test]
    fn unknown_fields_and_bad_values_are_refused() {
        assert!(toml::from_str::<Config>("htp = \"x\"").is_err());
        let mut config = Config::default();
        config.hls.part_target_ms = 10;
        assert!(config.validate().is_err());
        // PART-HOLD-BACK below two parts breaks the HLS rules.
        let mut config = Config::default();
        config.hls.part_hold_back_parts = 1.5;
        assert!(config.validate().is_err());
        config.hls.part_hold_back_parts = 2.0;
        assert!(config.validate().is_ok());
        let mut config = Config::default();
        assert!(config
            .apply_env(|n| (n == "PANOCAST_HTTP").then(|| "nope".into()))
            .is_err());
    }

    #[test]
    fn tls_sections_that_cannot_work_are_refused() {
        let parsed = |text: &str| toml::from_str::<Config>(text).expect("toml");
        let on = parsed("[tls]\nmode = \"local-ca\"\nrtmps = \"127.0.0.1:1936\"\n");
        assert_eq!(on.tls.mode, TlsMode::LocalCa);
        assert!(on.validate().is_ok());
        for (bad, why) in [
            ("[tls]\nmode = \"files\"\ncert = \"c.pem\"\n", "files without key"),
            ("[tls]\nmode = \"local-ca\"\ncert = \"c.pem\"\n", "cert outside files"),
            ("[tls]\nrtmps = \"127.0.0.1:1936\"\n", "rtmps with TLS off"),
            ("[tls]\nmode = \"acme\"\n", "acme without domains"),
            ("[tls]\nmode = \"acme\"\ndomains = [\"a b\"]\n", "a domain that is no host name"),
            (
                "[tls]\nmode = \"acme\"\ndomains = [\"a.example\"]\nacme_directory = \"http://x/dir\"\n",
                "acme over plain http",
            ),
        ] {
            assert!(parsed(bad).validate().is_err(), "{why}");
        }
        assert!(toml::from_str::<Config>("[tls]\nmode = \"https\"\n").is_err());
    }

    #[test]
    fn rtmp_public_host_is_a_host_name_or_address() {
        for good in ["live.example.com", "192.0.2.7", "[2001:db8::1]"] {
            let config: Config =
                toml::from_str(&format!("[rtmp_ingest]\npublic_host = \"{good}\"\n"))
                    .expect("toml");
            assert!(config.validate().is_ok(), "{good}");
        }
        for bad in ["live.example.com/x", "a b", "host:1935", ""] {
            let config: Config =
                toml::from_str(&format!("[rtmp_ingest]\npublic_host = \"{bad}\"\n")).expect("toml");
            assert!(config.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn uploads_are_encoded_to_a_known_ladder() {
        assert_eq!(Config::default().vod.ladder, profile::PASSTHROUGH);
        let config: Config = toml::from_str("[vod]\nladder = \"360-hd\"").expect("toml");
        config.validate().expect("a built-in ladder");
        let config: Config = toml::from_str("[vod]\nladder = \"nope\"").expect("toml");
        let err = config.validate().expect_err("unknown ladder").to_string();
        assert!(
            err.contains("vod.ladder") && err.contains("360-hd"),
            "{err}"
        );
    }
}
