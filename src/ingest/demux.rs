//! One publish session's FLV tags → [`MediaEvent`]s.
//!
//! Pure and synchronous: the caller hands in each tag body with its RTMP timestamp and
//! the instant its bytes arrived, and gets back at most one event. Per-connection
//! state lives here: the current configs, the timestamp clock, and which tracks were
//! dropped for carrying a codec panocast does not take.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::aac::{self, AacError};
use super::av1::{self, Av1Error};
use super::avc::{self, AvcError};
use super::clock::SessionClock;
use super::flv::{self, AudioTag, FlvError, VideoCodec, VideoTag};
use super::hevc::{self, HevcError};
use crate::media::{AccessUnit, MediaEvent, TrackKind, VideoConfig, RTMP_TIMEBASE};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DemuxError {
    /// The track carries a codec panocast does not take. Returned once per track; the
    /// track's later tags are dropped without an error.
    #[error("{track:?} track dropped: {source}")]
    Unsupported {
        track: TrackKind,
        #[source]
        source: FlvError,
    },
    #[error("{track:?} tag at {timestamp} ms: {source}")]
    Flv {
        track: TrackKind,
        timestamp: u32,
        #[source]
        source: FlvError,
    },
    #[error("video tag at {timestamp} ms: {source}")]
    Avc {
        timestamp: u32,
        #[source]
        source: AvcError,
    },
    #[error("video tag at {timestamp} ms: {source}")]
    Hevc {
        timestamp: u32,
        #[source]
        source: HevcError,
    },
    #[error("video tag at {timestamp} ms: {source}")]
    Av1 {
        timestamp: u32,
        #[source]
        source: Av1Error,
    },
    #[error("audio tag at {timestamp} ms: {source}")]
    Aac {
        timestamp: u32,
        #[source]
        source: AacError,
    },
}

impl DemuxError {
    /// Whether the connection can go on: only a dropped track is survivable; a malformed
    /// tag means the encoder and we disagree about the stream, and every unit after it
    /// would be suspect.
    pub fn is_fatal(&self) -> bool {
        !matches!(
            self,
            DemuxError::Unsupported { .. }
                | DemuxError::Hevc {
                    source: HevcError::Unsupported(_),
                    ..
                }
                | DemuxError::Av1 {
                    source: Av1Error::Unsupported(_),
                    ..
                }
        )
    }
}

#[derive(Debug, Default)]
struct VideoState {
    dropped: bool,
    /// The record as received; the config's record may be rewritten (see
    /// [`avc::AvcDecoderConfig`]), so repeats are recognised by this one.
    received_record: Bytes,
    config: Option<VideoParams>,
}

/// What the sample path needs of the current video configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct VideoParams {
    codec: VideoCodec,
    /// The NAL length size (1, 2 or 4) the encoder uses in its samples; unused for AV1.
    nal_length_size: u8,
}

impl VideoParams {
    /// Parses a decoder configuration record of `codec`.
    fn parse(
        codec: VideoCodec,
        record: Bytes,
        timestamp: u32,
    ) -> Result<(Self, VideoConfig), DemuxError> {
        match codec {
            VideoCodec::Avc => {
                let parsed = avc::parse_decoder_config(record)
                    .map_err(|source| DemuxError::Avc { timestamp, source })?;
                let params = Self {
                    codec,
                    nal_length_size: parsed.nal_length_size,
                };
                Ok((params, VideoConfig::Avc(parsed.config)))
            }
            VideoCodec::Hevc => {
                let parsed = hevc::parse_decoder_config(record)
                    .map_err(|source| DemuxError::Hevc { timestamp, source })?;
                let params = Self {
                    codec,
                    nal_length_size: parsed.nal_length_size,
                };
                Ok((params, VideoConfig::Hevc(parsed.config)))
            }
            VideoCodec::Av1 => {
                let config = av1::parse_decoder_config(record)
                    .map_err(|source| DemuxError::Av1 { timestamp, source })?;
                let params = Self {
                    codec,
                    nal_length_size: 0,
                };
                Ok((params, VideoConfig::Av1(config)))
            }
        }
    }

    /// The sample with 4-byte NAL lengths (AV1: without temporal delimiters) and
    /// whether it is a sync sample: an IDR picture for H.264, an IRAP picture for HEVC,
    /// a shown key frame for AV1. The bitstream decides, not the FLV frame type: a
    /// segment must start where a decoder can.
    fn sample(&self, data: Bytes, timestamp: u32) -> Result<(Bytes, bool), DemuxError> {
        match self.codec {
            VideoCodec::Avc => avc::to_four_byte_lengths(data, self.nal_length_size)
                .map_err(|source| DemuxError::Avc { timestamp, source }),
            VideoCodec::Hevc => hevc::to_four_byte_lengths(data, self.nal_length_size)
                .map_err(|source| DemuxError::Hevc { timestamp, source }),
            VideoCodec::Av1 => {
                av1::to_sample(data).map_err(|source| DemuxError::Av1 { timestamp, source })
            }
        }
    }
}

#[derive(Debug, Default)]
struct AudioState {
    dropped: bool,
    config: Option<Arc<crate::media::AacConfig>>,
}

/// Counters for the log line at the end of a session.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DemuxStats {
    pub video_units: u64,
    pub audio_units: u64,
    /// Units that came before their track's config and were dropped.
    pub before_config: u64,
    /// Timestamps that went backwards and were held (see [`super::clock`]).
    pub clamped_timestamps: u64,
}

/// Turns one publish session's tags into events.
#[derive(Debug, Default)]
pub struct FlvDemuxer {
    clock: SessionClock,
    video: VideoState,
    audio: AudioState,
    stats: DemuxStats,
}

impl FlvDemuxer {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn stats(&self) -> DemuxStats {
        DemuxStats {
            clamped_timestamps: self.clock.clamped(),
            ..self.stats
        }
    }

    /// One RTMP video message body, stamped `timestamp` ms by the encoder.
    pub fn video(
        &mut self,
        body: &Bytes,
        timestamp: u32,
        received: Instant,
    ) -> Result<Option<MediaEvent>, DemuxError> {
        if self.video.dropped {
            return Ok(None);
        }
        let tag = match flv::parse_video(body) {
            Ok(tag) => tag,
            Err(source @ FlvError::UnsupportedVideoCodec(_)) => {
                self.video.dropped = true;
                return Err(DemuxError::Unsupported {
                    track: TrackKind::Video,
                    source,
                });
            }
            Err(source) => {
                return Err(DemuxError::Flv {
                    track: TrackKind::Video,
                    timestamp,
                    source,
                })
            }
        };
        match tag {
            VideoTag::SequenceHeader { codec, record } => {
                if record.is_empty() && codec != VideoCodec::Avc {
                    // An empty SequenceStart configures nothing; the legacy H.264 path
                    // keeps refusing an empty record as before.
                    return Ok(None);
                }
                if self.video.config.is_some() && self.video.received_record == record {
                    // Encoders repeat the header (OBS on each reconnect of its output,
                    // some on every keyframe); only a change is news downstream.
                    return Ok(None);
                }
                let (params, config) = VideoParams::parse(codec, record.clone(), timestamp)
                    .inspect_err(|e| {
                        // A stream we cannot package faithfully (4:2:2, MV-HEVC): the
                        // video track goes, said once; the audio stays live.
                        self.video.dropped = !e.is_fatal();
                    })?;
                self.video.received_record = record;
                self.video.config = Some(params);
                Ok(Some(MediaEvent::VideoConfig(Arc::new(config))))
            }
            VideoTag::Nalu {
                codec,
                composition_offset,
                data,
                ..
            } => {
                let Some(params) = self.video.config.filter(|p| p.codec == codec) else {
                    // Before the config, or frames of another codec than it announced.
                    self.stats.before_config += 1;
                    return Ok(None);
                };
                if data.is_empty() {
                    // ffmpeg's flv muxer writes empty packets at the end of some streams.
                    return Ok(None);
                }
                let (data, sync) = params.sample(data, timestamp)?;
                let dts = self.clock.dts(TrackKind::Video, timestamp);
                self.stats.video_units += 1;
                Ok(Some(MediaEvent::Unit(AccessUnit {
                    kind: TrackKind::Video,
                    dts,
                    pts: dts + i64::from(composition_offset),
                    timebase: RTMP_TIMEBASE,
                    keyframe: sync,
                    data,
                    received,
                })))
            }
            VideoTag::EndOfSequence | VideoTag::Command | VideoTag::Metadata => Ok(None),
        }
    }

    /// One RTMP audio message body, stamped `timestamp` ms by the encoder.
    pub fn audio(
        &mut self,
        body: &Bytes,
        timestamp: u32,
        received: Instant,
    ) -> Result<Option<MediaEvent>, DemuxError> {
        if self.audio.dropped {
            return Ok(None);
        }
        let tag = match flv::parse_audio(body) {
            Ok(tag) => tag,
            Err(source @ FlvError::UnsupportedAudioCodec(_)) => {
                self.audio.dropped = true;
                return Err(DemuxError::Unsupported {
                    track: TrackKind::Audio,
                    source,
                });
            }
            Err(source) => {
                return Err(DemuxError::Flv {
                    track: TrackKind::Audio,
                    timestamp,
                    source,
                })
            }
        };
        match tag {
            AudioTag::SequenceHeader(asc) => {
                if self.audio.config.as_ref().is_some_and(|c| c.asc == asc) {
                    return Ok(None);
                }
                let config = Arc::new(
                    aac::parse_audio_specific_config(asc)
                        .map_err(|source| DemuxError::Aac { timestamp, source })?,
                );
                self.audio.config = Some(Arc::clone(&config));
                Ok(Some(MediaEvent::AudioConfig(config)))
            }
            AudioTag::Raw(data) => {
                if self.audio.config.is_none() {
                    self.stats.before_config += 1;
                    return Ok(None);
                }
                if data.is_empty() {
                    return Ok(None);
                }
                let dts = self.clock.dts(TrackKind::Audio, timestamp);
                self.stats.audio_units += 1;
                Ok(Some(MediaEvent::Unit(AccessUnit {
                    kind: TrackKind::Audio,
                    dts,
                    pts: dts,
                    timebase: RTMP_TIMEBASE,
                    keyframe: true,
                    data,
                    received,
                })))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::avc::tests::X264_640X320_RECORD;

    fn video_header() -> Bytes {
        let mut body = vec![0x17, 0, 0, 0, 0];
        body.extend_from_slice(X264_640X320_RECORD);
        Bytes::from(body)
    }

    fn unit(ev: Option<MediaEvent>) -> AccessUnit {
        match ev {
            Some(MediaEvent::Unit(u)) => u,
            other => panic!("expected a unit, got {other:?}"),
        }
    }

    #[test]
    fn video_flow() {
        let now = Instant::now();
        let mut d = FlvDemuxer::new();
        // A frame before the config goes nowhere.
        let frame = Bytes::from_static(&[0x27, 1, 0, 0, 0x21, 0, 0, 0, 1, 0x41]);
        assert!(d.video(&frame, 0, now).unwrap().is_none());
        assert!(matches!(
            d.video(&video_header(), 0, now),
            Ok(Some(MediaEvent::VideoConfig(c))) if c.width() == 640
        ));
        // The same header again is not news.
        assert!(d.video(&video_header(), 0, now).unwrap().is_none());
        let idr = Bytes::from_static(&[0x17, 1, 0, 0, 0x43, 0, 0, 0, 2, 0x65, 0x88]);
        let u = unit(d.video(&idr, 0, now).unwrap());
        assert!(u.keyframe);
        assert_eq!((u.dts, u.pts, u.timebase), (0, 67, 1000));
        assert_eq!(&u.data[..], &[0, 0, 0, 2, 0x65, 0x88]);
        let u = unit(d.video(&frame, 33, now).unwrap());
        assert!(!u.keyframe);
        assert_eq!((u.dts, u.pts), (33, 66));
        assert_eq!(d.stats().video_units, 2);
        assert_eq!(d.stats().before_config, 1);
    }

    #[test]
    fn enhanced_rtmp_hevc_flow() {
        use crate::ingest::hevc::tests::X265_640X320_RECORD;
        let now = Instant::now();
        let mut d = FlvDemuxer::new();
        let empty_start = Bytes::from_static(&[0x90, b'h', b'v', b'c', b'1']);
        assert!(d.video(&empty_start, 0, now).unwrap().is_none());
        let mut start = empty_start.to_vec();
        start.extend_from_slice(X265_640X320_RECORD);
        let start = Bytes::from(start);
        assert!(matches!(
            d.video(&start, 0, now),
            Ok(Some(MediaEvent::VideoConfig(c)))
                if c.codec_string() == "hvc1.1.6.L63.90" && c.height() == 320
        ));
        assert!(d.video(&start, 0, now).unwrap().is_none());
        // A CRA picture (type 21) is a sync sample even with the FLV inter flag;
        // a TRAIL_R one (type 1) flagged key is not.
        let cra = Bytes::from_static(&[
            0xa1, b'h', b'v', b'c', b'1', 0, 0, 0x43, 0, 0, 0, 2, 0x2a, 0x01,
        ]);
        let u = unit(d.video(&cra, 0, now).unwrap());
        assert!(u.keyframe);
        assert_eq!((u.dts, u.pts), (0, 67));
        let trail = Bytes::from_static(&[0x93, b'h', b'v', b'c', b'1', 0, 0, 0, 2, 0x02, 0x01]);
        let u = unit(d.video(&trail, 33, now).unwrap());
        assert!(!u.keyframe);
        assert_eq!((u.dts, u.pts), (33, 33));
        // H.264 frames on a stream that announced HEVC go nowhere.
        let avc = Bytes::from_static(&[0x27, 1, 0, 0, 0, 0, 0, 0, 1, 0x41]);
        assert!(d.video(&avc, 66, now).unwrap().is_none());
        assert_eq!(d.stats().before_config, 1);
    }

    #[test]
    fn audio_flow_and_backward_step() {
        let now = Instant::now();
        let mut d = FlvDemuxer::new();
        let header = Bytes::from_static(&[0xaf, 0, 0x11, 0x88, 0x56, 0xe5, 0x00]);
        assert!(matches!(
            d.audio(&header, 0, now),
            Ok(Some(MediaEvent::AudioConfig(c))) if c.sample_rate == 48_000
        ));
        let frame = Bytes::from_static(&[0xaf, 1, 0x21, 0x10]);
        assert_eq!(unit(d.audio(&frame, 21, now).unwrap()).dts, 21);
        assert_eq!(unit(d.audio(&frame, 20, now).unwrap()).dts, 21);
        assert_eq!(unit(d.audio(&frame, 43, now).unwrap()).dts, 43);
        assert_eq!(d.stats().clamped_timestamps, 1);
    }

    #[test]
    fn unsupported_codec_is_reported_once_and_the_track_dropped() {
        let now = Instant::now();
        let mut d = FlvDemuxer::new();
        let mp3 = Bytes::from_static(&[0x2f, 0xff, 0xfb]);
        let err = d.audio(&mp3, 0, now).unwrap_err();
        assert!(!err.is_fatal());
        assert!(err.to_string().contains("MP3"), "{err}");
        assert!(d.audio(&mp3, 26, now).unwrap().is_none());
        // Video goes on.
        assert!(d.video(&video_header(), 0, now).unwrap().is_some());
    }

    #[test]
    fn malformed_tags_are_fatal() {
        let now = Instant::now();
        let mut d = FlvDemuxer::new();
        d.video(&video_header(), 0, now).unwrap();
        let bad_framing = Bytes::from_static(&[0x27, 1, 0, 0, 0, 0, 0, 0, 9, 0x41]);
        assert!(d.video(&bad_framing, 33, now).unwrap_err().is_fatal());
        let header = video_header();
        for n in 0..header.len() {
            let mut fresh = FlvDemuxer::new();
            // Every prefix either fails or yields a config; nothing panics.
            let r = fresh.video(&header.slice(..n), 0, now);
            assert!(r.is_err() || matches!(r, Ok(Some(MediaEvent::VideoConfig(_)))));
        }
    }

    #[test]
    fn unplayable_hevc_drops_the_video_track_once() {
        use crate::ingest::hevc::tests::X265_640X320_RECORD;
        let now = Instant::now();
        let mut d = FlvDemuxer::new();
        let mut start = vec![0x90, b'h', b'v', b'c', b'1'];
        start.extend_from_slice(X265_640X320_RECORD);
        start[5 + 58] |= 0x08; // the SPS of layer 1: stereo MV-HEVC
        let start = Bytes::from(start);
        let err = d.video(&start, 0, now).unwrap_err();
        assert!(!err.is_fatal(), "{err}");
        assert!(err.to_string().contains("MV-HEVC"), "{err}");
        // Said once: the track is gone, its later tags are ignored.
        assert!(d.video(&start, 33, now).unwrap().is_none());
        let mp3 = Bytes::from_static(&[0x2f, 0xff, 0xfb]);
        assert!(d.audio(&mp3, 0, now).is_err());
    }
}
