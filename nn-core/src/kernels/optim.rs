//! Optimizer update kernels: one pass over the parameters, their gradients and the
//! optimizer's state.

/// The constants of one Adam step (`torch.optim.Adam`, no weight decay, no AMSGrad) at
/// step `t`: `step_size = lr / (1 - beta1^t)`, `bc2_sqrt = sqrt(1 - beta2^t)`.
#[derive(Clone, Copy, Debug)]
pub struct AdamStep {
    /// Decay of the first moment.
    pub beta1: f32,
    /// Decay of the second moment.
    pub beta2: f32,
    /// `lr / (1 - beta1^t)`.
    pub step_size: f32,
    /// `sqrt(1 - beta2^t)`.
    pub bc2_sqrt: f32,
    /// Added to the denominator.
    pub eps: f32,
}

/// Adam's update, for every parameter `p` with gradient `g` and moments `m`, `v`:
///
/// ```text
/// m = beta1 m + (1 - beta1) g
/// v = beta2 v + (1 - beta2) g g
/// p = p - step_size m / (sqrt(v) / bc2_sqrt + eps)
/// ```
///
/// each operation rounded in this order (no fused multiply-add), so the result is the
/// same bit for bit with or without the AVX2 kernel, which does eight parameters per
/// instruction (the scalar loop cannot be vectorised by the compiler: `libm`'s square
/// root is a scalar instruction). With the `threading` feature, at least
/// `PARALLEL_MIN_PARAMS` parameters are split between threads in blocks, the same bits.
///
/// # Panics
/// If the four slices differ in length.
pub fn adam(step: &AdamStep, params: &mut [f32], grads: &[f32], m: &mut [f32], v: &mut [f32]) {
    let n = params.len();
    assert!(grads.len() == n && m.len() == n && v.len() == n, "adam: slices of different lengths");
    #[cfg(all(feature = "threading", target_arch = "x86_64"))]
    if n >= PARALLEL_MIN_PARAMS && super::gemm::threads() > 1 {
        return adam_threaded(step, params, grads, m, v);
    }
    adam_one_thread(step, params, grads, m, v)
}

/// Parameter counts from which [`adam`] splits the update between
/// [`threads`](super::gemm::threads) threads (the `threading` feature): about 40 µs of
/// work on one thread, more than waking a parked worker costs.
#[cfg(all(feature = "threading", target_arch = "x86_64"))]
pub const PARALLEL_MIN_PARAMS: usize = 1 << 17;

/// The pieces [`adam`] cuts a threaded update into, taken by whichever thread is free
/// next, so that a thread slowed by another process leaves its share to the others.
#[cfg(all(feature = "threading", target_arch = "x86_64"))]
const PIECES: usize = 8;

/// One block of a threaded [`adam`]: parameters, gradients, first and second moments.
#[cfg(all(feature = "threading", target_arch = "x86_64"))]
type AdamPiece<'a> = (&'a mut [f32], &'a [f32], &'a mut [f32], &'a mut [f32]);

/// [`adam`] on [`threads`](super::gemm::threads) threads: the parameters are cut into
/// [`PIECES`] blocks of whole cache lines, each updated by the one-thread kernel. The
/// update of a parameter reads only its own gradient and moments, so the result is the
/// one-thread result bit for bit.
#[cfg(all(feature = "threading", target_arch = "x86_64"))]
fn adam_threaded(step: &AdamStep, params: &mut [f32], grads: &[f32], m: &mut [f32], v: &mut [f32]) {
    let piece = params.len().div_ceil(PIECES).next_multiple_of(16);
    let (mut params, mut grads, mut m, mut v) = (params, grads, m, v);
    let mut pieces: [AdamPiece<'_>; PIECES] = core::array::from_fn(|_| {
        let len = piece.min(params.len());
        let (p, p_rest) = core::mem::take(&mut params).split_at_mut(len);
        let (g, g_rest) = grads.split_at(len);
        let (mi, m_rest) = core::mem::take(&mut m).split_at_mut(len);
        let (vi, v_rest) = core::mem::take(&mut v).split_at_mut(len);
        (params, grads, m, v) = (p_rest, g_rest, m_rest, v_rest);
        (p, g, mi, vi)
    });
    super::parallel::for_each_item(&mut pieces, &|(p, g, mi, vi)| adam_one_thread(step, p, g, mi, vi));
}

/// [`adam`] on this thread.
fn adam_one_thread(step: &AdamStep, params: &mut [f32], grads: &[f32], m: &mut [f32], v: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if super::isa::isa().avx2() {
        // SAFETY: the CPU has AVX2 and FMA; the slices have the same length.
        let done = unsafe { super::avx2::adam(step, params, grads, m, v) };
        return adam_scalar(step, &mut params[done..], &grads[done..], &mut m[done..], &mut v[done..]);
    }
    adam_scalar(step, params, grads, m, v)
}

/// [`adam`] one parameter at a time.
fn adam_scalar(step: &AdamStep, params: &mut [f32], grads: &[f32], m: &mut [f32], v: &mut [f32]) {
    let (one_minus_beta1, one_minus_beta2) = (1.0 - step.beta1, 1.0 - step.beta2);
    for (((p, &g), m), v) in params.iter_mut().zip(grads).zip(m.iter_mut()).zip(v.iter_mut()) {
        *m = step.beta1 * *m + one_minus_beta1 * g;
        *v = step.beta2 * *v + one_minus_beta2 * g * g;
        *p -= step.step_size * *m / (libm::sqrtf(*v) / step.bc2_sqrt + step.eps);
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// Runs [`adam`] and [`adam_scalar`] on the same `n` random parameters, gradients and
    /// moments and asserts equal bits; asserts too that the update moved a parameter
    /// when `moved` is asked for.
    fn assert_kernel_equals_scalar_loop(step: &AdamStep, n: usize, rng: &mut Rng, moved: bool) {
        let grads: std::vec::Vec<f32> = (0..n).map(|_| rng.uniform_in(-2.0, 2.0)).collect();
        let params: std::vec::Vec<f32> = (0..n).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
        let m: std::vec::Vec<f32> = (0..n).map(|_| rng.uniform_in(-0.1, 0.1)).collect();
        let v: std::vec::Vec<f32> = (0..n).map(|_| rng.uniform_in(0.0, 0.01)).collect();
        let (mut p1, mut m1, mut v1) = (params.clone(), m.clone(), v.clone());
        adam(step, &mut p1, &grads, &mut m1, &mut v1);
        let (mut p2, mut m2, mut v2) = (params.clone(), m, v);
        adam_scalar(step, &mut p2, &grads, &mut m2, &mut v2);
        let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<std::vec::Vec<_>>();
        assert_eq!(bits(&p1), bits(&p2), "parameters, n = {n}");
        assert_eq!(bits(&m1), bits(&m2), "first moments, n = {n}");
        assert_eq!(bits(&v1), bits(&v2), "second moments, n = {n}");
        if moved {
            assert!(bits(&p1) != bits(&params), "the update moved no parameter, n = {n}");
        }
    }

    /// The kernel equals the scalar loop bit for bit, for lengths around the vector
    /// width.
    #[test]
    fn adam_kernel_equals_scalar_loop() {
        let mut rng = Rng::new(3);
        let step = AdamStep { beta1: 0.9, beta2: 0.999, step_size: 1e-3 / 0.271, bc2_sqrt: 0.0632, eps: 1e-8 };
        for n in [0, 1, 7, 8, 9, 31, 64, 1001] {
            assert_kernel_equals_scalar_loop(&step, n, &mut rng, false);
        }
    }

    /// An update large enough to be split between threads (with `threading` and more
    /// than one thread) equals the scalar loop on one thread bit for bit, for lengths
    /// whose pieces end inside a vector and whose last pieces are empty.
    #[test]
    fn threaded_adam_equals_one_thread() {
        let mut rng = Rng::new(5);
        let step = AdamStep { beta1: 0.9, beta2: 0.999, step_size: 1e-3 / 0.19, bc2_sqrt: 0.0447, eps: 1e-8 };
        for n in [(1 << 17) + 37, 200_003, (1 << 16) * 8 + 16 * 7 + 1] {
            assert_kernel_equals_scalar_loop(&step, n, &mut rng, true);
        }
    }
}
