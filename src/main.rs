//! `panocast`: the command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use panocast::config::Config;
use panocast::server::{self, Started};
use panocast::streams::StreamSource;

/// mimalloc instead of glibc's malloc for Rust's allocations. Serving a part allocates
/// a few dozen small blocks (request, routing, headers, futures) on whichever worker
/// thread runs the connection; glibc's per-thread arenas made malloc and free about
/// 14 % of the server's CPU under the viewer bench (`perf`, benches/viewers/); with
/// mimalloc allocation is about 5 %. GStreamer's own C allocations still use glibc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "panocast",
    version,
    about = "Live-streaming server for 360° video: RTMP in, LL-HLS out"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        /// TOML config file.
        #[arg(long)]
        config: Option<PathBuf>,
        /// HTTP listen address [default: 0.0.0.0:8080].
        #[arg(long)]
        http: Option<SocketAddr>,
        /// RTMP listen address [default: 0.0.0.0:1935].
        #[arg(long)]
        rtmp: Option<SocketAddr>,
        /// Data directory [default: ./data].
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Log JSON lines instead of text.
        #[arg(long)]
        log_json: bool,
    },
    /// Manage accounts in the data directory's database (the server may be running).
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create an account. The password is read from standard input (one line), never
    /// from the command line.
    CreateUser {
        /// TOML config file (for data_dir).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Data directory [default: ./data].
        #[arg(long)]
        data_dir: Option<PathBuf>,
        #[arg(long, default_value = "admin")]
        username: String,
        /// admin, broadcaster or viewer.
        #[arg(long, value_parser = ["admin", "broadcaster", "viewer"])]
        role: String,
        /// Read the password from standard input (the only way; accepted for
        /// scripts that spell it out).
        #[arg(long)]
        password_stdin: bool,
    },
}

/// glibc malloc arenas for the C libraries (GStreamer, x264, libav), which still use
/// glibc: at most two, unless `MALLOC_ARENA_MAX` says otherwise. glibc gives each new
/// thread its own arena, up to eight per core, and every publish starts a pipeline
/// with fresh streaming threads; freed encoder buffers were left fragmented across
/// those arenas. In the soak bench (benches/soak/, a publisher join every 6 s) RSS rose
/// by 35–48 MiB per 100 joins with glibc's default; with two arenas, by 9–12 MiB,
/// and the soak's part latency p99 stayed at 207 ms (206 ms before). Called before
/// any thread starts.
fn limit_glibc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    // SAFETY: mallopt only sets a malloc tunable; no thread exists yet to race it.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

fn main() -> ExitCode {
    limit_glibc_arenas();
    let cli = Cli::parse();
    let (config, http, rtmp, data_dir, log_json) = match cli.command {
        Command::Serve {
            config,
            http,
            rtmp,
            data_dir,
            log_json,
        } => (config, http, rtmp, data_dir, log_json),
        Command::Admin {
            command:
                AdminCommand::CreateUser {
                    config,
                    data_dir,
                    username,
                    role,
                    password_stdin: _,
                },
        } => return create_user(config, data_dir, &username, &role),
    };
    let mut cfg = match Config::load(config.as_deref()) {
        Ok(cfg) => cfg,
        Err(e) => return fail(&e),
    };
    if let Err(e) = cfg.apply_env(|name| std::env::var(name).ok()) {
        return fail(&e);
    }
    cfg.http = http.unwrap_or(cfg.http);
    cfg.rtmp = rtmp.unwrap_or(cfg.rtmp);
    cfg.data_dir = data_dir.unwrap_or(cfg.data_dir);
    cfg.log_json |= log_json;
    panocast::logging::init(cfg.log_json);

    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return fail(&e),
    };
    let code = runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        let started = match server::start(cfg, shutdown.clone()).await {
            Ok(started) => started,
            Err(e) => return fail(&e),
        };
        print_urls(&started);
        wait_for_signal().await;
        tracing::info!("shutting down: no new connections; ending streams and connections");
        shutdown.cancel();
        started.tasks.close();
        tokio::select! {
            _ = started.tasks.wait() => {
                tracing::info!("shut down cleanly");
                ExitCode::SUCCESS
            }
            _ = tokio::time::sleep(SHUTDOWN_LIMIT) => {
                tracing::warn!(limit_s = SHUTDOWN_LIMIT.as_secs(), "shutdown took too long; exiting anyway");
                ExitCode::FAILURE
            }
            _ = wait_for_signal() => {
                tracing::warn!("second signal: exiting at once");
                ExitCode::FAILURE
            }
        }
    });
    // Whatever still runs (a pipeline stuck in GStreamer) must not hold the exit.
    runtime.shutdown_timeout(Duration::from_millis(500));
    code
}

/// How long a clean shutdown may take before the process exits anyway (systemd's
/// default stop timeout is 90 s; ours is well inside any orchestrator's).
const SHUTDOWN_LIMIT: Duration = Duration::from_secs(9);

/// `panocast admin create-user`.
fn create_user(
    config: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    username: &str,
    role: &str,
) -> ExitCode {
    use std::io::{BufRead, IsTerminal, Write};
    let mut cfg = match Config::load(config.as_deref()) {
        Ok(cfg) => cfg,
        Err(e) => return fail(&e),
    };
    if let Err(e) = cfg.apply_env(|name| std::env::var(name).ok()) {
        return fail(&e);
    }
    let data_dir = data_dir.unwrap_or(cfg.data_dir);
    let Some(role) = panocast::auth::Role::parse(role) else {
        return fail(&"unknown role");
    };
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("password for {username}: ");
        let _ = std::io::stderr().flush();
    }
    let mut password = String::new();
    if let Err(e) = stdin.lock().read_line(&mut password) {
        return fail(&e);
    }
    let password = password.trim_end_matches(['\r', '\n']);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return fail(&e),
    };
    runtime.block_on(async move {
        if let Err(e) = std::fs::create_dir_all(&data_dir) {
            return fail(&e);
        }
        let pool = match panocast::db::open(&data_dir).await {
            Ok(pool) => pool,
            Err(e) => return fail(&e),
        };
        match panocast::auth::accounts::create_user(&pool, username, password, role).await {
            Ok(user) => {
                println!(
                    "created {} ({}) id {}",
                    user.username,
                    role.as_str(),
                    user.id
                );
                pool.close().await;
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        }
    })
}

fn fail(e: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("panocast: {e}");
    ExitCode::FAILURE
}

/// What a newcomer needs to point OBS at the server and watch the stream.
fn print_urls(started: &Started) {
    let host = |addr: SocketAddr| {
        if addr.ip().is_unspecified() {
            "localhost".to_string()
        } else {
            addr.ip().to_string()
        }
    };
    let rtmp_host = host(started.rtmp);
    let http_host = host(started.http);
    println!();
    println!(
        "HTTP API:        http://{http_host}:{}/api/v1 (docs: /api/v1/docs)",
        started.http.port()
    );
    println!(
        "RTMP ingest:     rtmp://{rtmp_host}:{}/live",
        started.rtmp.port()
    );
    for s in &started.streams {
        println!("stream {:<12} ({})", s.slug, s.projection.as_str());
        match &s.source {
            StreamSource::RtmpPush => {
                println!(
                    "  OBS server:    rtmp://{rtmp_host}:{}/live",
                    started.rtmp.port()
                );
                if let Some(key) = started.demo_key.as_deref().filter(|_| s.slug == "demo") {
                    println!("  OBS key:       {key}");
                }
            }
            // Only the URL without its userinfo, never the credentials.
            StreamSource::RtspPull(pull) => match pull.source() {
                Ok(source) => println!("  pulls RTSP:    {}", source.url()),
                Err(_) => println!("  pulls RTSP:    (invalid url)"),
            },
        }
        println!(
            "  playback:      http://{http_host}:{}/hls/{}/index.m3u8",
            started.http.port(),
            s.slug
        );
        println!(
            "  watch (360):   http://{http_host}:{}/watch/{}",
            started.http.port(),
            s.slug
        );
    }
    if started.demo_key.is_none() && !started.streams.is_empty() {
        println!("  (stream keys were shown when the streams were created)");
    }
    print_tls_urls(started);
    println!();
}

/// HTTPS and RTMPS, for headsets (WebXR needs a secure context; Safari plays LL-HLS
/// only over HTTP/2, which it speaks only over TLS) and OBS over the internet.
fn print_tls_urls(started: &Started) {
    let Some(https) = started.https else {
        return;
    };
    let watch = started
        .streams
        .first()
        .map_or(String::new(), |s| format!("watch/{}", s.slug));
    // An ACME certificate is for its domains; otherwise a listener on every address is
    // reached by the LAN addresses, one bound to a single address only by that address.
    let hosts: Vec<String> = if !started.acme_domains.is_empty() {
        started.acme_domains.clone()
    } else if https.ip().is_unspecified() {
        let mut hosts: Vec<String> = panocast::tls::names::lan_addresses()
            .iter()
            .map(|ip| match ip {
                std::net::IpAddr::V6(v6) => format!("[{v6}]"),
                v4 => v4.to_string(),
            })
            .collect();
        hosts.extend(panocast::tls::names::host_name().map(|h| format!("{h}.local")));
        hosts.push("localhost".into());
        hosts
    } else {
        vec![match https.ip() {
            std::net::IpAddr::V6(v6) => format!("[{v6}]"),
            v4 => v4.to_string(),
        }]
    };
    println!("HTTPS (use these on headsets):");
    for host in &hosts {
        println!("  https:           https://{host}:{}/{watch}", https.port());
    }
    if started.local_ca {
        let first = hosts.first().map_or("localhost", String::as_str);
        println!(
            "  trust the CA:    http://{first}:{}/tls (certificate: /ca.crt)",
            started.http.port()
        );
    }
    if let Some(rtmps) = started.rtmps {
        let host = if rtmps.ip().is_unspecified() {
            hosts.first().cloned().unwrap_or_else(|| "localhost".into())
        } else {
            rtmps.ip().to_string()
        };
        println!("  RTMPS ingest:    rtmps://{host}:{}/live", rtmps.port());
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
