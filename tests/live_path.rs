//! The live path end to end: the real server, real ffmpeg publishers over RTMP, and
//! LL-HLS read over real HTTP the way players read it.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;

const KEY: &str = "cam-secret-key-1";

fn config() -> String {
    format!(
        r#"
[[streams]]
slug = "cam"
key = "{KEY}"
projection = "equirect"
orientation = {{ yaw = 90.0, pitch = 0.0, roll = 0.0 }}

[[streams]]
slug = "other"
key = "other-secret-key"
projection = "flat"
"#
    )
}

/// Waits until the video playlist lists at least `segments` complete segments.
async fn wait_segments(
    client: &reqwest::Client,
    url: &str,
    segments: usize,
    limit: Duration,
) -> LlPlaylist {
    let deadline = Instant::now() + limit;
    loop {
        let f = get(client, url).await;
        if f.status == 200 {
            let p = read_ll_playlist(&f.text());
            if p.segments.len() >= segments {
                return p;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{url}: fewer than {segments} segments in time"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_rtmp_plays_as_ll_hls_with_360_signaling() {
    let source = source_file();
    let server = Server::start(&config());
    let client = client();
    let mut publisher = Publisher::start(source, &server.publish_url(KEY), false);

    // Multivariant: version 12, the layout, real codecs, the audio-only variant.
    let index_url = server.url("/hls/cam/index.m3u8");
    let index = wait_ok(&client, &index_url, Duration::from_secs(15)).await;
    assert_eq!(index.content_type, "application/vnd.apple.mpegurl");
    assert_eq!(index.cors.as_deref(), Some("*"));
    let text = index.text();
    let master = match m3u8_rs::parse_playlist_res(text.as_bytes()) {
        Ok(m3u8_rs::Playlist::MasterPlaylist(m)) => m,
        other => panic!("not a multivariant playlist: {other:?}\n{text}"),
    };
    assert!(text.contains("#EXT-X-VERSION:12"), "{text}");
    let video = master
        .variants
        .iter()
        .find(|v| v.uri == "video.m3u8")
        .expect("video variant");
    let codecs = video.codecs.as_deref().unwrap_or_default();
    assert!(
        codecs.starts_with("avc1.64") && codecs.ends_with(",mp4a.40.2"),
        "{codecs}"
    );
    let res = video.resolution.expect("resolution");
    assert_eq!((res.width, res.height), (1920, 960));
    assert!(text.contains("REQ-VIDEO-LAYOUT=\"PROJ-EQUI\""), "{text}");
    assert!(video.bandwidth > 0 && video.average_bandwidth.is_some());
    let audio_only = master
        .variants
        .iter()
        .find(|v| v.uri == "audio.m3u8")
        .expect("audio-only variant");
    assert_eq!(audio_only.codecs.as_deref(), Some("mp4a.40.2"));

    let info = get(&client, &server.url("/api/v1/streams/cam")).await;
    let info: serde_json::Value = serde_json::from_slice(&info.body).expect("json");
    assert_eq!(info["projection"], "equirect");
    assert_eq!(info["orientation"]["yaw"], 90.0);
    assert_eq!(info["live"], true);
    assert_eq!(info["ingest"]["status"], "live");

    // The media playlist follows the LL-HLS rules.
    let video_url = server.url("/hls/cam/video.m3u8");
    let p = wait_segments(&client, &video_url, 2, Duration::from_secs(20)).await;
    let info = get(&client, &server.url("/api/v1/streams/cam")).await;
    let info: serde_json::Value = serde_json::from_slice(&info.body).expect("json");
    let bitrate = info["current_bitrate_bps"].as_u64().unwrap_or(0);
    assert!(bitrate > 100_000, "current bitrate {info}");
    assert!(
        (p.part_target - 0.2).abs() < 1e-9,
        "PART-TARGET {}",
        p.part_target
    );
    assert_eq!(
        p.server_control.get("CAN-BLOCK-RELOAD").map(String::as_str),
        Some("YES")
    );
    let hold_back: f64 = p.server_control["PART-HOLD-BACK"]
        .parse()
        .expect("hold back");
    assert!(hold_back >= 2.0 * p.part_target);
    assert!(!p.parts.is_empty());
    for part in &p.parts {
        assert!(
            part.duration <= p.part_target + 1e-9,
            "part {} of {} s",
            part.uri,
            part.duration
        );
    }
    for (duration, uri) in &p.segments {
        assert!(
            duration.round() as u64 <= p.target_duration,
            "{uri} {duration}"
        );
    }
    assert!(p.program_date_times >= p.segments.len());
    let report = p
        .rendition_reports
        .first()
        .expect("rendition report for audio");
    assert_eq!(report["URI"], "audio.m3u8");
    assert!(report.contains_key("LAST-MSN") && report.contains_key("LAST-PART"));

    // Every INDEPENDENT part starts with a keyframe; the init segment says 360.
    let dir = tempfile::tempdir().expect("tmp");
    let init_uri = get(&client, &video_url)
        .await
        .text()
        .lines()
        .find(|l| l.starts_with("#EXT-X-MAP:"))
        .map(|l| attributes(l)["URI"].clone())
        .expect("EXT-X-MAP");
    let init = get(&client, &server.url(&format!("/hls/cam/{init_uri}"))).await;
    assert_eq!(init.status, 200);
    assert_eq!(init.content_type, "video/mp4");
    assert!(init.cache_control.contains("immutable"));
    for part in p.parts.iter().filter(|x| x.independent).take(3) {
        let body = get(&client, &server.url(&format!("/hls/cam/{}", part.uri))).await;
        assert_eq!(body.status, 200, "{}", part.uri);
        let file = concat_file(dir.path(), "probe.mp4", &[&init.body, &body.body]);
        let path = file.to_string_lossy();
        let first = ffprobe(
            &[
                "-select_streams",
                "v:0",
                "-show_entries",
                "frame=key_frame",
                "-read_intervals",
                "%+#1",
                "-of",
                "csv=p=0",
            ],
            &path,
        );
        assert_eq!(
            first.trim().trim_end_matches(','),
            "1",
            "first frame of {} is not a keyframe",
            part.uri
        );
        let side = common::assert_equirect(&path);
        assert!(side.contains("\"yaw\": 90"), "{side}");
    }

    // A segment is exactly its parts, with an exact Content-Length.
    let (_, seg_uri) = p.segments.last().expect("a complete segment").clone();
    let seg_msn = seg_uri
        .trim_start_matches("video/seg-")
        .trim_end_matches(".m4s");
    let prefix = format!("video/part-{seg_msn}-");
    let mut joined = Vec::new();
    for part in p.parts.iter().filter(|x| x.uri.starts_with(&prefix)) {
        joined.extend_from_slice(
            &get(&client, &server.url(&format!("/hls/cam/{}", part.uri)))
                .await
                .body,
        );
    }
    assert!(!joined.is_empty(), "parts of {seg_uri} are listed");
    let resp = client
        .get(server.url(&format!("/hls/cam/{seg_uri}")))
        .send()
        .await
        .expect("segment");
    assert_eq!(resp.content_length(), Some(joined.len() as u64));
    assert_eq!(
        resp.bytes().await.expect("segment body").as_ref(),
        joined.as_slice()
    );

    // Blocking reload: ask for the hinted part; the held part GET and the playlist
    // come back together, within about one part duration of each other.
    let p = read_ll_playlist(&get(&client, &video_url).await.text());
    let hint = p.preload_hint.clone().expect("preload hint");
    let (msn, part) = parse_part_uri(&hint);
    let blocking_url = format!("{video_url}?_HLS_msn={msn}&_HLS_part={part}");
    let part_url = server.url(&format!("/hls/cam/{hint}"));
    let started = Instant::now();
    let playlist_req = get(&client, &blocking_url);
    let part_req = get(&client, &part_url);
    let (blocked, held) = tokio::join!(
        async {
            let f = playlist_req.await;
            (f, started.elapsed())
        },
        async {
            let f = part_req.await;
            (f, started.elapsed())
        }
    );
    assert_eq!(blocked.0.status, 200);
    assert!(
        blocked.0.text().contains(&hint),
        "the answered playlist lists the awaited part"
    );
    // A hinted part ends a segment early when the next frame is a keyframe; then
    // the part does not exist and the GET is answered 404 once that is known.
    assert!(held.0.status == 200 || held.0.status == 404);
    assert!(
        blocked.1 < Duration::from_secs(2),
        "blocked for {:?}",
        blocked.1
    );
    let apart = blocked.1.abs_diff(held.1);
    assert!(
        apart <= Duration::from_millis(200),
        "playlist and part {apart:?} apart"
    );

    // 400 for a far-future msn, at once.
    let t = Instant::now();
    let far = get(
        &client,
        &format!("{video_url}?_HLS_msn={}&_HLS_part=0", msn + 50),
    )
    .await;
    assert_eq!(far.status, 400);
    assert!(far.content_type.starts_with("application/problem+json"));
    assert!(t.elapsed() < Duration::from_secs(1));

    // Delta update skips nothing this early but is valid; _HLS_part alone is 400.
    assert_eq!(
        get(&client, &format!("{video_url}?_HLS_part=1"))
            .await
            .status,
        400
    );

    // Once the publisher is done, the whole window decodes: every frame, no errors.
    let status = publisher
        .wait_exit(Duration::from_secs(40))
        .expect("ffmpeg finished");
    assert!(status.success());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let frames = video_frames(
        &["-live_start_index", "0", "-m3u8_hold_counters", "2"],
        &server.url("/hls/cam/video.m3u8"),
    );
    assert_eq!(
        frames,
        u64::from(SOURCE_SECONDS * SOURCE_FPS),
        "decoded frames"
    );
    let decode = std::process::Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-live_start_index",
            "0",
            "-m3u8_hold_counters",
            "2",
            "-i",
        ])
        .arg(&index_url)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg");
    assert!(decode.status.success());
    assert_eq!(
        String::from_utf8_lossy(&decode.stderr).trim(),
        "",
        "decode errors"
    );

    // The audio-only variant decodes as audio only.
    let streams = ffprobe(
        &[
            "-live_start_index",
            "0",
            "-m3u8_hold_counters",
            "2",
            "-show_entries",
            "stream=codec_type",
            "-of",
            "csv=p=0",
        ],
        &server.url("/hls/cam/audio.m3u8"),
    );
    assert_eq!(first_value(&streams), "audio", "{streams}");
}

/// The first value ffprobe printed (CSV output adds commas and side-data lines).
fn first_value(out: &str) -> &str {
    out.lines()
        .map(|l| l.trim().trim_end_matches(','))
        .find(|l| !l.is_empty())
        .unwrap_or("")
}

fn parse_part_uri(uri: &str) -> (u64, u32) {
    let name = uri.rsplit('/').next().unwrap_or(uri);
    let rest = name.trim_start_matches("part-").trim_end_matches(".m4s");
    let (msn, part) = rest.split_once('-').expect("part-M-P");
    (msn.parse().expect("msn"), part.parse().expect("part"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returning_publisher_continues_the_playlist_with_a_discontinuity() {
    let source = source_file();
    let server = Server::start(&config());
    let client = client();
    let video_url = server.url("/hls/cam/video.m3u8");

    let mut first = Publisher::start(source, &server.publish_url(KEY), false);
    let before = wait_segments(&client, &video_url, 2, Duration::from_secs(20)).await;
    first.child.kill().expect("kill publisher");
    let _ = first.child.wait();
    tokio::time::sleep(Duration::from_millis(500)).await;

    let _second = Publisher::start(source, &server.publish_url(KEY), false);
    let deadline = Instant::now() + Duration::from_secs(20);
    let after = loop {
        let p = read_ll_playlist(&get(&client, &video_url).await.text());
        if p.discontinuities >= 1 && p.segments.len() > before.segments.len() + 1 {
            break p;
        }
        assert!(
            Instant::now() < deadline,
            "no discontinuity after the publisher returned"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        after.media_sequence, before.media_sequence,
        "one continuous playlist"
    );
    let numbers: Vec<u64> = after
        .segments
        .iter()
        .map(|(_, uri)| {
            uri.trim_start_matches("video/seg-")
                .trim_end_matches(".m4s")
                .parse()
                .expect("msn")
        })
        .collect();
    assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "{numbers:?}");
    let audio = read_ll_playlist(
        &get(&client, &server.url("/hls/cam/audio.m3u8"))
            .await
            .text(),
    );
    assert!(audio.discontinuities >= 1, "audio marks the join too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_publisher_takes_over_at_once() {
    let source = source_file();
    let server = Server::start(&config());
    let client = client();
    let video_url = server.url("/hls/cam/video.m3u8");

    let mut first = Publisher::start(source, &server.publish_url(KEY), true);
    wait_segments(&client, &video_url, 1, Duration::from_secs(20)).await;
    let started = Instant::now();
    let _second = Publisher::start(source, &server.publish_url(KEY), true);
    // The server closes the first publisher's connection: its ffmpeg gives up.
    assert!(
        first.wait_exit(Duration::from_secs(10)).is_some(),
        "the replaced publisher was not disconnected"
    );
    // The second one's media is in the playlist soon after it connected.
    let deadline = started + Duration::from_secs(10);
    loop {
        let p = read_ll_playlist(&get(&client, &video_url).await.text());
        if p.discontinuities >= 1
            && text_after_discontinuity_has_parts(&get(&client, &video_url).await.text())
        {
            break;
        }
        assert!(Instant::now() < deadline, "no media from the new publisher");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let gap = started.elapsed();
    assert!(gap < Duration::from_secs(3), "takeover took {gap:?}");
}

fn text_after_discontinuity_has_parts(text: &str) -> bool {
    text.split("#EXT-X-DISCONTINUITY\n")
        .nth(1)
        .is_some_and(|after| after.contains("#EXT-X-PART:"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rtmp_input_is_refused_and_does_not_disturb_the_server() {
    let source = source_file();
    let server = Server::start(&config());
    let client = client();
    let addr = server.rtmp.trim_start_matches("rtmp://").to_string();

    // Random bytes instead of a handshake: the connection is closed.
    let mut garbage = TcpStream::connect(&addr).expect("connect");
    garbage
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let noise: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let _ = garbage.write_all(&noise);
    let mut buf = [0u8; 8192];
    let mut closed = false;
    for _ in 0..10 {
        match garbage.read(&mut buf) {
            Ok(0) | Err(_) => {
                closed = true;
                break;
            }
            Ok(_) => {}
        }
    }
    assert!(closed, "garbage connection left open");

    // A truncated handshake: closed by the handshake timeout, not left hanging.
    let mut truncated = TcpStream::connect(&addr).expect("connect");
    truncated
        .set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    truncated.write_all(&[3u8; 100]).expect("write");
    let t = Instant::now();
    let mut closed = false;
    while t.elapsed() < Duration::from_secs(15) {
        match truncated.read(&mut buf) {
            Ok(0) | Err(_) => {
                closed = true;
                break;
            }
            Ok(_) => {}
        }
    }
    assert!(closed, "truncated handshake left open");

    // A wrong key: ffmpeg cannot publish, and nothing appears.
    let mut wrong = Publisher::start(source, &server.publish_url("not-a-key-at-all"), false);
    let status = wrong
        .wait_exit(Duration::from_secs(15))
        .expect("ffmpeg gave up");
    assert!(!status.success());
    let missing = get(&client, &server.url("/hls/cam/index.m3u8")).await;
    assert_eq!(missing.status, 404);
    assert!(missing.content_type.starts_with("application/problem+json"));

    // The server still takes a good publisher.
    let _good = Publisher::start(source, &server.publish_url(KEY), false);
    wait_ok(
        &client,
        &server.url("/hls/cam/index.m3u8"),
        Duration::from_secs(15),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_errors_are_json_problems() {
    let server = Server::start(&config());
    let client = client();
    let health = get(&client, &server.url("/healthz")).await;
    assert_eq!(health.status, 200);
    // h2c with prior knowledge, as LL-HLS players behind an HTTP/2 proxy use it.
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("h2 client");
    let resp = h2
        .get(server.url("/healthz"))
        .send()
        .await
        .expect("h2c request");
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    assert_eq!(resp.status(), 200);
    let unknown = get(&client, &server.url("/hls/nope/index.m3u8")).await;
    assert_eq!(unknown.status, 404);
    let problem: serde_json::Value = serde_json::from_slice(&unknown.body).expect("json problem");
    assert_eq!(problem["status"], 404);
    assert!(problem["detail"]
        .as_str()
        .unwrap_or_default()
        .contains("nope"));
    let offline = get(&client, &server.url("/hls/other/index.m3u8")).await;
    assert_eq!(offline.status, 404);
    let problem: serde_json::Value = serde_json::from_slice(&offline.body).expect("json problem");
    assert!(problem["detail"]
        .as_str()
        .unwrap_or_default()
        .contains("not live"));
    let info = get(&client, &server.url("/api/v1/streams/other")).await;
    assert_eq!(info.status, 200);
    let info: serde_json::Value = serde_json::from_slice(&info.body).expect("json");
    assert_eq!(info["projection"], "flat");
    assert_eq!(info["live"], false);
    assert_eq!(info["ingest"]["status"], "idle");
    assert_eq!(info["playback_url"], "/hls/other/index.m3u8");
    assert_eq!(
        get(&client, &server.url("/api/v1/streams/nope"))
            .await
            .status,
        404
    );
    let bad = get(&client, &server.url("/hls/cam/video/part-x-1.m4s")).await;
    assert_eq!(bad.status, 404);
}

/// Decode times of every packet of `rendition`'s complete segments, in its timebase,
/// as ffprobe reads init + segments.
async fn packet_times(client: &reqwest::Client, server: &Server, rendition: &str) -> Vec<i64> {
    let url = server.url(&format!("/hls/cam/{rendition}.m3u8"));
    let playlist = read_ll_playlist(&get(client, &url).await.text());
    let map = playlist.map_uri.as_deref().expect("EXT-X-MAP");
    let mut files = vec![get(client, &resolve(&url, map)).await.body];
    for segment in &playlist.segment_lines {
        let f = get(client, &resolve(&url, &segment.uri)).await;
        assert_eq!(f.status, 200, "{}", segment.uri);
        files.push(f.body);
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let parts: Vec<&[u8]> = files.iter().map(|b| &b[..]).collect();
    let file = concat_file(dir.path(), &format!("{rendition}.mp4"), &parts);
    let out = ffprobe(
        &["-show_entries", "packet=dts", "-of", "csv=p=0"],
        file.to_str().expect("utf-8 path"),
    );
    out.lines()
        .map(|line| {
            let dts = line.trim().trim_end_matches(',');
            dts.parse()
                .unwrap_or_else(|_| panic!("ffprobe packet line {line:?}"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_looping_a_file_gives_renditions_whose_time_never_goes_back() {
    // A 3 s clip whose AAC runs a frame longer than its video: at every loop ffmpeg's
    // audio timestamps step back by about 20 ms, into audio already sent. Played as
    // is, that overlap made hls.js lose its place in the audio playlist and stall.
    let clip = source_file_sized(640, 320, 3, 30);
    let server = Server::start(&config());
    let client = client();
    let _publisher = Publisher::start(&clip, &server.publish_url(KEY), true);
    wait_for_segments(
        &client,
        &server.url("/hls/cam/audio.m3u8"),
        5,
        Duration::from_secs(40),
    )
    .await;

    let audio = packet_times(&client, &server, "audio").await;
    assert!(audio.len() > 400, "{} audio packets", audio.len());
    for pair in audio.windows(2) {
        // One AAC frame apart: less is an overlap, more a gap.
        assert_eq!(
            pair[1] - pair[0],
            1024,
            "audio timeline not contiguous: {pair:?}"
        );
    }
    let video = packet_times(&client, &server, "video").await;
    assert!(video.len() > 250, "{} video packets", video.len());
    for pair in video.windows(2) {
        assert!(pair[1] > pair[0], "video decode time goes back: {pair:?}");
    }
}
