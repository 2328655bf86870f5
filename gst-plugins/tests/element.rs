//! panoproject as a GStreamer element, driven with `gst_check::Harness`: caps
//! negotiation, buffer metadata, property changes between buffers, bad input.

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_check::Harness;

fn init() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        gst::init().expect("GStreamer initialises");
        gstpanocast::register_static().expect("panoproject registers");
    });
}

fn harness(properties: &[(&str, &str)]) -> Harness {
    init();
    let mut h = Harness::new("panoproject");
    let element = h.element().expect("the harness holds the element");
    for (name, value) in properties {
        element.set_property_from_str(name, value);
    }
    h.play();
    h
}

fn raw_caps(format: &str, width: i32, height: i32) -> gst::Caps {
    gst::Caps::builder("video/x-raw")
        .field("format", format)
        .field("width", width)
        .field("height", height)
        .field("framerate", gst::Fraction::new(30, 1))
        .build()
}

/// An I420 frame whose luma is `luma(x, y)`, chroma neutral.
fn i420(width: usize, height: usize, luma: impl Fn(usize, usize) -> u8) -> gst::Buffer {
    let mut data = vec![128u8; width * height * 3 / 2];
    for y in 0..height {
        for x in 0..width {
            data[y * width + x] = luma(x, y);
        }
    }
    gst::Buffer::from_slice(data)
}

/// The negotiated output caps' width and height.
fn output_size(h: &Harness) -> (i32, i32) {
    let caps = h
        .sinkpad()
        .and_then(|p| p.current_caps())
        .expect("output caps negotiated");
    let s = caps.structure(0).expect("a structure");
    (
        s.get::<i32>("width").expect("a width"),
        s.get::<i32>("height").expect("a height"),
    )
}

fn luma_at(buffer: &gst::Buffer, width: usize, x: usize, y: usize) -> u8 {
    let map = buffer.map_readable().expect("readable output");
    map[y * width + x]
}

#[test]
fn equirect_output_keeps_the_input_size_by_default() {
    let mut h = harness(&[("input-projection", "dual-fisheye")]);
    h.set_src_caps(raw_caps("I420", 1024, 512));
    let out = h
        .push_and_pull(i420(1024, 512, |_, _| 100))
        .expect("a frame out");
    assert_eq!(output_size(&h), (1024, 512));
    assert_eq!(out.size(), 1024 * 512 * 3 / 2);
    let caps = h.sinkpad().and_then(|p| p.current_caps()).expect("caps");
    let s = caps.structure(0).expect("a structure");
    assert_eq!(s.get::<&str>("format").expect("a format"), "I420");
    assert_eq!(
        s.get::<gst::Fraction>("pixel-aspect-ratio").expect("a PAR"),
        gst::Fraction::new(1, 1)
    );
    assert_eq!(
        s.get::<gst::Fraction>("framerate").expect("a frame rate"),
        gst::Fraction::new(30, 1)
    );
}

#[test]
fn cubemap_output_is_sixteen_by_nine() {
    let mut h = harness(&[("output-projection", "cubemap")]);
    h.set_src_caps(raw_caps("NV12", 1024, 512));
    let out = h
        .push_and_pull(gst::Buffer::from_slice(vec![128u8; 1024 * 512 * 3 / 2]))
        .expect("a frame out");
    assert_eq!(output_size(&h), (1024, 576));
    assert_eq!(out.size(), 1024 * 576 * 3 / 2);
}

#[test]
fn width_and_height_properties_set_the_output_size() {
    let mut h = harness(&[("width", "640"), ("height", "320")]);
    h.set_src_caps(raw_caps("I420", 1024, 512));
    h.push_and_pull(i420(1024, 512, |_, _| 100))
        .expect("a frame out");
    assert_eq!(output_size(&h), (640, 320));
}

#[test]
fn downstream_may_choose_the_size() {
    let mut h = harness(&[]);
    h.set_caps(
        raw_caps("I420", 1024, 512),
        gst::Caps::builder("video/x-raw")
            .field("width", 512)
            .field("height", 256)
            .build(),
    );
    let out = h
        .push_and_pull(i420(1024, 512, |_, _| 100))
        .expect("a frame out");
    assert_eq!(output_size(&h), (512, 256));
    assert_eq!(out.size(), 512 * 256 * 3 / 2);
}

#[test]
fn formats_other_than_i420_and_nv12_are_refused() {
    init();
    let element = gst::ElementFactory::make("panoproject")
        .build()
        .expect("element");
    let sink = element.static_pad("sink").expect("sink pad");
    assert!(!sink.query_accept_caps(&raw_caps("RGBA", 64, 32)));
    assert!(sink.query_accept_caps(&raw_caps("NV12", 64, 32)));
}

#[test]
fn timestamps_and_flags_pass_through() {
    let mut h = harness(&[("yaw", "30")]);
    h.set_src_caps(raw_caps("I420", 256, 128));
    let cases = [
        (0u64, gst::BufferFlags::DISCONT | gst::BufferFlags::RESYNC),
        (33_333_333, gst::BufferFlags::empty()),
        (
            66_666_666,
            gst::BufferFlags::DELTA_UNIT | gst::BufferFlags::MARKER,
        ),
    ];
    for (n, (pts, flags)) in cases.into_iter().enumerate() {
        let mut buffer = i420(256, 128, |x, _| x as u8);
        {
            let b = buffer.get_mut().expect("a fresh buffer is writable");
            b.set_pts(gst::ClockTime::from_nseconds(pts));
            b.set_dts(gst::ClockTime::from_nseconds(pts + 1_000));
            b.set_duration(gst::ClockTime::from_nseconds(33_333_333));
            b.set_offset(n as u64);
            b.set_offset_end(n as u64 + 1);
            b.set_flags(flags);
        }
        let out = h.push_and_pull(buffer).expect("a frame out");
        assert_eq!(
            out.pts(),
            Some(gst::ClockTime::from_nseconds(pts)),
            "PTS of {n}"
        );
        assert_eq!(
            out.dts(),
            Some(gst::ClockTime::from_nseconds(pts + 1_000)),
            "DTS of {n}"
        );
        assert_eq!(
            out.duration(),
            Some(gst::ClockTime::from_nseconds(33_333_333))
        );
        assert_eq!((out.offset(), out.offset_end()), (n as u64, n as u64 + 1));
        assert_eq!(out.flags() & flags, flags, "flags of {n}");
        assert_eq!(
            out.flags() & !flags & !gst::BufferFlags::TAG_MEMORY,
            gst::BufferFlags::empty()
        );
    }
}

#[test]
fn a_new_rotation_applies_from_the_next_buffer() {
    let (w, h_px) = (256usize, 128usize);
    // Luma = column / 2: the column a pixel came from is readable in its value.
    let stripes = |x: usize, _: usize| (x / 2) as u8;
    let mut h = harness(&[]);
    h.set_src_caps(raw_caps("I420", w as i32, h_px as i32));
    let first = h
        .push_and_pull(i420(w, h_px, stripes))
        .expect("first frame");
    // Identity: the centre shows the centre.
    assert_eq!(luma_at(&first, w, 128, 64), 64);
    h.element().expect("element").set_property("yaw", 90.0f64);
    let second = h
        .push_and_pull(i420(w, h_px, stripes))
        .expect("second frame");
    // Yaw 90: the centre shows what was a quarter turn to the right (column 192).
    assert_eq!(luma_at(&second, w, 128, 64), 96);
    h.element().expect("element").set_property("yaw", 0.0f64);
    let third = h
        .push_and_pull(i420(w, h_px, stripes))
        .expect("third frame");
    assert_eq!(luma_at(&third, w, 128, 64), 64);
}

#[test]
fn a_new_size_renegotiates_at_the_next_buffer() {
    let mut h = harness(&[]);
    h.set_src_caps(raw_caps("I420", 256, 128));
    let first = h
        .push_and_pull(i420(256, 128, |_, _| 50))
        .expect("first frame");
    assert_eq!(first.size(), 256 * 128 * 3 / 2);
    let element = h.element().expect("element");
    element.set_property("width", 128u32);
    element.set_property("height", 64u32);
    let second = h
        .push_and_pull(i420(256, 128, |_, _| 50))
        .expect("second frame");
    assert_eq!(output_size(&h), (128, 64));
    assert_eq!(second.size(), 128 * 64 * 3 / 2);
    // The picture survives the change (uniform in, uniform out).
    let map = second.map_readable().expect("readable");
    assert!(map[..128 * 64].iter().all(|&v| v == 50));
}

#[test]
fn lens_parameters_apply_from_the_next_buffer() {
    let (w, h_px) = (512usize, 256usize);
    // The left half (back lens) dark, the right half (front lens) bright.
    let halves = |x: usize, _: usize| if x < w / 2 { 40 } else { 200 };
    let mut h = harness(&[("input-projection", "dual-fisheye"), ("overlap", "0")]);
    h.set_src_caps(raw_caps("I420", w as i32, h_px as i32));
    let first = h.push_and_pull(i420(w, h_px, halves)).expect("first frame");
    // Forward (the output's centre) comes from the front lens.
    assert_eq!(luma_at(&first, w, 256, 128), 200);
    // Move the front lens's circle onto the left half.
    h.element()
        .expect("element")
        .set_property("front-center-x", 0.25f64);
    let second = h
        .push_and_pull(i420(w, h_px, halves))
        .expect("second frame");
    assert_eq!(luma_at(&second, w, 256, 128), 40);
}

#[test]
fn a_short_buffer_is_dropped_not_a_crash() {
    let mut h = harness(&[]);
    h.set_src_caps(raw_caps("I420", 256, 128));
    let short = gst::Buffer::from_slice(vec![0u8; 1000]);
    assert_eq!(h.push(short), Ok(gst::FlowSuccess::Ok));
    assert_eq!(h.buffers_in_queue(), 0, "nothing made of a short buffer");
    // The next whole frame goes through.
    h.push_and_pull(i420(256, 128, |_, _| 70))
        .expect("a frame out");
}
