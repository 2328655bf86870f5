//! Recording live sessions into on-demand assets, through the real server with real
//! ffmpeg publishers: a session with a publisher reconnect is one asset with one
//! discontinuity and the published duration, played back by ffprobe with its 360
//! signaling and gated like live; a `kill -9` mid-recording gives, after restart, a
//! finalised asset of what was written.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{api, call, client, source_file_sized, video_frames, Publisher, Server};
use serde_json::{json, Value};

const ADMIN_PASSWORD: &str = "recording-admin-pass-1";
/// Seconds and frames per second of each published clip.
const CLIP_SECONDS: u32 = 6;
const FPS: u32 = 30;

fn env() -> [(&'static str, &'static str); 1] {
    [("PANOCAST_ADMIN_PASSWORD", ADMIN_PASSWORD)]
}

async fn create_stream(
    c: &reqwest::Client,
    s: &Server,
    admin: &str,
    body: Value,
) -> (String, String) {
    let a = api(c, s, admin, "POST", "/api/v1/streams", Some(body)).await;
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(a.json["stream"]["record"]["enabled"], true, "{}", a.text);
    (
        a.json["stream"]["id"].as_str().expect("id").to_string(),
        a.json["stream_key"].as_str().expect("key").to_string(),
    )
}

/// The recordings of stream `id`, polled until `done` holds for one, for at most
/// `limit`.
async fn wait_recording(
    c: &reqwest::Client,
    s: &Server,
    admin: &str,
    stream_id: &str,
    limit: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let a = api(c, s, admin, "GET", "/api/v1/assets?limit=100", None).await;
        assert_eq!(a.status, 200, "{}", a.text);
        let found = a.json["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|x| x["stream_id"] == stream_id && x["source"] == "live_session" && done(x))
            .cloned();
        if let Some(asset) = found {
            return asset;
        }
        assert!(
            Instant::now() < deadline,
            "no finished recording: {}",
            a.text
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn ready(asset: &Value) -> bool {
    asset["state"] != "preparing" && asset["recording"] == false
}

fn hls_ready(asset: &Value) -> bool {
    asset["renditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|r| r["kind"] == "hls" && r["state"] == "ready")
}

fn clip() -> std::path::PathBuf {
    source_file_sized(1280, 640, CLIP_SECONDS, 60)
}

fn publish_to_end(s: &Server, key: &str, file: &Path) {
    let mut p = Publisher::start(file, &s.publish_url(key), false);
    let exit = p.wait_exit(Duration::from_secs(u64::from(CLIP_SECONDS) + 20));
    assert!(
        exit.is_some_and(|e| e.success()),
        "publisher failed: {exit:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_with_a_reconnect_is_one_recording_with_one_discontinuity() {
    let s = Server::start_with_env("", &env());
    let c = client();
    let admin = common::login(&c, &s, "admin", ADMIN_PASSWORD).await;
    let (stream_id, key) = create_stream(
        &c,
        &s,
        &admin,
        json!({"slug": "lecture", "title": "Lecture", "visibility": "private", "reconnect_window_s": 4}),
    )
    .await;
    let file = clip();
    publish_to_end(&s, &key, &file);
    // The publisher comes back within the reconnect window: the same session.
    publish_to_end(&s, &key, &file);
    let asset = wait_recording(&c, &s, &admin, &stream_id, Duration::from_secs(60), |a| {
        ready(a) && hls_ready(a)
    })
    .await;
    let id = asset["id"].as_str().expect("id");
    let published = f64::from(2 * CLIP_SECONDS);
    let duration = asset["duration_s"].as_f64().expect("duration");
    assert!(
        (duration - published).abs() < 1.0,
        "duration {duration} of {published} s: {asset}"
    );
    assert_eq!(asset["visibility"], "private");
    assert_eq!(asset["projection"], "equirect");
    assert!(
        asset["live_session_id"]
            .as_str()
            .is_some_and(|l| l.starts_with("ls_")),
        "{asset}"
    );

    // Gated like live: nothing without a token, nothing with another thing's token.
    let index = format!("/vod/{id}/index.m3u8");
    let bare = call(&c, "GET", &s.url(&index), None, None).await;
    assert_eq!(bare.status, 401, "{}", bare.text);
    assert_eq!(bare.content_type, "application/problem+json");
    let stream_token = api(
        &c,
        &s,
        &admin,
        "POST",
        &format!("/api/v1/streams/{stream_id}/playback-token"),
        None,
    )
    .await;
    let wrong = stream_token.json["token"].as_str().expect("stream token");
    let other = call(
        &c,
        "GET",
        &s.url(&format!("{index}?token={wrong}")),
        None,
        None,
    )
    .await;
    assert_eq!(other.status, 403, "{}", other.text);
    let t = api(
        &c,
        &s,
        &admin,
        "POST",
        &format!("/api/v1/assets/{id}/playback-token"),
        None,
    )
    .await;
    assert_eq!(t.status, 200, "{}", t.text);
    let url = s.url(t.json["playback_url"].as_str().expect("url"));

    let multivariant = call(&c, "GET", &url, None, None).await;
    assert_eq!(multivariant.status, 200, "{}", multivariant.text);
    assert!(
        multivariant.text.contains("PROJ-EQUI"),
        "{}",
        multivariant.text
    );
    let token = t.json["token"].as_str().expect("token");
    let video = call(
        &c,
        "GET",
        &s.url(&format!("/vod/{id}/video.m3u8?token={token}")),
        None,
        None,
    )
    .await;
    assert_eq!(video.status, 200, "{}", video.text);
    for tag in ["#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-ENDLIST"] {
        assert!(video.text.contains(tag), "{tag}: {}", video.text);
    }
    assert_eq!(
        video.text.matches("#EXT-X-DISCONTINUITY\n").count(),
        1,
        "{}",
        video.text
    );
    assert!(video.text.contains("?token="), "{}", video.text);

    // ffprobe decodes every published frame, and sees a sphere.
    let frames = video_frames(&[], &url);
    let want = u64::from(2 * CLIP_SECONDS * FPS);
    assert!(frames.abs_diff(want) <= 3, "{frames} frames of {want}");
    common::assert_equirect(&url);

    // The audio of the recording is extracted like an upload's.
    let asset = wait_recording(&c, &s, &admin, &stream_id, Duration::from_secs(60), |a| {
        a["state"] == "ready"
    })
    .await;
    let mp3 = asset["renditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["kind"] == "audio_mp3")
        .cloned()
        .unwrap_or_default();
    assert_eq!(mp3["state"], "ready", "{asset}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_cut_by_kill_9_is_finalised_at_the_next_start() {
    let dir = tempfile::tempdir().expect("dir");
    let s = Server::start_in(dir.path(), "", &env());
    let c = client();
    let admin = common::login(&c, &s, "admin", ADMIN_PASSWORD).await;
    let (stream_id, key) =
        create_stream(&c, &s, &admin, json!({"slug": "crashy", "title": "Crashy"})).await;
    let file = clip();
    let publisher = Publisher::start(&file, &s.publish_url(&key), true);
    // Three complete segments live, so three were written.
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let p = call(&c, "GET", &s.url("/hls/crashy/video.m3u8"), None, None).await;
        if p.status == 200 && p.text.matches("#EXTINF").count() >= 3 {
            break;
        }
        assert!(Instant::now() < deadline, "no live segments: {}", p.text);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let recording = wait_recording(&c, &s, &admin, &stream_id, Duration::from_secs(5), |a| {
        a["recording"] == true
    })
    .await;
    s.kill9();
    drop(publisher);

    let s = Server::start_in(dir.path(), "", &env());
    let admin = common::login(&c, &s, "admin", ADMIN_PASSWORD).await;
    let asset = wait_recording(&c, &s, &admin, &stream_id, Duration::from_secs(60), |a| {
        ready(a) && hls_ready(a)
    })
    .await;
    assert_eq!(asset["id"], recording["id"]);
    assert!(
        asset["message"]
            .as_str()
            .is_some_and(|m| m.contains("server stopped")),
        "{asset}"
    );
    let duration = asset["duration_s"].as_f64().expect("duration");
    assert!(duration >= 4.0, "{asset}");
    let url = s.url(&format!(
        "/vod/{}/index.m3u8",
        asset["id"].as_str().expect("id")
    ));
    let frames = video_frames(&[], &url);
    let want = (duration * f64::from(FPS)).round() as u64;
    assert!(
        frames.abs_diff(want) <= 3,
        "{frames} frames for {duration} s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_byte_cap_deletes_the_oldest_recordings_and_bad_settings_are_refused() {
    let s = Server::start_with_env("", &env());
    let c = client();
    let admin = common::login(&c, &s, "admin", ADMIN_PASSWORD).await;
    for bad in [
        json!({"retention_days": 0}),
        json!({"max_bytes": 0}),
        json!({"enabled": "yes"}),
    ] {
        let a = api(
            &c,
            &s,
            &admin,
            "POST",
            "/api/v1/streams",
            Some(json!({"slug": "bad", "record": bad})),
        )
        .await;
        assert_eq!(a.status, 422, "{bad}: {}", a.text);
        assert_eq!(a.content_type, "application/problem+json");
    }
    let (stream_id, key) = create_stream(
        &c,
        &s,
        &admin,
        json!({"slug": "capped", "reconnect_window_s": 0, "record": {"enabled": true, "max_bytes": 1}}),
    )
    .await;
    let file = clip();
    let mut finished = Vec::new();
    for _ in 0..2 {
        publish_to_end(&s, &key, &file);
        let asset = wait_recording(&c, &s, &admin, &stream_id, Duration::from_secs(60), |a| {
            ready(a) && hls_ready(a) && !finished.contains(&a["id"])
        })
        .await;
        finished.push(asset["id"].clone());
    }
    // The cap is below one session: the newest is kept, the older one is gone.
    let first = s.url(&format!(
        "/api/v1/assets/{}",
        finished[0].as_str().expect("id")
    ));
    let deadline = Instant::now() + Duration::from_secs(10);
    while call(&c, "GET", &first, Some(&admin), None).await.status != 404 {
        assert!(Instant::now() < deadline, "the older recording was kept");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let kept = call(
        &c,
        "GET",
        &s.url(&format!(
            "/api/v1/assets/{}",
            finished[1].as_str().expect("id")
        )),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(kept.status, 200, "{}", kept.text);
    // Recording off: the next session leaves no asset.
    let off = api(
        &c,
        &s,
        &admin,
        "PATCH",
        "/api/v1/streams/capped",
        Some(json!({"record": {"enabled": false}})),
    )
    .await;
    assert_eq!(off.status, 200, "{}", off.text);
    assert_eq!(off.json["record"]["enabled"], false, "{}", off.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finalises_the_recording_before_the_server_exits() {
    let dir = tempfile::tempdir().expect("dir");
    let mut s = Server::start_in(dir.path(), "", &env());
    let c = client();
    let admin = common::login(&c, &s, "admin", ADMIN_PASSWORD).await;
    let (stream_id, key) = create_stream(
        &c,
        &s,
        &admin,
        json!({"slug": "graceful", "title": "Graceful"}),
    )
    .await;
    let publisher = Publisher::start(&clip(), &s.publish_url(&key), true);
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let p = call(&c, "GET", &s.url("/hls/graceful/video.m3u8"), None, None).await;
        if p.status == 200 && p.text.matches("#EXTINF").count() >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "no live segments: {}", p.text);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let exited = s.terminate(Duration::from_secs(15));
    drop(publisher);
    assert!(
        exited.is_some_and(|(status, _)| status.success()),
        "{exited:?}"
    );
    // What the stopping server said, for a failure below to show.
    let shutdown_log = s.log_lines().join("\n");
    // Finalised by the server that stopped: nothing was left for the next start to
    // repair, so the recording does not say it was cut short.
    let s = Server::start_in(dir.path(), "", &env());
    let admin = common::login(&c, &s, "admin", ADMIN_PASSWORD).await;
    let asset = wait_recording(&c, &s, &admin, &stream_id, Duration::from_secs(60), |a| {
        ready(a) && hls_ready(a)
    })
    .await;
    assert!(
        asset["message"].is_null(),
        "{asset}\nthe stopping server's log:\n{shutdown_log}"
    );
    assert!(
        asset["duration_s"].as_f64().is_some_and(|d| d >= 2.0),
        "{asset}"
    );
    assert!(!s
        .log_lines()
        .iter()
        .any(|l| l.contains("cut short by a restart")));
}
