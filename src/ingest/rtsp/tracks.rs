//! Which of a camera's SDP media streams to set up.
//!
//! Pure: takes `(media, encoding name)` pairs as the `DESCRIBE` answer lists them
//! (RFC 4566 `m=` and `a=rtpmap`, encoding names lower-cased by retina) and picks the
//! first H.264 or H.265 video and the first AAC audio. A camera offering only another video
//! codec is refused with a message that says what to change; audio in another codec
//! (G.711 on many IP cameras) is left out and the stream goes on as video only.

use crate::media::VideoCodec;

/// The streams to set up, as indices into the session's stream list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tracks {
    pub video: usize,
    pub video_codec: VideoCodec,
    pub audio: Option<usize>,
    /// An audio stream was offered but not in AAC.
    pub audio_skipped: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrackError {
    #[error("the camera offers no video stream")]
    NoVideo,
    #[error(
        "video codec {0} is not supported (panocast packages H.264 and H.265); set the camera to H.264 or H.265"
    )]
    UnsupportedVideo(String),
}

/// A human name for an RTP encoding name.
fn codec_name(encoding: &str) -> String {
    match encoding {
        "h265" => "H.265/HEVC".into(),
        "jpeg" => "Motion JPEG".into(),
        "vp8" => "VP8".into(),
        "vp9" => "VP9".into(),
        "av1" => "AV1".into(),
        other => other.to_uppercase(),
    }
}

pub fn choose_tracks<'a>(
    streams: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<Tracks, TrackError> {
    let mut video = None;
    let mut other_video = None;
    let mut audio = None;
    let mut audio_skipped = None;
    for (i, (media, encoding)) in streams.into_iter().enumerate() {
        match media {
            "video" if encoding == "h264" => {
                video.get_or_insert((i, VideoCodec::Avc));
            }
            "video" if encoding == "h265" => {
                video.get_or_insert((i, VideoCodec::Hevc));
            }
            "video" => {
                other_video.get_or_insert(encoding.to_owned());
            }
            "audio" if encoding == "mpeg4-generic" => {
                audio.get_or_insert(i);
            }
            "audio" => {
                audio_skipped.get_or_insert(i);
            }
            _ => {}
        }
    }
    let Some((video, video_codec)) = video else {
        return Err(match other_video {
            Some(encoding) => TrackError::UnsupportedVideo(codec_name(&encoding)),
            None => TrackError::NoVideo,
        });
    };
    Ok(Tracks {
        video,
        video_codec,
        audio,
        audio_skipped: if audio.is_some() { None } else { audio_skipped },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn h264_and_aac() {
        let t = choose_tracks([("video", "h264"), ("audio", "mpeg4-generic")]).unwrap();
        assert_eq!(
            t,
            Tracks {
                video: 0,
                video_codec: VideoCodec::Avc,
                audio: Some(1),
                audio_skipped: None
            }
        );
    }

    #[test]
    fn other_audio_is_skipped_metadata_ignored() {
        let t = choose_tracks([
            ("application", "vnd.onvif.metadata"),
            ("audio", "pcmu"),
            ("video", "h264"),
        ])
        .unwrap();
        assert_eq!((t.video, t.audio, t.audio_skipped), (2, None, Some(1)));
    }

    #[test]
    fn h265_is_taken_other_codecs_refused_clearly() {
        let t = choose_tracks([("video", "h265"), ("audio", "mpeg4-generic")]).unwrap();
        assert_eq!((t.video, t.video_codec), (0, VideoCodec::Hevc));
        let e = choose_tracks([("video", "jpeg"), ("audio", "mpeg4-generic")]).unwrap_err();
        assert_eq!(e, TrackError::UnsupportedVideo("Motion JPEG".into()));
        assert!(e.to_string().contains("set the camera to H.264"));
        assert_eq!(
            choose_tracks([("audio", "mpeg4-generic")]),
            Err(TrackError::NoVideo)
        );
        // A second, supported stream wins over an unsupported first one.
        assert_eq!(
            choose_tracks([("video", "vp8"), ("video", "h264")]).map(|t| t.video),
            Ok(1)
        );
    }
}
