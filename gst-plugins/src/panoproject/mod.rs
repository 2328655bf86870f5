//! `panoproject`: converts raw video between 360° projections (dual fisheye or
//! equirect in; equirect or an equi-angular cubemap out), turning the sphere by
//! yaw, pitch and roll on the way.
//!
//! ```text
//! gst-launch-1.0 ... ! video/x-raw,format=I420,width=3840,height=1920 \
//!     ! panoproject input-projection=dual-fisheye front-fov=195 back-fov=195 \
//!     ! video/x-raw,width=3840,height=1920 ! ...
//! ```

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;

mod imp;

/// What the element's input frames hold.
#[derive(Debug, Default, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstPanoProjectInput")]
pub enum InputProjection {
    /// Equirectangular (2:1, longitude across, latitude down).
    #[default]
    #[enum_value(name = "Equirectangular", nick = "equirect")]
    Equirect = 0,
    /// Two fisheye lenses back to back, both images in one frame.
    #[enum_value(name = "Dual fisheye (two lenses back to back)", nick = "dual-fisheye")]
    DualFisheye = 1,
}

/// What the element's output frames hold.
#[derive(Debug, Default, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstPanoProjectOutput")]
pub enum OutputProjection {
    #[default]
    #[enum_value(name = "Equirectangular", nick = "equirect")]
    Equirect = 0,
    /// Equi-angular cubemap, 3x2, in YouTube's (and ffmpeg v360's `eac`) layout.
    #[enum_value(
        name = "Equi-angular cubemap, 3x2 (YouTube EAC layout)",
        nick = "cubemap"
    )]
    Cubemap = 1,
}

glib::wrapper! {
    pub struct PanoProject(ObjectSubclass<imp::PanoProject>)
        @extends gstreamer_video::VideoFilter, gstreamer_base::BaseTransform, gst::Element, gst::Object;
}

/// Registers `panoproject` with `plugin`.
pub fn register(plugin: Option<&gst::Plugin>) -> Result<(), glib::BoolError> {
    gst::Element::register(
        plugin,
        "panoproject",
        gst::Rank::NONE,
        PanoProject::static_type(),
    )
}
