//! `FakeQuant`: int8 fake quantization of activations for quantization-aware
//! training, shape-preserving (PyTorch's `FakeQuantize` with a
//! `MovingAverageMinMaxObserver`, TensorFlow's `FakeQuantWithMinMaxVars`).
//!
//! The layer quantizes and dequantizes every value with one int8 asymmetric scale and
//! zero point (TensorFlow Lite's, from the range widened to contain 0:
//! [`activation_quantization`]), so that the layers after it see what they will see in
//! int8, and passes the gradient straight through where the value lies in the range
//! (zero where it saturated), as `torch.fake_quantize_per_tensor_affine`; see
//! [`crate::quant::qat`] for the formulas.
//!
//! The range is two buffers, `min_val` and `max_val` (scalars, the names of PyTorch's
//! observer): in a training forward in training mode each batch moves them as an
//! exponential moving average with `momentum` (the first batch sets them), then the
//! batch is fake-quantized with the updated range; inference and evaluation mode
//! (`model.eval()`) use them unchanged. Until a batch has been observed (the range
//! `[0, 0]`) the layer is the identity. `model.quantize(..)` takes the int8
//! quantization of the value a `FakeQuant` reads from its range instead of from the
//! calibration set.
//!
//! ```
//! use nn_core::layers::FakeQuant;
//! use nn_core::{Layer, Rng, Shape1, TrainCtx};
//!
//! let layer = FakeQuant::<Shape1<3>>::new(0.01);
//! let (mut buffers, mut cache, mut y) = ([0.0; 2], [0.0; 3], [0.0; 3]);
//! let mut rng = Rng::new(0);
//! let cx = TrainCtx { params: &[], buffers: &mut buffers, cache: &mut cache, scratch: &mut [],
//!     rng: &mut rng, training: true };
//! layer.forward_train(&[-1.0, 0.5, 3.0], &mut y, cx);
//! assert_eq!(buffers, [-1.0, 3.0]); // the first batch sets the range
//! // Steps of 4 / 255, zero at -64: each value to the nearest step, -1 a little below.
//! let step = 4.0f32 / 255.0;
//! assert_eq!(y, [-64.0 * step, 32.0 * step, 191.0 * step]);
//! ```
use core::marker::PhantomData;

use crate::layer::{BackwardCtx, Layer, TrainCtx, Weights};
use crate::quant::qat::{activation_quantization, fake_quantize, observe, ACTIVATION_RANGE};
use crate::rng::Rng;
use crate::shape::Shape;
use crate::weights::TensorTree;

/// Int8 fake quantization of samples of shape `S`, its range observed during training.
#[derive(Clone, Copy, Debug)]
pub struct FakeQuant<S> {
    /// The weight of each batch in the moving average of the range, in `[0, 1)`
    /// (PyTorch's `averaging_constant`).
    pub momentum: f32,
    _shape: PhantomData<S>,
}

impl<S> FakeQuant<S> {
    /// Fake quantization whose range follows each batch with `momentum` (`network!`
    /// checks `0 <= momentum < 1`; its default is PyTorch's `0.01`).
    pub const fn new(momentum: f32) -> Self {
        FakeQuant { momentum, _shape: PhantomData }
    }
}

impl<S: Shape> FakeQuant<S> {
    /// Fake-quantizes `x` into `y` with the range `[min, max]`, the straight-through
    /// mask into `mask` when given; the identity (mask 1) while the range is empty.
    fn apply(range: [f32; 2], x: &[f32], y: &mut [f32], mask: Option<&mut [f32]>) {
        let n = x.len();
        if range[0] >= range[1] {
            y[..n].copy_from_slice(x);
            if let Some(mask) = mask {
                mask[..n].fill(1.0);
            }
            return;
        }
        let (q, _) = activation_quantization(range[0], range[1]);
        fake_quantize(x, q.scale, q.zero_point, ACTIVATION_RANGE, y, mask);
    }
}

impl<S: Shape> Layer for FakeQuant<S> {
    type Input = S;
    type Output = S;
    const PARAMS: usize = 0;
    /// `min_val`, `max_val`.
    const BUFFERS: usize = 2;
    /// The straight-through mask: 1 where a value lies in the range, 0 where it
    /// saturated.
    const CACHE: usize = S::LEN;
    const KIND: &'static str = "FakeQuant";
    const TENSORS: &'static TensorTree = &TensorTree::Pair {
        first: &TensorTree::Leaf { name: "min_val", shape: &[], trainable: false },
        rest: &TensorTree::Leaf { name: "max_val", shape: &[], trainable: false },
    };

    fn init(&self, _params: &mut [f32], buffers: &mut [f32], _rng: &mut Rng) {
        buffers[..2].fill(0.0);
    }

    fn forward(&self, w: Weights<'_>, x: &[f32], y: &mut [f32], _scratch: &mut [f32]) {
        Self::apply([w.buffers[0], w.buffers[1]], x, y, None);
    }

    fn forward_train(&self, x: &[f32], y: &mut [f32], cx: TrainCtx<'_>) {
        let TrainCtx { buffers, cache, training, .. } = cx;
        let mut range = [buffers[0], buffers[1]];
        if training {
            observe(&mut range, x, self.momentum);
            buffers[..2].copy_from_slice(&range);
        }
        Self::apply(range, x, y, Some(cache));
    }

    fn backward(&self, x: &[f32], _y: &[f32], dy: &mut [f32], dx: Option<&mut [f32]>, cx: BackwardCtx<'_>) {
        let BackwardCtx { cache, .. } = cx;
        if let Some(dx) = dx {
            for ((dx, &d), &m) in dx[..x.len()].iter_mut().zip(dy.iter()).zip(cache) {
                *dx = d * m;
            }
        }
    }
}
