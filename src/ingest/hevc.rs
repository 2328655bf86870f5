//! HEVC decoder configuration: `HEVCDecoderConfigurationRecord` → [`HevcConfig`], and
//! the sample framing that goes with it.
//!
//! The record layout is ISO/IEC 14496-15 8.3.3.1.2. Profile, tier, level and
//! compatibility flags come from the record header (they are the SPS's
//! `profile_tier_level`, copied there by the encoder, and what CODECS is built from);
//! the picture size from the first SPS (ITU-T H.265 7.3.2.2.1) and the frame rate from
//! the VPS timing info (7.3.2.1), both read with [`super::bits`].

use bytes::{Bytes, BytesMut};

use super::avc::reframe_nal_units;
use super::bits::{unescape_rbsp, BitReader, ByteReader, OutOfBits};
use crate::media::HevcConfig;

/// NAL unit types (H.265 table 7-1).
const NAL_VPS: u8 = 32;
const NAL_SPS: u8 = 33;
const NAL_PPS: u8 = 34;
/// IRAP pictures: BLA_W_LP (16) through the reserved IRAP types 22 and 23; IDR and CRA
/// (19–21) among them. A decoder can start at any of them.
const IRAP: std::ops::RangeInclusive<u8> = 16..=23;

/// Fixed part of the record before `numOfArrays` (8.3.3.1.2).
const RECORD_HEADER: usize = 22;
/// Largest picture side accepted: level 6.2 allows 8,444 luma samples per side
/// (sqrt(8 × MaxLumaPs)); anything past 16,384 is a corrupt SPS.
const MAX_SIDE: u32 = 16_384;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HevcError {
    #[error("HEVCDecoderConfigurationRecord truncated in {0}")]
    Truncated(&'static str),
    #[error("HEVCDecoderConfigurationRecord version {0}, expected 1")]
    Version(u8),
    #[error("invalid NAL length size {0} (lengthSizeMinusOne = 2 is reserved)")]
    LengthSize(u8),
    #[error("HEVCDecoderConfigurationRecord without {0}")]
    Missing(&'static str),
    #[error("{what} does not parse: truncated")]
    ParameterSet { what: &'static str },
    #[error("SPS gives an implausible picture size ({0})")]
    PictureSize(String),
    #[error("unsupported HEVC stream: {0}")]
    Unsupported(String),
    #[error("HEVC sample: NAL unit at byte {offset} runs past the end of the sample")]
    SampleFraming { offset: usize },
}

/// A parsed record with what the sample path needs beside the [`HevcConfig`].
#[derive(Debug, Clone, PartialEq)]
pub struct HevcDecoderConfig {
    /// `record` always declares 4-byte NAL lengths; [`to_four_byte_lengths`] converts
    /// samples that use fewer.
    pub config: HevcConfig,
    /// The NAL length size (1, 2 or 4) the encoder uses in its samples.
    pub nal_length_size: u8,
    /// The SPS's `sps_max_num_reorder_pics` (B-frame depth), when it parsed: the RTSP
    /// path, which sees presentation times only, derives decode times from it.
    pub max_num_reorder: Option<u32>,
}

impl From<super::bits::Truncated> for HevcError {
    fn from(t: super::bits::Truncated) -> Self {
        HevcError::Truncated(t.0)
    }
}

/// The NAL unit type in the first byte of an HEVC NAL unit header (H.265 7.3.1.2).
fn nal_type(first: u8) -> u8 {
    (first >> 1) & 0x3f
}

/// Parses an `HEVCDecoderConfigurationRecord` (ISO/IEC 14496-15 8.3.3.1.2).
///
/// Refuses what panocast cannot package faithfully, with a message naming it: chroma
/// other than 4:2:0, more than 10 bits, and parameter sets of layers above the base
/// one (stereo MV-HEVC).
pub fn parse_decoder_config(record: Bytes) -> Result<HevcDecoderConfig, HevcError> {
    let mut r = ByteReader::new(&record);
    let version = r.u8("configurationVersion")?;
    if version != 1 {
        return Err(HevcError::Version(version));
    }
    let ptl = r.u8("general_profile_idc")?;
    let compat = r.take(4, "general_profile_compatibility_flags")?;
    let compatibility_flags = u32::from_be_bytes([compat[0], compat[1], compat[2], compat[3]]);
    let mut constraint_flags = [0u8; 6];
    constraint_flags.copy_from_slice(r.take(6, "general_constraint_indicator_flags")?);
    let level_idc = r.u8("general_level_idc")?;
    r.take(2, "min_spatial_segmentation_idc")?;
    r.u8("parallelismType")?;
    r.u8("chromaFormat")?;
    let bit_depth_luma = (r.u8("bitDepthLumaMinus8")? & 0b111) + 8;
    let bit_depth_chroma = (r.u8("bitDepthChromaMinus8")? & 0b111) + 8;
    r.u16("avgFrameRate")?;
    let length_size_byte_pos = r.position();
    debug_assert_eq!(length_size_byte_pos, RECORD_HEADER - 1);
    let nal_length_size = (r.u8("lengthSizeMinusOne")? & 0b11) + 1;
    if nal_length_size == 3 {
        return Err(HevcError::LengthSize(nal_length_size));
    }
    let arrays = r.u8("numOfArrays")?;
    let (mut vps, mut sps, mut pps) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..arrays {
        let array_type = r.u8("NAL_unit_type")? & 0x3f;
        let count = r.u16("numNalus")?;
        for _ in 0..count {
            let len = r.u16("nalUnitLength")?;
            let start = r.position();
            let nal = r.take(usize::from(len), "nalUnit")?;
            if nal.len() < 2 {
                return Err(HevcError::Truncated("NAL unit header"));
            }
            // nuh_layer_id: 6 bits across the two header bytes.
            let layer = ((nal[0] & 1) << 5) | (nal[1] >> 3);
            if layer != 0 {
                return Err(HevcError::Unsupported(format!(
                    "parameter sets for layer {layer} (multi-layer or stereo MV-HEVC); send single-layer HEVC"
                )));
            }
            let slice = record.slice(start..r.position());
            match (array_type, nal_type(nal[0])) {
                (NAL_VPS, NAL_VPS) => vps.push(slice),
                (NAL_SPS, NAL_SPS) => sps.push(slice),
                (NAL_PPS, NAL_PPS) => pps.push(slice),
                // SEI arrays (prefix/suffix) and anything else ride along in the record.
                _ => {}
            }
        }
    }
    let first_vps = vps.first().ok_or(HevcError::Missing("VPS"))?;
    let first_sps = sps.first().ok_or(HevcError::Missing("SPS"))?;
    if pps.is_empty() {
        return Err(HevcError::Missing("PPS"));
    }
    // The SPS decides: some record writers (retina's, from RTSP parameter sets) leave
    // the record's chromaFormat at its reserved all-ones value.
    let sps_info = parse_sps(first_sps)?;
    let chroma_format = sps_info.chroma_format_idc;
    if chroma_format != 1 {
        let name = match chroma_format {
            0 => "4:0:0 (monochrome)",
            2 => "4:2:2",
            _ => "4:4:4",
        };
        return Err(HevcError::Unsupported(format!(
            "chroma format {name}; players decode 4:2:0 only"
        )));
    }
    let (bit_depth_luma, bit_depth_chroma) = sps_info
        .bit_depths
        .unwrap_or((u32::from(bit_depth_luma), u32::from(bit_depth_chroma)));
    if bit_depth_luma > 10 || bit_depth_chroma > 10 {
        return Err(HevcError::Unsupported(format!(
            "{bit_depth_luma}-bit video; players decode 8 and 10 bits"
        )));
    }
    let frame_rate = sps_info.frame_rate.or(vps_frame_rate(first_vps)?);
    let (width, height) = (sps_info.width, sps_info.height);

    // Samples are handed on with 4-byte lengths; the record says so too.
    let record = if nal_length_size == 4 {
        record
    } else {
        let mut fixed = BytesMut::from(&record[..]);
        fixed[length_size_byte_pos] |= 0b11;
        fixed.freeze()
    };
    Ok(HevcDecoderConfig {
        config: HevcConfig {
            record,
            vps,
            sps,
            pps,
            profile_space: ptl >> 6,
            high_tier: ptl & 0x20 != 0,
            profile_idc: ptl & 0x1f,
            compatibility_flags,
            constraint_flags,
            level_idc,
            width,
            height,
            frame_rate,
        },
        nal_length_size,
        max_num_reorder: sps_info.max_num_reorder,
    })
}

/// Skips `profile_tier_level(1, max_sub_layers_minus1)` (H.265 7.3.3).
fn skip_profile_tier_level(r: &mut BitReader, max_sub_layers_minus1: u32) -> Result<(), OutOfBits> {
    // General profile (88 bits) and general_level_idc (8).
    r.skip(96)?;
    let mut present = Vec::new();
    for _ in 0..max_sub_layers_minus1 {
        present.push((r.bit()?, r.bit()?));
    }
    if max_sub_layers_minus1 > 0 {
        for _ in max_sub_layers_minus1..8 {
            r.skip(2)?; // reserved_zero_2bits
        }
    }
    for (profile, level) in present {
        if profile {
            r.skip(88)?;
        }
        if level {
            r.skip(8)?;
        }
    }
    Ok(())
}

/// The RBSP of a parameter set NAL unit, after its 2-byte header.
fn rbsp(nal: &[u8]) -> Vec<u8> {
    unescape_rbsp(nal.get(2..).unwrap_or_default())
}

/// What the packager and the RTSP timing need of an SPS.
#[derive(Debug, Clone, Copy, PartialEq)]
struct SpsInfo {
    width: u32,
    height: u32,
    /// `chroma_format_idc`: 0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4.
    chroma_format_idc: u32,
    /// Luma and chroma bit depths, when the fields after the picture size parsed.
    bit_depths: Option<(u32, u32)>,
    /// `sps_max_num_reorder_pics` of the highest sub-layer: how many pictures may
    /// precede one in decoding order and follow it in output order.
    max_num_reorder: Option<u32>,
    /// From the VUI timing info, when present.
    frame_rate: Option<f64>,
}

/// Reads an SPS (H.265 7.3.2.2.1). The picture size, after the conformance window
/// (7.4.3.2.1, equations 7-1 and 7-2 with SubWidthC/SubHeightC of table 6-1, checked
/// arithmetic), must parse; the fields after it are read leniently: an SPS whose
/// later syntax we misread still packages, only without a declared frame rate.
fn parse_sps(nal: &[u8]) -> Result<SpsInfo, HevcError> {
    let rbsp = rbsp(nal);
    let truncated = |_| HevcError::ParameterSet { what: "SPS" };
    let mut r = BitReader::new(&rbsp);
    r.skip(4).map_err(truncated)?; // sps_video_parameter_set_id
    let max_sub_layers_minus1 = r.bits(3).map_err(truncated)?;
    r.skip(1).map_err(truncated)?; // sps_temporal_id_nesting_flag
    skip_profile_tier_level(&mut r, max_sub_layers_minus1).map_err(truncated)?;
    r.ue().map_err(truncated)?; // sps_seq_parameter_set_id
    let chroma_format_idc = r.ue().map_err(truncated)?;
    let separate_planes = chroma_format_idc == 3 && r.bit().map_err(truncated)?;
    let width = r.ue().map_err(truncated)?;
    let height = r.ue().map_err(truncated)?;
    let (sub_w, sub_h) = match (chroma_format_idc, separate_planes) {
        (1, _) => (2, 2),
        (2, _) => (2, 1),
        _ => (1, 1),
    };
    let (mut width, mut height) = (width, height);
    if r.bit().map_err(truncated)? {
        let mut offset = || r.ue().map_err(truncated);
        let (left, right, top, bottom) = (offset()?, offset()?, offset()?, offset()?);
        let bad = |what: &str| HevcError::PictureSize(what.to_owned());
        let horizontal = left
            .checked_add(right)
            .and_then(|v| v.checked_mul(sub_w))
            .ok_or_else(|| bad("conformance window"))?;
        let vertical = top
            .checked_add(bottom)
            .and_then(|v| v.checked_mul(sub_h))
            .ok_or_else(|| bad("conformance window"))?;
        width = width
            .checked_sub(horizontal)
            .ok_or_else(|| bad("window wider than picture"))?;
        height = height
            .checked_sub(vertical)
            .ok_or_else(|| bad("window taller than picture"))?;
    }
    if width == 0 || height == 0 || width > MAX_SIDE || height > MAX_SIDE {
        return Err(HevcError::PictureSize(format!("{width}x{height}")));
    }
    let tail = sps_tail(&mut r, max_sub_layers_minus1).ok();
    Ok(SpsInfo {
        width,
        height,
        chroma_format_idc,
        bit_depths: tail.map(|t| t.2),
        max_num_reorder: tail.map(|t| t.0),
        frame_rate: tail.and_then(|t| t.1),
    })
}

/// The SPS after the conformance window up to the VUI timing info:
/// `(sps_max_num_reorder_pics, frame rate, (luma, chroma bit depth))`. Loop counts are bounded by the limits
/// of 7.4.3.2.1 so a hostile SPS cannot make us spin.
#[allow(clippy::type_complexity)]
fn sps_tail(
    r: &mut BitReader,
    max_sub_layers_minus1: u32,
) -> Result<(u32, Option<f64>, (u32, u32)), OutOfBits> {
    let luma = r.ue()?.saturating_add(8);
    let chroma = r.ue()?.saturating_add(8);
    let depths = (luma, chroma);
    let log2_max_poc_lsb = r.ue()? + 4;
    if log2_max_poc_lsb > 16 {
        return Err(OutOfBits);
    }
    let ordering_info_for_all = r.bit()?;
    let first = if ordering_info_for_all {
        0
    } else {
        max_sub_layers_minus1
    };
    let mut reorder = 0;
    for _ in first..=max_sub_layers_minus1 {
        r.ue()?; // sps_max_dec_pic_buffering_minus1
        reorder = r.ue()?;
        r.ue()?; // sps_max_latency_increase_plus1
    }
    for _ in 0..6 {
        r.ue()?; // coding and transform block sizes, hierarchy depths
    }
    if r.bit()? && r.bit()? {
        skip_scaling_list_data(r)?;
    }
    r.skip(2)?; // amp_enabled_flag, sample_adaptive_offset_enabled_flag
    if r.bit()? {
        // pcm: bit depths (4 + 4), two block sizes, loop filter flag.
        r.skip(8)?;
        r.ue()?;
        r.ue()?;
        r.skip(1)?;
    }
    let sets = r.ue()?;
    if sets > 64 {
        return Err(OutOfBits);
    }
    let mut delta_pocs: Vec<u32> = Vec::new();
    for i in 0..sets {
        let count = skip_st_ref_pic_set(r, i, &delta_pocs)?;
        delta_pocs.push(count);
    }
    if r.bit()? {
        let long_term = r.ue()?;
        if long_term > 32 {
            return Err(OutOfBits);
        }
        for _ in 0..long_term {
            r.skip(log2_max_poc_lsb as usize + 1)?;
        }
    }
    r.skip(2)?; // sps_temporal_mvp_enabled_flag, strong_intra_smoothing_enabled_flag
    if !r.bit()? {
        return Ok((reorder, None, depths)); // no VUI
    }
    Ok((reorder, vui_frame_rate(r)?, depths))
}

/// `scaling_list_data()` (7.3.4), skipped.
fn skip_scaling_list_data(r: &mut BitReader) -> Result<(), OutOfBits> {
    for size_id in 0..4u32 {
        let step = if size_id == 3 { 3 } else { 1 };
        for _ in (0..6).step_by(step) {
            if !r.bit()? {
                r.ue()?; // scaling_list_pred_matrix_id_delta
                continue;
            }
            let coefficients = 64.min(1 << (4 + (size_id << 1)));
            if size_id > 1 {
                r.ue()?; // scaling_list_dc_coef_minus8, se(v): same length as ue(v)
            }
            for _ in 0..coefficients {
                r.ue()?; // scaling_list_delta_coef, se(v)
            }
        }
    }
    Ok(())
}

/// `st_ref_pic_set(idx)` (7.3.7) as in an SPS, skipped; returns its NumDeltaPocs
/// (7-61, 7-62), which a later set predicted from it needs.
fn skip_st_ref_pic_set(r: &mut BitReader, idx: u32, previous: &[u32]) -> Result<u32, OutOfBits> {
    let inter = idx != 0 && r.bit()?;
    if inter {
        // In an SPS the reference is always the set before (delta_idx_minus1 is
        // only in slice headers).
        let reference = *previous.last().ok_or(OutOfBits)?;
        r.skip(1)?; // delta_rps_sign
        r.ue()?; // abs_delta_rps_minus1
        let mut count = 0;
        for _ in 0..=reference {
            let used = r.bit()?;
            // use_delta_flag is inferred to be 1 when absent.
            if used || r.bit()? {
                count += 1;
            }
        }
        return Ok(count);
    }
    let negative = r.ue()?;
    let positive = r.ue()?;
    if negative > 16 || positive > 16 {
        return Err(OutOfBits);
    }
    for _ in 0..negative + positive {
        r.ue()?; // delta_poc_s0/s1_minus1
        r.skip(1)?; // used_by_curr_pic_s0/s1_flag
    }
    Ok(negative + positive)
}

/// The frame rate in `vui_parameters()` (annex E.2.1), when its timing info says.
fn vui_frame_rate(r: &mut BitReader) -> Result<Option<f64>, OutOfBits> {
    if r.bit()? && r.bits(8)? == 255 {
        r.skip(32)?; // sar_width, sar_height
    }
    if r.bit()? {
        r.skip(1)?; // overscan_appropriate_flag
    }
    if r.bit()? {
        r.skip(4)?; // video_format, video_full_range_flag
        if r.bit()? {
            r.skip(24)?; // colour primaries, transfer, matrix
        }
    }
    if r.bit()? {
        r.ue()?; // chroma_sample_loc_type_top_field
        r.ue()?; // chroma_sample_loc_type_bottom_field
    }
    // neutral_chroma_indication_flag, field_seq_flag, frame_field_info_present_flag
    r.skip(3)?;
    if r.bit()? {
        for _ in 0..4 {
            r.ue()?; // default display window offsets
        }
    }
    if !r.bit()? {
        return Ok(None);
    }
    let num_units_in_tick = r.bits(32)?;
    let time_scale = r.bits(32)?;
    Ok(frame_rate(num_units_in_tick, time_scale))
}

/// One picture lasts `num_units_in_tick / time_scale` seconds (E.3.1).
fn frame_rate(num_units_in_tick: u32, time_scale: u32) -> Option<f64> {
    if num_units_in_tick == 0 || time_scale == 0 {
        return None;
    }
    let fps = f64::from(time_scale) / f64::from(num_units_in_tick);
    (fps.is_finite() && fps <= 1000.0).then_some(fps)
}

/// Frames per second from `vps_timing_info` (H.265 7.3.2.1). `None` when the VPS does
/// not say (x265 says in the SPS VUI only). Refuses a VPS of several layers.
fn vps_frame_rate(nal: &[u8]) -> Result<Option<f64>, HevcError> {
    let rbsp = rbsp(nal);
    let truncated = |_| HevcError::ParameterSet { what: "VPS" };
    let mut r = BitReader::new(&rbsp);
    // id (4), base_layer_internal/available (2), max_layers_minus1 (6).
    r.skip(6).map_err(truncated)?;
    let max_layers_minus1 = r.bits(6).map_err(truncated)?;
    if max_layers_minus1 > 0 {
        return Err(HevcError::Unsupported(format!(
            "{} layers in the VPS (multi-layer or stereo MV-HEVC); send single-layer HEVC",
            max_layers_minus1 + 1
        )));
    }
    let max_sub_layers_minus1 = r.bits(3).map_err(truncated)?;
    r.skip(1 + 16).map_err(truncated)?; // temporal_id_nesting, reserved 0xffff
    skip_profile_tier_level(&mut r, max_sub_layers_minus1).map_err(truncated)?;
    let ordering_info_for_all = r.bit().map_err(truncated)?;
    let first = if ordering_info_for_all {
        0
    } else {
        max_sub_layers_minus1
    };
    for _ in first..=max_sub_layers_minus1 {
        for _ in 0..3 {
            r.ue().map_err(truncated)?;
        }
    }
    let max_layer_id = r.bits(6).map_err(truncated)?;
    let layer_sets_minus1 = r.ue().map_err(truncated)?;
    let flags = u64::from(layer_sets_minus1) * (u64::from(max_layer_id) + 1);
    r.skip(usize::try_from(flags).map_err(|_| HevcError::ParameterSet { what: "VPS" })?)
        .map_err(truncated)?;
    if !r.bit().map_err(truncated)? {
        return Ok(None);
    }
    let num_units_in_tick = r.bits(32).map_err(truncated)?;
    let time_scale = r.bits(32).map_err(truncated)?;
    Ok(frame_rate(num_units_in_tick, time_scale))
}

/// Checks the framing of one HEVC sample and returns it with 4-byte NAL lengths, plus
/// whether it holds an IRAP picture (a sync sample, ISO/IEC 14496-15 8.4.1).
pub fn to_four_byte_lengths(
    sample: Bytes,
    nal_length_size: u8,
) -> Result<(Bytes, bool), HevcError> {
    reframe_nal_units(sample, nal_length_size, |header| {
        IRAP.contains(&nal_type(header))
    })
    .map_err(|offset| HevcError::SampleFraming { offset })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The record ffmpeg 7.0's libx265 (imageio-ffmpeg's static build) writes for
    /// `-f lavfi -i testsrc2=size=640x320:rate=30 -c:v libx265`, as ffprobe dumps it:
    /// Main profile, Main tier, level 2.1, one VPS, SPS and PPS.
    pub(crate) const X265_640X320_RECORD: &[u8] = &[
        0x01, 0x01, 0x60, 0x00, 0x00, 0x00, 0x90, 0x00, 0x00, 0x00, 0x00, 0x00, 0x3f, 0xf0, 0x00,
        0xfc, 0xfd, 0xf8, 0xf8, 0x00, 0x00, 0x0f, 0x03, 0x20, 0x00, 0x01, 0x00, 0x18, 0x40, 0x01,
        0x0c, 0x01, 0xff, 0xff, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00,
        0x00, 0x03, 0x00, 0x3f, 0x95, 0x98, 0x09, 0x21, 0x00, 0x01, 0x00, 0x2a, 0x42, 0x01, 0x01,
        0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03, 0x00, 0x3f,
        0xa0, 0x05, 0x02, 0x01, 0x41, 0x65, 0x95, 0x9a, 0x49, 0x32, 0xbc, 0x05, 0xa0, 0x20, 0x00,
        0x00, 0x03, 0x00, 0x20, 0x00, 0x00, 0x03, 0x03, 0xc1, 0x22, 0x00, 0x01, 0x00, 0x07, 0x44,
        0x01, 0xc1, 0x72, 0xb4, 0x62, 0x40,
    ];

    #[test]
    fn parses_x265_record() {
        let parsed = parse_decoder_config(Bytes::from_static(X265_640X320_RECORD)).unwrap();
        let c = &parsed.config;
        assert_eq!(parsed.nal_length_size, 4);
        assert_eq!((c.width, c.height), (640, 320));
        assert_eq!(c.codec_string(), "hvc1.1.6.L63.90");
        assert_eq!((c.vps.len(), c.sps.len(), c.pps.len()), (1, 1, 1));
        assert_eq!(c.frame_rate, Some(30.0));
        assert_eq!(&c.record[..], X265_640X320_RECORD);
    }

    #[test]
    fn codec_strings_follow_annex_e() {
        let mut c = parse_decoder_config(Bytes::from_static(X265_640X320_RECORD))
            .unwrap()
            .config;
        // Main 10, High tier, level 5.1, profile space 1, no constraint flags.
        c.profile_idc = 2;
        c.compatibility_flags = 0x2000_0000;
        c.high_tier = true;
        c.level_idc = 153;
        c.profile_space = 1;
        c.constraint_flags = [0; 6];
        assert_eq!(c.codec_string(), "hvc1.A2.4.H153");
        c.constraint_flags = [0xb0, 0, 0, 0, 0, 0x01];
        assert_eq!(c.codec_string(), "hvc1.A2.4.H153.B0.0.0.0.0.1");
    }

    #[test]
    fn every_prefix_is_an_error_or_a_value() {
        for n in 0..X265_640X320_RECORD.len() {
            let r = parse_decoder_config(Bytes::copy_from_slice(&X265_640X320_RECORD[..n]));
            assert!(r.is_err(), "prefix of {n} bytes parsed: {r:?}");
        }
    }

    #[test]
    fn garbage_never_panics() {
        let mut x: u32 = 0x8765_4321;
        for round in 0..3000 {
            let mut rec = X265_640X320_RECORD.to_vec();
            for _ in 0..(1 + round % 8) {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                let i = 23 + (x as usize) % (rec.len() - 23);
                rec[i] = (x >> 8) as u8;
            }
            let _ = parse_decoder_config(Bytes::from(rec));
        }
    }

    #[test]
    fn refuses_what_players_cannot_decode() {
        // The record's chromaFormat says 4:4:4, the SPS 4:2:0: the SPS decides.
        let mut rec = X265_640X320_RECORD.to_vec();
        rec[16] = 0xff;
        assert!(parse_decoder_config(Bytes::from(rec)).is_ok());
        let mut rec = X265_640X320_RECORD.to_vec();
        rec[0] = 2;
        assert_eq!(
            parse_decoder_config(Bytes::from(rec)),
            Err(HevcError::Version(2))
        );
        // The SPS's nuh_layer_id set to 1: a second layer's parameters.
        let mut rec = X265_640X320_RECORD.to_vec();
        rec[58] |= 0x08;
        let e = parse_decoder_config(Bytes::from(rec)).unwrap_err();
        assert!(e.to_string().contains("MV-HEVC"), "{e}");
    }

    #[test]
    fn irap_pictures_are_sync_samples() {
        // An IDR_W_RADL slice (type 19) after an AUD (35); then a TRAIL_R (1) alone;
        // then a CRA (21) with 2-byte lengths.
        let idr = Bytes::from_static(&[0, 0, 0, 3, 0x46, 0x01, 0x50, 0, 0, 0, 2, 0x26, 0x01]);
        assert_eq!(to_four_byte_lengths(idr.clone(), 4), Ok((idr, true)));
        let trail = Bytes::from_static(&[0, 0, 0, 2, 0x02, 0x01]);
        assert_eq!(to_four_byte_lengths(trail.clone(), 4), Ok((trail, false)));
        let cra = Bytes::from_static(&[0, 2, 0x2a, 0x01]);
        assert_eq!(
            to_four_byte_lengths(cra, 2),
            Ok((Bytes::from_static(&[0, 0, 0, 2, 0x2a, 0x01]), true))
        );
        assert_eq!(
            to_four_byte_lengths(Bytes::from_static(&[0, 0, 0, 9, 0x26]), 4),
            Err(HevcError::SampleFraming { offset: 0 })
        );
    }
}
