//! FLV tag bodies as RTMP carries them: the payload of an RTMP video message (type 9) is
//! an FLV `VIDEODATA` body and that of an audio message (type 8) an `AUDIODATA` body
//! (Adobe FLV and F4V File Format Specification v10.1, annex E.4.2 and E.4.3), or, with
//! bit 7 of the first video byte set, an Enhanced RTMP extended video tag header
//! (Veovera "Enhanced RTMP" v1 and v2, section "Extended VideoTagHeader") naming its
//! codec by FourCC.
//!
//! Pure syntax, no state: [`parse_video`] and [`parse_audio`] split a body into its
//! header fields and a zero-copy slice of the payload. What the payload means (which
//! config is current, which clock a timestamp runs on) is [`super::demux`]'s job.

use bytes::Bytes;

/// FLV `CodecID` of AVC (E.4.3.1).
const CODEC_AVC: u8 = 7;
/// FLV `SoundFormat` of AAC (E.4.2.1).
const SOUND_AAC: u8 = 10;
/// Enhanced RTMP (v1, 2023): bit 7 of the first video byte announces an extended header
/// with a FourCC instead of the 4-bit `CodecID`.
const VIDEO_EX_HEADER: u8 = 0x80;
/// Enhanced RTMP `VideoPacketType`s.
const PACKET_SEQUENCE_START: u8 = 0;
const PACKET_CODED_FRAMES: u8 = 1;
const PACKET_SEQUENCE_END: u8 = 2;
/// Coded frames whose composition time is 0, so the SI24 field is left out.
const PACKET_CODED_FRAMES_X: u8 = 3;
const PACKET_METADATA: u8 = 4;
const PACKET_MPEG2TS_SEQUENCE_START: u8 = 5;
const PACKET_MULTITRACK: u8 = 6;
/// v2: a modifier extension (a timestamp offset in nanoseconds) before the real type.
const PACKET_MOD_EX: u8 = 7;
/// v2 `VideoPacketModExType` 0: `modExData` is a UI24 nanosecond timestamp offset.
const MOD_EX_TIMESTAMP_OFFSET_NANO: u8 = 0;
/// Enhanced RTMP v2: `SoundFormat` 9 announces an extended audio header.
const SOUND_EX_HEADER: u8 = 9;
/// `FrameType` 5: a video info/command frame, one byte with no picture (E.4.3.1).
const FRAME_COMMAND: u8 = 5;

/// A malformed or unsupported tag body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlvError {
    #[error("{what} truncated: need {need} bytes, have {have}")]
    Truncated {
        what: &'static str,
        need: usize,
        have: usize,
    },
    #[error("unsupported video codec {0}; H.264 (FLV codec id 7 or FourCC avc1), HEVC (FourCC hvc1) and AV1 (FourCC av01) are accepted")]
    UnsupportedVideoCodec(String),
    #[error("unsupported audio codec {0}; only AAC (FLV sound format 10) is accepted")]
    UnsupportedAudioCodec(String),
    #[error("invalid {what}: {value}")]
    Invalid { what: &'static str, value: u32 },
}

pub use crate::media::VideoCodec;

/// One parsed `VIDEODATA` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoTag {
    /// `AVCPacketType` 0 / `SequenceStart`: the decoder configuration record
    /// (`AVCDecoderConfigurationRecord` or `HEVCDecoderConfigurationRecord`, ISO/IEC
    /// 14496-15 5.3.3.1 and 8.3.3.1; `AV1CodecConfigurationRecord`, AV1-ISOBMFF 2.3).
    /// ffmpeg 7 sends an empty one before the real one.
    SequenceHeader { codec: VideoCodec, record: Bytes },
    /// `AVCPacketType` 1 / `CodedFrames` / `CodedFramesX`: one access unit of
    /// length-prefixed NAL units, or for AV1 one temporal unit of OBUs.
    Nalu {
        codec: VideoCodec,
        /// `FrameType` 1 (key frame) on the wire. Encoders set it for IDR pictures; the
        /// demuxer still looks at the NAL types itself.
        key_flag: bool,
        /// `CompositionTime`: pts − dts in milliseconds, signed 24 bits. Positive when
        /// B-frames reorder (libx264 and OBS defaults).
        composition_offset: i32,
        data: Bytes,
    },
    /// `AVCPacketType` 2 / `SequenceEnd`: end of sequence, carries nothing.
    EndOfSequence,
    /// `FrameType` 5: a seek marker for Flash clients, carries no picture.
    Command,
    /// Enhanced RTMP `Metadata`: an AMF-encoded `colorInfo` object (HDR mastering
    /// data). Not interpreted: the colour description travels in the bitstream's VUI.
    Metadata,
}

/// One parsed `AUDIODATA` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioTag {
    /// `AACPacketType` 0: an `AudioSpecificConfig` (ISO/IEC 14496-3 1.6.2.1).
    SequenceHeader(Bytes),
    /// `AACPacketType` 1: one raw AAC frame (no ADTS header).
    Raw(Bytes),
}

fn need(body: &Bytes, n: usize, what: &'static str) -> Result<(), FlvError> {
    if body.len() < n {
        return Err(FlvError::Truncated {
            what,
            need: n,
            have: body.len(),
        });
    }
    Ok(())
}

/// Parses an FLV `VIDEODATA` body (E.4.3.1) that must hold AVC, or an Enhanced RTMP
/// body with FourCC `avc1`, `hvc1` or `av01`.
pub fn parse_video(body: &Bytes) -> Result<VideoTag, FlvError> {
    need(body, 1, "video tag header")?;
    let first = body[0];
    if first & VIDEO_EX_HEADER != 0 {
        return parse_enhanced_video(body);
    }
    let frame_type = first >> 4;
    let codec_id = first & 0x0f;
    if frame_type == FRAME_COMMAND {
        return Ok(VideoTag::Command);
    }
    if codec_id != CODEC_AVC {
        return Err(FlvError::UnsupportedVideoCodec(video_codec_name(codec_id)));
    }
    // AVCVIDEOPACKET: AVCPacketType UI8, CompositionTime SI24, then the data.
    need(body, 5, "AVC video packet header")?;
    match body[1] {
        0 => Ok(VideoTag::SequenceHeader {
            codec: VideoCodec::Avc,
            record: body.slice(5..),
        }),
        1 => Ok(VideoTag::Nalu {
            codec: VideoCodec::Avc,
            key_flag: frame_type == 1,
            composition_offset: si24(&body[2..5]),
            data: body.slice(5..),
        }),
        2 => Ok(VideoTag::EndOfSequence),
        other => Err(FlvError::Invalid {
            what: "AVCPacketType",
            value: u32::from(other),
        }),
    }
}

/// A signed 24-bit big-endian value (`SI24`).
fn si24(b: &[u8]) -> i32 {
    let raw = u32::from_be_bytes([0, b[0], b[1], b[2]]);
    // Sign-extend: shift the value to the top of an i32 and back.
    ((raw << 8) as i32) >> 8
}

/// The Enhanced RTMP extended header: `[IsExHeader:1][FrameType:3][PacketType:4]`, v2's
/// `ModEx` prefixes, then the FourCC and the packet body.
fn parse_enhanced_video(body: &Bytes) -> Result<VideoTag, FlvError> {
    let frame_type = (body[0] >> 4) & 0b111;
    let mut packet_type = body[0] & 0x0f;
    let mut pos = 1;
    while packet_type == PACKET_MOD_EX {
        // modExDataSize: UI8 + 1, and UI16 + 1 when the byte says 256.
        need(body, pos + 1, "ModEx data size")?;
        let mut size = usize::from(body[pos]) + 1;
        pos += 1;
        if size == 256 {
            need(body, pos + 2, "ModEx data size")?;
            size = usize::from(u16::from_be_bytes([body[pos], body[pos + 1]])) + 1;
            pos += 2;
        }
        need(body, pos + size + 1, "ModEx data")?;
        let mod_ex_type = body[pos + size] >> 4;
        if mod_ex_type == MOD_EX_TIMESTAMP_OFFSET_NANO && size < 3 {
            return Err(FlvError::Invalid {
                what: "TimestampOffsetNano size",
                value: size as u32,
            });
        }
        // The nanosecond offset refines a millisecond timestamp by less than one
        // millisecond: below the RTMP timebase every unit carries, so it is skipped.
        packet_type = body[pos + size] & 0x0f;
        pos += size + 1;
    }
    if frame_type == FRAME_COMMAND && packet_type != PACKET_METADATA {
        return Ok(VideoTag::Command);
    }
    if packet_type == PACKET_MULTITRACK {
        return Err(FlvError::UnsupportedVideoCodec(
            "enhanced RTMP multitrack video (one track per connection is accepted)".to_owned(),
        ));
    }
    need(body, pos + 4, "enhanced RTMP FourCC")?;
    let fourcc = &body[pos..pos + 4];
    pos += 4;
    let codec = match fourcc {
        b"avc1" => VideoCodec::Avc,
        b"hvc1" => VideoCodec::Hevc,
        b"av01" => VideoCodec::Av1,
        // Naming the FourCC makes the log line say which encoder setting to change.
        other => {
            return Err(FlvError::UnsupportedVideoCodec(format!(
                "'{}' (enhanced RTMP)",
                String::from_utf8_lossy(other)
            )))
        }
    };
    match packet_type {
        PACKET_SEQUENCE_START => Ok(VideoTag::SequenceHeader {
            codec,
            record: body.slice(pos..),
        }),
        // AV1 has no reordering delay to signal: its CodedFrames carry no composition
        // time, so they read like CodedFramesX.
        PACKET_CODED_FRAMES if codec == VideoCodec::Av1 => Ok(VideoTag::Nalu {
            codec,
            key_flag: frame_type == 1,
            composition_offset: 0,
            data: body.slice(pos..),
        }),
        PACKET_CODED_FRAMES => {
            // avc1 and hvc1 carry a composition time here (the spec's CodedFrames).
            need(body, pos + 3, "CodedFrames composition time")?;
            Ok(VideoTag::Nalu {
                codec,
                key_flag: frame_type == 1,
                composition_offset: si24(&body[pos..pos + 3]),
                data: body.slice(pos + 3..),
            })
        }
        PACKET_CODED_FRAMES_X => Ok(VideoTag::Nalu {
            codec,
            key_flag: frame_type == 1,
            composition_offset: 0,
            data: body.slice(pos..),
        }),
        PACKET_SEQUENCE_END => Ok(VideoTag::EndOfSequence),
        PACKET_METADATA => Ok(VideoTag::Metadata),
        PACKET_MPEG2TS_SEQUENCE_START => Err(FlvError::UnsupportedVideoCodec(
            "enhanced RTMP MPEG2TSSequenceStart (send an av1C SequenceStart)".to_owned(),
        )),
        other => Err(FlvError::Invalid {
            what: "enhanced RTMP VideoPacketType",
            value: u32::from(other),
        }),
    }
}

/// Parses an FLV `AUDIODATA` body (E.4.2.1) that must hold AAC.
///
/// The rate, size and channel bits of the first byte are ignored for AAC: the spec fixes
/// them (44 kHz, 16 bit, stereo) and decoders take the real values from the
/// `AudioSpecificConfig`.
pub fn parse_audio(body: &Bytes) -> Result<AudioTag, FlvError> {
    need(body, 1, "audio tag header")?;
    let format = body[0] >> 4;
    if format != SOUND_AAC {
        return Err(FlvError::UnsupportedAudioCodec(audio_codec_name(format)));
    }
    need(body, 2, "AAC audio packet header")?;
    match body[1] {
        0 => Ok(AudioTag::SequenceHeader(body.slice(2..))),
        1 => Ok(AudioTag::Raw(body.slice(2..))),
        other => Err(FlvError::Invalid {
            what: "AACPacketType",
            value: u32::from(other),
        }),
    }
}

fn video_codec_name(id: u8) -> String {
    let name = match id {
        2 => "Sorenson H.263",
        3 => "Screen video",
        4 => "On2 VP6",
        5 => "On2 VP6 with alpha",
        6 => "Screen video v2",
        // Not in the Adobe spec; Chinese CDNs' pre-enhanced-RTMP HEVC extension.
        12 => "HEVC (non-standard codec id 12)",
        _ => "unknown",
    };
    format!("{name} (FLV codec id {id})")
}

fn audio_codec_name(format: u8) -> String {
    let name = match format {
        0 => "linear PCM (platform endian)",
        1 => "ADPCM",
        2 => "MP3",
        3 => "linear PCM (little endian)",
        4..=6 => "Nellymoser",
        7 => "G.711 A-law",
        8 => "G.711 mu-law",
        SOUND_EX_HEADER => "enhanced RTMP audio (Opus, FLAC, AC-3 ...)",
        11 => "Speex",
        14 => "MP3 8 kHz",
        15 => "device-specific",
        _ => "reserved",
    };
    format!("{name} (FLV sound format {format})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avc_sequence_header() {
        let body = Bytes::from_static(&[0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f]);
        assert_eq!(
            parse_video(&body),
            Ok(VideoTag::SequenceHeader {
                codec: VideoCodec::Avc,
                record: Bytes::from_static(&[1, 0x64, 0, 0x1f])
            })
        );
    }

    #[test]
    fn avc_nalu_with_positive_and_negative_composition_offset() {
        let body = Bytes::from_static(&[0x27, 1, 0, 0, 0x50, 0, 0, 0, 1, 0x41]);
        assert_eq!(
            parse_video(&body),
            Ok(VideoTag::Nalu {
                codec: VideoCodec::Avc,
                key_flag: false,
                composition_offset: 80,
                data: Bytes::from_static(&[0, 0, 0, 1, 0x41]),
            })
        );
        let body = Bytes::from_static(&[0x17, 1, 0xff, 0xff, 0xd8]);
        assert_eq!(
            parse_video(&body),
            Ok(VideoTag::Nalu {
                codec: VideoCodec::Avc,
                key_flag: true,
                composition_offset: -40,
                data: Bytes::new(),
            })
        );
    }

    #[test]
    fn end_of_sequence_and_command_frames() {
        assert_eq!(
            parse_video(&Bytes::from_static(&[0x17, 2, 0, 0, 0])),
            Ok(VideoTag::EndOfSequence)
        );
        assert_eq!(
            parse_video(&Bytes::from_static(&[0x57, 0])),
            Ok(VideoTag::Command)
        );
    }

    #[test]
    fn refuses_other_video_codecs() {
        let vp6 = parse_video(&Bytes::from_static(&[0x14, 0, 0]));
        assert!(matches!(vp6, Err(FlvError::UnsupportedVideoCodec(ref s)) if s.contains("VP6")));
        // Enhanced RTMP: key frame, PacketType 0, FourCC vp09.
        let vp9 = parse_video(&Bytes::from_static(&[0x90, b'v', b'p', b'0', b'9', 1]));
        assert!(matches!(vp9, Err(FlvError::UnsupportedVideoCodec(ref s)) if s.contains("vp09")));
        assert!(matches!(
            parse_video(&Bytes::from_static(&[0x90])),
            Err(FlvError::Truncated { .. })
        ));
        let multitrack = parse_video(&Bytes::from_static(&[0x96, 0x10, b'h', b'v', b'c', b'1']));
        assert!(
            matches!(multitrack, Err(FlvError::UnsupportedVideoCodec(ref s)) if s.contains("multitrack"))
        );
    }

    /// The tags ffmpeg 7's FLV muxer writes for libx265 (first bytes of each, as
    /// captured): SequenceStart, Metadata with frame type 5, CodedFrames of a key frame
    /// with a composition time of 67 ms, CodedFramesX of a B-frame.
    #[test]
    fn enhanced_rtmp_hevc_tags() {
        let start = Bytes::from_static(&[0x90, b'h', b'v', b'c', b'1', 1, 1, 0x60]);
        assert_eq!(
            parse_video(&start),
            Ok(VideoTag::SequenceHeader {
                codec: VideoCodec::Hevc,
                record: Bytes::from_static(&[1, 1, 0x60])
            })
        );
        let metadata = Bytes::from_static(&[0xd4, b'h', b'v', b'c', b'1', 2, 0, 9]);
        assert_eq!(parse_video(&metadata), Ok(VideoTag::Metadata));
        let key = Bytes::from_static(&[0x91, b'h', b'v', b'c', b'1', 0, 0, 0x43, 0, 0, 0, 1, 0x26]);
        assert_eq!(
            parse_video(&key),
            Ok(VideoTag::Nalu {
                codec: VideoCodec::Hevc,
                key_flag: true,
                composition_offset: 67,
                data: Bytes::from_static(&[0, 0, 0, 1, 0x26]),
            })
        );
        let b_frame = Bytes::from_static(&[0xa3, b'h', b'v', b'c', b'1', 0, 0, 0, 1, 0x02]);
        assert_eq!(
            parse_video(&b_frame),
            Ok(VideoTag::Nalu {
                codec: VideoCodec::Hevc,
                key_flag: false,
                composition_offset: 0,
                data: Bytes::from_static(&[0, 0, 0, 1, 0x02]),
            })
        );
        let end = Bytes::from_static(&[0x92, b'a', b'v', b'c', b'1']);
        assert_eq!(parse_video(&end), Ok(VideoTag::EndOfSequence));
    }

    /// ffmpeg 7's FLV muxer for libaom: an `av01` CodedFrames tag has no composition
    /// time; the OBUs (a sequence header, size 11) follow the FourCC at once.
    #[test]
    fn enhanced_rtmp_av1_coded_frames_have_no_composition_time() {
        let key = Bytes::from_static(&[0x91, b'a', b'v', b'0', b'1', 0x0a, 0x0b, 0, 0]);
        assert_eq!(
            parse_video(&key),
            Ok(VideoTag::Nalu {
                codec: VideoCodec::Av1,
                key_flag: true,
                composition_offset: 0,
                data: Bytes::from_static(&[0x0a, 0x0b, 0, 0]),
            })
        );
        let start = Bytes::from_static(&[0x90, b'a', b'v', b'0', b'1', 0x81, 1, 0x0c, 0]);
        assert_eq!(
            parse_video(&start),
            Ok(VideoTag::SequenceHeader {
                codec: VideoCodec::Av1,
                record: Bytes::from_static(&[0x81, 1, 0x0c, 0])
            })
        );
    }

    #[test]
    fn enhanced_rtmp_v2_mod_ex_prefix_is_skipped() {
        // ModEx (7) with 3 bytes of TimestampOffsetNano (type 0), then CodedFramesX.
        let body = Bytes::from_static(&[
            0xa7, 2, 0x0f, 0x42, 0x3f, 0x03, b'h', b'v', b'c', b'1', 0, 0, 0, 1, 0x02,
        ]);
        assert!(matches!(
            parse_video(&body),
            Ok(VideoTag::Nalu {
                codec: VideoCodec::Hevc,
                composition_offset: 0,
                ..
            })
        ));
        for n in 0..10 {
            assert!(
                matches!(
                    parse_video(&body.slice(..n)),
                    Err(FlvError::Truncated { .. })
                ),
                "prefix {n}"
            );
        }
    }

    #[test]
    fn aac_tags() {
        assert_eq!(
            parse_audio(&Bytes::from_static(&[0xaf, 0, 0x11, 0x90])),
            Ok(AudioTag::SequenceHeader(Bytes::from_static(&[0x11, 0x90])))
        );
        assert_eq!(
            parse_audio(&Bytes::from_static(&[0xaf, 1, 0x21, 0x10])),
            Ok(AudioTag::Raw(Bytes::from_static(&[0x21, 0x10])))
        );
        assert!(matches!(
            parse_audio(&Bytes::from_static(&[0xaf, 7])),
            Err(FlvError::Invalid { .. })
        ));
    }

    #[test]
    fn refuses_other_audio_codecs() {
        let mp3 = parse_audio(&Bytes::from_static(&[0x2f, 0xff]));
        assert!(matches!(mp3, Err(FlvError::UnsupportedAudioCodec(ref s)) if s.contains("MP3")));
    }

    #[test]
    fn every_enhanced_prefix_is_an_error_or_a_value() {
        let key = Bytes::from_static(&[0x91, b'h', b'v', b'c', b'1', 0, 0, 0x43, 0, 0, 0, 1, 0x26]);
        for n in 0..key.len() {
            assert_eq!(parse_video(&key.slice(..n)).is_ok(), n >= 8, "prefix {n}");
        }
    }

    #[test]
    fn every_prefix_is_an_error_or_a_value() {
        let video = Bytes::from_static(&[0x27, 1, 0, 0, 0x50, 0, 0, 0, 1, 0x41]);
        let audio = Bytes::from_static(&[0xaf, 1, 0x21, 0x10]);
        for n in 0..video.len() {
            let prefix = video.slice(..n);
            if n < 5 {
                assert!(matches!(
                    parse_video(&prefix),
                    Err(FlvError::Truncated { .. })
                ));
            } else {
                assert!(parse_video(&prefix).is_ok());
            }
        }
        for n in 0..audio.len() {
            let r = parse_audio(&audio.slice(..n));
            assert_eq!(r.is_err(), n < 2, "prefix {n}");
        }
    }
}
