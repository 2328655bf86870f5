//! The panocast side of `benches/ladder/run.sh`: an FLV file through panocast's own
//! FLV demuxer and GStreamer ladder, with no sockets, printing one JSON line.
//!
//! ```text
//! cargo bench --bench ladder -- --input SRC.flv --preset veryfast \
//!     --rung 2560x1280:8000 --rung 1920x960:5000 [--seconds N] [--realtime]
//! ```
//! Offline (the default) every frame is encoded as fast as the machine allows, for
//! CPU seconds per media second. `--realtime` paces the input at media rate with the
//! server's leaky queues and reports dropped frames and the latency each rung adds
//! (source unit handed in → the rung's encoded unit of the same time out).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use panocast::ingest::demux::FlvDemuxer;
use panocast::media::{MediaEvent, TrackKind};
use panocast::pipeline::profile::{RungCodec, RungPlan};
use panocast::pipeline::video::VideoLadder;
use panocast::pipeline::{LadderEvents, Pace};

struct Args {
    input: String,
    rungs: Vec<RungPlan>,
    seconds: Option<f64>,
    pace: Pace,
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut input = None;
    let mut sizes = Vec::new();
    let mut preset = "veryfast".to_string();
    let mut seconds = None;
    let mut pace = Pace::Offline;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--input" => input = Some(value()?),
            "--rung" => sizes.push(value()?),
            "--preset" => preset = value()?,
            "--seconds" => seconds = Some(value()?.parse::<f64>().map_err(|e| e.to_string())?),
            "--realtime" => pace = Pace::Realtime,
            // cargo bench adds this; cargo test runs the target with no arguments.
            "--bench" => {}
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let Some(input) = input else {
        return Ok(None);
    };
    let rungs = sizes
        .iter()
        .map(|s| {
            let (size, kbps) = s.split_once(':').ok_or("--rung WxH:KBPS")?;
            let (w, h) = size.split_once('x').ok_or("--rung WxH:KBPS")?;
            Ok(RungPlan {
                name: size.to_string(),
                width: w.parse().map_err(|_| "bad width")?,
                height: h.parse().map_err(|_| "bad height")?,
                bitrate_kbps: kbps.parse().map_err(|_| "bad bitrate")?,
                preset: preset.clone(),
                codec: RungCodec::H264,
            })
        })
        .collect::<Result<Vec<_>, &str>>()?;
    Ok(Some(Args {
        input,
        rungs,
        seconds,
        pace,
    }))
}

/// Encoded frames and latencies per rung.
#[derive(Default)]
struct Tally {
    frames_out: Vec<u64>,
    dropped: Vec<u64>,
    latencies_ms: Vec<Vec<f64>>,
    /// When each source frame (by pts) was handed in.
    pushed: HashMap<i64, Instant>,
    failure: Option<String>,
}

struct Counter(Mutex<Tally>);

impl LadderEvents for Counter {
    fn encoded(&self, _kind: TrackKind, index: usize, event: MediaEvent) {
        if let MediaEvent::Unit(unit) = event {
            let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
            t.frames_out[index] += 1;
            if let Some(at) = t.pushed.get(&unit.pts).copied() {
                t.latencies_ms[index].push(at.elapsed().as_secs_f64() * 1000.0);
            }
        }
    }
    fn dropped(&self, _kind: TrackKind, index: usize, frames: u64) {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        t.dropped[index] += frames;
    }
    fn failed(&self, message: String) {
        eprintln!("ladder failed: {message}");
        self.0.lock().unwrap_or_else(|p| p.into_inner()).failure = Some(message);
    }
}

/// The FLV file's tags: (type, timestamp ms, body).
fn flv_tags(data: &Bytes) -> Result<Vec<(u8, u32, Bytes)>, String> {
    if data.len() < 13 || &data[..3] != b"FLV" {
        return Err("not an FLV file".into());
    }
    let header = u32::from_be_bytes([data[5], data[6], data[7], data[8]]) as usize;
    let mut pos = header + 4;
    let mut tags = Vec::new();
    while pos + 11 <= data.len() {
        let kind = data[pos] & 0x1f;
        let size = u32::from_be_bytes([0, data[pos + 1], data[pos + 2], data[pos + 3]]) as usize;
        let ts = u32::from_be_bytes([data[pos + 7], data[pos + 4], data[pos + 5], data[pos + 6]]);
        let body = pos + 11;
        if body + size > data.len() {
            break;
        }
        tags.push((kind, ts, data.slice(body..body + size)));
        pos = body + size + 4;
    }
    Ok(tags)
}

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the struct it is given and nothing else.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn percentile(values: &mut [f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let i = ((values.len() - 1) as f64 * q).round() as usize;
    Some((values[i] * 10.0).round() / 10.0)
}

fn main() {
    let args = match parse_args() {
        Ok(Some(args)) => args,
        Ok(None) => {
            eprintln!("usage: cargo bench --bench ladder -- --input SRC.flv --rung WxH:KBPS... [--preset P] [--seconds N] [--realtime]");
            return;
        }
        Err(e) => {
            eprintln!("ladder bench: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(args) {
        eprintln!("ladder bench: {e}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<(), String> {
    let data = Bytes::from(std::fs::read(&args.input).map_err(|e| format!("{}: {e}", args.input))?);
    let tags = flv_tags(&data)?;
    let n = args.rungs.len();
    let counter = Arc::new(Counter(Mutex::new(Tally {
        frames_out: vec![0; n],
        dropped: vec![0; n],
        latencies_ms: vec![Vec::new(); n],
        ..Tally::default()
    })));
    let events: Arc<dyn LadderEvents> = counter.clone();
    let mut demux = FlvDemuxer::new();
    let mut config = None;
    let mut ladder: Option<VideoLadder> = None;
    let (mut first_dts, mut last_dts) = (None, 0i64);
    let mut frames_in = 0u64;
    let cpu_start = cpu_seconds();
    let wall_start = Instant::now();
    for (kind, ts, body) in tags {
        if kind != 9 {
            continue;
        }
        let event = match demux.video(&body, ts, Instant::now()) {
            Ok(Some(e)) => e,
            Ok(None) => continue,
            Err(e) => return Err(e.to_string()),
        };
        match event {
            MediaEvent::VideoConfig(c) => config = Some(c),
            MediaEvent::Unit(unit) => {
                let first = *first_dts.get_or_insert(unit.dts);
                let media = (unit.dts - first) as f64 / f64::from(unit.timebase);
                if args.seconds.is_some_and(|s| media >= s) {
                    break;
                }
                if args.pace == Pace::Realtime {
                    let due = wall_start + Duration::from_secs_f64(media);
                    std::thread::sleep(due.saturating_duration_since(Instant::now()));
                }
                if ladder.is_none() {
                    let Some(c) = config.as_ref() else { continue };
                    ladder = Some(
                        VideoLadder::start(
                            c,
                            unit.dts,
                            unit.timebase,
                            &args.rungs,
                            args.pace,
                            Arc::clone(&events),
                        )
                        .map_err(|e| e.to_string())?,
                    );
                }
                counter
                    .0
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .pushed
                    .insert(unit.pts, Instant::now());
                if let Some(l) = ladder.as_mut() {
                    l.push(&unit);
                }
                frames_in += 1;
                last_dts = unit.dts;
            }
            MediaEvent::AudioConfig(_) => {}
        }
    }
    if let Some(l) = ladder {
        l.finish(Duration::from_secs(600));
    }
    let wall_s = wall_start.elapsed().as_secs_f64();
    let cpu_s = cpu_seconds() - cpu_start;
    // The span of the frames fed plus the last frame's own (average) duration; FLV
    // times are milliseconds.
    let span = first_dts.map_or(0.0, |f| (last_dts - f) as f64 / 1000.0);
    let media_s = if frames_in > 1 {
        span * frames_in as f64 / (frames_in - 1) as f64
    } else {
        span
    };
    let mut t = counter.0.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(f) = &t.failure {
        return Err(format!("pipeline failed: {f}"));
    }
    let rungs: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            let lat = &mut t.latencies_ms[i];
            let p50 = percentile(lat, 0.5);
            let p99 = percentile(lat, 0.99);
            serde_json::json!({
                "name": args.rungs[i].name,
                "frames_out": t.frames_out[i],
                "dropped": t.dropped[i],
                "latency_ms_p50": p50,
                "latency_ms_p99": p99,
            })
        })
        .collect();
    println!(
        "{}",
        serde_json::json!({
            "media_s": (media_s * 1000.0).round() / 1000.0,
            "wall_s": (wall_s * 1000.0).round() / 1000.0,
            "cpu_s": (cpu_s * 1000.0).round() / 1000.0,
            "frames_in": frames_in,
            "rungs": rungs,
        })
    );
    Ok(())
}
