//! The panocast side of the MP3 figure of `benches/vod/run.sh`: the server's own
//! extraction passes (`assets::extract::probe`, then `render` to MP3) on one file, in
//! this process, twice. The first pass is what the first job after a start costs
//! (it loads GStreamer's registry and plugins); the second is what every later job
//! costs in a running server, which keeps them loaded. Each pass's CPU seconds (all
//! threads, from /proc/self/stat) are printed as JSON on stdout.
//!
//! ```text
//! cargo bench --bench vod_mp3 -- --input SRC.mp4 --output OUT.mp3
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use panocast::assets::extract::{probe, render, Output};

/// CPU seconds this process has used so far, its threads included.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let ticks: Vec<f64> = rest
        .split_whitespace()
        .skip(11) // state .. cmajflt: utime is field 14 of the whole line
        .take(2)
        .filter_map(|v| v.parse().ok())
        .collect();
    // CLK_TCK is 100 on Linux for every architecture panocast builds for.
    ticks.iter().sum::<f64>() / 100.0
}

/// One job's passes; (probe CPU s, render CPU s, bytes written).
fn extract(input: &Path, output: &Path) -> (f64, f64, u64) {
    let t0 = cpu_seconds();
    let found = match probe(input, &|| false) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("probe: {e}");
            std::process::exit(1);
        }
    };
    let t1 = cpu_seconds();
    let duration: Option<Duration> = found.duration;
    match render(input, output, Output::Mp3, duration, &|_| {}, &|| false) {
        Ok(bytes) => (t1 - t0, cpu_seconds() - t1, bytes),
        Err(e) => {
            eprintln!("render: {e}");
            std::process::exit(1);
        }
    }
}

fn main() {
    let mut input = None;
    let mut output = None;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--input" => input = it.next().map(PathBuf::from),
            "--output" => output = it.next().map(PathBuf::from),
            // cargo bench adds this; cargo test runs the target with no arguments.
            "--bench" => {}
            other => {
                eprintln!("unknown argument {other}");
                std::process::exit(2);
            }
        }
    }
    let (Some(input), Some(output)) = (input, output) else {
        return;
    };
    let (cold_probe, cold_render, _) = extract(&input, &output);
    let (warm_probe, warm_render, bytes) = extract(&input, &output);
    println!(
        "{{\"bytes\": {bytes}, \"cold_probe_s\": {cold_probe:.3}, \"cold_render_s\": {cold_render:.3}, \
         \"warm_probe_s\": {warm_probe:.3}, \"warm_render_s\": {warm_render:.3}}}"
    );
}
