//! Shared by the end-to-end tests: the real `panocast` binary, real ffmpeg publishers,
//! real HTTP over loopback, and small readers for what players see.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
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
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts the binary with `config` (TOML, without listen addresses) on free ports.
    pub fn start(config: &str) -> Server {
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
            _dir: dir,
        }
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
        let mut cmd = Command::new("ffmpeg");
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
    FILE.get_or_init(|| {
        let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("source-1920x960-12s.flv");
        if path.exists() {
            return path;
        }
        let tmp = path.with_extension(format!("{}.tmp.flv", std::process::id()));
        let status = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-y"])
            .args(["-f", "lavfi", "-i", "testsrc2=size=1920x960:rate=30"])
            .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
            .args(["-t", &SOURCE_SECONDS.to_string()])
            .args(["-c:v", "libx264", "-g", "60", "-pix_fmt", "yuv420p"])
            .args(["-c:a", "aac", "-b:a", "128k", "-ac", "2"])
            .arg(&tmp)
            .status()
            .expect("ffmpeg is installed (scripts/deps.sh)");
        assert!(status.success(), "encoding the test source failed");
        std::fs::rename(&tmp, &path).expect("rename source");
        path
    })
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

/// The LL-HLS facts of a media playlist, read line by line.
#[derive(Debug, Default)]
pub struct LlPlaylist {
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
            let duration = v.trim_end_matches(',').parse().expect("extinf");
            let uri = lines.next().expect("segment uri").to_string();
            p.segments.push((duration, uri));
        } else if line.starts_with("#EXT-X-PRELOAD-HINT:") {
            p.preload_hint = Some(attributes(line)["URI"].clone());
        } else if line.starts_with("#EXT-X-RENDITION-REPORT:") {
            p.rendition_reports.push(attributes(line));
        } else if line == "#EXT-X-DISCONTINUITY" {
            p.discontinuities += 1;
        } else if line.starts_with("#EXT-X-PROGRAM-DATE-TIME:") {
            p.program_date_times += 1;
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
