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
/// outputs.
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
    let batch = x.len() / inputs;
    let w = MatRef::new(weight, outputs, inputs);
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
    gemv_batch(1.0, w, x, beta, y, batch);
    if let Some(pre) = pre {
        pre[..y.len()].copy_from_slice(y);
    }
    activate(activation, y, outputs);
}

/// `y = f(y)` for rows of `width`, with the common cases as plain loops the compiler
/// vectorises.
#[inline]
fn activate(activation: Activation, y: &mut [f32], width: usize) {
    match activation {
        Activation::Identity => {}
        Activation::Relu => y.iter_mut().for_each(|v| *v = if *v > 0.0 { *v } else { 0.0 }),
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
    activation_backward(activation, pre, y, dy, outputs);
    let dz = &dy[..batch * outputs];
    // dW[out x in] += dz^T[out x batch] x[batch x in]
    gemm(1.0, MatRef::new(dz, batch, outputs).t(), MatRef::new(x, batch, inputs), 1.0, d_weight, inputs);
    if let Some(db) = d_bias {
        for row in dz.chunks_exact(outputs) {
            db.iter_mut().zip(row).for_each(|(g, d)| *g += d);
        }
    }
    if let Some(dx) = dx {
        input_gradient(weight, inputs, outputs, dz, dx);
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
fn activation_backward(activation: Activation, pre: &[f32], y: &[f32], dy: &mut [f32], outputs: usize) {
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

/// `dx[batch x in] = dz[batch x out] W[out x in]`.
#[inline]
fn input_gradient(weight: &[f32], inputs: usize, outputs: usize, dz: &[f32], dx: &mut [f32]) {
    let batch = dz.len() / outputs;
    gemm(1.0, MatRef::new(dz, batch, outputs), MatRef::new(weight, outputs, inputs), 0.0, dx, inputs);
}
