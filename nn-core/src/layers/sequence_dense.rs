//! `SequenceDense`: a dense layer applied at every time step, `[T, F] -> [T, U]`
//! (Keras' `TimeDistributed(Dense)`).
//!
//! `y_t = f(W x_t + b)` with the parameters of PyTorch's `nn.Linear(F, U)`, which
//! applies to the last dimension: `weight [U, F]`, `bias [U]`, so `fc.weight` and
//! `fc.bias` load from a PyTorch `state_dict` by copy. Softmax acts on each step.
//!
//! `forward` (inference) computes every output as a fixed-order dot product, step by
//! step, so that streaming ([`crate::stream`]) reproduces it bit for bit;
//! `forward_train` runs the `[B T, F] x [F, U]` GEMM of a dense layer.
//!
//! ```
//! use nn_core::layers::SequenceDense;
//! use nn_core::{Activation, Layer};
//!
//! let fc = SequenceDense::<2, 3, 1>::new(Activation::Identity);
//! let params = [1.0, 2.0, 3.0, 0.5]; // weight [1, 3], bias [1]
//! let mut y = [0.0f32; 2];
//! fc.forward(nn_core::Weights::new(&params, &[]), &[1.0, 0.0, 0.0, 0.0, 1.0, 1.0], &mut y, &mut []);
//! assert_eq!(y, [1.5, 5.5]);
//! ```
use crate::activation::Activation;
use crate::kernels::dense;
use crate::kernels::recurrent::project;
use crate::layer::{BackwardCtx, Layer, TrainCtx, Weights};
use crate::rng::Rng;
use crate::shape::Shape2;

/// A dense layer from `F` features to `U` units at each of `T` steps, with a bias
/// when `BIAS`.
#[derive(Clone, Copy, Debug)]
pub struct SequenceDense<const T: usize, const F: usize, const U: usize, const BIAS: bool = true> {
    /// The activation applied to each output step.
    pub activation: Activation,
}

impl<const T: usize, const F: usize, const U: usize, const BIAS: bool> SequenceDense<T, F, U, BIAS> {
    /// The layer with the given activation.
    pub const fn new(activation: Activation) -> Self {
        SequenceDense { activation }
    }

    /// One step of inference: `x [F]` -> `y [U]`, the operations of `forward`.
    #[inline]
    pub(crate) fn step(&self, params: &[f32], x: &[f32], y: &mut [f32]) {
        let (w, b) = params.split_at(U * F);
        let y = &mut y[..U];
        project(w, if BIAS { Some(&b[..U]) } else { None }, x, y);
        self.activation.apply(y, U);
    }
}

impl<const T: usize, const F: usize, const U: usize, const BIAS: bool> Layer for SequenceDense<T, F, U, BIAS> {
    type Input = Shape2<T, F>;
    type Output = Shape2<T, U>;
    const PARAMS: usize = U * F + if BIAS { U } else { 0 };
    /// The pre-activations.
    const CACHE: usize = T * U;
    const KIND: &'static str = "SequenceDense";
    const TENSORS: &'static crate::weights::TensorTree = &crate::weights::TensorTree::Pair {
        first: &crate::weights::TensorTree::Leaf { name: "weight", shape: &[U, F], trainable: true },
        rest: if BIAS {
            &crate::weights::TensorTree::Leaf { name: "bias", shape: &[U], trainable: true }
        } else {
            &crate::weights::TensorTree::Empty
        },
    };

    /// As [`crate::layers::Dense`]: Glorot uniform, or He uniform for the ReLU family;
    /// zero biases.
    fn init(&self, params: &mut [f32], _buffers: &mut [f32], rng: &mut Rng) {
        let (i, o) = (F as f32, U as f32);
        let limit = if self.activation.prefers_he_init() { libm::sqrtf(6.0 / i) } else { libm::sqrtf(6.0 / (i + o)) };
        let (w, b) = params[..Self::PARAMS].split_at_mut(U * F);
        w.iter_mut().for_each(|v| *v = rng.uniform_in(-limit, limit));
        b.fill(0.0);
    }

    fn forward(&self, w: Weights<'_>, x: &[f32], y: &mut [f32], _scratch: &mut [f32]) {
        let params = w.params;
        for (xs, ys) in x.chunks_exact(F).zip(y.chunks_exact_mut(U)) {
            self.step(params, xs, ys);
        }
    }

    fn forward_train(&self, x: &[f32], y: &mut [f32], cx: TrainCtx<'_>) {
        let TrainCtx { params, cache, .. } = cx;
        let (w, b) = params.split_at(U * F);
        let bias = if BIAS { Some(&b[..U]) } else { None };
        let pre = if self.activation == Activation::Identity { None } else { Some(cache) };
        dense::forward(x, w, bias, self.activation, F, U, y, pre);
    }

    fn backward(&self, x: &[f32], y: &[f32], dy: &mut [f32], dx: Option<&mut [f32]>, cx: BackwardCtx<'_>) {
        let BackwardCtx { params, cache, grads, .. } = cx;
        let n = U * F;
        let (gw, gb) = grads.split_at_mut(n);
        let gb = if BIAS { Some(&mut gb[..U]) } else { None };
        dense::backward(x, &params[..n], cache, y, self.activation, F, U, dy, gw, gb, dx);
    }
}
