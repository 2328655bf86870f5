//! 360° signaling boxes, written inside the visual sample entry after `avcC`.
//!
//! Two vocabularies are written because players read different ones:
//! - Google Spherical Video V2 (`st3d`, `sv3d`): FFmpeg, ExoPlayer/Media3, YouTube.
//! - Apple Video Extended Usage (`vexu`): visionOS, Shaka Player.
//!
//! The byte layout follows `docs/360-signaling.md` §2. FFmpeg parses these boxes
//! strictly in order, so the order here (`st3d`, `sv3d { svhd, proj { prhd, equi } }`,
//! `vexu`) is part of the contract.

use bytes::BufMut;

use super::boxes::{write_box, write_full_box, Result};
use crate::streams::{Orientation, Projection};

/// Metadata source written into `svhd`. Must be non-empty (FFmpeg rejects an `svhd`
/// of 12 bytes or less, and the terminating NUL alone makes it 13).
const METADATA_SOURCE: &str = "panocast";

/// Stereo mode of the `st3d` box (Spherical Video V2, "Stereoscopic 3D Video Box").
fn stereo_mode(projection: Projection) -> u8 {
    match projection {
        // A dual-fisheye source is packaged once stitched: mono equirect.
        Projection::Flat | Projection::Equirect | Projection::DualFisheye => 0,
        Projection::EquirectStereoTb => 1,
        Projection::EquirectStereoSbs => 2,
    }
}

/// Appends every 360° box for `projection`; nothing for flat video.
pub fn write_spherical_boxes(
    out: &mut Vec<u8>,
    projection: Projection,
    orientation: Orientation,
) -> Result<()> {
    if !projection.is_spherical() {
        return Ok(());
    }
    write_st3d(out, stereo_mode(projection))?;
    write_sv3d(out, orientation)?;
    if !projection.is_stereo() {
        // Apple describes stereo through `vexu/eyes` (`stri`), which is defined for
        // MV-HEVC's separate eye views, not for a frame-packed (top-bottom or
        // side-by-side) picture; we know of no published layout for frame packing in
        // `vexu`. A `vexu` without it would make an Apple player show both eyes as one
        // mono sphere, so stereo streams get the Google boxes and the playlist's
        // `REQ-VIDEO-LAYOUT` only.
        write_vexu_mono_equirect(out)?;
    }
    Ok(())
}

/// `st3d`: FullBox v0 + u8 stereo_mode. 13 bytes.
fn write_st3d(out: &mut Vec<u8>, mode: u8) -> Result<()> {
    write_full_box(out, *b"st3d", 0, 0, |out| {
        out.put_u8(mode);
        Ok(())
    })
}

/// `sv3d { svhd, proj { prhd, equi } }` (Spherical Video V2, "Spherical Video Box").
fn write_sv3d(out: &mut Vec<u8>, orientation: Orientation) -> Result<()> {
    write_box(out, *b"sv3d", |out| {
        write_svhd(out)?;
        write_box(out, *b"proj", |out| {
            write_prhd(out, orientation)?;
            write_equi(out)
        })
    })
}

/// `svhd`: FullBox v0 + NUL-terminated UTF-8 metadata source.
fn write_svhd(out: &mut Vec<u8>) -> Result<()> {
    write_full_box(out, *b"svhd", 0, 0, |out| {
        out.put_slice(METADATA_SOURCE.as_bytes());
        out.put_u8(0);
        Ok(())
    })
}

/// `prhd`: FullBox v0 + pose yaw, pitch, roll as i32 16.16 fixed-point degrees. 24 bytes.
fn write_prhd(out: &mut Vec<u8>, orientation: Orientation) -> Result<()> {
    let [yaw, pitch, roll] = pose_fixed(orientation);
    write_full_box(out, *b"prhd", 0, 0, |out| {
        out.put_i32(yaw);
        out.put_i32(pitch);
        out.put_i32(roll);
        Ok(())
    })
}

/// `equi`: FullBox v0 + top, bottom, left, right crop bounds (0.32 fixed point).
/// All zero: the picture covers the full sphere. 28 bytes.
fn write_equi(out: &mut Vec<u8>) -> Result<()> {
    write_full_box(out, *b"equi", 0, 0, |out| {
        out.put_bytes(0, 16);
        Ok(())
    })
}

/// Apple `vexu { proj { prji } }` with `prji` naming the `equi` projection. 32 bytes.
fn write_vexu_mono_equirect(out: &mut Vec<u8>) -> Result<()> {
    write_box(out, *b"vexu", |out| {
        write_box(out, *b"proj", |out| {
            write_full_box(out, *b"prji", 0, 0, |out| {
                out.put_slice(b"equi");
                Ok(())
            })
        })
    })
}

/// Yaw, pitch and roll in 16.16 fixed-point degrees, normalised to the ranges the
/// Spherical V2 `prhd` definition allows: yaw and roll in [-180, 180], pitch in
/// [-90, 90].
fn pose_fixed(orientation: Orientation) -> [i32; 3] {
    [
        to_fixed_16_16(wrap_degrees(orientation.yaw)),
        // Pitch past the poles is not a rotation of the same kind (it flips yaw and
        // roll), so it is clamped rather than wrapped.
        to_fixed_16_16(finite_or_zero(orientation.pitch).clamp(-90.0, 90.0)),
        to_fixed_16_16(wrap_degrees(orientation.roll)),
    ]
}

fn finite_or_zero(degrees: f64) -> f64 {
    if degrees.is_finite() {
        degrees
    } else {
        0.0
    }
}

/// Brings an angle into [-180, 180]; values already in range (including ±180) are
/// kept as they are, others wrap into [-180, 180).
fn wrap_degrees(degrees: f64) -> f64 {
    let degrees = finite_or_zero(degrees);
    if (-180.0..=180.0).contains(&degrees) {
        degrees
    } else {
        (degrees + 180.0).rem_euclid(360.0) - 180.0
    }
}

/// Rounds to the nearest 1/65536 degree. Inputs are within ±180, so the product is far
/// inside i32; `as` saturates anyway, so nothing can overflow.
fn to_fixed_16_16(degrees: f64) -> i32 {
    (degrees * 65536.0).round() as i32
}

#[cfg(test)]
mod tests {
    use super::super::boxes::reader::{boxes, child, u32_at};
    use super::*;

    fn orient(yaw: f64, pitch: f64, roll: f64) -> Orientation {
        Orientation { yaw, pitch, roll }
    }

    fn written(projection: Projection, orientation: Orientation) -> Vec<u8> {
        let mut out = Vec::new();
        write_spherical_boxes(&mut out, projection, orientation).unwrap();
        out
    }

    #[test]
    fn flat_writes_nothing() {
        assert!(written(Projection::Flat, orient(10.0, 0.0, 0.0)).is_empty());
    }

    #[test]
    fn st3d_is_13_bytes_with_stereo_mode() {
        for (projection, mode) in [
            (Projection::Equirect, 0),
            (Projection::EquirectStereoTb, 1),
            (Projection::EquirectStereoSbs, 2),
        ] {
            let out = written(projection, Orientation::default());
            assert_eq!(
                &out[..13],
                &[0, 0, 0, 13, b's', b't', b'3', b'd', 0, 0, 0, 0, mode]
            );
        }
    }

    #[test]
    fn mono_equirect_exact_bytes() {
        let out = written(Projection::Equirect, orient(90.0, -10.5, 0.0));
        let mut expected: Vec<u8> = Vec::new();
        // st3d, mono
        expected.extend_from_slice(&[0, 0, 0, 13, b's', b't', b'3', b'd', 0, 0, 0, 0, 0]);
        // sv3d = 8 + svhd (12 + 9) + proj (8 + 24 + 28) = 89
        expected.extend_from_slice(&[0, 0, 0, 89, b's', b'v', b'3', b'd']);
        expected.extend_from_slice(&[0, 0, 0, 21, b's', b'v', b'h', b'd', 0, 0, 0, 0]);
        expected.extend_from_slice(b"panocast\0");
        expected.extend_from_slice(&[0, 0, 0, 60, b'p', b'r', b'o', b'j']);
        expected.extend_from_slice(&[0, 0, 0, 24, b'p', b'r', b'h', b'd', 0, 0, 0, 0]);
        expected.extend_from_slice(&(90_i32 << 16).to_be_bytes()); // 0x005A0000
        expected.extend_from_slice(&(-10 * 65536 - 32768_i32).to_be_bytes());
        expected.extend_from_slice(&0_i32.to_be_bytes());
        expected.extend_from_slice(&[0, 0, 0, 28, b'e', b'q', b'u', b'i', 0, 0, 0, 0]);
        expected.extend_from_slice(&[0; 16]);
        // vexu { proj { prji 'equi' } } = 8 + 8 + 16 = 32
        expected.extend_from_slice(&[0, 0, 0, 32, b'v', b'e', b'x', b'u']);
        expected.extend_from_slice(&[0, 0, 0, 24, b'p', b'r', b'o', b'j']);
        expected.extend_from_slice(&[0, 0, 0, 16, b'p', b'r', b'j', b'i', 0, 0, 0, 0]);
        expected.extend_from_slice(b"equi");
        assert_eq!(out, expected);
    }

    #[test]
    fn box_sizes_match_the_signaling_doc() {
        let out = written(Projection::Equirect, Orientation::default());
        let top = boxes(&out);
        let names: Vec<_> = top.iter().map(|b| b.fourcc).collect();
        assert_eq!(names, [*b"st3d", *b"sv3d", *b"vexu"]);
        assert_eq!(top[0].body.len() + 8, 13);
        assert_eq!(top[2].body.len() + 8, 32);
        let sv3d = top[1].body;
        let inner: Vec<_> = boxes(sv3d).iter().map(|b| b.fourcc).collect();
        assert_eq!(inner, [*b"svhd", *b"proj"]);
        let proj = child(sv3d, b"proj").body;
        let parts = boxes(proj);
        assert_eq!(parts[0].fourcc, *b"prhd");
        assert_eq!(parts[0].body.len() + 8, 24);
        assert_eq!(parts[1].fourcc, *b"equi");
        assert_eq!(parts[1].body.len() + 8, 28);
        assert!(child(sv3d, b"svhd").body.len() + 8 > 12);
    }

    #[test]
    fn stereo_has_no_vexu() {
        for projection in [Projection::EquirectStereoTb, Projection::EquirectStereoSbs] {
            let out = written(projection, Orientation::default());
            let names: Vec<_> = boxes(&out).iter().map(|b| b.fourcc).collect();
            assert_eq!(names, [*b"st3d", *b"sv3d"]);
        }
    }

    #[test]
    fn pose_is_normalised_and_rounded() {
        let prhd = |o: Orientation| {
            let out = written(Projection::Equirect, o);
            let proj = child(child(&out, b"sv3d").body, b"proj").body;
            let body = child(proj, b"prhd").body;
            [u32_at(body, 4), u32_at(body, 8), u32_at(body, 12)].map(|v| v as i32)
        };
        assert_eq!(
            prhd(orient(180.0, 90.0, -180.0)),
            [180 << 16, 90 << 16, -180 << 16]
        );
        assert_eq!(
            prhd(orient(270.0, 120.0, 540.0)),
            [-90 << 16, 90 << 16, -180 << 16]
        );
        assert_eq!(prhd(orient(-190.0, -95.0, 0.0)), [170 << 16, -90 << 16, 0]);
        assert_eq!(
            prhd(orient(f64::NAN, f64::INFINITY, f64::NEG_INFINITY)),
            [0, 0, 0]
        );
        // 1/65536 degree resolution, rounded to nearest.
        assert_eq!(prhd(orient(0.00001, 0.0, 0.0))[0], 1);
        // Huge values must not panic and must land in range.
        let [yaw, pitch, _] = prhd(orient(1e300, -1e300, 1e-300));
        assert!((-180 << 16..=180 << 16).contains(&yaw));
        assert_eq!(pitch, -90 << 16);
    }
}
