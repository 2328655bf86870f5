//! H.264 decoder configuration: `AVCDecoderConfigurationRecord` → [`AvcConfig`], and
//! the AVCC sample layout that goes with it.
//!
//! The record layout is ISO/IEC 14496-15 5.3.3.1.2. Picture size and frame rate come
//! from the first SPS (ITU-T H.264 7.3.2.1.1, E.1.1), parsed with `h264-reader`, which
//! also removes emulation-prevention bytes (7.4.1).

use bytes::{BufMut, Bytes, BytesMut};
use h264_reader::nal::sps::{ChromaFormat, FrameMbsFlags, SeqParameterSet};
use h264_reader::rbsp::{decode_nal, BitReader};

use super::bits::ByteReader;
use crate::media::AvcConfig;

/// NAL unit types (H.264 table 7-1) that ingest looks at.
const NAL_IDR: u8 = 5;
const NAL_SPS: u8 = 7;
const NAL_PPS: u8 = 8;

/// Largest picture side accepted: H.264 level 6.2 allows 139,264 macroblocks per frame,
/// so any side beyond 16,384 pixels is a corrupt SPS rather than a real encoder.
const MAX_SIDE: u32 = 16_384;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AvcError {
    #[error("AVCDecoderConfigurationRecord truncated in {0}")]
    Truncated(&'static str),
    #[error("AVCDecoderConfigurationRecord version {0}, expected 1")]
    Version(u8),
    #[error("invalid NAL length size {0} (lengthSizeMinusOne = 2 is reserved)")]
    LengthSize(u8),
    #[error("AVCDecoderConfigurationRecord without {0}")]
    Missing(&'static str),
    #[error("{what} has NAL unit type {found}")]
    NalType { what: &'static str, found: u8 },
    #[error("SPS does not parse: {0}")]
    Sps(String),
    #[error("SPS gives an implausible picture size ({0})")]
    PictureSize(String),
    #[error("AVCC sample: NAL unit at byte {offset} runs past the end of the sample")]
    SampleFraming { offset: usize },
}

/// A parsed record with what the sample path needs beside the [`AvcConfig`].
#[derive(Debug, Clone, PartialEq)]
pub struct AvcDecoderConfig {
    /// `record` always declares 4-byte NAL lengths: when the encoder chose 1 or 2
    /// bytes, the record is rewritten and [`to_four_byte_lengths`] converts the samples.
    pub config: AvcConfig,
    /// The NAL length size (1, 2 or 4) the encoder uses in its samples.
    pub nal_length_size: u8,
}

impl From<super::bits::Truncated> for AvcError {
    fn from(t: super::bits::Truncated) -> Self {
        AvcError::Truncated(t.0)
    }
}

/// Parses an `AVCDecoderConfigurationRecord` (ISO/IEC 14496-15 5.3.3.1.2).
///
/// Profile, constraint flags and level are taken from the record header, as `avcC`
/// readers do; trailing bytes (the high-profile chroma/bit-depth extension) are kept in
/// `record` and not interpreted.
pub fn parse_decoder_config(record: Bytes) -> Result<AvcDecoderConfig, AvcError> {
    let mut r = ByteReader::new(&record);
    let version = r.u8("configurationVersion")?;
    if version != 1 {
        return Err(AvcError::Version(version));
    }
    let profile_idc = r.u8("AVCProfileIndication")?;
    let constraint_flags = r.u8("profile_compatibility")?;
    let level_idc = r.u8("AVCLevelIndication")?;
    // Six reserved bits (all ones per spec; some encoders write zeros, so not checked).
    let length_size_byte_pos = r.position();
    let nal_length_size = (r.u8("lengthSizeMinusOne")? & 0b11) + 1;
    if nal_length_size == 3 {
        return Err(AvcError::LengthSize(nal_length_size));
    }
    let sps_count = r.u8("numOfSequenceParameterSets")? & 0b1_1111;
    let mut sps = Vec::with_capacity(usize::from(sps_count));
    for _ in 0..sps_count {
        let len = r.u16("sequenceParameterSetLength")?;
        let start = r.position();
        r.take(usize::from(len), "sequenceParameterSetNALUnit")?;
        sps.push(record.slice(start..r.position()));
    }
    let pps_count = r.u8("numOfPictureParameterSets")?;
    let mut pps = Vec::with_capacity(usize::from(pps_count));
    for _ in 0..pps_count {
        let len = r.u16("pictureParameterSetLength")?;
        let start = r.position();
        r.take(usize::from(len), "pictureParameterSetNALUnit")?;
        pps.push(record.slice(start..r.position()));
    }
    check_nal_types(&sps, NAL_SPS, "SPS")?;
    check_nal_types(&pps, NAL_PPS, "PPS")?;
    let first_sps = sps.first().ok_or(AvcError::Missing("SPS"))?;
    if pps.is_empty() {
        return Err(AvcError::Missing("PPS"));
    }
    let parsed = parse_sps(first_sps)?;
    let (width, height) = display_size(&parsed)?;
    let frame_rate = frame_rate(&parsed);

    // Samples are handed on with 4-byte lengths; the record says so too.
    let record = if nal_length_size == 4 {
        record
    } else {
        let mut fixed = BytesMut::from(&record[..]);
        fixed[length_size_byte_pos] |= 0b11;
        fixed.freeze()
    };
    Ok(AvcDecoderConfig {
        config: AvcConfig {
            record,
            sps,
            pps,
            profile_idc,
            constraint_flags,
            level_idc,
            width,
            height,
            frame_rate,
        },
        nal_length_size,
    })
}

fn check_nal_types(nals: &[Bytes], expected: u8, what: &'static str) -> Result<(), AvcError> {
    for nal in nals {
        let found = nal.first().map_or(0, |b| b & 0x1f);
        if found != expected {
            return Err(AvcError::NalType { what, found });
        }
    }
    Ok(())
}

fn parse_sps(nal: &[u8]) -> Result<SeqParameterSet, AvcError> {
    // h264_reader's decode_nal panics (capacity overflow) on an empty NAL unit; a
    // record can declare a zero-length SPS (found by fuzz/codec_configs).
    if nal.is_empty() {
        return Err(AvcError::Sps("empty SPS NAL unit".into()));
    }
    let rbsp = decode_nal(nal).map_err(|e| AvcError::Sps(e.to_string()))?;
    // Some encoders pad parameter sets with zero bytes (trailing_zero_8bits, H.264 B.1);
    // the RBSP parser insists on ending exactly at the stop bit.
    let end = rbsp.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    SeqParameterSet::from_bits(BitReader::new(&rbsp[..end]))
        .map_err(|e| AvcError::Sps(format!("{e:?}")))
}

/// Width and height after the SPS cropping window (H.264 7.4.2.1.1, equations 7-19 to
/// 7-22), with checked arithmetic: the field values come from the network.
fn display_size(sps: &SeqParameterSet) -> Result<(u32, u32), AvcError> {
    let bad = |what: &str| AvcError::PictureSize(what.to_owned());
    let frame_mbs_only = matches!(sps.frame_mbs_flags, FrameMbsFlags::Frames);
    let field_factor: u32 = if frame_mbs_only { 1 } else { 2 };
    let width_mbs = sps
        .pic_width_in_mbs_minus1
        .checked_add(1)
        .ok_or_else(|| bad("width"))?;
    let height_map_units = sps
        .pic_height_in_map_units_minus1
        .checked_add(1)
        .ok_or_else(|| bad("height"))?;
    let coded_width = width_mbs.checked_mul(16).ok_or_else(|| bad("width"))?;
    let coded_height = height_map_units
        .checked_mul(16 * field_factor)
        .ok_or_else(|| bad("height"))?;
    // CropUnitX/CropUnitY from table 6-1 (SubWidthC/SubHeightC by chroma format).
    let (crop_x, crop_y) = match sps.chroma_info.chroma_format {
        ChromaFormat::Monochrome => (1, field_factor),
        ChromaFormat::YUV420 => (2, 2 * field_factor),
        ChromaFormat::YUV422 => (2, field_factor),
        // 4:4:4, and 4:4:4 coded as separate colour planes (ChromaArrayType 0).
        _ => (1, field_factor),
    };
    let (mut width, mut height) = (coded_width, coded_height);
    if let Some(crop) = &sps.frame_cropping {
        let horizontal = crop
            .left_offset
            .checked_add(crop.right_offset)
            .and_then(|v| v.checked_mul(crop_x))
            .ok_or_else(|| bad("crop"))?;
        let vertical = crop
            .top_offset
            .checked_add(crop.bottom_offset)
            .and_then(|v| v.checked_mul(crop_y))
            .ok_or_else(|| bad("crop"))?;
        width = width
            .checked_sub(horizontal)
            .ok_or_else(|| bad("crop wider than picture"))?;
        height = height
            .checked_sub(vertical)
            .ok_or_else(|| bad("crop taller than picture"))?;
    }
    if width == 0 || height == 0 || width > MAX_SIDE || height > MAX_SIDE {
        return Err(bad(&format!("{width}x{height}")));
    }
    Ok((width, height))
}

/// Frames per second from the VUI timing info (H.264 E.2.1): one frame lasts two ticks
/// of `num_units_in_tick / time_scale` seconds, because a tick is one field.
fn frame_rate(sps: &SeqParameterSet) -> Option<f64> {
    let timing = sps.vui_parameters.as_ref()?.timing_info.as_ref()?;
    if timing.num_units_in_tick == 0 || timing.time_scale == 0 {
        return None;
    }
    let fps = f64::from(timing.time_scale) / (2.0 * f64::from(timing.num_units_in_tick));
    fps.is_finite().then_some(fps)
}

/// `max_num_reorder_frames` from the SPS VUI bitstream restriction (H.264 E.2.1): how
/// many frames may precede a frame in decode order and follow it in output order.
/// `None` when the SPS does not parse or does not say.
pub fn max_reorder_frames(sps: &[u8]) -> Option<u32> {
    let parsed = parse_sps(sps).ok()?;
    let restrictions = parsed.vui_parameters?.bitstream_restrictions?;
    Some(restrictions.max_num_reorder_frames)
}

/// Checks the framing of one AVCC sample and returns it with 4-byte NAL lengths, as
/// [`crate::media::AccessUnit`] requires, plus whether it holds an IDR picture.
///
/// With `nal_length_size` 4 the sample is passed on without copying.
pub fn to_four_byte_lengths(sample: Bytes, nal_length_size: u8) -> Result<(Bytes, bool), AvcError> {
    reframe_nal_units(sample, nal_length_size, |header| header & 0x1f == NAL_IDR)
        .map_err(|offset| AvcError::SampleFraming { offset })
}

/// The framing shared by H.264 and HEVC samples (ISO/IEC 14496-15 5.3.2 and 8.3.2):
/// checks that the length-prefixed NAL units fill the sample exactly, rewrites the
/// lengths to 4 bytes, and reports whether any NAL unit's first header byte satisfies
/// `is_sync`. Fails with the byte offset of the NAL unit that runs past the end.
pub(crate) fn reframe_nal_units(
    sample: Bytes,
    nal_length_size: u8,
    is_sync: impl Fn(u8) -> bool,
) -> Result<(Bytes, bool), usize> {
    let size = usize::from(nal_length_size);
    let mut sync = false;
    let mut nals = Vec::new();
    let mut pos = 0;
    while pos < sample.len() {
        let header = sample.get(pos..pos + size).ok_or(pos)?;
        let len = header
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        let start = pos + size;
        let end = start
            .checked_add(len)
            .filter(|&end| end <= sample.len())
            .ok_or(pos)?;
        if sample.get(start).is_some_and(|&b| is_sync(b)) {
            sync = true;
        }
        if size != 4 {
            nals.push(start..end);
        }
        pos = end;
    }
    if size == 4 {
        return Ok((sample, sync));
    }
    let total: usize = nals.iter().map(|r| 4 + r.len()).sum();
    let mut out = BytesMut::with_capacity(total);
    for range in nals {
        // Each NAL fits in 2 bytes of length here, so the u32 cannot truncate.
        out.put_u32(range.len() as u32);
        out.put_slice(&sample[range]);
    }
    Ok((out.freeze(), sync))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The record ffmpeg 5.1 puts in its first FLV video tag for `-f lavfi -i
    /// testsrc2=size=640x320:rate=30 -c:v libx264`: High profile, level 3.0, with the
    /// high-profile extension bytes at the end.
    pub(crate) const X264_640X320_RECORD: &[u8] = &[
        0x01, 0x64, 0x00, 0x1e, 0xff, 0xe1, 0x00, 0x19, 0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9, 0x40,
        0xa0, 0x29, 0xb0, 0x11, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x03, 0x00, 0x3c, 0x0f,
        0x16, 0x2d, 0x96, 0x01, 0x00, 0x06, 0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0, 0xfd, 0xf8, 0xf8,
        0x00,
    ];

    #[test]
    fn parses_x264_record() {
        let parsed = parse_decoder_config(Bytes::from_static(X264_640X320_RECORD)).unwrap();
        let c = &parsed.config;
        assert_eq!(parsed.nal_length_size, 4);
        assert_eq!((c.width, c.height), (640, 320));
        assert_eq!(c.codec_string(), "avc1.64001e");
        assert_eq!(c.sps.len(), 1);
        assert_eq!(c.pps.len(), 1);
        assert_eq!(c.frame_rate, Some(30.0));
        assert_eq!(&c.record[..], X264_640X320_RECORD);
    }

    #[test]
    fn every_prefix_is_an_error_or_a_value() {
        // The record is whole after the PPS (byte 42); the high-profile extension
        // after it is optional.
        for n in 0..X264_640X320_RECORD.len() {
            let r = parse_decoder_config(Bytes::copy_from_slice(&X264_640X320_RECORD[..n]));
            assert_eq!(r.is_ok(), n >= 42, "prefix of {n} bytes: {r:?}");
        }
    }

    #[test]
    fn garbage_never_panics() {
        // Deterministic pseudo-random records, with a valid-looking header so the
        // bytes reach the SPS parser.
        let mut x: u32 = 0x1234_5678;
        for round in 0..2000 {
            let mut rec = X264_640X320_RECORD.to_vec();
            for _ in 0..(1 + round % 8) {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                let i = 9 + (x as usize) % (rec.len() - 9);
                rec[i] = (x >> 8) as u8;
            }
            let _ = parse_decoder_config(Bytes::from(rec));
        }
    }

    #[test]
    fn an_empty_sps_is_an_error_not_a_panic() {
        assert_eq!(max_reorder_frames(&[]), None);
        // The x264 record with its SPS length set to 0 and the SPS bytes cut out.
        let mut rec = X264_640X320_RECORD[..6].to_vec();
        rec.extend_from_slice(&[0x00, 0x00]);
        rec.extend_from_slice(&X264_640X320_RECORD[8 + 0x19..]);
        assert!(parse_decoder_config(Bytes::from(rec)).is_err());
    }

    #[test]
    fn rejects_bad_headers() {
        let mut rec = X264_640X320_RECORD.to_vec();
        rec[0] = 0;
        assert_eq!(
            parse_decoder_config(Bytes::from(rec)),
            Err(AvcError::Version(0))
        );
        let mut rec = X264_640X320_RECORD.to_vec();
        rec[4] = 0xfe;
        assert_eq!(
            parse_decoder_config(Bytes::from(rec)),
            Err(AvcError::LengthSize(3))
        );
        let mut rec = X264_640X320_RECORD.to_vec();
        rec[8] = 0x68; // the SPS claims to be a PPS
        assert!(matches!(
            parse_decoder_config(Bytes::from(rec)),
            Err(AvcError::NalType { what: "SPS", .. })
        ));
    }

    #[test]
    fn two_byte_lengths_are_rewritten() {
        let mut rec = X264_640X320_RECORD.to_vec();
        rec[4] = 0xfd;
        let parsed = parse_decoder_config(Bytes::from(rec)).unwrap();
        assert_eq!(parsed.nal_length_size, 2);
        assert_eq!(parsed.config.record[4], 0xff);
        let sample = Bytes::from_static(&[0, 2, 0x65, 0xaa, 0, 1, 0x06]);
        let (out, idr) = to_four_byte_lengths(sample, 2).unwrap();
        assert!(idr);
        assert_eq!(&out[..], &[0, 0, 0, 2, 0x65, 0xaa, 0, 0, 0, 1, 0x06]);
    }

    #[test]
    fn sample_framing() {
        let ok = Bytes::from_static(&[0, 0, 0, 2, 0x41, 0x9a, 0, 0, 0, 1, 0x06]);
        assert_eq!(to_four_byte_lengths(ok.clone(), 4), Ok((ok.clone(), false)));
        for n in 1..ok.len() {
            let prefix = ok.slice(..n);
            // Only the prefix that ends after the first NAL is a whole sample.
            assert_eq!(
                to_four_byte_lengths(prefix, 4).is_ok(),
                n == 6,
                "prefix {n}"
            );
        }
        let huge = Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0x65]);
        assert!(to_four_byte_lengths(huge, 4).is_err());
    }
}
