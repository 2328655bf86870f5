//! Durability of the job queue with the real server: `kill -9` during an audio
//! extraction, a restart on the same data directory, and the job completes once.

mod common;
mod vod_support;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{call, client, encoded_clip, Server};
use vod_support::*;

/// 15 minutes of sound under a tiny picture: small to upload, long enough to extract
/// that the job is seen running.
fn long_clip() -> std::path::PathBuf {
    encoded_clip(
        Path::new("ffmpeg"),
        "vod-long-900s.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "color=c=blue:size=64x32:rate=1",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-t",
            "900",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-b:a",
            "32k",
            "-ac",
            "1",
            "-movflags",
            "+faststart",
        ],
    )
}

/// The asset's `extract_audio` job in a job list (it also has a `transcode_hls`).
fn extraction(list: &serde_json::Value) -> serde_json::Value {
    list["items"]
        .as_array()
        .and_then(|items| items.iter().find(|j| j["kind"] == "extract_audio"))
        .cloned()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_extraction_then_the_job_completes_once() {
    let src = long_clip();
    let dir = tempfile::tempdir().expect("temp dir");
    let c = client();
    let s = Server::start_in(dir.path(), &config(), &env());
    let (_admin, caster, _) = tokens(&c, &s).await;
    let (status, created) = curl_upload(&s, Some(&caster), &src, &["title=Long"]);
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_string();
    let jobs_url = format!("/api/v1/jobs?asset={id}");

    // Wait until the job is running and has made progress, then kill -9.
    let deadline = Instant::now() + Duration::from_secs(60);
    let job = loop {
        let a = call(&c, "GET", &s.url(&jobs_url), Some(&caster), None).await;
        let job = extraction(&a.json);
        if job["state"] == "running" && job["progress"].as_u64() > Some(0) {
            break job;
        }
        assert_ne!(
            job["state"], "succeeded",
            "finished before it could be killed"
        );
        assert!(Instant::now() < deadline, "never seen running: {}", a.text);
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(job["attempts"], 1);
    drop(s); // SIGKILL

    let s = Server::start_in(dir.path(), &config(), &env());
    let caster = login(&c, &s, "caster", PASSWORD).await;
    let asset = wait_asset(&c, &s, &caster, &id, Duration::from_secs(120), settled).await;
    assert_eq!(asset["state"], "ready", "{asset}");
    let a = call(&c, "GET", &s.url(&jobs_url), Some(&caster), None).await;
    let items: Vec<_> = a.json["items"]
        .as_array()
        .expect("jobs")
        .iter()
        .filter(|j| j["kind"] == "extract_audio")
        .cloned()
        .collect();
    assert_eq!(items.len(), 1, "one extraction job: {}", a.text);
    assert_eq!(items[0]["id"], job["id"]);
    assert_eq!(items[0]["state"], "succeeded");
    assert_eq!(
        items[0]["attempts"], 2,
        "the cut attempt and the one after the restart"
    );
    assert!(s
        .log_lines()
        .iter()
        .any(|l| l.contains("jobs cut off by a restart are queued again")));

    // No temp file left; the MP3 is whole.
    let folder = dir.path().join("data/assets").join(&id);
    let names: Vec<String> = std::fs::read_dir(&folder)
        .expect("asset folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
    let mp3 = folder.join("audio.mp3");
    let duration: f64 = probe(&mp3, &[], "format=duration")
        .parse()
        .expect("duration");
    assert!((duration - 900.0).abs() <= 0.1, "mp3 of {duration} s");
}
