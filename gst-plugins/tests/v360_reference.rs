//! panoproject against an independent implementation: ffmpeg's `v360` filter
//! (Debian's ffmpeg on PATH) makes the reference frames, panoproject runs in a real
//! pipeline (`filesrc ! rawvideoparse ! panoproject ! appsink`), and the two must
//! agree within PSNR 35 dB (away from the lens seam, where v360 cuts hard and we
//! cross-fade).
//!
//! Test frames are made at test time in a temporary directory: an equirect scene
//! (ffmpeg's `mandelbrot`, organic detail, and `testsrc2`, sharp synthetic edges)
//! and, for the stitching test, that scene rendered by v360 into dual fisheye, so
//! that both lenses see the same world.
//!
//! A deliberate difference: v360 samples a quarter of a pixel off the pixel
//! centres (and reads its input half a pixel off), where panoproject samples at
//! the centres (an identity mapping copies the frame exactly). On testsrc2's
//! pixel-sharp saturated chroma this alone costs the V plane about 32 dB -- v360's
//! own identity mapping scores 32.2 dB there against its input -- so for testsrc2
//! the bound holds for luma and for all planes together, and for every plane on
//! the mandelbrot scene, whose chroma is like a camera's.

use std::path::{Path, PathBuf};
use std::process::Command;

use gstpanocast::projection::equirect;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video::prelude::*;

const W: usize = 1024;
const H: usize = 512;
/// The lenses' field of view: 5° beyond the seam each, so there is a band to blend.
const FOV: &str = "190";
/// Pixels nearer the seam than this (degrees) are left out of the stitching score:
/// the 10° cross-fade band and a degree either side.
const SEAM_MARGIN: f64 = 6.0;
const MIN_PSNR: f64 = 35.0;

fn init() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        gst::init().expect("GStreamer initialises");
        gstpanocast::register_static().expect("panoproject registers");
    });
}

/// Runs ffmpeg quietly, failing the test with its message if it fails.
fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .output()
        .expect("ffmpeg runs (scripts/deps.sh installs it)");
    assert!(
        out.status.success(),
        "ffmpeg {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An equirect scene, one raw I420 frame of W x H.
fn scene(dir: &Path, source: &str) -> PathBuf {
    let path = dir.join(format!("{source}.yuv"));
    let graph = format!("{source}=s={W}x{H}");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &graph,
        "-frames:v",
        "1",
        "-pix_fmt",
        "yuv420p",
        "-f",
        "rawvideo",
        path.to_str().expect("utf-8 temp path"),
    ]);
    path
}

/// `input` (raw I420 of `size`) through `v360=<options>`, written as raw I420.
fn v360(input: &Path, size: (usize, usize), options: &str, out: &Path) {
    let size = format!("{}x{}", size.0, size.1);
    let filter = format!("v360={options}:interp=linear");
    ffmpeg(&[
        "-f",
        "rawvideo",
        "-pix_fmt",
        "yuv420p",
        "-s",
        &size,
        "-i",
        input.to_str().expect("utf-8 temp path"),
        "-vf",
        &filter,
        "-pix_fmt",
        "yuv420p",
        "-f",
        "rawvideo",
        out.to_str().expect("utf-8 temp path"),
    ]);
}

/// One decoded picture, planes without padding.
struct Picture {
    width: usize,
    height: usize,
    /// Y, U, V (I420 order; NV12 output is split into U and V).
    planes: [Vec<u8>; 3],
}

impl Picture {
    fn from_i420_file(path: &Path, width: usize, height: usize) -> Self {
        let data = std::fs::read(path).expect("reference frame written");
        assert_eq!(data.len(), width * height * 3 / 2, "{}", path.display());
        let (y, rest) = data.split_at(width * height);
        let (u, v) = rest.split_at(width * height / 4);
        Self {
            width,
            height,
            planes: [y.to_vec(), u.to_vec(), v.to_vec()],
        }
    }
}

/// Raw I420 `input` of `size`, optionally as NV12, through panoproject with
/// `properties`, in a real pipeline; the one output frame.
fn project(input: &Path, size: (usize, usize), nv12: bool, properties: &[(&str, &str)]) -> Picture {
    init();
    let convert = if nv12 {
        "videoconvert ! video/x-raw,format=NV12 ! "
    } else {
        ""
    };
    let launch = format!(
        "filesrc location={} ! rawvideoparse width={} height={} format=i420 framerate=1/1 ! {convert}\
         panoproject name=project ! appsink name=sink sync=false",
        input.display(),
        size.0,
        size.1
    );
    let pipeline = gst::parse::launch(&launch)
        .expect("pipeline parses")
        .downcast::<gst::Pipeline>()
        .expect("a pipeline");
    let project = pipeline
        .by_name("project")
        .expect("panoproject in the pipeline");
    for (name, value) in properties {
        project.set_property_from_str(name, value);
    }
    let sink = pipeline
        .by_name("sink")
        .expect("appsink in the pipeline")
        .downcast::<gst_app::AppSink>()
        .expect("an appsink");
    pipeline
        .set_state(gst::State::Playing)
        .expect("pipeline plays");
    let sample = sink.try_pull_sample(gst::ClockTime::from_seconds(60));
    let errors: Vec<String> = pipeline
        .bus()
        .expect("a bus")
        .iter_filtered(&[gst::MessageType::Error])
        .map(|m| format!("{m:?}"))
        .collect();
    pipeline
        .set_state(gst::State::Null)
        .expect("pipeline stops");
    let sample = sample.unwrap_or_else(|| panic!("no frame out of panoproject: {errors:?}"));
    let caps = sample.caps().expect("sample caps");
    let info = gstreamer_video::VideoInfo::from_caps(caps).expect("raw video caps");
    let buffer = sample.buffer().expect("a buffer");
    let frame = gstreamer_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info)
        .expect("a whole frame");
    let (w, h) = (info.width() as usize, info.height() as usize);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let rows = |plane: u32, row_bytes: usize, rows: usize| -> Vec<u8> {
        let stride = frame.plane_stride()[plane as usize] as usize;
        let data = frame.plane_data(plane).expect("plane data");
        (0..rows)
            .flat_map(|r| data[r * stride..r * stride + row_bytes].iter().copied())
            .collect()
    };
    let y = rows(0, w, h);
    let (u, v) = if nv12 {
        let uv = rows(1, 2 * cw, ch);
        (
            uv.iter().step_by(2).copied().collect(),
            uv.iter().skip(1).step_by(2).copied().collect(),
        )
    } else {
        (rows(1, cw, ch), rows(2, cw, ch))
    };
    Picture {
        width: w,
        height: h,
        planes: [y, u, v],
    }
}

/// PSNR of each plane and of all planes together (pixel-weighted, as ffmpeg's
/// `psnr` filter averages), over the pixels whose centre (normalised to 0..1 in
/// both directions) `keep` accepts.
fn psnr(a: &Picture, b: &Picture, keep: impl Fn(f64, f64) -> bool) -> ([f64; 3], f64) {
    assert_eq!(
        (a.width, a.height),
        (b.width, b.height),
        "picture sizes differ"
    );
    let mut per_plane = [0.0; 3];
    let (mut total_se, mut total_n) = (0.0, 0usize);
    for (p, plane_psnr) in per_plane.iter_mut().enumerate() {
        let (w, h) = if p == 0 {
            (a.width, a.height)
        } else {
            (a.width.div_ceil(2), a.height.div_ceil(2))
        };
        let (mut se, mut n) = (0.0, 0usize);
        for y in 0..h {
            for x in 0..w {
                if keep((x as f64 + 0.5) / w as f64, (y as f64 + 0.5) / h as f64) {
                    let d = f64::from(a.planes[p][y * w + x]) - f64::from(b.planes[p][y * w + x]);
                    se += d * d;
                    n += 1;
                }
            }
        }
        assert!(n > 0, "the mask leaves nothing of plane {p}");
        *plane_psnr = db(se / n as f64);
        total_se += se;
        total_n += n;
    }
    (per_plane, db(total_se / total_n as f64))
}

fn db(mse: f64) -> f64 {
    if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255.0 * 255.0 / mse).log10()
    }
}

/// Whether an equirect pixel at normalised (u, v) is at least SEAM_MARGIN degrees
/// from the lens seam (the plane z = 0 between the back-to-back lenses).
fn away_from_seam(u: f64, v: f64) -> bool {
    let d = equirect::direction(u, v, 1, 1);
    d.z.abs().asin().to_degrees() >= SEAM_MARGIN
}

/// Asserts the bound for `scene` (see the module documentation for testsrc2's
/// chroma) and prints the figures.
fn assert_close(what: &str, scene: &str, planes: [f64; 3], all: f64) {
    eprintln!(
        "{what} ({scene}): PSNR Y {:.2} U {:.2} V {:.2} all {all:.2} dB",
        planes[0], planes[1], planes[2]
    );
    assert!(
        planes[0] >= MIN_PSNR,
        "{what} ({scene}): luma PSNR {:.2} dB",
        planes[0]
    );
    assert!(
        all >= MIN_PSNR,
        "{what} ({scene}): PSNR of all planes {all:.2} dB"
    );
    if scene == "mandelbrot" {
        for (p, v) in planes.iter().enumerate() {
            assert!(*v >= MIN_PSNR, "{what} ({scene}): plane {p} PSNR {v:.2} dB");
        }
    }
}

fn dual_fisheye_to_equirect(source: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let world = scene(dir.path(), source);
    let fisheye = dir.path().join("dual-fisheye.yuv");
    v360(
        &world,
        (W, H),
        &format!("input=e:output=dfisheye:h_fov={FOV}:v_fov={FOV}"),
        &fisheye,
    );
    let reference = dir.path().join("reference.yuv");
    v360(
        &fisheye,
        (W, H),
        &format!("input=dfisheye:output=e:ih_fov={FOV}:iv_fov={FOV}"),
        &reference,
    );
    let reference = Picture::from_i420_file(&reference, W, H);

    let props = [
        ("input-projection", "dual-fisheye"),
        ("front-fov", FOV),
        ("back-fov", FOV),
        ("overlap", "10"),
    ];
    let ours = project(&fisheye, (W, H), false, &props);
    let (planes, all) = psnr(&ours, &reference, away_from_seam);
    assert_close(
        "dual fisheye -> equirect, away from the seam",
        source,
        planes,
        all,
    );
    let (planes, all) = psnr(&ours, &reference, |_, _| true);
    eprintln!(
        "  (whole frame, seam included: Y {:.2} U {:.2} V {:.2} all {all:.2} dB)",
        planes[0], planes[1], planes[2]
    );

    // NV12 is the same arithmetic on interleaved chroma: the same picture, exactly.
    let ours_nv12 = project(&fisheye, (W, H), true, &props);
    assert!(
        ours_nv12.planes == ours.planes,
        "NV12 output differs from I420 output"
    );
}

#[test]
fn dual_fisheye_to_equirect_matches_v360_mandelbrot() {
    dual_fisheye_to_equirect("mandelbrot");
}

#[test]
fn dual_fisheye_to_equirect_matches_v360_testsrc2() {
    dual_fisheye_to_equirect("testsrc2");
}

fn equirect_rotation(source: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let world = scene(dir.path(), source);
    let reference = dir.path().join("reference.yuv");
    v360(
        &world,
        (W, H),
        "input=e:output=e:yaw=30:pitch=20:roll=10",
        &reference,
    );
    let reference = Picture::from_i420_file(&reference, W, H);
    let ours = project(
        &world,
        (W, H),
        false,
        &[("yaw", "30"), ("pitch", "20"), ("roll", "10")],
    );
    let (planes, all) = psnr(&ours, &reference, |_, _| true);
    assert_close(
        "equirect rotation (yaw 30, pitch 20, roll 10)",
        source,
        planes,
        all,
    );
}

#[test]
fn equirect_rotation_matches_v360_mandelbrot() {
    equirect_rotation("mandelbrot");
}

#[test]
fn equirect_rotation_matches_v360_testsrc2() {
    equirect_rotation("testsrc2");
}

fn equirect_to_cubemap(source: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let world = scene(dir.path(), source);
    let reference = dir.path().join("reference.yuv");
    v360(&world, (W, H), "input=e:output=eac", &reference);
    // v360 makes a W x 9H/8 cubemap; so does panoproject by default.
    let reference = Picture::from_i420_file(&reference, W, H * 9 / 8);
    let ours = project(&world, (W, H), false, &[("output-projection", "cubemap")]);
    let (planes, all) = psnr(&ours, &reference, |_, _| true);
    assert_close("equirect -> equi-angular cubemap", source, planes, all);
}

#[test]
fn equirect_to_cubemap_matches_v360_mandelbrot() {
    equirect_to_cubemap("mandelbrot");
}

#[test]
fn equirect_to_cubemap_matches_v360_testsrc2() {
    equirect_to_cubemap("testsrc2");
}

/// The bound is not slack: a wrong convention (here, the lenses swapped) fails it.
#[test]
fn a_wrong_lens_layout_is_caught() {
    let dir = tempfile::tempdir().expect("temp dir");
    let world = scene(dir.path(), "mandelbrot");
    let fisheye = dir.path().join("dual-fisheye.yuv");
    v360(
        &world,
        (W, H),
        &format!("input=e:output=dfisheye:h_fov={FOV}:v_fov={FOV}"),
        &fisheye,
    );
    let reference = dir.path().join("reference.yuv");
    v360(
        &fisheye,
        (W, H),
        &format!("input=dfisheye:output=e:ih_fov={FOV}:iv_fov={FOV}"),
        &reference,
    );
    let reference = Picture::from_i420_file(&reference, W, H);
    let swapped = project(
        &fisheye,
        (W, H),
        false,
        &[
            ("input-projection", "dual-fisheye"),
            ("front-fov", FOV),
            ("back-fov", FOV),
            ("front-center-x", "0.25"),
            ("back-center-x", "0.75"),
        ],
    );
    let (planes, _) = psnr(&swapped, &reference, away_from_seam);
    eprintln!("lenses swapped: luma PSNR {:.2} dB", planes[0]);
    assert!(
        planes[0] < 20.0,
        "swapped lenses still score {:.2} dB",
        planes[0]
    );
}
