//! panocast's own GStreamer elements.
//!
//! - `panoproject` ([`panoproject::PanoProject`]): raw video between 360°
//!   projections (dual-fisheye stitching, re-orientation, equi-angular cubemap).
//! - `pcmround` ([`pcmround::PcmRound`]): float PCM to 16-bit by rounding, without
//!   dither, in front of `lamemp3enc`.
//!
//! The projection maths is in [`projection`], with no GStreamer in it.
//!
//! Use from an application (panocast links it statically):
//!
//! ```no_run
//! gstreamer::init().unwrap();
//! gstpanocast::register_static().unwrap();
//! let e = gstreamer::ElementFactory::make("panoproject").build().unwrap();
//! ```
//!
//! Built as a `cdylib` it is also an ordinary plugin (`libgstpanocast.so`, found
//! through `GST_PLUGIN_PATH`).

use gstreamer as gst;
use gstreamer::glib;

pub mod panoproject;
pub mod pcmround;
pub mod projection;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    panoproject::register(Some(plugin))?;
    pcmround::register(Some(plugin))
}

/// Registers this crate's elements in the running process, without a plugin file:
/// call once after `gstreamer::init()`; calling again is harmless.
pub fn register_static() -> Result<(), glib::BoolError> {
    panoproject::register(None)?;
    pcmround::register(None)
}

gst::plugin_define!(
    panocast,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    env!("CARGO_PKG_VERSION"),
    "unknown",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    // Where the plugin comes from; GStreamer refuses a plugin without one.
    "panocast"
);
