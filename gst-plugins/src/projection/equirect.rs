//! The equirectangular projection: longitude across, latitude down.
//!
//! A `w`x`h` frame spans longitudes -180°..180° left to right and latitudes -90°
//! (up) ..90° (down) top to bottom; pixel `(i, j)` covers `[i, i + 1) x [j, j + 1)`
//! and stands for the direction at its centre.

use std::f64::consts::{FRAC_PI_2, PI};

use super::sphere::Vec3;

/// The direction at frame position `(u, v)` (pixel units, `(0, 0)` the top-left
/// corner of the frame, so a pixel's centre is at `i + 0.5`).
pub fn direction(u: f64, v: f64, w: usize, h: usize) -> Vec3 {
    let lon = (2.0 * u / w as f64 - 1.0) * PI;
    let lat = (2.0 * v / h as f64 - 1.0) * FRAC_PI_2;
    let (sin_lon, cos_lon) = lon.sin_cos();
    let (sin_lat, cos_lat) = lat.sin_cos();
    Vec3::new(cos_lat * sin_lon, sin_lat, cos_lat * cos_lon)
}

/// The sine and cosine of every column's longitude in a frame `w` pixels wide,
/// for filling many rows at once.
pub struct Columns {
    sin_cos: Vec<(f64, f64)>,
}

impl Columns {
    pub fn new(w: usize) -> Self {
        let sin_cos = (0..w)
            .map(|i| ((2.0 * (i as f64 + 0.5) / w as f64 - 1.0) * PI).sin_cos())
            .collect();
        Self { sin_cos }
    }

    /// The pixel centres of the row at `v` (see [`direction`]) of a frame `h` high.
    pub fn row(&self, v: f64, h: usize) -> Row<'_> {
        let (sin_lat, cos_lat) = ((2.0 * v / h as f64 - 1.0) * FRAC_PI_2).sin_cos();
        Row {
            columns: self,
            sin_lat,
            cos_lat,
        }
    }
}

/// One row of [`Columns`].
pub struct Row<'a> {
    columns: &'a Columns,
    sin_lat: f64,
    cos_lat: f64,
}

impl Row<'_> {
    /// The direction at the centre of column `i`, as [`direction`] gives it.
    pub fn direction(&self, i: usize) -> Vec3 {
        let (sin_lon, cos_lon) = self.columns.sin_cos[i];
        Vec3::new(self.cos_lat * sin_lon, self.sin_lat, self.cos_lat * cos_lon)
    }
}

/// Where unit direction `d` lies in a `w`x`h` frame, in sample coordinates (pixel
/// `(i, j)`'s centre is `(i, j)`). x is in `[-0.5, w - 0.5]`, y in `[-0.5, h - 0.5]`:
/// the half pixels beyond the first and last centres wrap around (x) or cross the
/// pole (y), which the sampler handles.
pub fn sample_point(d: Vec3, w: usize, h: usize) -> (f64, f64) {
    let lon = d.x.atan2(d.z);
    let lat = d.y.clamp(-1.0, 1.0).asin();
    let x = (lon / PI + 1.0) * 0.5 * w as f64 - 0.5;
    let y = (lat / FRAC_PI_2 + 1.0) * 0.5 * h as f64 - 0.5;
    (x, y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_centre_looks_forward() {
        let d = direction(512.0, 256.0, 1024, 512);
        assert!((d.z - 1.0).abs() < 1e-12 && d.x.abs() < 1e-12 && d.y.abs() < 1e-12);
    }

    #[test]
    fn a_quarter_across_looks_left_and_the_top_looks_up() {
        let d = direction(256.0, 256.0, 1024, 512);
        assert!((d.x + 1.0).abs() < 1e-12);
        let d = direction(100.0, 0.0, 1024, 512);
        assert!((d.y + 1.0).abs() < 1e-12);
    }

    #[test]
    fn rows_give_the_pixel_centres_directions() {
        let columns = Columns::new(64);
        let row = columns.row(7.5, 32);
        for i in 0..64 {
            let (a, b) = (row.direction(i), direction(i as f64 + 0.5, 7.5, 64, 32));
            assert!(
                (a.x - b.x).abs() < 1e-12 && (a.y - b.y).abs() < 1e-12 && (a.z - b.z).abs() < 1e-12
            );
        }
    }

    #[test]
    fn sample_point_inverts_direction_at_pixel_centres() {
        let (w, h) = (64, 32);
        for j in 0..h {
            for i in 0..w {
                let d = direction(i as f64 + 0.5, j as f64 + 0.5, w, h);
                let (x, y) = sample_point(d, w, h);
                assert!((x - i as f64).abs() < 1e-9, "x {x} for column {i}");
                assert!((y - j as f64).abs() < 1e-9, "y {y} for row {j}");
            }
        }
    }
}
