//! Wires config, stream directory, packagers, RTMP ingest and HTTP into one server.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rand::distr::{Alphanumeric, SampleString};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use std::collections::HashMap;

use crate::api::listener::Transport;
use crate::api::vod::Vod;
use crate::api::{self, AppShared, AppState};
use crate::assets::events::AssetBus;
use crate::assets::job::ExtractAudio;
use crate::assets::service::AssetService;
use crate::assets::store::AssetStore;
use crate::assets::transcode::TranscodeHls;
use crate::auth::request::Authenticator;
use crate::auth::tokens::{KeyError, TokenKeys};
use crate::auth::{accounts, Role};
use crate::catalog::Catalog;
use crate::config::{Config, ConfigError, StreamConfig, TlsMode};
use crate::db::{self, DbError};
use crate::ingest::rtmp::{self, RtmpConfig};
use crate::jobs::sqlite::SqliteJobStore;
use crate::jobs::worker::{JobHandler, JobQueue};
use crate::jobs::JobStore;
use crate::limits::Limits;
use crate::notify::webhooks::Webhooks;
use crate::packager::latency::LatencyStats;
use crate::packager::{Outputs, PackagerConfig};
use crate::pipeline::sink::LadderSinkFactory;
use crate::public_url::PublicUrl;
use crate::schedule::store::Schedule;
use crate::streams::events::EventBus;
use crate::streams::owner::StreamContext;
use crate::streams::registry::StreamRegistry;
use crate::streams::service::StreamService;
use crate::streams::StreamDef;
use crate::streams::{Projection, StreamDirectory, StreamSource};
use crate::tls::Tls;
use crate::uploads::store::UploadStore;

/// Where a started server listens, and the streams to print.
pub struct Started {
    pub http: SocketAddr,
    pub rtmp: SocketAddr,
    /// The HTTPS and RTMPS listeners, when TLS is on.
    pub https: Option<SocketAddr>,
    pub rtmps: Option<SocketAddr>,
    /// Whether devices are to trust a local CA (and find it at `/ca.crt`).
    pub local_ca: bool,
    /// The public host names of an ACME certificate (empty in other modes).
    pub acme_domains: Vec<String>,
    /// The first streams of the catalog, by slug.
    pub streams: Vec<Arc<StreamDef>>,
    /// The key of the generated `demo` stream, while it is the only stream and the
    /// key still opens it (it may be printed; no other key is ever shown again).
    pub demo_key: Option<String>,
    /// The stream lifecycle bus (for in-process subscribers and tests).
    pub bus: EventBus,
    /// The listeners and stream tasks: once `shutdown` is cancelled, waiting for these
    /// waits until connections are closed and streams have ended cleanly.
    pub tasks: TaskTracker,
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
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

/// Everything a server is made of, before it listens: the HTTP router (which tests
/// drive with `oneshot`) and what RTMP ingest needs.
pub struct Built {
    pub app: axum::Router,
    pub state: AppState,
    pub registry: Arc<StreamRegistry>,
    pub bus: EventBus,
    /// The generated demo stream's key, when it may be printed.
    pub demo_key: Option<String>,
    config: Config,
    tls: Option<Tls>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

/// Binds both listeners and runs the server until `shutdown` is cancelled.
pub async fn start(config: Config, shutdown: CancellationToken) -> Result<Started, StartError> {
    build(config, shutdown).await?.listen().await
}

/// Opens the database and the catalog, seeds it, starts the stream owners' context and
/// builds the router; nothing listens yet. Pulled cameras start with [`Built::listen`].
pub async fn build(config: Config, shutdown: CancellationToken) -> Result<Built, StartError> {
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
    let demo_key = seed_catalog(&catalog, &config).await?;
    let webhooks = Webhooks::new(pool.clone(), config.webhooks.clone());
    let vod = start_vod(&pool, &config, &shutdown).await?;
    let auth = Arc::new(Authenticator::new(pool.clone(), keys, config.auth.clone()));
    auth.disabled
        .load(&pool)
        .await
        .map_err(|e| StartError::Catalog(format!("disabled accounts: {e}")))?;
    let directory: Arc<dyn StreamDirectory> = catalog.clone();
    let outputs = Arc::new(Outputs::default());
    let latency = Arc::new(LatencyStats::default());
    let profiles = Arc::new(config.ladder_profiles());
    if let Err(e) = crate::pipeline::init() {
        // Passthrough streams still work; ladders report the error as their state.
        tracing::warn!(error = %e, "transcoding ladders are unavailable");
    }
    let bus = EventBus::new();
    let tasks = TaskTracker::new();
    let tls = crate::tls::start(&config.tls, &config.data_dir, &tasks, &shutdown).await?;
    // Subscribed before any stream task exists, so no media-path event is missed.
    crate::notify::bus_writer::spawn(pool.clone(), bus.subscribe(), shutdown.clone());
    webhooks.spawn(shutdown.clone());
    // The mailer starts once the listeners are bound (see `serve`): its links are
    // absolute on the public URL, which may be built from the bound address.
    let notifications = crate::notify::in_app::InApp::new(pool.clone(), shutdown.clone());
    notifications.spawn();
    let schedule = Arc::new(Schedule::new(pool.clone()));
    schedule.spawn(bus.subscribe(), shutdown.clone());
    crate::recordings::Recorder {
        assets: vod.assets.clone(),
        catalog: Arc::clone(&catalog),
        outputs: Arc::clone(&outputs),
    }
    .spawn(bus.subscribe(), shutdown.clone(), &tasks);
    let registry = StreamRegistry::new(StreamContext {
        factory: Arc::new(LadderSinkFactory {
            packager: PackagerConfig {
                part_target: config.part_target(),
                segment_target: config.segment_target(),
                window_segments: config.hls.window_segments,
                part_hold_back_parts: config.hls.part_hold_back_parts,
            },
            outputs: Arc::clone(&outputs),
            latency: Arc::clone(&latency),
            profiles: Arc::clone(&profiles),
        }),
        bus: bus.clone(),
        rtsp: config.rtsp_settings(),
        shutdown: shutdown.clone(),
        tasks: tasks.clone(),
        max_live_streams: config.limits.max_live_streams,
        stream_memory_bytes: config.limits.stream_memory_bytes,
    });
    let analytics = Arc::new(crate::analytics::Analytics::new(
        config.analytics.clone(),
        pool.clone(),
    ));
    if config.analytics.enabled {
        tasks.spawn(crate::analytics::task::run(
            Arc::clone(&analytics),
            shutdown.clone(),
        ));
    }
    let posters = crate::posters::Posters::start(
        config.data_dir.clone(),
        crate::posters::Sources {
            outputs: Arc::clone(&outputs),
            catalog: Arc::clone(&catalog),
            assets: vod.assets.store.clone(),
            bus: vod.assets.bus.clone(),
        },
        shutdown.clone(),
    );
    let streams = Arc::new(StreamService {
        catalog: Arc::clone(&catalog),
        registry: Arc::clone(&registry),
    });
    let state = AppState::new(AppShared {
        outputs,
        directory,
        latency,
        streams,
        catalog,
        auth,
        ladders: Arc::new(profiles.keys().cloned().collect()),
        limits: Arc::new(Limits::new(&config.limits)),
        webhooks,
        schedule,
        vod,
        api: Arc::new(config.api.clone()),
        notifications,
        search: Arc::new(crate::search::SearchIndex::new(pool.clone())),
        trust: tls.as_ref().and_then(|t| t.trust.clone()),
        acme: tls.as_ref().and_then(|t| t.acme.clone()),
        analytics,
        posters,
        ingest: Arc::new(api::ingest_address::IngestListeners::new(&config)),
    });
    Ok(Built {
        app: api::app(state.clone()),
        state,
        registry,
        bus,
        demo_key,
        config,
        tls,
        shutdown,
        tasks,
    })
}

impl Built {
    /// Binds both listeners, starts the pulled cameras and serves until the shutdown
    /// token is cancelled.
    pub async fn listen(self) -> Result<Started, StartError> {
        let Built {
            app,
            state,
            registry,
            bus,
            demo_key,
            config,
            tls,
            shutdown,
            tasks,
        } = self;
        let catalog = Arc::clone(&state.catalog);
        let local_ca = state.trust.is_some();
        let acme_domains = match config.tls.mode {
            crate::config::TlsMode::Acme => config.tls.domains.clone(),
            _ => Vec::new(),
        };
        serve(
            app,
            &state,
            &tasks,
            &config,
            tls,
            &shutdown,
            registry.clone(),
        )
        .await
        .map(|bound| Started {
            http: bound.http,
            rtmp: bound.rtmp,
            https: bound.https,
            rtmps: bound.rtmps,
            local_ca,
            acme_domains,
            streams: catalog.list(None, 20, |_| true).0,
            demo_key,
            bus,
            tasks,
        })
    }
}

/// Where the listeners are bound.
struct Bound {
    http: SocketAddr,
    rtmp: SocketAddr,
    https: Option<SocketAddr>,
    rtmps: Option<SocketAddr>,
}

async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), StartError> {
    let fail = |source| StartError::Bind { addr, source };
    let listener = TcpListener::bind(addr).await.map_err(fail)?;
    let local = listener.local_addr().map_err(fail)?;
    Ok((listener, local))
}

async fn serve(
    app: axum::Router,
    state: &AppState,
    tasks: &TaskTracker,
    config: &Config,
    tls: Option<Tls>,
    shutdown: &CancellationToken,
    registry: Arc<StreamRegistry>,
) -> Result<Bound, StartError> {
    let limits = Arc::clone(&state.limits);
    let directory = Arc::clone(&state.directory);
    let catalog = &state.catalog;
    let (http_listener, http) = bind(config.http).await?;
    let (rtmp_listener, rtmp_addr) = bind(config.rtmp).await?;
    let https = match &tls {
        Some(_) => Some(bind(config.tls.https).await?),
        None => None,
    };
    let rtmps = match (&tls, config.tls.rtmps) {
        (Some(_), Some(addr)) => Some(bind(addr).await?),
        _ => None,
    };
    let https_addr = https.as_ref().map(|(_, addr)| *addr);
    let rtmps_addr = rtmps.as_ref().map(|(_, addr)| *addr);
    state.ingest.bound(rtmp_addr, rtmps_addr);
    if let (Some(trust), Some(addr)) = (&state.trust, https_addr) {
        let _ = trust.https_port.set(addr.port());
    }

    tasks.spawn(api::listener::serve(
        http_listener,
        app.clone(),
        Arc::clone(&limits),
        Transport::Plain {
            redirect_to: https_addr.map(|a| a.port()),
        },
        shutdown.clone(),
    ));
    if let (Some(tls), Some((listener, _))) = (&tls, https) {
        tasks.spawn(api::listener::serve(
            listener,
            app,
            Arc::clone(&limits),
            Transport::Tls(tls.https.clone()),
            shutdown.clone(),
        ));
    }
    // Pulled cameras are pulled from start to shutdown (or until disabled).
    registry.start_pullers(&catalog.all());
    let rtmp_config = RtmpConfig {
        app: config.rtmp_ingest.app.clone(),
        handshake_timeout: Duration::from_millis(config.rtmp_ingest.handshake_timeout_ms),
        idle_timeout: Duration::from_millis(config.rtmp_ingest.idle_timeout_ms),
    };
    if let (Some(tls), Some((listener, _))) = (&tls, rtmps) {
        tasks.spawn(rtmp::server::serve_tls(
            listener,
            Arc::clone(&directory),
            Arc::clone(&registry),
            rtmp_config.clone(),
            Arc::clone(&limits),
            tls.rtmps.clone(),
            shutdown.clone(),
        ));
    }
    tasks.spawn(rtmp::serve(
        rtmp_listener,
        directory,
        registry,
        rtmp_config,
        limits,
        shutdown.clone(),
    ));
    let public_url = public_url(config, http, https_addr)?;
    crate::notify::mail::Mailer::new(
        state.auth.pool.clone(),
        config.mail.clone(),
        public_url.clone(),
    )
    .spawn(shutdown.clone());
    tracing::info!(%http, rtmp = %rtmp_addr, https = ?https_addr, rtmps = ?rtmps_addr,
        %public_url, streams = catalog.len(), "panocast is up");
    Ok(Bound {
        http,
        rtmp: rtmp_addr,
        https: https_addr,
        rtmps: rtmps_addr,
    })
}

/// `public_url` as configured, else built from the bound listeners (HTTPS named by
/// the first ACME domain or local-CA name when there is one).
fn public_url(
    config: &Config,
    http: SocketAddr,
    https: Option<SocketAddr>,
) -> Result<PublicUrl, StartError> {
    let invalid = |why: String| StartError::Config(ConfigError::Invalid(why));
    if let Some(url) = &config.public_url {
        return PublicUrl::parse(url).map_err(invalid);
    }
    let name = match config.tls.mode {
        TlsMode::Acme => config.tls.domains.first(),
        TlsMode::LocalCa => config.tls.names.first(),
        TlsMode::Off | TlsMode::Files => None,
    };
    PublicUrl::from_listeners(http, https, name.map(String::as_str)).map_err(invalid)
}

/// The asset store, the job queue with its workers (after recovering jobs a crash
/// left running) and the upload store with its expiry sweep.
async fn start_vod(
    pool: &db::Pool,
    config: &Config,
    shutdown: &CancellationToken,
) -> Result<Arc<Vod>, StartError> {
    let assets = AssetStore::new(pool.clone());
    let bus = AssetBus::default();
    // Subscribed before the job workers start, so no asset event is missed.
    crate::notify::asset_writer::spawn(
        pool.clone(),
        assets.clone(),
        bus.subscribe(),
        shutdown.clone(),
    );
    let store: Arc<dyn JobStore> = Arc::new(SqliteJobStore::new(pool.clone()));
    let mut handlers: HashMap<String, Arc<dyn JobHandler>> = HashMap::new();
    handlers.insert(
        crate::assets::EXTRACT_AUDIO.to_string(),
        Arc::new(ExtractAudio {
            data_dir: config.data_dir.clone(),
            assets: assets.clone(),
            bus: bus.clone(),
            jobs: Arc::clone(&store),
        }),
    );
    handlers.insert(
        crate::assets::TRANSCODE_HLS.to_string(),
        Arc::new(TranscodeHls {
            data_dir: config.data_dir.clone(),
            assets: assets.clone(),
            bus: bus.clone(),
            jobs: Arc::clone(&store),
            packager: PackagerConfig {
                part_target: config.part_target(),
                segment_target: config.segment_target(),
                window_segments: config.hls.window_segments,
                part_hold_back_parts: config.hls.part_hold_back_parts,
            },
            profiles: Arc::new(config.ladder_profiles()),
            ladder: config.vod.ladder.clone(),
        }),
    );
    let queue = JobQueue::start(store, handlers, config.jobs.concurrency, shutdown.clone())
        .await
        .map_err(|e| StartError::Catalog(format!("job queue: {e}")))?;
    let uploads = UploadStore::new(pool.clone(), &config.data_dir);
    let sweep = uploads.clone();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(60));
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = every.tick() => {}
            }
            match sweep.expire(db::now()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(uploads = n, "expired uploads deleted"),
                Err(e) => tracing::warn!(error = %e, "cannot expire uploads"),
            }
        }
    });
    Ok(Arc::new(Vod {
        assets: AssetService {
            data_dir: config.data_dir.clone(),
            store: assets,
            queue,
            bus,
        },
        uploads,
        limits: config.uploads.clone(),
        busy: Default::default(),
        timelines: Default::default(),
        ready: Default::default(),
    }))
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
    accounts::create_user(pool, "admin", password.expose(), Role::Admin)
        .await
        .map_err(|e| StartError::Catalog(format!("PANOCAST_ADMIN_PASSWORD: {e}")))?;
    tracing::info!("created the first admin account, user name `admin`");
    Ok(())
}

/// Fills an empty catalog: the config file's streams, or else the `demo` stream.
/// Afterwards the catalog owns the streams and the config's `[[streams]]` are not
/// read again. Returns the demo stream's key when it is the only stream (it may be
/// printed).
async fn seed_catalog(catalog: &Catalog, config: &Config) -> Result<Option<String>, StartError> {
    let failed = |e: crate::catalog::CatalogError| StartError::Catalog(e.to_string());
    if catalog.is_empty() {
        let demo = config
            .streams
            .is_empty()
            .then(|| demo_stream(&config.data_dir))
            .transpose()?;
        for s in config.streams.iter().chain(&demo) {
            catalog
                // A pulled camera has no key: the catalog makes one nobody is shown,
                // so it cannot be published over RTMP.
                .create(s.definition(), s.key.clone())
                .await
                .map_err(failed)?;
        }
        return Ok(demo.and_then(|d| d.key));
    }
    for s in &config.streams {
        match catalog.get_slug(&s.slug) {
            None => tracing::warn!(
                stream = %s.slug,
                "config-file stream ignored: the catalog is not empty, create it with the API"
            ),
            // Before the catalog kept sources, pulled cameras were read from the config
            // file at every start; a stream imported then gets its source once.
            Some(existing)
                if existing.owner_id.is_none()
                    && existing.source == StreamSource::RtmpPush
                    && matches!(s.source, StreamSource::RtspPull(_)) =>
            {
                let source = s.source.clone();
                catalog
                    .update(&existing.id, |def| def.source = source)
                    .await
                    .map_err(failed)?;
                tracing::info!(stream = %s.slug, "config-file RTSP source moved into the catalog");
            }
            Some(_) => {}
        }
    }
    // The demo stream's key is printed while it still opens the demo stream.
    let key_file = config.data_dir.join("demo-stream-key");
    let demo_key = std::fs::read_to_string(key_file).unwrap_or_default();
    let demo = match catalog.by_publish_key(demo_key.trim()).await {
        Some(def) if def.slug == "demo" && !demo_key.trim().is_empty() => Some(demo_key),
        _ => None,
    };
    Ok(demo
        .filter(|_| catalog.len() == 1)
        .map(|key| key.trim().to_string()))
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
        source: StreamSource::RtmpPush,
        fisheye: Default::default(),
        bake_orientation: false,
        cubemap: false,
        ladder: None,
        visibility: crate::streams::Visibility::Public,
        enabled: true,
        reconnect_window_s: crate::streams::definition::DEFAULT_RECONNECT_WINDOW_S,
        record: crate::streams::definition::RecordSettings::OFF,
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
