//! The one media unit that flows ingest → pipeline → packager.
//!
//! Every ingest protocol turns its wire format into [`MediaEvent`]s. Payloads are
//! [`Bytes`], so handing a unit to several consumers clones a reference count, never
//! the media. Codec parameters travel beside the units as their own events; a consumer
//! treats a config event as "the parameters changed from here on".

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use bytes::Bytes;

/// Ticks per second of RTMP/FLV timestamps (milliseconds).
pub const RTMP_TIMEBASE: u32 = 1000;

/// Which elementary stream a unit belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TrackKind {
    Video,
    Audio,
}

/// One encoded access unit: a whole video frame or one AAC frame.
#[derive(Clone, Debug)]
pub struct AccessUnit {
    pub kind: TrackKind,
    /// Decode timestamp in `timebase` ticks; wrap-extended and non-decreasing within
    /// one publish session.
    pub dts: i64,
    /// Presentation timestamp in `timebase` ticks (`dts` + composition offset; equal
    /// to `dts` for audio and for video without B-frames).
    pub pts: i64,
    /// Ticks per second of `dts` and `pts`.
    pub timebase: u32,
    /// A sync sample: an IDR frame for H.264; an IRAP picture (IDR, CRA, BLA) for
    /// HEVC; a key frame for AV1; every AAC frame.
    pub keyframe: bool,
    /// H.264 and HEVC: NAL units, each behind a 4-byte big-endian length.
    /// AV1: the temporal unit's OBUs in low-overhead format (with `obu_size`).
    /// Audio: one raw AAC frame (no ADTS header).
    pub data: Bytes,
    /// When the last byte of this unit arrived from the network; the latency
    /// measurements start here.
    pub received: Instant,
}

/// H.264 decoder configuration, parsed from an `AVCDecoderConfigurationRecord`.
#[derive(Clone, Debug, PartialEq)]
pub struct AvcConfig {
    /// The whole `AVCDecoderConfigurationRecord` as received, written into `avcC`.
    pub record: Bytes,
    /// Sequence parameter sets, without length prefixes.
    pub sps: Vec<Bytes>,
    /// Picture parameter sets, without length prefixes.
    pub pps: Vec<Bytes>,
    pub profile_idc: u8,
    pub constraint_flags: u8,
    pub level_idc: u8,
    /// Display size in pixels after cropping, from the first SPS.
    pub width: u32,
    pub height: u32,
    /// Frames per second from the SPS VUI timing info, when present.
    pub frame_rate: Option<f64>,
}

impl AvcConfig {
    /// The RFC 6381 codec string, derived from the SPS (`avc1.PPCCLL`).
    pub fn codec_string(&self) -> String {
        format!(
            "avc1.{:02x}{:02x}{:02x}",
            self.profile_idc, self.constraint_flags, self.level_idc
        )
    }
}

/// HEVC decoder configuration, parsed from an `HEVCDecoderConfigurationRecord`.
#[derive(Clone, Debug, PartialEq)]
pub struct HevcConfig {
    /// The whole record as received (NAL lengths rewritten to 4 bytes), written into
    /// `hvcC`: parameter sets live in the sample description, as Apple asks.
    pub record: Bytes,
    /// Video, sequence and picture parameter sets, without length prefixes.
    pub vps: Vec<Bytes>,
    pub sps: Vec<Bytes>,
    pub pps: Vec<Bytes>,
    /// `general_profile_space` (0..=3), `general_tier_flag`, `general_profile_idc`.
    pub profile_space: u8,
    pub high_tier: bool,
    pub profile_idc: u8,
    /// `general_profile_compatibility_flags`, bit 31 = flag 0.
    pub compatibility_flags: u32,
    /// The 48 bits of `general_constraint_indicator_flags`.
    pub constraint_flags: [u8; 6],
    /// `general_level_idc`: 30 × the level number (level 4.0 = 120).
    pub level_idc: u8,
    /// Display size in pixels after the conformance window, from the first SPS.
    pub width: u32,
    pub height: u32,
    /// Frames per second from the VPS timing info, when present.
    pub frame_rate: Option<f64>,
}

impl HevcConfig {
    /// The RFC 6381 codec string (ISO/IEC 14496-15 annex E.3):
    /// `hvc1.<space><profile>.<compatibility, bit-reversed hex>.<tier><level>[.<constraint bytes>]`,
    /// trailing zero constraint bytes left out.
    pub fn codec_string(&self) -> String {
        let space = match self.profile_space {
            1 => "A",
            2 => "B",
            3 => "C",
            _ => "",
        };
        let tier = if self.high_tier { 'H' } else { 'L' };
        let mut s = format!(
            "hvc1.{space}{}.{:X}.{tier}{}",
            self.profile_idc,
            self.compatibility_flags.reverse_bits(),
            self.level_idc
        );
        let used = self
            .constraint_flags
            .iter()
            .rposition(|&b| b != 0)
            .map_or(0, |i| i + 1);
        for b in &self.constraint_flags[..used] {
            s.push_str(&format!(".{b:X}"));
        }
        s
    }
}

/// AV1 decoder configuration, parsed from an `AV1CodecConfigurationRecord`.
#[derive(Clone, Debug, PartialEq)]
pub struct Av1Config {
    /// The whole record as received (with the sequence header OBU), written into `av1C`.
    pub record: Bytes,
    /// `seq_profile` (0 Main, 1 High, 2 Professional).
    pub profile: u8,
    /// `seq_level_idx_0`: (major − 2) × 4 + minor (level 4.0 = 8).
    pub level_idx: u8,
    /// `seq_tier_0`.
    pub high_tier: bool,
    /// 8, 10 or 12.
    pub bit_depth: u8,
    pub monochrome: bool,
    /// Maximum frame size from the sequence header.
    pub width: u32,
    pub height: u32,
    /// Frames per second from the sequence header's timing info, when present.
    pub frame_rate: Option<f64>,
}

impl Av1Config {
    /// The codec string of AV1-ISOBMFF §5 (`av01.<profile>.<level><tier>.<bit depth>`),
    /// the optional colour fields left out: players read them from the sequence header.
    pub fn codec_string(&self) -> String {
        let tier = if self.high_tier { 'H' } else { 'M' };
        format!(
            "av01.{}.{:02}{tier}.{:02}",
            self.profile, self.level_idx, self.bit_depth
        )
    }
}

/// The video codecs panocast ingests (FLV `CodecID` 7 or FourCC `avc1`, FourCC
/// `hvc1`, FourCC `av01`; RTP `H264`, `H265`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    Avc,
    Hevc,
    Av1,
}

/// The video codecs panocast packages, each with its decoder configuration.
#[derive(Clone, Debug, PartialEq)]
pub enum VideoConfig {
    Avc(AvcConfig),
    Hevc(HevcConfig),
    Av1(Av1Config),
}

impl VideoConfig {
    /// The RFC 6381 codec string for CODECS, derived from the bitstream.
    pub fn codec_string(&self) -> String {
        match self {
            VideoConfig::Avc(c) => c.codec_string(),
            VideoConfig::Hevc(c) => c.codec_string(),
            VideoConfig::Av1(c) => c.codec_string(),
        }
    }

    /// Display width in pixels.
    pub fn width(&self) -> u32 {
        match self {
            VideoConfig::Avc(c) => c.width,
            VideoConfig::Hevc(c) => c.width,
            VideoConfig::Av1(c) => c.width,
        }
    }

    /// Display height in pixels.
    pub fn height(&self) -> u32 {
        match self {
            VideoConfig::Avc(c) => c.height,
            VideoConfig::Hevc(c) => c.height,
            VideoConfig::Av1(c) => c.height,
        }
    }

    /// Frames per second the bitstream declares, when it does.
    pub fn frame_rate(&self) -> Option<f64> {
        match self {
            VideoConfig::Avc(c) => c.frame_rate,
            VideoConfig::Hevc(c) => c.frame_rate,
            VideoConfig::Av1(c) => c.frame_rate,
        }
    }

    /// The H.264 parameters, for consumers that handle H.264 only.
    pub fn as_avc(&self) -> Option<&AvcConfig> {
        match self {
            VideoConfig::Avc(c) => Some(c),
            _ => None,
        }
    }

    /// A short codec name for logs and error messages.
    pub fn codec_name(&self) -> &'static str {
        match self {
            VideoConfig::Avc(_) => "H.264",
            VideoConfig::Hevc(_) => "HEVC",
            VideoConfig::Av1(_) => "AV1",
        }
    }
}

impl From<AvcConfig> for VideoConfig {
    fn from(c: AvcConfig) -> Self {
        VideoConfig::Avc(c)
    }
}

impl From<HevcConfig> for VideoConfig {
    fn from(c: HevcConfig) -> Self {
        VideoConfig::Hevc(c)
    }
}

impl From<Av1Config> for VideoConfig {
    fn from(c: Av1Config) -> Self {
        VideoConfig::Av1(c)
    }
}

/// AAC decoder configuration, parsed from an `AudioSpecificConfig`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AacConfig {
    /// The whole `AudioSpecificConfig` as received, written into `esds`.
    pub asc: Bytes,
    /// MPEG-4 audio object type (2 = AAC-LC, 5 = HE-AAC).
    pub object_type: u8,
    pub sample_rate: u32,
    pub channels: u8,
}

impl AacConfig {
    /// The RFC 6381 codec string (`mp4a.40.<object type>`).
    pub fn codec_string(&self) -> String {
        format!("mp4a.40.{}", self.object_type)
    }

    /// Samples per channel in one AAC frame.
    pub const SAMPLES_PER_FRAME: u32 = 1024;
}

/// What an ingest hands on, in arrival order.
#[derive(Clone, Debug)]
pub enum MediaEvent {
    /// Video parameters from here on.
    VideoConfig(Arc<VideoConfig>),
    /// Audio parameters from here on.
    AudioConfig(Arc<AacConfig>),
    Unit(AccessUnit),
}

/// Wall-clock anchor of a publish session: media time `dts` corresponds to `wall`.
/// Kept apart from the media timestamps, which never jump with the wall clock.
#[derive(Clone, Copy, Debug)]
pub struct WallClockAnchor {
    pub wall: SystemTime,
    pub instant: Instant,
}

impl WallClockAnchor {
    pub fn now() -> Self {
        Self {
            wall: SystemTime::now(),
            instant: Instant::now(),
        }
    }

    /// The wall-clock time of a moment measured on the monotonic clock.
    pub fn wall_at(&self, at: Instant) -> SystemTime {
        match at.checked_duration_since(self.instant) {
            Some(after) => self.wall + after,
            None => self.wall - self.instant.duration_since(at),
        }
    }
}
