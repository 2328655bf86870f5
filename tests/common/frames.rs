//! Still test scenes and single decoded frames, for the tests that compare a served
//! picture with ffmpeg's own rendering of it (projections: fisheye, cubemap).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::encoded_clip;

/// `graph` (a lavfi video graph) encoded for ~8 s with 1 s GOPs at high quality, plus
/// AAC, cached under `name` like every test clip.
pub fn still_scene_clip(name: &str, graph: &str) -> PathBuf {
    encoded_clip(
        Path::new("ffmpeg"),
        name,
        &[
            "-f",
            "lavfi",
            "-i",
            graph,
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-t",
            "8",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-crf",
            "12",
            "-g",
            "30",
            "-bf",
            "0",
            "-c:a",
            "aac",
            "-b:a",
            "64k",
        ],
    )
}

/// Runs ffmpeg quietly; the test fails with its message if it fails.
pub fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .output()
        .expect("ffmpeg is installed (scripts/deps.sh)");
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The luma plane of the first frame of `input` (after `filter`, if any), which must
/// be `width` x `height`; written through `out`.
pub fn first_luma(
    input: &Path,
    filter: Option<&str>,
    out: &Path,
    (width, height): (usize, usize),
) -> Vec<u8> {
    let mut args = vec!["-i", input.to_str().expect("utf-8 path")];
    if let Some(f) = filter {
        args.extend(["-vf", f]);
    }
    let out_s = out.to_str().expect("utf-8 path");
    args.extend([
        "-frames:v",
        "1",
        "-pix_fmt",
        "gray",
        "-f",
        "rawvideo",
        out_s,
    ]);
    ffmpeg(&args);
    let luma = std::fs::read(out).expect("raw frame");
    assert_eq!(
        luma.len(),
        width * height,
        "{input:?} is not {width}x{height}"
    );
    luma
}

/// PSNR in dB of 8-bit samples with mean squared error `mse`.
pub fn psnr_db(mse: f64) -> f64 {
    if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255.0 * 255.0 / mse).log10()
    }
}
