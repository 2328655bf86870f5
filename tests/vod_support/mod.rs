//! Shared by tests/vod_api.rs and tests/vod_media.rs: a server with accounts, clips,
//! uploads with real curl, and polling an asset with a deadline.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{call, encoded_clip, Server};

pub const ADMIN_PASSWORD: &str = "vod-admin-password-1";
pub const PASSWORD: &str = "vod-user-password-1";
/// `uploads.max_bytes` of the test servers.
pub const MAX_BYTES: u64 = 8_000_000;

pub fn config() -> String {
    format!("[uploads]\nmax_bytes = {MAX_BYTES}\n")
}

pub fn env() -> [(&'static str, &'static str); 1] {
    [("PANOCAST_ADMIN_PASSWORD", ADMIN_PASSWORD)]
}

pub async fn login(c: &reqwest::Client, s: &Server, user: &str, password: &str) -> String {
    let a = call(
        c,
        "POST",
        &s.url("/api/v1/auth/login"),
        None,
        Some(json!({"username": user, "password": password}).to_string()),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.json["access_token"].as_str().expect("token").to_string()
}

/// Access tokens of the admin, a new broadcaster and a new viewer.
pub async fn tokens(c: &reqwest::Client, s: &Server) -> (String, String, String) {
    let admin = login(c, s, "admin", ADMIN_PASSWORD).await;
    for (user, role) in [("caster", "broadcaster"), ("watcher", "viewer")] {
        let a = call(
            c,
            "POST",
            &s.url("/api/v1/users"),
            Some(&admin),
            Some(json!({"username": user, "password": PASSWORD, "role": role}).to_string()),
        )
        .await;
        assert_eq!(a.status, 201, "{}", a.text);
    }
    let caster = login(c, s, "caster", PASSWORD).await;
    let watcher = login(c, s, "watcher", PASSWORD).await;
    (admin, caster, watcher)
}

/// A 1920x960 equirect-shaped MP4, H.264 + 48 kHz stereo AAC, `seconds` long, about
/// 1 Mb/s (encoded once per target dir).
pub fn clip(seconds: u32) -> PathBuf {
    let t = seconds.to_string();
    encoded_clip(
        Path::new("ffmpeg"),
        &format!("vod-1920x960-{seconds}s.mp4"),
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=1920x960:rate=30",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-t",
            &t,
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-b:v",
            "1M",
            "-pix_fmt",
            "yuv420p",
            "-g",
            "60",
            "-c:a",
            "aac",
            "-b:a",
            "128k",
            "-ac",
            "2",
            "-movflags",
            "+faststart",
        ],
    )
}

/// `curl -F file=@FILE -F title=TITLE` to `POST /api/v1/assets`: (status, body).
pub fn curl_upload(s: &Server, token: Option<&str>, file: &Path, extra: &[&str]) -> (u16, Value) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-o", "-", "-w", "\n%{http_code}"]);
    if let Some(t) = token {
        cmd.arg("-H").arg(format!("Authorization: Bearer {t}"));
    }
    cmd.arg("-F").arg(format!("file=@{}", file.display()));
    for field in extra {
        cmd.arg("-F").arg(field);
    }
    let out = cmd.arg(s.url("/api/v1/assets")).output().expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (
        status.trim().parse().unwrap_or(0),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

/// Polls the asset until `done` holds, for at most `limit`.
pub async fn wait_asset(
    c: &reqwest::Client,
    s: &Server,
    token: &str,
    id: &str,
    limit: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let a = call(
            c,
            "GET",
            &s.url(&format!("/api/v1/assets/{id}")),
            Some(token),
            None,
        )
        .await;
        assert_eq!(a.status, 200, "{}", a.text);
        if done(&a.json) {
            return a.json;
        }
        assert!(
            Instant::now() < deadline,
            "asset {id} after {limit:?}: {}",
            a.json
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn settled(asset: &Value) -> bool {
    asset["state"] != "preparing"
}

/// GET with a bearer token (and optional Range): status, headers, body.
pub async fn fetch(
    c: &reqwest::Client,
    url: &str,
    token: &str,
    range: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, bytes::Bytes) {
    let mut req = c.get(url).bearer_auth(token);
    if let Some(r) = range {
        req = req.header("Range", r);
    }
    let resp = req.send().await.expect("GET");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.bytes().await.expect("body"))
}

/// ffprobe's value of `entry` (e.g. `format=duration`) for `path`.
pub fn probe(path: &Path, select: &[&str], entry: &str) -> String {
    let out = Command::new("ffprobe")
        .args(["-v", "error"])
        .args(select)
        .args(["-show_entries", entry, "-of", "default=nw=1:nk=1"])
        .arg(path)
        .output()
        .expect("ffprobe");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The AAC frames of `path`'s audio, as ADTS (`ffmpeg -c copy`).
pub fn aac_frames(path: &Path, out: &Path) -> Vec<u8> {
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
        .arg(path)
        .args(["-map", "0:a:0", "-c", "copy", "-f", "adts"])
        .arg(out)
        .status()
        .expect("ffmpeg");
    assert!(status.success(), "ffmpeg -c copy of {path:?}");
    std::fs::read(out).expect("read aac")
}
