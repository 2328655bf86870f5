//! Real encoder sessions, recorded by `tests/data/capture-rtmp.sh` (ffmpeg) and
//! `tests/data/capture-obs.sh` (OBS Studio), every byte the client sent from C0 on,
//! replayed through the handshake and the connection as the server reads them: in the
//! read sizes a socket might deliver, and mutated the way an attacker would (issue 18
//! found rml_rtmp panicking on such copies).

use std::time::Instant;

use super::connection::{Event, RtmpConnection};
use super::handshake::{HandshakeStep, ServerHandshake};
use crate::media::{MediaEvent, TrackKind};

const FFMPEG5_H264: &str = "ffmpeg-5.1.9-rtmp-h264-aac.bin";
const FFMPEG7_HEVC: &str = "ffmpeg-7.0.2-rtmp-enhanced-hevc-aac.bin";
const OBS29_H264: &str = "obs-studio-29.0.2-rtmp-h264-aac.bin";

fn capture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// What a replay produced, as the stream worker would see it.
#[derive(Debug, Default, PartialEq)]
struct Replay {
    video_configs: Vec<(String, u32, u32)>,
    audio_configs: Vec<(String, u32, u8)>,
    video_units: usize,
    /// Decode timestamps of the keyframes.
    keyframes: Vec<i64>,
    /// Video units shown later than decoded (B-frames: composition offsets).
    reordered: usize,
    audio_units: usize,
    /// First and last decode timestamp of each track.
    video_span: Option<(i64, i64)>,
    audio_span: Option<(i64, i64)>,
    /// Presentation timestamp of the first video unit.
    first_video_pts: Option<i64>,
    /// Decode timestamps of each track never step back.
    monotonic: bool,
    published: bool,
    finished: bool,
    encoder: Option<String>,
    /// Width, height and frame rate `onMetaData` declared.
    declared: Option<(Option<u32>, Option<u32>, Option<f32>)>,
    error: Option<String>,
}

/// Feeds `bytes` in reads of `read` bytes; the publish is accepted whatever its key.
fn replay(bytes: &[u8], read: usize) -> Replay {
    let mut out = Replay {
        monotonic: true,
        ..Replay::default()
    };
    let mut handshake = ServerHandshake::new();
    let mut conn: Option<RtmpConnection> = None;
    let (mut last_video, mut last_audio) = (i64::MIN, i64::MIN);
    for piece in bytes.chunks(read.max(1)) {
        let mut chunk_bytes = match conn {
            Some(_) => piece.to_vec(),
            None => match handshake.feed(piece) {
                Ok(HandshakeStep::InProgress { .. }) => continue,
                Ok(HandshakeStep::Done { leftover, .. }) => {
                    conn = Some(RtmpConnection::new("live"));
                    leftover
                }
                Err(e) => {
                    out.error = Some(e.to_string());
                    return out;
                }
            },
        };
        let Some(c) = conn.as_mut() else { continue };
        // As the server does: after a verdict, what followed the request is read.
        let mut again = true;
        while std::mem::take(&mut again) {
            let events = match c.feed(&std::mem::take(&mut chunk_bytes), Instant::now()) {
                Ok(events) => events,
                Err(e) => {
                    out.error = Some(e.to_string());
                    return out;
                }
            };
            for event in events {
                match event {
                    Event::PublishRequested { request_id, .. } => {
                        out.published = true;
                        again = true;
                        if let Err(e) = c.accept_publish(request_id) {
                            out.error = Some(e.to_string());
                            return out;
                        }
                    }
                    Event::Media(MediaEvent::VideoConfig(v)) => {
                        out.video_configs
                            .push((v.codec_string(), v.width(), v.height()))
                    }
                    Event::Media(MediaEvent::AudioConfig(a)) => {
                        out.audio_configs
                            .push((a.codec_string(), a.sample_rate, a.channels))
                    }
                    Event::Media(MediaEvent::Unit(u)) => {
                        let (last, span) = match u.kind {
                            TrackKind::Video => {
                                out.video_units += 1;
                                if u.keyframe {
                                    out.keyframes.push(u.dts);
                                }
                                out.reordered += usize::from(u.pts != u.dts);
                                out.first_video_pts.get_or_insert(u.pts);
                                (&mut last_video, &mut out.video_span)
                            }
                            TrackKind::Audio => {
                                out.audio_units += 1;
                                (&mut last_audio, &mut out.audio_span)
                            }
                        };
                        out.monotonic &= u.dts >= *last;
                        *last = u.dts;
                        let first = span.map_or(u.dts, |(first, _)| first);
                        *span = Some((first, u.dts));
                    }
                    Event::Metadata {
                        encoder,
                        width,
                        height,
                        frame_rate,
                    } => {
                        out.encoder = encoder;
                        out.declared = Some((width, height, frame_rate));
                    }
                    Event::PublishFinished => out.finished = true,
                    Event::TrackDropped(e) => out.error = Some(e.to_string()),
                }
            }
        }
        c.take_outbound();
    }
    out
}

/// What a recorded session holds, from its encoder's settings (the capture scripts)
/// and counted in the file once; the structural checks of [`assert_replays`] hold
/// for any re-recording.
struct Expected {
    name: &'static str,
    /// RFC 6381 prefix of the video codec string.
    codec: &'static str,
    size: (u32, u32),
    frame_rate: u32,
    video_units: usize,
    keyframes: usize,
    audio_units: usize,
    b_frames: bool,
    /// How `onMetaData`'s `encoder` starts.
    encoder: &'static str,
}

fn assert_replays(e: &Expected) -> Replay {
    let name = e.name;
    let bytes = capture(name);
    let whole = replay(&bytes, 64 * 1024);
    assert_eq!(whole.error, None, "{name}");
    assert!(whole.published && whole.finished, "{name}: {whole:?}");
    assert!(whole.monotonic, "{name}");
    assert_eq!(whole.video_configs.len(), 1, "{name}: {whole:?}");
    let (codec_string, width, height) = &whole.video_configs[0];
    assert!(codec_string.starts_with(e.codec), "{name}: {codec_string}");
    assert_eq!((*width, *height), e.size, "{name}");
    assert_eq!(
        whole.audio_configs,
        [("mp4a.40.2".to_owned(), 48_000, 2)],
        "{name}"
    );
    assert_eq!(
        (whole.video_units, whole.keyframes.len(), whole.audio_units),
        (e.video_units, e.keyframes, e.audio_units),
        "{name}"
    );
    // The encoders were set to a keyframe every second; RTMP's millisecond
    // timestamps round a frame time by at most a millisecond either way.
    for pair in whole.keyframes.windows(2) {
        let gap = pair[1] - pair[0];
        assert!((998..=1002).contains(&gap), "{name}: keyframes at {pair:?}");
    }
    // No frame is missing between the first and the last of each track: frames
    // at `frame_rate`, AAC frames of 1024 samples at 48 kHz.
    let frames_in = |span: Option<(i64, i64)>, per_second: f64| {
        let (first, last) = span.unwrap_or_default();
        ((last - first) as f64 * per_second / 1000.0).round() as usize + 1
    };
    assert_eq!(
        frames_in(whole.video_span, f64::from(e.frame_rate)),
        whole.video_units,
        "{name}: video {:?}",
        whole.video_span
    );
    assert_eq!(
        frames_in(whole.audio_span, 48_000.0 / 1024.0),
        whole.audio_units,
        "{name}: audio {:?}",
        whole.audio_span
    );
    assert_eq!(whole.reordered > 0, e.b_frames, "{name}: {whole:?}");
    assert!(
        whole
            .encoder
            .as_deref()
            .unwrap_or_default()
            .starts_with(e.encoder),
        "{name}: {:?}",
        whole.encoder
    );
    assert_eq!(
        whole.declared,
        Some((Some(e.size.0), Some(e.size.1), Some(e.frame_rate as f32))),
        "{name}"
    );
    // A socket may split the stream anywhere: the result does not depend on it.
    for read in [1, 7, 1460, 4096] {
        assert_eq!(replay(&bytes, read), whole, "{name} in {read}-byte reads");
    }
    whole
}

#[test]
fn ffmpeg_5_1_h264_aac_publish_replays_with_every_frame() {
    assert_replays(&Expected {
        name: FFMPEG5_H264,
        codec: "avc1.",
        size: (320, 180),
        frame_rate: 25,
        video_units: 75,
        keyframes: 3,
        audio_units: 142,
        b_frames: false,
        encoder: "Lavf",
    });
}

#[test]
fn ffmpeg_7_enhanced_rtmp_hevc_publish_replays_with_every_frame() {
    assert_replays(&Expected {
        name: FFMPEG7_HEVC,
        codec: "hvc1.",
        size: (320, 180),
        frame_rate: 25,
        video_units: 75,
        keyframes: 3,
        audio_units: 142,
        b_frames: true,
        encoder: "Lavf",
    });
}

/// OBS differs from ffmpeg in what it sends (see capture-obs.sh): `connect` carries
/// `supportsGoAway` and `swfUrl`, its AAC sequence header comes before the AVC one,
/// x264 at OBS's defaults sends B-frames (composition offsets up to 166 ms), its
/// first AAC frame is stamped 66 ms in, and `onMetaData` carries `audiochannels`,
/// channel-layout flags named "2.1" … "7.1" and `fileSize` for ffmpeg's `filesize`.
#[test]
fn obs_studio_29_h264_aac_publish_replays_with_every_frame() {
    let obs = assert_replays(&Expected {
        name: OBS29_H264,
        codec: "avc1.64",
        size: (640, 320),
        frame_rate: 30,
        video_units: 92,
        keyframes: 4,
        audio_units: 141,
        b_frames: true,
        encoder: "obs-output module (libobs version 29.0.2",
    });
    // Sound and picture start together: the first AAC frame at the first picture's
    // presentation time, which x264's B-frame delay puts after its decode time 0.
    assert_eq!(obs.first_video_pts, Some(66));
    assert_eq!(obs.audio_span.map(|(first, _)| first), obs.first_video_pts);
}

/// A small deterministic generator, so a failure names its seed.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Mutated copies of the real sessions (bytes flipped, runs dropped or repeated,
/// length fields hit) end in an error value or a shorter publish, never a panic, and
/// never more media than the session held.
#[test]
fn mutated_sessions_end_cleanly() {
    for name in [FFMPEG5_H264, FFMPEG7_HEVC, OBS29_H264] {
        let original = capture(name);
        let clean = replay(&original, 4096);
        // Mutations start after the handshake, where the chunk stream begins.
        let start = super::handshake::HANDSHAKE_LEN;
        for seed in 1..=150u64 {
            let mut rng = XorShift(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let mut bytes = original.clone();
            for _ in 0..1 + rng.below(8) {
                let at = start + rng.below(bytes.len() - start);
                match rng.below(4) {
                    0 => bytes[at] = rng.next() as u8,
                    1 => bytes[at] ^= 0xff,
                    2 => {
                        let end = (at + rng.below(64)).min(bytes.len());
                        bytes.drain(at..end);
                    }
                    _ => {
                        let end = (at + rng.below(64)).min(bytes.len());
                        let run = bytes[at..end].to_vec();
                        bytes.splice(at..at, run);
                    }
                }
                if bytes.len() <= start + 1 {
                    break;
                }
            }
            let got = replay(&bytes, 1 + rng.below(5000));
            assert!(
                got.video_units <= clean.video_units + 64
                    && got.audio_units <= clean.audio_units + 64,
                "{name} seed {seed}: {got:?}"
            );
        }
    }
}
