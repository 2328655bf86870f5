//! The `panoproject` element: properties, caps, and the per-frame call into
//! [`crate::projection`].
//!
//! Every property may change while playing. Changes to the geometry take effect at
//! the next buffer (the tables are rebuilt there); changes to the output size
//! (`width`, `height`, `output-projection`) renegotiate the source caps first.

use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::Instant;

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer::subclass::prelude::*;
use gstreamer_base as gst_base;
use gstreamer_base::subclass::prelude::*;
use gstreamer_video as gst_video;
use gstreamer_video::prelude::*;
use gstreamer_video::subclass::prelude::*;

use super::{InputProjection, OutputProjection};
use crate::projection::fisheye::{DualFisheye, Lens};
use crate::projection::lut::{PlaneLayout, PlaneLut};
use crate::projection::remap::{remap_with, PlaneIo, PlaneJob, Scratch};
use crate::projection::sphere::Rotation;
use crate::projection::{output_size, Mapping, Source, Target};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "panoproject",
        gst::DebugColorFlags::empty(),
        Some("360° projection converter"),
    )
});

const DEFAULT_INPUT: InputProjection = InputProjection::Equirect;
const DEFAULT_OUTPUT: OutputProjection = OutputProjection::Equirect;
/// 0: derived from the input (see [`output_size`]).
const DEFAULT_WIDTH: u32 = 0;
const DEFAULT_HEIGHT: u32 = 0;
const DEFAULT_YAW: f64 = 0.0;
const DEFAULT_PITCH: f64 = 0.0;
const DEFAULT_ROLL: f64 = 0.0;
/// Typical of consumer dual-lens cameras (190°-200° lenses).
const DEFAULT_LENS_FOV: f64 = 190.0;
/// Side by side, front lens on the right (as ffmpeg v360's `dfisheye`).
const DEFAULT_FRONT_CENTER_X: f64 = 0.75;
const DEFAULT_BACK_CENTER_X: f64 = 0.25;
const DEFAULT_LENS_CENTER_Y: f64 = 0.5;
/// Each circle fills its half of a 2:1 frame.
const DEFAULT_LENS_RADIUS: f64 = 0.25;
const DEFAULT_LENS_ROTATION: f64 = 0.0;
const DEFAULT_OVERLAP: f64 = 10.0;
/// 0: one per CPU.
const DEFAULT_N_THREADS: u32 = 0;

const DEFAULT_LENS: Lens = Lens {
    fov: DEFAULT_LENS_FOV,
    center_x: DEFAULT_FRONT_CENTER_X,
    center_y: DEFAULT_LENS_CENTER_Y,
    radius: DEFAULT_LENS_RADIUS,
    rotation: DEFAULT_LENS_ROTATION,
};

#[derive(Clone, Debug, PartialEq)]
struct Settings {
    input: InputProjection,
    output: OutputProjection,
    width: u32,
    height: u32,
    yaw: f64,
    pitch: f64,
    roll: f64,
    front: Lens,
    back: Lens,
    overlap: f64,
    n_threads: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            input: DEFAULT_INPUT,
            output: DEFAULT_OUTPUT,
            width: DEFAULT_WIDTH,
            height: DEFAULT_HEIGHT,
            yaw: DEFAULT_YAW,
            pitch: DEFAULT_PITCH,
            roll: DEFAULT_ROLL,
            front: DEFAULT_LENS,
            back: Lens {
                center_x: DEFAULT_BACK_CENTER_X,
                ..DEFAULT_LENS
            },
            overlap: DEFAULT_OVERLAP,
            n_threads: DEFAULT_N_THREADS,
        }
    }
}

impl Settings {
    fn mapping(&self) -> Mapping {
        Mapping {
            source: match self.input {
                InputProjection::Equirect => Source::Equirect,
                InputProjection::DualFisheye => Source::DualFisheye(DualFisheye {
                    front: self.front,
                    back: self.back,
                    overlap: self.overlap,
                }),
            },
            target: self.target(),
            rotation: Rotation::from_yaw_pitch_roll(self.yaw, self.pitch, self.roll),
        }
    }

    fn target(&self) -> Target {
        match self.output {
            OutputProjection::Equirect => Target::Equirect,
            OutputProjection::Cubemap => Target::Cubemap,
        }
    }

    fn threads(&self) -> usize {
        match self.n_threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n as usize,
        }
    }

    fn lens_mut(&mut self, which: &str) -> Option<&mut Lens> {
        match which {
            "front" => Some(&mut self.front),
            "back" => Some(&mut self.back),
            _ => None,
        }
    }
}

/// Negotiated formats and the tables built for them.
struct State {
    in_info: gst_video::VideoInfo,
    out_info: gst_video::VideoInfo,
    tables: Option<Tables>,
    /// The resampler's buffers, kept from frame to frame.
    scratch: Scratch,
}

/// One table per output plane (I420's two chroma planes share theirs), valid for
/// the mapping and input strides they were built from.
struct Tables {
    mapping: Mapping,
    in_strides: Vec<usize>,
    planes: Vec<Arc<PlaneLut>>,
}

#[derive(Default)]
pub struct PanoProject {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[glib::object_subclass]
impl ObjectSubclass for PanoProject {
    const NAME: &'static str = "GstPanoProject";
    type Type = super::PanoProject;
    type ParentType = gst_video::VideoFilter;
}

fn lens_properties(which: &str, center_x: f64) -> Vec<glib::ParamSpec> {
    let flags = glib::ParamFlags::READWRITE | gst::PARAM_FLAG_MUTABLE_PLAYING;
    let double = |name: &str, blurb: &str, min: f64, max: f64, default: f64| {
        glib::ParamSpecDouble::builder(&format!("{which}-{name}"))
            .nick(&format!("{which} lens {name}"))
            .blurb(&format!(
                "{} lens (dual-fisheye input): {blurb}",
                capitalised(which)
            ))
            .minimum(min)
            .maximum(max)
            .default_value(default)
            .flags(flags)
            .build()
    };
    vec![
        double("fov", "field of view across the image circle, degrees", 1.0, 360.0, DEFAULT_LENS_FOV),
        double("center-x", "centre of the image circle, fraction of the frame width", -1.0, 2.0, center_x),
        double(
            "center-y",
            "centre of the image circle, fraction of the frame height",
            -1.0,
            2.0,
            DEFAULT_LENS_CENTER_Y,
        ),
        double(
            "radius",
            "radius of the image circle (where the angle from the axis is fov/2), fraction of the frame width",
            0.001,
            4.0,
            DEFAULT_LENS_RADIUS,
        ),
        double(
            "rotation",
            "how far the image is turned clockwise in the frame, degrees",
            -360.0,
            360.0,
            DEFAULT_LENS_ROTATION,
        ),
    ]
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

impl ObjectImpl for PanoProject {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let flags = glib::ParamFlags::READWRITE | gst::PARAM_FLAG_MUTABLE_PLAYING;
            let angle = |name: &str, blurb: &str, default: f64| {
                glib::ParamSpecDouble::builder(name)
                    .nick(name)
                    .blurb(blurb)
                    .minimum(-180.0)
                    .maximum(180.0)
                    .default_value(default)
                    .flags(flags)
                    .build()
            };
            let size = |name: &str, blurb: &str, default: u32| {
                glib::ParamSpecUInt::builder(name)
                    .nick(name)
                    .blurb(blurb)
                    .maximum(32768)
                    .default_value(default)
                    .flags(flags)
                    .build()
            };
            let mut props = vec![
                glib::ParamSpecEnum::builder_with_default("input-projection", DEFAULT_INPUT)
                    .nick("Input projection")
                    .blurb("What the input frames hold")
                    .flags(flags)
                    .build(),
                glib::ParamSpecEnum::builder_with_default("output-projection", DEFAULT_OUTPUT)
                    .nick("Output projection")
                    .blurb("What the output frames hold")
                    .flags(flags)
                    .build(),
                size(
                    "width",
                    "Output width (0: what downstream asks for, else the input width)",
                    DEFAULT_WIDTH,
                ),
                size(
                    "height",
                    "Output height (0: what downstream asks for, else from the width: equirect 2:1, cubemap 16:9)",
                    DEFAULT_HEIGHT,
                ),
                angle(
                    "yaw",
                    "Degrees: the output's centre shows what lies this far right of the input's (ffmpeg v360 convention)",
                    DEFAULT_YAW,
                ),
                angle("pitch", "Degrees: the output's centre shows what lies this far above the input's", DEFAULT_PITCH),
                angle("roll", "Degrees: the picture turns this far about the viewing axis", DEFAULT_ROLL),
                glib::ParamSpecDouble::builder("overlap")
                    .nick("Seam overlap")
                    .blurb("Dual fisheye: width in degrees of the band across the seam where the lenses are cross-faded (narrowed to what both lenses see)")
                    .minimum(0.0)
                    .maximum(90.0)
                    .default_value(DEFAULT_OVERLAP)
                    .flags(flags)
                    .build(),
                glib::ParamSpecUInt::builder("n-threads")
                    .nick("Threads")
                    .blurb("Threads sharing each frame's rows (0: one per CPU)")
                    .maximum(64)
                    .default_value(DEFAULT_N_THREADS)
                    .flags(flags)
                    .build(),
            ];
            props.extend(lens_properties("front", DEFAULT_FRONT_CENTER_X));
            props.extend(lens_properties("back", DEFAULT_BACK_CENTER_X));
            props
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let name = pspec.name();
        let mut settings = lock(&self.settings);
        let before = settings.clone();
        // The ParamSpecs above fix every value's type, so `get` cannot fail.
        match name {
            "input-projection" => settings.input = value.get().expect("type checked upstream"),
            "output-projection" => settings.output = value.get().expect("type checked upstream"),
            "width" => settings.width = value.get().expect("type checked upstream"),
            "height" => settings.height = value.get().expect("type checked upstream"),
            "yaw" => settings.yaw = value.get().expect("type checked upstream"),
            "pitch" => settings.pitch = value.get().expect("type checked upstream"),
            "roll" => settings.roll = value.get().expect("type checked upstream"),
            "overlap" => settings.overlap = value.get().expect("type checked upstream"),
            "n-threads" => settings.n_threads = value.get().expect("type checked upstream"),
            _ => {
                let Some((which, field)) = name.split_once('-') else {
                    return;
                };
                let v: f64 = value.get().expect("type checked upstream");
                let Some(lens) = settings.lens_mut(which) else {
                    return;
                };
                match field {
                    "fov" => lens.fov = v,
                    "center-x" => lens.center_x = v,
                    "center-y" => lens.center_y = v,
                    "radius" => lens.radius = v,
                    "rotation" => lens.rotation = v,
                    _ => return,
                }
            }
        }
        let resize = (settings.output, settings.width, settings.height)
            != (before.output, before.width, before.height);
        gst::debug!(CAT, imp = self, "{name} set");
        drop(settings);
        if resize {
            // The next buffer renegotiates the source caps first.
            self.obj().reconfigure_src();
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let settings = lock(&self.settings);
        let name = pspec.name();
        match name {
            "input-projection" => settings.input.to_value(),
            "output-projection" => settings.output.to_value(),
            "width" => settings.width.to_value(),
            "height" => settings.height.to_value(),
            "yaw" => settings.yaw.to_value(),
            "pitch" => settings.pitch.to_value(),
            "roll" => settings.roll.to_value(),
            "overlap" => settings.overlap.to_value(),
            "n-threads" => settings.n_threads.to_value(),
            _ => {
                let lens = match name.split_once('-') {
                    Some(("front", _)) => &settings.front,
                    _ => &settings.back,
                };
                match name.split_once('-').map_or("", |(_, f)| f) {
                    "fov" => lens.fov,
                    "center-x" => lens.center_x,
                    "center-y" => lens.center_y,
                    "radius" => lens.radius,
                    _ => lens.rotation,
                }
                .to_value()
            }
        }
    }
}

impl GstObjectImpl for PanoProject {}

impl ElementImpl for PanoProject {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "360° projection converter",
                "Filter/Effect/Converter/Video",
                "Converts raw video between 360° projections: dual fisheye or equirect in, \
                 equirect or equi-angular cubemap out, rotated by yaw, pitch and roll",
                "panocast",
            )
        });
        Some(&*META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let caps = gst_video::VideoCapsBuilder::new()
                .format_list([gst_video::VideoFormat::I420, gst_video::VideoFormat::Nv12])
                .width_range(2..=i32::MAX)
                .height_range(2..=i32::MAX)
                .build();
            [gst::PadDirection::Src, gst::PadDirection::Sink]
                .into_iter()
                .map(|dir| {
                    let name = if dir == gst::PadDirection::Src {
                        "src"
                    } else {
                        "sink"
                    };
                    gst::PadTemplate::new(name, dir, gst::PadPresence::Always, &caps)
                        .expect("static pad template")
                })
                .collect()
        });
        TEMPLATES.as_ref()
    }
}

impl BaseTransformImpl for PanoProject {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::NeverInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        *lock(&self.state) = None;
        Ok(())
    }

    /// A buffer that is not a whole frame of the negotiated caps is dropped with a
    /// warning (the video filter base class would push an unfilled output frame).
    fn transform(
        &self,
        inbuf: &gst::Buffer,
        outbuf: &mut gst::BufferRef,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let in_info = lock(&self.state).as_ref().map(|s| s.in_info.clone());
        if let Some(info) = in_info {
            if gst_video::VideoFrameRef::from_buffer_ref_readable(inbuf.as_ref(), &info).is_err() {
                gst::element_imp_warning!(
                    self,
                    gst::StreamError::Format,
                    [
                        "Dropped a buffer of {} bytes: not a {}x{} {:?} frame",
                        inbuf.size(),
                        info.width(),
                        info.height(),
                        info.format()
                    ]
                );
                return Ok(gst_base::BASE_TRANSFORM_FLOW_DROPPED);
            }
        }
        self.parent_transform(inbuf, outbuf)
    }

    fn transform_caps(
        &self,
        direction: gst::PadDirection,
        caps: &gst::Caps,
        filter: Option<&gst::Caps>,
    ) -> Option<gst::Caps> {
        let settings = lock(&self.settings).clone();
        let mut out = gst::Caps::new_empty();
        {
            let out = out.get_mut().expect("new caps are writable");
            for (s, features) in caps.iter_with_features() {
                let mut s = s.to_owned();
                if direction == gst::PadDirection::Sink {
                    // What we make from these input caps.
                    if settings.width > 0 || settings.height > 0 {
                        let in_w = s.get::<i32>("width").unwrap_or(0).max(0) as u32;
                        let (w, h) =
                            output_size(settings.target(), in_w, (settings.width, settings.height));
                        s.set("width", w as i32);
                        s.set("height", h as i32);
                    } else {
                        // Any size; fixate_caps prefers the one derived from the input.
                        s.set("width", gst::IntRange::new(2, i32::MAX));
                        s.set("height", gst::IntRange::new(2, i32::MAX));
                    }
                    s.set("pixel-aspect-ratio", gst::Fraction::new(1, 1));
                } else {
                    // Any input size projects to these output caps.
                    s.set("width", gst::IntRange::new(2, i32::MAX));
                    s.set("height", gst::IntRange::new(2, i32::MAX));
                    s.remove_field("pixel-aspect-ratio");
                }
                out.append_structure_full(s, Some(features.to_owned()));
            }
        }
        gst::debug!(CAT, imp = self, "{direction:?}: {caps} -> {out}");
        Some(match filter {
            Some(f) => f.intersect_with_mode(&out, gst::CapsIntersectMode::First),
            None => out,
        })
    }

    fn fixate_caps(
        &self,
        direction: gst::PadDirection,
        caps: &gst::Caps,
        mut othercaps: gst::Caps,
    ) -> gst::Caps {
        if direction != gst::PadDirection::Sink {
            return self.parent_fixate_caps(direction, caps, othercaps);
        }
        let settings = lock(&self.settings).clone();
        let in_w = caps
            .structure(0)
            .and_then(|s| s.get::<i32>("width").ok())
            .unwrap_or(0)
            .max(0) as u32;
        let (w, h) = output_size(settings.target(), in_w, (settings.width, settings.height));
        othercaps.truncate();
        if let Some(s) = othercaps.make_mut().structure_mut(0) {
            s.fixate_field_nearest_int("width", w as i32);
            s.fixate_field_nearest_int("height", h as i32);
        }
        self.parent_fixate_caps(direction, caps, othercaps)
    }
}

impl VideoFilterImpl for PanoProject {
    fn set_info(
        &self,
        _incaps: &gst::Caps,
        in_info: &gst_video::VideoInfo,
        _outcaps: &gst::Caps,
        out_info: &gst_video::VideoInfo,
    ) -> Result<(), gst::LoggableError> {
        if in_info.format() != out_info.format() {
            return Err(gst::loggable_error!(CAT, "input and output formats differ"));
        }
        gst::info!(
            CAT,
            imp = self,
            "{:?} {}x{} -> {}x{}",
            in_info.format(),
            in_info.width(),
            in_info.height(),
            out_info.width(),
            out_info.height()
        );
        *lock(&self.state) = Some(State {
            in_info: in_info.clone(),
            out_info: out_info.clone(),
            tables: None,
            scratch: Scratch::default(),
        });
        Ok(())
    }

    fn transform_frame(
        &self,
        inframe: &gst_video::VideoFrameRef<&gst::BufferRef>,
        outframe: &mut gst_video::VideoFrameRef<&mut gst::BufferRef>,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let settings = lock(&self.settings).clone();
        let mapping = settings.mapping();
        let threads = settings.threads();
        let mut state = lock(&self.state);
        let state = state.as_mut().ok_or(gst::FlowError::NotNegotiated)?;
        let in_strides: Vec<usize> = inframe
            .plane_stride()
            .iter()
            .map(|&s| s.max(0) as usize)
            .collect();
        let stale = state
            .tables
            .as_ref()
            .is_none_or(|t| t.mapping != mapping || t.in_strides != in_strides);
        if stale {
            let started = Instant::now();
            let tables = build_tables(
                &mapping,
                &state.in_info,
                &state.out_info,
                &in_strides,
                threads,
            )
            .map_err(|e| {
                gst::element_imp_error!(
                    self,
                    gst::StreamError::Failed,
                    ["Cannot build the projection tables: {}", e]
                );
                gst::FlowError::Error
            })?;
            gst::info!(CAT, imp = self, "tables built in {:?}", started.elapsed());
            state.tables = Some(tables);
        }
        let tables = state.tables.as_ref().ok_or(gst::FlowError::Error)?;
        let out_strides: Vec<usize> = outframe
            .plane_stride()
            .iter()
            .map(|&s| s.max(0) as usize)
            .collect();
        let sources = inframe.planes_data();
        let dests = outframe.planes_data_mut();
        // Planes sharing a table (I420's U and V) are done in one pass over it.
        let mut jobs: Vec<PlaneJob<'_>> = Vec::new();
        for (((lut, dst), src), dst_stride) in tables
            .planes
            .iter()
            .zip(dests)
            .zip(sources)
            .zip(out_strides)
        {
            let io = PlaneIo {
                src,
                dst,
                dst_stride,
            };
            match jobs.iter_mut().find(|j| std::ptr::eq(j.lut, &**lut)) {
                Some(job) => job.planes.push(io),
                None => jobs.push(PlaneJob {
                    lut,
                    planes: vec![io],
                }),
            }
        }
        remap_with(jobs, threads, &mut state.scratch).map_err(|e| {
            gst::element_imp_error!(
                self,
                gst::StreamError::Failed,
                ["Frame does not fit the projection tables: {}", e]
            );
            gst::FlowError::Error
        })?;
        Ok(gst::FlowSuccess::Ok)
    }
}

/// The tables for every output plane of `out_info` from `in_info`'s planes laid
/// out with `in_strides`.
fn build_tables(
    mapping: &Mapping,
    in_info: &gst_video::VideoInfo,
    out_info: &gst_video::VideoInfo,
    in_strides: &[usize],
    threads: usize,
) -> Result<Tables, crate::projection::lut::LutError> {
    // (component that gives the plane's size, bytes per pixel) for each plane.
    let planes: &[(u8, usize)] = match in_info.format() {
        gst_video::VideoFormat::Nv12 => &[(0, 1), (1, 2)],
        _ => &[(0, 1), (1, 1), (2, 1)],
    };
    let full_range = in_info.colorimetry().range() == gst_video::VideoColorRange::Range0_255;
    let mut built: Vec<(PlaneLayout, u8, Arc<PlaneLut>)> = Vec::new();
    let mut luts = Vec::new();
    for (plane, &(comp, components)) in planes.iter().enumerate() {
        let layout = PlaneLayout {
            width: in_info.comp_width(comp) as usize,
            height: in_info.comp_height(comp) as usize,
            stride: in_strides.get(plane).copied().unwrap_or(0),
            components,
        };
        // Black: luma at the bottom of its range, chroma neutral.
        let fill = match (comp, full_range) {
            (0, true) => 0,
            (0, false) => 16,
            _ => 128,
        };
        let (w, h) = (
            out_info.comp_width(comp) as usize,
            out_info.comp_height(comp) as usize,
        );
        // I420's U and V planes are laid out alike: one table serves both.
        let same = |(l, f, lut): &&(PlaneLayout, u8, Arc<PlaneLut>)| {
            *l == layout && *f == fill && lut.width() == w && lut.height() == h
        };
        let lut = match built.iter().find(same) {
            Some((_, _, lut)) => Arc::clone(lut),
            None => {
                let lut = Arc::new(PlaneLut::build(mapping, layout, w, h, fill, threads)?);
                built.push((layout, fill, Arc::clone(&lut)));
                lut
            }
        };
        luts.push(lut);
    }
    Ok(Tables {
        mapping: *mapping,
        in_strides: in_strides.to_vec(),
        planes: luts,
    })
}
