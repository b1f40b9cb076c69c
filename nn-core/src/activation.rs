//! Activation functions: each is a function and its derivative.
//!
//! Elementwise activations compute `y = f(z)`; their backward pass multiplies the
//! upstream gradient by `f'(z)`, computed from the pre-activation `z` and, where that is
//! cheaper, the output `y`. [`Activation::Softmax`] acts on a whole row (the last
//! dimension) and its backward is the Jacobian-vector product
//! `dz = y * (dy - sum(dy * y))`.
//!
//! Sigmoid and tanh are those of the kernels' maths module (`kernels/maths.rs`), the
//! same functions as the recurrent cells' gates, with the same bits on every
//! instruction set.

use crate::kernels::maths;

/// An activation function.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    /// `f(z) = z`.
    Identity,
    /// `f(z) = max(0, z)`.
    Relu,
    /// `f(z) = min(max(0, z), 6)`, PyTorch's `ReLU6` (MobileNet's activation, and the
    /// range int8 networks fuse); its derivative is 1 on `(0, 6)` and 0 elsewhere,
    /// 0 at `z = 0` and at `z = 6` as PyTorch's.
    Relu6,
    /// `f(z) = z` for `z > 0`, else `alpha * z` (Keras and PyTorch default alpha: 0.01).
    LeakyRelu(f32),
    /// `f(z) = 1 / (1 + exp(-z))`.
    Sigmoid,
    /// `f(z) = tanh(z)`.
    Tanh,
    /// `f(z) = z * Phi(z)`, the exact (erf) form, as PyTorch's default `GELU`.
    Gelu,
    /// `f(z) = z` for `z > 0`, else `alpha * (exp(z) - 1)`.
    Elu(f32),
    /// `f(z)_i = exp(z_i) / sum_j exp(z_j)` over each row.
    Softmax,
    /// `f(z) = |z|`, element by element (the distance head `|a - b|` of a siamese
    /// network); its derivative is the sign of `z`, 0 at 0.
    Abs,
}

impl Activation {
    /// The default slope of [`Activation::LeakyRelu`].
    pub const LEAKY_RELU_ALPHA: f32 = 0.01;

    /// Whether the He initialisation suits this activation (ReLU family) rather than
    /// Glorot (sigmoid, tanh, softmax, identity).
    pub const fn prefers_he_init(self) -> bool {
        matches!(
            self,
            Activation::Relu | Activation::Relu6 | Activation::LeakyRelu(_) | Activation::Elu(_) | Activation::Gelu
        )
    }

    /// The name used in summaries.
    pub const fn name(self) -> &'static str {
        match self {
            Activation::Identity => "identity",
            Activation::Relu => "relu",
            Activation::Relu6 => "relu6",
            Activation::LeakyRelu(_) => "leaky_relu",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Gelu => "gelu",
            Activation::Elu(_) => "elu",
            Activation::Softmax => "softmax",
            Activation::Abs => "abs",
        }
    }

    /// Applies the activation in place to `rows` of `width` values each.
    pub fn apply(self, values: &mut [f32], width: usize) {
        match self {
            Activation::Identity => {}
            Activation::Softmax => {
                for row in values.chunks_exact_mut(width) {
                    softmax_in_place(row);
                }
            }
            Activation::Sigmoid => maths::sigmoid_in_place(values),
            Activation::Tanh => maths::tanh_in_place(values),
            _ => {
                for v in values.iter_mut() {
                    *v = self.scalar(*v);
                }
            }
        }
    }

    /// `f(z)` for an elementwise activation (softmax is not elementwise: identity here).
    #[inline(always)]
    pub fn scalar(self, z: f32) -> f32 {
        match self {
            Activation::Identity | Activation::Softmax => z,
            Activation::Relu => {
                if z > 0.0 {
                    z
                } else {
                    0.0
                }
            }
            Activation::Relu6 => {
                if z > 6.0 {
                    6.0
                } else if z > 0.0 {
                    z
                } else {
                    0.0
                }
            }
            Activation::LeakyRelu(alpha) => {
                if z > 0.0 {
                    z
                } else {
                    alpha * z
                }
            }
            Activation::Sigmoid => sigmoid(z),
            Activation::Tanh => maths::tanh(z),
            Activation::Gelu => 0.5 * z * (1.0 + libm::erff(z * core::f32::consts::FRAC_1_SQRT_2)),
            Activation::Elu(alpha) => {
                if z > 0.0 {
                    z
                } else {
                    alpha * libm::expm1f(z)
                }
            }
            Activation::Abs => libm::fabsf(z),
        }
    }

    /// `f'(z)` given the pre-activation `z` and the output `y = f(z)`
    /// (elementwise activations only).
    #[inline(always)]
    pub fn derivative(self, z: f32, y: f32) -> f32 {
        match self {
            Activation::Identity | Activation::Softmax => 1.0,
            Activation::Relu => {
                if z > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Activation::Relu6 => {
                if z > 0.0 && z < 6.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Activation::LeakyRelu(alpha) => {
                if z > 0.0 {
                    1.0
                } else {
                    alpha
                }
            }
            Activation::Sigmoid => y * (1.0 - y),
            Activation::Tanh => 1.0 - y * y,
            Activation::Gelu => {
                let cdf = 0.5 * (1.0 + libm::erff(z * core::f32::consts::FRAC_1_SQRT_2));
                let pdf = maths::exp(-0.5 * z * z) * 0.398_942_3; // 1/sqrt(2 pi)
                cdf + z * pdf
            }
            Activation::Elu(alpha) => {
                if z > 0.0 {
                    1.0
                } else {
                    y + alpha
                }
            }
            Activation::Abs => {
                if z > 0.0 {
                    1.0
                } else if z < 0.0 {
                    -1.0
                } else {
                    0.0
                }
            }
        }
    }

    /// Turns the gradient with respect to the outputs `dy` into the gradient with
    /// respect to the pre-activations, in place, for `rows` of `width` values.
    /// `z` are the pre-activations and `y` the outputs.
    pub fn backward(self, z: &[f32], y: &[f32], dy: &mut [f32], width: usize) {
        match self {
            Activation::Identity => {}
            Activation::Relu => relu_backward(z, dy),
            Activation::Softmax => {
                for (dy, y) in dy.chunks_exact_mut(width).zip(y.chunks_exact(width)) {
                    let dot: f32 = dy.iter().zip(y).map(|(a, b)| a * b).sum();
                    for (d, &y) in dy.iter_mut().zip(y) {
                        *d = y * (*d - dot);
                    }
                }
            }
            _ => {
                for ((d, &z), &y) in dy.iter_mut().zip(z).zip(y) {
                    *d *= self.derivative(z, y);
                }
            }
        }
    }
}

/// `dy *= relu'(z)`, a loop of its own so that it compiles to vector selects (eight
/// lanes with AVX2, chosen at run time).
fn relu_backward(z: &[f32], dy: &mut [f32]) {
    #[inline(always)]
    fn portable(z: &[f32], dy: &mut [f32]) {
        for (d, &z) in dy.iter_mut().zip(z) {
            *d *= if z > 0.0 { 1.0 } else { 0.0 };
        }
    }
    /// [`portable`] compiled for eight lanes.
    ///
    /// # Safety
    /// The CPU has AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn avx2(z: &[f32], dy: &mut [f32]) {
        portable(z, dy)
    }
    #[cfg(target_arch = "x86_64")]
    if crate::kernels::avx2::available() {
        // SAFETY: the CPU has AVX2.
        return unsafe { avx2(z, dy) };
    }
    portable(z, dy)
}

/// `dx = dy * relu'(z)`: [`Activation::backward`] of ReLU written into another slice
/// (one pass instead of a pass and a copy).
pub(crate) fn relu_backward_into(z: &[f32], dy: &[f32], dx: &mut [f32]) {
    #[inline(always)]
    fn portable(z: &[f32], dy: &[f32], dx: &mut [f32]) {
        for ((d, &g), &z) in dx.iter_mut().zip(dy).zip(z) {
            *d = g * if z > 0.0 { 1.0 } else { 0.0 };
        }
    }
    /// [`portable`] compiled for eight lanes.
    ///
    /// # Safety
    /// The CPU has AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn avx2(z: &[f32], dy: &[f32], dx: &mut [f32]) {
        portable(z, dy, dx)
    }
    #[cfg(target_arch = "x86_64")]
    if crate::kernels::avx2::available() {
        // SAFETY: the CPU has AVX2.
        return unsafe { avx2(z, dy, dx) };
    }
    portable(z, dy, dx)
}

/// `y = relu(x)`: [`Activation::apply`] of ReLU written into another slice (one pass
/// instead of a copy and a pass).
pub(crate) fn relu_into(x: &[f32], y: &mut [f32]) {
    #[inline(always)]
    fn portable(x: &[f32], y: &mut [f32]) {
        for (y, &x) in y.iter_mut().zip(x) {
            *y = Activation::Relu.scalar(x);
        }
    }
    /// [`portable`] compiled for eight lanes.
    ///
    /// # Safety
    /// The CPU has AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn avx2(x: &[f32], y: &mut [f32]) {
        portable(x, y)
    }
    /// [`portable`] compiled for sixteen lanes.
    ///
    /// # Safety
    /// The CPU has AVX-512 F.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn avx512(x: &[f32], y: &mut [f32]) {
        portable(x, y)
    }
    #[cfg(target_arch = "x86_64")]
    if crate::kernels::isa::isa().avx512() {
        // SAFETY: the CPU has AVX-512 F.
        return unsafe { avx512(x, y) };
    }
    #[cfg(target_arch = "x86_64")]
    if crate::kernels::avx2::available() {
        // SAFETY: the CPU has AVX2.
        return unsafe { avx2(x, y) };
    }
    portable(x, y)
}

/// The logistic function `1 / (1 + e^-z)`: the one of the kernels' maths module
/// (also the recurrent cells' gates), within 2.5 ulp of the exact value for every
/// `z`, 0 and 1 in the limits, never NaN for a finite `z`.
#[inline(always)]
pub fn sigmoid(z: f32) -> f32 {
    maths::sigmoid(z)
}

/// Softmax of one row in place, shifted by the maximum for stability: `e^(z_i - m)`
/// (`kernels::maths::exp`), summed in order, times the sum's reciprocal.
pub fn softmax_in_place(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    maths::exp_shifted_in_place(row, max);
    let sum = row.iter().fold(0.0, |s, &e| s + e);
    let inv = 1.0 / sum;
    for v in row.iter_mut() {
        *v *= inv;
    }
}

/// `log(sum(exp(row)))`, shifted by the maximum for stability.
pub fn log_sum_exp(row: &[f32]) -> f32 {
    let (max, sum) = shifted_exp_sum(row);
    max + libm::logf(sum)
}

/// The maximum `m` of a row and `s = sum_j exp(z_j - m)`. The row's softmax is
/// `exp(z_i - m) / s` and its log-softmax `(z_i - m) - ln(s)`: accurate for logits of
/// any size, where `z_i - log_sum_exp(z)` loses the low digits of `z` (at `|z| = 1000`
/// it is off by about `6e-5`).
pub fn shifted_exp_sum(row: &[f32]) -> (f32, f32) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    // The exponentials a chunk at a time, in a buffer on the stack.
    let mut buffer = [0.0; 32];
    let sum = row.chunks(buffer.len()).fold(0.0, |sum, chunk| {
        let e = &mut buffer[..chunk.len()];
        e.copy_from_slice(chunk);
        maths::exp_shifted_in_place(e, max);
        e.iter().fold(sum, |s, &e| s + e)
    });
    (max, sum)
}

/// [`shifted_exp_sum`] that also writes the exponentials `exp(z_j - m)` into `out`
/// (`row.len()` values; the same `m` and `s`).
pub fn shifted_exp(row: &[f32], out: &mut [f32]) -> (f32, f32) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let out = &mut out[..row.len()];
    out.copy_from_slice(row);
    maths::exp_shifted_in_place(out, max);
    (max, out.iter().fold(0.0, |s, &e| s + e))
}
