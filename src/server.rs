//! Wires config, stream directory, packagers, RTMP ingest and HTTP into one server.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rand::distr::{Alphanumeric, SampleString};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::api::{self, AppState};
use crate::auth::request::Authenticator;
use crate::auth::tokens::{KeyError, TokenKeys};
use crate::auth::{accounts, Role};
use crate::catalog::{Catalog, StreamFields};
use crate::config::{Config, SourceConfig, StreamConfig};
use crate::db::{self, DbError};
use crate::ingest::rtmp::{self, RtmpConfig};
use crate::ingest::rtsp;
use crate::packager::latency::LatencyStats;
use crate::packager::{Outputs, PackagerConfig};
use crate::pipeline::sink::LadderSinkFactory;
use crate::streams::hub::StreamHub;
use crate::streams::{Projection, StreamDirectory};

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
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("catalog: {0}")]
    Catalog(String),
}

/// Binds both listeners and runs the server until `shutdown` is cancelled.
pub async fn start(mut config: Config, shutdown: CancellationToken) -> Result<Started, StartError> {
    config.validate()?;
    std::fs::create_dir_all(&config.data_dir).map_err(|source| StartError::DataDir {
        path: config.data_dir.display().to_string(),
        source,
    })?;
    let pool = db::open(&config.data_dir).await?;
    bootstrap_admin(&pool, &config).await?;
    let keys = TokenKeys::load_or_create(&config.auth, &config.data_dir)?;
    let catalog = Arc::new(
        Catalog::load(pool.clone())
            .await
            .map_err(|e| StartError::Catalog(e.to_string()))?,
    );
    // Pulled cameras come from the config file on every start; the catalog does not
    // carry sources yet, and seeding replaces `config.streams` with catalog records.
    let pulled: Vec<StreamConfig> = config
        .streams
        .iter()
        .filter(|s| matches!(s.source, SourceConfig::RtspPull(_)))
        .cloned()
        .collect();
    let demo = seed_catalog(&catalog, &mut config).await?;
    let auth = Arc::new(Authenticator::new(pool, keys, config.auth.clone()));
    let directory: Arc<dyn StreamDirectory> = catalog.clone();
    let outputs = Arc::new(Outputs::default());
    let latency = Arc::new(LatencyStats::default());
    let profiles = Arc::new(config.ladder_profiles());
    if let Err(e) = crate::pipeline::init() {
        // Passthrough streams still work; ladders report the error as their state.
        tracing::warn!(error = %e, "transcoding ladders are unavailable");
    }
    let hub = StreamHub::new(Arc::new(LadderSinkFactory {
        packager: PackagerConfig {
            part_target: config.part_target(),
            segment_target: config.segment_target(),
            window_segments: config.hls.window_segments,
        },
        outputs: Arc::clone(&outputs),
        latency: Arc::clone(&latency),
        profiles: Arc::clone(&profiles),
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
        catalog,
        auth,
        ladders: Arc::new(profiles.keys().cloned().collect()),
    });
    let http_shutdown = shutdown.clone();
    tokio::spawn(async move {
        // Connect info gives login rate limiting the client address.
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        let served = axum::serve(http_listener, app)
            .with_graceful_shutdown(async move { http_shutdown.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "HTTP server stopped");
        }
    });
    // One supervisor per pulled camera; each watches `shutdown` and ends with it.
    let rtsp_settings = config.rtsp_settings();
    for s in &pulled {
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
        let stream = crate::streams::StreamDef {
            slug: s.slug.clone(),
            projection: s.projection,
            orientation: s.orientation,
            ladder: s
                .ladder
                .clone()
                .unwrap_or_else(|| crate::pipeline::profile::PASSTHROUGH.into()),
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

/// Creates user `admin` from `PANOCAST_ADMIN_PASSWORD` when there is no account yet.
async fn bootstrap_admin(pool: &db::Pool, config: &Config) -> Result<(), StartError> {
    let users = accounts::count_users(pool)
        .await
        .map_err(|e| StartError::Catalog(e.to_string()))?;
    if users > 0 {
        return Ok(());
    }
    let Some(password) = &config.auth.bootstrap_admin_password else {
        tracing::warn!(
            "no accounts yet: create the first admin with `panocast admin create-user --role admin` \
             or start once with PANOCAST_ADMIN_PASSWORD set"
        );
        return Ok(());
    };
    accounts::create_user(pool, "admin", &password.0, Role::Admin)
        .await
        .map_err(|e| StartError::Catalog(format!("PANOCAST_ADMIN_PASSWORD: {e}")))?;
    tracing::info!("created the first admin account, user name `admin`");
    Ok(())
}

/// Fills an empty catalog: the config file's streams, or else the `demo` stream.
/// Afterwards the catalog owns the streams and the config's `[[streams]]` are not
/// read again. Leaves in `config.streams` what to print at start; returns whether
/// that is the demo stream (whose key may be printed).
async fn seed_catalog(catalog: &Catalog, config: &mut Config) -> Result<bool, StartError> {
    let failed = |e: crate::catalog::CatalogError| StartError::Catalog(e.to_string());
    if catalog.is_empty() {
        let demo = config.streams.is_empty();
        if demo {
            config.streams.push(demo_stream(&config.data_dir)?);
        }
        for s in &config.streams {
            let fields = StreamFields {
                projection: s.projection,
                orientation: s.orientation,
                ladder: s
                    .ladder
                    .clone()
                    .unwrap_or_else(|| crate::pipeline::profile::PASSTHROUGH.into()),
                ..StreamFields::new(&s.slug)
            };
            catalog
                // A pulled camera has no key: the catalog makes one nobody is shown,
                // so it cannot be published over RTMP.
                .create(&s.slug, None, fields, s.key.clone())
                .await
                .map_err(failed)?;
        }
        return Ok(demo);
    }
    for s in &config.streams {
        if catalog.get_slug(&s.slug).is_none() {
            tracing::warn!(
                stream = %s.slug,
                "config-file stream ignored: the catalog is not empty, create it with the API"
            );
        }
    }
    // The demo stream's key is printed while it still opens the demo stream.
    let key_file = config.data_dir.join("demo-stream-key");
    let demo_key = std::fs::read_to_string(key_file).unwrap_or_default();
    let demo = match catalog.by_publish_key(demo_key.trim()).await {
        Some(def) if def.slug == "demo" && !demo_key.trim().is_empty() => Some(demo_key),
        _ => None,
    };
    let (records, _) = catalog.list(None, 20, |_| true);
    config.streams = records
        .iter()
        .map(|r| StreamConfig {
            slug: r.slug.clone(),
            key: match (&demo, r.slug.as_str()) {
                (Some(key), "demo") => Some(key.trim().to_string()),
                _ => None,
            },
            source: SourceConfig::RtmpPush,
            projection: r.projection,
            orientation: r.orientation,
            ladder: Some(r.ladder.clone()),
        })
        .collect();
    Ok(demo.is_some() && config.streams.len() == 1)
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
        ladder: None,
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
