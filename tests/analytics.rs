//! Audience analytics through the real server: 50 simulated LL-HLS viewers (real HTTP
//! loops: a blocking playlist reload, then the new part) on a stream published by a
//! real ffmpeg, counted from the server's own traffic. Concurrent viewers, the drop
//! after the session timeout, unique viewers by playback-token subject, watch time
//! against the media the viewers were sent, heatmap beacons (valid, malformed,
//! oversized, too frequent) and who may read the figures.

mod common;
mod vod_support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{call, client, read_ll_playlist, read_multivariant, resolve, source_file, wait_ok};
use common::{Answer, Publisher, Server};
use serde_json::{json, Value};
use vod_support::{config, env, tokens};

/// What one simulated viewer did.
#[derive(Default)]
struct Watched {
    /// Durations of the parts it received, summed.
    media_seconds: f64,
    /// The session id in its playlist URLs (anonymous viewers).
    sid: Option<String>,
}

/// A simulated LL-HLS viewer: the multivariant playlist, the first variant, then
/// until `stop`: a blocking reload for the hinted part, then that part. `token` is
/// appended to every URL (viewers with a playback token).
async fn viewer(
    c: reqwest::Client,
    index_url: String,
    token: Option<String>,
    stop: Arc<AtomicBool>,
    watched: Arc<Mutex<Watched>>,
) {
    let with = |url: &str, more: &str| {
        let mut q: Vec<String> = Vec::new();
        if !more.is_empty() {
            q.push(more.to_string());
        }
        if let Some(t) = &token {
            q.push(format!("token={t}"));
        }
        if q.is_empty() {
            url.to_string()
        } else {
            format!("{url}?{}", q.join("&"))
        }
    };
    let index = c.get(with(&index_url, "")).send().await.expect("index");
    // After the redirect: the URL every relative URI resolves against.
    let index_final = index.url().to_string();
    let text = index.text().await.expect("index body");
    let media_url = resolve(&index_final, &read_multivariant(&text).variants[0].uri);
    if let Some(rest) = index_final.split("/s/").nth(1) {
        watched.lock().unwrap().sid = rest.split('/').next().map(str::to_string);
    }
    let mut playlist = read_ll_playlist(
        &c.get(with(&media_url, ""))
            .send()
            .await
            .expect("media playlist")
            .text()
            .await
            .expect("body"),
    );
    while !stop.load(Ordering::Relaxed) {
        let Some(hint) = playlist.preload_hint.clone() else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let (msn, part) = part_position(&hint);
        let reload = c
            .get(with(
                &media_url,
                &format!("_HLS_msn={msn}&_HLS_part={part}"),
            ))
            .send()
            .await;
        let Ok(reload) = reload else { continue };
        if reload.status() != 200 {
            continue;
        }
        playlist = read_ll_playlist(&reload.text().await.unwrap_or_default());
        let Some(duration) = playlist
            .parts
            .iter()
            .find(|p| p.uri == hint)
            .map(|p| p.duration)
        else {
            continue;
        };
        let part_url = with(&resolve(&media_url, &hint), "");
        if let Ok(r) = c.get(part_url).send().await {
            if r.status() == 200 && r.bytes().await.is_ok() {
                watched.lock().unwrap().media_seconds += duration;
            }
        }
    }
}

/// `(msn, part)` of `…part-12-3.m4s`.
fn part_position(uri: &str) -> (u64, u32) {
    let name = uri.rsplit('/').next().unwrap_or(uri);
    let rest = name
        .strip_prefix("part-")
        .and_then(|r| r.strip_suffix(".m4s"))
        .unwrap_or_else(|| panic!("not a part URI: {uri}"));
    let (m, p) = rest.split_once('-').expect("msn-part");
    (m.parse().expect("msn"), p.parse().expect("part"))
}

struct Viewers {
    stop: Arc<AtomicBool>,
    watched: Vec<Arc<Mutex<Watched>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Viewers {
    fn start(c: &reqwest::Client, index_url: &str, tokens: &[Option<String>]) -> Viewers {
        let stop = Arc::new(AtomicBool::new(false));
        let mut watched = Vec::new();
        let mut tasks = Vec::new();
        for token in tokens {
            let w = Arc::new(Mutex::new(Watched::default()));
            tasks.push(tokio::spawn(viewer(
                c.clone(),
                index_url.to_string(),
                token.clone(),
                Arc::clone(&stop),
                Arc::clone(&w),
            )));
            watched.push(w);
        }
        Viewers {
            stop,
            watched,
            tasks,
        }
    }

    async fn stop(self) -> f64 {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.expect("viewer task");
        }
        self.watched
            .iter()
            .map(|w| w.lock().unwrap().media_seconds)
            .sum()
    }
}

/// Polls `GET path` as `token` until `done` holds, for at most `limit`.
async fn wait_for(
    c: &reqwest::Client,
    s: &Server,
    token: &str,
    path: &str,
    limit: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let a = call(c, "GET", &s.url(path), Some(token), None).await;
        assert_eq!(a.status, 200, "{path}: {}", a.text);
        if done(&a.json) {
            return a.json;
        }
        assert!(
            Instant::now() < deadline,
            "{path}: not there after {limit:?}: {}",
            a.json
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn assert_problem(a: &Answer, status: u16, what: &str) {
    assert_eq!(a.status, status, "{what}: {}", a.text);
    assert_eq!(a.content_type, "application/problem+json", "{what}");
}

fn beacon_body(fill: impl Fn(usize, usize) -> f64) -> String {
    let rows: Vec<Vec<f64>> = (0..18)
        .map(|p| (0..36).map(|y| fill(p, y)).collect())
        .collect();
    json!({ "bins": rows }).to_string()
}

async fn post_beacon(
    c: &reqwest::Client,
    s: &Server,
    sid: &str,
    body: String,
) -> (u16, Option<String>, String) {
    let r = c
        .post(s.url(&format!("/api/v1/viewer-sessions/{sid}/heatmap")))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("beacon");
    let retry = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (
        r.status().as_u16(),
        retry,
        r.text().await.unwrap_or_default(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_viewers_watch_time_unique_subjects_and_heatmaps() {
    let s = Server::start_with_env(&config(), &env());
    let c = client();
    let (admin, caster, watcher) = tokens(&c, &s).await;
    let a = call(
        &c,
        "POST",
        &s.url("/api/v1/streams"),
        Some(&caster),
        Some(json!({"slug": "arena", "title": "Arena", "visibility": "unlisted"}).to_string()),
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.text);
    let stream_id = a.json["stream"]["id"].as_str().expect("id").to_string();
    let key = a.json["stream_key"].as_str().expect("key").to_string();
    let _publisher = Publisher::start(source_file(), &s.publish_url(&key), true);
    let index_url = s.url("/hls/arena/index.m3u8");

    // Who may read: the owner and admins; 401 without a token, 403 for a viewer, 404
    // for an unknown stream.
    let viewers_path = "/api/v1/streams/arena/viewers";
    let anonymous = call(&c, "GET", &s.url(viewers_path), None, None).await;
    assert_problem(&anonymous, 401, "no token");
    let other = call(&c, "GET", &s.url(viewers_path), Some(&watcher), None).await;
    assert_problem(&other, 403, "a viewer");
    let missing = call(
        &c,
        "GET",
        &s.url("/api/v1/streams/nope/viewers"),
        Some(&admin),
        None,
    )
    .await;
    assert_problem(&missing, 404, "unknown stream");

    // The multivariant playlist hands out a session id by redirect; the playlist bytes
    // below it are the shared ones.
    let index = wait_ok(&c, &index_url, Duration::from_secs(30)).await;
    let plain = c.get(&index_url).send().await.expect("index");
    let final_url = plain.url().to_string();
    assert!(final_url.contains("/hls/arena/s/a"), "{final_url}");
    assert_eq!(plain.text().await.expect("body"), index.text());
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let redirect = no_redirect.get(&index_url).send().await.expect("302");
    assert_eq!(redirect.status(), 302);
    assert_eq!(redirect.headers()["cache-control"], "no-store");

    // 50 anonymous viewers: 50 concurrent within 10 s.
    let fifty: Vec<Option<String>> = vec![None; 50];
    let first = Viewers::start(&c, &index_url, &fifty[..20]);
    let second = Viewers::start(&c, &index_url, &fifty[20..]);
    let started = Instant::now();
    let live = wait_for(
        &c,
        &s,
        &caster,
        viewers_path,
        Duration::from_secs(10),
        |v| v["concurrent"] == 50,
    )
    .await;
    println!("50 viewers counted after {:?}", started.elapsed());
    let live_session = live["live_session"]
        .as_str()
        .expect("live session")
        .to_string();
    assert_eq!(live["peak"], 50, "{live}");
    assert!(live["peak_at"].is_string(), "{live}");
    assert_eq!(
        common::metric(&s, "panocast_viewers{stream=\"arena\"}").await,
        50.0
    );

    // Heatmap beacons, tied to a viewer's session id.
    let sid = first.watched[0]
        .lock()
        .unwrap()
        .sid
        .clone()
        .expect("an anonymous session id");
    let look = |p: usize, y: usize| if (p, y) == (9, 27) { 9.5 } else { 0.0 };
    let heatmap_path = format!("/api/v1/analytics/heatmap?scope=live_session&id={live_session}");
    for (body, status, what) in [
        ("{".to_string(), 400, "not JSON"),
        (json!({"bins": [[1.0]]}).to_string(), 400, "wrong shape"),
        (beacon_body(|_, _| -0.5), 400, "negative seconds"),
        (
            json!({"bins": [], "extra": 1}).to_string(),
            400,
            "unknown field",
        ),
        ("x".repeat(20_000), 413, "oversized"),
    ] {
        let (got, _, text) = post_beacon(&c, &s, &sid, body).await;
        assert_eq!(got, status, "{what}: {text}");
        assert!(
            text.contains("\"status\""),
            "{what}: a problem body: {text}"
        );
    }
    let (unknown, _, _) = post_beacon(&c, &s, "a0000", beacon_body(look)).await;
    assert_eq!(unknown, 404);
    let (ok, _, text) = post_beacon(&c, &s, &sid, beacon_body(look)).await;
    assert_eq!(ok, 202, "{text}");
    let (again, retry_after, _) = post_beacon(&c, &s, &sid, beacon_body(look)).await;
    assert_eq!(again, 429);
    let retry_after: u64 = retry_after.expect("Retry-After").parse().expect("seconds");
    assert!((1..=5).contains(&retry_after), "{retry_after}");
    let heat = wait_for(
        &c,
        &s,
        &caster,
        &heatmap_path,
        Duration::from_secs(10),
        |v| v["overall"]["total_seconds"].as_f64() > Some(0.0),
    )
    .await;
    assert_eq!(heat["overall"]["hottest"], json!([9, 27]), "{heat}");
    assert_eq!(
        heat["overall"]["total_seconds"].as_f64(),
        Some(9.5),
        "malformed beacons added nothing"
    );
    let forbidden = call(&c, "GET", &s.url(&heatmap_path), Some(&watcher), None).await;
    assert_problem(&forbidden, 403, "a viewer reads a heatmap");

    // Stop 20: 30 once their sessions time out (10 s floor at 2 s targets) and the next
    // sample is taken.
    let stopped = first.stop().await;
    let t = Instant::now();
    wait_for(
        &c,
        &s,
        &caster,
        viewers_path,
        Duration::from_secs(25),
        |v| v["concurrent"] == 30,
    )
    .await;
    println!("30 viewers counted {:?} after stopping 20", t.elapsed());

    // Three playback-token subjects, one of them with two sessions.
    let mut with_tokens = Vec::new();
    for token in [&admin, &caster, &watcher, &watcher] {
        let a = call(
            &c,
            "POST",
            &s.url(&format!("/api/v1/streams/{stream_id}/playback-token")),
            Some(token),
            None,
        )
        .await;
        assert_eq!(a.status, 200, "{}", a.text);
        with_tokens.push(Some(a.json["token"].as_str().expect("token").to_string()));
    }
    let token_viewers = Viewers::start(&c, &s.url("/hls/arena/index.m3u8"), &with_tokens);
    wait_for(
        &c,
        &s,
        &caster,
        viewers_path,
        Duration::from_secs(10),
        |v| v["concurrent"] == 34,
    )
    .await;
    // Let every token viewer receive a few parts.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let by_tokens = token_viewers.stop().await;
    let rest = second.stop().await;

    let summary_path = format!("/api/v1/analytics/sessions/{live_session}");
    let summary = wait_for(&c, &s, &admin, &summary_path, Duration::from_secs(5), |v| {
        v["sessions"] == 54
    })
    .await;
    // 50 anonymous sessions (each its own subject) and four token sessions of three
    // subjects.
    assert_eq!(summary["unique_viewers"], 53, "{summary}");
    let sent = stopped + by_tokens + rest;
    let counted = summary["watch_seconds"].as_f64().expect("watch seconds");
    println!("watch time: {counted:.1} s counted, {sent:.1} s sent");
    assert!(
        (counted - sent).abs() <= 0.05 * sent,
        "watch time {counted} is not within 5% of the {sent} s sent"
    );
    assert_eq!(summary["renditions"][0]["share"], 1.0, "{summary}");
    assert_eq!(summary["user_agents"]["other"], 54, "{summary}");
    let forbidden = call(&c, "GET", &s.url(&summary_path), Some(&watcher), None).await;
    assert_problem(&forbidden, 403, "a viewer reads a summary");
    let unknown = call(
        &c,
        "GET",
        &s.url("/api/v1/analytics/sessions/ls_nope"),
        Some(&admin),
        None,
    )
    .await;
    assert_problem(&unknown, 404, "unknown live session");

    // History: the 1-minute points of the stream.
    let series = call(
        &c,
        "GET",
        &s.url(&format!(
            "/api/v1/analytics/timeseries?metric=concurrent&scope=stream&id={stream_id}&interval=1m"
        )),
        Some(&caster),
        None,
    )
    .await;
    assert_eq!(series.status, 200, "{}", series.text);
    let peak = series.json["points"]
        .as_array()
        .expect("points")
        .iter()
        .filter_map(|p| p["value"].as_f64())
        .fold(0.0, f64::max);
    assert_eq!(peak, 50.0, "{}", series.json);
    let watch = call(
        &c,
        "GET",
        &s.url(&format!(
            "/api/v1/analytics/timeseries?metric=watch_seconds&scope=stream&id={stream_id}&interval=1h"
        )),
        Some(&caster),
        None,
    )
    .await;
    assert_eq!(watch.status, 200, "{}", watch.text);
    for (query, status) in [
        ("metric=bogus&scope=stream&id=arena", 400),
        ("metric=views&scope=stream&id=arena&from=yesterday", 400),
        ("metric=views&scope=stream&id=arena&interval=5m", 400),
        ("metric=views&scope=stream&id=nope", 404),
        ("metric=views&scope=event&id=ev_nope", 404),
        ("metric=views&scope=asset&id=nope", 404),
    ] {
        let a = call(
            &c,
            "GET",
            &s.url(&format!("/api/v1/analytics/timeseries?{query}")),
            Some(&admin),
            None,
        )
        .await;
        assert_problem(&a, status, query);
    }
    let a = call(
        &c,
        "GET",
        &s.url("/api/v1/analytics/timeseries?metric=views&scope=stream&id=arena"),
        Some(&watcher),
        None,
    )
    .await;
    assert_problem(&a, 403, "a viewer reads a time series");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_analytics_off_nothing_is_handed_out_or_counted() {
    let config = format!("{}\n[analytics]\nenabled = false\n", config());
    let s = Server::start_with_env(&config, &env());
    let c = client();
    let (admin, _, _) = tokens(&c, &s).await;
    let a = call(
        &c,
        "POST",
        &s.url("/api/v1/streams"),
        Some(&admin),
        Some(json!({"slug": "quiet", "title": "Quiet"}).to_string()),
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.text);
    let key = a.json["stream_key"].as_str().expect("key").to_string();
    let _publisher = Publisher::start(source_file(), &s.publish_url(&key), true);
    let index_url = s.url("/hls/quiet/index.m3u8");
    wait_ok(&c, &index_url, Duration::from_secs(30)).await;
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let index = no_redirect.get(&index_url).send().await.expect("index");
    assert_eq!(index.status(), 200, "the shared playlist, no session id");
    let viewers = Viewers::start(&c, &index_url, &[None, None]);
    // Long enough for at least one 5 s sample: each viewer received 6 s of media.
    let deadline = Instant::now() + Duration::from_secs(30);
    while viewers
        .watched
        .iter()
        .any(|w| w.lock().unwrap().media_seconds < 6.0)
    {
        assert!(Instant::now() < deadline, "the viewers did not play");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let live = call(
        &c,
        "GET",
        &s.url("/api/v1/streams/quiet/viewers"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(live.status, 200, "{}", live.text);
    assert_eq!(live.json["concurrent"], 0, "{}", live.json);
    viewers.stop().await;
}
