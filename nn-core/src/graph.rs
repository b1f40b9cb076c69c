//! The pieces of graph networks (`network!`'s `graph { ... }` form) that are not
//! layers: merges of several values and the tied dense layer.
//!
//! A graph network is a list of statements, each computing one named value from
//! earlier ones. The macro writes its forward and backward passes statement by
//! statement: layers through their [`Layer`](crate::Layer) methods, merges through the
//! functions here. In the backward pass, the gradient of a value used several times is
//! the sum of the gradients of its uses; the first use written overwrites the buffer
//! (`accumulate == false`), the others add into it.
//!
//! Every function works on whole batches: a value of `n` floats per sample is
//! `batch * n` floats, each sample contiguous.
//!
//! ```
//! use nn_core::prelude::*;
//! network! {
//!     /// `[6] -> [6]`: the input plus a two-layer branch.
//!     pub struct Residual: [6] -> [6] graph {
//!         input x;
//!         h = fc1(x): Dense { units: 4, activation: Relu };
//!         r = fc2(h): Dense { units: 6 };
//!         out = add(x, r);
//!         output out;
//!     }
//! }
//! // A zero second layer makes the block the identity.
//! let mut model = Model::<Residual>::new(1);
//! let fc2 = 6 * 4 + 4;
//! model.params_mut()[fc2..].fill(0.0);
//! let x = Tensor::from([1.0, -2.0, 0.5, 0.0, 3.0, -1.0]);
//! assert_eq!(model.predict_one(&x), x);
//! ```
use crate::activation::Activation;
use crate::kernels::{gemm, MatRef};
use crate::layer::{TensorInfo, TensorPath};

/// `out = a[0] + a[1] + ...`, element by element.
pub fn add(operands: &[&[f32]], out: &mut [f32]) {
    out.copy_from_slice(operands[0]);
    for operand in &operands[1..] {
        out.iter_mut().zip(operand.iter()).for_each(|(o, v)| *o += v);
    }
}

/// `out = a - b`, element by element.
pub fn subtract(a: &[f32], b: &[f32], out: &mut [f32]) {
    out.iter_mut().zip(a.iter().zip(b)).for_each(|(o, (a, b))| *o = a - b);
}

/// `out = a[0] * a[1] * ...`, element by element.
pub fn multiply(operands: &[&[f32]], out: &mut [f32]) {
    out.copy_from_slice(operands[0]);
    for operand in &operands[1..] {
        out.iter_mut().zip(operand.iter()).for_each(|(o, v)| *o *= v);
    }
}

/// The gradient of one operand of [`add`]: `dy` itself, written into (or, with
/// `accumulate`, added to) `grad`.
pub fn add_backward(dy: &[f32], grad: &mut [f32], accumulate: bool) {
    if accumulate {
        grad.iter_mut().zip(dy).for_each(|(g, d)| *g += d);
    } else {
        grad.copy_from_slice(dy);
    }
}

/// The gradient of the second operand of [`subtract`]: `-dy`, written into (or, with
/// `accumulate`, added to) `grad`. The first operand's is [`add_backward`]'s.
pub fn subtract_backward(dy: &[f32], grad: &mut [f32], accumulate: bool) {
    if accumulate {
        grad.iter_mut().zip(dy).for_each(|(g, d)| *g -= d);
    } else {
        grad.iter_mut().zip(dy).for_each(|(g, d)| *g = -d);
    }
}

/// The gradient of operand `which` of [`multiply`]: `dy` times every other operand.
pub fn multiply_backward(dy: &[f32], operands: &[&[f32]], which: usize, grad: &mut [f32], accumulate: bool) {
    for (i, g) in grad.iter_mut().enumerate() {
        let mut d = dy[i];
        for (j, operand) in operands.iter().enumerate() {
            if j != which {
                d *= operand[i];
            }
        }
        if accumulate {
            *g += d;
        } else {
            *g = d;
        }
    }
}

/// Concatenation along one axis of the per-sample shape. Seen from that axis, each
/// operand is `rows` blocks of `blocks[k]` contiguous floats (its size along the axis
/// times the sizes of the axes after it), where `rows` is the batch times the sizes of
/// the axes before it; the output's block is the sum of the operands' blocks.
pub fn concat(operands: &[&[f32]], blocks: &[usize], out: &mut [f32]) {
    let width: usize = blocks.iter().sum();
    let rows = out.len() / width;
    for r in 0..rows {
        let mut at = r * width;
        for (operand, &block) in operands.iter().zip(blocks) {
            out[at..at + block].copy_from_slice(&operand[r * block..(r + 1) * block]);
            at += block;
        }
    }
}

/// The gradient of operand `which` of [`concat()`]: its blocks of `dy`.
pub fn concat_backward(dy: &[f32], blocks: &[usize], which: usize, grad: &mut [f32], accumulate: bool) {
    let width: usize = blocks.iter().sum();
    let offset: usize = blocks[..which].iter().sum();
    let block = blocks[which];
    let rows = dy.len() / width;
    for r in 0..rows {
        let src = &dy[r * width + offset..r * width + offset + block];
        let dst = &mut grad[r * block..(r + 1) * block];
        if accumulate {
            dst.iter_mut().zip(src).for_each(|(g, d)| *g += d);
        } else {
            dst.copy_from_slice(src);
        }
    }
}

/// `a += b`, element by element.
pub fn accumulate(a: &mut [f32], b: &[f32]) {
    a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
}

/// Two disjoint mutable ranges of one slice: `[a, a + a_len)` and `[b, b + b_len)`.
///
/// # Panics
/// If the ranges overlap or leave the slice (a bug of the generated code).
pub fn two_mut(buf: &mut [f32], a: usize, a_len: usize, b: usize, b_len: usize) -> (&mut [f32], &mut [f32]) {
    if a < b {
        assert!(a + a_len <= b, "two_mut: overlapping ranges");
        let (head, tail) = buf.split_at_mut(b);
        (&mut head[a..a + a_len], &mut tail[..b_len])
    } else {
        assert!(b + b_len <= a, "two_mut: overlapping ranges");
        let (head, tail) = buf.split_at_mut(a);
        (&mut tail[..a_len], &mut head[b..b + b_len])
    }
}

/// The largest of `values` (0 for none), in `const` context.
pub const fn max(values: &[usize]) -> usize {
    let mut m = 0;
    let mut i = 0;
    while i < values.len() {
        if values[i] > m {
            m = values[i];
        }
        i += 1;
    }
    m
}

/// A dense layer from `I` inputs to `O` units whose weight is the transpose of another
/// dense layer's (`[I, O]`, PyTorch layout of a `Dense` from `O` inputs to `I` units),
/// with its own bias: `y = f(x W + b)`.
///
/// The weight is not its own: the graph passes the other layer's weight in, and the
/// backward pass adds this layer's weight gradient into the other's, so the one weight
/// receives the gradient of both uses. Its only parameter is the bias (`bias`, `[O]`).
#[derive(Clone, Copy, Debug)]
pub struct TiedDense<const I: usize, const O: usize, const BIAS: bool = true> {
    /// The activation applied to the output.
    pub activation: Activation,
}

impl<const I: usize, const O: usize, const BIAS: bool> TiedDense<I, O, BIAS> {
    /// The parameters of its own: the bias.
    pub const PARAMS: usize = if BIAS { O } else { 0 };
    /// Floats per sample kept for the backward pass: the pre-activations.
    pub const CACHE: usize = O;

    /// A tied dense layer with the given activation.
    pub const fn new(activation: Activation) -> Self {
        TiedDense { activation }
    }

    /// Biases start at zero.
    pub fn init(&self, bias: &mut [f32]) {
        bias.fill(0.0);
    }

    /// `y = f(x W + b)` for a batch of `x.len() / I` rows, with `weight` the other
    /// layer's `[I, O]` weight; when `pre` is given, the pre-activations are kept there.
    pub fn forward(&self, weight: &[f32], bias: &[f32], x: &[f32], y: &mut [f32], pre: Option<&mut [f32]>) {
        let batch = x.len() / I;
        let y = &mut y[..batch * O];
        let beta = if BIAS {
            for row in y.chunks_exact_mut(O) {
                row.copy_from_slice(&bias[..O]);
            }
            1.0
        } else {
            0.0
        };
        // y[batch x O] = x[batch x I] W[I x O]
        gemm(1.0, MatRef::new(x, batch, I), MatRef::new(weight, I, O), beta, y, O);
        if let Some(pre) = pre {
            pre[..y.len()].copy_from_slice(y);
        }
        self.activation.apply(y, O);
    }

    /// Backward of [`forward`](Self::forward): `dy` becomes the pre-activation gradient
    /// in place, `d_weight` (the other layer's weight gradient) and `d_bias` receive
    /// theirs added, `dx`, when given, is overwritten.
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &self,
        weight: &[f32],
        x: &[f32],
        y: &[f32],
        pre: &[f32],
        dy: &mut [f32],
        dx: Option<&mut [f32]>,
        d_weight: &mut [f32],
        d_bias: &mut [f32],
    ) {
        let batch = x.len() / I;
        self.activation.backward(pre, y, dy, O);
        let dz = &dy[..batch * O];
        // dW[I x O] += x^T[I x batch] dz[batch x O]
        gemm(1.0, MatRef::new(x, batch, I).t(), MatRef::new(dz, batch, O), 1.0, d_weight, O);
        if BIAS {
            for row in dz.chunks_exact(O) {
                d_bias.iter_mut().zip(row).for_each(|(g, d)| *g += d);
            }
        }
        if let Some(dx) = dx {
            // dx[batch x I] = dz[batch x O] W^T[O x I]
            gemm(1.0, MatRef::new(dz, batch, O), MatRef::new(weight, I, O).t(), 0.0, dx, I);
        }
    }

    /// Calls `f` for the bias, the one tensor of its own.
    pub fn visit_tensors(&self, path: Option<&TensorPath<'_>>, params_at: usize, f: &mut dyn FnMut(&TensorInfo<'_>)) {
        if BIAS {
            let bias = TensorPath::new(path, "bias");
            f(&TensorInfo { path: &bias, shape: &[O], offset: params_at, len: O, trainable: true });
        }
    }
}
