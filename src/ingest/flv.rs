//! FLV tag bodies as RTMP carries them: the payload of an RTMP video message (type 9) is
//! an FLV `VIDEODATA` body and that of an audio message (type 8) an `AUDIODATA` body
//! (Adobe FLV and F4V File Format Specification v10.1, annex E.4.2 and E.4.3).
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
    #[error("unsupported video codec {0}; only H.264 (FLV codec id 7) is accepted")]
    UnsupportedVideoCodec(String),
    #[error("unsupported audio codec {0}; only AAC (FLV sound format 10) is accepted")]
    UnsupportedAudioCodec(String),
    #[error("invalid {what}: {value}")]
    Invalid { what: &'static str, value: u32 },
}

/// One parsed `VIDEODATA` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoTag {
    /// `AVCPacketType` 0: an `AVCDecoderConfigurationRecord` (ISO/IEC 14496-15 5.3.3.1).
    SequenceHeader(Bytes),
    /// `AVCPacketType` 1: one access unit of length-prefixed NAL units.
    Nalu {
        /// `FrameType` 1 (key frame) on the wire. Encoders set it for IDR pictures; the
        /// demuxer still looks at the NAL types itself.
        key_flag: bool,
        /// `CompositionTime`: pts − dts in milliseconds, signed 24 bits. Positive when
        /// B-frames reorder (libx264 and OBS defaults).
        composition_offset: i32,
        data: Bytes,
    },
    /// `AVCPacketType` 2: end of sequence, carries nothing.
    EndOfSequence,
    /// `FrameType` 5: a seek marker for Flash clients, carries no picture.
    Command,
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

/// Parses an FLV `VIDEODATA` body (E.4.3.1) that must hold AVC.
pub fn parse_video(body: &Bytes) -> Result<VideoTag, FlvError> {
    need(body, 1, "video tag header")?;
    let first = body[0];
    if first & VIDEO_EX_HEADER != 0 {
        // Enhanced RTMP: [IsExHeader:1][FrameType:3][PacketType:4][FourCC:4 bytes].
        // Naming the FourCC makes the log line say which encoder setting to change.
        let fourcc = match body.get(1..5) {
            Some(cc) => format!("'{}' (enhanced RTMP)", String::from_utf8_lossy(cc)),
            None => "(enhanced RTMP header)".to_owned(),
        };
        return Err(FlvError::UnsupportedVideoCodec(fourcc));
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
        0 => Ok(VideoTag::SequenceHeader(body.slice(5..))),
        1 => {
            let raw = u32::from_be_bytes([0, body[2], body[3], body[4]]);
            // Sign-extend the 24-bit value: shift it to the top of an i32 and back.
            let composition_offset = ((raw << 8) as i32) >> 8;
            Ok(VideoTag::Nalu {
                key_flag: frame_type == 1,
                composition_offset,
                data: body.slice(5..),
            })
        }
        2 => Ok(VideoTag::EndOfSequence),
        other => Err(FlvError::Invalid {
            what: "AVCPacketType",
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
            Ok(VideoTag::SequenceHeader(Bytes::from_static(&[
                1, 0x64, 0, 0x1f
            ])))
        );
    }

    #[test]
    fn avc_nalu_with_positive_and_negative_composition_offset() {
        let body = Bytes::from_static(&[0x27, 1, 0, 0, 0x50, 0, 0, 0, 1, 0x41]);
        assert_eq!(
            parse_video(&body),
            Ok(VideoTag::Nalu {
                key_flag: false,
                composition_offset: 80,
                data: Bytes::from_static(&[0, 0, 0, 1, 0x41]),
            })
        );
        let body = Bytes::from_static(&[0x17, 1, 0xff, 0xff, 0xd8]);
        assert_eq!(
            parse_video(&body),
            Ok(VideoTag::Nalu {
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
        // Enhanced RTMP: key frame, PacketType 0, FourCC hvc1.
        let hevc = parse_video(&Bytes::from_static(&[0x90, b'h', b'v', b'c', b'1', 1]));
        assert!(matches!(hevc, Err(FlvError::UnsupportedVideoCodec(ref s)) if s.contains("hvc1")));
        assert!(matches!(
            parse_video(&Bytes::from_static(&[0x90])),
            Err(FlvError::UnsupportedVideoCodec(_))
        ));
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
