//! Shared by the end-to-end tests: the real `panocast` binary, real ffmpeg publishers,
//! real HTTP over loopback, and small readers for what players see.
#![allow(dead_code)]

pub mod frames;
pub mod receiver;
pub mod sse;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A running `panocast serve`, killed on drop.
pub struct Server {
    child: Child,
    pub http: String,
    pub rtmp: String,
    /// Every line the server wrote (its log goes to stdout, panics to stderr; stderr is
    /// also echoed to ours).
    log: Arc<Mutex<Vec<String>>>,
    /// The temporary data directory, when the server made its own.
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts the binary with `config` (TOML, without listen addresses) on free ports.
    pub fn start(config: &str) -> Server {
        Server::start_with_env(config, &[])
    }

    /// [`Server::start`] with extra environment variables, e.g.
    /// `PANOCAST_ADMIN_PASSWORD` for the first admin account.
    pub fn start_with_env(config: &str, env: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut server = Server::start_in(dir.path(), config, env);
        server._dir = Some(dir);
        server
    }

    /// [`Server::start_with_env`] in `dir` (config file and `data/` inside), which
    /// outlives the server: a restart on the same data directory.
    pub fn start_in(dir: &Path, config: &str, env: &[(&str, &str)]) -> Server {
        Server::start_in_on(dir, config, env, "127.0.0.1:0")
    }

    /// [`Server::start_in`] with HTTP on `http` (e.g. `0.0.0.0:0` for clients that
    /// come from another address of this machine).
    pub fn start_in_on(dir: &Path, config: &str, env: &[(&str, &str)], http: &str) -> Server {
        let config_path = dir.join("panocast.toml");
        std::fs::write(&config_path, config).expect("write config");
        let mut child = Command::new(env!("CARGO_BIN_EXE_panocast"))
            .arg("serve")
            .arg("--config")
            .arg(&config_path)
            .args(["--http", http, "--rtmp", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(dir.join("data"))
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start panocast");
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr");
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("{line}");
                sink.lock().unwrap_or_else(|p| p.into_inner()).push(line);
            }
        });
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let (mut http, mut rtmp) = (None, None);
        while http.is_none() || rtmp.is_none() {
            let line = match lines.next() {
                Some(Ok(line)) => line,
                _ => panic!("panocast exited before printing its URLs"),
            };
            log.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(line.clone());
            if let Some(url) = line.split("OBS server:").nth(1) {
                rtmp = Some(url.trim().trim_end_matches("/live").to_string());
            }
            if let Some(url) = line.split("playback:").nth(1) {
                let url = url.trim();
                http = url.find("/hls/").map(|i| url[..i].to_string());
            }
        }
        // Keep draining stdout so the server never blocks on a full pipe; the log
        // (tracing writes to stdout) is kept for the tests.
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock().unwrap_or_else(|p| p.into_inner()).push(line);
            }
        });
        Server {
            child,
            http: http.unwrap_or_default(),
            rtmp: rtmp.unwrap_or_default(),
            log,
            _dir: None,
        }
    }

    /// `kill -9`: the process gets no chance to flush or finish anything.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The server's log lines so far.
    pub fn log_lines(&self) -> Vec<String> {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn publish_url(&self, key: &str) -> String {
        format!("{}/live/{key}", self.rtmp)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.http)
    }

    /// Sends SIGTERM and waits up to `limit` for the server to exit: its exit status
    /// and how long it took, or `None` if it was still running (it is killed then).
    pub fn terminate(&mut self, limit: Duration) -> Option<(std::process::ExitStatus, Duration)> {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid");
        let sent = Instant::now();
        // SAFETY: signalling our own child process, which has not been reaped yet.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        while sent.elapsed() < limit {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some((status, sent.elapsed()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// The server's process id, for [`proc_status`] and [`child_processes`].
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// How a `panocast serve` that stopped by itself ended.
pub struct Exited {
    pub status: std::process::ExitStatus,
    /// Everything it wrote, stdout then stderr.
    pub output: String,
}

/// Runs `panocast serve` with `config` (as [`Server::start`] does) and waits for it to
/// exit by itself, for configurations it must refuse. Panics, after killing it, if it
/// is still running at `limit`: then it accepted the configuration.
pub fn serve_until_exit(config: &str, limit: Duration) -> Exited {
    let dir = tempfile::tempdir().expect("temp dir");
    let config_path = dir.path().join("panocast.toml");
    std::fs::write(&config_path, config).expect("write config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_panocast"))
        .arg("serve")
        .arg("--config")
        .arg(&config_path)
        .args(["--http", "127.0.0.1:0", "--rtmp", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start panocast");
    let drain = |pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = BufReader::new(pipe).read_to_string(&mut text);
            text
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("stderr")));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for panocast") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = format!(
        "{}{}",
        stdout.join().unwrap_or_default(),
        stderr.join().unwrap_or_default()
    );
    match status {
        Some(status) => Exited { status, output },
        None => panic!("panocast was still running after {limit:?}; it printed:\n{output}"),
    }
}

/// A process's thread count and resident memory, from `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStatus {
    pub threads: u64,
    pub rss_kib: u64,
}

pub fn proc_status(pid: u32) -> ProcStatus {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let field = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {path}:\n{text}"))
    };
    ProcStatus {
        threads: field("Threads:"),
        rss_kib: field("VmRSS:"),
    }
}

/// The processes whose parent is `pid`, zombies included: `(pid, state, command)`.
pub fn child_processes(pid: u32) -> Vec<(u32, char, String)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in entries.map_while(Result::ok) {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        // `pid (comm) state ppid ...`; comm may hold spaces and parentheses.
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let mut rest = stat[close + 1..].split_whitespace();
        let state = rest.next().and_then(|s| s.chars().next()).unwrap_or('?');
        if rest.next().and_then(|p| p.parse::<u32>().ok()) == Some(pid) {
            out.push((child, state, stat[open + 1..close].to_string()));
        }
    }
    out
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running ffmpeg publisher, killed on drop.
pub struct Publisher {
    pub child: Child,
}

impl Publisher {
    /// Pushes `file` in real time with `-c copy`; `looped` repeats it forever.
    pub fn start(file: &Path, url: &str, looped: bool) -> Publisher {
        Publisher::start_with(Path::new("ffmpeg"), file, url, looped)
    }

    /// [`Publisher::start`] with another ffmpeg, e.g. [`ffmpeg7`] for Enhanced RTMP.
    pub fn start_with(ffmpeg: &Path, file: &Path, url: &str, looped: bool) -> Publisher {
        let mut cmd = Command::new(ffmpeg);
        cmd.args(["-hide_banner", "-loglevel", "error", "-re"]);
        if looped {
            cmd.args(["-stream_loop", "-1"]);
        }
        cmd.arg("-i")
            .arg(file)
            .args(["-c", "copy", "-f", "flv", url])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        Publisher {
            child: cmd.spawn().expect("start ffmpeg"),
        }
    }

    /// Waits for ffmpeg to exit by itself; `None` if it is still running at `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Seconds of media in [`source_file`].
pub const SOURCE_SECONDS: u32 = 12;
pub const SOURCE_FPS: u32 = 30;

/// A 1920x960 equirect-shaped test clip, H.264 with libx264 defaults (so B-frames)
/// and a 2 s GOP, plus 48 kHz AAC; encoded once per test binary.
pub fn source_file() -> &'static Path {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| source_file_sized(1920, 960, SOURCE_SECONDS, 60))
}

/// A `width`x`height` testsrc2 clip at [`SOURCE_FPS`], `seconds` long, H.264 with
/// libx264 defaults (so B-frames) and a keyframe every `gop` frames, plus 48 kHz stereo
/// AAC, in FLV. Encoded (under `nice`) once into the target's temp dir and reused.
pub fn source_file_sized(width: u32, height: u32, seconds: u32, gop: u32) -> PathBuf {
    // One encoder at a time: tests in one binary run on parallel threads.
    static ENCODING: Mutex<()> = Mutex::new(());
    let _one = ENCODING.lock().unwrap_or_else(|p| p.into_inner());
    let name = format!("source-{width}x{height}-{seconds}s-g{gop}.flv");
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    if path.exists() {
        return path;
    }
    let tmp = path.with_extension(format!("{}.tmp.flv", std::process::id()));
    let status = Command::new("nice")
        .args([
            "-n",
            "10",
            "ffmpeg",
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
        ])
        .arg("-f")
        .arg("lavfi")
        .arg("-i")
        .arg(format!("testsrc2=size={width}x{height}:rate={SOURCE_FPS}"))
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &seconds.to_string()])
        .args([
            "-c:v",
            "libx264",
            "-g",
            &gop.to_string(),
            "-pix_fmt",
            "yuv420p",
        ])
        .args(["-c:a", "aac", "-b:a", "128k", "-ac", "2"])
        .arg(&tmp)
        .status()
        .expect("ffmpeg is installed (scripts/deps.sh)");
    assert!(status.success(), "encoding the test source {path:?} failed");
    std::fs::rename(&tmp, &path).expect("rename source");
    path
}

/// The static ffmpeg 7 of PyPI `imageio-ffmpeg` (installed by `scripts/ffmpeg7.sh` into
/// a venv under the target dir on first use): its FLV muxer writes Enhanced RTMP for
/// HEVC and AV1, which Debian 12's ffmpeg 5.1 cannot.
pub fn ffmpeg7() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        // The venv goes next to this test binary's target dir, wherever that is.
        let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .unwrap_or(Path::new("target"))
            .to_path_buf();
        let out = Command::new(root.join("scripts/ffmpeg7.sh"))
            .env("CARGO_TARGET_DIR", &target)
            .stderr(Stdio::inherit())
            .output()
            .expect("run scripts/ffmpeg7.sh");
        assert!(out.status.success(), "scripts/ffmpeg7.sh failed");
        let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        assert!(path.is_file(), "scripts/ffmpeg7.sh printed {path:?}");
        path
    })
}

/// A clip encoded once per target dir by `ffmpeg` with `args` (inputs, codecs; the
/// output path is appended) into `name` under the target's temp dir, under `nice`.
pub fn encoded_clip(ffmpeg: &Path, name: &str, args: &[&str]) -> PathBuf {
    static ENCODING: Mutex<()> = Mutex::new(());
    let _one = ENCODING.lock().unwrap_or_else(|p| p.into_inner());
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    if path.exists() {
        return path;
    }
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_extension(format!("{}.tmp.{ext}", std::process::id()));
    let status = Command::new("nice")
        .args(["-n", "10"])
        .arg(ffmpeg)
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .arg(&tmp)
        .status()
        .expect("run ffmpeg");
    assert!(status.success(), "encoding {path:?} failed");
    std::fs::rename(&tmp, &path).expect("rename clip");
    path
}

/// An HTTP response as a test sees it.
pub struct Fetched {
    pub status: u16,
    pub content_type: String,
    pub cache_control: String,
    pub cors: Option<String>,
    pub body: bytes::Bytes,
}

impl Fetched {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// An HTTP client for loopback tests: no request hangs past 30 s.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}

/// A REST answer as a client sees it: status, media type, body as JSON (Null when it
/// is not JSON) and as text.
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub json: serde_json::Value,
    pub text: String,
}

/// `method path` on `server` as the holder of `token`, with an optional JSON body.
pub async fn api(
    c: &reqwest::Client,
    server: &Server,
    token: &str,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> Answer {
    call(
        c,
        method,
        &server.url(path),
        Some(token),
        body.map(|b| b.to_string()),
    )
    .await
}

/// Signs `username` in on `server`; their access token.
pub async fn login(c: &reqwest::Client, server: &Server, username: &str, password: &str) -> String {
    let body = serde_json::json!({"username": username, "password": password});
    let a = call(
        c,
        "POST",
        &server.url("/api/v1/auth/login"),
        None,
        Some(body.to_string()),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.json["access_token"]
        .as_str()
        .expect("an access token")
        .to_string()
}

/// `method url` with an optional bearer token and JSON body.
pub async fn call(
    client: &reqwest::Client,
    method: &str,
    url: &str,
    bearer: Option<&str>,
    body: Option<String>,
) -> Answer {
    let mut req = client.request(method.parse().expect("method"), url);
    if let Some(t) = bearer {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b);
    }
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let text = resp.text().await.unwrap_or_default();
    Answer {
        status,
        content_type,
        json: serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        text,
    }
}

pub async fn get(client: &reqwest::Client, url: &str) -> Fetched {
    let resp = client
        .get(url)
        .header("Origin", "http://player.example")
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let status = resp.status().as_u16();
    let content_type = header("content-type").unwrap_or_default();
    let cache_control = header("cache-control").unwrap_or_default();
    let cors = header("access-control-allow-origin");
    let body = resp.bytes().await.unwrap_or_default();
    Fetched {
        status,
        content_type,
        cache_control,
        cors,
        body,
    }
}

/// Polls `url` until it answers 200, for at most `limit`.
pub async fn wait_ok(client: &reqwest::Client, url: &str, limit: Duration) -> Fetched {
    let deadline = Instant::now() + limit;
    loop {
        let f = get(client, url).await;
        if f.status == 200 {
            return f;
        }
        assert!(
            Instant::now() < deadline,
            "{url} never answered 200 (last {})",
            f.status
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The attributes of an attribute-list tag line (`#TAG:A=1,B="x"`).
pub fn attributes(line: &str) -> HashMap<String, String> {
    let list = line.split_once(':').map_or("", |(_, rest)| rest);
    let mut out = HashMap::new();
    let mut rest = list;
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"').unwrap_or(quoted.len());
            (&quoted[..end], quoted[end..].trim_start_matches('"'))
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        out.insert(key.to_string(), value.to_string());
        rest = next.trim_start_matches(',');
    }
    out
}

/// One EXT-X-PART line, with the segment it belongs to.
#[derive(Debug, Clone)]
pub struct PartLine {
    pub duration: f64,
    pub uri: String,
    pub independent: bool,
}

/// One complete segment (EXTINF) of a media playlist, with its timing.
#[derive(Debug, Clone)]
pub struct SegmentLine {
    /// Media sequence number: EXT-X-MEDIA-SEQUENCE plus the segment's position.
    pub msn: u64,
    pub duration: f64,
    pub uri: String,
    /// The segment's EXT-X-PROGRAM-DATE-TIME in Unix milliseconds, when tagged.
    pub program_date_time_ms: Option<i64>,
}

/// The LL-HLS facts of a media playlist, read line by line.
#[derive(Debug, Default)]
pub struct LlPlaylist {
    /// EXT-X-MAP URI.
    pub map_uri: Option<String>,
    /// Every complete segment, in order, with its msn and date.
    pub segment_lines: Vec<SegmentLine>,
    pub part_target: f64,
    pub target_duration: u64,
    pub media_sequence: u64,
    pub parts: Vec<PartLine>,
    pub segments: Vec<(f64, String)>,
    pub preload_hint: Option<String>,
    pub rendition_reports: Vec<HashMap<String, String>>,
    pub discontinuities: usize,
    pub program_date_times: usize,
    pub server_control: HashMap<String, String>,
}

pub fn read_ll_playlist(text: &str) -> LlPlaylist {
    // m3u8-rs must accept it as a media playlist first: an independent parser.
    match m3u8_rs::parse_playlist_res(text.as_bytes()) {
        Ok(m3u8_rs::Playlist::MediaPlaylist(_)) => {}
        other => panic!("not a media playlist: {other:?}\n{text}"),
    }
    let mut p = LlPlaylist::default();
    let mut lines = text.lines().peekable();
    // A date applies to the next segment; it comes before that segment's parts.
    let mut date = None;
    while let Some(line) = lines.next() {
        if let Some(v) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
            p.target_duration = v.parse().expect("target duration");
        } else if line.starts_with("#EXT-X-PART-INF:") {
            p.part_target = attributes(line)["PART-TARGET"]
                .parse()
                .expect("part target");
        } else if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            p.media_sequence = v.parse().expect("msn");
        } else if line.starts_with("#EXT-X-SERVER-CONTROL:") {
            p.server_control = attributes(line);
        } else if line.starts_with("#EXT-X-PART:") {
            let a = attributes(line);
            p.parts.push(PartLine {
                duration: a["DURATION"].parse().expect("part duration"),
                uri: a["URI"].clone(),
                independent: a.get("INDEPENDENT").is_some_and(|v| v == "YES"),
            });
        } else if let Some(v) = line.strip_prefix("#EXTINF:") {
            let duration = v
                .split(',')
                .next()
                .unwrap_or_default()
                .parse()
                .expect("extinf");
            let uri = lines.next().expect("segment uri").to_string();
            p.segment_lines.push(SegmentLine {
                msn: p.media_sequence + p.segments.len() as u64,
                duration,
                uri: uri.clone(),
                program_date_time_ms: date.take(),
            });
            p.segments.push((duration, uri));
        } else if line.starts_with("#EXT-X-PRELOAD-HINT:") {
            p.preload_hint = Some(attributes(line)["URI"].clone());
        } else if line.starts_with("#EXT-X-RENDITION-REPORT:") {
            p.rendition_reports.push(attributes(line));
        } else if line == "#EXT-X-DISCONTINUITY" {
            p.discontinuities += 1;
        } else if let Some(v) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
            p.program_date_times += 1;
            let parsed = chrono::DateTime::parse_from_rfc3339(v)
                .unwrap_or_else(|e| panic!("PROGRAM-DATE-TIME {v:?}: {e}\n{text}"));
            date = Some(parsed.timestamp_millis());
        } else if line.starts_with("#EXT-X-MAP:") {
            p.map_uri = attributes(line).get("URI").cloned();
        }
    }
    p
}

/// Runs ffprobe with `args` on `input` and returns its stdout.
pub fn ffprobe(args: &[&str], input: &str) -> String {
    let out = Command::new("ffprobe")
        .args(["-v", "error"])
        .args(args)
        .arg(input)
        .output()
        .expect("ffprobe is installed (scripts/deps.sh)");
    assert!(
        out.status.success(),
        "ffprobe {args:?} {input} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// ffprobe's side data of the first video stream of `input` (JSON text), which must
/// say it is an equirectangular sphere.
pub fn assert_equirect(input: &str) -> String {
    let side = ffprobe(
        &[
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream_side_data_list",
            "-of",
            "json",
        ],
        input,
    );
    assert!(
        side.contains("Spherical Mapping") && side.contains("equirectangular"),
        "{side}"
    );
    side
}

/// How many video frames ffprobe decodes from `input`, with `options` (input options
/// such as `-live_start_index 0`) before its own.
pub fn video_frames(options: &[&str], input: &str) -> u64 {
    let count = [
        "-select_streams",
        "v:0",
        "-count_frames",
        "-show_entries",
        "stream=nb_read_frames",
        "-of",
        "csv=p=0",
    ];
    let args: Vec<&str> = options.iter().chain(count.iter()).copied().collect();
    let out = ffprobe(&args, input);
    // An HLS input lists the stream once per program too: the first value counts.
    out.lines()
        .map(|l| l.trim().trim_end_matches(','))
        .find(|l| !l.is_empty())
        .and_then(|l| l.parse().ok())
        .unwrap_or_else(|| panic!("ffprobe frame count {out:?}"))
}

/// Writes `parts` after each other into a temp file and returns it.
pub fn concat_file(dir: &Path, name: &str, parts: &[&[u8]]) -> PathBuf {
    let path = dir.join(name);
    let mut all = Vec::new();
    for p in parts {
        all.extend_from_slice(p);
    }
    std::fs::write(&path, all).expect("write temp file");
    path
}

/// One EXT-X-STREAM-INF entry of a multivariant playlist.
#[derive(Debug, Clone)]
pub struct VariantLine {
    pub uri: String,
    pub attrs: HashMap<String, String>,
}

/// A multivariant playlist, read line by line in its order.
#[derive(Debug, Default)]
pub struct Multivariant {
    pub variants: Vec<VariantLine>,
    /// The attributes of every EXT-X-MEDIA line.
    pub media: Vec<HashMap<String, String>>,
}

pub fn read_multivariant(text: &str) -> Multivariant {
    // m3u8-rs must accept it as a multivariant playlist first: an independent parser.
    match m3u8_rs::parse_playlist_res(text.as_bytes()) {
        Ok(m3u8_rs::Playlist::MasterPlaylist(_)) => {}
        other => panic!("not a multivariant playlist: {other:?}\n{text}"),
    }
    let mut m = Multivariant::default();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.starts_with("#EXT-X-STREAM-INF:") {
            let uri = lines
                .by_ref()
                .find(|l| !l.trim().is_empty() && !l.starts_with('#'))
                .unwrap_or_else(|| panic!("EXT-X-STREAM-INF without a URI\n{text}"));
            m.variants.push(VariantLine {
                uri: uri.trim().to_string(),
                attrs: attributes(line),
            });
        } else if line.starts_with("#EXT-X-MEDIA:") {
            m.media.push(attributes(line));
        }
    }
    m
}

/// `uri` as found in the playlist at `base` (an absolute URL), made absolute.
pub fn resolve(base: &str, uri: &str) -> String {
    reqwest::Url::parse(base)
        .and_then(|b| b.join(uri))
        .unwrap_or_else(|e| panic!("cannot resolve {uri:?} against {base}: {e}"))
        .to_string()
}

/// GETs `url`, which must answer 200 with JSON.
pub async fn get_json(client: &reqwest::Client, url: &str) -> serde_json::Value {
    let f = get(client, url).await;
    assert_eq!(f.status, 200, "GET {url}: {}", f.text());
    serde_json::from_slice(&f.body).unwrap_or_else(|e| panic!("GET {url}: {e}\n{}", f.text()))
}

/// Polls the media playlist at `url` until it lists at least `segments` complete
/// segments, for at most `limit`; returns it read and as text.
pub async fn wait_for_segments(
    client: &reqwest::Client,
    url: &str,
    segments: usize,
    limit: Duration,
) -> (LlPlaylist, String) {
    let deadline = Instant::now() + limit;
    loop {
        let f = get(client, url).await;
        let text = f.text();
        if f.status == 200 {
            let p = read_ll_playlist(&text);
            if p.segments.len() >= segments {
                return (p, text);
            }
        }
        assert!(
            Instant::now() < deadline,
            "{url}: fewer than {segments} segments after {limit:?} (last {}):\n{text}",
            f.status
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Once `slug` plays: the URL of its first variant's media playlist with `_HLS_msn`
/// two segments beyond the newest, a request the server holds for up to three target
/// durations (the LL-HLS limit) before it can answer.
pub async fn held_playlist_url(server: &Server, client: &reqwest::Client, slug: &str) -> String {
    let index_url = server.url(&format!("/hls/{slug}/index.m3u8"));
    let index = wait_ok(client, &index_url, Duration::from_secs(30)).await;
    let media_url = resolve(
        &index_url,
        &read_multivariant(&index.text()).variants[0].uri,
    );
    let playlist = read_ll_playlist(
        &wait_ok(client, &media_url, Duration::from_secs(10))
            .await
            .text(),
    );
    let ahead = playlist.media_sequence + playlist.segments.len() as u64 + 2;
    format!("{media_url}?_HLS_msn={ahead}")
}

/// The value of the first `/metrics` line that starts with `line_start` (name and
/// labels, then a space or not).
pub async fn metric(server: &Server, line_start: &str) -> f64 {
    let text = client()
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(line_start))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no metric line {line_start} in:\n{text}"))
}
