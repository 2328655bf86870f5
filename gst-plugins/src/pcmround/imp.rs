use std::sync::LazyLock;

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::subclass::prelude::*;
use gstreamer_base as gst_base;
use gstreamer_base::subclass::prelude::*;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "pcmround",
        gst::DebugColorFlags::empty(),
        Some("float PCM to 16-bit by rounding"),
    )
});

const FLOAT: &str = "F32LE";
const S16: &str = "S16LE";

#[derive(Default)]
pub struct PcmRound;

#[glib::object_subclass]
impl ObjectSubclass for PcmRound {
    const NAME: &'static str = "GstPcmRound";
    type Type = super::PcmRound;
    type ParentType = gst_base::BaseTransform;
}

impl ObjectImpl for PcmRound {}
impl GstObjectImpl for PcmRound {}

fn raw_audio(format: &str) -> gst::Caps {
    gst::Caps::builder("audio/x-raw")
        .field("format", format)
        .field("layout", "interleaved")
        .field("rate", gst::IntRange::new(1, i32::MAX))
        .field("channels", gst::IntRange::new(1, i32::MAX))
        .build()
}

impl ElementImpl for PcmRound {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Round float PCM to 16-bit",
                "Filter/Converter/Audio",
                "32-bit float to 16-bit PCM, rounded to the nearest step without dither \
                 (input for perceptual encoders such as lamemp3enc)",
                "panocast",
            )
        });
        Some(&META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            [
                (gst::PadDirection::Sink, "sink", FLOAT),
                (gst::PadDirection::Src, "src", S16),
            ]
            .into_iter()
            .map(|(dir, name, format)| {
                gst::PadTemplate::new(name, dir, gst::PadPresence::Always, &raw_audio(format))
                    .expect("static pad template")
            })
            .collect()
        });
        TEMPLATES.as_ref()
    }
}

impl BaseTransformImpl for PcmRound {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::NeverInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    /// The same rate, channels and layout on the other side, in the other format.
    fn transform_caps(
        &self,
        direction: gst::PadDirection,
        caps: &gst::Caps,
        filter: Option<&gst::Caps>,
    ) -> Option<gst::Caps> {
        let format = if direction == gst::PadDirection::Sink {
            S16
        } else {
            FLOAT
        };
        let mut out = caps.clone();
        for s in out.make_mut().iter_mut() {
            s.set("format", format);
        }
        gst::debug!(CAT, imp = self, "{direction:?}: {caps} -> {out}");
        Some(match filter {
            Some(f) => f.intersect_with_mode(&out, gst::CapsIntersectMode::First),
            None => out,
        })
    }

    /// Bytes per frame: every channel's sample, 4 bytes in and 2 out.
    fn unit_size(&self, caps: &gst::Caps) -> Option<usize> {
        let s = caps.structure(0)?;
        let channels = usize::try_from(s.get::<i32>("channels").ok()?).ok()?;
        let bytes = match s.get::<&str>("format").ok()? {
            FLOAT => 4,
            S16 => 2,
            _ => return None,
        };
        Some(channels * bytes)
    }

    fn transform(
        &self,
        inbuf: &gst::Buffer,
        outbuf: &mut gst::BufferRef,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let input = inbuf.map_readable().map_err(|_| {
            gst::element_imp_error!(self, gst::CoreError::Failed, ["Could not map the input"]);
            gst::FlowError::Error
        })?;
        let mut output = outbuf.map_writable().map_err(|_| {
            gst::element_imp_error!(self, gst::CoreError::Failed, ["Could not map the output"]);
            gst::FlowError::Error
        })?;
        // The base class sized the output from unit_size and refuses a buffer that
        // is not whole frames before it gets here.
        super::f32_to_s16(&input, &mut output);
        Ok(gst::FlowSuccess::Ok)
    }
}
