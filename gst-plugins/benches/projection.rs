//! The panoproject side of `benches/projection/run.sh` (at the repository root): one raw dual-fisheye frame
//! pushed again and again through `appsrc ! panoproject ! fakesink`, printing one
//! JSON line with the frame rate.
//!
//! ```text
//! cargo bench -p gst-plugin-panocast --bench projection -- --input DF.yuv \
//!     --width 3840 --height 1920 --fov 190 [--frames 300] [--threads 2] [--nv12]
//! ```
//!
//! The frame rate counts output buffers between the first one out (after the
//! lookup tables are built, which is reported apart as `tables_ms`) and the last;
//! `kernel_fps` is the same resampling called directly, without GStreamer.
//! Run by `cargo test` (no `--bench`), it only checks itself on a small frame.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gstpanocast::projection::fisheye::{DualFisheye, Lens};
use gstpanocast::projection::lut::{PlaneLayout, PlaneLut};
use gstpanocast::projection::remap::{remap_with, PlaneIo, PlaneJob, Scratch};
use gstpanocast::projection::sphere::Rotation;
use gstpanocast::projection::{Mapping, Source, Target};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

struct Args {
    input: Option<String>,
    width: usize,
    height: usize,
    fov: f64,
    frames: u32,
    threads: u32,
    nv12: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        input: None,
        width: 256,
        height: 128,
        fov: 190.0,
        frames: 5,
        threads: 2,
        nv12: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--input" => args.input = Some(value()?),
            "--width" => args.width = value()?.parse().map_err(|_| "bad --width")?,
            "--height" => args.height = value()?.parse().map_err(|_| "bad --height")?,
            "--fov" => args.fov = value()?.parse().map_err(|_| "bad --fov")?,
            "--frames" => args.frames = value()?.parse().map_err(|_| "bad --frames")?,
            "--threads" => args.threads = value()?.parse().map_err(|_| "bad --threads")?,
            "--nv12" => args.nv12 = true,
            // cargo bench adds this; cargo test runs the target with no arguments.
            "--bench" => {}
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.frames < 2 {
        return Err("--frames must be at least 2".into());
    }
    Ok(args)
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("projection bench: {e}");
            std::process::exit(2);
        }
    };
    let frame = match &args.input {
        Some(path) => match std::fs::read(path) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("projection bench: {path}: {e}");
                std::process::exit(1);
            }
        },
        // The self-check: a grey frame is enough to run every stage.
        None => vec![128u8; args.width * args.height * 3 / 2],
    };
    if frame.len() < args.width * args.height * 3 / 2 {
        eprintln!(
            "projection bench: the input is shorter than one {}x{} frame",
            args.width, args.height
        );
        std::process::exit(1);
    }
    let pipeline = match run_pipeline(&args, &frame) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("projection bench: {e}");
            std::process::exit(1);
        }
    };
    let kernel_fps = run_kernel(&args, &frame);
    println!(
        "{{\"width\":{},\"height\":{},\"format\":\"{}\",\"threads\":{},\"frames\":{},\
         \"tables_ms\":{:.1},\"fps\":{:.2},\"kernel_fps\":{:.2}}}",
        args.width,
        args.height,
        if args.nv12 { "NV12" } else { "I420" },
        args.threads,
        args.frames,
        pipeline.tables.as_secs_f64() * 1000.0,
        pipeline.fps,
        kernel_fps
    );
}

struct PipelineRun {
    tables: Duration,
    fps: f64,
}

/// Output times of the element, from a probe on its source pad.
#[derive(Default)]
struct Outputs {
    times: Vec<Instant>,
}

fn run_pipeline(args: &Args, frame: &[u8]) -> Result<PipelineRun, String> {
    gst::init().map_err(|e| e.to_string())?;
    gstpanocast::register_static().map_err(|e| e.to_string())?;
    let format = if args.nv12 { "NV12" } else { "I420" };
    let caps = gst::Caps::builder("video/x-raw")
        .field("format", format)
        .field("width", args.width as i32)
        .field("height", args.height as i32)
        .field("framerate", gst::Fraction::new(30, 1))
        .build();
    let src = gst_app::AppSrc::builder()
        .caps(&caps)
        .format(gst::Format::Time)
        .block(true)
        .max_buffers(2)
        .build();
    let project = gst::ElementFactory::make("panoproject")
        .property_from_str("input-projection", "dual-fisheye")
        .property("front-fov", args.fov)
        .property("back-fov", args.fov)
        .property("n-threads", args.threads)
        .build()
        .map_err(|e| e.to_string())?;
    let sink = gst::ElementFactory::make("fakesink")
        .property("sync", false)
        .build()
        .map_err(|e| e.to_string())?;
    let pipeline = gst::Pipeline::new();
    pipeline
        .add_many([src.upcast_ref(), &project, &sink])
        .map_err(|e| e.to_string())?;
    gst::Element::link_many([src.upcast_ref(), &project, &sink]).map_err(|e| e.to_string())?;

    let outputs = Arc::new(Mutex::new(Outputs::default()));
    let pad = project
        .static_pad("src")
        .ok_or("panoproject without a src pad")?;
    let seen = Arc::clone(&outputs);
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
        seen.lock()
            .unwrap_or_else(|p| p.into_inner())
            .times
            .push(Instant::now());
        gst::PadProbeReturn::Ok
    });

    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| e.to_string())?;
    // One frame's memory, shared by every buffer pushed.
    let size = if args.nv12 {
        args.width * args.height * 3 / 2
    } else {
        frame.len().min(args.width * args.height * 3 / 2)
    };
    let buffer = gst::Buffer::from_slice(frame[..size].to_vec());
    let started = Instant::now();
    for n in 0..u64::from(args.frames) {
        let mut b = buffer.copy();
        let b_mut = b.make_mut();
        b_mut.set_pts(gst::ClockTime::from_mseconds(n * 1000 / 30));
        b_mut.set_duration(gst::ClockTime::from_mseconds(33));
        src.push_buffer(b).map_err(|e| format!("push: {e:?}"))?;
    }
    src.end_of_stream().map_err(|e| format!("eos: {e:?}"))?;
    let bus = pipeline.bus().ok_or("pipeline without a bus")?;
    let mut failure = None;
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(600)) {
        match msg.view() {
            gst::MessageView::Eos(..) => break,
            gst::MessageView::Error(e) => {
                failure = Some(format!("{} ({:?})", e.error(), e.debug()));
                break;
            }
            _ => {}
        }
    }
    pipeline
        .set_state(gst::State::Null)
        .map_err(|e| e.to_string())?;
    if let Some(f) = failure {
        return Err(f);
    }
    let times = std::mem::take(&mut outputs.lock().unwrap_or_else(|p| p.into_inner()).times);
    if times.len() != args.frames as usize {
        return Err(format!("{} buffers out of {}", times.len(), args.frames));
    }
    let span = times[times.len() - 1]
        .duration_since(times[0])
        .as_secs_f64();
    Ok(PipelineRun {
        tables: times[0].duration_since(started),
        fps: (times.len() - 1) as f64 / span.max(1e-9),
    })
}

/// The element's per-frame work alone: the luma and chroma tables applied to
/// the frame, `frames` times.
fn run_kernel(args: &Args, frame: &[u8]) -> f64 {
    let lens = |center_x| Lens {
        fov: args.fov,
        center_x,
        center_y: 0.5,
        radius: 0.25,
        rotation: 0.0,
    };
    let mapping = Mapping {
        source: if std::env::var_os("IDENTITY").is_some() {
            Source::Equirect
        } else {
            Source::DualFisheye(DualFisheye {
                front: lens(0.75),
                back: lens(0.25),
                overlap: std::env::var("OVERLAP")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(10.0),
            })
        },
        target: Target::Equirect,
        rotation: Rotation::IDENTITY,
    };
    let (w, h) = (args.width, args.height);
    let threads = args.threads.max(1) as usize;
    let luma = PlaneLayout {
        width: w,
        height: h,
        stride: w,
        components: 1,
    };
    let chroma = if args.nv12 {
        PlaneLayout {
            width: w / 2,
            height: h / 2,
            stride: w,
            components: 2,
        }
    } else {
        PlaneLayout {
            width: w / 2,
            height: h / 2,
            stride: w / 2,
            components: 1,
        }
    };
    let (Ok(luma_lut), Ok(chroma_lut)) = (
        PlaneLut::build(&mapping, luma, w, h, 16, threads),
        PlaneLut::build(&mapping, chroma, w / 2, h / 2, 128, threads),
    ) else {
        return 0.0;
    };
    let (y, rest) = frame.split_at(w * h);
    let mut out = vec![0u8; w * h * 3 / 2];
    let mut scratch = Scratch::default();
    let cpu0 = thread_cpu_ns();
    let started = Instant::now();
    for _ in 0..args.frames {
        let (out_y, out_c) = out.split_at_mut(w * h);
        let mut jobs = vec![PlaneJob {
            lut: &luma_lut,
            planes: vec![PlaneIo {
                src: y,
                dst: out_y,
                dst_stride: w,
            }],
        }];
        if args.nv12 {
            jobs.push(PlaneJob {
                lut: &chroma_lut,
                planes: vec![PlaneIo {
                    src: rest,
                    dst: out_c,
                    dst_stride: w,
                }],
            });
        } else {
            let (u, v) = rest.split_at(w * h / 4);
            let (out_u, out_v) = out_c.split_at_mut(w * h / 4);
            jobs.push(PlaneJob {
                lut: &chroma_lut,
                planes: vec![
                    PlaneIo {
                        src: u,
                        dst: out_u,
                        dst_stride: w / 2,
                    },
                    PlaneIo {
                        src: v,
                        dst: out_v,
                        dst_stride: w / 2,
                    },
                ],
            });
        }
        if let Err(e) = remap_with(jobs, threads, &mut scratch) {
            eprintln!("projection bench: {e}");
            return 0.0;
        }
    }
    let cpu = thread_cpu_ns() - cpu0;
    eprintln!(
        "kernel: {:.2} ns CPU per sample (this thread)",
        cpu as f64 / f64::from(args.frames) / (w * h * 3 / 2) as f64
    );
    f64::from(args.frames) / started.elapsed().as_secs_f64()
}

fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}
