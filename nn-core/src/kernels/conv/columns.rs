//! The column matrix of a convolution (`im2col`) and the scatter of its gradient back onto
//! the input (`col2im`): run by run, or plane by plane where the rows are shifted planes.
use super::*;

/// A run of consecutive output positions on one output row, for one row `(c, i, j)` of
/// the column matrix: its elements `column..column + len` of that row. Elements
/// `inside.start..inside.end` of the run read the input at `first`, `first + stride`,
/// ...; the others, and all of them when `inside` is empty, read the zero padding.
struct Run {
    /// The row of the column matrix, `(c * KH + i) * KW + j`.
    row: usize,
    /// The column (position within the tile) of its first element.
    column: usize,
    /// Its length.
    len: usize,
    /// The part of the run inside the input (relative to the run).
    inside: core::ops::Range<usize>,
    /// The input index read by element `inside.start`.
    first: usize,
}

/// Calls `f` for every [`Run`] of the column matrix restricted to the positions
/// `start..start + len`.
#[inline(always)]
fn for_each_run(g: &ConvGeometry, start: usize, len: usize, mut f: impl FnMut(Run)) {
    let (h, w, ow) = (g.height, g.width, g.out_width);
    let mut row = 0;
    for c in 0..g.channels {
        for i in 0..g.kernel[0] {
            let y_offset = (i * g.dilation[0]) as isize - g.padding[0] as isize;
            for j in 0..g.kernel[1] {
                let x_offset = (j * g.dilation[1]) as isize - g.padding[1] as isize;
                let (lo, hi) = ConvGeometry::valid(ow, w, g.stride[1], x_offset);
                let (mut p, mut k) = (start, 0);
                while k < len {
                    let (oy, ox0) = (p / ow, p % ow);
                    let run = (ow - ox0).min(len - k);
                    let iy = (oy * g.stride[0]) as isize + y_offset;
                    let (mut a, mut b, mut first) = (0, 0, 0);
                    if iy >= 0 && (iy as usize) < h {
                        (a, b) = (lo.clamp(ox0, ox0 + run), hi.clamp(ox0, ox0 + run));
                        if a < b {
                            // Output column `ox` reads input column `ox * sw + x_offset`.
                            let ix = ((a * g.stride[1]) as isize + x_offset) as usize;
                            first = (c * h + iy as usize) * w + ix;
                        }
                        (a, b) = (a - ox0, b - ox0);
                    }
                    f(Run { row, column: k, len: run, inside: a..b.max(a), first });
                    p += run;
                    k += run;
                }
                row += 1;
            }
        }
    }
}

/// One row `(c, i, j)` of the column matrix in the shifted-plane form
/// ([`ConvGeometry::is_shifted_plane`]): the input plane `c` shifted by
/// `(i - ph, j - pw)`.
struct ShiftedRow {
    /// The row of the column matrix, `(c * KH + i) * KW + j`.
    row: usize,
    /// The output row of the tile's first position.
    first_row: usize,
    /// The output rows (absolute) that read an input row; empty when none does.
    rows: core::ops::Range<usize>,
    /// Output (and input) width.
    width: usize,
    /// Output columns at the left and right of every row that read the padding.
    left: usize,
    right: usize,
    /// The input index read by output position `(rows.start, left)`.
    source: usize,
}

/// Calls `f` for every [`ShiftedRow`] of the column matrix restricted to the positions
/// `start..start + len` (whole output rows).
#[inline(always)]
fn for_each_shifted_row(g: &ConvGeometry, start: usize, len: usize, mut f: impl FnMut(ShiftedRow)) {
    let (h, w) = (g.height as isize, g.width);
    let (first_row, end_row) = (start / w, (start + len) / w);
    let mut row = 0;
    for c in 0..g.channels {
        for i in 0..g.kernel[0] {
            let dy = i as isize - g.padding[0] as isize;
            let lo = (first_row as isize).max(-dy).min(end_row as isize);
            let hi = (end_row as isize).min(h - dy).max(lo);
            for j in 0..g.kernel[1] {
                let dx = j as isize - g.padding[1] as isize;
                let (left, right) = ((-dx).max(0) as usize, dx.max(0) as usize);
                let mut rows = lo as usize..hi as usize;
                if left + right >= w {
                    rows = rows.start..rows.start;
                }
                let source = if rows.is_empty() { 0 } else { c * g.height * w + (lo + dy) as usize * w + right };
                f(ShiftedRow { row, first_row, rows, width: w, left, right, source });
                row += 1;
            }
        }
    }
}

/// `cols[P, len] = ` the columns `start..start + len` of the column matrix of one
/// sample `x[C, H, W]` (row stride of `cols`: `len`).
///
/// # Panics
/// If the geometry is not one ([`ConvGeometry::check`]) or a slice is too short.
pub fn im2col(g: &ConvGeometry, x: &[f32], start: usize, len: usize, cols: &mut [f32]) {
    let sizes = g.check();
    let x = &x[..sizes.input];
    let cols = &mut cols[..product("column matrix", sizes.patch, len)];
    if g.is_shifted_plane(start, len) {
        #[cfg(target_arch = "x86_64")]
        if g.width.is_multiple_of(8) && super::super::isa::isa().avx2() {
            // SAFETY: the CPU has AVX2; the bounds are checked inside.
            return unsafe { im2col_vectors_avx2(g, x, start, len, cols) };
        }
        return for_each_shifted_row(g, start, len, |r| {
            let dst = &mut cols[r.row * len..][..len];
            if r.rows.is_empty() {
                return dst.fill(0.0);
            }
            let (p0, p1) =
                ((r.rows.start - r.first_row) * r.width + r.left, (r.rows.end - r.first_row) * r.width - r.right);
            zero_short(&mut dst[..p0]);
            zero_short(&mut dst[p1..]);
            copy_short(&mut dst[p0..p1], &x[r.source..r.source + (p1 - p0)]);
            // Positions whose column falls off the input read the neighbouring row
            // in the copy: they are padding.
            let (w, first) = (r.width, r.first_row);
            for row in dst[(r.rows.start - first) * w..(r.rows.end - first) * w].chunks_exact_mut(w) {
                zero_edges(row, r.left, r.right);
            }
        });
    }
    im2col_runs(g, x, start, len, cols)
}

/// [`im2col`] in the shifted-plane form for rows of whole vectors (`width` a multiple
/// of 8), vector by vector: each is one masked load of the input row its lanes read
/// (the lanes that fall off the row read nothing and are zero), or zero above and below
/// the input. The general form's bookkeeping per row costs more than the copy when rows
/// are short (8x8 images, 16 channels, 3x3: 2.1 µs against 2.9 µs).
///
/// # Safety
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn im2col_vectors_avx2(g: &ConvGeometry, x: &[f32], start: usize, len: usize, cols: &mut [f32]) {
    use core::arch::x86_64::*;
    let (h, w) = (g.height, g.width);
    let (first_row, end_row) = (start / w, (start + len) / w);
    assert!(g.is_shifted_plane(start, len) && w.is_multiple_of(8) && end_row <= g.out_height);
    let (x, cols) = (&x[..g.input_len()], &mut cols[..g.patch_len() * len]);
    let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    let mut row = 0;
    for c in 0..g.channels {
        for i in 0..g.kernel[0] {
            let dy = i as isize - g.padding[0] as isize;
            for j in 0..g.kernel[1] {
                let dx = j as isize - g.padding[1] as isize;
                let dst_row = &mut cols[row * len..(row + 1) * len];
                for k in (0..w).step_by(8) {
                    // Lane `l` reads column `k + l + dx`: inside the row for `0 <= .. < w`.
                    let column = _mm256_add_epi32(lanes, _mm256_set1_epi32((k as isize + dx) as i32));
                    let inside = _mm256_andnot_si256(
                        _mm256_cmpgt_epi32(_mm256_setzero_si256(), column),
                        _mm256_cmpgt_epi32(_mm256_set1_epi32(w as i32), column),
                    );
                    for oy in first_row..end_row {
                        let iy = oy as isize + dy;
                        let v = if 0 <= iy && iy < h as isize {
                            let src = x[(c * h + iy as usize) * w..][..w].as_ptr();
                            // SAFETY: the lanes in `inside` read columns `0..w` of the row
                            // `src` starts; the others read nothing.
                            unsafe { _mm256_maskload_ps(src.wrapping_offset(k as isize + dx), inside) }
                        } else {
                            _mm256_setzero_ps()
                        };
                        let dst = &mut dst_row[(oy - first_row) * w + k..][..8];
                        // SAFETY: `dst` holds 8 floats.
                        unsafe { _mm256_storeu_ps(dst.as_mut_ptr(), v) };
                    }
                }
                row += 1;
            }
        }
    }
}

/// `dst = src` for the short rows of small images, inline: a `memcpy` call costs
/// more than copying a few dozen floats. Whole blocks of 8, then the last 8 again.
#[inline(always)]
pub(super) fn copy_short(dst: &mut [f32], src: &[f32]) {
    let n = dst.len();
    let src = &src[..n];
    if n < 8 {
        return dst.copy_from_slice(src);
    }
    let mut i = 0;
    while i + 8 <= n {
        dst[i..i + 8].copy_from_slice(&src[i..i + 8]);
        i += 8;
    }
    if i < n {
        dst[n - 8..].copy_from_slice(&src[n - 8..]);
    }
}

/// `dst = 0` for the few padding positions of a row, inline. The zero comes through
/// `black_box` so that the loop is not turned into a `memset` call (which costs more
/// than the one or two stores it usually makes).
#[inline(always)]
fn zero_short(dst: &mut [f32]) {
    let zero = core::hint::black_box(0.0f32);
    for v in dst {
        *v = zero;
    }
}

/// Zeroes the first `left` and the last `right` floats of `row`: one or none of each
/// for the usual kernels, stored directly.
#[inline(always)]
fn zero_edges(row: &mut [f32], left: usize, right: usize) {
    let w = row.len();
    match left {
        0 => {}
        1 => row[0] = 0.0,
        _ => zero_short(&mut row[..left]),
    }
    match right {
        0 => {}
        1 => row[w - 1] = 0.0,
        _ => zero_short(&mut row[w - right..]),
    }
}

/// [`im2col`] run by run (any geometry).
fn im2col_runs(g: &ConvGeometry, x: &[f32], start: usize, len: usize, cols: &mut [f32]) {
    let sw = g.stride[1];
    for_each_run(g, start, len, |r| {
        let dst = &mut cols[r.row * len + r.column..][..r.len];
        let Run { inside, first, .. } = r;
        dst[..inside.start].fill(0.0);
        dst[inside.end..].fill(0.0);
        let dst = &mut dst[inside];
        if sw == 1 {
            dst.copy_from_slice(&x[first..first + dst.len()]);
        } else {
            for (t, d) in dst.iter_mut().enumerate() {
                *d = x[first + t * sw];
            }
        }
    });
}

/// `dx += col2im(cols)`: adds the columns `start..start + len` of a column-matrix
/// gradient `cols[P, len]` back onto the input positions they were read from.
///
/// # Panics
/// If the geometry is not one ([`ConvGeometry::check`]) or a slice is too short.
pub fn col2im(g: &ConvGeometry, cols: &[f32], start: usize, len: usize, dx: &mut [f32]) {
    let sizes = g.check();
    let _ = product("column matrix", sizes.patch, len);
    #[cfg(target_arch = "x86_64")]
    if super::super::isa::isa().avx2() {
        // SAFETY: the CPU has AVX2.
        return unsafe { col2im_avx2(g, cols, start, len, dx) };
    }
    col2im_portable(g, cols, start, len, dx)
}

/// [`col2im`] compiled for eight lanes (the same sums in the same order).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn col2im_avx2(g: &ConvGeometry, cols: &[f32], start: usize, len: usize, dx: &mut [f32]) {
    col2im_portable(g, cols, start, len, dx)
}

/// [`col2im`] for the baseline instruction set.
#[inline(always)]
fn col2im_portable(g: &ConvGeometry, cols: &[f32], start: usize, len: usize, dx: &mut [f32]) {
    let dx = &mut dx[..g.input_len()];
    let cols = &cols[..g.patch_len() * len];
    if g.is_shifted_plane(start, len) && g.width < 32 {
        // Rows too short for one add per output row: add each shifted row in one pass,
        // the padding columns replaced by zeros.
        return for_each_shifted_row(g, start, len, |r| {
            if r.rows.is_empty() {
                return;
            }
            let w = r.width;
            let src = &cols[r.row * len..][..len];
            let (p0, p1) = ((r.rows.start - r.first_row) * w + r.left, (r.rows.end - r.first_row) * w - r.right);
            let d = &mut dx[r.source..r.source + (p1 - p0)];
            // From `p0`, every `w` positions are `keep` inside the input, then `left +
            // right` of padding (which would land on the neighbouring input row).
            let keep = w - r.left - r.right;
            for (d, s) in d.chunks_mut(w).zip(src[p0..p1].chunks(w)) {
                for (t, (d, &s)) in d.iter_mut().zip(s).enumerate() {
                    *d += if t < keep { s } else { 0.0 };
                }
            }
        });
    }
    if g.is_shifted_plane(start, len) {
        return for_each_shifted_row(g, start, len, |r| {
            let src = &cols[r.row * len..][..len];
            let (w, keep) = (r.width, r.width.saturating_sub(r.left + r.right));
            for (k, oy) in r.rows.clone().enumerate() {
                let s = &src[(oy - r.first_row) * w + r.left..][..keep];
                let d = &mut dx[r.source + k * w..][..keep];
                d.iter_mut().zip(s).for_each(|(d, s)| *d += s);
            }
        });
    }
    col2im_runs(g, cols, start, len, dx)
}

/// [`col2im`] run by run (any geometry).
fn col2im_runs(g: &ConvGeometry, cols: &[f32], start: usize, len: usize, dx: &mut [f32]) {
    let sw = g.stride[1];
    for_each_run(g, start, len, |r| {
        let src = &cols[r.row * len + r.column..][..r.len][r.inside];
        if sw == 1 {
            dx[r.first..r.first + src.len()].iter_mut().zip(src).for_each(|(d, s)| *d += s);
        } else {
            for (t, s) in src.iter().enumerate() {
                dx[r.first + t * sw] += s;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shifted-plane form builds exactly the column matrix of the run-by-run form,
    /// and scatters it back with the same sums, for every stride-1 geometry it covers.
    #[test]
    fn shifted_plane_form_equals_runs() {
        let mut checked = 0;
        for (h, w) in [(1usize, 5usize), (3, 3), (4, 7), (8, 8), (3, 13), (2, 33), (3, 16), (5, 24)] {
            for kernel in [[1, 1], [1, 3], [3, 3], [2, 4], [5, 5], [3, 9]] {
                for padding in [[0, 0], [1, 1], [0, 2], [2, 1], [4, 4]] {
                    let (oh, ow) = ((h + 2 * padding[0]).checked_sub(kernel[0] - 1), w);
                    let Some(oh) = oh.filter(|&oh| oh > 0) else { continue };
                    // Output rows as wide as the input: the padding after is the padding
                    // before or one more (`ConvGeometry::check`).
                    let (before, total) = (padding[1], kernel[1] - 1);
                    if total != 2 * before && total != 2 * before + 1 {
                        continue;
                    }
                    let g = ConvGeometry {
                        channels: 2,
                        height: h,
                        width: w,
                        kernel,
                        stride: [1, 1],
                        padding,
                        dilation: [1, 1],
                        out_height: oh,
                        out_width: ow,
                    };
                    let x: Vec<f32> = (0..g.input_len()).map(|v| v as f32 * 0.37 - 1.5).collect();
                    for (start, len) in [(0, oh * ow), (ow, (oh - 1) * ow), (0, ow)] {
                        if len == 0 {
                            continue;
                        }
                        assert!(g.is_shifted_plane(start, len));
                        let patch = g.patch_len();
                        let (mut fast, mut runs) = (vec![9.0; patch * len], vec![7.0; patch * len]);
                        im2col(&g, &x, start, len, &mut fast);
                        im2col_runs(&g, &x, start, len, &mut runs);
                        assert_eq!(fast, runs, "im2col {g:?} {start} {len}");
                        let d: Vec<f32> = (0..patch * len).map(|v| (v % 13) as f32 * 0.1 + 0.01).collect();
                        let (mut fast, mut runs) = (vec![0.5; g.input_len()], vec![0.5; g.input_len()]);
                        col2im(&g, &d, start, len, &mut fast);
                        col2im_runs(&g, &d, start, len, &mut runs);
                        assert_eq!(fast, runs, "col2im {g:?} {start} {len}");
                        fast.fill(0.5);
                        col2im_portable(&g, &d, start, len, &mut fast);
                        assert_eq!(fast, runs, "col2im (portable) {g:?} {start} {len}");
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 100, "{checked}");
    }
}
