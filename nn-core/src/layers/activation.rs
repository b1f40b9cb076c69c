//! Activation layers: shape-preserving, no parameters.
//!
//! `Act<S>` applies an [`Activation`] to every sample of shape `S` (softmax over the
//! last dimension). The aliases `Relu<S>`, `Sigmoid<S>`, ... are what `network!` emits
//! for the layers `Relu`, `Sigmoid`, ...; `LeakyRelu { alpha: 0.2 }` and
//! `Elu { alpha: 1.0 }` carry their slope.
use core::marker::PhantomData;

use crate::activation::Activation;
use crate::layer::{BackwardCtx, Layer, TrainCtx, Weights};
use crate::rng::Rng;
use crate::shape::Shape;

/// An activation applied as a layer to samples of shape `S`.
#[derive(Clone, Copy, Debug)]
pub struct Act<S> {
    /// The function.
    pub activation: Activation,
    _shape: PhantomData<S>,
}

impl<S> Act<S> {
    /// The activation layer for `activation`.
    pub const fn new(activation: Activation) -> Self {
        Act { activation, _shape: PhantomData }
    }
}

/// `max(0, x)` as a layer.
pub type Relu<S> = Act<S>;
/// `min(max(0, x), 6)` as a layer.
pub type Relu6<S> = Act<S>;
/// Leaky ReLU as a layer.
pub type LeakyRelu<S> = Act<S>;
/// The logistic sigmoid as a layer.
pub type Sigmoid<S> = Act<S>;
/// `tanh` as a layer.
pub type Tanh<S> = Act<S>;
/// Softmax over the last dimension as a layer.
pub type Softmax<S> = Act<S>;
/// The identity as a layer.
pub type Identity<S> = Act<S>;
/// GELU as a layer.
pub type Gelu<S> = Act<S>;
/// ELU as a layer.
pub type Elu<S> = Act<S>;
/// `|x|` as a layer.
pub type Abs<S> = Act<S>;

impl<S: Shape> Act<S> {
    /// The width softmax normalises over: the last dimension.
    fn width() -> usize {
        S::DIMS.last().copied().unwrap_or(1).max(1)
    }
}

impl<S: Shape> Layer for Act<S> {
    type Input = S;
    type Output = S;
    const PARAMS: usize = 0;
    const MAY_LEAD_WITH_RELU: bool = true;
    const KIND: &'static str = "Activation";

    fn init(&self, _params: &mut [f32], _buffers: &mut [f32], _rng: &mut Rng) {}

    #[inline]
    fn leads_with_relu(&self) -> bool {
        matches!(self.activation, Activation::Relu)
    }

    #[inline]
    fn forward(&self, _w: Weights<'_>, x: &[f32], y: &mut [f32], _scratch: &mut [f32]) {
        let y = &mut y[..x.len()];
        if matches!(self.activation, Activation::Relu) {
            return crate::activation::relu_into(x, y);
        }
        y.copy_from_slice(x);
        self.activation.apply(y, Self::width());
    }

    #[inline]
    fn forward_train(&self, x: &[f32], y: &mut [f32], cx: TrainCtx<'_>) {
        let TrainCtx { params, buffers, scratch, .. } = cx;
        self.forward(Weights::new(params, buffers), x, y, scratch);
    }

    #[inline]
    fn backward(&self, x: &[f32], y: &[f32], dy: &mut [f32], dx: Option<&mut [f32]>, _cx: BackwardCtx<'_>) {
        if let Some(dx) = dx {
            let n = x.len();
            if matches!(self.activation, Activation::Relu) {
                return crate::activation::relu_backward_into(x, &dy[..n], &mut dx[..n]);
            }
            self.activation.backward(x, y, &mut dy[..n], Self::width());
            dx[..n].copy_from_slice(&dy[..n]);
        }
    }

    fn visit_summary(&self, name: &str, depth: usize, f: &mut dyn FnMut(&crate::layer::SummaryRow<'_>)) {
        f(&crate::layer::SummaryRow { name, kind: self.activation.name(), depth, output: S::DIMS, params: 0 });
    }
}
