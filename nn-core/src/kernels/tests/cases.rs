//! Random calls of the public kernels (`gemm`, `gemv`, `gemv_batch`, `axpy`, the
//! convolution forward) with zero, odd and huge sizes, strides and slice lengths.
//! Each case is judged against a statement of its own of what a valid call is (in
//! `u128`, so nothing here wraps) and a naive `f64` loop: a valid call must return the
//! naive result, an invalid one must panic. A crash or an out-of-bounds access is
//! what the caller looks for around it (the process dies, or valgrind reports it).
//!
//! A module of `nn-core`'s kernel tests (`bounds.rs` runs it), also included by the
//! `tools/kernel-probe` binary, which runs many more cases under valgrind: it names
//! what it calls through `crate::kernels` and `crate::rng`, which that binary imports
//! from `nn_core` at its root.
#![allow(dead_code)]

use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::kernels::conv::{self, ConvGeometry};
use crate::kernels::gemm::{self, MatRef};
use crate::rng::Rng;

/// How a case ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A valid call gave the naive result.
    Correct,
    /// An invalid call panicked.
    Rejected,
    /// A valid call panicked or gave another result.
    Wrong(String),
    /// An invalid call returned.
    Accepted(String),
}

/// The sizes the cases draw from: mostly small (zero included) and odd, sometimes
/// huge, where a product or an extent overflows a `usize`.
const HUGE: [usize; 7] =
    [usize::MAX, usize::MAX / 2, 1 << 62, 1 << 32, 6_148_914_691_236_517_206, 3_074_457_345_618_258_603, (1 << 40) + 1];

fn u64(rng: &mut Rng) -> u64 {
    ((rng.next_u32() as u64) << 32) | rng.next_u32() as u64
}

fn huge(rng: &mut Rng) -> usize {
    match rng.below(10) {
        0 => u64(rng) as usize,
        _ => HUGE[rng.below(HUGE.len())],
    }
}

/// A dimension: 0 to 19, an odd size around the kernels' tiles, or huge.
fn dim(rng: &mut Rng) -> usize {
    match rng.below(20) {
        0..=11 => rng.below(20),
        12..=15 => [1, 7, 8, 9, 15, 16, 17, 31, 33][rng.below(9)],
        _ => huge(rng),
    }
}

/// A stride for an axis of `len` elements whose other axis spans `natural`: the
/// natural one, an odd larger one, 1, 0 (broadcast, only for small `len`) or huge.
fn stride(rng: &mut Rng, len: usize, natural: usize) -> usize {
    match rng.below(20) {
        0..=9 => natural.max(1),
        10..=12 => natural.saturating_add(1 + rng.below(5)),
        13..=14 => 1,
        15 if len < 64 => 0,
        _ => huge(rng),
    }
}

/// A slice length near `needed` (when it is small): exactly it, one short, a few
/// more, or a small random one.
fn len_near(rng: &mut Rng, needed: Option<u128>) -> usize {
    match needed.filter(|&n| n <= 1 << 14) {
        Some(n) => match rng.below(10) {
            0 => (n as usize).saturating_sub(1),
            1 => n as usize + rng.below(4),
            2 => rng.below(64),
            _ => n as usize,
        },
        None => rng.below(64),
    }
}

fn values(rng: &mut Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.uniform_in(-1.0, 1.0)).collect()
}

/// Random values, as many as [`len_near`] gives.
fn values_near(rng: &mut Rng, needed: Option<u128>) -> Vec<f32> {
    let n = len_near(rng, needed);
    values(rng, n)
}

/// `a * b`, saturated (a product of three sizes can overflow even a `u128`).
fn mul(a: u128, b: u128) -> u128 {
    a.saturating_mul(b)
}

/// `(rows - 1) rs + (cols - 1) cs + 1`, or 0 for an empty view.
fn extent(rows: usize, cols: usize, rs: usize, cs: usize) -> u128 {
    if rows == 0 || cols == 0 {
        0
    } else {
        mul(rows as u128 - 1, rs as u128).saturating_add(mul(cols as u128 - 1, cs as u128)).saturating_add(1)
    }
}

/// A view is valid when its elements lie in its slice and its strides fit in an `isize`.
fn view_valid(v: &MatRef<'_>) -> bool {
    v.rs <= isize::MAX as usize
        && v.cs <= isize::MAX as usize
        && extent(v.rows, v.cols, v.rs, v.cs) <= v.data.len() as u128
}

/// Runs `call`, silently when it panics; `None` if it panicked.
fn quietly<T>(call: impl FnOnce() -> T) -> Option<T> {
    catch_unwind(AssertUnwindSafe(call)).ok()
}

/// Compares `got` with the `f64` reference `exact` (tolerance scaled by `size`, the
/// sum of the magnitudes of the terms).
fn close(got: f32, exact: f64, size: f64) -> bool {
    (got as f64 - exact).abs() <= 1e-5 * size.max(1.0) * 8.0
}

/// The outcome of a call that was `valid` (by this file's rules) and `returned` (did
/// not panic); `verify` compares a returned valid call's output with the reference.
fn judge(
    valid: bool,
    returned: bool,
    verify: impl FnOnce() -> Result<(), String>,
    what: impl Fn() -> String,
) -> Outcome {
    match (valid, returned) {
        (true, true) => match verify() {
            Ok(()) => Outcome::Correct,
            Err(e) => Outcome::Wrong(format!("{}: {e}", what())),
        },
        (true, false) => Outcome::Wrong(format!("{}: panicked on a valid call", what())),
        (false, false) => Outcome::Rejected,
        (false, true) => Outcome::Accepted(what()),
    }
}

/// One random case from `seed`: its kernel's name and how it ended.
pub fn run(seed: u64) -> (&'static str, Outcome) {
    let mut rng = Rng::new(seed);
    match rng.below(5) {
        0 => ("gemm", gemm_case(&mut rng)),
        1 => ("gemv", gemv_case(&mut rng)),
        2 => ("gemv_batch", gemv_batch_case(&mut rng)),
        3 => ("axpy", axpy_case(&mut rng)),
        _ => ("conv::forward", conv_case(&mut rng)),
    }
}

/// Random strides for a `rows x cols` view, row- or column-major; a huge dimension
/// gets a non-zero stride (so that a valid view is small and quick).
fn strides(rng: &mut Rng, rows: usize, cols: usize) -> (usize, usize) {
    let column_major = rng.below(3) == 0;
    let (rs, cs) = if column_major {
        (stride(rng, rows, 1), stride(rng, cols, rows))
    } else {
        (stride(rng, rows, cols), stride(rng, cols, 1))
    };
    (if rows >= 64 { rs.max(1) } else { rs }, if cols >= 64 { cs.max(1) } else { cs })
}

fn gemm_case(rng: &mut Rng) -> Outcome {
    let (m, k, n) = (dim(rng), dim(rng), dim(rng));
    let (ars, acs) = strides(rng, m, k);
    let (brs, bcs) = strides(rng, k, n);
    let ldc = match rng.below(10) {
        0 => huge(rng),
        1 => n.saturating_sub(1),
        2 => n.saturating_add(3),
        _ => n,
    };
    let a_data = values_near(rng, Some(extent(m, k, ars, acs)));
    let b_data = values_near(rng, Some(extent(k, n, brs, bcs)));
    let c_needed = if m == 0 || n == 0 { 0 } else { (m as u128 - 1) * ldc as u128 + n as u128 };
    let c0 = values_near(rng, Some(c_needed));
    let (alpha, beta) = (0.5f32, [0.0f32, 1.0, -2.0][rng.below(3)]);
    let a = MatRef { data: &a_data, rows: m, cols: k, rs: ars, cs: acs };
    let b = MatRef { data: &b_data, rows: k, cols: n, rs: brs, cs: bcs };
    let empty = m == 0 || n == 0;
    let valid = view_valid(&a)
        && view_valid(&b)
        && (empty || (c_needed <= c0.len() as u128 && n <= ldc && mul(mul(m as u128, n as u128), k as u128) < 1 << 64));
    let mut c = c0.clone();
    let returned = quietly(|| gemm::gemm(alpha, a, b, beta, &mut c, ldc)).is_some();
    let verify = || {
        // With no columns, `m` may be huge (and `A` empty): nothing to compare.
        for i in 0..if n == 0 { 0 } else { m } {
            for j in 0..n {
                let at = i * ldc + j;
                let c_in = if beta == 0.0 { 0.0 } else { beta as f64 * c0[at] as f64 };
                let (mut exact, mut size) = (c_in, c_in.abs());
                for p in 0..k {
                    let v = alpha as f64 * a_data[i * ars + p * acs] as f64 * b_data[p * brs + j * bcs] as f64;
                    exact += v;
                    size += v.abs();
                }
                if !close(c[at], exact, size) {
                    return Err(format!("C[{i}, {j}] = {}, expected {exact}", c[at]));
                }
            }
        }
        Ok(())
    };
    judge(valid, returned, verify, || format!("{m}x{k}x{n}, A strides ({ars}, {acs}), B ({brs}, {bcs}), ldc {ldc}"))
}

fn gemv_case(rng: &mut Rng) -> Outcome {
    let (m, n) = (dim(rng), dim(rng));
    let (rs, cs) = strides(rng, m, n);
    let a_data = values_near(rng, Some(extent(m, n, rs, cs)));
    let x = values_near(rng, Some(n as u128));
    let y0 = values_near(rng, Some(m as u128));
    let beta = [0.0f32, 1.0, 0.5][rng.below(3)];
    let a = MatRef { data: &a_data, rows: m, cols: n, rs, cs };
    let valid = view_valid(&a) && x.len() >= n && y0.len() >= m;
    let mut y = y0.clone();
    let returned = quietly(|| gemm::gemv(2.0, a, &x, beta, &mut y)).is_some();
    let verify = || {
        for i in 0..m {
            let y_in = if beta == 0.0 { 0.0 } else { beta as f64 * y0[i] as f64 };
            let (mut exact, mut size) = (y_in, y_in.abs());
            for j in 0..n {
                let v = 2.0 * a_data[i * rs + j * cs] as f64 * x[j] as f64;
                exact += v;
                size += v.abs();
            }
            if !close(y[i], exact, size) {
                return Err(format!("y[{i}] = {}, expected {exact}", y[i]));
            }
        }
        Ok(())
    };
    judge(valid, returned, verify, || format!("{m}x{n}, strides ({rs}, {cs}), x {}, y {}", x.len(), y0.len()))
}

fn gemv_batch_case(rng: &mut Rng) -> Outcome {
    let (m, n) = (dim(rng), dim(rng));
    let batch = match rng.below(10) {
        0 => huge(rng),
        _ => rng.below(5),
    };
    let rs = if rng.below(8) == 0 { huge(rng) } else { n.saturating_add(rng.below(3)) };
    let cs = if rng.below(10) == 0 { 2 } else { 1 };
    let a_data = values_near(rng, Some(extent(m, n, rs, cs)));
    let x = values_near(rng, Some(batch as u128 * n as u128));
    let y0 = values_near(rng, Some(batch as u128 * m as u128));
    let a = MatRef { data: &a_data, rows: m, cols: n, rs, cs };
    let valid = cs == 1
        && view_valid(&a)
        && x.len() as u128 >= batch as u128 * n as u128
        && y0.len() as u128 >= batch as u128 * m as u128;
    let mut y = y0.clone();
    let returned = quietly(|| gemm::gemv_batch(1.0, a, &x, 1.0, &mut y, batch)).is_some();
    let verify = || {
        for s in 0..batch.min(y.len()) {
            for i in 0..m {
                let (mut exact, mut size) = (y0[s * m + i] as f64, y0[s * m + i].abs() as f64);
                for j in 0..n {
                    let v = a_data[i * rs + j] as f64 * x[s * n + j] as f64;
                    exact += v;
                    size += v.abs();
                }
                if !close(y[s * m + i], exact, size) {
                    return Err(format!("y[{s}][{i}] = {}, expected {exact}", y[s * m + i]));
                }
            }
            if m == 0 {
                break;
            }
        }
        Ok(())
    };
    judge(valid, returned, verify, || {
        format!("{m}x{n}, rs {rs}, cs {cs}, batch {batch}, x {}, y {}", x.len(), y0.len())
    })
}

fn axpy_case(rng: &mut Rng) -> Outcome {
    let n = rng.below(40);
    let other = if rng.below(3) == 0 { rng.below(40) } else { n };
    let (x, y0) = (values(rng, n), values(rng, other));
    let mut y = y0.clone();
    let returned = quietly(|| gemm::axpy(-1.5, &x, &mut y)).is_some();
    let verify = || {
        for i in 0..n {
            let exact = y0[i] as f64 - 1.5 * x[i] as f64;
            if !close(y[i], exact, exact.abs() + y0[i].abs() as f64) {
                return Err(format!("y[{i}] = {}, expected {exact}", y[i]));
            }
        }
        Ok(())
    };
    judge(n == other, returned, verify, || format!("x {n}, y {other}"))
}

/// A convolution axis: `(input, kernel, stride, padding, dilation, output)`, mostly
/// consistent (PyTorch's output size with the padding after equal to the padding
/// before or one more), sometimes with a perturbed output or a zero or huge value.
fn conv_axis(rng: &mut Rng) -> [usize; 6] {
    let pick = |rng: &mut Rng, small: usize, low: usize| {
        if rng.below(25) == 0 {
            if rng.below(2) == 0 {
                0
            } else {
                huge(rng)
            }
        } else {
            low + rng.below(small)
        }
    };
    let input = pick(rng, 12, 1);
    let input = if rng.below(4) == 0 { [8, 16][rng.below(2)] } else { input };
    let (kernel, stride, padding, dilation) = (pick(rng, 4, 1), pick(rng, 3, 1), pick(rng, 3, 0), pick(rng, 2, 1));
    let after = padding as u128 + rng.below(2) as u128;
    let padded = input as u128 + padding as u128 + after;
    let span = (kernel as u128).saturating_sub(1) * dilation as u128;
    let mut output = if stride == 0 || kernel == 0 || span >= padded {
        rng.below(3)
    } else {
        usize::try_from((padded - span - 1) / stride as u128 + 1).unwrap_or(usize::MAX)
    };
    match rng.below(8) {
        0 => output = output.saturating_add(1 + rng.below(2)),
        1 => output = output.saturating_sub(1 + rng.below(2)),
        2 if rng.below(4) == 0 => output = huge(rng),
        _ => {}
    }
    [input, kernel, stride, padding, dilation, output]
}

/// The validity of one axis of a geometry (see `ConvGeometry::check`): every value at
/// least 1 (padding aside), the last window ends at most `padding + 1` after the input,
/// fewer than `max(stride, dilation)` input positions follow it, and the padded extent
/// and the window's reach fit in an `isize`.
fn conv_axis_valid([input, kernel, stride, padding, dilation, output]: [usize; 6]) -> bool {
    if input == 0 || kernel == 0 || stride == 0 || dilation == 0 || output == 0 {
        return false;
    }
    let reach = mul(output as u128 - 1, stride as u128)
        .saturating_add(mul(kernel as u128 - 1, dilation as u128))
        .saturating_add(1);
    let end = input as u128 + padding as u128;
    let limit = isize::MAX as u128;
    reach <= limit
        && end + padding as u128 <= limit
        && reach <= end + padding as u128 + 1
        && end.saturating_sub(reach) < stride.max(dilation) as u128
}

fn conv_case(rng: &mut Rng) -> Outcome {
    let (h, w) = (conv_axis(rng), conv_axis(rng));
    let (h, w) = if rng.below(2) == 0 { ([1, 1, 1, 0, 1, 1], w) } else { (h, w) };
    let channels = if rng.below(25) == 0 { [0, huge(rng)][rng.below(2)] } else { 1 + rng.below(3) };
    let filters = if rng.below(25) == 0 { [0, huge(rng)][rng.below(2)] } else { 1 + rng.below(4) };
    let g = ConvGeometry {
        channels,
        height: h[0],
        width: w[0],
        kernel: [h[1], w[1]],
        stride: [h[2], w[2]],
        padding: [h[3], w[3]],
        dilation: [h[4], w[4]],
        out_height: h[5],
        out_width: w[5],
    };
    let in_len = mul(mul(channels as u128, h[0] as u128), w[0] as u128);
    let patch = mul(mul(channels as u128, h[1] as u128), w[1] as u128);
    let positions = mul(h[5] as u128, w[5] as u128);
    let out_len = mul(filters as u128, positions);
    let batch = rng.below(4) as u128;
    let mut x_len = len_near(rng, Some(mul(batch, in_len)));
    if rng.below(10) == 0 {
        x_len += 1;
    }
    let x = values(rng, x_len);
    let weight = values_near(rng, Some(mul(filters as u128, patch)));
    let bias = match rng.below(3) {
        0 => None,
        _ => Some(values_near(rng, Some(filters as u128))),
    };
    let y_len = len_near(rng, Some(mul(batch, out_len)));
    let fits = |v: u128| v < 1 << 64;
    let geometry = channels > 0
        && conv_axis_valid(h)
        && conv_axis_valid(w)
        && fits(in_len)
        && fits(patch)
        && fits(positions)
        && fits(out_len);
    let samples = in_len > 0 && (x_len as u128).is_multiple_of(in_len);
    let x_batch = x_len as u128 / in_len.max(1);
    let valid = geometry
        && filters > 0
        && samples
        && weight.len() as u128 >= mul(filters as u128, patch)
        && bias.as_ref().is_none_or(|b| b.len() >= filters)
        && y_len as u128 >= mul(x_batch, out_len);
    // Scratch for any path: a tile of the column matrix and the padded input.
    let scratch_len = if geometry && patch <= 1 << 14 { patch as usize * 256 + (1 << 14) } else { 64 };
    let mut scratch = vec![f32::NAN; scratch_len];
    let mut y = vec![f32::NAN; y_len];
    let returned = quietly(|| conv::forward(&g, filters, &x, &weight, bias.as_deref(), &mut y, &mut scratch)).is_some();
    let verify = || {
        let (c_n, f_n) = (channels, filters);
        let (n, in_len, patch) = (positions as usize, in_len as usize, patch as usize);
        for b in 0..x_batch as usize {
            for f in 0..f_n {
                for oy in 0..h[5] {
                    for ox in 0..w[5] {
                        let start = bias.as_ref().map_or(0.0, |bias| bias[f] as f64);
                        let (mut exact, mut size) = (start, start.abs());
                        for c in 0..c_n {
                            for i in 0..h[1] {
                                for j in 0..w[1] {
                                    let iy = (oy * h[2] + i * h[4]) as isize - h[3] as isize;
                                    let ix = (ox * w[2] + j * w[4]) as isize - w[3] as isize;
                                    if iy < 0 || ix < 0 || iy as usize >= h[0] || ix as usize >= w[0] {
                                        continue;
                                    }
                                    let xv = x[b * in_len + (c * h[0] + iy as usize) * w[0] + ix as usize];
                                    let v = weight[f * patch + (c * h[1] + i) * w[1] + j] as f64 * xv as f64;
                                    exact += v;
                                    size += v.abs();
                                }
                            }
                        }
                        let got = y[(b * f_n + f) * n + oy * w[5] + ox];
                        if !close(got, exact, size) {
                            return Err(format!("y[{b}, {f}, {oy}, {ox}] = {got}, expected {exact}"));
                        }
                    }
                }
            }
        }
        Ok(())
    };
    judge(valid, returned, verify, || {
        format!(
            "{g:?}, {filters} filters, x {x_len}, weight {}, bias {:?}, y {y_len}",
            weight.len(),
            bias.as_ref().map(Vec::len)
        )
    })
}
