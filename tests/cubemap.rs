//! Cubemap delivery (issue 17): a stream with `cubemap` set serves every rendition
//! as an equi-angular cubemap (3x2) made by `panoproject`. ffmpeg publishes an
//! equirect scene over RTMP to the real server; the checks use independent readers:
//! m3u8 text (no `REQ-VIDEO-LAYOUT`), ffprobe's side data and the init segment's
//! bytes (no equirect `sv3d`), the stream info (the layout named), and a frame of the
//! `video` rendition against ffmpeg's own `v360=input=e:output=eac` of the same input.

mod common;

use std::time::Duration;

use common::frames;
use common::*;
use serde_json::json;

const KEY: &str = "cubemap-secret-key";
/// The equirect source.
const W: usize = 960;
const H: usize = 480;
/// The cubemap made from it: the source width, 16:9 (what v360 makes too).
const CW: usize = 960;
const CH: usize = 540;
const MIN_PSNR_DB: f64 = 35.0;

/// A still mandelbrot scene as equirect, ~8 s with 1 s GOPs, plus AAC. The picture
/// does not move, so any frame of the output compares with the reference.
fn equirect_clip() -> std::path::PathBuf {
    let graph =
        format!("mandelbrot=s={W}x{H},trim=end_frame=1,loop=loop=-1:size=1,fps=30,format=yuv420p");
    frames::still_scene_clip("mandelbrot-equirect-960x480.flv", &graph)
}

fn psnr(a: &[u8], b: &[u8]) -> f64 {
    let se: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
        .sum();
    frames::psnr_db(se / a.len().max(1) as f64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cubemap_stream_serves_equi_angular_cubemaps_without_equirect_signaling() {
    let clip = equirect_clip();
    let server = Server::start(&format!(
        r#"
[ladders.cube]
preset = "ultrafast"
rungs = [ {{ name = "r480", width = 480, height = 270, bitrate_kbps = 400 }} ]

[[streams]]
slug = "cube"
key = "{KEY}"
projection = "equirect"
cubemap = true
ladder = "cube"
"#
    ));
    let client = client();
    let _publisher = Publisher::start(&clip, &server.publish_url(KEY), true);

    // Every video variant is a 16:9 cubemap, the top one included (never the
    // equirect source passed through), and none claims to be equirect.
    let index_url = server.url("/hls/cube/index.m3u8");
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
    assert!(sizes.contains(&("video.m3u8", "960x540")), "{text}");
    assert!(sizes.contains(&("r480.m3u8", "480x270")), "{text}");
    assert!(!text.contains("REQ-VIDEO-LAYOUT"), "{text}");

    // The stream info names the layout for panocast's player.
    let info = get_json(&client, &server.url("/api/v1/streams/cube")).await;
    assert_eq!(info["layout"], "eac-3x2", "{info}");
    assert_eq!(info["cubemap"], true, "{info}");
    assert_eq!(info["projection"], "equirect", "{info}");
    assert_eq!(info["transcode"]["rungs"][0]["name"], "video", "{info}");

    // A complete segment of `video` with its init segment: no spherical boxes, and
    // its frame matches ffmpeg's own cubemap of the same source.
    let media_url = resolve(&index_url, "video.m3u8");
    let (playlist, _) = wait_for_segments(&client, &media_url, 2, Duration::from_secs(30)).await;
    let init = get(
        &client,
        &resolve(&media_url, playlist.map_uri.as_deref().expect("EXT-X-MAP")),
    )
    .await;
    assert_eq!(init.status, 200);
    for fourcc in [&b"sv3d"[..], b"st3d", b"equi", b"proj"] {
        assert!(
            !init.body.windows(4).any(|w| w == fourcc),
            "the init segment has a {} box",
            String::from_utf8_lossy(fourcc)
        );
    }
    let (_, segment_uri) = playlist.segments.last().expect("a segment").clone();
    let segment = get(&client, &resolve(&media_url, &segment_uri)).await;
    assert_eq!(segment.status, 200);
    let dir = tempfile::tempdir().expect("temp dir");
    let served = concat_file(dir.path(), "served.mp4", &[&init.body, &segment.body]);
    let served_s = served.to_str().expect("utf-8 path");
    let side = ffprobe(
        &[
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream_side_data_list",
            "-of",
            "json",
        ],
        served_s,
    );
    assert!(!side.contains("Spherical"), "{side}");

    let ours = frames::first_luma(&served, None, &dir.path().join("ours.gray"), (CW, CH));
    let reference = frames::first_luma(
        &clip,
        Some("v360=input=e:output=eac"),
        &dir.path().join("reference.gray"),
        (CW, CH),
    );
    let db = psnr(&ours, &reference);
    eprintln!("served cubemap vs ffmpeg v360 eac: luma PSNR {db:.2} dB");
    assert!(
        db >= MIN_PSNR_DB,
        "the cubemap differs from v360: {db:.2} dB"
    );
    // The score can fail: the equirect source scaled to the cubemap's size is far off.
    let scaled = frames::first_luma(
        &clip,
        Some(&format!("scale={CW}:{CH}")),
        &dir.path().join("scaled.gray"),
        (CW, CH),
    );
    let wrong = psnr(&scaled, &reference);
    eprintln!("  (the equirect frame scaled to {CW}x{CH}: {wrong:.2} dB)");
    assert!(wrong < 20.0, "an equirect frame scores {wrong:.2} dB");
}

/// `cubemap` is set and cleared over the API, shown in the record and the stream
/// info, and refused with a problem body for a projection it cannot make one from.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cubemap_delivery_is_set_over_the_api_for_mono_360_streams_only() {
    const PASSWORD: &str = "cubemap-admin-password";
    let server = Server::start_with_env("", &[("PANOCAST_ADMIN_PASSWORD", PASSWORD)]);
    let c = client();
    let token = login(&c, &server, "admin", PASSWORD).await;

    let created = api(
        &c,
        &server,
        &token,
        "POST",
        "/api/v1/streams",
        Some(json!({"slug": "box", "projection": "dual-fisheye", "cubemap": true})),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.json["stream"]["cubemap"], true, "{}", created.text);
    let info = get_json(&c, &server.url("/api/v1/streams/box")).await;
    assert_eq!(info["layout"], "eac-3x2", "{info}");

    let stereo = api(
        &c,
        &server,
        &token,
        "PATCH",
        "/api/v1/streams/box",
        Some(json!({"projection": "equirect-stereo-tb"})),
    )
    .await;
    assert!(
        (400..500).contains(&stereo.status) && stereo.text.contains("cubemap"),
        "{} {}",
        stereo.status,
        stereo.text
    );
    assert!(
        stereo.content_type.starts_with("application/problem+json"),
        "{}",
        stereo.content_type
    );
    let flat = api(
        &c,
        &server,
        &token,
        "POST",
        "/api/v1/streams",
        Some(json!({"slug": "tv", "projection": "flat", "cubemap": true})),
    )
    .await;
    assert!(
        (400..500).contains(&flat.status) && flat.text.contains("cubemap"),
        "{} {}",
        flat.status,
        flat.text
    );

    let off = api(
        &c,
        &server,
        &token,
        "PATCH",
        "/api/v1/streams/box",
        Some(json!({"cubemap": false})),
    )
    .await;
    assert_eq!(off.status, 200, "{}", off.text);
    let info = get_json(&c, &server.url("/api/v1/streams/box")).await;
    assert_eq!(info["cubemap"], false, "{info}");
    assert_eq!(
        info["layout"], "equirect",
        "a stitched dual-fisheye: {info}"
    );
}
