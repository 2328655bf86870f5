//! RTMP extended timestamps end to end: real ffmpeg publishing with message timestamps
//! past 0xFFFFFF ms (4.66 h), which its RTMP layer sends in the 32-bit extended field,
//! goes live, the playlist advances, and the whole live window decodes.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// 0xFFFFFF ms: past it a chunk header carries the extended timestamp.
const EXTENDED_FROM_S: f64 = 16_777.215;

fn config() -> String {
    r#"
[[streams]]
slug = "beyond"
key = "beyond-key-0001"

[[streams]]
slug = "crossing"
key = "crossing-key-0001"
"#
    .to_owned()
}

/// Seconds of the published clip (2 s GOPs at 30 fps).
const SECONDS: u32 = 8;

/// Publishes a small test clip once, in real time, with its timestamps shifted by
/// `offset_s`.
fn publish_shifted(url: &str, offset_s: f64) -> Publisher {
    let child = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-nostdin",
            "-re",
            "-i",
        ])
        .arg(source_file_sized(640, 320, SECONDS, 60))
        .args(["-c", "copy", "-output_ts_offset", &offset_s.to_string()])
        .args(["-f", "flv", url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start ffmpeg");
    Publisher { child }
}

/// The newest media sequence number the playlist at `url` lists, once it lists one.
async fn newest_msn(client: &reqwest::Client, url: &str, limit: Duration) -> u64 {
    let (p, _) = wait_for_segments(client, url, 1, limit).await;
    p.media_sequence + p.segments.len() as u64 - 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamps_past_24_bits_go_live_advance_and_decode() {
    let server = Server::start(&config());
    let c = client();
    // Wholly past the 24-bit field (4 h 40 min), and one that crosses it 4 s in, where
    // ffmpeg switches from plain to extended headers mid-session.
    let mut beyond = publish_shifted(&server.publish_url("beyond-key-0001"), 16_800.0);
    let mut crossing = publish_shifted(
        &server.publish_url("crossing-key-0001"),
        EXTENDED_FROM_S - 4.0,
    );

    for slug in ["beyond", "crossing"] {
        let url = server.url(&format!("/hls/{slug}/video.m3u8"));
        let first = newest_msn(&c, &url, Duration::from_secs(30)).await;
        // The playlist keeps advancing: a later segment appears within a few GOPs.
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let now = newest_msn(&c, &url, Duration::from_secs(5)).await;
            if now > first {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{slug}: stuck at segment {first}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    for (slug, publisher) in [("beyond", &mut beyond), ("crossing", &mut crossing)] {
        let status = publisher
            .wait_exit(Duration::from_secs(40))
            .expect("ffmpeg finished its clip");
        assert!(status.success(), "{slug}: ffmpeg {status}");
    }
    // Every frame of both sessions is in the window and decodes without an error (a
    // timestamp misread at the 24-bit edge would be a jump, a gap or a decode error).
    for slug in ["beyond", "crossing"] {
        let url = server.url(&format!("/hls/{slug}/video.m3u8"));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let frames = video_frames(
                &["-live_start_index", "0", "-m3u8_hold_counters", "2"],
                &url,
            );
            if frames == u64::from(SECONDS * SOURCE_FPS) {
                break;
            }
            // The last segment closes when the session ends: give it that moment.
            assert!(
                Instant::now() < deadline,
                "{slug}: {frames} frames decoded, not {}",
                SECONDS * SOURCE_FPS
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let decode = Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-live_start_index", "0"])
            .args(["-m3u8_hold_counters", "2", "-i", &url, "-f", "null", "-"])
            .output()
            .expect("ffmpeg");
        assert!(decode.status.success(), "{slug}: decode failed");
        assert_eq!(
            String::from_utf8_lossy(&decode.stderr).trim(),
            "",
            "{slug}: decode errors"
        );
        let p = read_ll_playlist(&get(&c, &url).await.text());
        assert_eq!(
            p.discontinuities, 0,
            "{slug}: one session, no discontinuity"
        );
    }
}
