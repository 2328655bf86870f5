//! The per-stream memory budget against the real binary: a real ffmpeg publisher
//! sending far more than the stream's budget allows (lossless noise, ~60 Mbit/s) is
//! dropped with one clear log line and a metric, and an ordinary publisher then gets
//! the stream live again.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

const KEY: &str = "budget-key-0001";
/// 3 MiB: an 8 s, 640x320 clip's whole window fits many times over; lossless noise
/// goes past it within a second.
const BUDGET: u64 = 3 << 20;

fn config() -> String {
    format!(
        r#"
[limits]
stream_memory_bytes = {BUDGET}

[[streams]]
slug = "cam"
key = "{KEY}"
"#
    )
}

/// 4 s of lossless H.264 noise with AAC: about 250 kB a frame.
fn heavy_clip() -> std::path::PathBuf {
    encoded_clip(
        Path::new("ffmpeg"),
        "memory-budget-noise-640x320-4s.flv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x320:rate=30,noise=alls=100:allf=t+u",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-t",
            "4",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-qp",
            "0",
            "-g",
            "60",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_past_the_memory_budget_is_dropped_and_the_stream_recovers() {
    let heavy = heavy_clip();
    let normal = source_file_sized(640, 320, 8, 60);
    let server = Server::start(&config());
    let c = client();
    assert_eq!(
        metric(&server, "panocast_stream_memory_budget_bytes ").await,
        BUDGET as f64
    );

    let mut flood = Publisher::start(&heavy, &server.publish_url(KEY), true);
    let status = flood
        .wait_exit(Duration::from_secs(20))
        .expect("the publisher past the budget was not dropped");
    assert!(!status.success(), "ffmpeg exited cleanly: {status}");
    let dropped = server
        .log_lines()
        .into_iter()
        .filter(|l| l.contains("stream memory budget exceeded"))
        .collect::<Vec<_>>();
    assert_eq!(dropped.len(), 1, "{dropped:#?}");
    assert!(
        dropped[0].contains("cam") && dropped[0].contains("budget=3145728"),
        "{}",
        dropped[0]
    );
    assert!(!server.log_lines().iter().any(|l| l.contains(KEY)));
    assert_eq!(
        metric(
            &server,
            "panocast_stream_memory_budget_drops_total{stream=\"cam\"}"
        )
        .await,
        1.0
    );
    assert!(
        metric(&server, "panocast_stream_memory_peak_bytes{stream=\"cam\"}").await > BUDGET as f64
    );

    // An ordinary publisher gets the stream live again: a new live session with
    // segments players can fetch, and the stream holds far less than its budget.
    let _publisher = Publisher::start(&normal, &server.publish_url(KEY), true);
    let url = server.url("/hls/cam/video.m3u8");
    let (playlist, text) = wait_for_segments(&c, &url, 2, Duration::from_secs(30)).await;
    assert!(!text.contains("#EXT-X-ENDLIST"), "{text}");
    let segment = get(&c, &resolve(&url, &playlist.segments[0].1)).await;
    assert_eq!(segment.status, 200);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let held = metric(
            &server,
            "panocast_stream_memory_bytes{stream=\"cam\",part=\"held\"}",
        )
        .await;
        if held > 0.0 && held < (BUDGET / 2) as f64 {
            break;
        }
        assert!(Instant::now() < deadline, "the stream holds {held} bytes");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        metric(
            &server,
            "panocast_stream_memory_budget_drops_total{stream=\"cam\"}"
        )
        .await,
        1.0
    );
}
