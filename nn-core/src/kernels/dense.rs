//! The dense (fully connected) kernels, PyTorch layout: `weight[out, in]`, `bias[out]`.
//!
//! Forward: `z[b, o] = sum_i x[b, i] * weight[o, i] + bias[o]`, then `y = f(z)`.
//! Backward: `dW += dz^T x`, `db += sum_b dz`, `dx = dz W`.
use super::gemm::{gemm, gemv, MatRef};
use crate::activation::Activation;

/// `y = f(x W^T + b)` for a batch of `x.len() / inputs` rows; when `pre` is given, the
/// pre-activations `z` are also stored there.
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
    if batch == 1 {
        gemv(1.0, w, x, 0.0, y);
    } else {
        gemm(1.0, MatRef::new(x, batch, inputs), w.t(), 0.0, y, outputs);
    }
    let y = &mut y[..batch * outputs];
    if let Some(b) = bias {
        if activation == Activation::Softmax || pre.is_some() {
            for row in y.chunks_exact_mut(outputs) {
                row.iter_mut().zip(b).for_each(|(v, b)| *v += b);
            }
        } else {
            // Fused bias + elementwise activation: one pass over the output.
            for row in y.chunks_exact_mut(outputs) {
                row.iter_mut().zip(b).for_each(|(v, b)| *v = activation.scalar(*v + b));
            }
            return;
        }
    }
    if let Some(pre) = pre {
        pre[..y.len()].copy_from_slice(y);
    }
    activation.apply(y, outputs);
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
    activation.backward(pre, y, dy, outputs);
    let dz = &dy[..batch * outputs];
    // dW[out x in] += dz^T[out x batch] x[batch x in]
    gemm(1.0, MatRef::new(dz, batch, outputs).t(), MatRef::new(x, batch, inputs), 1.0, d_weight, inputs);
    if let Some(db) = d_bias {
        for row in dz.chunks_exact(outputs) {
            db.iter_mut().zip(row).for_each(|(g, d)| *g += d);
        }
    }
    if let Some(dx) = dx {
        // dx[batch x in] = dz[batch x out] W[out x in]
        gemm(1.0, MatRef::new(dz, batch, outputs), MatRef::new(weight, outputs, inputs), 0.0, dx, inputs);
    }
}
