//! Dual fisheye: two equidistant fisheye lenses back to back, both images in one
//! frame (side by side by default).
//!
//! The front lens looks along +z, the back lens along -z; the back lens is the front
//! one turned half a turn about the vertical axis, so its image's right-hand side
//! shows -x. The defaults put the front lens in the right half of the frame and the
//! back lens in the left half, as ffmpeg `v360`'s `dfisheye` does.
//!
//! Where both lenses see a direction (a lens field of view above 180°), the seam
//! (the plane z = 0) is cross-faded over a band of [`DualFisheye::overlap`] degrees.

use std::f64::consts::FRAC_PI_2;

use super::sphere::Vec3;

/// One lens's image in the frame. Lengths are fractions of the frame so that one
/// description serves every plane (luma and subsampled chroma) and any frame size.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Lens {
    /// Field of view across the image circle, degrees (equidistant: the angle from
    /// the lens axis grows linearly with the distance from the circle's centre).
    pub fov: f64,
    /// Centre of the image circle, as a fraction of the frame width.
    pub center_x: f64,
    /// Centre of the image circle, as a fraction of the frame height.
    pub center_y: f64,
    /// Radius of the image circle (where the angle from the axis is `fov / 2`), as a
    /// fraction of the frame width.
    pub radius: f64,
    /// How far the lens's image is turned clockwise in the frame, degrees.
    pub rotation: f64,
}

impl Lens {
    /// Half the field of view, radians.
    fn half_fov(&self) -> f64 {
        self.fov.to_radians() / 2.0
    }

    /// Where direction `d`, in the lens's own axes (z along the lens axis), lies in a
    /// `w`x`h` plane, in sample coordinates (pixel `(i, j)`'s centre is `(i, j)`); or
    /// `None` when the lens does not see it.
    fn sample_point(&self, d: Vec3, w: usize, h: usize) -> Option<(f64, f64)> {
        let angle = d.z.clamp(-1.0, 1.0).acos();
        // The tolerance keeps the circle's own edge inside it despite rounding.
        if angle > self.half_fov() + 1e-12 {
            return None;
        }
        let across = d.x.hypot(d.y);
        let rho = angle / self.half_fov() * self.radius * w as f64;
        let (ex, ey) = if across > 0.0 {
            (rho * d.x / across, rho * d.y / across)
        } else {
            (0.0, 0.0)
        };
        let (sin_r, cos_r) = self.rotation.to_radians().sin_cos();
        let (rx, ry) = (ex * cos_r - ey * sin_r, ex * sin_r + ey * cos_r);
        Some((
            self.center_x * w as f64 + rx - 0.5,
            self.center_y * h as f64 + ry - 0.5,
        ))
    }
}

/// Two lenses back to back.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DualFisheye {
    pub front: Lens,
    pub back: Lens,
    /// Width in degrees of the band, centred on the seam, over which the two lenses
    /// are cross-faded; narrowed to what both lenses see (nothing for lenses of
    /// 180° or less, which leaves a hard seam).
    pub overlap: f64,
}

/// Which lens (or lenses) a direction is read from, in sample coordinates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Located {
    Front((f64, f64)),
    Back((f64, f64)),
    /// Both, the back lens weighing `back_weight` (0..1).
    Both {
        front: (f64, f64),
        back: (f64, f64),
        back_weight: f64,
    },
    /// Neither lens sees it (lenses narrower than 180°).
    Neither,
}

impl DualFisheye {
    /// Half the cross-fade band, radians: what was asked for, within what both
    /// lenses see beyond the seam.
    pub fn half_band(&self) -> f64 {
        let seen = (self.front.half_fov() - FRAC_PI_2).min(self.back.half_fov() - FRAC_PI_2);
        (self.overlap.to_radians() / 2.0).min(seen).max(0.0)
    }

    /// Where unit direction `d` is read from in a `w`x`h` plane.
    pub fn locate(&self, d: Vec3, w: usize, h: usize) -> Located {
        let back_dir = Vec3::new(-d.x, d.y, -d.z);
        let front = self.front.sample_point(d, w, h);
        let back = self.back.sample_point(back_dir, w, h);
        // Signed angle past the seam, towards the back lens.
        let past_seam = d.z.clamp(-1.0, 1.0).acos() - FRAC_PI_2;
        let half_band = self.half_band();
        match (front, back) {
            (Some(f), Some(b)) if half_band > 0.0 && past_seam.abs() < half_band => Located::Both {
                front: f,
                back: b,
                back_weight: smoothstep((past_seam + half_band) / (2.0 * half_band)),
            },
            (Some(f), Some(b)) => {
                if d.z >= 0.0 {
                    Located::Front(f)
                } else {
                    Located::Back(b)
                }
            }
            (Some(f), None) => Located::Front(f),
            (None, Some(b)) => Located::Back(b),
            (None, None) => Located::Neither,
        }
    }
}

/// 0 at 0, 1 at 1, flat at both ends, so the fade has no visible edge.
fn smoothstep(t: f64) -> f64 {
    let t = t.clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: usize = 1024;
    const H: usize = 512;

    fn lens(center_x: f64, fov: f64) -> Lens {
        Lens {
            fov,
            center_x,
            center_y: 0.5,
            radius: 0.25,
            rotation: 0.0,
        }
    }

    fn rig(fov: f64, overlap: f64) -> DualFisheye {
        DualFisheye {
            front: lens(0.75, fov),
            back: lens(0.25, fov),
            overlap,
        }
    }

    fn near(a: (f64, f64), b: (f64, f64)) -> bool {
        (a.0 - b.0).abs() < 1e-9 && (a.1 - b.1).abs() < 1e-9
    }

    #[test]
    fn forward_is_the_front_lens_centre() {
        let got = rig(190.0, 10.0).locate(Vec3::new(0.0, 0.0, 1.0), W, H);
        assert_eq!(got, Located::Front((767.5, 255.5)));
    }

    #[test]
    fn backward_is_the_back_lens_centre() {
        let got = rig(190.0, 10.0).locate(Vec3::new(0.0, 0.0, -1.0), W, H);
        assert_eq!(got, Located::Back((255.5, 255.5)));
    }

    #[test]
    fn the_circle_edge_is_half_the_field_of_view() {
        // 95° to the right of forward, 95° is the edge of a 190° lens: radius 256 px.
        let a = 95f64.to_radians();
        let d = Vec3::new(a.sin(), 0.0, a.cos());
        let got = rig(190.0, 0.0).front.sample_point(d, W, H).unwrap();
        assert!(near(got, (768.0 + 256.0 - 0.5, 255.5)), "{got:?}");
        let a = 96f64.to_radians();
        let d = Vec3::new(a.sin(), 0.0, a.cos());
        assert_eq!(rig(190.0, 0.0).front.sample_point(d, W, H), None);
    }

    #[test]
    fn the_back_lens_is_mirrored() {
        // Right of forward (+x) lies on the back lens's left, seen from behind.
        let a = 60f64.to_radians();
        let d = Vec3::new(a.sin(), 0.0, -a.cos());
        let Located::Back((x, y)) = rig(190.0, 10.0).locate(d, W, H) else {
            panic!("not the back lens");
        };
        assert!(x < 255.5 && (y - 255.5).abs() < 1e-9);
    }

    #[test]
    fn rotation_turns_the_image_clockwise() {
        let mut l = lens(0.75, 180.0);
        l.rotation = 90.0;
        // Straight up (-y) in the lens would be above the centre; turned a quarter
        // clockwise it is to the right of it.
        let a = 45f64.to_radians();
        let (x, y) = l
            .sample_point(Vec3::new(0.0, -a.sin(), a.cos()), W, H)
            .unwrap();
        assert!(x > 767.5 + 100.0 && (y - 255.5).abs() < 1e-9, "{x} {y}");
    }

    #[test]
    fn the_seam_is_cross_faded_over_the_band() {
        let r = rig(200.0, 10.0);
        let at = |deg: f64| {
            let a = deg.to_radians();
            r.locate(Vec3::new(a.sin(), 0.0, a.cos()), W, H)
        };
        assert!(matches!(at(84.9), Located::Front(_)));
        assert!(matches!(at(95.1), Located::Back(_)));
        let Located::Both { back_weight, .. } = at(90.0) else {
            panic!("no blend at the seam");
        };
        assert!((back_weight - 0.5).abs() < 1e-9);
        let Located::Both { back_weight, .. } = at(86.0) else {
            panic!("no blend inside the band");
        };
        assert!(back_weight > 0.0 && back_weight < 0.5);
    }

    #[test]
    fn the_band_is_narrowed_to_what_both_lenses_see() {
        assert!((rig(184.0, 30.0).half_band() - 2f64.to_radians()).abs() < 1e-12);
        assert_eq!(rig(180.0, 30.0).half_band(), 0.0);
        // A hard seam: z >= 0 is the front lens.
        let r = rig(180.0, 30.0);
        assert!(matches!(
            r.locate(Vec3::new(1.0, 0.0, 0.0), W, H),
            Located::Front(_)
        ));
    }

    #[test]
    fn narrow_lenses_leave_a_gap() {
        let r = rig(170.0, 10.0);
        assert_eq!(r.locate(Vec3::new(1.0, 0.0, 0.0), W, H), Located::Neither);
    }
}
