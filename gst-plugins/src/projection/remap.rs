//! Per-frame resampling: every output pixel from its [`PlaneLut`] entry, the rows
//! of each plane split into bands across threads.

use std::ops::Range;

use super::kernel;
use super::lut::{PlaneLut, FIXUP_SHIFT, TILE_H, TILE_W};
use super::parallel::{band_ranges, run_each};

/// How far ahead (in table entries, one output tile) the fast pass prefetches the
/// input it is about to read.
const PREFETCH_AHEAD: usize = TILE_W * TILE_H;

/// One input plane and the output plane made from it.
pub struct PlaneIo<'a> {
    pub src: &'a [u8],
    pub dst: &'a mut [u8],
    /// Bytes from one output row to the next.
    pub dst_stride: usize,
}

/// Planes to fill from one table: one, or several laid out alike (I420's U and
/// V), done in one pass over the table.
pub struct PlaneJob<'a> {
    pub lut: &'a PlaneLut,
    pub planes: Vec<PlaneIo<'a>>,
}

/// A frame that does not fit its table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemapError {
    #[error("input plane of {len} bytes is shorter than its table reads ({reach})")]
    ShortInput { len: usize, reach: usize },
    #[error(
        "output plane of {len} bytes (stride {stride}) cannot hold {rows} rows of {row} bytes"
    )]
    ShortOutput {
        len: usize,
        stride: usize,
        rows: usize,
        row: usize,
    },
}

/// Buffers [`remap_with`] keeps from frame to frame: the row pairs of the input
/// planes the vector kernels read (see [`kernel`]), twice each plane's size, so
/// that no frame pays for fresh pages.
#[derive(Default)]
pub struct Scratch {
    pairs: Vec<Vec<u8>>,
}

/// [`remap_with`] with buffers of its own (tests, one-off frames).
pub fn remap(jobs: Vec<PlaneJob<'_>>, threads: usize) -> Result<(), RemapError> {
    remap_with(jobs, threads, &mut Scratch::default())
}

/// Fills every job's output planes, each plane's rows shared among `threads`
/// threads. Checks every plane against its table first and touches nothing if one
/// does not fit.
pub fn remap_with(
    jobs: Vec<PlaneJob<'_>>,
    threads: usize,
    scratch: &mut Scratch,
) -> Result<(), RemapError> {
    for job in &jobs {
        for io in &job.planes {
            check(job.lut, io)?;
        }
    }
    let threads = threads.max(1);
    // The row pairs of the planes the vector kernels read (one byte per pixel),
    // made by all threads before any band starts: a band reads anywhere in them.
    let paired: Vec<bool> = jobs
        .iter()
        .flat_map(|job| {
            job.planes
                .iter()
                .map(|_| kernel::wants_row_pairs() && job.lut.input.components == 1)
        })
        .collect();
    let wanted = paired.iter().filter(|p| **p).count();
    if scratch.pairs.len() < wanted {
        scratch.pairs.resize_with(wanted, Vec::new);
    }
    let mut buffers = scratch.pairs.iter_mut();
    let mut pieces = Vec::new();
    let mut pairs: Vec<Option<&[u8]>> = Vec::new();
    let mut flags = paired.iter();
    for job in &jobs {
        for io in &job.planes {
            if !flags.next().copied().unwrap_or(false) {
                continue;
            }
            let Some(buffer) = buffers.next() else {
                continue;
            };
            buffer.resize(2 * io.src.len(), 0);
            let stride = job.lut.input.stride;
            let n = io.src.len();
            let mut rest = &mut buffer[..];
            for k in 0..threads {
                let (start, end) = (n * k / threads, n * (k + 1) / threads);
                let (piece, after) = rest.split_at_mut(2 * (end - start));
                rest = after;
                pieces.push((io.src, stride, piece, start));
            }
        }
    }
    // Piece k of every plane goes to thread k.
    let mut per_thread: Vec<Vec<_>> = (0..threads).map(|_| Vec::new()).collect();
    for (i, piece) in pieces.into_iter().enumerate() {
        per_thread[i % threads].push(piece);
    }
    per_thread.retain(|p| !p.is_empty());
    run_each(per_thread, |pieces| {
        for (src, stride, out, start) in pieces {
            kernel::row_pairs(src, stride, out, start);
        }
    });
    let mut buffers = scratch.pairs.iter();
    for &p in &paired {
        pairs.push(if p {
            buffers.next().map(|b| &b[..])
        } else {
            None
        });
    }
    let mut pairs = pairs.into_iter();
    // Band k of every plane goes to thread k.
    let mut work: Vec<Vec<Band<'_>>> = (0..threads).map(|_| Vec::new()).collect();
    for job in jobs {
        let bands = band_ranges(job.lut.height(), threads);
        let mut per_band: Vec<Vec<BandIo<'_>>> = bands.iter().map(|_| Vec::new()).collect();
        for io in job.planes {
            let PlaneIo {
                src,
                mut dst,
                dst_stride,
            } = io;
            let pairs = pairs.next().flatten();
            let mut taken = 0;
            for (k, rows) in bands.iter().enumerate() {
                let end = (rows.end * dst_stride).min(taken + dst.len());
                let (band, rest) = dst.split_at_mut(end - taken);
                taken = end;
                dst = rest;
                per_band[k].push(BandIo {
                    src,
                    pairs,
                    dst: band,
                    dst_stride,
                });
            }
        }
        for (k, (rows, planes)) in bands.into_iter().zip(per_band).enumerate() {
            work[k].push(Band {
                lut: job.lut,
                rows,
                planes,
            });
        }
    }
    work.retain(|bands| !bands.is_empty());
    run_each(work, |bands| {
        for mut band in bands {
            band.run();
        }
    });
    Ok(())
}

/// What makes a band sound to run: the input covers the table's reach (the
/// kernels read it unchecked) and the output holds every row.
fn check(lut: &PlaneLut, io: &PlaneIo<'_>) -> Result<(), RemapError> {
    if io.src.len() < lut.reach {
        return Err(RemapError::ShortInput {
            len: io.src.len(),
            reach: lut.reach,
        });
    }
    let row = lut.width * lut.input.components;
    let rows = lut.height;
    let needed = (rows - 1) * io.dst_stride + row;
    if io.dst_stride < row || io.dst.len() < needed {
        return Err(RemapError::ShortOutput {
            len: io.dst.len(),
            stride: io.dst_stride,
            rows,
            row,
        });
    }
    Ok(())
}

/// One plane's part of a band: `dst` starts at the band's first row.
struct BandIo<'a> {
    src: &'a [u8],
    /// `src`'s row pairs, when the vector kernels read them.
    pairs: Option<&'a [u8]>,
    dst: &'a mut [u8],
    dst_stride: usize,
}

/// Rows `rows` of the planes of one table.
struct Band<'a> {
    lut: &'a PlaneLut,
    rows: Range<usize>,
    planes: Vec<BandIo<'a>>,
}

impl Band<'_> {
    fn run(&mut self) {
        let (lut, rows) = (self.lut, self.rows.clone());
        let mut planes = self.planes.iter_mut();
        loop {
            match (planes.next(), planes.next()) {
                (Some(a), Some(b)) => match lut.input.components {
                    1 => run::<1, 2>(lut, rows.clone(), [a, b]),
                    _ => run::<2, 2>(lut, rows.clone(), [a, b]),
                },
                (Some(a), None) => match lut.input.components {
                    1 => run::<1, 1>(lut, rows.clone(), [a]),
                    _ => run::<2, 1>(lut, rows.clone(), [a]),
                },
                _ => break,
            }
        }
    }
}

/// Rows `rows` of `P` planes with `C` components per pixel, all read through `lut`.
fn run<const C: usize, const P: usize>(
    lut: &PlaneLut,
    rows: Range<usize>,
    mut io: [&mut BandIo<'_>; P],
) {
    let (w, h, stride) = (lut.width, lut.height, lut.input.stride);
    let srcs: [&[u8]; P] = std::array::from_fn(|p| io[p].src);
    // Every plane's, or none.
    let pairs: Option<[&[u8]; P]> = io
        .iter()
        .all(|b| b.pairs.is_some())
        .then(|| std::array::from_fn(|p| io[p].pairs.unwrap_or_default()));
    // The fast pass tile by tile (the table is stored so), the rest row by row.
    let mut ty0 = rows.start / TILE_H * TILE_H;
    while ty0 < rows.end {
        let th = TILE_H.min(h - ty0);
        let tile_rows = rows.start.max(ty0)..rows.end.min(ty0 + th);
        for tx0 in (0..w).step_by(TILE_W) {
            let tw = TILE_W.min(w - tx0);
            let tile = lut.entry(tx0, ty0);
            for y in tile_rows.clone() {
                let entries = tile + (y - ty0) * tw..tile + (y - ty0 + 1) * tw;
                let ahead = &lut.taps[(entries.start + PREFETCH_AHEAD).min(lut.taps.len())
                    ..(entries.end + PREFETCH_AHEAD).min(lut.taps.len())];
                let outs: [&mut [u8]; P] = io.each_mut().map(|b| {
                    let at = (y - rows.start) * b.dst_stride + tx0 * C;
                    &mut b.dst[at..at + tw * C]
                });
                // SAFETY: `remap` checked that every input covers the table's
                // reach, which covers every tap the table holds.
                unsafe {
                    kernel::fast_row::<C, P>(
                        srcs,
                        pairs,
                        stride,
                        &lut.taps[entries.clone()],
                        &lut.fracs[entries],
                        outs,
                        ahead,
                    )
                };
            }
        }
        ty0 += th;
    }
    for (i, y) in rows.enumerate() {
        for run in &lut.runs[lut.run_rows[y] as usize..lut.run_rows[y + 1] as usize] {
            let seconds = run.first as usize..(run.first + run.len) as usize;
            let outs: [&mut [u8]; P] = io.each_mut().map(|b| {
                let at = i * b.dst_stride + run.x as usize * C;
                &mut b.dst[at..at + run.len as usize * C]
            });
            // SAFETY: as above.
            unsafe {
                kernel::blend_run::<C, P>(
                    srcs,
                    pairs,
                    stride,
                    &lut.second_taps[seconds.clone()],
                    &lut.second_fracs[seconds.clone()],
                    &lut.second_weights[seconds],
                    outs,
                )
            };
        }
        for f in &lut.fixups[lut.fixup_rows[y] as usize..lut.fixup_rows[y + 1] as usize] {
            for b in io.iter_mut() {
                let at = i * b.dst_stride + f.x as usize * C;
                for k in 0..C {
                    let mut acc = f.bias;
                    for (&tap, &weight) in f.taps.iter().zip(&f.weights) {
                        // Explicit taps are few; they are checked like any index.
                        acc += weight * u32::from(b.src[tap as usize + k]);
                    }
                    b.dst[at + k] = (acc >> FIXUP_SHIFT).min(255) as u8;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::projection::lut::PlaneLayout;
    use crate::projection::sphere::Rotation;
    use crate::projection::{Mapping, Source, Target};

    fn equirect(yaw: f64, pitch: f64, roll: f64) -> Mapping {
        Mapping {
            source: Source::Equirect,
            target: Target::Equirect,
            rotation: Rotation::from_yaw_pitch_roll(yaw, pitch, roll),
        }
    }

    /// A smooth picture (so bilinear sampling is near exact) with distinct values.
    fn picture(w: usize, h: usize, stride: usize) -> Vec<u8> {
        let mut p = vec![0u8; stride * h];
        for y in 0..h {
            for x in 0..w {
                p[y * stride + x] = (x * 3 + y * 2) as u8;
            }
        }
        p
    }

    #[test]
    fn identity_copies_the_picture() {
        let (w, h) = (40, 20);
        let src = picture(w, h, 48);
        let input = PlaneLayout {
            width: w,
            height: h,
            stride: 48,
            components: 1,
        };
        let lut = PlaneLut::build(&equirect(0.0, 0.0, 0.0), input, w, h, 0, 2).unwrap();
        let mut dst = vec![0u8; 44 * h];
        remap(
            vec![PlaneJob {
                lut: &lut,
                planes: vec![PlaneIo {
                    src: &src,
                    dst: &mut dst,
                    dst_stride: 44,
                }],
            }],
            3,
        )
        .unwrap();
        for y in 0..h {
            assert_eq!(
                &dst[y * 44..y * 44 + w],
                &src[y * 48..y * 48 + w],
                "row {y}"
            );
        }
    }

    #[test]
    fn a_quarter_turn_of_yaw_shifts_by_a_quarter_of_the_width() {
        let (w, h) = (40, 20);
        let src = picture(w, h, w);
        let input = PlaneLayout {
            width: w,
            height: h,
            stride: w,
            components: 1,
        };
        let lut = PlaneLut::build(&equirect(90.0, 0.0, 0.0), input, w, h, 0, 1).unwrap();
        let mut dst = vec![0u8; w * h];
        remap(
            vec![PlaneJob {
                lut: &lut,
                planes: vec![PlaneIo {
                    src: &src,
                    dst: &mut dst,
                    dst_stride: w,
                }],
            }],
            2,
        )
        .unwrap();
        for y in 0..h {
            for x in 0..w {
                assert_eq!(dst[y * w + x], src[y * w + (x + w / 4) % w], "({x}, {y})");
            }
        }
    }

    #[test]
    fn interleaved_components_are_sampled_alike() {
        let (w, h) = (16, 8);
        let mut src = vec![0u8; 2 * w * h];
        for (i, px) in src.chunks_exact_mut(2).enumerate() {
            px[0] = (i % 200) as u8;
            px[1] = 255 - (i % 200) as u8;
        }
        let input = PlaneLayout {
            width: w,
            height: h,
            stride: 2 * w,
            components: 2,
        };
        let lut = PlaneLut::build(&equirect(180.0, 0.0, 0.0), input, w, h, 128, 2).unwrap();
        let mut dst = vec![0u8; 2 * w * h];
        remap(
            vec![PlaneJob {
                lut: &lut,
                planes: vec![PlaneIo {
                    src: &src,
                    dst: &mut dst,
                    dst_stride: 2 * w,
                }],
            }],
            2,
        )
        .unwrap();
        for y in 0..h {
            for x in 0..w {
                let from = y * w + (x + w / 2) % w;
                assert_eq!(dst[2 * (y * w + x)], src[2 * from]);
                assert_eq!(dst[2 * (y * w + x) + 1], src[2 * from + 1]);
            }
        }
    }

    #[test]
    fn half_a_pixel_averages_neighbours() {
        let (w, h) = (8, 4);
        let src: Vec<u8> = (0..w * h)
            .map(|i| if i % 2 == 0 { 100 } else { 200 })
            .collect();
        let input = PlaneLayout {
            width: w,
            height: h,
            stride: w,
            components: 1,
        };
        // Half a pixel of yaw: every output pixel is halfway between two columns,
        // the first one wrapping round to the last.
        let half_pixel = 360.0 / w as f64 / 2.0;
        let lut = PlaneLut::build(&equirect(half_pixel, 0.0, 0.0), input, w, h, 0, 1).unwrap();
        let mut dst = vec![0u8; w * h];
        remap(
            vec![PlaneJob {
                lut: &lut,
                planes: vec![PlaneIo {
                    src: &src,
                    dst: &mut dst,
                    dst_stride: w,
                }],
            }],
            1,
        )
        .unwrap();
        assert!(dst.iter().all(|&v| v == 150), "{dst:?}");
    }

    #[test]
    fn short_planes_are_refused_untouched() {
        let (w, h) = (16, 8);
        let input = PlaneLayout {
            width: w,
            height: h,
            stride: w,
            components: 1,
        };
        let lut = PlaneLut::build(&equirect(10.0, 0.0, 0.0), input, w, h, 0, 1).unwrap();
        let src = vec![1u8; w * h - 1];
        let mut dst = vec![7u8; w * h];
        let err = remap(
            vec![PlaneJob {
                lut: &lut,
                planes: vec![PlaneIo {
                    src: &src,
                    dst: &mut dst,
                    dst_stride: w,
                }],
            }],
            1,
        );
        assert!(matches!(err, Err(RemapError::ShortInput { .. })));
        let src = vec![1u8; w * h];
        let mut short = vec![7u8; w * h - 1];
        let err = remap(
            vec![PlaneJob {
                lut: &lut,
                planes: vec![PlaneIo {
                    src: &src,
                    dst: &mut short,
                    dst_stride: w,
                }],
            }],
            1,
        );
        assert!(matches!(err, Err(RemapError::ShortOutput { .. })));
        assert!(short.iter().all(|&v| v == 7));
    }
}
