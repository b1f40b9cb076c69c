//! `Dense`: a fully connected layer, `[in] -> [out]`.
//!
//! `y = f(x W^T + b)` with `weight` `[out, in]` and `bias` `[out]`, PyTorch's
//! `nn.Linear` layout and `state_dict` names. A perceptron is a `Dense` with one unit.
//!
//! ```
//! use nn_core::prelude::*;
//! network! {
//!     pub struct Perceptron: [4] -> [1] {
//!         out: Dense { units: 1, activation: Sigmoid },
//!     }
//! }
//! let model = Model::<Perceptron>::new(1);
//! let p = model.predict_one(&[5.1, 3.5, 1.4, 0.2].into())[0];
//! assert!(p > 0.0 && p < 1.0);
//! ```
use crate::activation::Activation;
use crate::kernels::dense;
use crate::layer::{BackwardCtx, Layer, TrainCtx, Weights};
use crate::rng::Rng;
use crate::shape::{Shape1, Tensor};

/// A fully connected layer from `I` inputs to `O` units, with a bias when `BIAS`.
#[derive(Clone, Copy, Debug)]
pub struct Dense<const I: usize, const O: usize, const BIAS: bool = true> {
    /// The activation applied to the output.
    pub activation: Activation,
}

impl<const I: usize, const O: usize, const BIAS: bool> Dense<I, O, BIAS> {
    /// A dense layer with the given activation.
    pub const fn new(activation: Activation) -> Self {
        Dense { activation }
    }
}

impl<const I: usize, const O: usize, const BIAS: bool> Layer for Dense<I, O, BIAS> {
    type Input = Shape1<I>;
    type Output = Shape1<O>;
    const PARAMS: usize = O * I + if BIAS { O } else { 0 };
    const CACHE: usize = O;
    const KIND: &'static str = "Dense";
    const TENSORS: &'static crate::weights::TensorTree = &crate::weights::TensorTree::Pair {
        first: &crate::weights::TensorTree::Leaf { name: "weight", shape: &[O, I], trainable: true },
        rest: if BIAS {
            &crate::weights::TensorTree::Leaf { name: "bias", shape: &[O], trainable: true }
        } else {
            &crate::weights::TensorTree::Empty
        },
    };

    /// Glorot uniform for saturating activations, He uniform for the ReLU family
    /// (both as Keras); biases start at zero.
    fn init(&self, params: &mut [f32], _buffers: &mut [f32], rng: &mut Rng) {
        let (i, o) = (I as f32, O as f32);
        let limit = if self.activation.prefers_he_init() { libm::sqrtf(6.0 / i) } else { libm::sqrtf(6.0 / (i + o)) };
        let (w, b) = params.split_at_mut(O * I);
        w.iter_mut().for_each(|v| *v = rng.uniform_in(-limit, limit));
        b.fill(0.0);
    }

    #[inline]
    fn forward(&self, w: Weights<'_>, x: &[f32], y: &mut [f32], _scratch: &mut [f32]) {
        let params = w.params;
        let (w, b) = params.split_at(O * I);
        let bias = if BIAS { Some(b) } else { None };
        if x.len() == I {
            return dense::forward_one::<I>(x, w, bias, self.activation, O, y);
        }
        dense::forward(x, w, bias, self.activation, I, O, y, None);
    }

    /// One sample: the output array straight from the kernels (`dense::forward_one_value`).
    #[inline]
    fn forward_value(&self, w: Weights<'_>, x: &[f32], _scratch: &mut [f32]) -> Tensor<Shape1<O>> {
        let (w, b) = w.params.split_at(O * I);
        let bias = if BIAS { Some(b) } else { None };
        Tensor::new(dense::forward_one_value::<I, O>(x, w, bias, self.activation))
    }

    #[inline]
    fn forward_train(&self, x: &[f32], y: &mut [f32], cx: TrainCtx<'_>) {
        let TrainCtx { params, cache, .. } = cx;
        let (w, b) = params.split_at(O * I);
        let bias = if BIAS { Some(b) } else { None };
        let pre = if self.activation == Activation::Identity { None } else { Some(cache) };
        dense::forward(x, w, bias, self.activation, I, O, y, pre);
    }

    #[inline]
    fn backward(&self, x: &[f32], y: &[f32], dy: &mut [f32], dx: Option<&mut [f32]>, cx: BackwardCtx<'_>) {
        let BackwardCtx { params, cache, grads, frozen, .. } = cx;
        let n = O * I;
        if frozen.all(Self::PARAMS) {
            // Every parameter frozen: the input gradient alone.
            if let Some(dx) = dx {
                dense::backward_input(&params[..n], cache, y, self.activation, I, O, dy, dx);
            }
            return;
        }
        let (gw, gb) = grads.split_at_mut(n);
        let gb = if BIAS { Some(gb) } else { None };
        dense::backward(x, &params[..n], cache, y, self.activation, I, O, dy, gw, gb, dx);
    }
}
