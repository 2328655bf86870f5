//! The per-pixel arithmetic of [`super::remap`]: bilinear samples in 7-bit fixed
//! point, and the cross-fade of a second sample into the first. An AVX2 version
//! (32 pixels a step, the 2x2 blocks fetched with gathers) is used where the CPU
//! has it; it computes exactly what the portable version does. It reads a plane's
//! [`row_pairs`] copy, where each byte sits beside the one below it, so that one
//! 4-byte gather fetches a whole 2x2 block: gathers are what the resampling waits
//! on, and this halves them.
//!
//! A sample of the 2x2 block `a b / c d` with fractions `fx`, `fy` (in 1/128) is
//! `((a(128-fx) + b fx)(128-fy) + (c(128-fx) + d fx) fy + 8192) >> 14`; a blend of
//! `p` with `weight`/128 of `s` is `(p(128-weight) + s weight + 64) >> 7`.
//!
//! # Safety
//! Every function here reads `src` unchecked: each tap `t` it is given must satisfy
//! `t + stride + ROW_READ <= src.len()`. A [`super::lut::PlaneLut`]'s `reach` covers
//! all its taps; `remap` checks it against the plane before calling in. A plane's
//! row pairs, where given, are `row_pairs` of that plane (twice its length).

use super::lut::{FRAC_BITS, ONE};

/// Whether the vector kernels run here, and so want [`row_pairs`] of the planes.
pub(crate) fn wants_row_pairs() -> bool {
    #[cfg(target_arch = "x86_64")]
    return avx2::available();
    #[cfg(not(target_arch = "x86_64"))]
    return false;
}

/// `src` with each byte followed by the one `stride` bytes on (the pixel below;
/// zero past the end): `out[2i] = src[i]`, `out[2i + 1] = src[i + stride]`. `out`
/// holds `2 * src.len()` bytes; this fills `out[2 * start..2 * end]` only, so that
/// threads can share the work.
pub(crate) fn row_pairs(src: &[u8], stride: usize, out: &mut [u8], start: usize) {
    let end = (start + out.len() / 2).min(src.len());
    let below_end = src.len().saturating_sub(stride).clamp(start, end);
    let (paired, tail) = out.split_at_mut(2 * (below_end - start));
    // A plain zip the compiler turns into byte shuffles.
    for ((o, &top), &bottom) in paired
        .chunks_exact_mut(2)
        .zip(&src[start..below_end])
        .zip(&src[start + stride..below_end + stride])
    {
        o[0] = top;
        o[1] = bottom;
    }
    for (o, &top) in tail.chunks_exact_mut(2).zip(&src[below_end..end]) {
        o[0] = top;
        o[1] = 0;
    }
}

/// Fills each of `outs` (`taps.len()` pixels of `C` components) with one sample
/// each from the matching plane of `srcs`: `P` planes laid out alike (I420's U and
/// V) share one table and one pass over it. `pairs` are the planes' [`row_pairs`]
/// when [`wants_row_pairs`] (the vector kernels read those). `ahead` holds taps of
/// pixels to come, whose input is prefetched (one in eight).
///
/// # Safety
/// See the module documentation; it holds for every plane of `srcs`.
pub(crate) unsafe fn fast_row<const C: usize, const P: usize>(
    srcs: [&[u8]; P],
    pairs: Option<[&[u8]; P]>,
    stride: usize,
    taps: &[u32],
    fracs: &[u16],
    mut outs: [&mut [u8]; P],
    ahead: &[u32],
) {
    let n = outs
        .iter()
        .fold(taps.len().min(fracs.len()), |n, o| n.min(o.len() / C));
    #[allow(unused_mut)]
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if let Some(pairs) = pairs.filter(|_| C == 1 && avx2::available()) {
        // SAFETY: the caller's contract, and AVX2 is present.
        done = unsafe { avx2::fast_row(pairs, &taps[..n], &fracs[..n], &mut outs, ahead) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (ahead, pairs);
    for i in done..n {
        for (src, out) in srcs.iter().zip(outs.iter_mut()) {
            for k in 0..C {
                // SAFETY: the caller's contract.
                out[i * C + k] =
                    unsafe { sample::<C>(src, taps[i] as usize, stride, fracs[i], k) } as u8;
            }
        }
    }
}

/// Mixes a second sample into each pixel of `outs` (already holding the first):
/// `weights[i]`/128 of it. Planes as in [`fast_row`].
///
/// # Safety
/// See the module documentation; it holds for every plane of `srcs`.
pub(crate) unsafe fn blend_run<const C: usize, const P: usize>(
    srcs: [&[u8]; P],
    pairs: Option<[&[u8]; P]>,
    stride: usize,
    taps: &[u32],
    fracs: &[u16],
    weights: &[u8],
    mut outs: [&mut [u8]; P],
) {
    let n = outs
        .iter()
        .fold(taps.len().min(fracs.len()).min(weights.len()), |n, o| {
            n.min(o.len() / C)
        });
    #[allow(unused_mut)]
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if let Some(pairs) = pairs.filter(|_| C == 1 && avx2::available()) {
        // SAFETY: the caller's contract, and AVX2 is present.
        done = unsafe { avx2::blend_run(pairs, &taps[..n], &fracs[..n], &weights[..n], &mut outs) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = pairs;
    for i in done..n {
        let weight = u32::from(weights[i]);
        for (src, out) in srcs.iter().zip(outs.iter_mut()) {
            for k in 0..C {
                // SAFETY: the caller's contract.
                let second = unsafe { sample::<C>(src, taps[i] as usize, stride, fracs[i], k) };
                let first = u32::from(out[i * C + k]);
                out[i * C + k] =
                    ((first * (ONE - weight) + second * weight + ONE / 2) >> FRAC_BITS) as u8;
            }
        }
    }
}

/// Component `k` of the bilinear sample of the 2x2 block at `tap`.
///
/// # Safety
/// See the module documentation.
#[inline(always)]
unsafe fn sample<const C: usize>(
    src: &[u8],
    tap: usize,
    stride: usize,
    frac: u16,
    k: usize,
) -> u32 {
    let fx = u32::from(frac & 0xff);
    let fy = u32::from(frac >> 8);
    debug_assert!(tap + stride + C + k < src.len());
    // SAFETY: tap + stride + C + k < tap + stride + ROW_READ <= src.len() (C <= 2).
    let (a, b, c, d) = unsafe {
        (
            u32::from(*src.get_unchecked(tap + k)),
            u32::from(*src.get_unchecked(tap + C + k)),
            u32::from(*src.get_unchecked(tap + stride + k)),
            u32::from(*src.get_unchecked(tap + stride + C + k)),
        )
    };
    let top = a * (ONE - fx) + b * fx;
    let bottom = c * (ONE - fx) + d * fx;
    (top * (ONE - fy) + bottom * fy + (1 << (2 * FRAC_BITS - 1))) >> (2 * FRAC_BITS)
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    //! Planar (one byte per pixel) rows, 32 pixels a step, read from row pairs.

    use std::arch::x86_64::*;

    pub(super) fn available() -> bool {
        // Cached by std after the first call.
        is_x86_feature_detected!("avx2")
    }

    /// Eight samples, as 32-bit values 0..=255, from the row pairs of a plane.
    ///
    /// # Safety
    /// AVX2 present; `taps` and `fracs` hold 8 entries; the module's contract for
    /// each tap.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn sample8(pairs: *const u8, taps: *const u32, fracs: *const u16) -> __m256i {
        unsafe {
            let idx = _mm256_loadu_si256(taps.cast());
            // Four bytes at twice each tap: a c b d, the block's left column (a
            // above c) then its right one. Offset to signed bytes for maddubs.
            let px = _mm256_i32gather_epi32::<2>(pairs.cast(), idx);
            let px = _mm256_xor_si256(px, _mm256_set1_epi8(-128));
            // Each lane: fx in byte 0, fy in byte 1.
            let f = _mm256_cvtepu16_epi32(_mm_loadu_si128(fracs.cast()));
            let fy = _mm256_shuffle_epi8(
                f,
                _mm256_setr_epi8(
                    1, 1, 1, 1, 5, 5, 5, 5, 9, 9, 9, 9, 13, 13, 13, 13, 1, 1, 1, 1, 5, 5, 5, 5, 9,
                    9, 9, 9, 13, 13, 13, 13,
                ),
            );
            // 128-fy, fy, 128-fy, fy (128 as an unsigned byte).
            let wy = _mm256_blendv_epi8(
                _mm256_sub_epi8(_mm256_set1_epi8(-128), fy),
                fy,
                _mm256_set1_epi16(0xff00u16 as i16),
            );
            // (a-128)(128-fy) + (c-128)fy = left - 16384, and the same for the right.
            let columns = _mm256_maddubs_epi16(wy, px);
            let fx = _mm256_and_si256(f, _mm256_set1_epi32(0xff));
            let wx = _mm256_or_si256(
                _mm256_sub_epi32(_mm256_set1_epi32(128), fx),
                _mm256_slli_epi32::<16>(fx),
            );
            // The same four products as the portable sample, summed in another order.
            let v = _mm256_madd_epi16(columns, wx);
            // Undo the offset (16384 * 128) and round.
            _mm256_srli_epi32::<14>(_mm256_add_epi32(v, _mm256_set1_epi32(16384 * 128 + 8192)))
        }
    }

    /// Four groups of eight 32-bit values 0..=255, as 32 bytes in order.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn pack32(v0: __m256i, v1: __m256i, v2: __m256i, v3: __m256i) -> __m256i {
        let words01 = _mm256_packus_epi32(v0, v1);
        let words23 = _mm256_packus_epi32(v2, v3);
        let bytes = _mm256_packus_epi16(words01, words23);
        _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7))
    }

    /// Whole steps of `fast_row`; returns how many pixels it did.
    ///
    /// # Safety
    /// AVX2 present; the module's contract.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn fast_row<const P: usize>(
        pairs: [&[u8]; P],
        taps: &[u32],
        fracs: &[u16],
        outs: &mut [&mut [u8]; P],
        ahead: &[u32],
    ) -> usize {
        let steps = taps.len() / 32;
        for s in 0..steps {
            let i = s * 32;
            // Input for later pixels: the first-level cache has it by then. A
            // prefetch never faults, whatever the address.
            for g in (0..32).step_by(8) {
                if let Some(&t) = ahead.get(i + g) {
                    for plane in &pairs {
                        let p = plane.as_ptr().wrapping_add(2 * t as usize);
                        _mm_prefetch::<_MM_HINT_T0>(p.cast());
                    }
                }
            }
            for (plane, out) in pairs.iter().zip(outs.iter_mut()) {
                // SAFETY: i + 32 <= len for taps, fracs and out; taps per the contract.
                unsafe {
                    let (t, f) = (taps.as_ptr().add(i), fracs.as_ptr().add(i));
                    let p = plane.as_ptr();
                    let v = pack32(
                        sample8(p, t, f),
                        sample8(p, t.add(8), f.add(8)),
                        sample8(p, t.add(16), f.add(16)),
                        sample8(p, t.add(24), f.add(24)),
                    );
                    _mm256_storeu_si256(out.as_mut_ptr().add(i).cast(), v);
                }
            }
        }
        steps * 32
    }

    /// Whole steps of `blend_run`; returns how many pixels it did.
    ///
    /// # Safety
    /// AVX2 present; the module's contract.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn blend_run<const P: usize>(
        pairs: [&[u8]; P],
        taps: &[u32],
        fracs: &[u16],
        weights: &[u8],
        outs: &mut [&mut [u8]; P],
    ) -> usize {
        let steps = taps.len() / 32;
        for s in 0..steps {
            let i = s * 32;
            for (plane, out) in pairs.iter().zip(outs.iter_mut()) {
                // SAFETY: i + 32 <= len for every slice; taps per the contract.
                unsafe {
                    let (t, f) = (taps.as_ptr().add(i), fracs.as_ptr().add(i));
                    let mut mixed = [_mm256_setzero_si256(); 4];
                    for (g, m) in mixed.iter_mut().enumerate() {
                        let second = sample8(plane.as_ptr(), t.add(8 * g), f.add(8 * g));
                        let first = _mm256_cvtepu8_epi32(_mm_loadl_epi64(
                            out.as_ptr().add(i + 8 * g).cast(),
                        ));
                        let w = _mm256_cvtepu8_epi32(_mm_loadl_epi64(
                            weights.as_ptr().add(i + 8 * g).cast(),
                        ));
                        // (first * 128 + (second - first) * w + 64) >> 7
                        let v = _mm256_add_epi32(
                            _mm256_slli_epi32::<7>(first),
                            _mm256_mullo_epi32(_mm256_sub_epi32(second, first), w),
                        );
                        *m = _mm256_srai_epi32::<7>(_mm256_add_epi32(v, _mm256_set1_epi32(64)));
                    }
                    let v = pack32(mixed[0], mixed[1], mixed[2], mixed[3]);
                    _mm256_storeu_si256(out.as_mut_ptr().add(i).cast(), v);
                }
            }
        }
        steps * 32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plane of pseudo-random bytes and random taps inside it.
    fn setup(n: usize) -> (Vec<u8>, usize, Vec<u32>, Vec<u16>, Vec<u8>) {
        let (w, h) = (97usize, 41usize);
        let mut state = 0x1234_5678u32;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state
        };
        let src: Vec<u8> = (0..w * h).map(|_| next() as u8).collect();
        let mut taps = Vec::new();
        let mut fracs = Vec::new();
        let mut weights = Vec::new();
        for _ in 0..n {
            let (x, y) = (next() as usize % (w - 4), next() as usize % (h - 2));
            taps.push((y * w + x) as u32);
            fracs.push(((next() % 128) | ((next() % 128) << 8)) as u16);
            weights.push((next() % 127 + 1) as u8);
        }
        (src, w, taps, fracs, weights)
    }

    fn pairs_of(src: &[u8], stride: usize) -> Vec<u8> {
        let mut out = vec![0u8; 2 * src.len()];
        row_pairs(src, stride, &mut out, 0);
        out
    }

    #[test]
    fn row_pairs_put_each_byte_beside_the_one_below_in_any_split() {
        let src: Vec<u8> = (0..50u8).collect();
        let whole = pairs_of(&src, 7);
        assert_eq!(&whole[..6], &[0, 7, 1, 8, 2, 9]);
        assert_eq!(&whole[2 * 43..2 * 44], &[43, 0], "no row below");
        let mut split = vec![0u8; 100];
        let (a, b) = split.split_at_mut(2 * 17);
        row_pairs(&src, 7, a, 0);
        row_pairs(&src, 7, b, 17);
        assert_eq!(split, whole);
    }

    fn reference(src: &[u8], stride: usize, tap: u32, frac: u16) -> u8 {
        let t = tap as usize;
        let (fx, fy) = (f64::from(frac & 0xff) / 128.0, f64::from(frac >> 8) / 128.0);
        let (a, b) = (f64::from(src[t]), f64::from(src[t + 1]));
        let (c, d) = (f64::from(src[t + stride]), f64::from(src[t + stride + 1]));
        let v = (a * (1.0 - fx) + b * fx) * (1.0 - fy) + (c * (1.0 - fx) + d * fx) * fy;
        v.round() as u8
    }

    #[test]
    fn samples_are_bilinear() {
        let (src, stride, taps, fracs, _) = setup(1000);
        let mut out = vec![0u8; taps.len()];
        // SAFETY: setup keeps every tap two rows and four bytes inside the plane.
        let pairs = pairs_of(&src, stride);
        unsafe {
            fast_row::<1, 1>(
                [&src],
                Some([&pairs]),
                stride,
                &taps,
                &fracs,
                [&mut out],
                &taps,
            )
        };
        for i in 0..taps.len() {
            let want = reference(&src, stride, taps[i], fracs[i]);
            assert!(
                out[i].abs_diff(want) <= 1,
                "pixel {i}: {} vs {want}",
                out[i]
            );
        }
    }

    #[test]
    fn the_vector_path_matches_the_portable_one() {
        let (src, stride, taps, fracs, weights) = setup(1000);
        let mut fast = vec![0u8; taps.len()];
        let pairs = pairs_of(&src, stride);
        // SAFETY: as above.
        unsafe {
            fast_row::<1, 1>(
                [&src],
                Some([&pairs]),
                stride,
                &taps,
                &fracs,
                [&mut fast],
                &[],
            )
        };
        let mut portable = vec![0u8; taps.len()];
        for i in 0..taps.len() {
            // SAFETY: as above.
            portable[i] = unsafe { sample::<1>(&src, taps[i] as usize, stride, fracs[i], 0) } as u8;
        }
        assert_eq!(fast, portable);

        // The second samples are the first ones in reverse order.
        let (taps2, fracs2): (Vec<u32>, Vec<u16>) =
            taps.iter().rev().zip(fracs.iter().rev()).unzip();
        let mut blended = fast.clone();
        // SAFETY: as above.
        unsafe {
            blend_run::<1, 1>(
                [&src],
                Some([&pairs]),
                stride,
                &taps2,
                &fracs2,
                &weights,
                [&mut blended],
            )
        };
        let n = taps.len();
        for i in 0..n {
            let w = u32::from(weights[i]);
            let want =
                (u32::from(fast[i]) * (128 - w) + u32::from(portable[n - 1 - i]) * w + 64) >> 7;
            assert_eq!(u32::from(blended[i]), want, "pixel {i}");
        }
    }

    #[test]
    fn two_planes_share_one_pass() {
        let (src, stride, taps, fracs, _) = setup(200);
        let other: Vec<u8> = src.iter().map(|v| v.wrapping_mul(7)).collect();
        let (mut a, mut b) = (vec![0u8; taps.len()], vec![0u8; taps.len()]);
        // SAFETY: as above, for both planes (same size).
        let (pairs, other_pairs) = (pairs_of(&src, stride), pairs_of(&other, stride));
        unsafe {
            fast_row::<1, 2>(
                [&src, &other],
                Some([&pairs, &other_pairs]),
                stride,
                &taps,
                &fracs,
                [&mut a, &mut b],
                &taps,
            )
        };
        let mut alone = vec![0u8; taps.len()];
        // SAFETY: as above.
        unsafe { fast_row::<1, 1>([&other], None, stride, &taps, &fracs, [&mut alone], &[]) };
        assert_eq!(b, alone);
        assert_ne!(a, b);
    }
}
