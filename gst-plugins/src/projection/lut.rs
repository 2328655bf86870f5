//! The lookup table: for every pixel of one output plane, where in the input plane
//! it is read from, in fixed point. Built once per caps or settings change; every
//! frame then follows it ([`super::remap`]).
//!
//! Most pixels are one bilinear sample from a 2x2 block of the input: the block's
//! first byte offset and two 7-bit fractions. Pixels on the lens seam's band mix in
//! a second sample; they come in runs along a row ([`BlendRun`]), so both passes
//! can work on many pixels at once. A pixel whose 2x2 block leaves the plane
//! (wrapping round an equirect frame's sides or across its poles, or at a fisheye
//! image's frame edge) or that no lens sees is a [`Fixup`] with explicit taps.

use std::ops::Range;

use super::fisheye::Located;
use super::parallel::{band_ranges, run_each};
use super::sphere::Vec3;
use super::{eac, equirect, Mapping, Source, Target};

/// Bits of a sample position's fraction (and of a blend weight): 1/128 pixel.
pub(crate) const FRAC_BITS: u32 = 7;
/// Output tile size for the fast pass (see [`PlaneLut::entry`]).
pub(crate) const TILE_W: usize = 64;
pub(crate) const TILE_H: usize = 16;
/// 1.0 in fractions and blend weights.
pub(crate) const ONE: u32 = 1 << FRAC_BITS;
/// Bytes a fast entry reads from each of its two rows: the two pixels of a planar
/// plane come as four bytes (one 32-bit load), as do two UV pairs.
pub(crate) const ROW_READ: usize = 4;

/// How one input plane is laid out in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlaneLayout {
    /// Pixels across.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// Bytes from one row to the next.
    pub stride: usize,
    /// Bytes per pixel: 1 for a planar plane (Y, U, V), 2 for interleaved UV (NV12).
    pub components: usize,
}

/// Pixels `x..x + len` of a row mix in a second sample: entries `first..first +
/// len` of the table's `second_*` arrays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BlendRun {
    pub x: u32,
    pub len: u32,
    pub first: u32,
}

/// A pixel computed from up to eight explicit taps: the value is
/// `(sum(weights[i] * input[taps[i] + component]) + bias) >> 14`, at most 255.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fixup {
    pub x: u32,
    pub taps: [u32; 8],
    pub weights: [u32; 8],
    pub bias: u32,
}

/// `Fixup` weights sum to this (the product of two bilinear weights).
pub(crate) const FIXUP_SHIFT: u32 = 2 * FRAC_BITS;

/// The table for one output plane. Immutable once built.
#[derive(Debug)]
pub struct PlaneLut {
    pub(crate) width: usize,
    pub(crate) height: usize,
    pub(crate) input: PlaneLayout,
    /// Per output pixel, in tile order ([`PlaneLut::entry`]): byte offset of the
    /// top-left tap of its 2x2 block (the pixel's first component).
    pub(crate) taps: Vec<u32>,
    /// Per output pixel, in tile order: horizontal fraction in the low byte,
    /// vertical in the high one, both in 1/128 pixel.
    pub(crate) fracs: Vec<u16>,
    pub(crate) runs: Vec<BlendRun>,
    /// `runs[run_rows[y]..run_rows[y + 1]]` are row y's.
    pub(crate) run_rows: Vec<u32>,
    /// The second sample of every blended pixel, in run order, like `taps`/`fracs`.
    pub(crate) second_taps: Vec<u32>,
    pub(crate) second_fracs: Vec<u16>,
    /// How much of the second sample, in 1/128 (1..=127).
    pub(crate) second_weights: Vec<u8>,
    pub(crate) fixups: Vec<Fixup>,
    /// `fixups[fixup_rows[y]..fixup_rows[y + 1]]` are row y's.
    pub(crate) fixup_rows: Vec<u32>,
    /// One past the highest input byte any entry reads.
    pub(crate) reach: usize,
}

/// A table that cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LutError {
    #[error("plane of {0}x{1} is empty")]
    Empty(usize, usize),
    #[error("plane of {0} bytes is too large for 31-bit offsets")]
    TooLarge(usize),
    #[error("input stride {stride} is shorter than a row of {width} pixels")]
    Stride { stride: usize, width: usize },
    #[error("{0} bytes per pixel: only planar (1) and interleaved UV (2) planes are handled")]
    Components(usize),
}

impl PlaneLut {
    /// The table mapping a `width`x`height` output plane from `input` under
    /// `mapping`; directions no lens sees are painted `fill`. The rows are shared
    /// among `threads` threads (at least one).
    pub fn build(
        mapping: &Mapping,
        input: PlaneLayout,
        width: usize,
        height: usize,
        fill: u8,
        threads: usize,
    ) -> Result<Self, LutError> {
        if width == 0 || height == 0 {
            return Err(LutError::Empty(width, height));
        }
        if input.width == 0 || input.height == 0 {
            return Err(LutError::Empty(input.width, input.height));
        }
        if input.components != 1 && input.components != 2 {
            return Err(LutError::Components(input.components));
        }
        if input.stride < input.width * input.components {
            return Err(LutError::Stride {
                stride: input.stride,
                width: input.width,
            });
        }
        // Offsets are gathered as signed 32-bit indices.
        let bytes = input.stride * input.height;
        if i32::try_from(bytes).is_err() || u32::try_from(width * height).is_err() {
            return Err(LutError::TooLarge(bytes));
        }
        let builder = RowBuilder {
            mapping,
            input,
            width,
            height,
            fill,
        };
        let parts = run_each(band_ranges(height, threads), |rows| builder.rows(rows));
        Ok(Self::assemble(width, height, input, parts))
    }

    fn assemble(width: usize, height: usize, input: PlaneLayout, parts: Vec<Part>) -> Self {
        let mut lut = Self {
            width,
            height,
            input,
            taps: Vec::with_capacity(width * height),
            fracs: Vec::with_capacity(width * height),
            runs: Vec::new(),
            run_rows: vec![0],
            second_taps: Vec::new(),
            second_fracs: Vec::new(),
            second_weights: Vec::new(),
            fixups: Vec::new(),
            fixup_rows: vec![0],
            reach: 0,
        };
        for part in parts {
            lut.taps.extend_from_slice(&part.taps);
            lut.fracs.extend_from_slice(&part.fracs);
            let base = lut.second_taps.len() as u32;
            for n in part.runs_per_row {
                lut.run_rows
                    .push(lut.run_rows.last().copied().unwrap_or(0) + n);
            }
            lut.runs.extend(part.runs.iter().map(|r| BlendRun {
                first: r.first + base,
                ..*r
            }));
            lut.second_taps.extend_from_slice(&part.second_taps);
            lut.second_fracs.extend_from_slice(&part.second_fracs);
            lut.second_weights.extend_from_slice(&part.second_weights);
            for n in part.fixups_per_row {
                lut.fixup_rows
                    .push(lut.fixup_rows.last().copied().unwrap_or(0) + n);
            }
            lut.fixups.extend_from_slice(&part.fixups);
        }
        lut.tile_order();
        lut.reach = lut.compute_reach();
        lut
    }

    /// Reorders `taps` and `fracs` from row-major into tile order (see
    /// [`PlaneLut::entry`]).
    fn tile_order(&mut self) {
        let (w, h) = (self.width, self.height);
        let mut taps = vec![0u32; w * h];
        let mut fracs = vec![0u16; w * h];
        for y in 0..h {
            for x in 0..w {
                let e = self.entry(x, y);
                taps[e] = self.taps[y * w + x];
                fracs[e] = self.fracs[y * w + x];
            }
        }
        self.taps = taps;
        self.fracs = fracs;
    }

    /// Where pixel (x, y)'s fast entry is. The output is cut into tiles of
    /// `TILE_W` x `TILE_H` pixels (smaller at the right and bottom edges), stored
    /// one after another, left to right and then down, each tile row-major: the
    /// input a tile reads stays in the first-level cache while the tile is done.
    pub(crate) fn entry(&self, x: usize, y: usize) -> usize {
        let ty0 = y / TILE_H * TILE_H;
        let th = TILE_H.min(self.height - ty0);
        let tx0 = x / TILE_W * TILE_W;
        let tw = TILE_W.min(self.width - tx0);
        ty0 * self.width + tx0 * th + (y - ty0) * tw + (x - tx0)
    }

    /// Measured over every entry rather than trusted from the builder: the
    /// resampler reads the input unchecked up to this bound.
    fn compute_reach(&self) -> usize {
        let block = self.input.stride + ROW_READ;
        let fast = self
            .taps
            .iter()
            .chain(&self.second_taps)
            .map(|&t| t as usize + block)
            .max();
        let fixup = self
            .fixups
            .iter()
            .flat_map(|f| f.taps.iter())
            .map(|&t| t as usize + self.input.components)
            .max();
        fast.into_iter().chain(fixup).max().unwrap_or(0)
    }

    /// Output pixels across.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Output rows.
    pub fn height(&self) -> usize {
        self.height
    }

    /// The input layout this table reads.
    pub fn input(&self) -> PlaneLayout {
        self.input
    }

    /// Output pixels that blend the two lenses.
    pub fn blended_pixels(&self) -> usize {
        self.second_taps.len()
    }

    /// Output pixels with explicit taps (edges, gaps).
    pub fn fixup_pixels(&self) -> usize {
        self.fixups.len()
    }
}

/// Entries for a band of rows.
#[derive(Default)]
struct Part {
    taps: Vec<u32>,
    fracs: Vec<u16>,
    runs: Vec<BlendRun>,
    runs_per_row: Vec<u32>,
    second_taps: Vec<u32>,
    second_fracs: Vec<u16>,
    second_weights: Vec<u8>,
    fixups: Vec<Fixup>,
    fixups_per_row: Vec<u32>,
}

/// How a sample point's 2x2 block is completed where it leaves the plane.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Edges {
    /// Equirect: columns wrap around, rows past a pole continue on the far side.
    Sphere,
    /// Anything else: the nearest edge pixel repeats.
    Clamp,
}

/// One bilinear sample, quantised.
#[derive(Clone, Copy)]
enum Sample {
    /// The 2x2 block (and the bytes its loads cover) lies inside the plane.
    Fast { tap: u32, frac: u16 },
    /// Explicit taps, weights summing to `1 << FIXUP_SHIFT`.
    Taps { taps: [u32; 4], weights: [u32; 4] },
}

struct RowBuilder<'a> {
    mapping: &'a Mapping,
    input: PlaneLayout,
    width: usize,
    height: usize,
    fill: u8,
}

impl RowBuilder<'_> {
    fn rows(&self, rows: Range<usize>) -> Part {
        let n = rows.len() * self.width;
        let mut part = Part {
            taps: Vec::with_capacity(n),
            fracs: Vec::with_capacity(n),
            ..Part::default()
        };
        // Equirect output: each column's longitude is the same on every row.
        let columns = match self.mapping.target {
            Target::Equirect => equirect::Columns::new(self.width),
            Target::Cubemap => equirect::Columns::new(0),
        };
        for y in rows {
            let (runs, fixups) = (part.runs.len(), part.fixups.len());
            let v = y as f64 + 0.5;
            let row =
                (self.mapping.target == Target::Equirect).then(|| columns.row(v, self.height));
            for x in 0..self.width {
                let out_dir = match &row {
                    Some(row) => row.direction(x),
                    None => eac::direction(x as f64 + 0.5, v, self.width, self.height),
                };
                self.pixel(x, out_dir, &mut part, runs);
            }
            part.runs_per_row.push((part.runs.len() - runs) as u32);
            part.fixups_per_row
                .push((part.fixups.len() - fixups) as u32);
        }
        part
    }

    /// Adds the row's pixel `x`, which looks along `out_dir`; `row_runs` is where
    /// this row's runs start in `part.runs`.
    fn pixel(&self, x: usize, out_dir: Vec3, part: &mut Part, row_runs: usize) {
        let d = self.mapping.rotation.apply(out_dir).normalized();
        let (w, h) = (self.input.width, self.input.height);
        let x32 = x as u32;
        match self.mapping.source {
            Source::Equirect => {
                let p = equirect::sample_point(d, w, h);
                self.push_one(x32, self.sample(p, Edges::Sphere), part);
            }
            Source::DualFisheye(rig) => match rig.locate(d, w, h) {
                Located::Front(p) | Located::Back(p) => {
                    self.push_one(x32, self.sample(p, Edges::Clamp), part);
                }
                Located::Both {
                    front,
                    back,
                    back_weight,
                } => {
                    let weight = (back_weight * f64::from(ONE)).round() as u32;
                    let (first, second) = (
                        self.sample(front, Edges::Clamp),
                        self.sample(back, Edges::Clamp),
                    );
                    match weight {
                        0 => self.push_one(x32, first, part),
                        w if w >= ONE => self.push_one(x32, second, part),
                        _ => self.push_two(x32, first, second, weight, part, row_runs),
                    }
                }
                Located::Neither => {
                    part.taps.push(0);
                    part.fracs.push(0);
                    part.fixups.push(Fixup {
                        x: x32,
                        taps: [0; 8],
                        weights: [0; 8],
                        bias: u32::from(self.fill) << FIXUP_SHIFT,
                    });
                }
            },
        }
    }

    fn push_one(&self, x: u32, s: Sample, part: &mut Part) {
        match s {
            Sample::Fast { tap, frac } => {
                part.taps.push(tap);
                part.fracs.push(frac);
            }
            Sample::Taps { taps, weights } => {
                // The fast pass writes something harmless; the fixup overwrites it.
                part.taps.push(0);
                part.fracs.push(0);
                let mut fixup = Fixup {
                    x,
                    taps: [0; 8],
                    weights: [0; 8],
                    bias: 1 << (FIXUP_SHIFT - 1),
                };
                fixup.taps[..4].copy_from_slice(&taps);
                fixup.weights[..4].copy_from_slice(&weights);
                part.fixups.push(fixup);
            }
        }
    }

    /// `first` with `weight`/128 of `second` mixed in.
    fn push_two(
        &self,
        x: u32,
        first: Sample,
        second: Sample,
        weight: u32,
        part: &mut Part,
        row_runs: usize,
    ) {
        if let (
            Sample::Fast { tap, frac },
            Sample::Fast {
                tap: tap2,
                frac: frac2,
            },
        ) = (first, second)
        {
            part.taps.push(tap);
            part.fracs.push(frac);
            match part.runs[row_runs..].last_mut() {
                Some(run) if run.x + run.len == x => run.len += 1,
                _ => part.runs.push(BlendRun {
                    x,
                    len: 1,
                    first: part.second_taps.len() as u32,
                }),
            }
            part.second_taps.push(tap2);
            part.second_fracs.push(frac2);
            part.second_weights.push(weight as u8);
            return;
        }
        let (t1, w1) = self.explicit(first);
        let (t2, w2) = self.explicit(second);
        let mut fixup = Fixup {
            x,
            taps: [0; 8],
            weights: [0; 8],
            bias: 1 << (FIXUP_SHIFT - 1),
        };
        for i in 0..4 {
            fixup.taps[i] = t1[i];
            fixup.weights[i] = (w1[i] * (ONE - weight) + ONE / 2) >> FRAC_BITS;
            fixup.taps[4 + i] = t2[i];
            fixup.weights[4 + i] = (w2[i] * weight + ONE / 2) >> FRAC_BITS;
        }
        part.taps.push(0);
        part.fracs.push(0);
        part.fixups.push(fixup);
    }

    fn explicit(&self, s: Sample) -> ([u32; 4], [u32; 4]) {
        match s {
            Sample::Taps { taps, weights } => (taps, weights),
            Sample::Fast { tap, frac } => {
                let (c, stride) = (self.input.components as u32, self.input.stride as u32);
                let taps = [tap, tap + c, tap + stride, tap + stride + c];
                (
                    taps,
                    bilinear_weights(u32::from(frac & 0xff), u32::from(frac >> 8)),
                )
            }
        }
    }

    /// The bilinear sample at sample coordinates `p` (pixel centres at integers).
    fn sample(&self, p: (f64, f64), edges: Edges) -> Sample {
        let (w, h) = (self.input.width as i64, self.input.height as i64);
        let (stride, c) = (self.input.stride, self.input.components);
        let (x0, fx) = quantise(p.0);
        let (y0, fy) = quantise(p.1);
        if (0..w - 1).contains(&x0) && (0..h - 1).contains(&y0) {
            let tap = y0 as usize * stride + x0 as usize * c;
            // Its loads must stay inside the plane too (a planar block's last
            // row reads two bytes beyond its pair).
            if tap + stride + ROW_READ <= stride * self.input.height {
                return Sample::Fast {
                    tap: tap as u32,
                    frac: (fx | (fy << 8)) as u16,
                };
            }
        }
        let mut taps = [0u32; 4];
        for (k, tap) in taps.iter_mut().enumerate() {
            let (col, row) = (x0 + (k & 1) as i64, y0 + (k >> 1) as i64);
            let (col, row) = match edges {
                Edges::Clamp => (col.clamp(0, w - 1), row.clamp(0, h - 1)),
                Edges::Sphere => {
                    // Past a pole: the mirrored row, half a turn round.
                    let (row, turn) = if row < 0 {
                        (-row - 1, w / 2)
                    } else if row >= h {
                        (2 * h - 1 - row, w / 2)
                    } else {
                        (row, 0)
                    };
                    ((col + turn).rem_euclid(w), row.clamp(0, h - 1))
                }
            };
            *tap = (row as usize * stride + col as usize * c) as u32;
        }
        Sample::Taps {
            taps,
            weights: bilinear_weights(fx, fy),
        }
    }
}

/// Integer part and fraction in 1/128 of sample coordinate `v`.
fn quantise(v: f64) -> (i64, u32) {
    let q = (v * f64::from(ONE)).round() as i64;
    (
        q.div_euclid(i64::from(ONE)),
        q.rem_euclid(i64::from(ONE)) as u32,
    )
}

/// Weights (summing to `1 << FIXUP_SHIFT`) of the top-left, top-right,
/// bottom-left and bottom-right taps for fractions `fx`, `fy` in 1/128.
fn bilinear_weights(fx: u32, fy: u32) -> [u32; 4] {
    [
        (ONE - fx) * (ONE - fy),
        fx * (ONE - fy),
        (ONE - fx) * fy,
        fx * fy,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::projection::fisheye::{DualFisheye, Lens};
    use crate::projection::sphere::Rotation;

    fn equirect(rotation: Rotation) -> Mapping {
        Mapping {
            source: Source::Equirect,
            target: Target::Equirect,
            rotation,
        }
    }

    fn layout(width: usize, height: usize) -> PlaneLayout {
        PlaneLayout {
            width,
            height,
            stride: width,
            components: 1,
        }
    }

    #[test]
    fn identity_reads_each_pixel_itself() {
        let lut =
            PlaneLut::build(&equirect(Rotation::IDENTITY), layout(64, 32), 64, 32, 0, 2).unwrap();
        // Inside: one tap at the pixel itself, no fraction (or a whole one to the
        // next pixel, which is the same value).
        for y in 0..31 {
            for x in 0..if y == 30 { 61 } else { 63 } {
                let i = lut.entry(x, y);
                assert_eq!((lut.taps[i], lut.fracs[i]), ((y * 64 + x) as u32, 0));
            }
        }
        // The last column and row complete their blocks at the edges, as do the
        // last two blocks of the next-to-last row, whose 4-byte loads would run
        // past the plane.
        assert_eq!(lut.fixups.len(), 64 + 31 + 2);
        assert!(lut.runs.is_empty());
        assert!(lut.reach <= 64 * 32);
    }

    #[test]
    fn rows_index_their_entries() {
        let lut =
            PlaneLut::build(&equirect(Rotation::IDENTITY), layout(64, 32), 64, 32, 0, 3).unwrap();
        assert_eq!(lut.fixup_rows.len(), 33);
        for y in 0..32 {
            let row = &lut.fixups[lut.fixup_rows[y] as usize..lut.fixup_rows[y + 1] as usize];
            // The last column of every row, the whole last row and the two
            // next-to-last blocks before it.
            let expected = match y {
                31 => 64,
                30 => 3,
                _ => 1,
            };
            assert_eq!(row.len(), expected, "row {y}");
        }
    }

    #[test]
    fn a_half_turn_of_yaw_swaps_the_halves() {
        let lut = PlaneLut::build(
            &equirect(Rotation::from_yaw_pitch_roll(180.0, 0.0, 0.0)),
            layout(64, 32),
            64,
            32,
            0,
            1,
        )
        .unwrap();
        assert_eq!(
            (lut.taps[lut.entry(5, 10)], lut.fracs[lut.entry(5, 10)]),
            ((10 * 64 + 37) as u32, 0)
        );
    }

    #[test]
    fn wrapping_taps_cross_the_frame_side() {
        // Half a pixel of yaw: column 0 reads between the last column and the first.
        let half_pixel = 360.0 / 64.0 / 2.0;
        let lut = PlaneLut::build(
            &equirect(Rotation::from_yaw_pitch_roll(-half_pixel, 0.0, 0.0)),
            layout(64, 32),
            64,
            32,
            0,
            1,
        )
        .unwrap();
        let row = &lut.fixups[lut.fixup_rows[5] as usize..lut.fixup_rows[6] as usize];
        let first = row.iter().find(|f| f.x == 0).expect("column 0 is a fixup");
        assert_eq!(&first.taps[..2], &[5 * 64 + 63, 5 * 64]);
        assert_eq!(&first.weights[..2], &[64 * 128, 64 * 128]);
    }

    #[test]
    fn across_the_pole_is_half_a_turn_round() {
        let m = equirect(Rotation::IDENTITY);
        let builder = RowBuilder {
            mapping: &m,
            input: layout(64, 32),
            width: 64,
            height: 32,
            fill: 0,
        };
        // Half a pixel above the top row's centres: halfway to the row beyond the
        // pole, which is the top row half a turn round.
        let Sample::Taps { taps, weights } = builder.sample((10.0, -0.5), Edges::Sphere) else {
            panic!("not completed across the pole");
        };
        assert_eq!(taps, [42, 43, 10, 11]);
        assert_eq!(weights, [128 * 64, 0, 128 * 64, 0]);
        // And below the bottom row.
        let Sample::Taps { taps, .. } = builder.sample((40.0, 31.5), Edges::Sphere) else {
            panic!("not completed across the pole");
        };
        assert_eq!(taps, [31 * 64 + 40, 31 * 64 + 41, 31 * 64 + 8, 31 * 64 + 9]);
    }

    #[test]
    fn clamped_edges_repeat_the_last_pixel() {
        let m = equirect(Rotation::IDENTITY);
        let builder = RowBuilder {
            mapping: &m,
            input: layout(64, 32),
            width: 64,
            height: 32,
            fill: 0,
        };
        let Sample::Taps { taps, .. } = builder.sample((63.25, 2.0), Edges::Clamp) else {
            panic!("not completed at the edge");
        };
        assert_eq!(taps, [2 * 64 + 63, 2 * 64 + 63, 3 * 64 + 63, 3 * 64 + 63]);
    }

    fn rig(fov: f64, overlap: f64) -> Mapping {
        let lens = |center_x| Lens {
            fov,
            center_x,
            center_y: 0.5,
            radius: 0.25,
            rotation: 0.0,
        };
        Mapping {
            source: Source::DualFisheye(DualFisheye {
                front: lens(0.75),
                back: lens(0.25),
                overlap,
            }),
            target: Target::Equirect,
            rotation: Rotation::IDENTITY,
        }
    }

    #[test]
    fn the_seam_band_blends_and_only_there() {
        let lut = PlaneLut::build(&rig(200.0, 10.0), layout(256, 128), 256, 128, 0, 2).unwrap();
        assert!(lut.second_taps.len() > 100);
        let mut seen = 0;
        for y in 0..128 {
            for run in &lut.runs[lut.run_rows[y] as usize..lut.run_rows[y + 1] as usize] {
                for i in 0..run.len {
                    let x = run.x + i;
                    let d = equirect::direction(x as f64 + 0.5, y as f64 + 0.5, 256, 128);
                    // Within 5° of the seam (z = 0), plus rounding of the weights.
                    assert!(d.z.abs() < 5.1f64.to_radians().sin(), "({x}, {y})");
                    let weight = lut.second_weights[(run.first + i) as usize];
                    assert!(weight > 0 && u32::from(weight) < ONE);
                    seen += 1;
                }
            }
        }
        assert_eq!(seen, lut.second_taps.len());
        // Runs are contiguous: at most one on each side of each lens per row.
        assert!(lut.runs.len() <= 4 * 128);
    }

    #[test]
    fn a_hard_seam_has_no_blends() {
        let lut = PlaneLut::build(&rig(200.0, 0.0), layout(256, 128), 256, 128, 0, 2).unwrap();
        assert!(lut.runs.is_empty());
    }

    #[test]
    fn what_no_lens_sees_is_filled() {
        let lut = PlaneLut::build(&rig(160.0, 0.0), layout(256, 128), 256, 128, 16, 2).unwrap();
        let filled = lut
            .fixups
            .iter()
            .filter(|f| f.bias == 16 << FIXUP_SHIFT)
            .count();
        assert!(filled > 0);
        assert!(lut
            .fixups
            .iter()
            .filter(|f| f.bias == 16 << FIXUP_SHIFT)
            .all(|f| f.weights == [0; 8]));
    }

    #[test]
    fn interleaved_chroma_steps_two_bytes() {
        let input = PlaneLayout {
            width: 32,
            height: 16,
            stride: 64,
            components: 2,
        };
        let lut = PlaneLut::build(&equirect(Rotation::IDENTITY), input, 32, 16, 128, 1).unwrap();
        assert_eq!(lut.taps[lut.entry(7, 3)], 3 * 64 + 14);
        assert!(lut.reach <= 64 * 16);
    }

    #[test]
    fn threads_build_the_same_table() {
        let m = rig(200.0, 10.0);
        let one = PlaneLut::build(&m, layout(128, 64), 128, 64, 0, 1).unwrap();
        let three = PlaneLut::build(&m, layout(128, 64), 128, 64, 0, 3).unwrap();
        assert_eq!(one.taps, three.taps);
        assert_eq!(one.runs, three.runs);
        assert_eq!(one.run_rows, three.run_rows);
        assert_eq!(one.second_taps, three.second_taps);
        assert_eq!(one.fixups, three.fixups);
    }

    #[test]
    fn tile_order_visits_every_entry_once() {
        let lut = PlaneLut::build(
            &equirect(Rotation::IDENTITY),
            layout(150, 37),
            150,
            37,
            0,
            1,
        )
        .unwrap();
        let mut seen = vec![false; 150 * 37];
        for y in 0..37 {
            for x in 0..150 {
                let e = lut.entry(x, y);
                assert!(!seen[e], "({x}, {y}) shares entry {e}");
                seen[e] = true;
            }
        }
        // Tiles are row-major inside: a tile row's entries follow each other.
        assert_eq!(lut.entry(1, 0), lut.entry(0, 0) + 1);
        assert_eq!(lut.entry(0, 1), lut.entry(0, 0) + TILE_W);
    }

    #[test]
    fn bad_layouts_are_refused() {
        let m = equirect(Rotation::IDENTITY);
        assert!(matches!(
            PlaneLut::build(&m, layout(0, 32), 64, 32, 0, 1),
            Err(LutError::Empty(0, 32))
        ));
        let narrow = PlaneLayout {
            stride: 10,
            ..layout(64, 32)
        };
        assert!(matches!(
            PlaneLut::build(&m, narrow, 64, 32, 0, 1),
            Err(LutError::Stride { .. })
        ));
    }
}
