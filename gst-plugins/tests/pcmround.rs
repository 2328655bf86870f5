//! pcmround as a GStreamer element: negotiation, sizes and timestamps, and a decoded
//! stereo pair that differs only below half a step coming out identical (what
//! `audioconvert` to 16 bits does not give LAME).

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_check::Harness;

fn harness() -> Harness {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        gst::init().expect("GStreamer initialises");
        gstpanocast::register_static().expect("the elements register");
    });
    let mut h = Harness::new("pcmround");
    h.set_src_caps(
        gst::Caps::builder("audio/x-raw")
            .field("format", "F32LE")
            .field("layout", "interleaved")
            .field("rate", 48_000)
            .field("channels", 2)
            .field("channel-mask", gst::Bitmask::new(0x3))
            .build(),
    );
    h.play();
    h
}

fn float_buffer(samples: &[f32], pts: gst::ClockTime) -> gst::Buffer {
    let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    let mut buffer = gst::Buffer::from_slice(bytes);
    let b = buffer.get_mut().expect("a new buffer is writable");
    b.set_pts(pts);
    b.set_duration(gst::ClockTime::from_nseconds(
        samples.len() as u64 / 2 * 1_000_000_000 / 48_000,
    ));
    buffer
}

fn s16(buffer: &gst::Buffer) -> Vec<i16> {
    let map = buffer.map_readable().expect("readable output");
    map.chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

#[test]
fn float_stereo_becomes_s16_stereo_with_the_same_rate_and_timestamps() {
    let mut h = harness();
    let pts = gst::ClockTime::from_mseconds(40);
    let out = h
        .push_and_pull(float_buffer(&[0.5, -0.5, 0.25, -0.25], pts))
        .expect("a buffer out");
    assert_eq!(s16(&out), [16_384, -16_384, 8_192, -8_192]);
    assert_eq!(out.pts(), Some(pts));
    assert_eq!(out.duration(), Some(gst::ClockTime::from_nseconds(41_666)));
    let caps = h.sinkpad().and_then(|p| p.current_caps()).expect("caps");
    let s = caps.structure(0).expect("a structure");
    assert_eq!(s.get::<&str>("format").expect("format"), "S16LE");
    assert_eq!(s.get::<i32>("rate").expect("rate"), 48_000);
    assert_eq!(s.get::<i32>("channels").expect("channels"), 2);
}

#[test]
fn a_pair_apart_by_less_than_half_a_step_stays_one_signal() {
    let mut h = harness();
    // A decoded M/S pair: left and right a hair either side of each step.
    let step = 1.0 / 32_768.0;
    let samples: Vec<f32> = (0..4_800)
        .flat_map(|i| {
            let level = ((i as f32 * 0.05).sin() * 3_000.0).round();
            [(level + 0.02) * step, (level - 0.02) * step]
        })
        .collect();
    let out = s16(&h
        .push_and_pull(float_buffer(&samples, gst::ClockTime::ZERO))
        .expect("a buffer out"));
    assert_eq!(out.len(), samples.len());
    let differing = out.chunks_exact(2).filter(|p| p[0] != p[1]).count();
    assert_eq!(differing, 0, "{differing} of 4800 frames differ");
}

#[test]
fn s16_input_is_refused() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        gst::init().expect("GStreamer initialises");
        gstpanocast::register_static().expect("the elements register");
    });
    let mut h = Harness::new("pcmround");
    h.play();
    let s16_caps = gst::Caps::builder("audio/x-raw")
        .field("format", "S16LE")
        .field("layout", "interleaved")
        .field("rate", 48_000)
        .field("channels", 2)
        .build();
    let sink = h
        .element()
        .and_then(|e| e.static_pad("sink"))
        .expect("a sink pad");
    assert!(!sink.query_accept_caps(&s16_caps));
}

#[test]
fn a_buffer_of_torn_frames_is_refused_with_an_error() {
    let mut h = harness();
    // 1.5 stereo frames: the base class cannot size an output for it.
    let torn = gst::Buffer::from_slice(vec![0u8; 12]);
    assert!(h.push(torn).is_err());
}
