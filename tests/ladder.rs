//! The transcoding ladder (issue 2) end to end: the real server transcoding what real
//! ffmpeg publishers push over RTMP, every rendition read over real HTTP the way players
//! read it, and checked with the independent readers (m3u8-rs, ffprobe, ffmpeg).

mod common;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

const KEY: &str = "cam-secret-key-1";

/// Transcoding is CPU-bound and CI has two cores: the tests that transcode take turns
/// so that each has its real-time headroom.
static TRANSCODING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The ladder of the issue: three rungs below the 1920x960 test source, one with its
/// own preset, and a mono audio rendition.
const TEST3: &str = r#"
[ladders.test3]
preset = "ultrafast"
rungs = [
  { name = "r640", width = 1280, height = 640, bitrate_kbps = 1200 },
  { name = "r480", width = 960,  height = 480, bitrate_kbps = 800, preset = "superfast" },
  { name = "r320", width = 640,  height = 320, bitrate_kbps = 400 },
]
audio = [ { name = "audio-48k", bitrate_kbps = 48, channels = 1 } ]
"#;

/// `(name, width, height, bitrate_kbps)` of the `test3` rungs, in config order.
const TEST3_RUNGS: [(&str, u64, u64, u64); 3] = [
    ("r640", 1280, 640, 1200),
    ("r480", 960, 480, 800),
    ("r320", 640, 320, 400),
];

/// The stream `cam` (equirect, published with [`KEY`]) on `ladder`.
fn cam_on(ladder: &str) -> String {
    format!(
        r#"
[[streams]]
slug = "cam"
key = "{KEY}"
projection = "equirect"
ladder = "{ladder}"
"#
    )
}

/// The variant's attribute `name`, which it must have.
fn attr<'a>(v: &'a VariantLine, name: &str, text: &str) -> &'a str {
    v.attrs
        .get(name)
        .map(String::as_str)
        .unwrap_or_else(|| panic!("{} has no {name}:\n{text}", v.uri))
}

/// `avc1.PPCCLL,mp4a.40.2`: six hex digits of profile, constraints and level.
fn is_avc_with_aac(codecs: &str) -> bool {
    let Some((video, audio)) = codecs.split_once(',') else {
        return false;
    };
    let hex = video.strip_prefix("avc1.").unwrap_or_default();
    hex.len() == 6 && hex.chars().all(|c| c.is_ascii_hexdigit()) && audio == "mp4a.40.2"
}

/// The multivariant playlist split into video variants (they have a RESOLUTION) and
/// audio-only variants, checking that every video variant comes first.
fn split_variants<'a>(
    m: &'a Multivariant,
    text: &str,
) -> (Vec<&'a VariantLine>, Vec<&'a VariantLine>) {
    let is_video = |v: &VariantLine| v.attrs.contains_key("RESOLUTION");
    let first_audio = m.variants.iter().position(|v| !is_video(v));
    if let Some(first) = first_audio {
        assert!(
            m.variants[first..].iter().all(|v| !is_video(v)),
            "a video variant after an audio-only one:\n{text}"
        );
    }
    m.variants.iter().partition(|v| is_video(v))
}

/// Renditions named in `GET /api/v1/streams/{slug}` `renditions` (strings, or objects
/// with a `name`).
fn rendition_names(info: &Value) -> BTreeSet<String> {
    info["renditions"]
        .as_array()
        .unwrap_or_else(|| panic!("no renditions array: {info}"))
        .iter()
        .map(|r| {
            r.as_str()
                .or_else(|| r["name"].as_str())
                .unwrap_or_else(|| panic!("rendition without a name: {info}"))
                .to_string()
        })
        .collect()
}

/// Polls the stream until the API says it is not live, for at most `limit`.
async fn wait_not_live(client: &reqwest::Client, server: &Server, limit: Duration) -> Value {
    let url = server.url("/api/v1/streams/cam");
    let deadline = Instant::now() + limit;
    loop {
        let info = get_json(client, &url).await;
        if info["live"] == false {
            return info;
        }
        assert!(
            Instant::now() < deadline,
            "still live {limit:?} after the publisher left: {info}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Each rendition's segments as `msn duration date` lines, for assertion messages.
fn timing_table(playlists: &BTreeMap<String, LlPlaylist>) -> String {
    let mut out = String::new();
    for (uri, p) in playlists {
        out.push_str(uri);
        out.push('\n');
        for s in &p.segment_lines {
            out.push_str(&format!(
                "  msn {} EXTINF {:.5} PDT {:?} {}\n",
                s.msn, s.duration, s.program_date_time_ms, s.uri
            ));
        }
    }
    out
}

/// `ffmpeg -v error` decoding the whole window of the playlist at `url` (stopping once
/// it no longer grows): its exit status and error output.
fn decode_window(url: &str) -> (bool, String) {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error"])
        .args(["-live_start_index", "0", "-m3u8_hold_counters", "2", "-i"])
        .arg(url)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg is installed (scripts/deps.sh)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// ffprobe's JSON for the whole window of the playlist at `url`.
fn probe_window(url: &str, entries: &str) -> Value {
    let out = ffprobe(
        &[
            "-live_start_index",
            "0",
            "-m3u8_hold_counters",
            "2",
            "-show_entries",
            entries,
            "-of",
            "json",
        ],
        url,
    );
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("ffprobe JSON for {url}: {e}\n{out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ladder_variants_decode_and_align() {
    let _turn = TRANSCODING.lock().await;
    let source = source_file();
    let server = Server::start(&format!("{TEST3}{}", cam_on("test3")));
    let client = client();
    let mut publisher = Publisher::start(source, &server.publish_url(KEY), true);

    // The multivariant playlist appears once every rendition has a segment: the
    // source and each rung in ascending bandwidth, then the audio-only variants.
    let index_url = server.url("/hls/cam/index.m3u8");
    let index = wait_ok(&client, &index_url, Duration::from_secs(60)).await;
    assert_eq!(index.content_type, "application/vnd.apple.mpegurl");
    let text = index.text();
    let m = read_multivariant(&text);
    let (video, audio_only) = split_variants(&m, &text);
    // The window has not moved yet: this is the first segment of the session.
    let first_msn = read_ll_playlist(
        &get(&client, &resolve(&index_url, "video.m3u8"))
            .await
            .text(),
    )
    .media_sequence;

    let mut expected: BTreeMap<String, (u64, u64)> =
        BTreeMap::from([("video.m3u8".to_string(), (1920, 960))]);
    for (name, w, h, _) in TEST3_RUNGS {
        expected.insert(format!("{name}.m3u8"), (w, h));
    }
    let video_uris: BTreeSet<&str> = video.iter().map(|v| v.uri.as_str()).collect();
    assert_eq!(
        video_uris,
        expected.keys().map(String::as_str).collect(),
        "video variants:\n{text}"
    );
    let audio_groups: HashSet<&str> = m
        .media
        .iter()
        .filter(|a| a.get("TYPE").is_some_and(|t| t == "AUDIO"))
        .filter_map(|a| a.get("GROUP-ID").map(String::as_str))
        .collect();
    for v in &video {
        let (w, h) = expected[&v.uri];
        assert_eq!(attr(v, "RESOLUTION", &text), format!("{w}x{h}"), "{text}");
        let codecs = attr(v, "CODECS", &text);
        assert!(
            is_avc_with_aac(codecs),
            "{}: CODECS {codecs}\n{text}",
            v.uri
        );
        for name in ["BANDWIDTH", "AVERAGE-BANDWIDTH"] {
            let bps: u64 = attr(v, name, &text).parse().expect("a number");
            assert!(bps > 0, "{}: {name}\n{text}", v.uri);
        }
        let fps: f64 = attr(v, "FRAME-RATE", &text).parse().expect("a number");
        assert!(
            (fps - 30.0).abs() < 0.5,
            "{}: FRAME-RATE {fps}\n{text}",
            v.uri
        );
        assert_eq!(attr(v, "REQ-VIDEO-LAYOUT", &text), "PROJ-EQUI", "{text}");
        let group = attr(v, "AUDIO", &text);
        assert!(
            audio_groups.contains(group),
            "{}: AUDIO={group} is no EXT-X-MEDIA audio group:\n{text}",
            v.uri
        );
    }
    let bandwidths: Vec<u64> = video
        .iter()
        .map(|v| attr(v, "BANDWIDTH", &text).parse().expect("a number"))
        .collect();
    assert!(
        bandwidths.windows(2).all(|w| w[0] <= w[1]),
        "video variants not in ascending BANDWIDTH {bandwidths:?}:\n{text}"
    );
    let audio_uris: BTreeSet<&str> = audio_only.iter().map(|v| v.uri.as_str()).collect();
    assert_eq!(
        audio_uris,
        BTreeSet::from(["audio.m3u8", "audio-48k.m3u8"]),
        "audio-only variants:\n{text}"
    );
    for a in &audio_only {
        assert_eq!(attr(a, "CODECS", &text), "mp4a.40.2", "{text}");
        assert!(
            !a.attrs.contains_key("REQ-VIDEO-LAYOUT"),
            "{} has a video layout:\n{text}",
            a.uri
        );
        let bps: u64 = attr(a, "BANDWIDTH", &text).parse().expect("a number");
        assert!(bps > 0, "{}: BANDWIDTH\n{text}", a.uri);
    }

    // Three complete segments everywhere, then one snapshot of every playlist.
    let all: Vec<String> = m.variants.iter().map(|v| v.uri.clone()).collect();
    for uri in &all {
        wait_for_segments(
            &client,
            &resolve(&index_url, uri),
            3,
            Duration::from_secs(40),
        )
        .await;
    }
    let mut texts = BTreeMap::new();
    for uri in &all {
        let f = get(&client, &resolve(&index_url, uri)).await;
        assert_eq!(f.status, 200, "{uri}");
        texts.insert(uri.clone(), f.text());
    }
    let playlists: BTreeMap<String, LlPlaylist> = texts
        .iter()
        .map(|(uri, t)| (uri.clone(), read_ll_playlist(t)))
        .collect();
    let table = timing_table(&playlists);

    // Alignment: the same msn is the same time span in every video rendition, and
    // within one AAC frame of it in every audio rendition.
    let msns = |uri: &str| -> BTreeSet<u64> {
        playlists[uri].segment_lines.iter().map(|s| s.msn).collect()
    };
    let mut common = msns("video.m3u8");
    for v in &video {
        common = &common & &msns(&v.uri);
    }
    assert!(
        common.len() >= 2,
        "fewer than 2 msn in all video renditions:\n{table}"
    );
    let segment = |uri: &str, msn: u64| {
        playlists[uri]
            .segment_lines
            .iter()
            .find(|s| s.msn == msn)
            .unwrap_or_else(|| panic!("{uri} has no msn {msn}:\n{table}"))
            .clone()
    };
    let date = |uri: &str, msn: u64| {
        segment(uri, msn)
            .program_date_time_ms
            .unwrap_or_else(|| panic!("{uri} msn {msn} has no PROGRAM-DATE-TIME:\n{table}"))
    };
    for &msn in &common {
        let durations: Vec<f64> = video
            .iter()
            .map(|v| segment(&v.uri, msn).duration)
            .collect();
        let spread = durations.iter().cloned().fold(f64::MIN, f64::max)
            - durations.iter().cloned().fold(f64::MAX, f64::min);
        assert!(
            spread <= 0.0011,
            "msn {msn}: EXTINF {durations:?} differ by {spread} s:\n{table}"
        );
        let dates: Vec<i64> = video.iter().map(|v| date(&v.uri, msn)).collect();
        let spread = dates.iter().max().unwrap_or(&0) - dates.iter().min().unwrap_or(&0);
        assert!(
            spread <= 1,
            "msn {msn}: PROGRAM-DATE-TIME {dates:?} differ by {spread} ms:\n{table}"
        );
    }
    // Except in the session's first segment: the source's audio starts a few AAC
    // frames after its video (encoder priming), and the audio segment starts with it.
    for a in &audio_only {
        let mut compared = 0;
        for s in &playlists[&a.uri].segment_lines {
            if !common.contains(&s.msn) || s.msn == first_msn {
                continue;
            }
            let audio = date(&a.uri, s.msn);
            let video = date("video.m3u8", s.msn);
            assert!(
                (audio - video).abs() <= 22,
                "{} msn {}: PROGRAM-DATE-TIME {audio} vs video {video}:\n{table}",
                a.uri,
                s.msn
            );
            compared += 1;
        }
        assert!(
            compared > 0,
            "{}: no msn shared with video:\n{table}",
            a.uri
        );
    }

    // Each rung reports every other rendition.
    for (name, ..) in TEST3_RUNGS {
        let uri = format!("{name}.m3u8");
        let rung_url = resolve(&index_url, &uri);
        let reported: BTreeSet<String> = playlists[&uri]
            .rendition_reports
            .iter()
            .map(|r| resolve(&rung_url, &r["URI"]))
            .collect();
        for other in all.iter().filter(|o| **o != uri) {
            assert!(
                reported.contains(&resolve(&index_url, other)),
                "{uri} has no RENDITION-REPORT for {other}:\n{}",
                texts[&uri]
            );
        }
    }

    // Every INDEPENDENT part of every rung starts with a keyframe (media fetched
    // first, while the playlist lists it, then probed).
    let dir = tempfile::tempdir().expect("tmp");
    for (name, ..) in TEST3_RUNGS {
        let rung_url = resolve(&index_url, &format!("{name}.m3u8"));
        let rung_text = get(&client, &rung_url).await.text();
        let p = read_ll_playlist(&rung_text);
        let map = p
            .map_uri
            .clone()
            .unwrap_or_else(|| panic!("no EXT-X-MAP:\n{rung_text}"));
        let init = get(&client, &resolve(&rung_url, &map)).await;
        assert_eq!(init.status, 200, "{map}");
        let mut parts = Vec::new();
        for part in p.parts.iter().filter(|x| x.independent) {
            let body = get(&client, &resolve(&rung_url, &part.uri)).await;
            assert_eq!(body.status, 200, "{}:\n{rung_text}", part.uri);
            parts.push((part.uri.clone(), body.body));
        }
        assert!(!parts.is_empty(), "no INDEPENDENT part:\n{rung_text}");
        for (uri, body) in &parts {
            let file = concat_file(dir.path(), "probe.mp4", &[&init.body, body]);
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
                "{name}: the first frame of INDEPENDENT part {uri} is not a keyframe:\n{rung_text}"
            );
        }
        // A rung is as much 360 video as the source: its init segment says so too.
        let file = concat_file(dir.path(), "probe.mp4", &[&init.body, &parts[0].1]);
        let side = ffprobe(
            &[
                "-select_streams",
                "v:0",
                "-show_entries",
                "stream_side_data_list",
                "-of",
                "json",
            ],
            &file.to_string_lossy(),
        );
        assert!(
            side.contains("Spherical Mapping") && side.contains("equirectangular"),
            "{name}: {map} has no equirectangular spherical mapping: {side}"
        );
    }

    // The API and the metrics show the ladder at work.
    let info = get_json(&client, &server.url("/api/v1/streams/cam")).await;
    let t = &info["transcode"];
    assert_eq!(t["ladder"], "test3", "{info}");
    assert_eq!(t["state"], "running", "{info}");
    let rungs = t["rungs"].as_array().unwrap_or_else(|| panic!("{info}"));
    assert_eq!(rungs.len(), TEST3_RUNGS.len(), "{info}");
    for (rung, (name, w, h, kbps)) in rungs.iter().zip(TEST3_RUNGS) {
        assert_eq!(rung["name"], name, "{info}");
        assert_eq!(rung["width"], w, "{info}");
        assert_eq!(rung["height"], h, "{info}");
        assert_eq!(rung["bitrate_kbps"], kbps, "{info}");
        assert!(rung["dropped_frames"].is_u64(), "{info}");
    }
    let audio = t["audio"].as_array().unwrap_or_else(|| panic!("{info}"));
    assert_eq!(audio.len(), 1, "{info}");
    assert_eq!(audio[0]["name"], "audio-48k", "{info}");
    // The stream's dropped frames: every rung's, video and audio, in one figure the
    // console shows beside the transcode state.
    let rung_drops: u64 = rungs
        .iter()
        .chain(audio)
        .map(|r| {
            r["dropped_frames"]
                .as_u64()
                .unwrap_or_else(|| panic!("{info}"))
        })
        .sum();
    assert_eq!(info["dropped_frames"]["transcode"], rung_drops, "{info}");
    let ingest_discards = info["dropped_frames"]["ingest"]
        .as_u64()
        .unwrap_or_else(|| panic!("{info}"));
    let served: BTreeSet<String> = ["video", "r640", "r480", "r320", "audio", "audio-48k"]
        .map(String::from)
        .into();
    assert_eq!(rendition_names(&info), served, "{info}");
    eprintln!("transcode while live: {t}");

    let metrics = get(&client, &server.url("/metrics")).await;
    assert_eq!(metrics.status, 200);
    let metrics = metrics.text();
    for (name, ..) in TEST3_RUNGS {
        let line = metrics
            .lines()
            .find(|l| {
                l.starts_with("panocast_transcode_dropped_frames_total{")
                    && l.contains("stream=\"cam\"")
                    && l.contains(&format!("rendition=\"{name}\""))
            })
            .unwrap_or_else(|| panic!("no dropped-frames counter for {name}:\n{metrics}"));
        let value = line.rsplit(' ').next().unwrap_or_default();
        assert!(value.parse::<f64>().is_ok_and(|v| v >= 0.0), "{line}");
    }
    let discarded = metrics
        .lines()
        .find_map(|l| l.strip_prefix("panocast_ingest_discarded_frames_total{stream=\"cam\"} "))
        .unwrap_or_else(|| panic!("no ingest discard counter for cam:\n{metrics}"));
    // A counter: read after the API's figure, never below it.
    assert!(
        discarded.parse::<u64>().is_ok_and(|v| v >= ingest_discards),
        "{discarded} < {ingest_discards}"
    );

    // Once the publisher is gone, every rung's window and the mono audio decode
    // without a single error, at the rung's size and without B-frames.
    publisher.child.kill().expect("stop the publisher");
    let _ = publisher.child.wait();
    wait_not_live(&client, &server, Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let decodes = std::thread::scope(|s| {
        let jobs: Vec<_> = TEST3_RUNGS
            .iter()
            .map(|(name, ..)| format!("{name}.m3u8"))
            .chain(["audio-48k.m3u8".to_string()])
            .map(|uri| {
                let url = resolve(&index_url, &uri);
                s.spawn(move || (uri, decode_window(&url)))
            })
            .collect();
        jobs.into_iter()
            .map(|j| j.join().expect("decode thread"))
            .collect::<Vec<_>>()
    });
    for (uri, (ok, errors)) in decodes {
        assert!(
            ok && errors.trim().is_empty(),
            "{uri} decode errors:\n{errors}"
        );
    }
    for (name, w, h, _) in TEST3_RUNGS {
        let url = resolve(&index_url, &format!("{name}.m3u8"));
        let probe = probe_window(
            &url,
            "stream=codec_type,width,height,has_b_frames:frame=pict_type",
        );
        let streams = probe["streams"].as_array().cloned().unwrap_or_default();
        assert_eq!(streams.len(), 1, "{name}: {probe}");
        let st = &streams[0];
        assert_eq!(st["codec_type"], "video", "{name}: {st}");
        assert_eq!(
            (st["width"].as_u64(), st["height"].as_u64()),
            (Some(w), Some(h)),
            "{name}: {st}"
        );
        assert_eq!(st["has_b_frames"], 0, "{name}: {st}");
        let types: String = probe["frames"]
            .as_array()
            .map(|f| f.iter().filter_map(|x| x["pict_type"].as_str()).collect())
            .unwrap_or_default();
        assert!(
            types.len() >= 90,
            "{name}: only {} frames: {types}",
            types.len()
        );
        assert!(!types.contains('B'), "{name} has B-frames: {types}");
    }
    let probe = probe_window(
        &resolve(&index_url, "audio-48k.m3u8"),
        "stream=codec_type,codec_name,channels",
    );
    let streams = probe["streams"].as_array().cloned().unwrap_or_default();
    assert_eq!(streams.len(), 1, "audio-48k: {probe}");
    assert_eq!(streams[0]["codec_type"], "audio", "{probe}");
    assert_eq!(streams[0]["codec_name"], "aac", "{probe}");
    assert_eq!(streams[0]["channels"], 1, "{probe}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ladder_never_upscales() {
    let _turn = TRANSCODING.lock().await;
    let source = source_file();
    let server = Server::start(&cam_on("360"));
    let client = client();
    let _publisher = Publisher::start(source, &server.publish_url(KEY), true);

    // Of 2560x1280, 1920x960 and 1280x640 only the last is below the 1920x960 source.
    let index_url = server.url("/hls/cam/index.m3u8");
    let text = wait_ok(&client, &index_url, Duration::from_secs(60))
        .await
        .text();
    let m = read_multivariant(&text);
    let (video, audio_only) = split_variants(&m, &text);
    let sizes: BTreeMap<&str, &str> = video
        .iter()
        .map(|v| (v.uri.as_str(), attr(v, "RESOLUTION", &text)))
        .collect();
    assert_eq!(sizes.len(), 2, "video variants:\n{text}");
    assert_eq!(sizes.get("video.m3u8"), Some(&"1920x960"), "{text}");
    let (kept_uri, _) = sizes
        .iter()
        .find(|(uri, size)| **uri != "video.m3u8" && **size == "1280x640")
        .unwrap_or_else(|| panic!("no 1280x640 rung:\n{text}"));
    let kept = kept_uri.trim_end_matches(".m3u8").to_string();
    let audio_uris: BTreeSet<&str> = audio_only.iter().map(|v| v.uri.as_str()).collect();
    assert_eq!(
        audio_uris,
        BTreeSet::from(["audio.m3u8", "audio-48k.m3u8"]),
        "{text}"
    );
    let rung = get(&client, &resolve(&index_url, kept_uri)).await;
    assert_eq!(rung.status, 200, "{kept_uri}");
    assert!(
        !read_ll_playlist(&rung.text()).segments.is_empty(),
        "{}",
        rung.text()
    );

    // Each skipped rung has its warning; the kept one has none.
    let words = |line: &str| -> HashSet<String> {
        line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .map(str::to_string)
            .collect()
    };
    let log = server.log_lines();
    let skipped: Vec<&String> = log.iter().filter(|l| l.contains("skipped")).collect();
    assert!(
        skipped.len() >= 2,
        "expected a 'skipped' line for each of the two larger rungs:\n{}",
        log.join("\n")
    );
    for line in &skipped {
        assert!(
            !words(line).contains(&kept),
            "the kept rung {kept} logged as skipped: {line}"
        );
    }
    let info = get_json(&client, &server.url("/api/v1/streams/cam")).await;
    assert_eq!(info["transcode"]["ladder"], "360", "{info}");
    assert_eq!(info["transcode"]["state"], "running", "{info}");
    // If the API lists the skipped rungs too, their warnings name them.
    for r in info["transcode"]["rungs"].as_array().into_iter().flatten() {
        if r["width"].as_u64().is_some_and(|w| w >= 1920) {
            let name = r["name"].as_str().unwrap_or_default();
            assert!(
                skipped.iter().any(|l| words(l).contains(name)),
                "no 'skipped' line names {name}:\n{}",
                log.join("\n")
            );
        }
    }
    let served: BTreeSet<String> = ["video", kept.as_str(), "audio", "audio-48k"]
        .map(String::from)
        .into();
    assert_eq!(rendition_names(&info), served, "{info}");
}

/// `test3` with the rungs in the order given, for the refusal tests.
fn ladder_with_rungs(rungs: &[(&str, u32, u32)]) -> String {
    let rungs: Vec<String> = rungs
        .iter()
        .map(|(name, w, h)| {
            format!(
                "  {{ name = \"{name}\", width = {w}, height = {h}, bitrate_kbps = {} }},",
                w
            )
        })
        .collect();
    format!(
        "[ladders.test3]\npreset = \"ultrafast\"\nrungs = [\n{}\n]\naudio = [ {{ name = \"audio-48k\", bitrate_kbps = 48, channels = 1 }} ]\n{}",
        rungs.join("\n"),
        cam_on("test3")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ladder_config_refuses_upscaling_profile() {
    // The same ladder, largest rung first, is accepted: the refusal is for the order.
    let accepted = Server::start(&ladder_with_rungs(&[
        ("big", 1280, 640),
        ("small", 640, 320),
    ]));
    drop(accepted);

    let refused = serve_until_exit(
        &ladder_with_rungs(&[("small", 640, 320), ("big", 1280, 640)]),
        Duration::from_secs(20),
    );
    assert!(
        !refused.status.success(),
        "exit {:?}:\n{}",
        refused.status,
        refused.output
    );
    assert!(
        refused.output.to_lowercase().contains("upscale"),
        "no mention of upscaling:\n{}",
        refused.output
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ladder_config_refuses_unknown_ladders_and_bad_rung_names() {
    let unknown = serve_until_exit(&cam_on("nope"), Duration::from_secs(20));
    assert!(!unknown.status.success(), "{}", unknown.output);
    assert!(
        unknown.output.contains("unknown ladder"),
        "no mention of the unknown ladder:\n{}",
        unknown.output
    );
    for bad in ["R640", "r_640", "r 640", "video", "audio", "index"] {
        let refused = serve_until_exit(
            &ladder_with_rungs(&[(bad, 1280, 640), ("small", 640, 320)]),
            Duration::from_secs(20),
        );
        assert!(
            !refused.status.success(),
            "rung name {bad:?} accepted:\n{}",
            refused.output
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ladder_catalog_refuses_unknown_ladder() {
    const PASSWORD: &str = "admin-password-1";
    let server = Server::start_with_env(
        &format!("{TEST3}{}", cam_on("test3")),
        &[("PANOCAST_ADMIN_PASSWORD", PASSWORD)],
    );
    let client = client();
    let send = |method: &str, path: &str, token: Option<&str>, body: Value| {
        let mut req = client
            .request(method.parse().expect("method"), server.url(path))
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        async move {
            let resp = req.send().await.expect("request");
            let status = resp.status().as_u16();
            let content_type = resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let text = resp.text().await.unwrap_or_default();
            (status, content_type, text)
        }
    };
    let (status, _, text) = send(
        "POST",
        "/api/v1/auth/login",
        None,
        json!({"username": "admin", "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let login: Value = serde_json::from_str(&text).expect("json");
    let token = login["access_token"]
        .as_str()
        .expect("access token")
        .to_string();
    let token = Some(token.as_str());

    let (status, content_type, text) = send(
        "POST",
        "/api/v1/streams",
        token,
        json!({"slug": "api-cam", "ladder": "nope"}),
    )
    .await;
    assert_eq!(
        (status, content_type.as_str()),
        (422, "application/problem+json"),
        "{text}"
    );
    let (status, _, text) =
        send("POST", "/api/v1/streams", token, json!({"slug": "api-cam"})).await;
    assert_eq!(status, 201, "{text}");
    let (status, content_type, text) = send(
        "PATCH",
        "/api/v1/streams/api-cam",
        token,
        json!({"ladder": "nope"}),
    )
    .await;
    assert_eq!(
        (status, content_type.as_str()),
        (422, "application/problem+json"),
        "{text}"
    );
    // A ladder from the file and a built-in one are accepted.
    for ladder in ["test3", "360-hd"] {
        let (status, _, text) = send(
            "PATCH",
            "/api/v1/streams/api-cam",
            token,
            json!({ "ladder": ladder }),
        )
        .await;
        assert_eq!(status, 200, "{text}");
        let view: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(view["ladder"], ladder, "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ladder_publish_cycles_do_not_leak() {
    const CYCLES: usize = 50;
    const WARM_UP: usize = 5;
    let _turn = TRANSCODING.lock().await;
    let source = source_file_sized(640, 320, 3, 30);
    let config = format!(
        r#"
[hls]
segment_target_ms = 1000

[ladders.tiny]
preset = "ultrafast"
rungs = [ {{ name = "r160", width = 320, height = 160, bitrate_kbps = 300 }} ]
audio = [ {{ name = "audio-48k", bitrate_kbps = 48, channels = 1 }} ]
{}"#,
        cam_on("tiny")
    );
    let server = Server::start(&config);
    let client = client();
    let pid = server.pid();
    let info_url = server.url("/api/v1/streams/cam");
    let index_url = server.url("/hls/cam/index.m3u8");

    // Threads, memory and child processes once the server has settled after a cycle.
    // Threads that only linger (tokio's blocking pool keeps idle ones 10 s) are given
    // time to go: the lowest count seen within 12 s counts.
    let settle = |base: Option<ProcStatus>| async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut status = proc_status(pid);
        let deadline = Instant::now() + Duration::from_secs(12);
        while let Some(base) = base {
            if status.threads <= base.threads + 4 || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            let now = proc_status(pid);
            status = ProcStatus {
                threads: status.threads.min(now.threads),
                rss_kib: now.rss_kib,
            };
        }
        status
    };
    let mut warm = None;
    let mut warm_children = Vec::new();
    let (mut running_cycles, mut listed_cycles) = (0, 0);
    let started = Instant::now();
    for cycle in 1..=CYCLES {
        let mut publisher = Publisher::start(&source, &server.publish_url(KEY), false);
        let (mut running, mut listed) = (false, false);
        let deadline = Instant::now() + Duration::from_secs(30);
        let exit = loop {
            if let Ok(Some(status)) = publisher.child.try_wait() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "cycle {cycle}: ffmpeg still publishing"
            );
            let info = get_json(&client, &info_url).await;
            let state = &info["transcode"]["state"];
            assert_ne!(state, "failed", "cycle {cycle}: {info}");
            running |= state == "running";
            if !listed {
                let index = get(&client, &index_url).await;
                listed = index.status == 200
                    && read_multivariant(&index.text())
                        .variants
                        .iter()
                        .any(|v| v.uri == "r160.m3u8");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert!(
            exit.success(),
            "cycle {cycle}: ffmpeg could not publish: {exit:?}"
        );
        running_cycles += usize::from(running);
        listed_cycles += usize::from(listed);
        wait_not_live(&client, &server, Duration::from_secs(15)).await;
        if cycle == WARM_UP {
            warm = Some(settle(None).await);
            warm_children = child_processes(pid);
        }
    }
    let warm = warm.expect("warm-up sample");
    let after = settle(Some(warm)).await;
    // A child that is still exiting gets the same grace.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut children = child_processes(pid);
    while children.len() > warm_children.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        children = child_processes(pid);
    }
    let growth_kib = after.rss_kib.saturating_sub(warm.rss_kib);
    eprintln!(
        "{CYCLES} publish cycles in {:?}: after cycle {WARM_UP} {} threads, RSS {} KiB, {} child processes; after cycle {CYCLES} {} threads, RSS {} KiB (+{growth_kib} KiB), {} child processes; the rung was running in {running_cycles} cycles and listed in {listed_cycles}",
        started.elapsed(),
        warm.threads,
        warm.rss_kib,
        warm_children.len(),
        after.threads,
        after.rss_kib,
        children.len()
    );
    assert!(
        running_cycles * 2 >= CYCLES || listed_cycles * 2 >= CYCLES,
        "the rung ran in only {running_cycles} of {CYCLES} cycles (listed in {listed_cycles})"
    );
    assert!(
        after.threads <= warm.threads + 4,
        "threads grew from {} to {}",
        warm.threads,
        after.threads
    );
    assert!(
        growth_kib <= 32 * 1024,
        "RSS grew from {} KiB to {} KiB",
        warm.rss_kib,
        after.rss_kib
    );
    assert!(
        children.len() <= warm_children.len(),
        "child processes left behind: {children:?} (after warm-up: {warm_children:?})"
    );
}

/// A second publisher on a ladder stream takes over at once: the old pipeline is torn
/// down, a new one starts, and every rendition continues with a discontinuity and
/// stays aligned with the source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ladder_survives_a_takeover_aligned() {
    let _turn = TRANSCODING.lock().await;
    let source = source_file();
    let server = Server::start(&format!("{TEST3}{}", cam_on("test3")));
    let client = client();
    let mut first = Publisher::start(source, &server.publish_url(KEY), true);
    let index_url = server.url("/hls/cam/index.m3u8");
    wait_ok(&client, &index_url, Duration::from_secs(60)).await;

    let _second = Publisher::start(source, &server.publish_url(KEY), true);
    assert!(
        first.wait_exit(Duration::from_secs(10)).is_some(),
        "the first publisher was not disconnected"
    );
    // Both renditions of the new session have complete segments after the join.
    let deadline = Instant::now() + Duration::from_secs(40);
    // Complete segments after the last discontinuity.
    let after_join = |text: &str| {
        text.rsplit_once("#EXT-X-DISCONTINUITY\n")
            .map_or(0, |(_, tail)| tail.matches("#EXTINF:").count())
    };
    let (join_msn, video, rung) = loop {
        let video = get(&client, &server.url("/hls/cam/video.m3u8"))
            .await
            .text();
        let rung = get(&client, &server.url("/hls/cam/r320.m3u8")).await.text();
        if after_join(&video) >= 2 && after_join(&rung) >= 2 {
            let (before, _) = video
                .rsplit_once("#EXT-X-DISCONTINUITY\n")
                .unwrap_or_default();
            let join_msn = before.matches("#EXTINF:").count() as u64;
            let video = read_ll_playlist(&video);
            break (
                video.media_sequence + join_msn,
                video,
                read_ll_playlist(&rung),
            );
        }
        assert!(
            Instant::now() < deadline,
            "no complete segments after the takeover:\n{video}\n{rung}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(video.discontinuities, rung.discontinuities);
    let by_msn: BTreeMap<u64, &SegmentLine> =
        video.segment_lines.iter().map(|s| (s.msn, s)).collect();
    let mut compared = 0;
    // The segment each session's publisher left open ends on a frame whose duration
    // is a guess (nothing follows it), so segments are compared from the join on.
    for r in rung.segment_lines.iter().filter(|r| r.msn >= join_msn) {
        let Some(v) = by_msn.get(&r.msn) else {
            continue;
        };
        assert!(
            (v.duration - r.duration).abs() <= 0.0011,
            "msn {}: {} s vs {} s",
            r.msn,
            v.duration,
            r.duration
        );
        let (Some(a), Some(b)) = (v.program_date_time_ms, r.program_date_time_ms) else {
            panic!("msn {} without PROGRAM-DATE-TIME", r.msn);
        };
        assert!((a - b).abs() <= 1, "msn {}: PDT {a} vs {b}", r.msn);
        compared += 1;
    }
    assert!(
        compared >= 2,
        "only {compared} common segments after the join"
    );
    let info = get_json(&client, &server.url("/api/v1/streams/cam")).await;
    assert_eq!(info["transcode"]["state"], "running", "{info}");
}
