//! Directions on the unit sphere and the rotation applied to them.
//!
//! Axes as in ffmpeg's `v360`: x to the right, y down, z forward (the centre of an
//! equirectangular frame).

/// A direction (not necessarily of unit length unless stated).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Vec3 {
    pub x: f64,
    pub y: f64,
    pub z: f64,
}

impl Vec3 {
    pub const fn new(x: f64, y: f64, z: f64) -> Self {
        Self { x, y, z }
    }

    pub fn length(self) -> f64 {
        (self.x * self.x + self.y * self.y + self.z * self.z).sqrt()
    }

    /// The same direction with length 1; the zero vector stays zero.
    pub fn normalized(self) -> Self {
        let l = self.length();
        if l == 0.0 {
            return self;
        }
        Self::new(self.x / l, self.y / l, self.z / l)
    }

    pub fn dot(self, o: Self) -> f64 {
        self.x * o.x + self.y * o.y + self.z * o.z
    }
}

/// A rotation of the sphere, as a 3x3 matrix applied to output directions to find
/// the input direction that lands there.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rotation {
    m: [[f64; 3]; 3],
}

impl Rotation {
    pub const IDENTITY: Self = Self {
        m: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
    };

    /// Yaw, pitch and roll in degrees, with ffmpeg `v360`'s meaning (rotation order
    /// `ypr`): the output's centre shows what lies `yaw` degrees to the right of the
    /// input's centre and `pitch` degrees above it; `roll` turns the picture about the
    /// viewing axis (a positive roll shows the input turned counter-clockwise).
    pub fn from_yaw_pitch_roll(yaw: f64, pitch: f64, roll: f64) -> Self {
        let (sy, cy) = yaw.to_radians().sin_cos();
        let (sp, cp) = pitch.to_radians().sin_cos();
        let (sr, cr) = roll.to_radians().sin_cos();
        // About the vertical (y) axis, the horizontal (x) axis and the viewing (z) axis.
        let about_y = [[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]];
        let about_x = [[1.0, 0.0, 0.0], [0.0, cp, -sp], [0.0, sp, cp]];
        let about_z = [[cr, -sr, 0.0], [sr, cr, 0.0], [0.0, 0.0, 1.0]];
        Self {
            m: multiply(&multiply(&about_y, &about_x), &about_z),
        }
    }

    pub fn apply(&self, v: Vec3) -> Vec3 {
        let m = &self.m;
        Vec3::new(
            m[0][0] * v.x + m[0][1] * v.y + m[0][2] * v.z,
            m[1][0] * v.x + m[1][1] * v.y + m[1][2] * v.z,
            m[2][0] * v.x + m[2][1] * v.y + m[2][2] * v.z,
        )
    }
}

fn multiply(a: &[[f64; 3]; 3], b: &[[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let mut c = [[0.0; 3]; 3];
    for (i, row) in c.iter_mut().enumerate() {
        for (j, cell) in row.iter_mut().enumerate() {
            *cell = (0..3).map(|k| a[i][k] * b[k][j]).sum();
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: Vec3, b: Vec3) -> bool {
        (a.x - b.x).abs() < 1e-12 && (a.y - b.y).abs() < 1e-12 && (a.z - b.z).abs() < 1e-12
    }

    const FORWARD: Vec3 = Vec3::new(0.0, 0.0, 1.0);
    const RIGHT: Vec3 = Vec3::new(1.0, 0.0, 0.0);
    const DOWN: Vec3 = Vec3::new(0.0, 1.0, 0.0);
    const UP: Vec3 = Vec3::new(0.0, -1.0, 0.0);

    #[test]
    fn zero_angles_are_the_identity() {
        assert_eq!(
            Rotation::from_yaw_pitch_roll(0.0, 0.0, 0.0),
            Rotation::IDENTITY
        );
    }

    #[test]
    fn yaw_looks_right() {
        let r = Rotation::from_yaw_pitch_roll(90.0, 0.0, 0.0);
        assert!(close(r.apply(FORWARD), RIGHT));
        assert!(close(r.apply(DOWN), DOWN));
    }

    #[test]
    fn pitch_looks_up() {
        let r = Rotation::from_yaw_pitch_roll(0.0, 90.0, 0.0);
        assert!(close(r.apply(FORWARD), UP));
        assert!(close(r.apply(RIGHT), RIGHT));
    }

    #[test]
    fn roll_turns_about_the_view_axis() {
        let r = Rotation::from_yaw_pitch_roll(0.0, 0.0, 90.0);
        assert!(close(r.apply(FORWARD), FORWARD));
        // The output's right-hand side shows what was below.
        assert!(close(r.apply(RIGHT), DOWN));
    }

    #[test]
    fn yaw_applies_after_pitch_and_roll() {
        // ypr: the matrix is yaw * pitch * roll, so a direction is rolled first.
        let r = Rotation::from_yaw_pitch_roll(90.0, 90.0, 0.0);
        let yaw = Rotation::from_yaw_pitch_roll(90.0, 0.0, 0.0);
        let pitch = Rotation::from_yaw_pitch_roll(0.0, 90.0, 0.0);
        let v = Vec3::new(0.3, -0.2, 0.9).normalized();
        assert!(close(r.apply(v), yaw.apply(pitch.apply(v))));
    }

    #[test]
    fn rotations_keep_lengths() {
        let r = Rotation::from_yaw_pitch_roll(33.0, -71.0, 123.0);
        let v = Vec3::new(0.3, -0.2, 0.9);
        assert!((r.apply(v).length() - v.length()).abs() < 1e-12);
    }
}
