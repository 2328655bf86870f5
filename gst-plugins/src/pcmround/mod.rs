//! `pcmround`: 32-bit float PCM to 16-bit by rounding to the nearest step, with no
//! dither, for an encoder that takes only 16-bit input (`lamemp3enc`).
//!
//! ```text
//! gst-launch-1.0 ... ! audioconvert ! audio/x-raw,format=F32LE ! pcmround ! lamemp3enc ! ...
//! ```
//!
//! Why not `audioconvert`: to 16 bits it either dithers (the default) or, with
//! `dithering=none`, truncates. Both break a channel pair that was identical
//! before decoding (a mono recording carried as stereo, a decoded AAC M/S pair):
//! dither is drawn per channel, and truncation splits samples that sit a hair
//! either side of a step. LAME then codes that difference as a side channel, which
//! costs bits and, in our benchmark, half again of its CPU time. A perceptual
//! encoder hides far more than 16-bit rounding error, so dither buys nothing here.

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;

mod imp;

glib::wrapper! {
    pub struct PcmRound(ObjectSubclass<imp::PcmRound>)
        @extends gstreamer_base::BaseTransform, gst::Element, gst::Object;
}

/// Registers `pcmround` with `plugin`.
pub fn register(plugin: Option<&gst::Plugin>) -> Result<(), glib::BoolError> {
    gst::Element::register(plugin, "pcmround", gst::Rank::NONE, PcmRound::static_type())
}

/// Converts little-endian `f32` samples in `input` to little-endian `i16` in
/// `output`: each rounded to the nearest step (ties to even), clamped to the 16-bit
/// range, NaN to silence. Converts `min(input.len() / 4, output.len() / 2)`
/// samples and returns that count.
pub fn f32_to_s16(input: &[u8], output: &mut [u8]) -> usize {
    // 1.5 * 2^23: adding it leaves the rounded integer in the low mantissa bits
    // (exact for |v| < 2^22), without a libm call, so the loop vectorises.
    const MAGIC: f32 = 12_582_912.0;
    let mut n = 0;
    for (src, dst) in input.chunks_exact(4).zip(output.chunks_exact_mut(2)) {
        let v = f32::from_le_bytes([src[0], src[1], src[2], src[3]]) * 32_768.0;
        // A NaN sample would come out of the sum below as noise: silence instead.
        let v = if v.is_nan() {
            0.0
        } else {
            v.clamp(-32_768.0, 32_767.0)
        };
        let rounded = (v + MAGIC).to_bits() as i32 - MAGIC.to_bits() as i32;
        dst.copy_from_slice(&(rounded as i16).to_le_bytes());
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn convert(samples: &[f32]) -> Vec<i16> {
        let input: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        let mut output = vec![0u8; samples.len() * 2];
        assert_eq!(f32_to_s16(&input, &mut output), samples.len());
        output
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect()
    }

    #[test]
    fn rounds_to_the_nearest_step() {
        let step = 1.0 / 32_768.0;
        assert_eq!(
            convert(&[
                0.0,
                19.6 * step,
                19.4 * step,
                -19.6 * step,
                -19.4 * step,
                0.5
            ]),
            [0, 20, 19, -20, -19, 16_384]
        );
    }

    #[test]
    fn samples_a_hair_either_side_of_a_step_agree() {
        let step = 1.0 / 32_768.0;
        let left = convert(&[(1_000.0 + 1e-3) * step, (-7.0 + 1e-3) * step]);
        let right = convert(&[(1_000.0 - 1e-3) * step, (-7.0 - 1e-3) * step]);
        assert_eq!(left, right);
        assert_eq!(left, [1_000, -7]);
    }

    #[test]
    fn clamps_and_survives_nan_and_infinities() {
        assert_eq!(
            convert(&[
                1.0,
                2.5,
                -1.0,
                -3.0,
                f32::NAN,
                f32::INFINITY,
                f32::NEG_INFINITY
            ]),
            [32_767, 32_767, -32_768, -32_768, 0, 32_767, -32_768]
        );
    }

    #[test]
    fn matches_rounding_for_every_step_and_half_step() {
        for i in -65_536..=65_534 {
            let v = i as f32 / 2.0;
            let want = v.round_ties_even().clamp(-32_768.0, 32_767.0) as i16;
            assert_eq!(convert(&[v / 32_768.0]), [want], "{v}");
        }
    }

    #[test]
    fn stops_at_the_shorter_buffer() {
        let input = [0u8; 4 * 3 + 2];
        let mut output = [0u8; 2 * 2];
        assert_eq!(f32_to_s16(&input, &mut output), 2);
    }
}
