//! No secret reaches the log at any level: the real binary runs with `RUST_LOG=trace`
//! (text, then JSON lines), an admin logs in and refreshes, a private stream is
//! published with real ffmpeg and played with its playback token (query and bearer, on
//! playlists, segments, parts and blocking `_HLS_msn` requests, HTTP/1.1 and HTTP/2),
//! and RTSP cameras are pulled with a password (the right one and a wrong one).
//! Everything the server prints, stdout and stderr, must be free of every secret.

mod common;
#[allow(dead_code)] // freeze and stop are for tests/rtsp_ingest.rs
mod rtsp_camera;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{call, client, read_ll_playlist, source_file, Answer, LlPlaylist, Publisher};
use rtsp_camera::Camera;
use serde_json::{json, Value};

const ADMIN_PASSWORD: &str = "admin-pw-Zq81xTbb";
const WRONG_ADMIN_PASSWORD: &str = "wrong-admin-pw-Mm03kd";
const CAMERA_USER: &str = "viewer";
const CAMERA_PASSWORD: &str = "cam-pw-Hv27sQee";
const WRONG_CAMERA_PASSWORD: &str = "wrong-cam-pw-Lk44eRxx";
/// The config-file push stream's key.
const CONFIG_KEY: &str = "config-key-Pw93mNqq";
/// A key nobody has: a publisher that mistyped its key.
const UNKNOWN_KEY: &str = "unknown-key-Rt56bVcc";

/// Not a test: the body of the camera child process (see [`rtsp_camera`]).
#[test]
#[ignore = "the RTSP camera process that the other tests start"]
fn rtsp_camera_process() {
    rtsp_camera::serve_from_env();
}

/// One scenario at a time: each runs a camera, a publisher and a server.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_the_text_log_at_trace_level() {
    let _one = ONE_AT_A_TIME.lock().await;
    let (log, secrets) = scenario(LogFormat::Text).await;
    assert!(
        log.iter().any(|l| l.contains("TRACE")),
        "no trace-level line in the log"
    );
    assert_clean("text", &log, &secrets);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_the_json_log_at_trace_level() {
    let _one = ONE_AT_A_TIME.lock().await;
    let (log, secrets) = scenario(LogFormat::Json).await;
    let json_lines = log
        .iter()
        .filter(|l| serde_json::from_str::<Value>(l).is_ok())
        .count();
    assert!(json_lines > 100, "only {json_lines} JSON log lines");
    assert!(
        log.iter().any(|l| l.contains(r#""level":"TRACE""#)),
        "no trace-level line in the log"
    );
    assert_clean("json", &log, &secrets);
}

#[derive(Clone, Copy, PartialEq)]
enum LogFormat {
    Text,
    Json,
}

/// Drives every path that handles a secret; returns everything the server printed
/// and the secrets it saw.
async fn scenario(format: LogFormat) -> (Vec<String>, Vec<(String, String)>) {
    let camera = Camera::start(0, Some((CAMERA_USER, CAMERA_PASSWORD)));
    let cam_url = camera.url(Some(&format!("{CAMERA_USER}:{CAMERA_PASSWORD}")));
    let bad_cam_url = camera.url(None);
    let config = format!(
        r#"
[rtsp_ingest]
retry_min_ms = 200
retry_max_ms = 400

[[streams]]
slug = "cam"
source = {{ kind = "rtsp-pull", url = "{cam_url}" }}

[[streams]]
slug = "cam-bad"
source = {{ kind = "rtsp-pull", url = "{bad_cam_url}", username = "{CAMERA_USER}", password = "{WRONG_CAMERA_PASSWORD}" }}

[[streams]]
slug = "pushed"
key = "{CONFIG_KEY}"
"#
    );
    let server = LoggedServer::start(&config, format);
    let c = client();
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("h2 client");
    let mut secrets: Vec<(String, String)> = vec![
        ("admin password".into(), ADMIN_PASSWORD.into()),
        ("wrong admin password".into(), WRONG_ADMIN_PASSWORD.into()),
        ("camera password".into(), CAMERA_PASSWORD.into()),
        ("wrong camera password".into(), WRONG_CAMERA_PASSWORD.into()),
        ("config stream key".into(), CONFIG_KEY.into()),
        ("unknown stream key".into(), UNKNOWN_KEY.into()),
    ];

    // Accounts: a wrong password, a login, a refresh.
    let wrong = login(&c, &server, WRONG_ADMIN_PASSWORD).await;
    assert_eq!(wrong.status, 401, "{}", wrong.text);
    let first = login(&c, &server, ADMIN_PASSWORD).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let first_access = field(&first.json, "access_token");
    let first_refresh = field(&first.json, "refresh_token");
    let refreshed = call(
        &c,
        "POST",
        &server.url("/api/v1/auth/refresh"),
        None,
        Some(json!({ "refresh_token": first_refresh }).to_string()),
    )
    .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    let access = field(&refreshed.json, "access_token");
    let refresh = field(&refreshed.json, "refresh_token");
    let me = call(
        &c,
        "GET",
        &server.url("/api/v1/users/me"),
        Some(&access),
        None,
    )
    .await;
    assert_eq!(me.status, 200, "{}", me.text);

    // A private stream, published with its key.
    let created = call(
        &c,
        "POST",
        &server.url("/api/v1/streams"),
        Some(&access),
        Some(json!({"slug": "secret", "visibility": "private"}).to_string()),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let key = field(&created.json, "stream_key");
    let _publisher = Publisher::start(source_file(), &server.publish_url(&key), true);
    let mut mistyped = Publisher::start(source_file(), &server.publish_url(UNKNOWN_KEY), false);
    let issued = call(
        &c,
        "POST",
        &server.url("/api/v1/streams/secret/playback-token"),
        Some(&access),
        None,
    )
    .await;
    assert_eq!(issued.status, 200, "{}", issued.text);
    let token = field(&issued.json, "token");
    let q = format!("token={token}");

    // Played with the token in the query, on every kind of resource.
    let index_url = server.url(&format!("/hls/secret/index.m3u8?{q}"));
    wait_status(&c, &index_url, 200, Duration::from_secs(30)).await;
    let (playlist, text) = wait_playlist(&c, &server, &q).await;
    let map = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MAP:URI=\""))
        .and_then(|r| r.split('"').next())
        .expect("EXT-X-MAP")
        .to_string();
    let mut uris = vec![
        map,
        playlist.segments[0].1.clone(),
        playlist.parts[0].uri.clone(),
    ];
    uris.extend(playlist.preload_hint.clone());
    for uri in &uris {
        assert!(uri.contains(&q), "{uri} lacks the token");
        let f = common::get(&c, &server.url(&format!("/hls/secret/{uri}"))).await;
        assert_eq!(f.status, 200, "{uri}");
    }
    // A blocking playlist request, in the query and as a bearer.
    let next = playlist.media_sequence + playlist.segments.len() as u64 + 1;
    let blocking = format!("/hls/secret/video.m3u8?_HLS_msn={next}&_HLS_part=0");
    let held = common::get(&c, &server.url(&format!("{blocking}&{q}"))).await;
    assert_eq!(held.status, 200, "{}", held.text());
    let held = call(&c, "GET", &server.url(&blocking), Some(&token), None).await;
    assert_eq!(held.status, 200, "{}", held.text);
    // Media with the token as a bearer, over HTTP/1.1 and HTTP/2.
    for uri in &uris {
        let bare = uri.replace(&format!("?{q}"), "");
        for client in [&c, &h2] {
            let a = call(
                client,
                "GET",
                &server.url(&format!("/hls/secret/{bare}")),
                Some(&token),
                None,
            )
            .await;
            assert_eq!(a.status, 200, "{bare}");
        }
    }
    let a = call(
        &h2,
        "GET",
        &server.url(&format!("/hls/secret/video.m3u8?{q}")),
        None,
        None,
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let info = call(
        &c,
        "GET",
        &server.url(&format!("/api/v1/streams/secret?{q}")),
        None,
        None,
    )
    .await;
    assert_eq!(info.status, 200, "{}", info.text);
    // Refused tokens: an access token where a playback token belongs, and the other
    // way round.
    let refused = call(
        &c,
        "GET",
        &server.url(&format!("/hls/secret/index.m3u8?token={access}")),
        None,
        None,
    )
    .await;
    assert!(
        refused.status == 401 || refused.status == 403,
        "{}",
        refused.text
    );
    let refused = call(
        &c,
        "GET",
        &server.url("/api/v1/users/me"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(refused.status, 401, "{}", refused.text);

    // The mistyped key is refused.
    let status = mistyped.wait_exit(Duration::from_secs(15));
    assert!(
        status.is_some_and(|s| !s.success()),
        "ffmpeg with an unknown key was not refused: {status:?}"
    );

    // RTSP: the camera with the right password goes live, the wrong one is refused,
    // at least twice (a repeat is logged differently).
    wait_ingest(&c, &server, "cam", "live").await;
    wait_ingest(&c, &server, "cam-bad", "retrying").await;
    server.wait_log("RTSP source failed again", Duration::from_secs(20));

    let out = call(
        &c,
        "POST",
        &server.url("/api/v1/auth/logout"),
        None,
        Some(json!({ "refresh_token": refresh }).to_string()),
    )
    .await;
    assert_eq!(out.status, 204, "{}", out.text);

    let log = server.stop();
    drop(camera);
    for (name, t) in [
        ("first access token", &first_access),
        ("access token", &access),
        ("playback token", &token),
    ] {
        secrets.push((name.into(), t.clone()));
        // The signature alone is as good as the token to whoever can rebuild the rest.
        let signature = t.rsplit('.').next().unwrap_or_default();
        assert!(signature.len() > 20, "{name} is not a JWT: {t}");
        secrets.push((format!("{name} signature"), signature.to_string()));
    }
    secrets.push(("first refresh token".into(), first_refresh));
    secrets.push(("refresh token".into(), refresh));
    secrets.push(("stream key".into(), key));
    (log, secrets)
}

/// Fails with the lines that hold a secret (a few per secret; the whole log is kept in
/// the target's temp dir as `secrets_in_logs-<name>.log`).
fn assert_clean(name: &str, log: &[String], secrets: &[(String, String)]) {
    let kept = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("secrets_in_logs-{name}.log"));
    let _ = std::fs::write(&kept, log.join("\n"));
    assert!(log.len() > 100, "only {} log lines:\n{log:#?}", log.len());
    // The request log is there (so a token in it would have been seen), redacted.
    let requests = log
        .iter()
        .filter(|l| l.contains("/hls/secret/video.m3u8"))
        .count();
    assert!(
        requests > 0,
        "no request to /hls/secret/video.m3u8 in the log"
    );
    // The blocking request's delivery directives are logged, its token masked.
    assert!(
        log.iter()
            .any(|l| l.contains("_HLS_msn=") && l.contains("token=***")),
        "no blocking request with a masked token in the log"
    );
    let mut leaks = Vec::new();
    for (what, secret) in secrets {
        assert!(!secret.is_empty(), "{what} is empty");
        let lines: Vec<&String> = log.iter().filter(|l| l.contains(secret.as_str())).collect();
        if !lines.is_empty() {
            leaks.push(format!("{what}: {} lines, e.g.", lines.len()));
            leaks.extend(lines.iter().take(3).map(|l| format!("    {l}")));
        }
    }
    assert!(
        leaks.is_empty(),
        "secrets in the log ({}):\n{}",
        kept.display(),
        leaks.join("\n")
    );
}

/// `panocast serve` at trace level, its whole output kept; stopped with SIGTERM.
struct LoggedServer {
    child: Child,
    http: String,
    rtmp: String,
    log: Arc<Mutex<Vec<String>>>,
    readers: Vec<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl LoggedServer {
    fn start(config: &str, format: LogFormat) -> LoggedServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let config_path = dir.path().join("panocast.toml");
        std::fs::write(&config_path, config).expect("write config");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_panocast"));
        cmd.arg("serve")
            .arg("--config")
            .arg(&config_path)
            .args(["--http", "127.0.0.1:0", "--rtmp", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(dir.path().join("data"));
        if format == LogFormat::Json {
            cmd.arg("--log-json");
        }
        let mut child = cmd
            .env("RUST_LOG", "trace")
            .env("NO_COLOR", "1")
            .env("PANOCAST_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start panocast");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (urls_tx, urls_rx) = std::sync::mpsc::channel();
        let mut readers = Vec::new();
        let stdout = child.stdout.take().expect("stdout");
        let sink = Arc::clone(&log);
        readers.push(std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("HTTP API:") || line.starts_with("RTMP ingest:") {
                    let _ = urls_tx.send(line.clone());
                }
                sink.lock().unwrap_or_else(|p| p.into_inner()).push(line);
            }
        }));
        let stderr = child.stderr.take().expect("stderr");
        let sink = Arc::clone(&log);
        readers.push(std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap_or_else(|p| p.into_inner()).push(line);
            }
        }));
        let (mut http, mut rtmp) = (None, None);
        while http.is_none() || rtmp.is_none() {
            let line = urls_rx
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| {
                    let log = log.lock().unwrap_or_else(|p| p.into_inner()).join("\n");
                    panic!("panocast did not print its URLs:\n{log}")
                });
            if let Some(url) = line.strip_prefix("HTTP API:") {
                http = url
                    .split_whitespace()
                    .next()
                    .map(|u| u.trim_end_matches("/api/v1").to_string());
            }
            if let Some(url) = line.strip_prefix("RTMP ingest:") {
                rtmp = Some(url.trim().to_string());
            }
        }
        LoggedServer {
            child,
            http: http.unwrap_or_default(),
            rtmp: rtmp.unwrap_or_default(),
            log,
            readers,
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.http)
    }

    fn publish_url(&self, key: &str) -> String {
        format!("{}/{key}", self.rtmp)
    }

    /// Waits until a log line contains `needle`.
    fn wait_log(&self, needle: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let found = self
                .log
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .any(|l| l.contains(needle));
            if found {
                return;
            }
            assert!(Instant::now() < deadline, "no {needle:?} in the log");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Shuts the server down (SIGTERM, so shutdown logs too) and returns all it printed.
    fn stop(mut self) -> Vec<String> {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid");
        // SAFETY: signalling our own child process, which has not been reaped yet.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        std::mem::take(&mut *self.log.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Drop for LoggedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn login(c: &reqwest::Client, s: &LoggedServer, password: &str) -> Answer {
    call(
        c,
        "POST",
        &s.url("/api/v1/auth/login"),
        None,
        Some(json!({"username": "admin", "password": password}).to_string()),
    )
    .await
}

fn field(v: &Value, name: &str) -> String {
    v[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} in {v}"))
        .to_string()
}

async fn wait_status(c: &reqwest::Client, url: &str, status: u16, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let f = common::get(c, url).await;
        if f.status == status {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{url}: never {status}, last {}",
            f.status
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The private stream's video playlist once it has a segment and parts.
async fn wait_playlist(c: &reqwest::Client, s: &LoggedServer, q: &str) -> (LlPlaylist, String) {
    let url = s.url(&format!("/hls/secret/video.m3u8?{q}"));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let f = common::get(c, &url).await;
        assert_eq!(f.status, 200, "{}", f.text());
        let p = read_ll_playlist(&f.text());
        if !p.segments.is_empty() && !p.parts.is_empty() && p.preload_hint.is_some() {
            return (p, f.text());
        }
        assert!(
            Instant::now() < deadline,
            "no segment in time:\n{}",
            f.text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Polls `/api/v1/streams/{slug}` until its ingest status is `status`.
async fn wait_ingest(c: &reqwest::Client, s: &LoggedServer, slug: &str, status: &str) {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let v = common::get_json(c, &s.url(&format!("/api/v1/streams/{slug}"))).await;
        if v["ingest"]["status"] == status {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{slug}: never {status}; last {v}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
