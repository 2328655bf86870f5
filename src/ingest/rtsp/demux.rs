//! One RTSP session's depacketized frames → [`MediaEvent`]s.
//!
//! Pure and synchronous, like [`crate::ingest::demux`] for RTMP: retina does RTP
//! depacketization (RFC 6184 for H.264, RFC 3640 for AAC) and hands frames and codec
//! parameters in; this turns them into the units the packager takes. Video parameters
//! come as an `AVCDecoderConfigurationRecord` (retina builds it from the SDP's
//! `sprop-parameter-sets` or from in-band SPS/PPS) and are parsed by
//! [`crate::ingest::avc`]; a change of parameters mid-stream yields a new
//! [`MediaEvent::VideoConfig`]. Timestamps stay in the RTP clock of each track
//! (`AccessUnit::timebase` = 90 000 for H.264, the sample rate for AAC), measured from
//! the stream start that `RTP-Info` gives, so both tracks share an origin.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::timing::{DecodeTimes, TimestampJump};
use crate::ingest::aac::{self, AacError};
use crate::ingest::avc::{self, AvcError};
use crate::ingest::hevc::{self, HevcError};
use crate::media::{AacConfig, AccessUnit, MediaEvent, TrackKind, VideoCodec, VideoConfig};

/// Frame duration assumed for the reorder delay when the SPS gives no frame rate.
const FALLBACK_FPS: f64 = 30.0;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtspMediaError {
    #[error("video parameters: {0}")]
    VideoParameters(#[source] AvcError),
    #[error("H.265 video parameters: {0}")]
    HevcParameters(#[source] HevcError),
    #[error("video frame at {pts}: {source}")]
    VideoFrame {
        pts: i64,
        #[source]
        source: AvcError,
    },
    #[error("H.265 video frame at {pts}: {source}")]
    HevcFrame {
        pts: i64,
        #[source]
        source: HevcError,
    },
    /// Track selection ([`super::tracks`]) offers H.264 and H.265 only.
    #[error("video codec {0:?} is not taken from RTSP cameras")]
    UnsupportedCodec(VideoCodec),
    #[error("audio parameters: {0}")]
    AudioParameters(#[source] AacError),
    #[error(transparent)]
    Timestamp(#[from] TimestampJump),
}

/// Counters for the log line at the end of a session.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RtspDemuxStats {
    pub video_units: u64,
    pub audio_units: u64,
    /// Frames that came before their track's parameters and were dropped.
    pub before_config: u64,
    /// Video parameter changes after the first.
    pub parameter_changes: u64,
    /// RTP packets retina reported lost before a frame.
    pub lost_packets: u64,
}

struct Video {
    codec: VideoCodec,
    /// The record as retina gave it, to recognise repeats.
    received: Bytes,
    times: DecodeTimes,
}

/// Turns one session's frames into events.
#[derive(Default)]
pub struct RtspDemuxer {
    video: Option<Video>,
    audio: Option<Arc<AacConfig>>,
    /// The newest audio DTS handed on, for the non-decreasing clamp.
    audio_last: Option<i64>,
    stats: RtspDemuxStats,
}

impl RtspDemuxer {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn stats(&self) -> RtspDemuxStats {
        self.stats
    }

    /// The video track's decoder configuration record (`AVCDecoderConfigurationRecord`
    /// or, for H.265, `HEVCDecoderConfigurationRecord`, as retina builds them from the
    /// SDP and in-band parameter sets), at session start and again whenever retina
    /// reports new parameters. Returns an event only when it changed.
    pub fn video_parameters(
        &mut self,
        codec: VideoCodec,
        record: &[u8],
        clock_rate: u32,
    ) -> Result<Option<MediaEvent>, RtspMediaError> {
        if self
            .video
            .as_ref()
            .is_some_and(|v| v.codec == codec && v.received == record)
        {
            return Ok(None);
        }
        let received = Bytes::copy_from_slice(record);
        let (config, reorder) = match codec {
            VideoCodec::Avc => {
                let parsed = avc::parse_decoder_config(received.clone())
                    .map_err(RtspMediaError::VideoParameters)?;
                let reorder = parsed
                    .config
                    .sps
                    .first()
                    .and_then(|sps| avc::max_reorder_frames(sps));
                (VideoConfig::Avc(parsed.config), reorder)
            }
            VideoCodec::Hevc => {
                let parsed = hevc::parse_decoder_config(received.clone())
                    .map_err(RtspMediaError::HevcParameters)?;
                (VideoConfig::Hevc(parsed.config), parsed.max_num_reorder)
            }
            VideoCodec::Av1 => return Err(RtspMediaError::UnsupportedCodec(codec)),
        };
        let fps = config
            .frame_rate()
            .filter(|f| *f > 0.0)
            .unwrap_or(FALLBACK_FPS);
        let frame_ticks = (f64::from(clock_rate) / fps).round() as i64;
        let mut times = match self.video.take() {
            Some(previous) => {
                self.stats.parameter_changes += 1;
                previous.times
            }
            None => DecodeTimes::new(clock_rate),
        };
        times.announce_reorder(reorder.unwrap_or(0), frame_ticks);
        self.video = Some(Video {
            codec,
            received,
            times,
        });
        Ok(Some(MediaEvent::VideoConfig(Arc::new(config))))
    }

    /// One access unit: AVCC NAL units with 4-byte lengths, as retina gives them,
    /// presented at `pts` (RTP clock, wrap-extended).
    pub fn video_frame(
        &mut self,
        pts: i64,
        clock_rate: u32,
        data: Vec<u8>,
        lost_packets: u16,
        received: Instant,
    ) -> Result<Option<MediaEvent>, RtspMediaError> {
        self.stats.lost_packets += u64::from(lost_packets);
        let Some(video) = &mut self.video else {
            self.stats.before_config += 1;
            return Ok(None);
        };
        if data.is_empty() {
            return Ok(None);
        }
        // Checks the framing; the NAL types decide the keyframe flag, as for RTMP.
        let (data, idr) = match video.codec {
            VideoCodec::Avc => avc::to_four_byte_lengths(Bytes::from(data), 4)
                .map_err(|source| RtspMediaError::VideoFrame { pts, source })?,
            VideoCodec::Hevc => hevc::to_four_byte_lengths(Bytes::from(data), 4)
                .map_err(|source| RtspMediaError::HevcFrame { pts, source })?,
            VideoCodec::Av1 => return Err(RtspMediaError::UnsupportedCodec(video.codec)),
        };
        let dts = video.times.dts(pts)?;
        self.stats.video_units += 1;
        Ok(Some(MediaEvent::Unit(AccessUnit {
            kind: TrackKind::Video,
            dts,
            pts,
            timebase: clock_rate,
            keyframe: idr,
            data,
            received,
        })))
    }

    /// The audio track's `AudioSpecificConfig` (from the SDP `config=` parameter).
    pub fn audio_parameters(&mut self, asc: &[u8]) -> Result<Option<MediaEvent>, RtspMediaError> {
        if self.audio.as_ref().is_some_and(|c| c.asc == asc) {
            return Ok(None);
        }
        let config = Arc::new(
            aac::parse_audio_specific_config(Bytes::copy_from_slice(asc))
                .map_err(RtspMediaError::AudioParameters)?,
        );
        self.audio = Some(Arc::clone(&config));
        Ok(Some(MediaEvent::AudioConfig(config)))
    }

    /// One raw AAC frame at `timestamp` (RTP clock, wrap-extended).
    pub fn audio_frame(
        &mut self,
        timestamp: i64,
        clock_rate: u32,
        data: Bytes,
        lost_packets: u16,
        received: Instant,
    ) -> Option<MediaEvent> {
        self.stats.lost_packets += u64::from(lost_packets);
        if self.audio.is_none() {
            self.stats.before_config += 1;
            return None;
        }
        if data.is_empty() {
            return None;
        }
        // Audio has no reordering; DTS = PTS, held non-decreasing.
        let dts = self
            .audio_last
            .map_or(timestamp, |last| timestamp.max(last));
        self.audio_last = Some(dts);
        self.stats.audio_units += 1;
        Some(MediaEvent::Unit(AccessUnit {
            kind: TrackKind::Audio,
            dts,
            pts: dts,
            timebase: clock_rate,
            keyframe: true,
            data,
            received,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::avc::tests::X264_640X320_RECORD;

    fn unit(ev: Option<MediaEvent>) -> AccessUnit {
        match ev {
            Some(MediaEvent::Unit(u)) => u,
            other => panic!("expected a unit, got {other:?}"),
        }
    }

    #[test]
    fn video_parameters_then_frames() {
        let now = Instant::now();
        let mut d = RtspDemuxer::new();
        // A frame before any parameters is dropped.
        assert!(d
            .video_frame(0, 90_000, vec![0, 0, 0, 1, 0x41], 0, now)
            .unwrap()
            .is_none());
        let ev = d
            .video_parameters(VideoCodec::Avc, X264_640X320_RECORD, 90_000)
            .unwrap();
        assert!(matches!(ev, Some(MediaEvent::VideoConfig(c)) if c.width() == 640));
        // The same parameters again (retina repeats them) are not news.
        assert!(d
            .video_parameters(VideoCodec::Avc, X264_640X320_RECORD, 90_000)
            .unwrap()
            .is_none());
        let idr = unit(
            d.video_frame(90_000, 90_000, vec![0, 0, 0, 2, 0x65, 0x88], 0, now)
                .unwrap(),
        );
        assert!(idr.keyframe);
        assert_eq!((idr.timebase, idr.pts), (90_000, 90_000));
        assert!(idr.dts <= idr.pts);
        let p = unit(
            d.video_frame(93_000, 90_000, vec![0, 0, 0, 1, 0x41], 2, now)
                .unwrap(),
        );
        assert!(!p.keyframe);
        assert!(p.dts > idr.dts);
        let s = d.stats();
        assert_eq!((s.video_units, s.before_config, s.lost_packets), (2, 1, 2));
    }

    #[test]
    fn changed_parameters_are_followed() {
        let mut d = RtspDemuxer::new();
        d.video_parameters(VideoCodec::Avc, X264_640X320_RECORD, 90_000)
            .unwrap();
        // Same SPS/PPS, different level in the record header: a new config.
        let mut other = X264_640X320_RECORD.to_vec();
        other[3] = 0x1f;
        let ev = d.video_parameters(VideoCodec::Avc, &other, 90_000).unwrap();
        assert!(
            matches!(ev, Some(MediaEvent::VideoConfig(c)) if c.as_avc().is_some_and(|c| c.level_idc == 0x1f))
        );
        assert_eq!(d.stats().parameter_changes, 1);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let now = Instant::now();
        let mut d = RtspDemuxer::new();
        assert!(d
            .video_parameters(VideoCodec::Avc, &[1, 2, 3], 90_000)
            .is_err());
        assert!(d
            .video_parameters(VideoCodec::Hevc, &[1, 2, 3], 90_000)
            .is_err());
        d.video_parameters(VideoCodec::Avc, X264_640X320_RECORD, 90_000)
            .unwrap();
        let bad = d.video_frame(0, 90_000, vec![0, 0, 0, 9, 0x41], 0, now);
        assert!(matches!(bad, Err(RtspMediaError::VideoFrame { .. })));
        assert!(d.audio_parameters(&[0xf8, 0x01, 0x80]).is_err());
        for n in 0..X264_640X320_RECORD.len() {
            let _ = RtspDemuxer::new().video_parameters(
                VideoCodec::Avc,
                &X264_640X320_RECORD[..n],
                90_000,
            );
        }
    }

    #[test]
    fn audio_in_its_own_clock() {
        let now = Instant::now();
        let mut d = RtspDemuxer::new();
        assert!(d
            .audio_frame(0, 48_000, Bytes::from_static(&[0x21]), 0, now)
            .is_none());
        let ev = d.audio_parameters(&[0x11, 0x90]).unwrap();
        assert!(matches!(ev, Some(MediaEvent::AudioConfig(c)) if c.sample_rate == 48_000));
        let a = unit(d.audio_frame(1024, 48_000, Bytes::from_static(&[0x21]), 0, now));
        assert_eq!(
            (a.dts, a.pts, a.timebase, a.keyframe),
            (1024, 1024, 48_000, true)
        );
        // A step back is held.
        assert_eq!(
            unit(d.audio_frame(1000, 48_000, Bytes::from_static(&[0x21]), 0, now)).dts,
            1024
        );
        assert_eq!(
            unit(d.audio_frame(2048, 48_000, Bytes::from_static(&[0x21]), 0, now)).dts,
            2048
        );
    }

    #[test]
    fn h265_parameters_then_irap_frames() {
        use crate::ingest::hevc::tests::X265_640X320_RECORD;
        let now = Instant::now();
        let mut d = RtspDemuxer::new();
        let ev = d
            .video_parameters(VideoCodec::Hevc, X265_640X320_RECORD, 90_000)
            .unwrap();
        assert!(
            matches!(ev, Some(MediaEvent::VideoConfig(c)) if c.codec_string() == "hvc1.1.6.L63.90")
        );
        assert!(d
            .video_parameters(VideoCodec::Hevc, X265_640X320_RECORD, 90_000)
            .unwrap()
            .is_none());
        // A CRA picture (type 21) is a sync sample, a TRAIL_R (type 1) is not.
        let cra = vec![0, 0, 0, 2, 0x2a, 0x01];
        let ev = d.video_frame(0, 90_000, cra, 0, now).unwrap();
        assert!(matches!(ev, Some(MediaEvent::Unit(u)) if u.keyframe));
        let trail = vec![0, 0, 0, 2, 0x02, 0x01];
        let ev = d.video_frame(3000, 90_000, trail, 0, now).unwrap();
        assert!(matches!(ev, Some(MediaEvent::Unit(u)) if !u.keyframe));
        let broken = vec![0, 0, 0, 9, 0x02];
        assert!(matches!(
            d.video_frame(6000, 90_000, broken, 0, now),
            Err(RtspMediaError::HevcFrame { .. })
        ));
    }
}
