//! Projection maths for 360° video, with no GStreamer in it: where each output pixel
//! comes from ([`lut`]), and the per-frame resampling that follows that table
//! ([`remap`]).
//!
//! Conventions (those of ffmpeg's `v360`, so that its output is a reference):
//! directions have x to the right, y down and z forward; the centre of an
//! equirectangular frame looks forward; yaw, pitch and roll have `v360`'s meaning
//! (see [`sphere::Rotation::from_yaw_pitch_roll`]). Pixel `(i, j)` covers
//! `[i, i + 1) x [j, j + 1)` and stands for its centre, in every projection and every
//! plane (a subsampled chroma plane is mapped as a picture of its own size, as
//! `v360` does).

pub mod eac;
pub mod equirect;
pub mod fisheye;
mod kernel;
pub mod lut;
mod parallel;
pub mod remap;
pub mod sphere;

use fisheye::DualFisheye;
use sphere::Rotation;

/// What the input frames hold.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Source {
    Equirect,
    DualFisheye(DualFisheye),
}

/// What the output frames hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Equirect,
    /// Equi-angular cubemap, 3x2 (see [`eac`]).
    Cubemap,
}

/// One conversion: the output pixel looking in direction `d` shows the input's
/// direction `rotation.apply(d)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Mapping {
    pub source: Source,
    pub target: Target,
    pub rotation: Rotation,
}

/// The output frame size: `requested` where both are non-zero; one missing side
/// follows the target's usual shape (equirect 2:1, cubemap 16:9); with neither, the
/// input's width is kept (an equirect output of `w` x `w/2`, a cubemap of
/// `w` x `9w/16`). Sizes are rounded down to even, at least 2.
pub fn output_size(target: Target, input_width: u32, requested: (u32, u32)) -> (u32, u32) {
    let even = |v: u32| v.max(2) & !1;
    let (w, h) = match (requested, target) {
        ((w, h), _) if w > 0 && h > 0 => (w, h),
        ((w, 0), Target::Equirect) if w > 0 => (w, w / 2),
        ((0, h), Target::Equirect) if h > 0 => (h.saturating_mul(2), h),
        ((w, 0), Target::Cubemap) if w > 0 => eac::default_size(w),
        ((0, h), Target::Cubemap) if h > 0 => (h.saturating_mul(16) / 9, h),
        (_, Target::Equirect) => (input_width, input_width / 2),
        (_, Target::Cubemap) => eac::default_size(input_width),
    };
    (even(w), even(h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_sizes() {
        assert_eq!(output_size(Target::Equirect, 3840, (0, 0)), (3840, 1920));
        assert_eq!(output_size(Target::Cubemap, 3840, (0, 0)), (3840, 2160));
        assert_eq!(
            output_size(Target::Equirect, 3840, (1280, 640)),
            (1280, 640)
        );
        assert_eq!(output_size(Target::Equirect, 3840, (1280, 0)), (1280, 640));
        assert_eq!(output_size(Target::Equirect, 3840, (0, 960)), (1920, 960));
        assert_eq!(output_size(Target::Cubemap, 3840, (0, 1080)), (1920, 1080));
        assert_eq!(
            output_size(Target::Equirect, 3840, (1001, 501)),
            (1000, 500)
        );
    }
}
