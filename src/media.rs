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
    /// A sync sample: an IDR frame for H.264; every AAC frame.
    pub keyframe: bool,
    /// Video: AVCC NAL units, each behind a 4-byte big-endian length.
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
    VideoConfig(Arc<AvcConfig>),
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
