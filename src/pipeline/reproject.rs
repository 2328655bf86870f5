//! Reprojection in front of the encoders: a dual-fisheye source is stitched into
//! equirect, and a stream that bakes its orientation has its sphere turned, by
//! `panoproject` (gst-plugins/, registered in [`super::init`]), and a stream that
//! asks for a cubemap gets an equi-angular cubemap (3x2) of its equirect sphere
//! from the same element. Such a stream has no
//! passthrough rendition: its `video` rendition is encoded from the element's output
//! like any rung ([`Reprojection::top_rung`]), and the profile's rungs are planned
//! against that output.

use gstreamer as gst;
use gstreamer::prelude::*;

use super::branch::element;
use super::profile::{RungCodec, RungPlan};
use super::PipelineError;
use crate::media::TrackKind;
use crate::packager::output::source_rendition_name;
use crate::streams::{Projection, StreamDef};

/// Bits per pixel per frame of the `video` rendition when it has to be encoded: a
/// 3840x1920 frame at 30 fps gets about 18 Mbit/s, near what 4K 360 cameras send.
const TOP_RUNG_BITS_PER_PIXEL: f64 = 0.08;
/// Frame rate assumed for the bitrate when the source does not say.
const ASSUMED_FPS: f64 = 30.0;

/// What `panoproject` does for one stream and source size.
#[derive(Clone, Debug, PartialEq)]
pub struct Reprojection {
    /// The `input-projection` nick: `dual-fisheye` or `equirect`.
    input: &'static str,
    /// The lenses (dual-fisheye input only).
    lenses: crate::streams::definition::DualFisheyeLenses,
    /// Degrees turned into the pixels (zero unless the stream bakes its orientation).
    yaw: f64,
    pitch: f64,
    roll: f64,
    /// The `output-projection` nick: `equirect` or `cubemap` (equi-angular, 3x2).
    output: &'static str,
    /// The frame made.
    pub width: u32,
    pub height: u32,
}

impl Reprojection {
    /// What `stream` needs for a `source_width` x `source_height` source; `None`
    /// when its pictures are packaged as they come ([`StreamDef::reprojects`]).
    pub fn for_stream(stream: &StreamDef, source_width: u32, source_height: u32) -> Option<Self> {
        if !stream.reprojects() {
            return None;
        }
        let (input, width, height) = if stream.projection == Projection::DualFisheye {
            // Two circles side by side: the equirect frame keeps the source width
            // (each circle's diameter spans half the sphere's longitude), 2:1.
            let width = even(source_width.max(4));
            ("dual-fisheye", width, even(width / 2))
        } else {
            ("equirect", even(source_width), even(source_height))
        };
        // A cubemap keeps the equirect's width and is 16:9 (3840x2160 from 3840x1920,
        // as YouTube and ffmpeg v360 make it): faces of a quarter of the equator.
        let (output, width, height) = if stream.cubemap {
            ("cubemap", width, even((width * 9 / 16).max(2)))
        } else {
            ("equirect", width, height)
        };
        let (yaw, pitch, roll) = if stream.bake_orientation {
            let o = stream.orientation;
            (wrap(o.yaw), wrap(o.pitch), wrap(o.roll))
        } else {
            (0.0, 0.0, 0.0)
        };
        Some(Self {
            input,
            lenses: stream.fisheye,
            yaw,
            pitch,
            roll,
            output,
            width,
            height,
        })
    }

    /// The configured element: raw I420 or NV12 in, `width` x `height` out.
    pub fn element(&self) -> Result<gst::Element, PipelineError> {
        let e = element("panoproject")?;
        e.set_property_from_str("input-projection", self.input);
        e.set_property_from_str("output-projection", self.output);
        e.set_property("width", self.width);
        e.set_property("height", self.height);
        e.set_property("yaw", self.yaw);
        e.set_property("pitch", self.pitch);
        e.set_property("roll", self.roll);
        let l = &self.lenses;
        for (which, lens) in [("front", &l.front), ("back", &l.back)] {
            e.set_property(&format!("{which}-fov"), lens.fov);
            e.set_property(&format!("{which}-center-x"), lens.center_x);
            e.set_property(&format!("{which}-center-y"), lens.center_y);
            e.set_property(&format!("{which}-radius"), lens.radius);
            e.set_property(&format!("{which}-rotation"), lens.rotation);
        }
        e.set_property("overlap", l.overlap);
        Ok(e)
    }

    /// The `video` rendition, encoded from the element's output at its full size.
    pub fn top_rung(&self, frame_rate: Option<f64>, preset: &str) -> RungPlan {
        let fps = frame_rate
            .filter(|f| f.is_finite() && *f > 0.0)
            .unwrap_or(ASSUMED_FPS);
        let kbps =
            f64::from(self.width) * f64::from(self.height) * fps * TOP_RUNG_BITS_PER_PIXEL / 1000.0;
        RungPlan {
            name: source_rendition_name(TrackKind::Video).to_string(),
            width: self.width,
            height: self.height,
            bitrate_kbps: (kbps as u32).clamp(300, 200_000),
            preset: preset.to_string(),
            codec: RungCodec::H264,
        }
    }
}

/// `deg` in the element's -180..=180.
fn wrap(deg: f64) -> f64 {
    let w = (deg + 180.0).rem_euclid(360.0) - 180.0;
    if w == -180.0 && deg > 0.0 {
        180.0
    } else {
        w
    }
}

fn even(v: u32) -> u32 {
    v & !1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::streams::Orientation;

    #[test]
    fn only_dual_fisheye_and_baked_orientation_reproject() {
        let mut def = StreamDef::new("cam");
        assert_eq!(Reprojection::for_stream(&def, 1920, 960), None);
        def.bake_orientation = true;
        assert_eq!(
            Reprojection::for_stream(&def, 1920, 960),
            None,
            "nothing to bake"
        );
        def.orientation = Orientation {
            yaw: 270.0,
            pitch: -10.0,
            roll: 0.0,
        };
        let r = Reprojection::for_stream(&def, 1920, 960).expect("baked");
        assert_eq!((r.input, r.width, r.height), ("equirect", 1920, 960));
        assert_eq!((r.yaw, r.pitch), (-90.0, -10.0));

        let mut def = StreamDef::new("cam");
        def.projection = Projection::DualFisheye;
        def.orientation.yaw = 45.0;
        let r = Reprojection::for_stream(&def, 960, 480).expect("stitched");
        assert_eq!((r.input, r.width, r.height), ("dual-fisheye", 960, 480));
        assert_eq!(r.yaw, 0.0, "signalled, not baked");
        let top = r.top_rung(Some(30.0), "veryfast");
        assert_eq!(
            (top.name.as_str(), top.width, top.height),
            ("video", 960, 480)
        );
        assert!((1000..1300).contains(&top.bitrate_kbps), "{top:?}");
    }

    #[test]
    fn a_cubemap_is_made_from_any_mono_sphere() {
        let mut def = StreamDef::new("cam");
        def.cubemap = true;
        let r = Reprojection::for_stream(&def, 1920, 960).expect("cubemap");
        assert_eq!(
            (r.input, r.output, r.width, r.height),
            ("equirect", "cubemap", 1920, 1080)
        );
        def.projection = Projection::DualFisheye;
        let r = Reprojection::for_stream(&def, 1280, 640).expect("stitched cubemap");
        assert_eq!(
            (r.input, r.output, r.width, r.height),
            ("dual-fisheye", "cubemap", 1280, 720)
        );
        let top = r.top_rung(Some(30.0), "veryfast");
        assert_eq!((top.width, top.height), (1280, 720), "the top rung too");
    }

    #[test]
    fn angles_wrap_into_the_elements_range() {
        for (deg, want) in [
            (0.0, 0.0),
            (190.0, -170.0),
            (-190.0, 170.0),
            (180.0, 180.0),
            (360.0, 0.0),
        ] {
            assert_eq!(wrap(deg), want, "{deg}");
        }
    }
}
