//! The equi-angular cubemap (EAC), 3x2, in the layout of YouTube's EAC and of ffmpeg
//! `v360`'s `eac` output, so that files from either tool line up with ours:
//!
//! ```text
//! +-------+-------+-------+
//! | left  | front | right |   top row upright
//! +-------+-------+-------+
//! | down  | back  |  up   |   bottom row turned a quarter turn (back: clockwise,
//! +-------+-------+-------+   down and up: counter-clockwise)
//! ```
//!
//! Each face spans 90° with its angle, not its tangent, proportional to the pixel
//! position (equi-angular), so pixels are spread evenly over the sphere. The frame
//! has [`PAD`] pixels of padding on its left and right edges and at the top and
//! bottom of each row (not between the faces of a row); padding pixels continue
//! the face they belong to (linearly, as `v360` draws them) so that a renderer
//! filtering at a face edge reads picture, not black.

use std::f64::consts::FRAC_PI_2;

use super::sphere::Vec3;

/// Padding, in pixels, at the frame's left and right edges and above and below
/// each row of faces.
pub const PAD: f64 = 2.0;

/// The direction at frame position `(u, v)` (pixel units from the top-left corner;
/// a pixel's centre is at `i + 0.5`) of a `w`x`h` EAC frame.
pub fn direction(u: f64, v: f64, w: usize, h: usize) -> Vec3 {
    let (w, h) = (w as f64, h as f64);
    // Across: three faces share the width left after the two outer pads.
    let across = 3.0 * (u - PAD) / (w - 2.0 * PAD);
    let (column, a) = if across < 0.0 {
        (0, across - 0.5)
    } else if across >= 3.0 {
        (2, across - 2.5)
    } else {
        let c = across.floor();
        (c as usize, across - c - 0.5)
    };
    // Down: each row is half the height with a pad above and below its faces.
    let row = if 2.0 * v < h { 0 } else { 1 };
    let b = (v - PAD - row as f64 * h / 2.0) / (h / 2.0 - 2.0 * PAD) - 0.5;
    // a, b in [-0.5, 0.5) on the face, beyond it in the padding.
    let s = face_coordinate(a);
    let t = face_coordinate(b);
    let d = match (column, row) {
        (0, 0) => Vec3::new(-1.0, t, s),
        (1, 0) => Vec3::new(s, t, 1.0),
        (2, 0) => Vec3::new(1.0, t, -s),
        (0, 1) => Vec3::new(-t, 1.0, -s),
        (1, 1) => Vec3::new(-t, -s, -1.0),
        _ => Vec3::new(-t, -1.0, s),
    };
    d.normalized()
}

/// From a position on a face (-0.5..0.5 edge to edge) to the cube's face plane
/// (-1..1): equi-angular on the face, linear in the padding.
fn face_coordinate(a: f64) -> f64 {
    if (-0.5..0.5).contains(&a) {
        (FRAC_PI_2 * a).tan()
    } else {
        2.0 * a
    }
}

/// The default EAC size for a source `w` pixels wide: `w` x `9w/16` (3840x2160 from
/// a 3840x1920 equirect, as YouTube and `v360` make it), rounded down to even.
pub fn default_size(w: u32) -> (u32, u32) {
    (w & !1, (w * 9 / 16).max(2) & !1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: Vec3, b: Vec3) -> bool {
        (a.x - b.x).abs() < 1e-9 && (a.y - b.y).abs() < 1e-9 && (a.z - b.z).abs() < 1e-9
    }

    /// The centre of face (column, row) of a w x h frame.
    fn face_centre(column: usize, row: usize, w: usize, h: usize) -> (f64, f64) {
        let face_w = (w as f64 - 2.0 * PAD) / 3.0;
        (
            PAD + face_w * (column as f64 + 0.5),
            h as f64 / 2.0 * (row as f64 + 0.5),
        )
    }

    #[test]
    fn faces_are_where_the_layout_says() {
        let (w, h) = (1536, 864);
        let faces = [
            ((0, 0), Vec3::new(-1.0, 0.0, 0.0)),
            ((1, 0), Vec3::new(0.0, 0.0, 1.0)),
            ((2, 0), Vec3::new(1.0, 0.0, 0.0)),
            ((0, 1), Vec3::new(0.0, 1.0, 0.0)),
            ((1, 1), Vec3::new(0.0, 0.0, -1.0)),
            ((2, 1), Vec3::new(0.0, -1.0, 0.0)),
        ];
        for ((c, r), want) in faces {
            let (u, v) = face_centre(c, r, w, h);
            assert!(close(direction(u, v, w, h), want), "face ({c}, {r})");
        }
    }

    #[test]
    fn the_top_row_is_upright() {
        let (w, h) = (1536, 864);
        let (u, v) = face_centre(1, 0, w, h);
        // Above the front face's centre is up (-y), to its right is +x.
        assert!(direction(u, v - 100.0, w, h).y < 0.0);
        assert!(direction(u + 100.0, v, w, h).x > 0.0);
    }

    #[test]
    fn the_back_face_is_turned_a_quarter() {
        let (w, h) = (1536, 864);
        let (u, v) = face_centre(1, 1, w, h);
        // Right of the back face's centre is up; below it is to the viewer's right
        // when facing back (-x).
        assert!(direction(u + 100.0, v, w, h).y < -0.2);
        assert!(direction(u, v + 100.0, w, h).x < -0.2);
    }

    #[test]
    fn face_edges_meet_at_45_degrees() {
        // Between front and right in the top row: the direction halfway between them.
        let (w, h) = (1536, 864);
        let face_w = (w as f64 - 2.0 * PAD) / 3.0;
        let d = direction(PAD + 2.0 * face_w, h as f64 / 4.0, w, h);
        assert!((d.x - d.z).abs() < 1e-9 && d.x > 0.0);
    }

    #[test]
    fn angles_are_even_across_a_face() {
        // Equi-angular: a quarter of the way across the front face is 22.5° from its edge.
        let (w, h) = (1536, 864);
        let face_w = (w as f64 - 2.0 * PAD) / 3.0;
        let d = direction(PAD + face_w * 1.25, h as f64 / 4.0, w, h);
        let angle = d.x.atan2(d.z).to_degrees();
        assert!((angle + 22.5).abs() < 1e-9, "{angle}");
    }

    #[test]
    fn default_size_is_youtubes() {
        assert_eq!(default_size(3840), (3840, 2160));
        assert_eq!(default_size(1024), (1024, 576));
    }
}
