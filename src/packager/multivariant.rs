//! The multivariant playlist of a stream, rendered with m3u8-rs.

use std::collections::HashMap;

use m3u8_rs::{
    AlternativeMedia, AlternativeMediaType, ClosedCaptionGroupId, MasterPlaylist, QuotedOrUnquoted,
    Resolution, VariantStream,
};

use crate::media::{AacConfig, VideoConfig};
use crate::streams::Projection;

/// The audio group every video variant refers to.
const AUDIO_GROUP: &str = "aud";

/// What the multivariant playlist says of one video rendition.
pub struct VideoVariant<'a> {
    /// Playlist URI, relative to the multivariant playlist.
    pub uri: &'a str,
    pub config: &'a VideoConfig,
    /// Peak and average bits per second of the video alone.
    pub bitrates: (u64, u64),
    /// Measured when the bitstream carries no timing info.
    pub measured_frame_rate: Option<f64>,
    pub projection: Projection,
}

/// What the multivariant playlist says of one audio rendition.
pub struct AudioVariant<'a> {
    pub uri: &'a str,
    pub config: &'a AacConfig,
    pub bitrates: (u64, u64),
}

/// Renders the playlist. Every video variant plays with the first audio rendition
/// (the source AAC, the audio group); video variants come in ascending bandwidth, then
/// one audio-only variant per audio rendition. `None` when there is nothing to play.
pub fn render(videos: &[VideoVariant<'_>], audios: &[AudioVariant<'_>]) -> Option<String> {
    if videos.is_empty() && audios.is_empty() {
        return None;
    }
    let mut playlist = MasterPlaylist {
        version: Some(9),
        independent_segments: true,
        ..Default::default()
    };
    let main_audio = audios.first();
    if let Some(a) = main_audio {
        playlist.alternatives.push(AlternativeMedia {
            media_type: AlternativeMediaType::Audio,
            uri: Some(a.uri.into()),
            group_id: AUDIO_GROUP.into(),
            name: "main".into(),
            default: true,
            autoselect: true,
            channels: Some(a.config.channels.to_string()),
            ..Default::default()
        });
    }
    let mut video_variants: Vec<VariantStream> = videos
        .iter()
        .map(|v| video_variant(v, main_audio, &mut playlist.version))
        .collect();
    video_variants.sort_by_key(|v| v.bandwidth);
    playlist.variants = video_variants;
    for a in audios {
        // Audio-only variant: no REQ-VIDEO-LAYOUT, it has no video.
        playlist.variants.push(VariantStream {
            uri: a.uri.into(),
            bandwidth: a.bitrates.0,
            average_bandwidth: Some(a.bitrates.1),
            codecs: Some(a.config.codec_string()),
            audio: main_audio
                .filter(|main| main.uri == a.uri)
                .map(|_| AUDIO_GROUP.to_string()),
            ..Default::default()
        });
    }
    let mut out = Vec::new();
    playlist.write_to(&mut out).ok()?;
    String::from_utf8(out).ok()
}

fn video_variant(
    v: &VideoVariant<'_>,
    audio: Option<&AudioVariant<'_>>,
    version: &mut Option<usize>,
) -> VariantStream {
    let mut codecs = v.config.codec_string();
    let (mut peak, mut average) = v.bitrates;
    if let Some(a) = audio {
        codecs.push(',');
        codecs.push_str(&a.config.codec_string());
        peak += a.bitrates.0;
        average += a.bitrates.1;
    }
    let mut other = HashMap::new();
    if let Some(layout) = v.projection.req_video_layout() {
        // REQ- attributes require protocol version 12 (rfc8216bis 4.4.6.2).
        *version = Some(12);
        other.insert(
            "REQ-VIDEO-LAYOUT".to_string(),
            QuotedOrUnquoted::Quoted(layout.to_string()),
        );
    }
    let frame_rate = v
        .config
        .frame_rate()
        .or(v.measured_frame_rate)
        .filter(|f| f.is_finite() && *f > 0.0)
        .map(|f| (f * 1000.0).round() / 1000.0);
    VariantStream {
        uri: v.uri.into(),
        bandwidth: peak,
        average_bandwidth: Some(average),
        codecs: Some(codecs),
        resolution: Some(Resolution {
            width: u64::from(v.config.width()),
            height: u64::from(v.config.height()),
        }),
        frame_rate,
        audio: audio.map(|_| AUDIO_GROUP.to_string()),
        // Said outright (RFC 8216 4.3.4.2): without it Shaka Player probes segments
        // for CEA-608 captions and, on a stream only seconds old, picks the segment
        // still being written, which has no URI of its own ("Request without URIs"):
        // the viewer who opens a broadcast as it starts gets an error. Players then
        // also ignore captions carried in the video (panocast detects none).
        closed_captions: Some(ClosedCaptionGroupId::None),
        other_attributes: (!other.is_empty()).then_some(other),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::media::AvcConfig;

    fn avc() -> AvcConfig {
        AvcConfig {
            record: Bytes::new(),
            sps: vec![],
            pps: vec![],
            profile_idc: 0x64,
            constraint_flags: 0,
            level_idc: 0x28,
            width: 1920,
            height: 960,
            frame_rate: Some(30.0),
        }
    }

    fn aac() -> AacConfig {
        AacConfig {
            asc: Bytes::from_static(&[0x11, 0x90]),
            object_type: 2,
            sample_rate: 48_000,
            channels: 2,
        }
    }

    #[test]
    fn equirect_video_asks_for_version_12_and_the_layout() {
        let avc = VideoConfig::Avc(avc());
        let aac = aac();
        let text = render(
            &[VideoVariant {
                uri: "video.m3u8",
                config: &avc,
                bitrates: (4_000_000, 3_000_000),
                measured_frame_rate: None,
                projection: Projection::Equirect,
            }],
            &[AudioVariant {
                uri: "audio.m3u8",
                config: &aac,
                bitrates: (130_000, 128_000),
            }],
        )
        .expect("playlist");
        assert!(text.contains("#EXT-X-VERSION:12\n"), "{text}");
        assert!(text.contains("BANDWIDTH=4130000,AVERAGE-BANDWIDTH=3128000,CODECS=\"avc1.640028,mp4a.40.2\",RESOLUTION=1920x960,FRAME-RATE=30"), "{text}");
        assert!(text.contains("REQ-VIDEO-LAYOUT=\"PROJ-EQUI\""), "{text}");
        let audio_only = text
            .lines()
            .find(|l| l.contains("CODECS=\"mp4a.40.2\""))
            .expect("audio-only variant");
        assert!(!audio_only.contains("REQ-VIDEO-LAYOUT"));
    }

    #[test]
    fn flat_video_has_no_layout_attribute() {
        let avc = VideoConfig::Avc(avc());
        let text = render(
            &[VideoVariant {
                uri: "video.m3u8",
                config: &avc,
                bitrates: (1, 1),
                measured_frame_rate: None,
                projection: Projection::Flat,
            }],
            &[],
        )
        .expect("playlist");
        assert!(!text.contains("REQ-"));
        assert!(text.contains("#EXT-X-VERSION:9\n"));
    }

    #[test]
    fn ladder_variants_ascend_by_bandwidth_then_audio_only() {
        let source = VideoConfig::Avc(avc());
        let rung = VideoConfig::Avc(AvcConfig {
            width: 1280,
            height: 640,
            profile_idc: 0x42,
            level_idc: 0x1f,
            ..avc()
        });
        let aac = aac();
        let mono = AacConfig {
            channels: 1,
            ..aac.clone()
        };
        let variant = |uri, config, peak| VideoVariant {
            uri,
            config,
            bitrates: (peak, peak),
            measured_frame_rate: None,
            projection: Projection::Equirect,
        };
        let text = render(
            &[
                variant("video.m3u8", &source, 6_000_000),
                variant("r640.m3u8", &rung, 1_500_000),
            ],
            &[
                AudioVariant {
                    uri: "audio.m3u8",
                    config: &aac,
                    bitrates: (130_000, 128_000),
                },
                AudioVariant {
                    uri: "audio-48k.m3u8",
                    config: &mono,
                    bitrates: (50_000, 48_000),
                },
            ],
        )
        .expect("playlist");
        let uris: Vec<&str> = text.lines().filter(|l| l.ends_with(".m3u8")).collect();
        assert_eq!(
            uris,
            ["r640.m3u8", "video.m3u8", "audio.m3u8", "audio-48k.m3u8"],
            "{text}"
        );
        assert!(
            text.contains("CODECS=\"avc1.42001f,mp4a.40.2\",RESOLUTION=1280x640"),
            "{text}"
        );
        for line in text.lines().filter(|l| l.contains("CODECS=\"mp4a")) {
            assert!(!line.contains("REQ-VIDEO-LAYOUT"), "{line}");
        }
    }
}
