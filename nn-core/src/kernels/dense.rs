//! The dense (fully connected) kernels, PyTorch layout: `weight[out, in]`, `bias[out]`.
//!
//! Forward: `z[b, o] = sum_i x[b, i] * weight[o, i] + bias[o]`, then `y = f(z)`.
//! Backward: `dW += dz^T x`, `db += sum_b dz`, `dx = dz W`.
use super::gemm::{gemm, gemv_batch, MatRef};
use crate::activation::Activation;

/// `y = f(x W^T + b)` for a batch of `x.len() / inputs` rows; when `pre` is given, the
/// pre-activations `z` are also stored there.
///
/// Every row is rounded as a GEMV of its own ([`gemv_batch`]), so a sample's outputs
/// do not depend on the batch it is in, and training and inference compute the same
/// outputs. With the `threading` feature, on an x86-64 CPU with AVX2, a batch of at
/// least 8 samples and `PARALLEL_MIN_FLOPS` multiply-adds is split between threads in
/// blocks of samples, each thread computing, storing and activating its own rows (the
/// same bits).
#[allow(clippy::too_many_arguments)]
pub fn forward(
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    activation: Activation,
    inputs: usize,
    outputs: usize,
    y: &mut [f32],
    pre: Option<&mut [f32]>,
) {
    let w = MatRef::new(weight, outputs, inputs);
    #[cfg(all(feature = "threading", target_arch = "x86_64"))]
    let batch = x.len() / inputs;
    #[cfg(all(feature = "threading", target_arch = "x86_64"))]
    if batch >= 2 * THREAD_SAMPLES
        && batch.saturating_mul(outputs).saturating_mul(inputs) >= super::gemm::PARALLEL_MIN_FLOPS
        && super::gemm::threads() > 1
        && super::isa::isa().avx2()
    {
        return forward_threaded(&x[..batch * inputs], w, bias, activation, y, pre);
    }
    forward_rows(x, w, bias, activation, y, pre, false);
}

/// The samples of a block of [`forward_threaded`] are a multiple of this (the vectors of
/// the batch GEMV's tile).
#[cfg(all(feature = "threading", target_arch = "x86_64"))]
const THREAD_SAMPLES: usize = 4;

/// One thread's block of [`forward_threaded`]: samples, their outputs and
/// pre-activations.
#[cfg(all(feature = "threading", target_arch = "x86_64"))]
type Block<'a> = (&'a [f32], &'a mut [f32], Option<&'a mut [f32]>);

/// [`forward`] on [`threads`](super::gemm::threads) threads: the samples are split into
/// equal blocks (multiples of [`THREAD_SAMPLES`]), each thread running [`forward_rows`]
/// on one thread for its block, so that its bias, pre-activations and activation
/// passes are its own rows, still in its cache. Each sample is the one-thread GEMV's.
#[cfg(all(feature = "threading", target_arch = "x86_64"))]
fn forward_threaded(
    x: &[f32],
    w: MatRef<'_>,
    bias: Option<&[f32]>,
    activation: Activation,
    y: &mut [f32],
    pre: Option<&mut [f32]>,
) {
    let (inputs, outputs) = (w.cols, w.rows);
    let batch = x.len() / inputs;
    let parts = super::gemm::threads();
    let step = batch.div_ceil(parts).next_multiple_of(THREAD_SAMPLES);
    let len = batch.checked_mul(outputs).expect("dense::forward: batch * outputs overflows usize");
    let (mut x, mut y, mut pre) = (x, &mut y[..len], pre.map(|pre| &mut pre[..len]));
    // At most four threads (`threads`); the blocks past the batch are empty.
    let mut blocks: [Block<'_>; 4] = core::array::from_fn(|_| {
        let samples = step.min(x.len() / inputs);
        let (xb, x_rest) = x.split_at(samples * inputs);
        let (yb, y_rest) = core::mem::take(&mut y).split_at_mut(samples * outputs);
        let (pb, pre_rest) = match pre.take() {
            Some(p) => {
                let (pb, rest) = p.split_at_mut(samples * outputs);
                (Some(pb), Some(rest))
            }
            None => (None, None),
        };
        (x, y, pre) = (x_rest, y_rest, pre_rest);
        (xb, yb, pb)
    });
    let parts = parts.min(blocks.len());
    super::parallel::for_each_item(&mut blocks[..parts], &|(x, y, pre)| {
        forward_rows(x, w, bias, activation, y, pre.as_deref_mut(), true);
    });
}

/// [`forward`] for the samples of `x`, on this thread when `one_thread` (else as
/// [`gemv_batch`] chooses). The pre-activations, when kept, are copied in the same
/// pass as ReLU reads them.
fn forward_rows(
    x: &[f32],
    w: MatRef<'_>,
    bias: Option<&[f32]>,
    activation: Activation,
    y: &mut [f32],
    pre: Option<&mut [f32]>,
    one_thread: bool,
) {
    let outputs = w.rows;
    let batch = x.len() / w.cols;
    let y = &mut y[..batch * outputs];
    // The product accumulates onto the bias: one pass over `y` fewer.
    let beta = match bias {
        Some(b) => {
            for row in y.chunks_exact_mut(outputs) {
                row.copy_from_slice(&b[..outputs]);
            }
            1.0
        }
        None => 0.0,
    };
    // Every sample exactly as it would be alone: batch-1 inference, batch inference and
    // the training forward agree bit for bit.
    #[cfg(all(feature = "threading", target_arch = "x86_64"))]
    if one_thread {
        if beta == 0.0 {
            y.fill(0.0);
        }
        super::parallel::gemv_batch_one_thread(1.0, w, x, y, batch);
    } else {
        gemv_batch(1.0, w, x, beta, y, batch);
    }
    #[cfg(not(all(feature = "threading", target_arch = "x86_64")))]
    {
        let _ = one_thread;
        gemv_batch(1.0, w, x, beta, y, batch);
    }
    match pre {
        Some(pre) if activation == Activation::Relu => {
            for (p, v) in pre[..y.len()].iter_mut().zip(y.iter_mut()) {
                *p = *v;
                *v = relu(*v);
            }
        }
        Some(pre) => {
            pre[..y.len()].copy_from_slice(y);
            activate(activation, y, outputs);
        }
        None => activate(activation, y, outputs),
    }
}

/// ReLU as [`activate`] computes it: zero for negative zero and NaN.
#[inline(always)]
fn relu(v: f32) -> f32 {
    if v > 0.0 {
        v
    } else {
        0.0
    }
}

/// [`forward`] for one sample of `I` inputs (a layer's compile-time width) and no
/// pre-activations: with AVX2, `I` a multiple of 8 and no activation or ReLU, one
/// pass whose rows are summed at constant offsets and onto which the bias and ReLU
/// are fused (`avx2::gemv_fixed`; for `I = 8` with AVX-512, `avx512::gemv8`, two rows
/// per register and half the shuffles); the same bits as [`forward`].
///
/// Dense 8 -> 8 (RTNeural's smallest layer) is one call of `avx512::dense8x8` with
/// AVX-512 (`avx2::dense8x8` with AVX2 alone) with every size in the types; its other
/// cases are out of line, so that a caller keeps this one small enough to inline.
#[inline]
pub fn forward_one<const I: usize>(
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    activation: Activation,
    outputs: usize,
    y: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if I == 8 && outputs == 8 && matches!(activation, Activation::Identity | Activation::Relu) {
        // Dense 8 -> 8: sizes in the types, one kernel call with four pointers.
        let bias8 = match bias {
            Some(b) => b.first_chunk::<8>().map(Some),
            None => Some(None),
        };
        if let (Ok(x8), Some(w64), Some(y8), Some(b8)) =
            (<&[f32; 8]>::try_from(x), weight.first_chunk::<64>(), y.first_chunk_mut::<8>(), bias8)
        {
            let isa = super::isa::isa();
            if isa.avx2() {
                let relu = activation == Activation::Relu;
                // SAFETY: the CPU has AVX2 and FMA, and AVX-512 F where `avx512` says so.
                return unsafe {
                    match (isa.avx512(), relu) {
                        (true, true) => super::avx512::dense8x8::<true>(w64, x8, b8, y8),
                        (true, false) => super::avx512::dense8x8::<false>(w64, x8, b8, y8),
                        (false, true) => super::avx2::dense8x8::<true>(w64, x8, b8.unwrap_or(&[0.0; 8]), y8),
                        (false, false) => super::avx2::dense8x8::<false>(w64, x8, b8.unwrap_or(&[0.0; 8]), y8),
                    }
                };
            }
        }
        return forward_one_outlined::<I>(x, weight, bias, activation, outputs, y);
    }
    forward_one_rows::<I>(x, weight, bias, activation, outputs, y);
}

/// [`forward_one`] of a layer of `O` outputs, returned by value: batch-1 inference of a
/// network whose last layer is this one returns the array as its output. Dense 8 -> 8
/// (no activation or ReLU) is one out-of-line kernel call that writes the outputs
/// straight into the returned array (`avx512::dense8x8_value`, `avx2::dense8x8_value`),
/// neither zeroed first nor copied after; every other case is [`forward_one`] into a
/// zeroed array. The same bits as [`forward`].
#[inline]
pub fn forward_one_value<const I: usize, const O: usize>(
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    activation: Activation,
) -> [f32; O] {
    #[cfg(target_arch = "x86_64")]
    if I == 8 && O == 8 && matches!(activation, Activation::Identity | Activation::Relu) {
        let bias8 = match bias {
            Some(b) => b.first_chunk::<8>(),
            None => Some(&[0.0; 8]),
        };
        let isa = super::isa::isa();
        if let (true, Ok(x8), Some(w64), Some(b8)) =
            (isa.avx2(), <&[f32; 8]>::try_from(x), weight.first_chunk::<64>(), bias8)
        {
            let relu = activation == Activation::Relu;
            // SAFETY: the CPU has AVX2 and FMA, and AVX-512 F where `avx512` says so.
            let y = unsafe {
                match (isa.avx512(), relu) {
                    (true, true) => super::avx512::dense8x8_value::<true>(w64, x8, b8),
                    (true, false) => super::avx512::dense8x8_value::<false>(w64, x8, b8),
                    (false, true) => super::avx2::dense8x8_value::<true>(w64, x8, b8),
                    (false, false) => super::avx2::dense8x8_value::<false>(w64, x8, b8),
                }
            };
            // `O` is 8: the same array.
            if let Ok(y) = <[f32; O]>::try_from(&y[..]) {
                return y;
            }
        }
    }
    let mut y = [0.0; O];
    forward_one::<I>(x, weight, bias, activation, O, &mut y);
    y
}

/// [`forward_one_rows`] behind a call.
#[cfg(target_arch = "x86_64")]
#[inline(never)]
fn forward_one_outlined<const I: usize>(
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    activation: Activation,
    outputs: usize,
    y: &mut [f32],
) {
    forward_one_rows::<I>(x, weight, bias, activation, outputs, y);
}

/// [`forward_one`] but for its Dense 8 -> 8 kernel.
#[inline]
fn forward_one_rows<const I: usize>(
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    activation: Activation,
    outputs: usize,
    y: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if I == 8
        && x.len() == I
        && matches!(activation, Activation::Identity | Activation::Relu)
        && super::isa::isa().avx512()
    {
        // SAFETY: the CPU has AVX-512 F, AVX2 and FMA; the kernel asserts its bounds.
        return unsafe {
            super::avx512::gemv8(weight, outputs, x, bias, activation == Activation::Relu, &mut y[..outputs])
        };
    }
    #[cfg(target_arch = "x86_64")]
    if I.is_multiple_of(8)
        && x.len() == I
        && matches!(activation, Activation::Identity | Activation::Relu)
        && super::isa::isa().avx2()
    {
        // SAFETY: the CPU has AVX2 and FMA; the kernel asserts its bounds.
        return unsafe {
            super::avx2::gemv_fixed::<I>(
                weight,
                outputs,
                x,
                bias,
                activation == Activation::Relu,
                false,
                &mut y[..outputs],
            )
        };
    }
    forward(x, weight, bias, activation, I, outputs, y, None);
}

/// `y = f(y)` for rows of `width`, with the common cases as plain loops the compiler
/// vectorises.
#[inline]
fn activate(activation: Activation, y: &mut [f32], width: usize) {
    match activation {
        Activation::Identity => {}
        Activation::Relu => y.iter_mut().for_each(|v| *v = relu(*v)),
        _ => activation.apply(y, width),
    }
}

/// Backward of [`forward`]. `dy` is turned into `dz` in place; gradients are added
/// into `d_weight` and `d_bias`; `dx`, when given, is overwritten.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    x: &[f32],
    weight: &[f32],
    pre: &[f32],
    y: &[f32],
    activation: Activation,
    inputs: usize,
    outputs: usize,
    dy: &mut [f32],
    d_weight: &mut [f32],
    d_bias: Option<&mut [f32]>,
    dx: Option<&mut [f32]>,
) {
    let batch = x.len() / inputs;
    let d_bias = match (activation, d_bias) {
        (Activation::Relu, Some(db)) => {
            // ReLU's derivative and the bias gradient in one pass over `dz`.
            relu_backward_bias(&pre[..batch * outputs], &mut dy[..batch * outputs], &mut db[..outputs]);
            None
        }
        (_, d_bias) => {
            activation_backward(activation, pre, y, dy, outputs);
            d_bias
        }
    };
    let dz = &dy[..batch * outputs];
    param_gradients(x, inputs, outputs, dz, 0..outputs, d_weight, d_bias);
    if let Some(dx) = dx {
        input_gradient(weight, inputs, outputs, dz, dx);
    }
}

/// The parameter gradients of [`backward`] for the outputs `rows` only, from `dz`
/// (rows of `outputs`) and `x` (rows of `inputs`): `d_weight` holds those rows of the
/// weight gradient (`rows.len() * inputs` floats), `d_bias` those outputs' bias
/// gradients; `dW[rows] += dz[:, rows]^T x` and `db[rows] += sum_b dz[b, rows]`, each
/// output's sums in the order of the whole product, so that outputs shared between
/// threads get the bits of one thread.
pub(crate) fn param_gradients(
    x: &[f32],
    inputs: usize,
    outputs: usize,
    dz: &[f32],
    rows: core::ops::Range<usize>,
    d_weight: &mut [f32],
    d_bias: Option<&mut [f32]>,
) {
    let batch = dz.len() / outputs;
    if rows.is_empty() {
        return;
    }
    // dW[rows x in] += dz^T[rows x batch] x[batch x in]
    let dz_t = MatRef { data: &dz[rows.start..], rows: rows.len(), cols: batch, rs: 1, cs: outputs };
    gemm(1.0, dz_t, MatRef::new(x, batch, inputs), 1.0, d_weight, inputs);
    if let Some(db) = d_bias {
        for row in dz.chunks_exact(outputs) {
            db.iter_mut().zip(&row[rows.clone()]).for_each(|(g, d)| *g += d);
        }
    }
}

/// Backward of [`forward`] for the input only (frozen parameters): `dy` is turned
/// into `dz` in place and `dx` is overwritten; no parameter gradient is computed.
#[allow(clippy::too_many_arguments)]
pub fn backward_input(
    weight: &[f32],
    pre: &[f32],
    y: &[f32],
    activation: Activation,
    inputs: usize,
    outputs: usize,
    dy: &mut [f32],
    dx: &mut [f32],
) {
    let batch = dx.len() / inputs;
    activation_backward(activation, pre, y, dy, outputs);
    input_gradient(weight, inputs, outputs, &dy[..batch * outputs], dx);
}

/// `dy *= f'(z)` in place, for rows of `outputs`.
#[inline]
pub(crate) fn activation_backward(activation: Activation, pre: &[f32], y: &[f32], dy: &mut [f32], outputs: usize) {
    match activation {
        // f'(z) = 1 for z > 0, else 0, as a select the compiler vectorises.
        Activation::Relu => {
            for (d, &z) in dy.iter_mut().zip(pre) {
                *d *= if z > 0.0 { 1.0 } else { 0.0 };
            }
        }
        _ => activation.backward(pre, y, dy, outputs),
    }
}

/// [`activation_backward`] for ReLU and the bias gradient of [`param_gradients`] in one
/// pass: `dy *= f'(z)` for rows of `db.len()`, then `db += sum_b dy[b]`, each output's
/// sum in the order of the rows (the bits of the two passes).
#[inline]
fn relu_backward_bias(pre: &[f32], dy: &mut [f32], db: &mut [f32]) {
    if db.is_empty() {
        return;
    }
    for (row, z_row) in dy.chunks_exact_mut(db.len()).zip(pre.chunks_exact(db.len())) {
        for ((d, &z), g) in row.iter_mut().zip(z_row).zip(db.iter_mut()) {
            *d *= if z > 0.0 { 1.0 } else { 0.0 };
            *g += *d;
        }
    }
}

/// `dx[batch x in] = dz[batch x out] W[out x in]`.
#[inline]
pub(crate) fn input_gradient(weight: &[f32], inputs: usize, outputs: usize, dz: &[f32], dx: &mut [f32]) {
    let batch = dz.len() / outputs;
    gemm(1.0, MatRef::new(dz, batch, outputs), MatRef::new(weight, outputs, inputs), 0.0, dx, inputs);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// One sample through [`forward_one`] (the fused fixed-width kernel where the CPU
    /// has one) gives the bits of [`forward`] for any row count, with and without bias,
    /// for ReLU (negative zero and NaN included) and no activation.
    fn check<const I: usize>(rng: &mut Rng) {
        for outputs in [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15, 20, 64] {
            let weight: std::vec::Vec<f32> = (0..outputs * I).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
            let bias: std::vec::Vec<f32> = (0..outputs).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
            let mut x: std::vec::Vec<f32> = (0..I).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
            if outputs == 13 {
                x[0] = f32::NAN;
            }
            for activation in [Activation::Relu, Activation::Identity] {
                for bias in [Some(&bias[..]), None] {
                    // Three floats past the outputs, which stay as they were.
                    let (mut one, mut reference) = (std::vec![7.0; outputs + 3], std::vec![7.0; outputs + 3]);
                    forward_one::<I>(&x, &weight, bias, activation, outputs, &mut one);
                    forward(&x, &weight, bias, activation, I, outputs, &mut reference[..outputs], None);
                    let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<std::vec::Vec<_>>();
                    assert_eq!(bits(&one), bits(&reference), "{I} inputs, {outputs} outputs, {activation:?}");
                }
            }
        }
    }

    #[test]
    fn one_sample_equals_the_batch_path_bit_for_bit() {
        let mut rng = Rng::new(3);
        check::<8>(&mut rng);
        check::<24>(&mut rng);
        check::<64>(&mut rng);
        check::<128>(&mut rng);
        check::<5>(&mut rng);
    }

    /// One sample returned by value ([`forward_one_value`]: Dense 8 -> 8's kernels
    /// writing the returned array, the zeroed array and [`forward_one`] otherwise) gives
    /// the bits of [`forward`], with and without bias, for ReLU, no activation and a
    /// sigmoid, inputs and biases with zeros of both signs and NaN (a NaN output must be
    /// NaN in both, its sign and payload not compared).
    fn check_value<const I: usize, const O: usize>(rng: &mut Rng) {
        let bits = |v: &[f32]| {
            v.iter().map(|v| if v.is_nan() { f32::NAN.to_bits() } else { v.to_bits() }).collect::<std::vec::Vec<_>>()
        };
        for round in 0..4 {
            let weight: std::vec::Vec<f32> = (0..O * I).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
            let mut bias: std::vec::Vec<f32> = (0..O).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
            let mut x: std::vec::Vec<f32> = (0..I).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
            if round == 1 {
                x[0] = f32::NAN;
                bias[O - 1] = -0.0;
            }
            if round == 2 {
                x.fill(-0.0);
                bias[0] = -0.0;
            }
            for activation in [Activation::Relu, Activation::Identity, Activation::Sigmoid] {
                for bias in [Some(&bias[..]), None] {
                    let value = forward_one_value::<I, O>(&x, &weight, bias, activation);
                    let mut reference = std::vec![7.0; O];
                    forward(&x, &weight, bias, activation, I, O, &mut reference, None);
                    assert_eq!(bits(&value), bits(&reference), "{I} -> {O}, {activation:?}, round {round}");
                }
            }
        }
    }

    #[test]
    fn one_sample_by_value_equals_the_batch_path_bit_for_bit() {
        let mut rng = Rng::new(5);
        check_value::<8, 8>(&mut rng);
        check_value::<8, 3>(&mut rng);
        check_value::<5, 8>(&mut rng);
        check_value::<16, 8>(&mut rng);
        check_value::<64, 10>(&mut rng);
    }

    /// A batch large enough to be split between threads by samples (with `threading`
    /// and more than one thread) gives every sample the bits of the sample alone, and
    /// the pre-activations of the unactivated product, for ReLU (negative zero and NaN
    /// included), a sigmoid and no activation, with and without bias, for batches
    /// whose last block is short or a single sample.
    #[test]
    fn split_batch_equals_samples_alone_bit_for_bit() {
        let mut rng = Rng::new(11);
        let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<std::vec::Vec<_>>();
        for (batch, inputs, outputs) in [(37, 300, 400), (9, 700, 700), (128, 784, 64), (16, 130, 2100)] {
            assert!(batch * inputs * outputs >= crate::kernels::gemm::PARALLEL_MIN_FLOPS);
            let weight: std::vec::Vec<f32> = (0..outputs * inputs).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
            let bias: std::vec::Vec<f32> = (0..outputs).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
            let mut x: std::vec::Vec<f32> = (0..batch * inputs).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
            x[5 * inputs + 3] = f32::NAN;
            for (activation, bias) in [
                (Activation::Relu, Some(&bias[..])),
                (Activation::Sigmoid, Some(&bias[..])),
                (Activation::Identity, None),
            ] {
                let (mut y, mut pre) = (std::vec![7.0; batch * outputs], std::vec![7.0; batch * outputs]);
                forward(&x, &weight, bias, activation, inputs, outputs, &mut y, Some(&mut pre));
                let mut y_only = std::vec![7.0; batch * outputs];
                forward(&x, &weight, bias, activation, inputs, outputs, &mut y_only, None);
                assert_eq!(bits(&y), bits(&y_only), "{batch}x{inputs}x{outputs}, {activation:?}: with pre-activations");
                for s in 0..batch {
                    let (mut alone, mut z) = (std::vec![7.0; outputs], std::vec![7.0; outputs]);
                    let xs = &x[s * inputs..(s + 1) * inputs];
                    forward(xs, &weight, bias, activation, inputs, outputs, &mut alone, None);
                    forward(xs, &weight, bias, Activation::Identity, inputs, outputs, &mut z, None);
                    let at = s * outputs..(s + 1) * outputs;
                    assert_eq!(
                        bits(&y[at.clone()]),
                        bits(&alone),
                        "{batch}x{inputs}x{outputs}, {activation:?}, sample {s}"
                    );
                    assert_eq!(bits(&pre[at]), bits(&z), "{batch}x{inputs}x{outputs}, {activation:?}, sample {s}: z");
                }
                assert!(y.iter().all(|v| *v != 7.0), "an output was not written");
            }
        }
    }

    /// ReLU's backward with a bias (its derivative and the bias gradient in one pass)
    /// gives the bits of the derivative's pass followed by the parameter gradients,
    /// for pre-activations of negative zero, zero and NaN, and gradients that add up.
    #[test]
    fn fused_relu_bias_backward_equals_two_passes() {
        let mut rng = Rng::new(13);
        let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<std::vec::Vec<_>>();
        for (batch, inputs, outputs) in [(1, 3, 5), (7, 9, 33), (128, 20, 64)] {
            let x: std::vec::Vec<f32> = (0..batch * inputs).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
            let weight: std::vec::Vec<f32> = (0..outputs * inputs).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
            let mut pre: std::vec::Vec<f32> = (0..batch * outputs).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
            pre[0] = -0.0;
            pre[batch * outputs - 1] = f32::NAN;
            if batch * outputs > 2 {
                pre[1] = 0.0;
            }
            let y: std::vec::Vec<f32> = pre.iter().map(|&z| relu(z)).collect();
            let dy: std::vec::Vec<f32> = (0..batch * outputs).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
            let gw0: std::vec::Vec<f32> = (0..outputs * inputs).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
            let gb0: std::vec::Vec<f32> = (0..outputs).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
            let (mut dz, mut gw, mut gb, mut dx) =
                (dy.clone(), gw0.clone(), gb0.clone(), std::vec![7.0; batch * inputs]);
            backward(
                &x,
                &weight,
                &pre,
                &y,
                Activation::Relu,
                inputs,
                outputs,
                &mut dz,
                &mut gw,
                Some(&mut gb),
                Some(&mut dx),
            );
            let (mut dz2, mut gw2, mut gb2, mut dx2) = (dy.clone(), gw0, gb0.clone(), std::vec![7.0; batch * inputs]);
            activation_backward(Activation::Relu, &pre, &y, &mut dz2, outputs);
            param_gradients(&x, inputs, outputs, &dz2, 0..outputs, &mut gw2, Some(&mut gb2));
            input_gradient(&weight, inputs, outputs, &dz2, &mut dx2);
            let at = format!("{batch}x{inputs}x{outputs}");
            assert_eq!(bits(&dz), bits(&dz2), "{at}: dz");
            assert_eq!(bits(&gb), bits(&gb2), "{at}: bias gradient");
            assert_eq!(bits(&gw), bits(&gw2), "{at}: weight gradient");
            assert_eq!(bits(&dx), bits(&dx2), "{at}: input gradient");
            assert!(bits(&gb) != bits(&gb0), "{at}: the bias gradient did not change");
        }
    }

    /// Negative zero after ReLU is zero on both paths, as NaN is.
    #[test]
    fn relu_of_negative_zero_and_nan_is_zero() {
        let weight = [0.0f32; 8 * 8];
        let bias = [-0.0f32, f32::NAN, -1.0, 1.0, 0.0, -0.0, 2.0, -2.0];
        let mut y = [9.0f32; 8];
        forward_one::<8>(&[1.0; 8], &weight, Some(&bias), Activation::Relu, 8, &mut y);
        let expected = [0.0f32, 0.0, 0.0, 1.0, 0.0, 0.0, 2.0, 0.0];
        assert_eq!(y.map(f32::to_bits), expected.map(f32::to_bits));
    }
}
