//! The one typed configuration: defaults → TOML file → `PANOCAST_*` environment →
//! command-line flags → [`Config::validate`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::streams::definition::is_valid_slug;
use crate::streams::{Orientation, Projection};

/// Everything `panocast serve` needs.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// HTTP listen address (HLS delivery, API, metrics).
    pub http: SocketAddr,
    /// RTMP listen address (publishers).
    pub rtmp: SocketAddr,
    /// Where keys and recordings live.
    pub data_dir: PathBuf,
    /// Log as JSON lines instead of human-readable text.
    pub log_json: bool,
    pub hls: HlsConfig,
    pub rtmp_ingest: RtmpIngestConfig,
    /// Streams that may be published; empty means "make a demo stream".
    pub streams: Vec<StreamConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            http: SocketAddr::from(([0, 0, 0, 0], 8080)),
            rtmp: SocketAddr::from(([0, 0, 0, 0], 1935)),
            data_dir: PathBuf::from("./data"),
            log_json: false,
            hls: HlsConfig::default(),
            rtmp_ingest: RtmpIngestConfig::default(),
            streams: Vec::new(),
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
}

impl Default for HlsConfig {
    fn default() -> Self {
        Self {
            part_target_ms: 200,
            segment_target_ms: 2000,
            window_segments: 10,
        }
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
}

impl Default for RtmpIngestConfig {
    fn default() -> Self {
        Self {
            app: "live".into(),
            handshake_timeout_ms: 5_000,
            idle_timeout_ms: 10_000,
        }
    }
}

/// A stream declared in the config file.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamConfig {
    pub slug: String,
    /// Secret stream key; never logged.
    pub key: String,
    #[serde(default)]
    pub projection: Projection,
    #[serde(default)]
    pub orientation: Orientation,
}

impl std::fmt::Debug for StreamConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamConfig")
            .field("slug", &self.slug)
            .field("key", &"<redacted>")
            .field("projection", &self.projection)
            .field("orientation", &self.orientation)
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
        if !(3..=100).contains(&hls.window_segments) {
            return bad(format!(
                "hls.window_segments must be 3..=100, not {}",
                hls.window_segments
            ));
        }
        if self.rtmp_ingest.app.is_empty() || self.rtmp_ingest.app.contains('/') {
            return bad("rtmp_ingest.app must be one non-empty path segment".into());
        }
        for (i, s) in self.streams.iter().enumerate() {
            if !is_valid_slug(&s.slug) {
                return bad(format!(
                    "stream slug {:?}: use 1-64 characters a-z, 0-9 and -",
                    s.slug
                ));
            }
            if s.key.len() < 8 || s.key.contains(['/', '?', ' ']) {
                return bad(format!(
                    "stream {}: the key needs at least 8 characters and no '/', '?' or spaces",
                    s.slug
                ));
            }
            for other in &self.streams[..i] {
                if other.slug == s.slug {
                    return bad(format!("stream slug {} is declared twice", s.slug));
                }
                if other.key == s.key {
                    return bad(format!("streams {} and {} share a key", other.slug, s.slug));
                }
            }
        }
        Ok(())
    }

    pub fn part_target(&self) -> Duration {
        Duration::from_millis(self.hls.part_target_ms)
    }

    pub fn segment_target(&self) -> Duration {
        Duration::from_millis(self.hls.segment_target_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn unknown_fields_and_bad_values_are_refused() {
        assert!(toml::from_str::<Config>("htp = \"x\"").is_err());
        let mut config = Config::default();
        config.hls.part_target_ms = 10;
        assert!(config.validate().is_err());
        let mut config = Config::default();
        assert!(config
            .apply_env(|n| (n == "PANOCAST_HTTP").then(|| "nope".into()))
            .is_err());
    }
}
