//! CMAF init segments: `ftyp` + `moov` for one video or one audio track.
//!
//! The sample tables are empty and every duration is 0 because the media lives in
//! movie fragments (ISO/IEC 14496-12 §8.8); `mvex/trex` announces that fragments follow.

use bytes::{BufMut, Bytes};

use super::boxes::{
    put_unity_matrix, put_zeros, u32_len, write_box, write_full_box, Fmp4Error, FourCc, Result,
};
use super::spherical::write_spherical_boxes;
use crate::media::{AacConfig, VideoConfig};
use crate::streams::{Orientation, Projection};

/// Parameters of a video init segment.
#[derive(Clone, Copy, Debug)]
pub struct VideoInit<'a> {
    pub track_id: u32,
    /// Ticks per second of the fragments' decode times and durations.
    pub timescale: u32,
    pub config: &'a VideoConfig,
    pub projection: Projection,
    pub orientation: Orientation,
}

/// Parameters of an audio init segment. The timescale is `config.sample_rate`, so one
/// AAC frame lasts exactly [`AacConfig::SAMPLES_PER_FRAME`] ticks.
#[derive(Clone, Copy, Debug)]
pub struct AudioInit<'a> {
    pub track_id: u32,
    pub config: &'a AacConfig,
}

/// `ftyp` brands. `iso6` covers `tfdt` v1 and `trun` v1 (signed composition offsets);
/// `cmfc` declares a CMAF track; `mp41` keeps older MP4 readers happy. hls.js, FFmpeg and
/// Safari accept this set (it is what CMAF packagers commonly emit).
const MAJOR_BRAND: FourCc = *b"iso6";
const COMPATIBLE_BRANDS: [FourCc; 3] = [*b"iso6", *b"cmfc", *b"mp41"];

/// `mvhd` timescale. Nothing in the movie header is timed (durations are 0), so any
/// value works; 1000 is conventional.
const MOVIE_TIMESCALE: u32 = 1000;

/// What distinguishes the two track kinds inside the shared `moov` skeleton.
struct TrackSpec<'a> {
    track_id: u32,
    timescale: u32,
    handler: FourCc,
    handler_name: &'a str,
    /// `tkhd` width and height in pixels (0 for audio).
    width: u32,
    height: u32,
    /// `tkhd` volume, 8.8 fixed point: 1.0 for audio, 0 for video (§8.3.2.3).
    volume: u16,
    /// Writes the media header box inside `minf` (`vmhd`/`smhd`).
    media_header: fn(&mut Vec<u8>) -> Result<()>,
    /// Writes the one sample entry inside `stsd`.
    sample_entry: &'a dyn Fn(&mut Vec<u8>) -> Result<()>,
}

/// The init segment for an H.264 or HEVC track, or an error if a field would overflow
/// its size (impossible for a real stream; see [`Fmp4Error::TooLarge`]).
pub fn try_video_init_segment(v: &VideoInit) -> Result<Bytes> {
    let entry = |out: &mut Vec<u8>| write_visual_sample_entry(out, v);
    init_segment(&TrackSpec {
        track_id: v.track_id,
        timescale: v.timescale,
        handler: *b"vide",
        handler_name: "VideoHandler",
        width: v.config.width(),
        height: v.config.height(),
        volume: 0,
        media_header: write_vmhd,
        sample_entry: &entry,
    })
}

/// The init segment for a video track. Returns empty [`Bytes`] only in the impossible
/// case that [`try_video_init_segment`] fails.
pub fn video_init_segment(v: &VideoInit) -> Bytes {
    try_video_init_segment(v).unwrap_or_default()
}

/// The init segment for an AAC track, or an error if the `AudioSpecificConfig` is too
/// large for its descriptor.
pub fn try_audio_init_segment(a: &AudioInit) -> Result<Bytes> {
    let entry = |out: &mut Vec<u8>| write_mp4a(out, a.config);
    init_segment(&TrackSpec {
        track_id: a.track_id,
        timescale: a.config.sample_rate,
        handler: *b"soun",
        handler_name: "SoundHandler",
        width: 0,
        height: 0,
        volume: 0x0100,
        media_header: write_smhd,
        sample_entry: &entry,
    })
}

/// The init segment for an AAC track. Returns empty [`Bytes`] only in the impossible
/// case that [`try_audio_init_segment`] fails.
pub fn audio_init_segment(a: &AudioInit) -> Bytes {
    try_audio_init_segment(a).unwrap_or_default()
}

fn init_segment(track: &TrackSpec) -> Result<Bytes> {
    let mut out = Vec::with_capacity(1024);
    write_ftyp(&mut out)?;
    write_box(&mut out, *b"moov", |out| {
        write_mvhd(out, track.track_id)?;
        write_trak(out, track)?;
        write_box(out, *b"mvex", |out| write_trex(out, track.track_id))
    })?;
    Ok(Bytes::from(out))
}

/// `ftyp` (§4.3).
fn write_ftyp(out: &mut Vec<u8>) -> Result<()> {
    write_box(out, *b"ftyp", |out| {
        out.put_slice(&MAJOR_BRAND);
        out.put_u32(0); // minor_version
        for brand in COMPATIBLE_BRANDS {
            out.put_slice(&brand);
        }
        Ok(())
    })
}

/// `mvhd` v0 (§8.2.2).
fn write_mvhd(out: &mut Vec<u8>, track_id: u32) -> Result<()> {
    write_full_box(out, *b"mvhd", 0, 0, |out| {
        out.put_u32(0); // creation_time
        out.put_u32(0); // modification_time
        out.put_u32(MOVIE_TIMESCALE);
        out.put_u32(0); // duration: unknown, live
        out.put_u32(0x0001_0000); // rate 1.0
        out.put_u16(0x0100); // volume 1.0
        put_zeros(out, 2 + 8); // reserved
        put_unity_matrix(out);
        put_zeros(out, 6 * 4); // pre_defined
                               // The next free track ID; saturating keeps 0xFFFFFFFF, which §8.2.2.3 defines
                               // as "search for an unused ID".
        out.put_u32(track_id.saturating_add(1));
        Ok(())
    })
}

fn write_trak(out: &mut Vec<u8>, track: &TrackSpec) -> Result<()> {
    write_box(out, *b"trak", |out| {
        write_tkhd(out, track)?;
        write_box(out, *b"mdia", |out| {
            write_mdhd(out, track.timescale)?;
            write_hdlr(out, track.handler, track.handler_name)?;
            write_box(out, *b"minf", |out| {
                (track.media_header)(out)?;
                write_dinf(out)?;
                write_stbl(out, track.sample_entry)
            })
        })
    })
}

/// `tkhd` v0 (§8.3.2). Flags 0x3: track_enabled | track_in_movie.
fn write_tkhd(out: &mut Vec<u8>, track: &TrackSpec) -> Result<()> {
    write_full_box(out, *b"tkhd", 0, 0x00_0003, |out| {
        out.put_u32(0); // creation_time
        out.put_u32(0); // modification_time
        out.put_u32(track.track_id);
        out.put_u32(0); // reserved
        out.put_u32(0); // duration: unknown, live
        put_zeros(out, 8); // reserved
        out.put_u16(0); // layer
        out.put_u16(0); // alternate_group
        out.put_u16(track.volume);
        out.put_u16(0); // reserved
        put_unity_matrix(out);
        out.put_u32(fixed_16_16(track.width));
        out.put_u32(fixed_16_16(track.height));
        Ok(())
    })
}

/// `mdhd` v0 (§8.4.2), language `und`.
fn write_mdhd(out: &mut Vec<u8>, timescale: u32) -> Result<()> {
    write_full_box(out, *b"mdhd", 0, 0, |out| {
        out.put_u32(0); // creation_time
        out.put_u32(0); // modification_time
        out.put_u32(timescale);
        out.put_u32(0); // duration: unknown, live
        out.put_u16(packed_language(*b"und"));
        out.put_u16(0); // pre_defined
        Ok(())
    })
}

/// ISO-639-2/T code packed as three 5-bit letters offset by 0x60 (§8.4.2.3).
fn packed_language(code: [u8; 3]) -> u16 {
    code.iter().fold(0u16, |acc, &c| {
        (acc << 5) | (u16::from(c.wrapping_sub(0x60)) & 0x1F)
    })
}

/// `hdlr` (§8.4.3).
fn write_hdlr(out: &mut Vec<u8>, handler: FourCc, name: &str) -> Result<()> {
    write_full_box(out, *b"hdlr", 0, 0, |out| {
        out.put_u32(0); // pre_defined
        out.put_slice(&handler);
        put_zeros(out, 3 * 4); // reserved
        out.put_slice(name.as_bytes());
        out.put_u8(0);
        Ok(())
    })
}

/// `vmhd` (§12.1.2); flags must be 1.
fn write_vmhd(out: &mut Vec<u8>) -> Result<()> {
    write_full_box(out, *b"vmhd", 0, 1, |out| {
        out.put_u16(0); // graphicsmode: copy
        put_zeros(out, 3 * 2); // opcolor
        Ok(())
    })
}

/// `smhd` (§12.2.2).
fn write_smhd(out: &mut Vec<u8>) -> Result<()> {
    write_full_box(out, *b"smhd", 0, 0, |out| {
        out.put_u16(0); // balance: centre
        out.put_u16(0); // reserved
        Ok(())
    })
}

/// `dinf { dref { url  } }` (§8.7.1–8.7.2): one self-contained data reference (flag 1),
/// which every sample entry's data_reference_index 1 points at.
fn write_dinf(out: &mut Vec<u8>) -> Result<()> {
    write_box(out, *b"dinf", |out| {
        write_full_box(out, *b"dref", 0, 0, |out| {
            out.put_u32(1); // entry_count
            write_full_box(out, *b"url ", 0, 1, |_| Ok(()))
        })
    })
}

/// `stbl` with the one sample description and empty sample tables (§8.5, §8.6, §8.7):
/// fragmented files keep all samples in `moof`/`mdat`.
fn write_stbl(out: &mut Vec<u8>, sample_entry: &dyn Fn(&mut Vec<u8>) -> Result<()>) -> Result<()> {
    write_box(out, *b"stbl", |out| {
        write_full_box(out, *b"stsd", 0, 0, |out| {
            out.put_u32(1); // entry_count
            sample_entry(out)
        })?;
        write_empty_table(out, *b"stts")?;
        write_empty_table(out, *b"stsc")?;
        write_full_box(out, *b"stsz", 0, 0, |out| {
            out.put_u32(0); // sample_size: sizes are per sample (in trun)
            out.put_u32(0); // sample_count
            Ok(())
        })?;
        write_empty_table(out, *b"stco")
    })
}

/// A sample table FullBox whose body is just `entry_count = 0`.
fn write_empty_table(out: &mut Vec<u8>, fourcc: FourCc) -> Result<()> {
    write_full_box(out, fourcc, 0, 0, |out| {
        out.put_u32(0); // entry_count
        Ok(())
    })
}

/// `trex` (§8.8.3). The defaults are never relied on: every `trun` carries duration,
/// size and flags per sample.
fn write_trex(out: &mut Vec<u8>, track_id: u32) -> Result<()> {
    write_full_box(out, *b"trex", 0, 0, |out| {
        out.put_u32(track_id);
        out.put_u32(1); // default_sample_description_index
        out.put_u32(0); // default_sample_duration
        out.put_u32(0); // default_sample_size
        out.put_u32(0); // default_sample_flags
        Ok(())
    })
}

/// The common start of every sample entry (§8.5.2.2): 6 reserved bytes and
/// data_reference_index 1.
fn put_sample_entry_header(out: &mut Vec<u8>) {
    put_zeros(out, 6);
    out.put_u16(1);
}

/// The VisualSampleEntry (§12.1.3) of the track's codec with its configuration box —
/// `avc1` + `avcC` (ISO/IEC 14496-15 §5.4.2), `hvc1` + `hvcC` (§8.4.1; `hvc1`, not
/// `hev1`: the parameter sets are in the sample description, as Apple's HLS authoring
/// rules ask), `av01` + `av1C` (AV1-ISOBMFF §2.2) — and, for spherical projections,
/// the 360° boxes. No `pasp`: pixels are square, which is also what a reader assumes
/// without one.
fn write_visual_sample_entry(out: &mut Vec<u8>, v: &VideoInit) -> Result<()> {
    let (entry, config_box, record) = match v.config {
        VideoConfig::Avc(c) => (*b"avc1", *b"avcC", &c.record),
        VideoConfig::Hevc(c) => (*b"hvc1", *b"hvcC", &c.record),
        VideoConfig::Av1(c) => (*b"av01", *b"av1C", &c.record),
    };
    write_box(out, entry, |out| {
        put_sample_entry_header(out);
        out.put_u16(0); // pre_defined
        out.put_u16(0); // reserved
        put_zeros(out, 3 * 4); // pre_defined
        out.put_u16(dimension_u16(v.config.width()));
        out.put_u16(dimension_u16(v.config.height()));
        out.put_u32(0x0048_0000); // horizresolution 72 dpi
        out.put_u32(0x0048_0000); // vertresolution 72 dpi
        out.put_u32(0); // reserved
        out.put_u16(1); // frame_count: one frame per sample
        put_zeros(out, 32); // compressorname: empty Pascal string
        out.put_u16(0x0018); // depth: colour, no alpha
        out.put_i16(-1); // pre_defined
        write_box(out, config_box, |out| {
            out.put_slice(record);
            Ok(())
        })?;
        // After avcC/hvcC, before pasp/clap: FFmpeg reads these children in order.
        write_spherical_boxes(out, v.projection, v.orientation)
    })
}

/// `mp4a` AudioSampleEntry (§12.2.3, ISO/IEC 14496-14 §5.6) with `esds`.
fn write_mp4a(out: &mut Vec<u8>, config: &AacConfig) -> Result<()> {
    write_box(out, *b"mp4a", |out| {
        put_sample_entry_header(out);
        put_zeros(out, 2 * 4); // reserved
                               // A channel count of 0 (channel configuration in the bitstream) is not a valid
                               // entry value; 2 is the template default. Decoders use the ASC either way.
        out.put_u16(match config.channels {
            0 => 2,
            n => u16::from(n),
        });
        out.put_u16(16); // samplesize
        out.put_u16(0); // pre_defined
        out.put_u16(0); // reserved
                        // samplerate is 16.16; rates above 65535 Hz (88.2/96 kHz) cannot be expressed,
                        // so 0 is written and readers take the rate from mdhd and the ASC.
        out.put_u32(match u16::try_from(config.sample_rate) {
            Ok(rate) => u32::from(rate) << 16,
            Err(_) => 0,
        });
        write_esds(out, config)
    })
}

/// `esds` (ISO/IEC 14496-14 §5.6): an ES_Descriptor (ISO/IEC 14496-1 §7.2.6.5) holding
/// a DecoderConfigDescriptor for MPEG-4 audio with the AudioSpecificConfig, and the
/// SLConfigDescriptor that MP4 files require.
fn write_esds(out: &mut Vec<u8>, config: &AacConfig) -> Result<()> {
    const ES_DESCR_TAG: u8 = 0x03;
    const DECODER_CONFIG_DESCR_TAG: u8 = 0x04;
    const DEC_SPECIFIC_INFO_TAG: u8 = 0x05;
    const SL_CONFIG_DESCR_TAG: u8 = 0x06;
    /// objectTypeIndication: Audio ISO/IEC 14496-3 (AAC of any profile).
    const OBJECT_TYPE_MPEG4_AUDIO: u8 = 0x40;
    /// streamType 0x05 (AudioStream) << 2 | upStream 0 << 1 | reserved 1.
    const STREAM_TYPE_AUDIO: u8 = (0x05 << 2) | 1;

    write_full_box(out, *b"esds", 0, 0, |out| {
        let mut dsi = Vec::with_capacity(config.asc.len() + 5);
        put_descriptor(&mut dsi, DEC_SPECIFIC_INFO_TAG, &config.asc)?;

        let mut dcd = Vec::with_capacity(13 + dsi.len());
        dcd.put_u8(OBJECT_TYPE_MPEG4_AUDIO);
        dcd.put_u8(STREAM_TYPE_AUDIO);
        put_zeros(&mut dcd, 3); // bufferSizeDB: unknown
        dcd.put_u32(0); // maxBitrate: unknown
        dcd.put_u32(0); // avgBitrate: 0 = variable
        dcd.put_slice(&dsi);

        let mut es = Vec::with_capacity(3 + 5 + dcd.len() + 3);
        es.put_u16(0); // ES_ID: 0 inside MP4 files (14496-14 §3.1.2)
        es.put_u8(0); // no streamDependence, URL or OCR stream
        put_descriptor(&mut es, DECODER_CONFIG_DESCR_TAG, &dcd)?;
        put_descriptor(&mut es, SL_CONFIG_DESCR_TAG, &[0x02])?; // predefined: MP4

        put_descriptor(out, ES_DESCR_TAG, &es)
    })
}

/// A descriptor: tag, expandable size (14496-1 §8.3.3: 7 bits per byte, high bit =
/// more bytes follow, at most 4 bytes), body.
fn put_descriptor(out: &mut Vec<u8>, tag: u8, body: &[u8]) -> Result<()> {
    const MAX_LEN: usize = (1 << 28) - 1;
    if body.len() > MAX_LEN {
        return Err(Fmp4Error::TooLarge("descriptor"));
    }
    let len = u32_len(body.len(), "descriptor")?;
    out.put_u8(tag);
    let groups = (1..4).take_while(|i| len >> (7 * i) != 0).count();
    for shift in (1..=groups).rev() {
        out.put_u8(0x80 | ((len >> (7 * shift)) & 0x7F) as u8);
    }
    out.put_u8((len & 0x7F) as u8);
    out.put_slice(body);
    Ok(())
}

/// A pixel dimension as 16.16 fixed point, saturating at 65535 (no video is larger).
fn fixed_16_16(pixels: u32) -> u32 {
    u32::from(dimension_u16(pixels)) << 16
}

/// A pixel dimension as u16, saturating; sample entry sizes are informative (the
/// decoder takes the real size from the SPS).
fn dimension_u16(pixels: u32) -> u16 {
    u16::try_from(pixels).unwrap_or(u16::MAX)
}

#[cfg(test)]
mod tests {
    use super::super::boxes::reader::{boxes, child, path, u32_at};
    use super::*;
    use crate::media::AvcConfig;

    fn avc_config() -> AvcConfig {
        // A plausible record: version 1, High profile level 3.1, 4-byte lengths,
        // one SPS and one PPS (contents are not parsed by the writer).
        let sps = Bytes::from_static(&[0x67, 0x64, 0x00, 0x1F, 0xAC, 0xD9]);
        let pps = Bytes::from_static(&[0x68, 0xEB, 0xE3, 0xCB]);
        let mut record = vec![1, 0x64, 0x00, 0x1F, 0xFF, 0xE1, 0, sps.len() as u8];
        record.extend_from_slice(&sps);
        record.extend_from_slice(&[1, 0, pps.len() as u8]);
        record.extend_from_slice(&pps);
        AvcConfig {
            record: Bytes::from(record),
            sps: vec![sps],
            pps: vec![pps],
            profile_idc: 0x64,
            constraint_flags: 0,
            level_idc: 0x1F,
            width: 1920,
            height: 960,
            frame_rate: Some(30.0),
        }
    }

    fn aac_config(sample_rate: u32) -> AacConfig {
        AacConfig {
            asc: Bytes::from_static(&[0x11, 0x90]),
            object_type: 2,
            sample_rate,
            channels: 2,
        }
    }

    fn video(projection: Projection) -> Bytes {
        let config = avc_config();
        video_init_segment(&VideoInit {
            track_id: 1,
            timescale: 90_000,
            config: &VideoConfig::Avc(config.clone()),
            projection,
            orientation: Orientation::default(),
        })
    }

    const STBL: [&[u8; 4]; 5] = [b"moov", b"trak", b"mdia", b"minf", b"stbl"];

    /// Children of the sample entry inside `stsd` (entry header: 8 box + `skip` bytes).
    fn entry_children(init: &[u8], entry: &[u8; 4], skip: usize) -> Vec<[u8; 4]> {
        let stsd = child(path(init, &STBL).body, b"stsd").body;
        assert_eq!(u32_at(stsd, 4), 1, "one sample entry");
        let sample_entry = child(&stsd[8..], entry).body;
        boxes(&sample_entry[skip..])
            .iter()
            .map(|b| b.fourcc)
            .collect()
    }

    #[test]
    fn ftyp_brands() {
        let init = video(Projection::Flat);
        let ftyp = child(&init, b"ftyp").body;
        assert_eq!(ftyp, b"iso6\0\0\0\0iso6cmfcmp41");
        let top: Vec<_> = boxes(&init).iter().map(|b| b.fourcc).collect();
        assert_eq!(top, [*b"ftyp", *b"moov"]);
    }

    #[test]
    fn video_moov_shape() {
        let init = video(Projection::Equirect);
        let moov: Vec<_> = boxes(child(&init, b"moov").body)
            .iter()
            .map(|b| b.fourcc)
            .collect();
        assert_eq!(moov, [*b"mvhd", *b"trak", *b"mvex"]);
        let stbl: Vec<_> = boxes(path(&init, &STBL).body)
            .iter()
            .map(|b| b.fourcc)
            .collect();
        assert_eq!(stbl, [*b"stsd", *b"stts", *b"stsc", *b"stsz", *b"stco"]);
        let hdlr = path(&init, &[b"moov", b"trak", b"mdia", b"hdlr"]).body;
        assert_eq!(&hdlr[8..12], b"vide");
        let mdhd = path(&init, &[b"moov", b"trak", b"mdia", b"mdhd"]).body;
        assert_eq!(u32_at(mdhd, 12), 90_000);
        assert_eq!(&mdhd[20..22], &[0x55, 0xC4]); // "und"
        let tkhd = path(&init, &[b"moov", b"trak", b"tkhd"]).body;
        assert_eq!(tkhd.len(), 92 - 8);
        assert_eq!(u32_at(tkhd, 12), 1); // track_ID
        assert_eq!(u32_at(tkhd, 76), 1920 << 16);
        assert_eq!(u32_at(tkhd, 80), 960 << 16);
        let trex = path(&init, &[b"moov", b"mvex", b"trex"]).body;
        assert_eq!(u32_at(trex, 4), 1);
        let mvhd = path(&init, &[b"moov", b"mvhd"]).body;
        assert_eq!(mvhd.len(), 108 - 8);
        assert_eq!(u32_at(mvhd, 96), 2); // next_track_ID
    }

    #[test]
    fn avc1_children_order() {
        let flat = video(Projection::Flat);
        assert_eq!(entry_children(&flat, b"avc1", 78), [*b"avcC"]);
        let mono = video(Projection::Equirect);
        assert_eq!(
            entry_children(&mono, b"avc1", 78),
            [*b"avcC", *b"st3d", *b"sv3d", *b"vexu"]
        );
        let tb = video(Projection::EquirectStereoTb);
        assert_eq!(
            entry_children(&tb, b"avc1", 78),
            [*b"avcC", *b"st3d", *b"sv3d"]
        );
    }

    #[test]
    fn hvc1_with_verbatim_hvcc_and_the_360_boxes() {
        use crate::ingest::hevc::{parse_decoder_config, tests::X265_640X320_RECORD};
        let hevc = parse_decoder_config(Bytes::from_static(X265_640X320_RECORD))
            .unwrap()
            .config;
        let init = video_init_segment(&VideoInit {
            track_id: 1,
            timescale: 90_000,
            config: &VideoConfig::Hevc(hevc),
            projection: Projection::Equirect,
            orientation: Orientation::default(),
        });
        assert_eq!(
            entry_children(&init, b"hvc1", 78),
            [*b"hvcC", *b"st3d", *b"sv3d", *b"vexu"]
        );
        let stsd = child(path(&init, &STBL).body, b"stsd").body;
        let hvc1 = child(&stsd[8..], b"hvc1").body;
        assert_eq!(&hvc1[24..28], &[0x02, 0x80, 0x01, 0x40]); // 640 x 320
        assert_eq!(child(&hvc1[78..], b"hvcC").body, X265_640X320_RECORD);
    }

    #[test]
    fn avc1_fields_and_verbatim_avcc() {
        let config = avc_config();
        let init = video(Projection::Flat);
        let stsd = child(path(&init, &STBL).body, b"stsd").body;
        let avc1 = child(&stsd[8..], b"avc1").body;
        assert_eq!(&avc1[6..8], &[0, 1]); // data_reference_index
        assert_eq!(&avc1[24..28], &[0x07, 0x80, 0x03, 0xC0]); // 1920 x 960
        assert_eq!(&avc1[74..78], &[0x00, 0x18, 0xFF, 0xFF]);
        assert_eq!(child(&avc1[78..], b"avcC").body, &config.record[..]);
    }

    #[test]
    fn audio_init_esds() {
        let config = aac_config(48_000);
        let init = audio_init_segment(&AudioInit {
            track_id: 2,
            config: &config,
        });
        let hdlr = path(&init, &[b"moov", b"trak", b"mdia", b"hdlr"]).body;
        assert_eq!(&hdlr[8..12], b"soun");
        let mdhd = path(&init, &[b"moov", b"trak", b"mdia", b"mdhd"]).body;
        assert_eq!(u32_at(mdhd, 12), 48_000);
        path(&init, &[b"moov", b"trak", b"mdia", b"minf", b"smhd"]);
        assert_eq!(entry_children(&init, b"mp4a", 28), [*b"esds"]);
        let stsd = child(path(&init, &STBL).body, b"stsd").body;
        let mp4a = child(&stsd[8..], b"mp4a").body;
        assert_eq!(&mp4a[16..18], &[0, 2]); // channelcount
        assert_eq!(u32_at(mp4a, 24), 48_000 << 16);
        let esds = child(&mp4a[28..], b"esds").body;
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0, 0, 0, 0,                  // version, flags
            0x03, 25, 0, 0, 0,           // ES_Descriptor, ES_ID 0, flags 0
            0x04, 17, 0x40, 0x15,        // DecoderConfigDescriptor, AAC, audio stream
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // buffer size, bitrates
            0x05, 2, 0x11, 0x90,         // DecoderSpecificInfo = ASC
            0x06, 1, 0x02,               // SLConfigDescriptor, predefined MP4
        ];
        assert_eq!(esds, expected);
    }

    #[test]
    fn high_sample_rate_writes_zero_entry_rate() {
        let config = aac_config(96_000);
        let init = audio_init_segment(&AudioInit {
            track_id: 1,
            config: &config,
        });
        let stsd = child(path(&init, &STBL).body, b"stsd").body;
        let mp4a = child(&stsd[8..], b"mp4a").body;
        assert_eq!(u32_at(mp4a, 24), 0);
        let mdhd = path(&init, &[b"moov", b"trak", b"mdia", b"mdhd"]).body;
        assert_eq!(u32_at(mdhd, 12), 96_000);
    }

    #[test]
    fn descriptor_sizes_use_expandable_encoding() {
        let mut out = Vec::new();
        put_descriptor(&mut out, 5, &[0; 127]).unwrap();
        assert_eq!(&out[..2], &[5, 127]);
        out.clear();
        put_descriptor(&mut out, 5, &[0; 128]).unwrap();
        assert_eq!(&out[..3], &[5, 0x81, 0x00]);
        out.clear();
        put_descriptor(&mut out, 5, &vec![0; 300_000]).unwrap();
        // 300000 = 18 * 128^2 + 39 * 128 + 96 -> 0x80|18, 0x80|39, 96
        assert_eq!(&out[..4], &[5, 0x92, 0xA7, 0x60]);
        assert_eq!(out.len(), 4 + 300_000);
    }

    #[test]
    fn degenerate_configs_still_produce_well_formed_boxes() {
        let config = AvcConfig {
            record: Bytes::new(),
            sps: Vec::new(),
            pps: Vec::new(),
            profile_idc: 0,
            constraint_flags: 0,
            level_idc: 0,
            width: 0,
            height: 0,
            frame_rate: None,
        };
        let video = video_init_segment(&VideoInit {
            track_id: 0,
            timescale: 0,
            config: &VideoConfig::Avc(config.clone()),
            projection: Projection::EquirectStereoSbs,
            orientation: Orientation {
                yaw: f64::NAN,
                pitch: f64::MAX,
                roll: f64::MIN,
            },
        });
        assert!(child(path(&video, &STBL).body, b"stsd").body.len() > 78);
        let audio_config = AacConfig {
            asc: Bytes::new(),
            object_type: 0,
            sample_rate: 0,
            channels: 0,
        };
        let audio = audio_init_segment(&AudioInit {
            track_id: 0,
            config: &audio_config,
        });
        assert_eq!(entry_children(&audio, b"mp4a", 28), [*b"esds"]);
    }

    #[test]
    fn oversized_dimensions_saturate() {
        let mut config = avc_config();
        config.width = 100_000;
        config.height = u32::MAX;
        let init = video_init_segment(&VideoInit {
            track_id: u32::MAX,
            timescale: 0,
            config: &VideoConfig::Avc(config.clone()),
            projection: Projection::Equirect,
            orientation: Orientation::default(),
        });
        let tkhd = path(&init, &[b"moov", b"trak", b"tkhd"]).body;
        assert_eq!(u32_at(tkhd, 76), 0xFFFF_0000);
        let mvhd = path(&init, &[b"moov", b"mvhd"]).body;
        assert_eq!(u32_at(mvhd, 96), u32::MAX);
    }
}
