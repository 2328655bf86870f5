//! AAC decoder configuration: `AudioSpecificConfig` → [`AacConfig`]
//! (ISO/IEC 14496-3 1.6.2.1).
//!
//! Only the leading fields are read: object type, sampling frequency and channel
//! configuration. What follows them (GASpecificConfig, SBR/PS sync extensions) is kept
//! verbatim in `asc` for the `esds` box and left to decoders.

use bytes::Bytes;

use crate::media::AacConfig;

/// `samplingFrequencyIndex` values 0–12 (ISO/IEC 14496-3 table 1.16); 13 and 14 are
/// reserved, 15 means a 24-bit explicit rate follows.
const SAMPLING_FREQUENCIES: [u32; 13] = [
    96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000,
    7_350,
];
const EXPLICIT_FREQUENCY: u32 = 0xf;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AacError {
    #[error("AudioSpecificConfig truncated in {0}")]
    Truncated(&'static str),
    #[error("AudioSpecificConfig: audio object type {0} is not an AAC type")]
    ObjectType(u8),
    #[error("AudioSpecificConfig: reserved sampling frequency index {0}")]
    FrequencyIndex(u32),
    #[error("AudioSpecificConfig: sampling rate 0")]
    ZeroRate,
    #[error("AudioSpecificConfig: channel configuration {0} is not supported (0 needs a program config element)")]
    Channels(u32),
}

/// MSB-first bit reader over a byte slice.
struct Bits<'a> {
    buf: &'a [u8],
    bit: usize,
}

impl Bits<'_> {
    fn read(&mut self, n: u32, what: &'static str) -> Result<u32, AacError> {
        let mut v = 0u32;
        for _ in 0..n {
            let byte = self
                .buf
                .get(self.bit / 8)
                .ok_or(AacError::Truncated(what))?;
            let b = (byte >> (7 - self.bit % 8)) & 1;
            v = (v << 1) | u32::from(b);
            self.bit += 1;
        }
        Ok(v)
    }

    /// `GetAudioObjectType()` (1.6.2.1.1): 5 bits, 31 escapes to 32 + 6 more bits.
    fn object_type(&mut self) -> Result<u8, AacError> {
        let ot = self.read(5, "audioObjectType")?;
        let ot = if ot == 31 {
            32 + self.read(6, "audioObjectTypeExt")?
        } else {
            ot
        };
        // At most 32 + 63 = 95, so it fits.
        Ok(ot as u8)
    }

    fn frequency(&mut self) -> Result<u32, AacError> {
        let index = self.read(4, "samplingFrequencyIndex")?;
        let rate = if index == EXPLICIT_FREQUENCY {
            self.read(24, "samplingFrequency")?
        } else {
            let i = usize::try_from(index).map_err(|_| AacError::FrequencyIndex(index))?;
            *SAMPLING_FREQUENCIES
                .get(i)
                .ok_or(AacError::FrequencyIndex(index))?
        };
        if rate == 0 {
            return Err(AacError::ZeroRate);
        }
        Ok(rate)
    }
}

/// Parses an `AudioSpecificConfig`.
///
/// `object_type` is the signalled one, so explicitly signalled HE-AAC (5) and HE-AACv2
/// (29) keep their RFC 6381 codec string. `sample_rate` is the AAC core rate: each frame
/// is [`AacConfig::SAMPLES_PER_FRAME`] samples at that rate, also with SBR, whose output
/// runs at twice the rate.
pub fn parse_audio_specific_config(asc: Bytes) -> Result<AacConfig, AacError> {
    let mut bits = Bits { buf: &asc, bit: 0 };
    let object_type = bits.object_type()?;
    // 1 Main, 2 LC, 3 SSR, 4 LTP, 5 SBR, 6 scalable, 29 PS, 42 USAC would each need a
    // decoder that players may lack; accept the AAC family that MSE and Apple decode.
    if !matches!(object_type, 1..=6 | 29) {
        return Err(AacError::ObjectType(object_type));
    }
    let sample_rate = bits.frequency()?;
    let channel_config = bits.read(4, "channelConfiguration")?;
    // Table 1.19; 7 is 7.1 (8 channels). 0 defers to a program_config_element, which
    // no RTMP encoder we know of sends.
    let channels = match channel_config {
        1..=6 => channel_config as u8,
        7 => 8,
        other => return Err(AacError::Channels(other)),
    };
    Ok(AacConfig {
        asc,
        object_type,
        sample_rate,
        channels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ffmpeg 5.1's native AAC encoder, mono 48 kHz, with the backward-compatible SBR
    /// sync extension (0x2b7, SBR absent) after the core fields.
    const FFMPEG_48K_MONO: &[u8] = &[0x11, 0x88, 0x56, 0xe5, 0x00];

    #[test]
    fn parses_ffmpeg_config() {
        let c = parse_audio_specific_config(Bytes::from_static(FFMPEG_48K_MONO)).unwrap();
        assert_eq!(c.object_type, 2);
        assert_eq!(c.sample_rate, 48_000);
        assert_eq!(c.channels, 1);
        assert_eq!(c.codec_string(), "mp4a.40.2");
        assert_eq!(&c.asc[..], FFMPEG_48K_MONO);
    }

    #[test]
    fn lc_44k_stereo_and_explicit_rate() {
        let c = parse_audio_specific_config(Bytes::from_static(&[0x12, 0x10])).unwrap();
        assert_eq!((c.object_type, c.sample_rate, c.channels), (2, 44_100, 2));
        // LC, index 15, rate 0x00bb80 (48000), 2 channels:
        // 00010 1111 000000001011101110000000 0010 + padding
        let c = parse_audio_specific_config(Bytes::from_static(&[0x17, 0x80, 0x5d, 0xc0, 0x10]))
            .unwrap();
        assert_eq!((c.object_type, c.sample_rate, c.channels), (2, 48_000, 2));
    }

    #[test]
    fn escaped_object_type_is_refused() {
        // 11111 000000 → object type 32 (Layer-1), not AAC.
        assert_eq!(
            parse_audio_specific_config(Bytes::from_static(&[0xf8, 0x01, 0x80])),
            Err(AacError::ObjectType(32))
        );
    }

    #[test]
    fn rejects_reserved_index_and_pce() {
        // LC, index 13.
        assert_eq!(
            parse_audio_specific_config(Bytes::from_static(&[0x16, 0x90])),
            Err(AacError::FrequencyIndex(13))
        );
        // LC, 48 kHz, channel configuration 0.
        assert_eq!(
            parse_audio_specific_config(Bytes::from_static(&[0x11, 0x80])),
            Err(AacError::Channels(0))
        );
    }

    #[test]
    fn every_prefix_is_an_error_or_a_value() {
        for n in 0..FFMPEG_48K_MONO.len() {
            let r = parse_audio_specific_config(Bytes::copy_from_slice(&FFMPEG_48K_MONO[..n]));
            // Object type, index and channels fit in the first two bytes.
            assert_eq!(r.is_ok(), n >= 2, "prefix {n}: {r:?}");
        }
        let explicit = [0x17, 0x80, 0x5d, 0xc0, 0x10];
        for n in 0..explicit.len() {
            let r = parse_audio_specific_config(Bytes::copy_from_slice(&explicit[..n]));
            assert_eq!(r.is_ok(), n == 5, "prefix {n}: {r:?}");
        }
    }
}
