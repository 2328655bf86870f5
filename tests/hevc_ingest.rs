//! HEVC and AV1 end to end (issue 16): the real server fed over Enhanced RTMP by a real
//! ffmpeg 7 (PyPI imageio-ffmpeg, the publisher Debian's ffmpeg 5.1 cannot be), its
//! LL-HLS read over real HTTP and checked with ffprobe and ffmpeg.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::Value;

const KEY: &str = "cam-secret-key-1";

/// Transcoding and HEVC decoding are CPU-bound on CI's two cores: one test at a time.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// 1920x960 HEVC (x265 ultrafast: 3 B-frames, open GOPs, so CRA pictures after the
/// first IDR) with a keyframe every 2 s, plus 48 kHz AAC; 12 s, in Matroska.
fn hevc_source() -> PathBuf {
    encoded_clip(
        ffmpeg7(),
        "hevc-1920x960-12s-g60.mkv",
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
            "12",
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-x265-params",
            "keyint=60:min-keyint=60:bframes=3:log-level=error",
            "-c:a",
            "aac",
            "-b:a",
            "128k",
            "-ac",
            "2",
        ],
    )
}

fn cam(extra: &str) -> String {
    format!(
        r#"
[[streams]]
slug = "cam"
key = "{KEY}"
projection = "equirect"
{extra}
"#
    )
}

/// ffprobe's JSON on `file` for `entries` of the first video stream.
fn probe(file: &Path, entries: &str) -> Value {
    let out = ffprobe(
        &[
            "-select_streams",
            "v:0",
            "-show_entries",
            entries,
            "-of",
            "json",
        ],
        &file.to_string_lossy(),
    );
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("ffprobe JSON: {e}\n{out}"))
}

/// The HEVC CODECS prefix ffprobe's view of `file` implies: `hvc1.<profile idc>.`
/// with the compatibility flag of that profile, then `.L<level>` (Main tier).
fn expected_hevc_codecs(file: &Path) -> (String, String) {
    let v = probe(file, "stream=profile,level");
    let s = &v["streams"][0];
    let profile = match s["profile"].as_str().unwrap_or_default() {
        "Main" => "1.6",
        "Main 10" => "2.4",
        other => panic!("unexpected HEVC profile {other}"),
    };
    let level = s["level"].as_i64().expect("level");
    (format!("hvc1.{profile}."), format!(".L{level}"))
}

/// `ffmpeg -v error` decoding `file`: it must succeed without a word on stderr.
///
/// The window is decoded as the file of its bytes rather than through ffmpeg's HLS
/// reader: the looped publisher leaves a one-frame timestamp gap at each loop of the
/// clip, which the HLS reader's null output reports as non-monotonic, whatever the
/// server does.
fn decodes_cleanly(file: &Path) {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(file)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg is installed (scripts/deps.sh)");
    let errors = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && errors.trim().is_empty(),
        "{file:?}: {errors}"
    );
}

/// Fetches the init segment and every listed segment of the media playlist at `url`
/// into one file.
async fn fetch_window(client: &reqwest::Client, url: &str, dir: &Path) -> (PathBuf, f64) {
    let text = get(client, url).await.text();
    let p = read_ll_playlist(&text);
    let map = p.map_uri.clone().expect("EXT-X-MAP");
    let init = get(client, &resolve(url, &map)).await;
    assert_eq!(init.status, 200);
    let mut bodies = vec![init.body];
    let mut seconds = 0.0;
    for (duration, uri) in &p.segments {
        let seg = get(client, &resolve(url, uri)).await;
        assert_eq!(seg.status, 200, "{uri}");
        bodies.push(seg.body);
        seconds += duration;
    }
    let refs: Vec<&[u8]> = bodies.iter().map(|b| &b[..]).collect();
    (concat_file(dir, "window.mp4", &refs), seconds)
}

/// Every INDEPENDENT part of the playlist at `url` starts with a key frame (an IRAP
/// picture for HEVC), and the init segment says 360.
async fn independent_parts_start_with_keyframes(client: &reqwest::Client, url: &str, dir: &Path) {
    let text = get(client, url).await.text();
    let p = read_ll_playlist(&text);
    let map = p.map_uri.clone().expect("EXT-X-MAP");
    let init = get(client, &resolve(url, &map)).await;
    let mut checked = 0;
    for part in p.parts.iter().filter(|x| x.independent) {
        let body = get(client, &resolve(url, &part.uri)).await;
        if body.status != 200 {
            continue; // slid out of the window meanwhile
        }
        let file = concat_file(dir, "part.mp4", &[&init.body, &body.body]);
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
            &file.to_string_lossy(),
        );
        assert_eq!(
            first.trim().trim_end_matches(','),
            "1",
            "the first frame of INDEPENDENT part {} is not a key frame:\n{text}",
            part.uri
        );
        checked += 1;
    }
    assert!(checked > 0, "no INDEPENDENT part:\n{text}");
}

/// The live window of the media playlist at `url` as one file: `codec` with sample
/// entry `tag`, `size`, the spherical side data, a clean decode, and every frame of
/// the listed seconds (30 fps). Returns ffprobe's view of the stream.
async fn check_window(
    client: &reqwest::Client,
    url: &str,
    dir: &Path,
    (codec, tag): (&str, &str),
    size: (i64, i64),
) -> Value {
    let (window, seconds) = fetch_window(client, url, dir).await;
    let v = probe(
        &window,
        "stream=codec_name,codec_tag_string,width,height,has_b_frames:stream_side_data_list",
    );
    let s = &v["streams"][0];
    assert_eq!(s["codec_name"], codec, "{v}");
    assert_eq!(s["codec_tag_string"], tag, "{v}");
    assert_eq!(
        (s["width"].as_i64(), s["height"].as_i64()),
        (Some(size.0), Some(size.1))
    );
    let side = v.to_string();
    assert!(
        side.contains("Spherical Mapping") && side.contains("equirectangular"),
        "{side}"
    );
    decodes_cleanly(&window);
    let frames = video_frames(&[], &window.to_string_lossy()) as f64;
    let expected = (seconds * 30.0).round();
    assert!(
        (frames - expected).abs() <= 1.0,
        "{frames} frames decoded in a window of {seconds} s"
    );
    v
}

/// Publishes `source` with ffmpeg 7 to the passthrough 360 stream `cam`; once the
/// multivariant playlist is up, returns it and the source variant.
async fn publish_passthrough(
    source: &Path,
) -> (Server, Publisher, reqwest::Client, String, VariantLine) {
    let server = Server::start(&cam(""));
    let client = client();
    let publisher = Publisher::start_with(ffmpeg7(), source, &server.publish_url(KEY), true);
    let index_url = server.url("/hls/cam/index.m3u8");
    let text = wait_ok(&client, &index_url, Duration::from_secs(30))
        .await
        .text();
    let video = read_multivariant(&text)
        .variants
        .into_iter()
        .find(|v| v.uri == "video.m3u8")
        .unwrap_or_else(|| {
            panic!(
                "no video variant:\n{text}\nserver log:\n{}",
                server.log_lines().join("\n")
            )
        });
    (server, publisher, client, text, video)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enhanced_rtmp_hevc_is_packaged_as_hvc1() {
    let _turn = TURN.lock().await;
    let source = hevc_source();
    let (server, _publisher, client, text, video) = publish_passthrough(&source).await;
    let codecs = &video.attrs["CODECS"];
    let (prefix, level) = expected_hevc_codecs(&source);
    let (video_codec, audio_codec) = codecs.split_once(',').expect("video,audio");
    assert!(
        video_codec.starts_with(&prefix) && video_codec.contains(&level),
        "CODECS {codecs}, expected {prefix}…{level}…:\n{text}"
    );
    assert_eq!(audio_codec, "mp4a.40.2");
    assert_eq!(video.attrs["RESOLUTION"], "1920x960", "{text}");
    let fps: f64 = video.attrs["FRAME-RATE"].parse().expect("FRAME-RATE");
    assert!((fps - 30.0).abs() < 0.01, "{text}");
    assert_eq!(video.attrs["REQ-VIDEO-LAYOUT"], "PROJ-EQUI", "{text}");

    let info = get_json(&client, &server.url("/api/v1/streams/cam")).await;
    assert_eq!(info["ingest"]["status"], "live", "{info}");

    let video_url = server.url("/hls/cam/video.m3u8");
    wait_for_segments(&client, &video_url, 3, Duration::from_secs(30)).await;
    let dir = tempfile::tempdir().expect("tmp");
    independent_parts_start_with_keyframes(&client, &video_url, dir.path()).await;

    // The window as one file: HEVC in hvc1 (parameter sets in the sample entry), 360,
    // B-frames kept, and every frame there.
    let v = check_window(
        &client,
        &video_url,
        dir.path(),
        ("hevc", "hvc1"),
        (1920, 960),
    )
    .await;
    assert!(
        v["streams"][0]["has_b_frames"].as_i64().unwrap_or(0) > 0,
        "{v}"
    );
}

/// Two H.264 rungs below the 1920x960 HEVC source, and an H.265 one for players that
/// decode HEVC (a Vision Pro).
const H264_LADDER: &str = r#"
[ladders.h264x2]
preset = "ultrafast"
rungs = [
  { name = "r640", width = 1280, height = 640, bitrate_kbps = 1200 },
  { name = "r320", width = 640,  height = 320, bitrate_kbps = 400 },
  { name = "h320", width = 640,  height = 320, bitrate_kbps = 300, codec = "h265" },
]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hevc_source_decodes_once_into_h264_rungs() {
    let _turn = TURN.lock().await;
    let source = hevc_source();
    let server = Server::start(&format!("{H264_LADDER}{}", cam("ladder = \"h264x2\"")));
    let client = client();
    let _publisher = Publisher::start_with(ffmpeg7(), &source, &server.publish_url(KEY), true);

    // Each variant with its true CODECS: a Vision Pro finds the HEVC source, a
    // browser without HEVC the H.264 rungs.
    let index_url = server.url("/hls/cam/index.m3u8");
    let index = wait_ok(&client, &index_url, Duration::from_secs(60)).await;
    let text = index.text();
    let m = read_multivariant(&text);
    let codecs = |uri: &str| -> String {
        m.variants
            .iter()
            .find(|v| v.uri == uri)
            .unwrap_or_else(|| panic!("no variant {uri}:\n{text}"))
            .attrs["CODECS"]
            .clone()
    };
    assert!(codecs("video.m3u8").starts_with("hvc1.1.6."), "{text}");
    for (uri, resolution) in [("r640.m3u8", "1280x640"), ("r320.m3u8", "640x320")] {
        let c = codecs(uri);
        let video = c.split(',').next().unwrap_or_default();
        assert!(
            video.starts_with("avc1.") && video.len() == 11,
            "{uri}: {c}\n{text}"
        );
        let v = m.variants.iter().find(|v| v.uri == uri).expect("variant");
        assert_eq!(v.attrs["RESOLUTION"], resolution, "{text}");
        assert_eq!(v.attrs["REQ-VIDEO-LAYOUT"], "PROJ-EQUI", "{text}");
    }

    let h265 = m
        .variants
        .iter()
        .find(|v| v.uri == "h320.m3u8")
        .unwrap_or_else(|| panic!("no H.265 rung:\n{text}"));
    assert!(h265.attrs["CODECS"].starts_with("hvc1.1.6."), "{text}");
    assert_eq!(h265.attrs["RESOLUTION"], "640x320", "{text}");
    assert_eq!(h265.attrs["REQ-VIDEO-LAYOUT"], "PROJ-EQUI", "{text}");

    // Three segments everywhere. (Segment alignment between the HEVC source and
    // its rungs is not asserted yet: it is off by a few frames at times, see the
    // issue notes.)
    let uris = ["video.m3u8", "r640.m3u8", "r320.m3u8", "h320.m3u8"];
    for uri in uris {
        wait_for_segments(
            &client,
            &resolve(&index_url, uri),
            3,
            Duration::from_secs(60),
        )
        .await;
    }

    let dir = tempfile::tempdir().expect("tmp");
    for (uri, codec, tag) in [
        ("r640.m3u8", "h264", "avc1"),
        ("r320.m3u8", "h264", "avc1"),
        ("h320.m3u8", "hevc", "hvc1"),
    ] {
        let url = resolve(&index_url, uri);
        independent_parts_start_with_keyframes(&client, &url, dir.path()).await;
        let (window, _) = fetch_window(&client, &url, dir.path()).await;
        let v = probe(&window, "stream=codec_name,codec_tag_string");
        assert_eq!(v["streams"][0]["codec_name"], codec, "{uri}: {v}");
        assert_eq!(v["streams"][0]["codec_tag_string"], tag, "{uri}: {v}");
        decodes_cleanly(&window);
    }
}

/// 640x320 AV1 (libaom, real-time mode) with a key frame every 2 s, plus AAC; 8 s.
fn av1_source() -> PathBuf {
    encoded_clip(
        ffmpeg7(),
        "av1-640x320-8s-g60.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x320:rate=30",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-t",
            "8",
            "-c:v",
            "libaom-av1",
            "-usage",
            "realtime",
            "-cpu-used",
            "8",
            "-b:v",
            "600k",
            "-g",
            "60",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-b:a",
            "96k",
        ],
    )
}

/// The AV1 CODECS ffprobe's view of `file` implies: `av01.<profile>.<level index><tier>.<bit depth>`.
fn expected_av1_codecs(file: &Path) -> String {
    let v = probe(file, "stream=profile,level,pix_fmt");
    let s = &v["streams"][0];
    let profile = match s["profile"].as_str().unwrap_or_default() {
        "Main" => 0,
        "High" => 1,
        "Professional" => 2,
        other => panic!("unexpected AV1 profile {other}"),
    };
    let level = s["level"].as_i64().expect("level");
    let depth = if s["pix_fmt"].as_str().unwrap_or_default().contains("10") {
        10
    } else {
        8
    };
    format!("av01.{profile}.{level:02}M.{depth:02}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enhanced_rtmp_av1_is_packaged_as_av01() {
    let _turn = TURN.lock().await;
    let source = av1_source();
    let (server, _publisher, client, text, video) = publish_passthrough(&source).await;
    assert_eq!(
        video.attrs["CODECS"],
        format!("{},mp4a.40.2", expected_av1_codecs(&source)),
        "{text}"
    );
    assert_eq!(video.attrs["RESOLUTION"], "640x320", "{text}");
    // libaom writes no timing info: the rate is the one measured on the timestamps.
    let fps: f64 = video.attrs["FRAME-RATE"].parse().expect("FRAME-RATE");
    assert!((fps - 30.0).abs() < 0.5, "{text}");
    assert_eq!(video.attrs["REQ-VIDEO-LAYOUT"], "PROJ-EQUI", "{text}");

    let video_url = server.url("/hls/cam/video.m3u8");
    wait_for_segments(&client, &video_url, 3, Duration::from_secs(30)).await;
    let dir = tempfile::tempdir().expect("tmp");
    independent_parts_start_with_keyframes(&client, &video_url, dir.path()).await;

    check_window(&client, &video_url, dir.path(), ("av1", "av01"), (640, 320)).await;
}

/// One H.264 rung below the 640x320 AV1 source.
const AV1_LADDER: &str = r#"
[ladders.h264x1]
preset = "ultrafast"
rungs = [
  { name = "r320", width = 320, height = 160, bitrate_kbps = 300 },
]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn av1_source_decodes_once_into_an_h264_rung() {
    let _turn = TURN.lock().await;
    let source = av1_source();
    let server = Server::start(&format!("{AV1_LADDER}{}", cam("ladder = \"h264x1\"")));
    let client = client();
    let _publisher = Publisher::start_with(ffmpeg7(), &source, &server.publish_url(KEY), true);

    let index_url = server.url("/hls/cam/index.m3u8");
    let index = wait_ok(&client, &index_url, Duration::from_secs(60)).await;
    let text = index.text();
    let m = read_multivariant(&text);
    let variant = |uri: &str| {
        m.variants
            .iter()
            .find(|v| v.uri == uri)
            .unwrap_or_else(|| panic!("no variant {uri}:\n{text}"))
    };
    assert!(
        variant("video.m3u8").attrs["CODECS"].starts_with("av01.0."),
        "{text}"
    );
    let rung = variant("r320.m3u8");
    assert!(rung.attrs["CODECS"].starts_with("avc1."), "{text}");
    assert_eq!(rung.attrs["RESOLUTION"], "320x160", "{text}");

    let url = resolve(&index_url, "r320.m3u8");
    wait_for_segments(&client, &url, 3, Duration::from_secs(60)).await;
    let dir = tempfile::tempdir().expect("tmp");
    independent_parts_start_with_keyframes(&client, &url, dir.path()).await;
    let (window, _) = fetch_window(&client, &url, dir.path()).await;
    let v = probe(&window, "stream=codec_name,width,height");
    assert_eq!(v["streams"][0]["codec_name"], "h264", "{v}");
    assert_eq!(v["streams"][0]["width"], 320, "{v}");
    decodes_cleanly(&window);
}

/// A 10-bit HEVC source (Main 10, as phones and HDR cameras send): passed through as
/// Main 10, and its H.264 rung is 8-bit High (not High 10, which browsers cannot decode).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_main10_hevc_source_gets_an_8_bit_h264_rung() {
    let _turn = TURN.lock().await;
    let source = encoded_clip(
        ffmpeg7(),
        "hevc-main10-640x320-6s-g30.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x320:rate=30",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-t",
            "6",
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p10le",
            "-x265-params",
            "keyint=30:min-keyint=30:log-level=error",
            "-c:a",
            "aac",
        ],
    );
    let server = Server::start(&format!("{AV1_LADDER}{}", cam("ladder = \"h264x1\"")));
    let client = client();
    let _publisher = Publisher::start_with(ffmpeg7(), &source, &server.publish_url(KEY), true);

    let index_url = server.url("/hls/cam/index.m3u8");
    let text = wait_ok(&client, &index_url, Duration::from_secs(60))
        .await
        .text();
    let m = read_multivariant(&text);
    let codecs = |uri: &str| {
        m.variants
            .iter()
            .find(|v| v.uri == uri)
            .unwrap_or_else(|| panic!("no variant {uri}:\n{text}"))
            .attrs["CODECS"]
            .clone()
    };
    assert!(codecs("video.m3u8").starts_with("hvc1.2.4."), "{text}");
    let url = resolve(&index_url, "r320.m3u8");
    wait_for_segments(&client, &url, 2, Duration::from_secs(60)).await;
    let dir = tempfile::tempdir().expect("tmp");
    let (window, _) = fetch_window(&client, &url, dir.path()).await;
    let v = probe(&window, "stream=codec_name,profile,pix_fmt");
    let s = &v["streams"][0];
    assert_eq!(s["codec_name"], "h264", "{v}");
    assert_eq!(s["pix_fmt"], "yuv420p", "{v}");
    assert!(
        !s["profile"].as_str().unwrap_or_default().contains("10"),
        "{v}"
    );
    decodes_cleanly(&window);
}

/// Publishes `clip` once with ffmpeg 7 and returns the server's log lines that mention
/// `needle` once the publish ended.
async fn publish_and_find(server: &Server, clip: &Path, needle: &str) -> Vec<String> {
    let mut publisher = Publisher::start_with(ffmpeg7(), clip, &server.publish_url(KEY), false);
    let status = publisher.wait_exit(Duration::from_secs(60));
    assert!(
        status.is_some_and(|s| s.success()),
        "the publisher was cut off ({status:?}): the connection must survive"
    );
    server
        .log_lines()
        .into_iter()
        .filter(|l| l.contains(needle))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_video_is_refused_clearly_and_audio_stays_live() {
    let _turn = TURN.lock().await;
    let tone = [
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000",
        "-c:a",
        "aac",
        "-t",
        "4",
    ];
    let vp9 = encoded_clip(
        ffmpeg7(),
        "vp9-320x160-4s.mkv",
        &[
            &["-f", "lavfi", "-i", "testsrc2=size=320x160:rate=30"][..],
            &tone[..],
            &[
                "-c:v",
                "libvpx-vp9",
                "-deadline",
                "realtime",
                "-cpu-used",
                "8",
                "-b:v",
                "200k",
            ][..],
        ]
        .concat(),
    );
    let hevc_422 = encoded_clip(
        ffmpeg7(),
        "hevc422-320x160-4s.mkv",
        &[
            &["-f", "lavfi", "-i", "testsrc2=size=320x160:rate=30"][..],
            &tone[..],
            &[
                "-c:v",
                "libx265",
                "-preset",
                "ultrafast",
                "-pix_fmt",
                "yuv422p",
                "-x265-params",
                "log-level=error",
            ][..],
        ]
        .concat(),
    );
    let server = Server::start(&cam(""));
    let client = client();

    // VP9: the video track is dropped with one line naming the FourCC and what is
    // taken instead, the audio is packaged, the publisher is not cut off.
    let lines = publish_and_find(&server, &vp9, "'vp09'").await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains("WARN") && lines[0].contains("hvc1") && lines[0].contains("av01"),
        "{lines:?}"
    );
    let audio = get(&client, &server.url("/hls/cam/audio.m3u8")).await;
    assert_eq!(audio.status, 200);
    let index = get(&client, &server.url("/hls/cam/index.m3u8"))
        .await
        .text();
    assert!(!index.contains("video.m3u8"), "{index}");

    // HEVC 4:2:2: refused by name, once, the same way.
    let lines = publish_and_find(&server, &hevc_422, "4:2:2").await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("players decode 4:2:0 only"), "{lines:?}");
}
