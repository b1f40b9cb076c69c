//! The crate's elementary functions of `f32`, one of each: [`exp`], [`sigmoid`] and
//! [`tanh`]. Every `e^x` of the crate is [`exp`] (the recurrent cells' gates, the
//! `Sigmoid`, `Tanh` and `Softmax` activations and the GELU derivative, the
//! cross-entropy and GAN losses on logits, the softmax of attention scores).
//!
//! They are branch-free polynomial forms (Cephes' `expf` and `tanhf`) with every
//! multiply-add fused, whose loops over lanes vectorise: the recurrent cells evaluate
//! five of them per unit and step, which with `libm`'s scalar calls took more time than
//! the matrix products, and a softmax over attention scores took a quarter of an
//! encoder layer's inference. Every form gives the same bits (one lane, `N` lanes under
//! AVX2, AVX-512 or NEON, a microcontroller's software arithmetic), so a network's
//! outputs do not depend on the target.
//!
//! Accuracy against `f64` over every `f32` (the tests below): `exp` within 1.03 ulp, `sigmoid` within 2.5 ulp (results above `f32::MIN_POSITIVE`;
//! below, an absolute error under `2^-126`) and `tanh` within 1.5 ulp, far below the
//! tolerances of the PyTorch golden tests.
//!
//! [`sigmoid_in_place`], [`tanh_in_place`] and [`exp_shifted_in_place`] apply them to a
//! slice, 64 lanes at a time; the `_lanes` forms take `N` lanes at once and give each
//! lane exactly the bits of the one-lane function.

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

/// `e^x` for every `f32`: within 1.03 ulp of the exact value over the whole range (the
/// subnormal results included; in units of the last place of `e^x` rounded to `f32`,
/// where rounding alone gives 0.5; measured against `f64` over every `f32`: 1.028, the
/// ignored test below), 0 from about -103.97 down to `-inf`
/// (`exp(-inf) = 0`), `+inf` from about 88.72 (where `e^x` passes `f32::MAX`) up to
/// `+inf`, NaN for NaN.
///
/// Cody-Waite reduction `x = n ln 2 + r`, `|r| <= ln 2 / 2`, a degree-7 polynomial in
/// `r` (Cephes' `expf`), and `2^n` built in the exponent bits as two factors
/// `2^(n/2) 2^(n - n/2)`, so that `n` from -150 to 128 needs no branch: the first
/// product is exact and the second rounds once, to a subnormal, a normal or `+inf`.
///
/// Every multiply-add is fused ([`fma`]: `vfmadd` under AVX2, `fmla` on AArch64, the
/// same bits on every other target, in software on cores without an FPU) and the
/// polynomial is evaluated in pairs of coefficients (Estrin's scheme): three dependent
/// multiply-adds where Horner's form takes six. Every form (one lane, the vectorised
/// loops of the `_in_place` functions and the recurrent cells under AVX2, AVX-512 and
/// NEON, `neon::exp4`) computes these operations in this order, so a value's `e^x` has
/// the same bits on every target.
///
/// On x86-64 this one-lane form runs in the slice forms' copy compiled for AVX2 and FMA
/// where the CPU has them (compiled for the baseline, each multiply-add would be a call
/// to `fmaf`); the kernels call `exp_lanes`, inlined into their own AVX2 copies.
#[inline]
pub fn exp(x: f32) -> f32 {
    if cfg!(target_arch = "x86_64") {
        let mut one = [x];
        map_in_place(Exp, &mut one);
        one[0]
    } else {
        exp_lanes([x])[0]
    }
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

/// The constants of [`exp`] (Cephes' `expf`), shared by its lane and vector forms.
pub(crate) mod exp_constants {
    /// `log2(e)`.
    pub(crate) const LOG2E: f32 = core::f32::consts::LOG2_E;
    /// `ln 2` in two parts: `LN2_HI` exact in few bits, `LN2_LO` the rest.
    pub(crate) const LN2_HI: f32 = 0.693_359_4;
    /// The rest of `ln 2` after [`LN2_HI`].
    pub(crate) const LN2_LO: f32 = -2.121_944_4e-4;
    /// Adding and subtracting 1.5 * 2^23 rounds to the nearest integer (no `round` in core).
    pub(crate) const ROUND: f32 = 12_582_912.0;
    /// `e^r = 1 + r + r^2 P(r)`, `P(r) = C[0] + C[1] r + ... + C[5] r^5`.
    pub(crate) const C: [f32; 6] = [0.5, 1.666_666_5e-1, 4.166_579_6e-2, 8.333_452e-3, 1.398_199_9e-3, 1.987_569_1e-4];
}

/// The operations of [`exp`] over `N` lanes.
#[inline(always)]
fn exp_each<const N: usize>(x: [f32; N]) -> [f32; N] {
    use exp_constants::{C, LN2_HI, LN2_LO, LOG2E, ROUND};
    // Below -150 ln 2 (-103.97) `e^x` rounds to 0, above 128 ln 2 (88.72) to `+inf`:
    // clamped, `n` stays in [-150, 128] and the result is still 0 or `+inf` (`clamp`
    // keeps NaN).
    let x = each::<N>(|i| x[i].clamp(-104.0, 89.0));
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
    // n is in [-150, 128], also held in the low mantissa bits of `rounded` (read there:
    // a float-to-int conversion would keep the loop from vectorising). `e` is in
    // [0.7, 1.5): `e 2^(n/2)` is exact, `2^(n - n/2)` rounds once.
    each::<N>(|i| {
        let e = fma(p[i], r2[i], r[i]) + 1.0;
        let n = (rounded[i].to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
        let half = n >> 1;
        let scale_a = f32::from_bits((half.wrapping_add(127) as u32) << 23);
        let scale_b = f32::from_bits((n.wrapping_sub(half).wrapping_add(127) as u32) << 23);
        e * scale_a * scale_b
    })
}

/// The correctly rounded square root, the same bits as `libm::sqrtf` on every target: on
/// x86-64 the instruction in the encoding of the copy it is inlined into (`vsqrtss` in a
/// `#[target_feature]` AVX copy, where `libm::sqrtf` is always a legacy `sqrtss`: after
/// eight-lane code that legacy form stalled the digits CNN's batch norm of 16 channels on
/// an AMD Zen 3, 1.5 µs against 0.2 µs, and it stalls among AVX-512 instructions), which
/// also vectorises.
#[inline(always)]
pub(crate) fn sqrt(x: f32) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{_mm_cvtss_f32, _mm_set_ss, _mm_sqrt_ss};
        // SAFETY: every x86-64 CPU has SSE.
        unsafe { _mm_cvtss_f32(_mm_sqrt_ss(_mm_set_ss(x))) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        libm::sqrtf(x)
    }
}

/// The logistic function `1 / (1 + e^-x)`, with [`exp`]: within 2.5 ulp where the
/// result is normal (`x` above -87.3); below, a subnormal or 0 (0 from -88.73, where
/// `e^-x` is `+inf`), within `2^-126` of the exact value. 0 and 1 in the limits, NaN
/// for NaN.
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
/// the sign of `x`; multiply-adds fused as in [`exp`]. Within 1.5 ulp for every `x`,
/// -1 and 1 in the limits, NaN for NaN.
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
    const D: [f32; 5] = TANH_D;
    let z = each::<N>(|i| x[i] * x[i]);
    let mut q = [D[4]; N];
    for d in [D[3], D[2], D[1], D[0]] {
        q = each::<N>(|i| fma(q[i], z[i], d));
    }
    let e = exp_lanes(each::<N>(|i| 2.0 * x[i].abs()));
    each::<N>(|i| {
        let small = fma(q[i] * z[i], x[i], x[i]);
        let large = (1.0 - 2.0 / (e[i] + 1.0)).copysign(x[i]);
        if x[i].abs() < TANH_SMALL {
            small
        } else {
            large
        }
    })
}

/// The coefficients of [`tanh`]'s odd polynomial, `Q(z) = D[0] + D[1] z + ... + D[4] z^4`.
pub(crate) const TANH_D: [f32; 5] = [-3.333_328e-1, 1.333_144_2e-1, -5.373_971_6e-2, 2.063_909e-2, -5.704_988_7e-3];

/// `|x|` below which [`tanh`] is its polynomial (at and above, and for NaN, the
/// exponential form).
pub(crate) const TANH_SMALL: f32 = 0.625;

/// The two results [`tanh`] chooses between, over `N` lanes, `[small, large]`: the odd
/// polynomial and `1 - 2 / (e^(2|x|) + 1)` with the sign of `x`, by the operations of
/// [`tanh`]. [`tanh`] is `small` where `|x| < TANH_SMALL`, `large` elsewhere (NaN
/// included): for vector forms that choose by a compare and a blend, with the bits of
/// [`tanh_lanes`].
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn tanh_branches<const N: usize>(x: [f32; N]) -> [[f32; N]; 2] {
    const D: [f32; 5] = TANH_D;
    let z = each::<N>(|i| x[i] * x[i]);
    let mut q = [D[4]; N];
    for d in [D[3], D[2], D[1], D[0]] {
        q = each::<N>(|i| fma(q[i], z[i], d));
    }
    let e = exp_lanes(each::<N>(|i| 2.0 * x[i].abs()));
    let small = each::<N>(|i| fma(q[i] * z[i], x[i], x[i]));
    let large = each::<N>(|i| (1.0 - 2.0 / (e[i] + 1.0)).copysign(x[i]));
    [small, large]
}

/// [`tanh`] of `N` lanes, each with its bits, by its operations but for two steps of the
/// exponential `e^(2|x|)`, both without effect on the result: no lower clamp (`2|x|` is
/// not negative, or NaN), and `2^n` (`n` in `[0, 128]`) one factor where [`exp`] takes
/// two, `2^(n/2) 2^(n - n/2)` (from the exponent bits of `rounded`: two integer
/// operations and one multiply where [`exp`] takes seven and two). For `n` up to 127,
/// `e 2^n` is exact either way (`e` in `[0.7, 1.5)`, below `f32::MAX`); for `n = 128`
/// (`2|x|` from 88.38) the factor is `+inf` and so the exponential, where [`exp`] may
/// give a finite value from 2.38e38: `2 / (e + 1)` is 0 or below 8.4e-39, and
/// `1 - 2 / (e + 1)` is 1 both ways. For the eight-lane LSTM steps of up to 16 units:
/// three cycles shorter on each `tanh`'s chain. It writes out `exp`'s reduction rather
/// than share `exp_each`'s through a function returning `e` and `rounded`: that form
/// made the AVX2 LSTM 16->16 step 4 to 8 % slower (AMD Zen 4, alternated).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn tanh_lanes_one_scale<const N: usize>(x: [f32; N]) -> [f32; N] {
    use exp_constants::{C, LN2_HI, LN2_LO, LOG2E, ROUND};
    const D: [f32; 5] = TANH_D;
    let z = each::<N>(|i| x[i] * x[i]);
    let mut q = [D[4]; N];
    for d in [D[3], D[2], D[1], D[0]] {
        q = each::<N>(|i| fma(q[i], z[i], d));
    }
    // `exp`'s operations on `2|x|`, but for the lower clamp and the scaling.
    let a = each::<N>(|i| {
        // The upper half of `clamp`: NaN stays NaN.
        let a = 2.0 * x[i].abs();
        if a > 89.0 {
            89.0
        } else {
            a
        }
    });
    let rounded = each::<N>(|i| fma(a[i], LOG2E, ROUND));
    let r = each::<N>(|i| {
        let n = rounded[i] - ROUND;
        fma(n, -LN2_LO, fma(n, -LN2_HI, a[i]))
    });
    let r2 = each::<N>(|i| r[i] * r[i]);
    let p = each::<N>(|i| {
        let (a, b, c) = (fma(C[1], r[i], C[0]), fma(C[3], r[i], C[2]), fma(C[5], r[i], C[4]));
        fma(fma(c, r2[i], b), r2[i], a)
    });
    let e = each::<N>(|i| {
        let e = fma(p[i], r2[i], r[i]) + 1.0;
        // `(n + 127) << 23`, `n` the low bits of `rounded` less those of `ROUND`.
        let scale = f32::from_bits(rounded[i].to_bits().wrapping_add(127u32.wrapping_sub(ROUND.to_bits())) << 23);
        e * scale
    });
    each::<N>(|i| {
        let small = fma(q[i] * z[i], x[i], x[i]);
        let large = (1.0 - 2.0 / (e[i] + 1.0)).copysign(x[i]);
        if x[i].abs() < TANH_SMALL {
            small
        } else {
            large
        }
    })
}

/// Lanes the `_in_place` functions evaluate at once: eight AVX2 vectors, eight
/// independent dependency chains side by side (as the cells' steps).
const SLICE_LANES: usize = 64;

/// A function of `N` lanes that gives every lane the bits of its one-lane form: what
/// [`map_in_place`] applies to a slice.
trait Lanes: Copy {
    /// The function of `N` lanes.
    fn lanes<const N: usize>(self, x: [f32; N]) -> [f32; N];
}

/// [`exp`].
#[derive(Clone, Copy)]
struct Exp;

impl Lanes for Exp {
    #[inline(always)]
    fn lanes<const N: usize>(self, x: [f32; N]) -> [f32; N] {
        exp_lanes(x)
    }
}

/// [`sigmoid`].
#[derive(Clone, Copy)]
struct Sigmoid;

impl Lanes for Sigmoid {
    #[inline(always)]
    fn lanes<const N: usize>(self, x: [f32; N]) -> [f32; N] {
        sigmoid_lanes(x)
    }
}

/// [`tanh`].
#[derive(Clone, Copy)]
struct Tanh;

impl Lanes for Tanh {
    #[inline(always)]
    fn lanes<const N: usize>(self, x: [f32; N]) -> [f32; N] {
        tanh_lanes(x)
    }
}

/// `x -> e^(x - shift)` ([`exp`] of the difference).
#[derive(Clone, Copy)]
struct ExpShifted(f32);

impl Lanes for ExpShifted {
    #[inline(always)]
    fn lanes<const N: usize>(self, x: [f32; N]) -> [f32; N] {
        exp_lanes(each::<N>(|i| x[i] - self.0))
    }
}

/// Applies `f` to every value of `v` in place: [`SLICE_LANES`] lanes at a time, then 8,
/// then the rest one lane at a time, every value with the bits of the one-lane
/// function. On x86-64 CPUs with AVX2 and FMA the loops run in a copy compiled for them
/// (the `#[inline(always)]` lane functions inlined into it, so that their loops over
/// lanes become vector operations and [`fma`] one `vfmadd`).
fn map_in_place<F: Lanes>(f: F, v: &mut [f32]) {
    #[inline(always)]
    fn portable<F: Lanes>(f: F, v: &mut [f32]) {
        let mut chunks = v.chunks_exact_mut(SLICE_LANES);
        for c in &mut chunks {
            let x: [f32; SLICE_LANES] = core::array::from_fn(|i| c[i]);
            c.copy_from_slice(&f.lanes(x));
        }
        let mut chunks = chunks.into_remainder().chunks_exact_mut(8);
        for c in &mut chunks {
            let x: [f32; 8] = core::array::from_fn(|i| c[i]);
            c.copy_from_slice(&f.lanes(x));
        }
        chunks.into_remainder().iter_mut().for_each(|x| *x = f.lanes([*x])[0]);
    }
    /// [`portable`] compiled for AVX2 and FMA: the same operations, fused as [`fma`]
    /// fuses them everywhere, so the same bits.
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn avx2<F: Lanes>(f: F, v: &mut [f32]) {
        portable(f, v)
    }
    #[cfg(target_arch = "x86_64")]
    if super::avx2::available() {
        // SAFETY: the CPU has AVX2 and FMA.
        return unsafe { avx2(f, v) };
    }
    portable(f, v)
}

/// [`sigmoid`] of every value of `v`, in place (`Activation::Sigmoid`).
pub fn sigmoid_in_place(v: &mut [f32]) {
    map_in_place(Sigmoid, v);
}

/// [`tanh`] of every value of `v`, in place (`Activation::Tanh`).
pub fn tanh_in_place(v: &mut [f32]) {
    map_in_place(Tanh, v);
}

/// `e^(x - shift)` ([`exp`] of the difference) of every value `x` of `v`, in place: the
/// exponentials of a softmax shifted by the row's maximum (`Activation::Softmax`, the
/// cross-entropy losses on logits).
pub fn exp_shifted_in_place(v: &mut [f32], shift: f32) {
    map_in_place(ExpShifted(shift), v);
}

/// Lanes of the crate's fixed-order sums ([`sum_lanes`], [`dot_lanes`]): lane `j` adds
/// the terms `j`, `j + 16`, `j + 32`, ... in order, then the lanes are added pairwise
/// ([`fold_lanes`]). Written as loops over arrays of this many lanes, a sum is one
/// AVX-512 or two AVX2 vector additions per step and scalar additions elsewhere, in the
/// same order: the same bits on every instruction set, where a sum in index order
/// would be one dependent chain of scalar additions.
pub(crate) const SUM_LANES: usize = 16;

/// The lanes of a sum added pairwise: `j + 8` into `j`, then `j + 4`, `j + 2`, `j + 1`.
#[inline(always)]
pub(crate) fn fold_lanes(mut lanes: [f32; SUM_LANES]) -> f32 {
    let mut half = SUM_LANES / 2;
    while half > 0 {
        for i in 0..half {
            lanes[i] += lanes[i + half];
        }
        half /= 2;
    }
    lanes[0]
}

/// `sum f(v)` over `values`, in the order of [`SUM_LANES`].
#[inline(always)]
pub(crate) fn sum_lanes(values: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut lanes = [0.0f32; SUM_LANES];
    let mut chunks = values.chunks_exact(SUM_LANES);
    for chunk in &mut chunks {
        for (l, &v) in lanes.iter_mut().zip(chunk) {
            *l += f(v);
        }
    }
    for (l, &v) in lanes.iter_mut().zip(chunks.remainder()) {
        *l += f(v);
    }
    fold_lanes(lanes)
}

/// `sum a[i] b[i]` (products rounded, not fused), in the order of [`SUM_LANES`].
#[inline(always)]
pub(crate) fn dot_lanes(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; SUM_LANES];
    let (a, b) = (&a[..a.len().min(b.len())], &b[..a.len().min(b.len())]);
    for (a, b) in a.chunks_exact(SUM_LANES).zip(b.chunks_exact(SUM_LANES)) {
        for l in 0..SUM_LANES {
            lanes[l] += a[l] * b[l];
        }
    }
    let full = a.len() / SUM_LANES * SUM_LANES;
    for (l, (&a, &b)) in lanes.iter_mut().zip(a[full..].iter().zip(&b[full..])) {
        *l += a * b;
    }
    fold_lanes(lanes)
}

#[cfg(all(test, feature = "std"))]
pub(super) mod tests {
    //! Accuracy over every `f32` against `f64` (sampled here; every value in the ignored
    //! test), the ends of the range, and the slice forms against the one-lane ones, bit
    //! for bit (on x86-64 with AVX2 the slice forms run the AVX2 copy, on AArch64 NEON
    //! vectors, the one-lane calls neither).
    use super::*;
    use std::vec::Vec;

    /// `|actual - exact|` in units of the last place of `exact` rounded to `f32` (the
    /// ulp of `f32::MAX` beyond it, `+inf` counted as `2^128`).
    fn ulps(actual: f32, exact: f64) -> f64 {
        let exact = exact.clamp(-(2f64.powi(128)), 2f64.powi(128));
        let rounded = (exact as f32).abs();
        let ulp =
            if rounded >= f32::MAX { 2f64.powi(104) } else { (f32::from_bits(rounded.to_bits() + 1) - rounded) as f64 };
        let actual = if actual.is_infinite() { 2f64.powi(128).copysign(actual as f64) } else { actual as f64 };
        (actual - exact).abs() / ulp
    }

    /// The largest errors of `exp`, `sigmoid` and `tanh` over the `f32`s whose bit patterns
    /// are multiples of `step`, and the largest absolute error of `sigmoid` where the
    /// exact value is below `f32::MIN_POSITIVE`.
    fn worst(step: usize) -> [f64; 4] {
        let mut worst = [0.0f64; 4];
        for bits in (0..=u32::MAX).step_by(step) {
            let x = f32::from_bits(bits);
            if x.is_nan() {
                assert!(exp(x).is_nan() && sigmoid(x).is_nan() && tanh(x).is_nan(), "{bits:#x}");
                continue;
            }
            let xd = x as f64;
            worst[0] = worst[0].max(ulps(exp(x), xd.exp()));
            let s = 1.0 / (1.0 + (-xd).exp());
            if s >= f32::MIN_POSITIVE as f64 {
                worst[1] = worst[1].max(ulps(sigmoid(x), s));
            } else {
                worst[3] = worst[3].max((sigmoid(x) as f64 - s).abs());
            }
            worst[2] = worst[2].max(ulps(tanh(x), xd.tanh()));
        }
        worst
    }

    fn assert_bounds(worst: [f64; 4]) {
        let [e, s, t, tiny] = worst;
        assert!(e <= 1.03, "exp: {e} ulp");
        assert!(s <= 2.5, "sigmoid: {s} ulp");
        assert!(t <= 1.5, "tanh: {t} ulp");
        assert!(tiny < 2f64.powi(-126), "sigmoid below MIN_POSITIVE: {tiny}");
    }

    /// `exp`, `sigmoid` and `tanh` over every 1009th `f32` (4.3 million values, every
    /// exponent) within their bounds.
    #[test]
    fn functions_are_accurate_over_a_sample_of_every_f32() {
        let worst = worst(1009);
        println!("ulp errors exp, sigmoid, tanh; sigmoid's absolute error below MIN_POSITIVE: {worst:?}");
        assert_bounds(worst);
    }

    /// Every `f32` (about a minute in a release build:
    /// `cargo test -p nn-core --release --lib -- --ignored every_f32`).
    #[test]
    #[ignore = "4.3 billion values: run in a release build"]
    fn exp_is_accurate_over_every_f32() {
        let worst = worst(1);
        println!("ulp errors exp, sigmoid, tanh; sigmoid's absolute error below MIN_POSITIVE: {worst:?}");
        assert_bounds(worst);
    }

    #[test]
    fn ends_of_the_range() {
        assert_eq!((exp(0.0), exp(-0.0), tanh(0.0), sigmoid(0.0)), (1.0, 1.0, 0.0, 0.5));
        // Below -150 ln 2, `e^x` rounds to 0; the smallest subnormal just above.
        for x in [-103.98, -104.0, -1000.0, f32::MIN, f32::NEG_INFINITY] {
            assert_eq!(exp(x).to_bits(), 0, "exp({x})");
        }
        assert_eq!(exp(-103.96), f32::from_bits(1));
        assert_eq!(exp(-87.5), (-87.5f64).exp() as f32);
        assert!(!exp(-87.5).is_normal() && exp(-87.5) > 0.0);
        // Above ln(f32::MAX) (88.722_84), `+inf`.
        assert!(exp(88.722_83).is_finite() && exp(88.722_83) > 3.4e38);
        for x in [88.722_85, 88.8, 89.0, 1000.0, f32::MAX, f32::INFINITY] {
            assert_eq!(exp(x), f32::INFINITY, "exp({x})");
        }
        assert!(exp(f32::NAN).is_nan() && exp(-f32::NAN).is_nan());
        assert_eq!((tanh(100.0), tanh(-100.0), tanh(f32::INFINITY), tanh(f32::NEG_INFINITY)), (1.0, -1.0, 1.0, -1.0));
        assert_eq!((sigmoid(100.0), sigmoid(-100.0), sigmoid(f32::NEG_INFINITY)), (1.0, 0.0, 0.0));
    }

    /// Values across the range and past both ends, `len` of them.
    fn values(len: usize) -> Vec<f32> {
        (0..len).map(|k| ((k * 7919) % 2001) as f32 * 0.11 - 110.0 + (k % 3) as f32 * 1e-3).collect()
    }

    /// The slice forms (64 lanes, then 8, then one) give the one-lane functions' bits,
    /// at every length around the chunk sizes.
    #[test]
    fn slice_forms_equal_the_one_lane_functions() {
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for len in (0..=140).chain([191, 192, 193, 1000]) {
            let x = values(len);
            let mut v = x.clone();
            sigmoid_in_place(&mut v);
            assert_eq!(bits(&v), bits(&x.iter().map(|&x| sigmoid(x)).collect::<Vec<_>>()), "sigmoid, {len}");
            let mut v = x.clone();
            tanh_in_place(&mut v);
            assert_eq!(bits(&v), bits(&x.iter().map(|&x| tanh(x)).collect::<Vec<_>>()), "tanh, {len}");
            let mut v = x.clone();
            exp_shifted_in_place(&mut v, 1.5);
            // The one-lane function compiled for the baseline (`exp` may run the AVX2 copy).
            let one_lane: Vec<f32> = x.iter().map(|&x| exp_lanes([x - 1.5])[0]).collect();
            assert_eq!(bits(&v), bits(&one_lane), "exp, {len}");
            assert_eq!(bits(&x.iter().map(|&x| exp(x - 1.5)).collect::<Vec<_>>()), bits(&one_lane), "exp, {len}");
        }
    }

    /// Whether `tanh_lanes_one_scale` gives `tanh_lanes`' bits on the eight bit patterns
    /// from `first`, `step` apart (NaN equal to NaN, whatever its bits).
    #[cfg(target_arch = "x86_64")]
    fn one_scale_agrees(first: u32, step: u32) -> bool {
        let x: [f32; 8] = core::array::from_fn(|k| f32::from_bits(first.wrapping_add(step.wrapping_mul(k as u32))));
        let (ours, lanes) = (tanh_lanes_one_scale(x), tanh_lanes(x));
        ours.iter().zip(&lanes).all(|(a, b)| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()))
    }

    /// Asserts `agrees(first, step)` (eight bit patterns from `first`, `step` apart)
    /// around each of the `special` values and their negatives (a few patterns either
    /// side), over every value of each of the `ranges` (both signs), and on one bit
    /// pattern in 4099 of all of them: the sweep of the tests that check a faster form
    /// of an activation against its lane function's bits.
    #[cfg(target_arch = "x86_64")]
    pub(in crate::kernels) fn sweep_bit_patterns(
        special: &[f32],
        ranges: &[(f32, f32)],
        agrees: impl Fn(u32, u32) -> bool,
    ) {
        for (k, &v) in special.iter().enumerate() {
            for v in [v, -v] {
                for delta in [-3i32, -1, 0, 1, 3] {
                    let first = v.to_bits().wrapping_add_signed(delta);
                    assert!(agrees(first, 1 + k as u32), "from {:e}", f32::from_bits(first));
                }
            }
        }
        for &(from, to) in ranges {
            for first in (from.to_bits()..to.to_bits()).step_by(8) {
                assert!(agrees(first, 1), "from {:e}", f32::from_bits(first));
                assert!(agrees(first | 1 << 31, 1), "from -{:e}", f32::from_bits(first));
            }
        }
        let mut first = 0u32;
        for _ in 0..(1u64 << 32) / (8 * 4099) {
            assert!(agrees(first, 4099), "from {first:#x}");
            first = first.wrapping_add(8 * 4099);
        }
    }

    /// `tanh_lanes_one_scale` gives `tanh`'s bits: around the special values (zeros,
    /// infinities, NaN, the polynomial's threshold, `2|x|` where `n` reaches 128 and
    /// the clamp), over 44.18 to 44.37 (`2|x|` from 88.37 to 88.73, `n` 128) and on one
    /// bit pattern in 4099 of all of them.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn tanh_one_scale_gives_the_bits_of_tanh() {
        let special =
            [0.0f32, 0.625, 1.0, 44.0, 44.19, 44.36, 44.5, 45.0, 1e-45, f32::MAX, f32::INFINITY, f32::NAN, 1e30];
        sweep_bit_patterns(&special, &[(44.18, 44.37)], one_scale_agrees);
    }

    /// The same over every `f32` (run with `--release --ignored`).
    #[cfg(target_arch = "x86_64")]
    #[test]
    #[ignore]
    fn tanh_one_scale_gives_the_bits_of_tanh_everywhere() {
        for block in 0..(1u64 << 32) / 8 {
            let first = (block * 8) as u32;
            assert!(one_scale_agrees(first, 1), "from {first:#x}");
        }
    }
}
