//! One JPEG from one keyframe, blocking (callers run it on a blocking thread, never
//! on the runtime or a media thread):
//!
//! ```text
//! appsrc (init + fragment) ! qtdemux ! identity drop-buffer-flags=delta-unit
//!   ! decodebin ! videoconvert ! videoscale ! video/x-raw,width=W[,height=H],pixel-aspect-ratio=1/1
//!   ! jpegenc ! appsink
//! ```
//!
//! The fragment is what the packager already published (a part or a segment, `moof` +
//! `mdat`), so nothing is re-packaged. Every sample but the sync ones is dropped before
//! the decoder, so a poster costs one keyframe's decode whatever the stream's GOP; the
//! first JPEG out ends the pipeline. Decoders get one thread: posters are never urgent
//! and the live path shares the cores.

use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

/// Width of every poster.
pub const WIDTH: u32 = 640;
/// JPEG quality (0–100): small files that still look right in a card.
const QUALITY: i32 = 80;
/// A keyframe decodes in milliseconds; this only bounds a wedged pipeline.
const LIMIT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("GStreamer: {0}")]
    Gst(String),
    #[error("no picture came out of the keyframe: {0}")]
    NoPicture(String),
}

fn gst_err(e: impl std::fmt::Display) -> EncodeError {
    EncodeError::Gst(e.to_string())
}

/// The shape of the poster: [`WIDTH`] wide, and either the source's aspect or 2:1
/// (equirectangular posters are drawn over, so they are exactly 2:1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    KeepAspect,
    TwoToOne,
}

impl Shape {
    fn caps(self) -> String {
        match self {
            Shape::KeepAspect => format!("video/x-raw,width={WIDTH},pixel-aspect-ratio=1/1"),
            Shape::TwoToOne => {
                format!(
                    "video/x-raw,width={WIDTH},height={},pixel-aspect-ratio=1/1",
                    WIDTH / 2
                )
            }
        }
    }
}

/// A JPEG of the first keyframe of `fragment` (a fragmented-MP4 `moof`+`mdat`, or
/// several) described by the init segment `init`.
pub fn jpeg(init: &[u8], fragment: &[u8], shape: Shape) -> Result<Vec<u8>, EncodeError> {
    crate::pipeline::init().map_err(gst_err)?;
    let description = format!(
        "appsrc name=src caps=video/quicktime format=bytes ! qtdemux \
         ! identity drop-buffer-flags=delta-unit ! decodebin name=dec \
         ! videoconvert ! videoscale ! {} ! jpegenc quality={QUALITY} \
         ! appsink name=sink sync=false max-buffers=1",
        shape.caps()
    );
    let pipeline = gst::parse::launch(&description)
        .map_err(gst_err)?
        .downcast::<gst::Pipeline>()
        .map_err(|_| EncodeError::Gst("not a pipeline".into()))?;
    let result = run(&pipeline, init, fragment);
    let _ = pipeline.set_state(gst::State::Null);
    result
}

fn run(pipeline: &gst::Pipeline, init: &[u8], fragment: &[u8]) -> Result<Vec<u8>, EncodeError> {
    let by_name = |name: &str| {
        pipeline
            .by_name(name)
            .ok_or_else(|| EncodeError::Gst(format!("no element {name}")))
    };
    let src = by_name("src")?
        .downcast::<gst_app::AppSrc>()
        .map_err(|_| EncodeError::Gst("src is not an appsrc".into()))?;
    let sink = by_name("sink")?
        .downcast::<gst_app::AppSink>()
        .map_err(|_| EncodeError::Gst("sink is not an appsink".into()))?;
    if let Ok(dec) = by_name("dec")?.downcast::<gst::Bin>() {
        dec.connect_deep_element_added(|_, _, element| {
            if element.find_property("max-threads").is_some() {
                element.set_property_from_str("max-threads", "1");
            }
        });
    }
    pipeline.set_state(gst::State::Playing).map_err(gst_err)?;
    let mut whole = Vec::with_capacity(init.len() + fragment.len());
    whole.extend_from_slice(init);
    whole.extend_from_slice(fragment);
    src.push_buffer(gst::Buffer::from_mut_slice(whole))
        .map_err(gst_err)?;
    src.end_of_stream().map_err(gst_err)?;
    let bus = pipeline
        .bus()
        .ok_or_else(|| EncodeError::Gst("pipeline without a bus".into()))?;
    let deadline = std::time::Instant::now() + LIMIT;
    loop {
        if let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_mseconds(50)) {
            let buffer = sample
                .buffer()
                .ok_or_else(|| EncodeError::NoPicture("an empty sample".into()))?;
            let map = buffer.map_readable().map_err(gst_err)?;
            return Ok(map.as_slice().to_vec());
        }
        while let Some(msg) = bus.pop() {
            if let gst::MessageView::Error(e) = msg.view() {
                return Err(EncodeError::NoPicture(e.error().to_string()));
            }
        }
        if sink.is_eos() {
            return Err(EncodeError::NoPicture(
                "the fragment holds no decodable keyframe".into(),
            ));
        }
        if std::time::Instant::now() > deadline {
            return Err(EncodeError::NoPicture("decoding took too long".into()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_media_is_an_error_not_a_panic() {
        assert!(jpeg(b"not an init", b"nor a fragment", Shape::KeepAspect).is_err());
    }
}
