//! Catalog edits reach a live stream at once, live sessions and their reconnect
//! window, and the lifecycle events, with real ffmpeg publishers and real HTTP.
//!
//! The server runs in-process (`panocast::server::start`, the same code `panocast
//! serve` runs) so the tests can also subscribe to its lifecycle bus.

mod common;

use std::time::{Duration, Instant};

use common::{client, ffprobe, get, read_multivariant, resolve, source_file, Publisher};
use panocast::config::{Config, Secret};
use panocast::streams::events::BusReceiver;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

const ADMIN_PASSWORD: &str = "lifecycle-admin-pass-1";

struct Running {
    base: String,
    rtmp: String,
    token: String,
    events: BusReceiver,
    http: reqwest::Client,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn start() -> Running {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config {
        http: "127.0.0.1:0".parse().expect("addr"),
        rtmp: "127.0.0.1:0".parse().expect("addr"),
        data_dir: dir.path().join("data"),
        ..Config::default()
    };
    config.auth.bootstrap_admin_password = Some(Secret::new(ADMIN_PASSWORD));
    let shutdown = CancellationToken::new();
    let started = panocast::server::start(config, shutdown.clone())
        .await
        .expect("server starts");
    let events = started.bus.subscribe();
    let base = format!("http://{}", started.http);
    let http = client();
    let login = http
        .post(format!("{base}/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body(json!({"username": "admin", "password": ADMIN_PASSWORD}).to_string())
        .send()
        .await
        .expect("login")
        .bytes()
        .await
        .expect("login body");
    let login: Value = serde_json::from_slice(&login).expect("login json");
    let token = login["access_token"].as_str().expect("token").to_string();
    Running {
        base,
        rtmp: format!("rtmp://{}/live", started.rtmp),
        token,
        events,
        http,
        shutdown,
        _dir: dir,
    }
}

impl Running {
    async fn api(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            req = req
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let resp = req.send().await.expect("api request");
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.unwrap_or_default();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, body)
    }

    /// Creates a stream; returns its key.
    async fn create(&self, body: Value) -> String {
        let (status, created) = self
            .api(reqwest::Method::POST, "/api/v1/streams", Some(body))
            .await;
        assert_eq!(status, 201, "{created}");
        created["stream_key"].as_str().expect("key").to_string()
    }

    fn publish(&self, key: &str) -> Publisher {
        Publisher::start(source_file(), &format!("{}/{key}", self.rtmp), true)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn stream(&self, slug: &str) -> Value {
        let (status, body) = self
            .api(
                reqwest::Method::GET,
                &format!("/api/v1/streams/{slug}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Waits for the next event of `slug` of type `kind`, skipping others; returns
    /// it with every event of `slug` seen on the way.
    async fn event(&mut self, slug: &str, kind: &str, limit: Duration) -> (Value, Vec<String>) {
        let deadline = tokio::time::Instant::now() + limit;
        let mut seen = Vec::new();
        loop {
            let next = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .unwrap_or_else(|_| panic!("no {kind} for {slug} within {limit:?}; saw {seen:?}"))
                .expect("bus open");
            if next.event.slug() != slug {
                continue;
            }
            seen.push(next.event.kind().to_string());
            if next.event.kind() == kind {
                return (serde_json::to_value(&*next).expect("json"), seen);
            }
        }
    }
}

/// Polls `check` until it holds, for at most `limit`; returns how long it took.
async fn within<F, Fut>(limit: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn status_of(http: &reqwest::Client, url: &str) -> u16 {
    get(http, url).await.status
}

async fn wait_live(r: &mut Running, slug: &str) {
    r.event(slug, "stream.active", Duration::from_secs(20))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_live_private_stream_disconnects_it_and_404s_within_a_second() {
    let mut r = start().await;
    let key = r
        .create(json!({"slug": "secret-show", "visibility": "private"}))
        .await;
    let mut publisher = r.publish(&key);
    wait_live(&mut r, "secret-show").await;
    let (status, token) = r
        .api(
            reqwest::Method::POST,
            "/api/v1/streams/secret-show/playback-token",
            None,
        )
        .await;
    assert_eq!(status, 200);
    let with_token = r.url(&format!(
        "/hls/secret-show/video.m3u8?token={}",
        token["token"].as_str().expect("token")
    ));
    assert_eq!(status_of(&r.http, &with_token).await, 200);

    let (status, _) = r
        .api(reqwest::Method::DELETE, "/api/v1/streams/secret-show", None)
        .await;
    assert_eq!(status, 204);
    let deleted_at = Instant::now();
    for url in [
        with_token.clone(),
        r.url("/hls/secret-show/index.m3u8"),
        r.url("/hls/secret-show/video.m3u8"),
        r.url("/hls/secret-show/video/init-0.mp4"),
    ] {
        assert_eq!(status_of(&r.http, &url).await, 404, "{url} after delete");
    }
    let (disconnected, _) = r
        .event("secret-show", "stream.disconnected", Duration::from_secs(1))
        .await;
    assert_eq!(disconnected["reason"], "deleted");
    r.event("secret-show", "stream.deleted", Duration::from_secs(1))
        .await;
    assert!(deleted_at.elapsed() < Duration::from_secs(1));
    // The publisher's connection was closed: ffmpeg gives up by itself.
    assert!(
        publisher.wait_exit(Duration::from_secs(5)).is_some(),
        "ffmpeg still publishing to a deleted stream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_the_key_disconnects_the_publisher_and_refuses_the_old_key() {
    let mut r = start().await;
    let key = r.create(json!({"slug": "keyed"})).await;
    let mut publisher = r.publish(&key);
    wait_live(&mut r, "keyed").await;
    let (status, new) = r
        .api(reqwest::Method::POST, "/api/v1/streams/keyed/key", None)
        .await;
    assert_eq!(status, 200);
    let (disconnected, _) = r
        .event("keyed", "stream.disconnected", Duration::from_secs(1))
        .await;
    assert_eq!(disconnected["reason"], "key_rotated");
    assert!(
        publisher.wait_exit(Duration::from_secs(5)).is_some(),
        "ffmpeg with the old key still publishing"
    );
    // The old key is refused: ffmpeg exits with an error and nothing connects.
    let mut old = r.publish(&key);
    let exit = old
        .wait_exit(Duration::from_secs(10))
        .expect("refused publisher exits");
    assert!(!exit.success());
    assert_eq!(r.stream("keyed").await["live"], false);
    // The new key continues the same live session.
    let _new = r.publish(new["stream_key"].as_str().expect("key"));
    let (connected, seen) = r
        .event("keyed", "stream.connected", Duration::from_secs(10))
        .await;
    assert_eq!(seen, ["stream.key_rotated", "stream.connected"]);
    assert_eq!(connected["reconnects"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_a_live_stream_ends_it_and_refuses_publishers() {
    let mut r = start().await;
    let key = r.create(json!({"slug": "switch"})).await;
    let mut publisher = r.publish(&key);
    wait_live(&mut r, "switch").await;
    let (status, body) = r
        .api(
            reqwest::Method::PATCH,
            "/api/v1/streams/switch",
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "disabled");
    let (ended, seen) = r
        .event("switch", "live_session.ended", Duration::from_secs(1))
        .await;
    assert_eq!(ended["reason"], "disabled");
    assert_eq!(seen, ["stream.disconnected", "live_session.ended"]);
    assert!(publisher.wait_exit(Duration::from_secs(5)).is_some());
    // Players are told the stream ended instead of stalling.
    let playlist = get(&r.http, &r.url("/hls/switch/video.m3u8")).await.text();
    assert!(playlist.contains("#EXT-X-ENDLIST"), "{playlist}");
    // A publisher with the valid key is refused while disabled.
    let mut again = r.publish(&key);
    let exit = again.wait_exit(Duration::from_secs(10)).expect("refused");
    assert!(!exit.success());
    assert_eq!(r.stream("switch").await["live"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_a_live_stream_to_flat_drops_the_360_signaling() {
    let mut r = start().await;
    let key = r
        .create(json!({"slug": "turn", "projection": "equirect"}))
        .await;
    let _publisher = r.publish(&key);
    wait_live(&mut r, "turn").await;
    let index = r.url("/hls/turn/index.m3u8");
    let before = get(&r.http, &index).await.text();
    assert!(
        before.contains("REQ-VIDEO-LAYOUT=\"PROJ-EQUI\""),
        "{before}"
    );
    let (status, body) = r
        .api(
            reqwest::Method::PATCH,
            "/api/v1/streams/turn",
            Some(json!({"projection": "flat"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let http = r.http.clone();
    within(
        Duration::from_secs(1),
        "multivariant without REQ-VIDEO-LAYOUT",
        || {
            let (http, index) = (http.clone(), index.clone());
            async move { !get(&http, &index).await.text().contains("REQ-VIDEO-LAYOUT") }
        },
    )
    .await;
    let multivariant = read_multivariant(&get(&r.http, &index).await.text());
    let video = resolve(&index, &multivariant.variants[0].uri);
    // The new init segment starts at the next keyframe (GOP 2 s), after a discontinuity.
    let deadline = Instant::now() + Duration::from_secs(8);
    let playlist = loop {
        let text = get(&r.http, &video).await.text();
        let after_new_map = text.rsplit("#EXT-X-MAP").next().unwrap_or_default();
        if text.matches("#EXT-X-MAP").count() >= 2 && after_new_map.contains("#EXT-X-PART") {
            break text;
        }
        assert!(Instant::now() < deadline, "no second EXT-X-MAP:\n{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let lines: Vec<&str> = playlist.lines().collect();
    let map_at = lines
        .iter()
        .rposition(|l| l.starts_with("#EXT-X-MAP"))
        .expect("map");
    assert!(
        lines[..map_at]
            .iter()
            .rev()
            .take(3)
            .any(|l| *l == "#EXT-X-DISCONTINUITY"),
        "no discontinuity before the new map:\n{playlist}"
    );
    let map_uri = common::attributes(lines[map_at])["URI"].clone();
    let part_uri = lines[map_at..]
        .iter()
        .find(|l| l.starts_with("#EXT-X-PART:"))
        .map(|l| common::attributes(l)["URI"].clone())
        .expect("a part after the new map");
    let init = get(&r.http, &resolve(&video, &map_uri)).await.body;
    let part = get(&r.http, &resolve(&video, &part_uri)).await.body;
    let dir = tempfile::tempdir().expect("dir");
    let file = common::concat_file(dir.path(), "flat.mp4", &[&init[..], &part[..]]);
    let probed = ffprobe(
        &["-show_streams", "-select_streams", "v", "-of", "json"],
        file.to_str().expect("path"),
    );
    assert!(
        !probed.contains("Spherical"),
        "flat stream still spherical:\n{probed}"
    );
    assert!(probed.contains("\"codec_name\": \"h264\""), "{probed}");
    assert_eq!(r.stream("turn").await["projection"], "flat");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_returning_within_the_window_continues_the_session_and_after_it_starts_a_new_one(
) {
    let mut r = start().await;
    let key = r
        .create(json!({"slug": "window", "reconnect_window_s": 3}))
        .await;
    let video = r.url("/hls/window/video.m3u8");
    let mut first = r.publish(&key);
    let (started, _) = r
        .event("window", "live_session.started", Duration::from_secs(20))
        .await;
    let session = started["session"]["id"].as_str().expect("id").to_string();
    wait_live(&mut r, "window").await;
    drop(first.child.kill());
    first.child.wait().expect("killed");
    r.event("window", "stream.disconnected", Duration::from_secs(15))
        .await;
    // Back within the window: the same session, one discontinuity.
    let mut second = r.publish(&key);
    let (connected, seen) = r
        .event("window", "stream.connected", Duration::from_secs(10))
        .await;
    assert_eq!(seen, ["stream.connected"], "no session boundary in between");
    assert_eq!(connected["session_id"], session.as_str());
    assert_eq!(connected["reconnects"], 1);
    wait_live(&mut r, "window").await;
    let info = r.stream("window").await;
    assert_eq!(info["session"]["id"], session.as_str());
    assert_eq!(info["session"]["reconnects"], 1);
    let playlist = get(&r.http, &video).await.text();
    assert_eq!(
        playlist.matches("#EXT-X-DISCONTINUITY\n").count(),
        1,
        "{playlist}"
    );
    assert!(!playlist.contains("#EXT-X-ENDLIST"));

    // Gone for longer than the window: the session ends and the playlist says so.
    drop(second.child.kill());
    second.child.wait().expect("killed");
    let (ended, seen) = r
        .event("window", "stream.idle", Duration::from_secs(20))
        .await;
    let _ = ended;
    assert_eq!(
        seen,
        ["stream.disconnected", "live_session.ended", "stream.idle"]
    );
    let ended_playlist = get(&r.http, &video).await.text();
    assert!(
        ended_playlist.contains("#EXT-X-ENDLIST"),
        "{ended_playlist}"
    );
    assert_eq!(r.stream("window").await["state"], "idle");

    // The next publisher starts a new session.
    let _third = r.publish(&key);
    let (restarted, seen) = r
        .event("window", "live_session.started", Duration::from_secs(10))
        .await;
    assert_eq!(seen, ["live_session.started"]);
    let new_session = restarted["session"]["id"].as_str().expect("id");
    assert_ne!(new_session, session);
    let (_, seen) = r
        .event("window", "stream.active", Duration::from_secs(20))
        .await;
    assert_eq!(seen, ["stream.connected", "stream.active"]);
    let fresh = get(&r.http, &video).await.text();
    assert!(!fresh.contains("#EXT-X-ENDLIST"), "{fresh}");
}
