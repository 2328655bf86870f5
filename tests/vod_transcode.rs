//! Uploads become on-demand HLS made like a live stream's, with the real server, real
//! curl uploads and ffprobe reading the result over HTTP: every frame decodes, the
//! init segments say equirectangular, the multivariant lists the ladder's rungs; a
//! `kill -9` during the transcode ends in one succeeded job and a whole VOD; a file
//! that is not media errors the asset with a reason.

mod common;
mod vod_support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use common::{call, client, encoded_clip, video_frames, Server};
use vod_support::*;

const CLIP_SECONDS: u32 = 10;
const FPS: u64 = 30;

/// The test servers: uploads encoded to a one-rung ladder with one audio rung (the
/// cheapest that still shows rungs).
fn transcode_config() -> String {
    format!(
        "{}\n[vod]\nladder = \"tiny\"\n\n[ladders.tiny]\npreset = \"ultrafast\"\n\
         rungs = [{{ name = \"320p\", width = 640, height = 320, bitrate_kbps = 400 }}]\n\
         audio = [{{ name = \"audio-32k\", bitrate_kbps = 32 }}]\n",
        config()
    )
}

/// The asset's jobs of `kind`.
async fn jobs_of(c: &reqwest::Client, s: &Server, token: &str, id: &str, kind: &str) -> Vec<Value> {
    let a = call(
        c,
        "GET",
        &s.url(&format!("/api/v1/jobs?asset={id}")),
        Some(token),
        None,
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.json["items"]
        .as_array()
        .expect("jobs")
        .iter()
        .filter(|j| j["kind"] == kind)
        .cloned()
        .collect()
}

/// A playback URL of the asset's multivariant playlist, with a token.
async fn playback(c: &reqwest::Client, s: &Server, token: &str, id: &str) -> (String, String) {
    let t = call(
        c,
        "POST",
        &s.url(&format!("/api/v1/assets/{id}/playback-token")),
        Some(token),
        None,
    )
    .await;
    assert_eq!(t.status, 200, "{}", t.text);
    (
        s.url(t.json["playback_url"].as_str().expect("url")),
        t.json["token"].as_str().expect("token").to_string(),
    )
}

/// The VOD of `id` decodes to every source frame, source and rung alike.
async fn assert_whole_vod(c: &reqwest::Client, s: &Server, token: &str, id: &str) {
    let (url, playback_token) = playback(c, s, token, id).await;
    let index = call(c, "GET", &url, None, None).await;
    assert_eq!(index.status, 200, "{}", index.text);
    for want in ["video.m3u8", "320p.m3u8", "audio-32k.m3u8", "PROJ-EQUI"] {
        assert!(index.text.contains(want), "{want} in {}", index.text);
    }
    let want = u64::from(CLIP_SECONDS) * FPS;
    assert_eq!(video_frames(&[], &url), want, "source frames");
    let rung = s.url(&format!("/vod/{id}/320p.m3u8?token={playback_token}"));
    let media = call(c, "GET", &rung, None, None).await;
    assert_eq!(media.status, 200, "{}", media.text);
    for tag in ["#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-ENDLIST"] {
        assert!(media.text.contains(tag), "{tag}: {}", media.text);
    }
    assert_eq!(video_frames(&[], &rung), want, "rung frames");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_curl_upload_becomes_vod_hls_with_every_frame_and_the_sphere() {
    let src = clip(CLIP_SECONDS);
    let s = Server::start_with_env(&transcode_config(), &env());
    let c = client();
    let (_admin, caster, _) = tokens(&c, &s).await;
    let (status, created) = curl_upload(
        &s,
        Some(&caster),
        &src,
        &["title=Sphere", "projection=equirect"],
    );
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_string();
    let hls_pending = created["renditions"]
        .as_array()
        .expect("renditions")
        .iter()
        .any(|r| r["kind"] == "hls" && r["state"] == "pending");
    assert!(hls_pending, "{created}");

    let asset = wait_asset(&c, &s, &caster, &id, Duration::from_secs(90), settled).await;
    assert_eq!(asset["state"], "ready", "{asset}");
    let hls = asset["renditions"]
        .as_array()
        .expect("renditions")
        .iter()
        .find(|r| r["kind"] == "hls")
        .cloned()
        .expect("hls rendition");
    assert_eq!(hls["state"], "ready", "{asset}");
    assert_eq!(hls["url"], format!("/vod/{id}/index.m3u8"));
    assert!(hls["size_bytes"].as_u64() > Some(0), "{hls}");

    assert_whole_vod(&c, &s, &caster, &id).await;
    let (url, _) = playback(&c, &s, &caster, &id).await;
    common::assert_equirect(&url);
    let jobs = jobs_of(&c, &s, &caster, &id, "transcode_hls").await;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(
        (jobs[0]["state"].as_str(), jobs[0]["progress"].as_u64()),
        (Some("succeeded"), Some(100))
    );
    assert_audience_counted(&c, &s, &caster, &id).await;
    assert_token_downloads(&c, &s, &caster, &id).await;

    // Deleting an asset that was playing a moment ago ends its playback at once.
    let (url, _) = playback(&c, &s, &caster, &id).await;
    let deleted = call(
        &c,
        "DELETE",
        &s.url(&format!("/api/v1/assets/{id}")),
        Some(&caster),
        None,
    )
    .await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    let gone = call(&c, "GET", &url, None, None).await;
    assert_eq!(gone.status, 404, "{}", gone.text);
}

/// The plays above (ffmpeg fetched every segment of the source and of the rung with
/// one playback token) are a view of the asset, counted like live viewing.
async fn assert_audience_counted(c: &reqwest::Client, s: &Server, token: &str, id: &str) {
    let a = call(
        c,
        "GET",
        &s.url(&format!("/api/v1/analytics/assets/{id}")),
        Some(token),
        None,
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    // One view by one signed-in subject (the probe of the sphere took a second token:
    // a second session when ffprobe fetched a segment with it).
    assert!(a.json["sessions"].as_u64() >= Some(1), "{}", a.text);
    assert_eq!(a.json["views"], 1, "{}", a.text);
    assert_eq!(a.json["unique_viewers"], 1, "{}", a.text);
    let watched = a.json["watch_seconds"].as_f64().expect("watch_seconds");
    assert!(
        watched >= f64::from(CLIP_SECONDS) - 0.1,
        "watched {watched} s: {}",
        a.text
    );
    let renditions: Vec<&str> = a.json["renditions"]
        .as_array()
        .expect("renditions")
        .iter()
        .filter_map(|r| r["rendition"].as_str())
        .collect();
    for want in ["video", "320p"] {
        assert!(renditions.contains(&want), "{want} in {}", a.text);
    }
}

/// A private asset's MP3 is refused to a stranger and given to a playback token's
/// holder who is not signed in.
async fn assert_token_downloads(c: &reqwest::Client, s: &Server, token: &str, id: &str) {
    let path = format!("/api/v1/assets/{id}/audio.mp3");
    let stranger = call(c, "GET", &s.url(&path), None, None).await;
    assert_eq!(stranger.status, 404, "{}", stranger.text);
    let (_, playback_token) = playback(c, s, token, id).await;
    let forged = call(
        c,
        "GET",
        &s.url(&format!("{path}?token=x{playback_token}")),
        None,
        None,
    )
    .await;
    assert_eq!(forged.status, 404, "{}", forged.text);
    let r = c
        .get(s.url(&format!("{path}?token={playback_token}")))
        .send()
        .await
        .expect("download");
    assert_eq!(r.status(), 200);
    let mp3 = r.bytes().await.expect("mp3 body");
    let file = std::env::temp_dir().join(format!("panocast-token-download-{id}.mp3"));
    std::fs::write(&file, &mp3).expect("write mp3");
    assert_eq!(
        probe(&file, &["-select_streams", "a:0"], "stream=codec_name"),
        "mp3"
    );
    let _ = std::fs::remove_file(&file);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_transcode_then_the_job_completes_once() {
    let src = clip(CLIP_SECONDS);
    let dir = tempfile::tempdir().expect("temp dir");
    let c = client();
    let s = Server::start_in(dir.path(), &transcode_config(), &env());
    let (_admin, caster, _) = tokens(&c, &s).await;
    let (status, created) = curl_upload(&s, Some(&caster), &src, &["projection=equirect"]);
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_string();

    let deadline = Instant::now() + Duration::from_secs(60);
    let job = loop {
        let jobs = jobs_of(&c, &s, &caster, &id, "transcode_hls").await;
        let job = jobs.first().cloned().expect("a transcode job");
        if job["state"] == "running" && job["progress"].as_u64() > Some(0) {
            break job;
        }
        assert_ne!(
            job["state"], "succeeded",
            "finished before it could be killed"
        );
        assert!(Instant::now() < deadline, "never seen running: {job}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(job["attempts"], 1);
    s.kill9();

    let s = Server::start_in(dir.path(), &transcode_config(), &env());
    let caster = login(&c, &s, "caster", PASSWORD).await;
    let asset = wait_asset(&c, &s, &caster, &id, Duration::from_secs(120), settled).await;
    let log: Vec<String> = s
        .log_lines()
        .into_iter()
        .filter(|l| l.contains("job") || l.contains("transcod") || l.contains("ERROR"))
        .collect();
    assert_eq!(asset["state"], "ready", "{asset}\n{}", log.join("\n"));
    let jobs = jobs_of(&c, &s, &caster, &id, "transcode_hls").await;
    assert_eq!(jobs.len(), 1, "one transcode job: {jobs:?}");
    assert_eq!(jobs[0]["id"], job["id"]);
    assert_eq!(jobs[0]["state"], "succeeded");
    assert_eq!(
        jobs[0]["attempts"], 2,
        "the cut attempt and the one after the restart"
    );
    assert_whole_vod(&c, &s, &caster, &id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_is_not_media_errors_the_asset_with_a_reason() {
    let s = Server::start_with_env(&transcode_config(), &env());
    let c = client();
    let (_admin, caster, _) = tokens(&c, &s).await;
    let work = tempfile::tempdir().expect("temp dir");
    let text = work.path().join("slides.mov");
    std::fs::write(&text, "slide 1: why 360 video\nslide 2: how\n").expect("write");
    let (status, created) = curl_upload(&s, Some(&caster), &text, &[]);
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_string();
    let asset = wait_asset(&c, &s, &caster, &id, Duration::from_secs(30), settled).await;
    assert_eq!(asset["state"], "errored", "{asset}");
    let message = asset["message"].as_str().unwrap_or_default();
    assert!(message.contains("not a media file"), "{message}");
    assert!(
        asset["renditions"]
            .as_array()
            .expect("renditions")
            .iter()
            .all(|r| r["state"] == "errored"),
        "{asset}"
    );
    // The transcode failed at once with its own reason: bad input is not retried.
    let jobs = jobs_of(&c, &s, &caster, &id, "transcode_hls").await;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(
        (jobs[0]["state"].as_str(), jobs[0]["attempts"].as_u64()),
        (Some("failed"), Some(1))
    );
    let reason = jobs[0]["last_error"].as_str().unwrap_or_default();
    assert!(
        reason.contains("cannot be made into a video") && reason.contains("upload an MP4"),
        "{reason}"
    );
    // Nothing to play: the playlist is a clear 404, even with a playback token.
    let (url, _) = playback(&c, &s, &caster, &id).await;
    let index = call(&c, "GET", &url, None, None).await;
    assert_eq!(index.status, 404, "{}", index.text);
    assert_eq!(index.content_type, "application/problem+json");
}

/// A 3 s 640x320 clip at 30 fps in `container` with the given codecs.
fn other_codecs_clip(name: &str, video: &[&str], audio: &[&str]) -> std::path::PathBuf {
    let mut args = vec![
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=640x320:rate=30",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000",
        "-t",
        "3",
        "-pix_fmt",
        "yuv420p",
    ];
    args.extend_from_slice(video);
    args.extend_from_slice(audio);
    encoded_clip(Path::new("ffmpeg"), name, &args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vp9_opus_mkv_and_hevc_mp3_mov_are_encoded_to_h264_and_aac() {
    let mkv = other_codecs_clip(
        "vod-vp9-opus-3s.mkv",
        &[
            "-c:v",
            "libvpx-vp9",
            "-deadline",
            "realtime",
            "-cpu-used",
            "8",
            "-b:v",
            "300k",
        ],
        &["-c:a", "libopus", "-b:a", "64k"],
    );
    let mov = other_codecs_clip(
        "vod-hevc-mp3-3s.mov",
        &[
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-x265-params",
            "log-level=error",
        ],
        &["-c:a", "libmp3lame", "-b:a", "128k"],
    );
    let s = Server::start_with_env(&config(), &env());
    let c = client();
    let (_admin, caster, _) = tokens(&c, &s).await;
    for file in [&mkv, &mov] {
        let (status, created) = curl_upload(&s, Some(&caster), file, &["projection=equirect"]);
        assert_eq!(status, 201, "{created}");
        let id = created["id"].as_str().expect("id").to_string();
        let asset = wait_asset(&c, &s, &caster, &id, Duration::from_secs(60), settled).await;
        assert_eq!(asset["state"], "ready", "{file:?}: {asset}");
        let (url, _) = playback(&c, &s, &caster, &id).await;
        let index = call(&c, "GET", &url, None, None).await;
        assert_eq!(index.status, 200, "{}", index.text);
        assert!(
            index.text.contains("CODECS=\"avc1.") && index.text.contains("mp4a.40.2"),
            "{file:?}: {}",
            index.text
        );
        assert_eq!(video_frames(&[], &url), 90, "{file:?}");
    }
}
