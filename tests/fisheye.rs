//! Dual-fisheye streams (issue 17 item 2) end to end: ffmpeg renders an equirect
//! scene into dual fisheye (`v360=input=e:output=dfisheye`) and publishes it over
//! RTMP to a `dual-fisheye` stream; the real server stitches it with `panoproject`
//! and serves an equirect ladder. Checked with the independent readers: m3u8 text,
//! ffprobe's spherical side data, and a frame of the `video` rendition against
//! ffmpeg's own `v360=input=dfisheye:output=e` of the same input.

mod common;

use std::time::Duration;

use common::frames;
use common::*;
use serde_json::json;

const KEY: &str = "fisheye-secret-key";
/// The equirect frame the stream delivers; the source is two 480x480 circles.
const W: usize = 960;
const H: usize = 480;
/// Both lenses see 5° beyond the seam, so there is a band to blend.
const FOV: u32 = 190;
/// Pixels nearer the lens seam than this (degrees) are left out of the score: the
/// 10° cross-fade band (v360 cuts hard there) and a degree either side.
const SEAM_MARGIN_DEG: f64 = 6.0;
const MIN_PSNR_DB: f64 = 35.0;

/// A still mandelbrot scene (detail like a camera's, not pixel-sharp synthetic
/// edges) as an equirect PNG, rendered by v360 into side-by-side dual fisheye and
/// encoded for ~8 s with 1 s GOPs, plus AAC. The picture does not move, so any frame
/// of the output compares with the reference.
fn dual_fisheye_clip() -> std::path::PathBuf {
    let graph = format!(
        "mandelbrot=s={W}x{H},trim=end_frame=1,loop=loop=-1:size=1,fps=30,\
         v360=input=e:output=dfisheye:h_fov={FOV}:v_fov={FOV}:w={W}:h={H},format=yuv420p"
    );
    frames::still_scene_clip("dual-fisheye-960x480.flv", &graph)
}

/// Luma PSNR of `a` against `b` over the equirect pixels at least
/// [`SEAM_MARGIN_DEG`] from the seam between the lenses (the great circle 90° from
/// both lens axes, which point to longitude 0 and 180).
fn psnr_away_from_seam(a: &[u8], b: &[u8]) -> (f64, usize) {
    let (mut se, mut n) = (0.0f64, 0usize);
    for y in 0..H {
        let lat = (0.5 - (y as f64 + 0.5) / H as f64) * std::f64::consts::PI;
        for x in 0..W {
            let lon = ((x as f64 + 0.5) / W as f64 - 0.5) * std::f64::consts::TAU;
            let from_seam = (lat.cos() * lon.cos()).abs().asin().to_degrees();
            if from_seam < SEAM_MARGIN_DEG {
                continue;
            }
            let d = f64::from(a[y * W + x]) - f64::from(b[y * W + x]);
            se += d * d;
            n += 1;
        }
    }
    (frames::psnr_db(se / n.max(1) as f64), n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dual_fisheye_stream_goes_live_as_a_stitched_equirect_ladder() {
    let clip = dual_fisheye_clip();
    let server = Server::start(&format!(
        r#"
[ladders.fish]
preset = "ultrafast"
rungs = [ {{ name = "r240", width = 480, height = 240, bitrate_kbps = 300 }} ]

[[streams]]
slug = "fish"
key = "{KEY}"
projection = "dual-fisheye"
ladder = "fish"
fisheye = {{ front = {{ fov = {FOV} }}, back = {{ fov = {FOV} }}, overlap = 10 }}
"#
    ));
    let client = client();
    let _publisher = Publisher::start(&clip, &server.publish_url(KEY), true);

    // Every video variant is equirect 2:1, the top one included: the stitched
    // frame, never the fisheye source passed through.
    let index_url = server.url("/hls/fish/index.m3u8");
    let index = wait_ok(&client, &index_url, Duration::from_secs(40)).await;
    let text = index.text();
    let m = read_multivariant(&text);
    let video: Vec<&VariantLine> = m
        .variants
        .iter()
        .filter(|v| v.attrs.contains_key("RESOLUTION"))
        .collect();
    let sizes: Vec<(&str, &str)> = video
        .iter()
        .map(|v| (v.uri.as_str(), v.attrs["RESOLUTION"].as_str()))
        .collect();
    assert!(sizes.contains(&("video.m3u8", "960x480")), "{text}");
    assert!(sizes.contains(&("r240.m3u8", "480x240")), "{text}");
    for v in &video {
        assert_eq!(
            v.attrs.get("REQ-VIDEO-LAYOUT").map(String::as_str),
            Some("PROJ-EQUI"),
            "{}:\n{text}",
            v.uri
        );
    }

    // The stream record keeps what the camera sends; what it serves is a transcode.
    let info = get_json(&client, &server.url("/api/v1/streams/fish")).await;
    assert_eq!(info["projection"], "dual-fisheye", "{info}");
    assert_eq!(
        info["fisheye"]["front"]["fov"],
        json!(f64::from(FOV)),
        "{info}"
    );
    assert_eq!(info["transcode"]["rungs"][0]["name"], "video", "{info}");

    // The source audio is held until the stitched video has been encoded up to it,
    // so its segments start where the video's do (same msn, same date) rather than
    // an encoder's latency early.
    let media_url = resolve(&index_url, "video.m3u8");
    let audio_url = resolve(&index_url, "audio.m3u8");
    wait_for_segments(&client, &audio_url, 4, Duration::from_secs(30)).await;
    let (video_list, _) = wait_for_segments(&client, &media_url, 4, Duration::from_secs(30)).await;
    let audio_list = read_ll_playlist(&get(&client, &audio_url).await.text());
    let mut compared = 0;
    // Not the session's first segment: there the audio starts a few AAC frames after
    // the video (encoder priming), as in every stream.
    for v in video_list.segment_lines.iter().skip(1) {
        let Some(a) = audio_list.segment_lines.iter().find(|a| a.msn == v.msn) else {
            continue;
        };
        let (Some(vd), Some(ad)) = (v.program_date_time_ms, a.program_date_time_ms) else {
            continue;
        };
        // Within one AAC frame (21 ms) of the video's start.
        assert!(
            (vd - ad).abs() <= 22,
            "msn {}: video starts at {vd}, audio at {ad}",
            v.msn
        );
        compared += 1;
    }
    assert!(compared >= 2, "{video_list:?}\n{audio_list:?}");

    // A complete segment of `video`, with its init segment: ffprobe reads the
    // equirect side data, and its frame matches ffmpeg's own stitching.
    let (playlist, _) = wait_for_segments(&client, &media_url, 2, Duration::from_secs(30)).await;
    let init = get(
        &client,
        &resolve(&media_url, playlist.map_uri.as_deref().expect("EXT-X-MAP")),
    )
    .await;
    assert_eq!(init.status, 200);
    let (_, segment_uri) = playlist.segments.last().expect("a segment").clone();
    let segment = get(&client, &resolve(&media_url, &segment_uri)).await;
    assert_eq!(segment.status, 200);
    let dir = tempfile::tempdir().expect("temp dir");
    let served = concat_file(dir.path(), "served.mp4", &[&init.body, &segment.body]);
    assert_equirect(served.to_str().expect("utf-8 path"));

    let ours = frames::first_luma(&served, None, &dir.path().join("ours.gray"), (W, H));
    let reference = frames::first_luma(
        &clip,
        Some(&format!(
            "v360=input=dfisheye:output=e:ih_fov={FOV}:iv_fov={FOV}:w={W}:h={H}"
        )),
        &dir.path().join("reference.gray"),
        (W, H),
    );
    let (db, pixels) = psnr_away_from_seam(&ours, &reference);
    eprintln!("served video vs ffmpeg v360, away from the seam: luma PSNR {db:.2} dB over {pixels} pixels");
    assert!(
        db >= MIN_PSNR_DB,
        "the stitched stream differs from v360: {db:.2} dB"
    );
    // The sanity of the score itself: the unstitched source scores far lower.
    let fisheye = frames::first_luma(&clip, None, &dir.path().join("fisheye.gray"), (W, H));
    let (unstitched, _) = psnr_away_from_seam(&fisheye, &reference);
    eprintln!("  (the unstitched fisheye frame: {unstitched:.2} dB)");
    assert!(
        unstitched < 20.0,
        "the fisheye frame itself scores {unstitched:.2} dB"
    );
}

/// The catalog takes a dual-fisheye stream's lenses over the API (a lens given in
/// part keeps its own defaults) and refuses impossible ones with a problem body
/// naming the field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lens_parameters_are_stored_and_checked_over_the_api() {
    const PASSWORD: &str = "fisheye-admin-password";
    let server = Server::start_with_env("", &[("PANOCAST_ADMIN_PASSWORD", PASSWORD)]);
    let c = client();
    let token = login(&c, &server, "admin", PASSWORD).await;

    let created = api(
        &c,
        &server,
        &token,
        "POST",
        "/api/v1/streams",
        Some(json!({
            "slug": "rig",
            "projection": "dual-fisheye",
            "fisheye": {"back": {"fov": 200, "rotation": 90.0}, "overlap": 4},
            "orientation": {"yaw": 30},
            "bake_orientation": true
        })),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let record = &created.json["stream"];
    assert_eq!(record["projection"], "dual-fisheye", "{record}");
    assert_eq!(record["bake_orientation"], true, "{record}");
    let lenses = &record["fisheye"];
    assert_eq!(lenses["back"]["fov"], json!(200.0), "{lenses}");
    assert_eq!(lenses["back"]["rotation"], json!(90.0), "{lenses}");
    assert_eq!(lenses["back"]["center_x"], json!(0.25), "{lenses}");
    assert_eq!(lenses["front"]["center_x"], json!(0.75), "{lenses}");
    assert_eq!(lenses["front"]["fov"], json!(190.0), "{lenses}");
    assert_eq!(lenses["overlap"], json!(4.0), "{lenses}");

    let refused = |status: u16, text: &str, field: &str| {
        assert!(
            (400..500).contains(&status) && text.contains(field),
            "{status} {text}"
        );
    };
    let bad = api(
        &c,
        &server,
        &token,
        "POST",
        "/api/v1/streams",
        Some(
            json!({"slug": "rig2", "projection": "dual-fisheye", "fisheye": {"front": {"fov": 0}}}),
        ),
    )
    .await;
    refused(bad.status, &bad.text, "fisheye.front.fov");
    assert!(
        bad.content_type.starts_with("application/problem+json"),
        "{}",
        bad.content_type
    );
    for (patch, field) in [
        (json!({"fisheye": {"overlap": 120}}), "fisheye.overlap"),
        (
            json!({"fisheye": {"front": {"radius": -1}}}),
            "fisheye.front.radius",
        ),
        (json!({"fisheye": {"front": {"zoom": 2}}}), "zoom"),
        (
            json!({"projection": "equirect-stereo-tb"}),
            "bake_orientation",
        ),
    ] {
        let a = api(
            &c,
            &server,
            &token,
            "PATCH",
            "/api/v1/streams/rig",
            Some(patch.clone()),
        )
        .await;
        refused(a.status, &a.text, field);
    }
    // Nothing refused was stored.
    let info = get_json(&c, &server.url("/api/v1/streams/rig")).await;
    assert_eq!(info["fisheye"]["overlap"], json!(4.0), "{info}");
    assert_eq!(info["projection"], "dual-fisheye", "{info}");
}
