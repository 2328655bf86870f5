//! RTSP camera ingest end to end: a real RTSP server (gst-rtsp-server, in a child
//! process) as the camera, the real `panocast` binary pulling it, LL-HLS read over
//! HTTP and checked with ffprobe/ffmpeg.

mod common;
mod rtsp_camera;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::*;
use rtsp_camera::Camera;

const USER: &str = "viewer";
const PASSWORD: &str = "cam-pass-7731";

/// Not a test: the body of the camera child process (see [`rtsp_camera`]).
#[test]
#[ignore = "the RTSP camera process that the other tests start"]
fn rtsp_camera_process() {
    rtsp_camera::serve_from_env();
}

/// A config with the pulled `streams` plus one push stream (the test harness reads
/// the RTMP address from the URLs the server prints for push streams).
fn config(rtsp_ingest: &str, streams: &str) -> String {
    format!(
        r#"
[rtsp_ingest]
{rtsp_ingest}

{streams}

[[streams]]
slug = "pushed"
key = "pushed-secret-key"
"#
    )
}

async fn info(client: &reqwest::Client, server: &Server, slug: &str) -> serde_json::Value {
    let f = get(client, &server.url(&format!("/api/v1/streams/{slug}"))).await;
    assert_eq!(f.status, 200);
    serde_json::from_slice(&f.body).expect("json")
}

/// Polls the stream info until `pred` holds; returns that info.
async fn wait_info(
    client: &reqwest::Client,
    server: &Server,
    slug: &str,
    limit: Duration,
    what: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + limit;
    loop {
        let v = info(client, server, slug).await;
        if pred(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{slug}: never {what}; last {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn status_is(status: &'static str) -> impl Fn(&serde_json::Value) -> bool {
    move |v| v["ingest"]["status"] == status
}

async fn wait_playlist(
    client: &reqwest::Client,
    url: &str,
    limit: Duration,
    what: &str,
    pred: impl Fn(&LlPlaylist) -> bool,
) -> (LlPlaylist, String) {
    let deadline = Instant::now() + limit;
    loop {
        let f = get(client, url).await;
        if f.status == 200 {
            let text = f.text();
            let p = read_ll_playlist(&text);
            if pred(&p) {
                return (p, text);
            }
        }
        assert!(Instant::now() < deadline, "{url}: never {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn segment_number(uri: &str) -> u64 {
    uri.trim_start_matches("video/seg-")
        .trim_end_matches(".m4s")
        .parse()
        .expect("segment number")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_is_pulled_played_and_rejoined_after_it_returns() {
    let camera = Camera::start(0, Some((USER, PASSWORD)));
    let port = camera.port;
    let server = Server::start(&config(
        "stall_timeout_ms = 2000\nretry_min_ms = 300\nretry_max_ms = 1500",
        &format!(
            r#"
[[streams]]
slug = "cam"
projection = "equirect"
source = {{ kind = "rtsp-pull", url = "{}", username = "{USER}", password = "{PASSWORD}" }}
"#,
            camera.url(None)
        ),
    ));
    let client = client();
    let v = wait_info(
        &client,
        &server,
        "cam",
        Duration::from_secs(30),
        "live",
        status_is("live"),
    )
    .await;
    assert_eq!(v["live"], true);

    // The multivariant playlist lists H.264 at the camera's size, with AAC.
    let index = wait_ok(
        &client,
        &server.url("/hls/cam/index.m3u8"),
        Duration::from_secs(15),
    )
    .await;
    let text = index.text();
    assert!(text.contains("RESOLUTION=1920x960"), "{text}");
    assert!(
        text.contains("avc1.") && text.contains("mp4a.40.2"),
        "{text}"
    );
    assert!(text.contains("REQ-VIDEO-LAYOUT=\"PROJ-EQUI\""), "{text}");

    // Two whole segments decode without an error; the init segment says 360.
    let video_url = server.url("/hls/cam/video.m3u8");
    let (first, first_text) = wait_playlist(
        &client,
        &video_url,
        Duration::from_secs(30),
        "2 segments",
        |p| p.segments.len() >= 2,
    )
    .await;
    let init_uri = first_text
        .lines()
        .find(|l| l.starts_with("#EXT-X-MAP:"))
        .map(|l| attributes(l)["URI"].clone())
        .expect("EXT-X-MAP");
    let init = get(&client, &server.url(&format!("/hls/cam/{init_uri}"))).await;
    assert_eq!(init.status, 200);
    let mut bodies = vec![init.body.clone()];
    for (_, uri) in &first.segments {
        let seg = get(&client, &server.url(&format!("/hls/cam/{uri}"))).await;
        assert_eq!(seg.status, 200, "{uri}");
        bodies.push(seg.body);
    }
    let dir = tempfile::tempdir().expect("tmp");
    let parts: Vec<&[u8]> = bodies.iter().map(|b| &b[..]).collect();
    let file = concat_file(dir.path(), "video.mp4", &parts);
    let path = file.to_string_lossy();
    let side = ffprobe(
        &[
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=width,height:stream_side_data_list",
            "-of",
            "json",
        ],
        &path,
    );
    assert!(
        side.contains("Spherical Mapping") && side.contains("equirectangular"),
        "{side}"
    );
    assert!(
        side.contains("\"width\": 1920") && side.contains("\"height\": 960"),
        "{side}"
    );
    let frames = video_frames(&[], &path);
    assert!(frames >= 60, "{frames} frames in two segments");
    let decode = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&*path)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg");
    assert!(decode.status.success());
    assert_eq!(
        String::from_utf8_lossy(&decode.stderr).trim(),
        "",
        "decode errors"
    );

    // The camera goes away: the stream says so, with the error.
    camera.stop();
    let v = wait_info(
        &client,
        &server,
        "cam",
        Duration::from_secs(10),
        "retrying",
        status_is("retrying"),
    )
    .await;
    let last_error = v["ingest"]["last_error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!last_error.is_empty(), "{v}");
    assert!(!last_error.contains(PASSWORD), "{last_error}");
    assert!(v["ingest"]["retry_in_ms"].as_u64().is_some(), "{v}");
    let before = read_ll_playlist(&get(&client, &video_url).await.text());

    // It comes back on the same port: live again, and the playlist goes on with a
    // discontinuity and consecutive segment numbers.
    let camera = Camera::start(port, Some((USER, PASSWORD)));
    wait_info(
        &client,
        &server,
        "cam",
        Duration::from_secs(30),
        "live again",
        status_is("live"),
    )
    .await;
    let (after, _) = wait_playlist(
        &client,
        &video_url,
        Duration::from_secs(30),
        "a discontinuity and new segments",
        |p| p.discontinuities >= 1 && p.segments.len() >= before.segments.len() + 2,
    )
    .await;
    let numbers: Vec<u64> = after
        .segments
        .iter()
        .map(|(_, u)| segment_number(u))
        .collect();
    assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "{numbers:?}");
    assert!(
        numbers.last()
            > before
                .segments
                .last()
                .map(|(_, u)| segment_number(u))
                .as_ref(),
        "{numbers:?}"
    );
    assert!(after.media_sequence >= before.media_sequence);

    // A camera that stops sending but keeps its connection open has stalled.
    camera.freeze(true);
    let v = wait_info(
        &client,
        &server,
        "cam",
        Duration::from_secs(10),
        "stalled",
        status_is("retrying"),
    )
    .await;
    assert!(
        v["ingest"]["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("stalled"),
        "{v}"
    );
    camera.freeze(false);
    wait_info(
        &client,
        &server,
        "cam",
        Duration::from_secs(30),
        "live after the stall",
        status_is("live"),
    )
    .await;

    // The push stream next to it was never disturbed.
    let pushed = info(&client, &server, "pushed").await;
    assert_eq!(pushed["ingest"]["status"], "idle");
    assert!(
        server.log_lines().iter().all(|l| !l.contains(PASSWORD)),
        "password in the log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_or_a_garbage_camera_is_a_clear_state_not_a_log_flood() {
    let camera = Camera::start(0, Some((USER, PASSWORD)));
    // Something that answers RTSP requests with noise.
    let junk = TcpListener::bind("127.0.0.1:0").expect("bind");
    let junk_port = junk.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for conn in junk.incoming().take(100) {
            let Ok(mut conn) = conn else { continue };
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf);
            let noise: Vec<u8> = (0..2048u32)
                .map(|i| (i.wrapping_mul(2654435761) >> 11) as u8)
                .collect();
            let _ = conn.write_all(&noise);
        }
    });
    let server = Server::start(&config(
        "",
        &format!(
            r#"
[[streams]]
slug = "locked"
source = {{ kind = "rtsp-pull", url = "{}" }}

[[streams]]
slug = "junk"
source = {{ kind = "rtsp-pull", url = "rtsp://127.0.0.1:{junk_port}/cam" }}
"#,
            camera.url(Some(&format!("{USER}:wrong-secret-pw")))
        ),
    ));
    let client = client();
    let v = wait_info(
        &client,
        &server,
        "locked",
        Duration::from_secs(20),
        "retrying",
        status_is("retrying"),
    )
    .await;
    let last_error = v["ingest"]["last_error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        last_error.contains("401") && last_error.contains("authentication"),
        "{last_error}"
    );
    assert!(!last_error.contains("wrong-secret-pw"), "{last_error}");
    let v = wait_info(
        &client,
        &server,
        "junk",
        Duration::from_secs(20),
        "retrying",
        status_is("retrying"),
    )
    .await;
    assert!(
        !v["ingest"]["last_error"]
            .as_str()
            .unwrap_or_default()
            .is_empty(),
        "{v}"
    );

    // Over the next seconds the delay grows and the log stays quiet: the failure was
    // logged once, the retries are not.
    let started = Instant::now();
    let mut largest = 0;
    while started.elapsed() < Duration::from_secs(8) {
        let v = info(&client, &server, "locked").await;
        if let Some(ms) = v["ingest"]["retry_in_ms"].as_u64() {
            largest = largest.max(ms);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(largest >= 4000, "retry delay did not grow: {largest} ms");
    let log = server.log_lines();
    for slug in ["locked", "junk"] {
        let lines: Vec<&String> = log
            .iter()
            .filter(|l| l.contains(&format!("stream={slug}")))
            .collect();
        assert!(
            lines.len() <= 3,
            "{slug}: {} log lines: {lines:#?}",
            lines.len()
        );
    }
    assert!(
        log.iter().all(|l| !l.contains("wrong-secret-pw")),
        "password in the log"
    );
    // The rest of the server is fine.
    let health = get(&client, &server.url("/healthz")).await;
    assert_eq!(health.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h265_camera_goes_live_as_hvc1_and_decodes() {
    let camera = Camera::start_codec(0, None, "h265");
    let server = Server::start(&config(
        "stall_timeout_ms = 4000\nretry_min_ms = 300\nretry_max_ms = 1500",
        &format!(
            r#"
[[streams]]
slug = "cam"
projection = "equirect"
source = {{ kind = "rtsp-pull", url = "{}" }}
"#,
            camera.url(None)
        ),
    ));
    let client = client();
    wait_info(
        &client,
        &server,
        "cam",
        Duration::from_secs(30),
        "live",
        status_is("live"),
    )
    .await;

    // CODECS from retina's hvcC: Main profile, at the camera's size.
    let index = wait_ok(
        &client,
        &server.url("/hls/cam/index.m3u8"),
        Duration::from_secs(20),
    )
    .await;
    let text = index.text();
    assert!(text.contains("CODECS=\"hvc1.1.6.L"), "{text}");
    assert!(text.contains("RESOLUTION=640x320"), "{text}");

    let video_url = server.url("/hls/cam/video.m3u8");
    let (p, text) = wait_playlist(
        &client,
        &video_url,
        Duration::from_secs(30),
        "2 segments",
        |p| p.segments.len() >= 2,
    )
    .await;
    let map = p.map_uri.clone().expect("EXT-X-MAP");
    let init = get(&client, &resolve(&video_url, &map)).await;
    assert_eq!(init.status, 200);
    let mut bodies = vec![init.body.clone()];
    let mut seconds = 0.0;
    for (duration, uri) in &p.segments {
        let seg = get(&client, &resolve(&video_url, uri)).await;
        assert_eq!(seg.status, 200, "{uri}:\n{text}");
        bodies.push(seg.body);
        seconds += duration;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let parts: Vec<&[u8]> = bodies.iter().map(|b| &b[..]).collect();
    let file = concat_file(dir.path(), "video.mp4", &parts);
    let path = file.to_string_lossy();
    let v = ffprobe(
        &[
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=codec_name,codec_tag_string:stream_side_data_list",
            "-of",
            "json",
        ],
        &path,
    );
    assert!(
        v.contains("\"codec_name\": \"hevc\"") && v.contains("\"codec_tag_string\": \"hvc1\""),
        "{v}"
    );
    assert!(v.contains("equirectangular"), "{v}");
    let out = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(&file)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg");
    let errors = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && errors.trim().is_empty(), "{errors}");
    let frames: f64 = ffprobe(
        &[
            "-select_streams",
            "v:0",
            "-count_frames",
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "csv=p=0",
        ],
        &path,
    )
    .trim()
    .trim_end_matches(',')
    .parse()
    .expect("a frame count");
    assert!(
        (frames - seconds * 30.0).abs() <= 2.0,
        "{frames} frames in {seconds} s"
    );
    drop(camera);
}
