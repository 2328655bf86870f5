//! Movie fragments: `moof` + `mdat` for one track (ISO/IEC 14496-12 §8.8).
//!
//! Each fragment is self-describing: `tfhd` uses default-base-is-moof, so `trun`'s
//! data_offset counts from the first byte of this `moof` and the fragment can be
//! served as an LL-HLS part on its own; `tfdt` carries the absolute decode time, so no
//! reader needs earlier fragments to place it on the timeline.

use bytes::{BufMut, Bytes};

use super::boxes::{patch_u32, u32_len, write_box, write_full_box, Fmp4Error, Result};

/// One sample (a video access unit or an AAC frame) of a fragment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    /// Decode duration in the track's timescale.
    pub duration: u32,
    /// Presentation time minus decode time, in the track's timescale (may be negative:
    /// `trun` is written as version 1).
    pub composition_offset: i32,
    /// A sync sample (IDR). Every AAC frame is one.
    pub keyframe: bool,
    /// Video: AVCC length-prefixed NAL units. Audio: one raw AAC frame.
    pub data: Bytes,
}

/// `tfhd` flag: data offsets are relative to the start of the enclosing `moof`
/// (§8.8.7.1). Required by CMAF and what makes each fragment independent.
const TFHD_DEFAULT_BASE_IS_MOOF: u32 = 0x02_0000;

/// `trun` flags (§8.8.8.1): data-offset-present, then per-sample duration, size,
/// flags and composition time offset.
const TRUN_DATA_OFFSET: u32 = 0x00_0001;
const TRUN_SAMPLE_DURATION: u32 = 0x00_0100;
const TRUN_SAMPLE_SIZE: u32 = 0x00_0200;
const TRUN_SAMPLE_FLAGS: u32 = 0x00_0400;
const TRUN_SAMPLE_CTS_OFFSET: u32 = 0x00_0800;
const TRUN_FLAGS: u32 = TRUN_DATA_OFFSET
    | TRUN_SAMPLE_DURATION
    | TRUN_SAMPLE_SIZE
    | TRUN_SAMPLE_FLAGS
    | TRUN_SAMPLE_CTS_OFFSET;

/// Sample flags (§8.8.3.1): is_leading(2) depends_on(2) is_depended_on(2)
/// has_redundancy(2) padding(3) is_non_sync(1) degradation_priority(16), after 4
/// reserved bits.
/// A sync sample: sample_depends_on = 2 (does not depend on others).
pub const SAMPLE_FLAGS_SYNC: u32 = 2 << 24;
/// Any other sample: sample_depends_on = 1 (depends on others),
/// sample_is_non_sync_sample = 1.
pub const SAMPLE_FLAGS_NON_SYNC: u32 = (1 << 24) | (1 << 16);

/// Bytes per sample in our `trun`: duration, size, flags, composition offset.
const TRUN_ENTRY_LEN: usize = 16;
/// `mdat` header length; the 32-bit form always suffices (checked below).
const MDAT_HEADER_LEN: usize = 8;

/// Builds `moof` + `mdat` for `samples`, in decode order.
///
/// `sequence_number` goes into `mfhd` and should start at 1 and increase by one per
/// fragment of a track (§8.8.5.3). `base_media_decode_time` is the decode time of the
/// first sample in the track's timescale.
///
/// Errors: [`Fmp4Error::NoSamples`] for an empty slice (a fragment without samples
/// serves no player and some reject it), [`Fmp4Error::TooLarge`] if a size or offset
/// would overflow its field (not reachable with real live media; see
/// [`Fmp4Error::TooLarge`]).
pub fn try_fragment(
    sequence_number: u32,
    track_id: u32,
    base_media_decode_time: u64,
    samples: &[Sample],
) -> Result<Bytes> {
    if samples.is_empty() {
        return Err(Fmp4Error::NoSamples);
    }
    let payload_len = samples
        .iter()
        .try_fold(0usize, |total, s| total.checked_add(s.data.len()))
        .ok_or(Fmp4Error::TooLarge("mdat"))?;
    let capacity = samples
        .len()
        .saturating_mul(TRUN_ENTRY_LEN)
        .saturating_add(payload_len)
        .saturating_add(128);
    let mut out = Vec::with_capacity(capacity);

    let mut data_offset_pos = 0;
    write_box(&mut out, *b"moof", |out| {
        write_mfhd(out, sequence_number)?;
        write_box(out, *b"traf", |out| {
            write_tfhd(out, track_id)?;
            write_tfdt(out, base_media_decode_time)?;
            data_offset_pos = write_trun(out, samples)?;
            Ok(())
        })
    })?;

    // The first sample's bytes follow the moof and the mdat header.
    let data_offset = out
        .len()
        .checked_add(MDAT_HEADER_LEN)
        .and_then(|offset| i32::try_from(offset).ok())
        .ok_or(Fmp4Error::TooLarge("trun data_offset"))?;
    patch_u32(
        &mut out,
        data_offset_pos,
        u32::from_be_bytes(data_offset.to_be_bytes()),
    )?;

    write_box(&mut out, *b"mdat", |out| {
        for sample in samples {
            out.put_slice(&sample.data);
        }
        Ok(())
    })?;
    Ok(Bytes::from(out))
}

/// Like [`try_fragment`], but returns empty [`Bytes`] where it would return an error —
/// in practice only for an empty `samples` slice, which callers should not request.
pub fn fragment(
    sequence_number: u32,
    track_id: u32,
    base_media_decode_time: u64,
    samples: &[Sample],
) -> Bytes {
    try_fragment(sequence_number, track_id, base_media_decode_time, samples).unwrap_or_default()
}

/// `mfhd` (§8.8.5).
fn write_mfhd(out: &mut Vec<u8>, sequence_number: u32) -> Result<()> {
    write_full_box(out, *b"mfhd", 0, 0, |out| {
        out.put_u32(sequence_number);
        Ok(())
    })
}

/// `tfhd` (§8.8.7): no defaults; everything is per sample in `trun`.
fn write_tfhd(out: &mut Vec<u8>, track_id: u32) -> Result<()> {
    write_full_box(out, *b"tfhd", 0, TFHD_DEFAULT_BASE_IS_MOOF, |out| {
        out.put_u32(track_id);
        Ok(())
    })
}

/// `tfdt` version 1 (§8.8.12): 64-bit decode time, so a long-running stream at a
/// 90 kHz timescale never wraps (32 bits would after 13 hours).
fn write_tfdt(out: &mut Vec<u8>, base_media_decode_time: u64) -> Result<()> {
    write_full_box(out, *b"tfdt", 1, 0, |out| {
        out.put_u64(base_media_decode_time);
        Ok(())
    })
}

/// `trun` version 1 (§8.8.8): signed composition offsets, so B-frame streams can
/// start presentation at the first decode time. Returns the position of the
/// data_offset field, which is patched once the `moof` size is known.
fn write_trun(out: &mut Vec<u8>, samples: &[Sample]) -> Result<usize> {
    let sample_count = u32_len(samples.len(), "trun sample_count")?;
    let mut data_offset_pos = 0;
    write_full_box(out, *b"trun", 1, TRUN_FLAGS, |out| {
        out.put_u32(sample_count);
        data_offset_pos = out.len();
        out.put_i32(0); // data_offset, patched by the caller
        for sample in samples {
            out.put_u32(sample.duration);
            out.put_u32(u32_len(sample.data.len(), "sample size")?);
            out.put_u32(sample_flags(sample.keyframe));
            out.put_i32(sample.composition_offset);
        }
        Ok(())
    })?;
    Ok(data_offset_pos)
}

fn sample_flags(keyframe: bool) -> u32 {
    if keyframe {
        SAMPLE_FLAGS_SYNC
    } else {
        SAMPLE_FLAGS_NON_SYNC
    }
}

#[cfg(test)]
mod tests {
    use super::super::boxes::reader::{boxes, child, path, u32_at};
    use super::*;

    fn sample(duration: u32, offset: i32, keyframe: bool, data: &'static [u8]) -> Sample {
        Sample {
            duration,
            composition_offset: offset,
            keyframe,
            data: Bytes::from_static(data),
        }
    }

    #[test]
    fn exact_bytes_of_a_two_sample_fragment() {
        let samples = [
            sample(3000, 6000, true, &[0xAA, 0xBB, 0xCC]),
            sample(3000, -3000, false, &[0xDD]),
        ];
        let out = fragment(7, 1, 0x1_0000_0002, &samples);
        #[rustfmt::skip]
        let expected: Vec<u8> = [
            &[0, 0, 0, 120][..], b"moof",
            &[0, 0, 0, 16], b"mfhd", &[0, 0, 0, 0], &[0, 0, 0, 7],
            &[0, 0, 0, 96], b"traf", // 8 + tfhd 16 + tfdt 20 + trun 52
            &[0, 0, 0, 16], b"tfhd", &[0, 0x02, 0, 0], &[0, 0, 0, 1],
            &[0, 0, 0, 20], b"tfdt", &[1, 0, 0, 0], &[0, 0, 0, 1, 0, 0, 0, 2],
            &[0, 0, 0, 52], b"trun", &[1, 0, 0x0F, 0x01], &[0, 0, 0, 2],
            &[0, 0, 0, 128], // data_offset = 120 (moof) + 8 (mdat header)
            &[0, 0, 0x0B, 0xB8], &[0, 0, 0, 3], &[0x02, 0, 0, 0], &[0, 0, 0x17, 0x70],
            &[0, 0, 0x0B, 0xB8], &[0, 0, 0, 1], &[0x01, 0x01, 0, 0], &[0xFF, 0xFF, 0xF4, 0x48],
            &[0, 0, 0, 12], b"mdat", &[0xAA, 0xBB, 0xCC, 0xDD],
        ]
        .concat();
        assert_eq!(&out[..], &expected[..]);
    }

    #[test]
    fn data_offset_points_at_the_first_sample() {
        let samples: Vec<_> = (0..5)
            .map(|i| sample(1024, 0, true, [&[1u8][..], &[2, 2], &[3], &[4], &[5]][i]))
            .collect();
        let out = fragment(1, 2, 0, &samples);
        let trun = path(&out, &[b"moof", b"traf", b"trun"]).body;
        let data_offset = u32_at(trun, 8) as usize;
        assert_eq!(out[data_offset], 1);
        assert_eq!(&out[data_offset..], &[1, 2, 2, 3, 4, 5]);
        assert_eq!(u32_at(trun, 4), 5); // sample_count
        let mdat = child(&out, b"mdat").body;
        assert_eq!(mdat, &[1, 2, 2, 3, 4, 5]);
        // Audio: every sample is a sync sample.
        for i in 0..5 {
            assert_eq!(u32_at(trun, 12 + i * 16 + 8), SAMPLE_FLAGS_SYNC);
        }
    }

    #[test]
    fn tfdt_is_version_1_with_64_bit_time() {
        let out = fragment(1, 1, u64::MAX, &[sample(1, 0, true, &[0])]);
        let tfdt = path(&out, &[b"moof", b"traf", b"tfdt"]).body;
        assert_eq!(
            tfdt,
            &[1, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]
        );
    }

    #[test]
    fn sample_flag_values() {
        assert_eq!(SAMPLE_FLAGS_SYNC, 0x0200_0000);
        assert_eq!(SAMPLE_FLAGS_NON_SYNC, 0x0101_0000);
    }

    #[test]
    fn empty_samples() {
        assert_eq!(try_fragment(1, 1, 0, &[]), Err(Fmp4Error::NoSamples));
        assert!(fragment(1, 1, 0, &[]).is_empty());
    }

    #[test]
    fn top_level_is_moof_then_mdat() {
        let out = fragment(3, 9, 90_000, &[sample(3000, 0, true, &[0; 100])]);
        let names: Vec<_> = boxes(&out).iter().map(|b| b.fourcc).collect();
        assert_eq!(names, [*b"moof", *b"mdat"]);
        let tfhd = path(&out, &[b"moof", b"traf", b"tfhd"]).body;
        assert_eq!(u32_at(tfhd, 4), 9);
    }
}
