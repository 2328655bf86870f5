//! AV1 decoder configuration: `AV1CodecConfigurationRecord` → [`Av1Config`], and the
//! sample framing that goes with it.
//!
//! The record is AV1-ISOBMFF §2.3 (what Enhanced RTMP's `av01` SequenceStart carries):
//! four bytes of profile, level, tier and colour format, then the sequence header OBU.
//! CODECS comes from those four bytes; the picture size and frame rate from the
//! sequence header (AV1 spec 5.5), read with [`super::bits`].
//!
//! A sample is one temporal unit in the low-overhead bitstream format (§2.4): OBUs with
//! `obu_size`, temporal delimiters removed. Whether it is a sync sample is read from the
//! first frame header, not taken from the FLV frame type.

use bytes::{Bytes, BytesMut};

use super::bits::{BitReader, OutOfBits};
use crate::media::Av1Config;

/// OBU types (AV1 spec 6.2.2).
const OBU_SEQUENCE_HEADER: u8 = 1;
const OBU_TEMPORAL_DELIMITER: u8 = 2;
const OBU_FRAME_HEADER: u8 = 3;
const OBU_FRAME: u8 = 6;
/// `frame_type` of a key frame (6.8.2).
const KEY_FRAME: u32 = 0;
/// Largest picture side accepted: AV1 level 6.3 allows 16,384 samples wide.
const MAX_SIDE: u32 = 16_384;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Av1Error {
    #[error("AV1CodecConfigurationRecord truncated in {0}")]
    Truncated(&'static str),
    #[error("AV1CodecConfigurationRecord marker/version byte {0:#04x}, expected 0x81")]
    Version(u8),
    #[error("AV1CodecConfigurationRecord without a sequence header OBU")]
    MissingSequenceHeader,
    #[error("AV1 sequence header does not parse: truncated")]
    SequenceHeader,
    #[error("AV1 sequence header gives an implausible picture size ({0})")]
    PictureSize(String),
    #[error("unsupported AV1 stream: {0}")]
    Unsupported(String),
    #[error("AV1 sample: OBU at byte {offset} runs past the end of the sample")]
    SampleFraming { offset: usize },
}

/// One OBU's place in a buffer: its type and the byte ranges of the whole OBU and of
/// its payload.
#[derive(Debug, Clone, Copy)]
struct Obu {
    kind: u8,
    start: usize,
    payload: usize,
    end: usize,
}

/// `leb128()` (AV1 spec 4.10.5) at `pos`: the value and the bytes it took.
fn leb128(buf: &[u8], pos: usize) -> Option<(u64, usize)> {
    let mut value: u64 = 0;
    for i in 0..8 {
        let byte = *buf.get(pos + i)?;
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// Splits `buf` into OBUs (5.3). An OBU without `obu_size` runs to the end of the
/// buffer, as the low-overhead format allows for the last one. `Err` holds the offset
/// of the OBU that does not fit.
fn obus(buf: &[u8]) -> Result<Vec<Obu>, usize> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let header = buf[pos];
        let kind = (header >> 3) & 0x0f;
        let has_extension = header & 0x04 != 0;
        let has_size = header & 0x02 != 0;
        let mut payload = pos + 1 + usize::from(has_extension);
        if payload > buf.len() {
            return Err(pos);
        }
        let end = if has_size {
            let (size, used) = leb128(buf, payload).ok_or(pos)?;
            payload += used;
            usize::try_from(size)
                .ok()
                .and_then(|s| payload.checked_add(s))
                .filter(|&e| e <= buf.len())
                .ok_or(pos)?
        } else {
            buf.len()
        };
        out.push(Obu {
            kind,
            start: pos,
            payload,
            end,
        });
        pos = end;
    }
    Ok(out)
}

/// Parses an `AV1CodecConfigurationRecord` and the sequence header OBU after it.
///
/// Refuses still pictures (an image, not a live stream) with a message naming it.
pub fn parse_decoder_config(record: Bytes) -> Result<Av1Config, Av1Error> {
    let head = record
        .get(..4)
        .ok_or(Av1Error::Truncated("the fixed header"))?;
    if head[0] != 0x81 {
        return Err(Av1Error::Version(head[0]));
    }
    let profile = head[1] >> 5;
    let level_idx = head[1] & 0x1f;
    let high_tier = head[2] & 0x80 != 0;
    let high_bitdepth = head[2] & 0x40 != 0;
    let twelve_bit = head[2] & 0x20 != 0;
    let monochrome = head[2] & 0x10 != 0;
    let bit_depth = match (high_bitdepth, twelve_bit) {
        (false, _) => 8,
        (true, false) => 10,
        (true, true) => 12,
    };
    let config_obus = &record[4..];
    let sequence = obus(config_obus)
        .map_err(|_| Av1Error::Truncated("configOBUs"))?
        .into_iter()
        .find(|o| o.kind == OBU_SEQUENCE_HEADER)
        .ok_or(Av1Error::MissingSequenceHeader)?;
    let header = parse_sequence_header(&config_obus[sequence.payload..sequence.end])
        .map_err(|OutOfBits| Av1Error::SequenceHeader)?;
    if header.still_picture {
        return Err(Av1Error::Unsupported(
            "a still picture (still_picture = 1), not a video stream".to_owned(),
        ));
    }
    if header.width > MAX_SIDE || header.height > MAX_SIDE {
        return Err(Av1Error::PictureSize(format!(
            "{}x{}",
            header.width, header.height
        )));
    }
    Ok(Av1Config {
        record,
        profile,
        level_idx,
        high_tier,
        bit_depth,
        monochrome,
        width: header.width,
        height: header.height,
        frame_rate: header.frame_rate,
    })
}

/// What panocast reads of a sequence header.
struct SequenceHeader {
    still_picture: bool,
    width: u32,
    height: u32,
    frame_rate: Option<f64>,
}

/// `sequence_header_obu()` (AV1 spec 5.5.1) up to the maximum frame size.
fn parse_sequence_header(payload: &[u8]) -> Result<SequenceHeader, OutOfBits> {
    let mut r = BitReader::new(payload);
    r.skip(3)?; // seq_profile: the record's copy is the one CODECS uses
    let still_picture = r.bit()?;
    let reduced_still_picture_header = r.bit()?;
    let mut frame_rate = None;
    if reduced_still_picture_header {
        r.skip(5)?; // seq_level_idx[0]
    } else {
        let mut buffer_delay_length = 0;
        let timing_info_present = r.bit()?;
        let mut decoder_model_info_present = false;
        if timing_info_present {
            // timing_info() (5.5.3)
            let num_units_in_display_tick = r.bits(32)?;
            let time_scale = r.bits(32)?;
            if r.bit()? {
                // equal_picture_interval
                let ticks_per_picture = u64::from(r.uvlc()?) + 1;
                let ticks = u64::from(num_units_in_display_tick) * ticks_per_picture;
                if ticks > 0 && time_scale > 0 {
                    frame_rate = Some(f64::from(time_scale) / ticks as f64);
                }
            }
            decoder_model_info_present = r.bit()?;
            if decoder_model_info_present {
                // decoder_model_info() (5.5.4)
                buffer_delay_length = r.bits(5)? as usize + 1;
                r.skip(32 + 5 + 5)?;
            }
        }
        let initial_display_delay_present = r.bit()?;
        let operating_points = r.bits(5)? + 1;
        for _ in 0..operating_points {
            r.skip(12)?; // operating_point_idc
            let seq_level_idx = r.bits(5)?;
            if seq_level_idx > 7 {
                r.skip(1)?; // seq_tier
            }
            if decoder_model_info_present && r.bit()? {
                // operating_parameters_info() (5.5.5)
                r.skip(2 * buffer_delay_length + 1)?;
            }
            if initial_display_delay_present && r.bit()? {
                r.skip(4)?;
            }
        }
    }
    let width_bits = r.bits(4)? + 1;
    let height_bits = r.bits(4)? + 1;
    let width = r.bits(width_bits)? + 1;
    let height = r.bits(height_bits)? + 1;
    Ok(SequenceHeader {
        still_picture,
        width,
        height,
        frame_rate,
    })
}

/// Checks the framing of one temporal unit and returns it without temporal delimiters
/// (AV1-ISOBMFF §2.4 asks for them to be removed), plus whether it is a sync sample:
/// its first frame is a key frame that is shown (§2.4.1).
pub fn to_sample(unit: Bytes) -> Result<(Bytes, bool), Av1Error> {
    let list = obus(&unit).map_err(|offset| Av1Error::SampleFraming { offset })?;
    let sync = list
        .iter()
        .find(|o| o.kind == OBU_FRAME_HEADER || o.kind == OBU_FRAME)
        .is_some_and(|o| shows_key_frame(&unit[o.payload..o.end]));
    if !list.iter().any(|o| o.kind == OBU_TEMPORAL_DELIMITER) {
        return Ok((unit, sync));
    }
    let mut kept = BytesMut::with_capacity(unit.len());
    for o in list.iter().filter(|o| o.kind != OBU_TEMPORAL_DELIMITER) {
        kept.extend_from_slice(&unit[o.start..o.end]);
    }
    Ok((kept.freeze(), sync))
}

/// Whether an `uncompressed_header()` (5.9.2) starts a shown key frame. Still pictures
/// (the reduced header) are refused at the configuration, so the full header applies.
fn shows_key_frame(header: &[u8]) -> bool {
    fn read(r: &mut BitReader) -> Result<bool, OutOfBits> {
        let show_existing_frame = r.bit()?;
        if show_existing_frame {
            // Shows a frame decoded earlier: not a place a decoder can start.
            return Ok(false);
        }
        let frame_type = r.bits(2)?;
        let show_frame = r.bit()?;
        Ok(frame_type == KEY_FRAME && show_frame)
    }
    read(&mut BitReader::new(header)).unwrap_or(false)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The record ffmpeg 7.0's libaom (imageio-ffmpeg's static build) sends in its
    /// Enhanced RTMP SequenceStart for `-f lavfi -i testsrc2=size=640x320:rate=30
    /// -c:v libaom-av1 -usage realtime`: Main profile, level 2.1 (index 1), 8 bit,
    /// 4:2:0, and the sequence header OBU.
    pub(crate) const AOM_640X320_RECORD: &[u8] = &[
        0x81, 0x01, 0x0c, 0x00, 0x0a, 0x0b, 0x00, 0x00, 0x00, 0x0c, 0xc4, 0xff, 0x3f, 0x36, 0xa6,
        0x40, 0x10,
    ];

    #[test]
    fn parses_libaom_record() {
        let c = parse_decoder_config(Bytes::from_static(AOM_640X320_RECORD)).unwrap();
        assert_eq!((c.width, c.height), (640, 320));
        assert_eq!((c.profile, c.level_idx, c.bit_depth), (0, 1, 8));
        assert_eq!(c.codec_string(), "av01.0.01M.08");
        assert_eq!(c.frame_rate, None);
        assert_eq!(&c.record[..], AOM_640X320_RECORD);
    }

    #[test]
    fn codec_strings_follow_the_av1_isobmff_rules() {
        let mut c = parse_decoder_config(Bytes::from_static(AOM_640X320_RECORD)).unwrap();
        c.profile = 0;
        c.level_idx = 13;
        c.high_tier = true;
        c.bit_depth = 10;
        assert_eq!(c.codec_string(), "av01.0.13H.10");
    }

    #[test]
    fn every_prefix_is_an_error() {
        for n in 0..AOM_640X320_RECORD.len() {
            let r = parse_decoder_config(Bytes::copy_from_slice(&AOM_640X320_RECORD[..n]));
            assert!(r.is_err(), "prefix of {n} bytes parsed: {r:?}");
        }
    }

    #[test]
    fn a_still_picture_is_refused_by_name() {
        let mut record = AOM_640X320_RECORD.to_vec();
        record[6] |= 0x10; // still_picture
        match parse_decoder_config(Bytes::from(record)) {
            Err(Av1Error::Unsupported(why)) => assert!(why.contains("still picture"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    /// A temporal unit: a temporal delimiter, a sequence header and a frame OBU whose
    /// header says "key frame, shown" (show_existing_frame 0, frame_type 00, show 1).
    fn key_unit() -> Vec<u8> {
        let mut unit = vec![0x12, 0x00]; // temporal delimiter, size 0
        unit.extend_from_slice(&AOM_640X320_RECORD[4..]);
        unit.extend_from_slice(&[0x32, 0x03, 0b0001_0000, 0xaa, 0xbb]);
        unit
    }

    #[test]
    fn samples_lose_temporal_delimiters_and_key_frames_are_sync() {
        let (sample, sync) = to_sample(Bytes::from(key_unit())).unwrap();
        assert!(sync);
        assert_eq!(&sample[..], &key_unit()[2..]);
        // An inter frame (frame_type 01) in a unit without a delimiter: kept as is.
        let inter = Bytes::from_static(&[0x32, 0x02, 0b0011_0000, 0x01]);
        let (same, sync) = to_sample(inter.clone()).unwrap();
        assert!(!sync);
        assert_eq!(same, inter);
        // show_existing_frame = 1: not a sync sample.
        let (_, sync) = to_sample(Bytes::from_static(&[0x32, 0x01, 0b1000_0000])).unwrap();
        assert!(!sync);
    }

    #[test]
    fn a_truncated_obu_is_a_framing_error() {
        let mut unit = key_unit();
        unit.truncate(unit.len() - 1);
        assert!(matches!(
            to_sample(Bytes::from(unit)),
            Err(Av1Error::SampleFraming { offset: 15 })
        ));
        assert!(matches!(
            to_sample(Bytes::from_static(&[0x32, 0xff])),
            Err(Av1Error::SampleFraming { offset: 0 })
        ));
    }
}
