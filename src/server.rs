//! Wires config, stream directory, packagers, RTMP ingest and HTTP into one server.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rand::distr::{Alphanumeric, SampleString};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::api::{self, AppState};
use crate::config::{Config, SourceConfig, StreamConfig};
use crate::ingest::rtmp::{self, RtmpConfig};
use crate::ingest::rtsp;
use crate::packager::latency::LatencyStats;
use crate::packager::{Outputs, PackagerConfig, PackagerFactory};
use crate::streams::config_directory::{ConfigDirectory, KeyedStream};
use crate::streams::hub::StreamHub;
use crate::streams::{Projection, StreamDef, StreamDirectory};

/// Where a started server listens, and the streams it took from the config.
pub struct Started {
    pub http: SocketAddr,
    pub rtmp: SocketAddr,
    pub streams: Vec<StreamConfig>,
    /// Whether `streams` is the generated demo stream.
    pub demo: bool,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
}

/// Binds both listeners and runs the server until `shutdown` is cancelled.
pub async fn start(mut config: Config, shutdown: CancellationToken) -> Result<Started, StartError> {
    let demo = config.streams.is_empty();
    if demo {
        config.streams.push(demo_stream(&config.data_dir)?);
    }
    config.validate()?;

    let directory: Arc<dyn StreamDirectory> = Arc::new(ConfigDirectory::new(
        config
            .streams
            .iter()
            .map(|s| KeyedStream {
                stream: StreamDef {
                    slug: s.slug.clone(),
                    projection: s.projection,
                    orientation: s.orientation,
                },
                key: s.key.clone(),
            })
            .collect(),
    ));
    let outputs = Arc::new(Outputs::default());
    let latency = Arc::new(LatencyStats::default());
    let hub = StreamHub::new(Arc::new(PackagerFactory {
        config: PackagerConfig {
            part_target: config.part_target(),
            segment_target: config.segment_target(),
            window_segments: config.hls.window_segments,
        },
        outputs: Arc::clone(&outputs),
        latency: Arc::clone(&latency),
    }));

    let bind = |addr: SocketAddr| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })
    };
    let http_listener = bind(config.http).await?;
    let rtmp_listener = bind(config.rtmp).await?;
    let http = http_listener
        .local_addr()
        .map_err(|source| StartError::Bind {
            addr: config.http,
            source,
        })?;
    let rtmp_addr = rtmp_listener
        .local_addr()
        .map_err(|source| StartError::Bind {
            addr: config.rtmp,
            source,
        })?;

    let app = api::app(AppState {
        outputs,
        directory: Arc::clone(&directory),
        latency,
        hub: Arc::clone(&hub),
    });
    let http_shutdown = shutdown.clone();
    tokio::spawn(async move {
        let served = axum::serve(http_listener, app)
            .with_graceful_shutdown(async move { http_shutdown.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "HTTP server stopped");
        }
    });
    // One supervisor per pulled camera; each watches `shutdown` and ends with it.
    let rtsp_settings = config.rtsp_settings();
    for s in &config.streams {
        let SourceConfig::RtspPull(pull) = &s.source else {
            continue;
        };
        // validate() checked the source.
        let source = match pull.source() {
            Ok(source) => source,
            Err(e) => {
                return Err(crate::config::ConfigError::Invalid(format!(
                    "stream {}: source url: {e}",
                    s.slug
                ))
                .into())
            }
        };
        let stream = StreamDef {
            slug: s.slug.clone(),
            projection: s.projection,
            orientation: s.orientation,
        };
        tokio::spawn(rtsp::supervise(
            stream,
            source,
            Arc::clone(&hub),
            rtsp_settings,
            shutdown.clone(),
        ));
    }
    let rtmp_config = RtmpConfig {
        app: config.rtmp_ingest.app.clone(),
        handshake_timeout: Duration::from_millis(config.rtmp_ingest.handshake_timeout_ms),
        idle_timeout: Duration::from_millis(config.rtmp_ingest.idle_timeout_ms),
    };
    tokio::spawn(rtmp::serve(
        rtmp_listener,
        directory,
        hub,
        rtmp_config,
        shutdown,
    ));

    tracing::info!(%http, rtmp = %rtmp_addr, streams = config.streams.len(), "panocast is up");
    Ok(Started {
        http,
        rtmp: rtmp_addr,
        streams: config.streams,
        demo,
    })
}

/// The `demo` stream: equirectangular, with a random key kept in the data directory so
/// that OBS, once set up, keeps working across restarts.
fn demo_stream(data_dir: &Path) -> Result<StreamConfig, StartError> {
    let io = |source| StartError::DataDir {
        path: data_dir.display().to_string(),
        source,
    };
    std::fs::create_dir_all(data_dir).map_err(io)?;
    let key_file = data_dir.join("demo-stream-key");
    let key = match std::fs::read_to_string(&key_file) {
        Ok(text) if text.trim().len() >= 8 => text.trim().to_string(),
        _ => {
            let key = Alphanumeric.sample_string(&mut rand::rng(), 24);
            write_secret(&key_file, &key).map_err(io)?;
            key
        }
    };
    Ok(StreamConfig {
        slug: "demo".into(),
        key: Some(key),
        projection: Projection::Equirect,
        orientation: Default::default(),
        source: SourceConfig::RtmpPush,
    })
}

/// Writes a file only its owner can read.
fn write_secret(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())
}
