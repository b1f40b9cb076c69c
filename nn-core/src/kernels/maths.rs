//! The elementary functions of the kernels, one of each per precision:
//!
//! * [`exp`], [`sigmoid`], [`tanh`]: `f32` throughout, branch-free polynomial forms
//!   (Cephes' `expf` and `tanhf`) whose loops over lanes vectorise, for the recurrent
//!   cells. They evaluate five of them per unit and step, which with `libm`'s scalar
//!   calls took more time than the matrix products. Accuracy against `f64` over the
//!   whole range (`tests/layers/rnn.rs`): `exp` within 1 ulp, `sigmoid` within 2.5 and
//!   `tanh` within 1.5 ulp of the result, far below the 1e-5 tolerance of the PyTorch
//!   golden tests. [`sigmoid_in_place`] and [`tanh_in_place`] apply them to a slice
//!   (the `Sigmoid` and `Tanh` activations of every layer, through
//!   [`Activation`](crate::Activation)), 64 lanes at a time.
//! * [`exp_rounded`]: `e^x` evaluated in `f64` and rounded once, for the softmax of
//!   attention scores.
//!
//! The `_lanes` forms take `N` lanes at once and give each lane exactly the bits of the
//! one-lane function.

use super::portable::fma;

/// `f` applied to each of `N` lanes: written as a loop over an array, every step of a
/// function below is one vector operation over all lanes, so that `N` lanes (several
/// vectors) advance side by side through each dependent chain.
#[inline(always)]
pub(crate) fn each<const N: usize>(f: impl Fn(usize) -> f32) -> [f32; N] {
    let mut out = [0.0; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = f(i);
    }
    out
}

/// `e^x`, clamped to the finite `f32` range (`exp(-inf) = 0` would need a branch; below
/// -87.3 the result is the smallest normal instead). Cody-Waite reduction
/// `x = n ln 2 + r`, `|r| <= ln 2 / 2`, a degree-7 polynomial in `r`, and `2^n` built
/// in the exponent bits.
///
/// Every multiply-add is fused ([`fma`]: `vfmadd` under AVX2, the same bits on every
/// other target) and the polynomial is evaluated in pairs of coefficients (Estrin's
/// scheme): three dependent multiply-adds where Horner's form takes six.
#[inline(always)]
#[cfg(any(feature = "internals", test))]
pub fn exp(x: f32) -> f32 {
    exp_lanes([x])[0]
}

/// Whether one lane (the portable cells' unit-by-unit loop) calls one out-of-line copy
/// of each function rather than inlining it at every gate: off x86-64 the cells run
/// unit by unit, and inlined copies made the Cortex-M0's cell step 21 KiB of code.
const ONE_LANE_OUT_OF_LINE: bool = cfg!(not(target_arch = "x86_64"));

/// [`exp`] of `N` lanes, each exactly as [`exp`].
#[inline(always)]
pub(crate) fn exp_lanes<const N: usize>(x: [f32; N]) -> [f32; N] {
    if ONE_LANE_OUT_OF_LINE && N == 1 {
        return each::<N>(|i| exp_one(x[i]));
    }
    exp_each(x)
}

/// [`exp`], one out-of-line copy.
#[inline(never)]
fn exp_one(x: f32) -> f32 {
    exp_each([x])[0]
}

/// The operations of [`exp`] over `N` lanes.
#[inline(always)]
fn exp_each<const N: usize>(x: [f32; N]) -> [f32; N] {
    const LOG2E: f32 = core::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding and subtracting 1.5 * 2^23 rounds to the nearest integer (no `round` in core).
    const ROUND: f32 = 12_582_912.0;
    // `e^r = 1 + r + r^2 P(r)`, `P(r) = C[0] + C[1] r + ... + C[5] r^5` (Cephes' `expf`).
    const C: [f32; 6] = [0.5, 1.666_666_5e-1, 4.166_579_6e-2, 8.333_452e-3, 1.398_199_9e-3, 1.987_569_1e-4];
    let x = each::<N>(|i| x[i].clamp(-87.336_55, 88.722_83));
    let rounded = each::<N>(|i| fma(x[i], LOG2E, ROUND));
    let r = each::<N>(|i| {
        let n = rounded[i] - ROUND;
        fma(n, -LN2_LO, fma(n, -LN2_HI, x[i]))
    });
    let r2 = each::<N>(|i| r[i] * r[i]);
    // P(r) = (C0 + C1 r) + r^2 ((C2 + C3 r) + r^2 (C4 + C5 r)).
    let p = each::<N>(|i| {
        let (a, b, c) = (fma(C[1], r[i], C[0]), fma(C[3], r[i], C[2]), fma(C[5], r[i], C[4]));
        fma(fma(c, r2[i], b), r2[i], a)
    });
    // n is in [-126, 128], also held in the low mantissa bits of `rounded` (read there:
    // a float-to-int conversion would keep the loop from vectorising). 2^n is built as
    // 2^(n/2) 2^(n - n/2), so that n = 128 stays finite in the exponent bits.
    each::<N>(|i| {
        let e = fma(p[i], r2[i], r[i]) + 1.0;
        let n = rounded[i].to_bits() as i32 - ROUND.to_bits() as i32;
        let half = n >> 1;
        let scale_a = f32::from_bits(((half + 127) as u32) << 23);
        let scale_b = f32::from_bits(((n - half + 127) as u32) << 23);
        e * scale_a * scale_b
    })
}

/// The logistic function `1 / (1 + e^-x)`.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    sigmoid_lanes([x])[0]
}

/// [`sigmoid`] of `N` lanes.
#[inline(always)]
pub(crate) fn sigmoid_lanes<const N: usize>(x: [f32; N]) -> [f32; N] {
    if ONE_LANE_OUT_OF_LINE && N == 1 {
        return each::<N>(|i| sigmoid_one(x[i]));
    }
    sigmoid_each(x)
}

/// [`sigmoid`], one out-of-line copy.
#[inline(never)]
fn sigmoid_one(x: f32) -> f32 {
    sigmoid_each([x])[0]
}

/// The operations of [`sigmoid`] over `N` lanes.
#[inline(always)]
fn sigmoid_each<const N: usize>(x: [f32; N]) -> [f32; N] {
    let e = exp_lanes(each::<N>(|i| -x[i]));
    each::<N>(|i| 1.0 / (1.0 + e[i]))
}

/// `tanh(x)`: an odd polynomial for `|x| < 0.625`, `1 - 2 / (e^(2|x|) + 1)` above, with
/// the sign of `x`; multiply-adds fused as in [`exp`].
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    tanh_lanes([x])[0]
}

/// [`tanh`] of `N` lanes.
#[inline(always)]
pub(crate) fn tanh_lanes<const N: usize>(x: [f32; N]) -> [f32; N] {
    if ONE_LANE_OUT_OF_LINE && N == 1 {
        return each::<N>(|i| tanh_one(x[i]));
    }
    tanh_each(x)
}

/// [`tanh`], one out-of-line copy.
#[inline(never)]
fn tanh_one(x: f32) -> f32 {
    tanh_each([x])[0]
}

/// The operations of [`tanh`] over `N` lanes.
#[inline(always)]
fn tanh_each<const N: usize>(x: [f32; N]) -> [f32; N] {
    // `tanh(x) = x + x z Q(z)`, `z = x^2`, `Q(z) = D[0] + D[1] z + ... + D[4] z^4`
    // (Cephes' `tanhf`), evaluated beside the exponential's longer chain.
    const D: [f32; 5] = [-3.333_328e-1, 1.333_144_2e-1, -5.373_971_6e-2, 2.063_909e-2, -5.704_988_7e-3];
    let z = each::<N>(|i| x[i] * x[i]);
    let mut q = [D[4]; N];
    for d in [D[3], D[2], D[1], D[0]] {
        q = each::<N>(|i| fma(q[i], z[i], d));
    }
    let e = exp_lanes(each::<N>(|i| 2.0 * x[i].abs()));
    each::<N>(|i| {
        let small = fma(q[i] * z[i], x[i], x[i]);
        let large = (1.0 - 2.0 / (e[i] + 1.0)).copysign(x[i]);
        if x[i].abs() < 0.625 {
            small
        } else {
            large
        }
    })
}

/// Lanes [`sigmoid_in_place`] and [`tanh_in_place`] evaluate at once: eight AVX2
/// vectors, eight independent dependency chains side by side (as the cells' steps).
const SLICE_LANES: usize = 64;

/// Applies `$lanes` (a `_lanes` function) to every value of `$v`: [`SLICE_LANES`]
/// lanes at a time, then 8, then the rest one lane at a time, every value with the
/// bits of the one-lane function. A macro, so that the calls are inlined into the
/// caller compiled for AVX2 (through a function item they were not, and ran without
/// `vfmadd`).
macro_rules! map_in_place {
    ($v:expr, $lanes:ident) => {{
        let mut chunks = $v.chunks_exact_mut(SLICE_LANES);
        for c in &mut chunks {
            let x: [f32; SLICE_LANES] = core::array::from_fn(|i| c[i]);
            c.copy_from_slice(&$lanes::<SLICE_LANES>(x));
        }
        let mut chunks = chunks.into_remainder().chunks_exact_mut(8);
        for c in &mut chunks {
            let x: [f32; 8] = core::array::from_fn(|i| c[i]);
            c.copy_from_slice(&$lanes::<8>(x));
        }
        chunks.into_remainder().iter_mut().for_each(|x| *x = $lanes::<1>([*x])[0]);
    }};
}

/// [`sigmoid`] of every value of `v`, in place (`Activation::Sigmoid`).
pub fn sigmoid_in_place(v: &mut [f32]) {
    #[inline(always)]
    fn portable(v: &mut [f32]) {
        map_in_place!(v, sigmoid_lanes);
    }
    /// [`portable`] compiled for AVX2 and FMA: the same operations, fused as
    /// [`fma`] fuses them everywhere, so the same bits.
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn avx2(v: &mut [f32]) {
        portable(v)
    }
    #[cfg(target_arch = "x86_64")]
    if super::avx2::available() {
        // SAFETY: the CPU has AVX2 and FMA.
        return unsafe { avx2(v) };
    }
    portable(v)
}

/// [`tanh`] of every value of `v`, in place (`Activation::Tanh`).
pub fn tanh_in_place(v: &mut [f32]) {
    #[inline(always)]
    fn portable(v: &mut [f32]) {
        map_in_place!(v, tanh_lanes);
    }
    /// [`portable`] compiled for AVX2 and FMA (the same bits).
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn avx2(v: &mut [f32]) {
        portable(v)
    }
    #[cfg(target_arch = "x86_64")]
    if super::avx2::available() {
        // SAFETY: the CPU has AVX2 and FMA.
        return unsafe { avx2(v) };
    }
    portable(v)
}

/// `e^x` rounded to `f32` from an `f64` evaluation: Cody-Waite reduction
/// `x = n ln 2 + r`, `|r| <= ln 2 / 2`, the Taylor polynomial of degree 11 in `r`
/// (truncation below `4e-15` relative) and `2^n` built in the exponent bits. The result
/// is the correctly rounded `f32` but for rare near-ties (as `libm`'s `expf`), without
/// a branch or a call: with `libm`'s `expf` on the scores of real inputs the softmax
/// took a quarter of an encoder layer's inference. Inputs below -104 give 0.
#[inline(always)]
pub fn exp_rounded(x: f32) -> f32 {
    const LOG2E: f64 = core::f64::consts::LOG2_E;
    const LN2: f64 = core::f64::consts::LN_2;
    // Adding and subtracting 1.5 * 2^52 rounds to the nearest integer.
    const ROUND: f64 = 6_755_399_441_055_744.0;
    let x = (x as f64).clamp(-104.0, 88.8);
    let rounded = x * LOG2E + ROUND;
    let n = rounded - ROUND;
    let r = x - n * LN2;
    // Horner form of sum_{k <= 11} r^k / k!.
    let mut p = 1.0 / 39_916_800.0;
    p = p * r + 1.0 / 3_628_800.0;
    p = p * r + 1.0 / 362_880.0;
    p = p * r + 1.0 / 40_320.0;
    p = p * r + 1.0 / 5_040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    // n is in [-151, 129], also held in the low mantissa bits of `rounded`.
    let n = rounded.to_bits() as i64 - ROUND.to_bits() as i64;
    (p * f64::from_bits(((n + 1023) as u64) << 52)) as f32
}
