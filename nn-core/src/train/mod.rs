//! Training: the explicit step API, a Keras-like `fit` on top of it, and `fit`'s loop
//! around a step of one's own (needs `alloc`).
//!
//! The step API, for loops of one's own (research code):
//!
//! ```
//! use nn_core::prelude::*;
//! network! {
//!     pub struct Xor: [2] -> [1] {
//!         hidden: Dense { units: 8, activation: Tanh },
//!         out: Dense { units: 1 },
//!     }
//! }
//! let data = Dataset::new(
//!     vec![0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0], 2,
//!     vec![0.0, 1.0, 1.0, 0.0], 1,
//! ).unwrap();
//! let mut model = Model::<Xor>::new(1);
//! let mut ws = Workspace::<Xor>::new();
//! let mut opt = OptimizerState::new(Adam::new(0.05));
//! let mut rng = Rng::new(0);
//! let loss = BinaryCrossEntropy::from_logits();
//! for _ in 0..300 {
//!     ws.zero_grads();
//!     model.forward_train(&mut ws, data.inputs(), &mut rng);   // training forward
//!     let _l = ws.loss(&loss, data.targets());                  // loss and its gradient
//!     model.backward(&mut ws, data.inputs(), None);             // backward
//!     opt.step(model.params_mut(), ws.grads());                 // optimizer step
//! }
//! let p = model.predict(data.inputs()).unwrap();
//! assert!(p[0] < 0.0 && p[1] > 0.0 && p[2] > 0.0 && p[3] < 0.0);
//! ```
//!
//! A step that `Fit` cannot express, several networks each with its own optimizer (a
//! GAN), is Keras's overridden `train_step`: a [`TrainStep`] run by [`CustomFit`],
//! the same epoch loop (shuffled batches, observers, the [`History`] of the step's
//! named values, validation by the step's `test_step`, learning-rate schedules,
//! reduce-on-plateau, early stopping). Each network is a [`Learner`]: a model with its
//! workspace and optimizer. A discriminator step trains `D` on real samples and on
//! samples of `G`; a generator step runs `G` then `D`, and `D`'s gradient with respect
//! to its input, the generated samples, is `G`'s output gradient
//! ([`Learner::input_grad`], which leaves `D`'s parameter gradients alone: `D` is
//! frozen in that step).
//!
//! ```
//! use nn_core::prelude::*;
//! use nn_core::train::{Batch, CustomFit, Learner, StepCtx, TrainError, TrainStep};
//! network! {
//!     pub struct Generator: [4] -> [2] {
//!         hidden: Dense { units: 16, activation: Relu },
//!         out: Dense { units: 2 },
//!     }
//! }
//! network! {
//!     pub struct Discriminator: [2] -> [1] {
//!         hidden: Dense { units: 16, activation: LeakyRelu { alpha: 0.2 } },
//!         score: Dense { units: 1 },
//!     }
//! }
//!
//! struct Gan {
//!     g: Learner<Generator, Adam>,
//!     d: Learner<Discriminator, Adam>,
//!     loss: GanLoss,
//!     noise: Vec<f32>,
//! }
//!
//! impl TrainStep for Gan {
//!     fn names(&self) -> &[&'static str] {
//!         &["d_loss", "g_loss"]
//!     }
//!
//!     fn train_step(&mut self, cx: &mut StepCtx<'_>, batch: Batch<'_>, values: &mut [f32]) -> Result<(), TrainError> {
//!         let Gan { g, d, loss, noise } = self;
//!         let (real, m) = (batch.inputs, batch.samples);
//!         noise.resize(m * 4, 0.0);
//!         // Discriminator step: real towards 0.9, generated towards 0.
//!         noise.iter_mut().for_each(|v| *v = cx.rng().normal());
//!         d.zero_grads();
//!         d.forward_train(real, cx.rng());
//!         let d_real = d.loss(loss, &vec![loss.real_label(); m]);
//!         d.backward(real);
//!         g.forward_train(noise, cx.rng());
//!         d.forward_train(g.output(), cx.rng());
//!         let d_fake = d.loss(loss, &vec![GanLoss::FAKE_LABEL; m]);
//!         d.backward(g.output());
//!         d.step();
//!         // Generator step through the frozen discriminator.
//!         noise.iter_mut().for_each(|v| *v = cx.rng().normal());
//!         g.zero_grads();
//!         g.forward_train(noise, cx.rng());
//!         d.forward_train(g.output(), cx.rng());
//!         values[1] = d.loss(loss, &vec![GanLoss::GENERATOR_LABEL; m]);
//!         g.set_output_grad(d.input_grad(g.output()));
//!         g.backward(noise);
//!         g.step();
//!         values[0] = d_real + d_fake;
//!         Ok(())
//!     }
//! }
//!
//! // Real samples: points on a circle of radius 2.
//! let mut rng = Rng::new(3);
//! let mut points = Vec::new();
//! for _ in 0..256 {
//!     let angle = rng.uniform_in(0.0, std::f32::consts::TAU);
//!     points.extend_from_slice(&[2.0 * angle.cos(), 2.0 * angle.sin()]);
//! }
//! let circle = Dataset::new(points, 2, vec![0.0; 256], 1).unwrap();
//! let adam = Adam { beta1: 0.5, ..Adam::new(2e-3) };
//! let mut gan = Gan {
//!     g: Learner::new(Model::new(1), adam),
//!     d: Learner::new(Model::new(2), adam),
//!     loss: GanLoss::logistic().label_smoothing(0.1),
//!     noise: Vec::new(),
//! };
//! let history = CustomFit::new().epochs(25).batch_size(32).run(&mut gan, &circle, None).unwrap();
//! assert_eq!(history.series("g_loss").len(), 25);
//! // The generated points moved out from the origin towards the circle.
//! let noise: Vec<f32> = (0..32 * 4).map(|_| rng.normal()).collect();
//! let samples = gan.g.predict(&noise).unwrap();
//! let radius = samples.chunks(2).map(|p| p[0].hypot(p[1])).sum::<f32>() / 32.0;
//! assert!(radius > 1.0, "mean radius {radius}");
//! ```
mod callbacks;
mod custom;
mod dataset;
mod epochs;
pub(crate) mod fit;
mod frozen;
mod history;
mod learner;
mod metrics;
pub mod regularize;
pub mod schedule;

use alloc::vec;
use alloc::vec::Vec;
use core::marker::PhantomData;

pub use callbacks::EarlyStopping;
pub use custom::{Batch, CustomFit, StepCtx, TrainStep};
pub use dataset::{Dataset, DatasetError};
pub use fit::{Fit, TrainError};
pub use history::{EpochLog, Evaluation, History};
pub use learner::Learner;
pub use metrics::{Metric, OutputMetric};
pub use regularize::{Constraint, GradClip, Penalty, Select};
pub use schedule::{Mode, ReduceOnPlateau, Schedule};

use crate::layer::Layer;
use crate::loss::Loss;
use crate::optim::Optimizer;
use crate::shape::Shape;

/// The buffers of one training step, allocated once and reused: outputs, the cache
/// `backward` needs, scratch space, the output gradient and the parameter gradients.
///
/// Buffers grow to the largest batch seen and are never shrunk, so after the first
/// step of a given batch size a training step allocates nothing.
pub struct Workspace<L: Layer> {
    pub(crate) batch: usize,
    pub(crate) output: Vec<f32>,
    pub(crate) output_grad: Vec<f32>,
    pub(crate) cache: Vec<f32>,
    pub(crate) scratch: Vec<f32>,
    pub(crate) grads: Vec<f32>,
    _layer: PhantomData<L>,
}

impl<L: Layer> Default for Workspace<L> {
    fn default() -> Self {
        Self::new()
    }
}

impl<L: Layer> Workspace<L> {
    /// An empty workspace; buffers are sized by the first step.
    pub fn new() -> Self {
        Workspace {
            batch: 0,
            output: Vec::new(),
            output_grad: Vec::new(),
            cache: Vec::new(),
            scratch: Vec::new(),
            grads: vec![0.0; L::PARAMS],
            _layer: PhantomData,
        }
    }

    /// Sizes the buffers for `batch` samples (growing only).
    pub fn reserve(&mut self, batch: usize) {
        self.batch = batch;
        let grow = |v: &mut Vec<f32>, n: usize| {
            if v.len() < n {
                v.resize(n, 0.0);
            }
        };
        grow(&mut self.output, batch * <L::Output as Shape>::LEN);
        grow(&mut self.output_grad, batch * <L::Output as Shape>::LEN);
        grow(&mut self.cache, batch * L::CACHE);
        grow(&mut self.scratch, batch * L::SCRATCH);
    }

    /// The batch size of the last training forward.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// The outputs of the last training forward.
    pub fn output(&self) -> &[f32] {
        &self.output[..self.batch * <L::Output as Shape>::LEN]
    }

    /// The gradient of the loss with respect to the outputs, read by `backward`.
    pub fn output_grad_mut(&mut self) -> &mut [f32] {
        &mut self.output_grad[..self.batch * <L::Output as Shape>::LEN]
    }

    /// The outputs of the last training forward and, mutable, the gradient with respect
    /// to them: a network that consumes these outputs (a discriminator judging a
    /// generator's samples) writes its input gradient straight into this network's
    /// output gradient with `backward(.., Some(grad))`.
    pub fn output_and_grad_mut(&mut self) -> (&[f32], &mut [f32]) {
        let n = self.batch * <L::Output as Shape>::LEN;
        (&self.output[..n], &mut self.output_grad[..n])
    }

    /// Computes the loss of the last outputs against `targets` and stores its gradient
    /// as the output gradient. Returns the reduced loss.
    pub fn loss<Lo: Loss>(&mut self, loss: &Lo, targets: &[f32]) -> f32 {
        let n = self.batch * <L::Output as Shape>::LEN;
        loss.compute(&self.output[..n], targets, <L::Output as Shape>::LEN, Some(&mut self.output_grad[..n]))
    }

    /// The accumulated parameter gradients.
    pub fn grads(&self) -> &[f32] {
        &self.grads
    }

    /// The accumulated parameter gradients, mutable (for clipping or penalties).
    pub fn grads_mut(&mut self) -> &mut [f32] {
        &mut self.grads
    }

    /// Sets the parameter gradients to zero (before each step: `backward` adds).
    pub fn zero_grads(&mut self) {
        self.grads.fill(0.0);
    }
}

/// An optimizer with its state (one slice for all parameters) and step counter.
#[derive(Clone, Debug)]
pub struct OptimizerState<O> {
    /// The optimizer settings (its learning rate can be changed between steps).
    pub optimizer: O,
    step: u64,
    state: Vec<f32>,
}

impl<O: Optimizer> OptimizerState<O> {
    /// Fresh state for `optimizer`.
    pub fn new(optimizer: O) -> Self {
        OptimizerState { optimizer, step: 0, state: Vec::new() }
    }

    /// One update of `params` from `grads`.
    pub fn step(&mut self, params: &mut [f32], grads: &[f32]) {
        let n = O::STATE_PER_PARAM * params.len();
        if self.state.len() != n {
            self.state = vec![0.0; n];
        }
        self.step += 1;
        self.optimizer.update(self.step, params, grads, &mut self.state);
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// The per-parameter state (for checkpoints).
    pub fn state(&self) -> &[f32] {
        &self.state
    }

    /// Restores the step counter and the per-parameter state (from a checkpoint) of an
    /// optimizer for `params` parameters (`model.params().len()`).
    ///
    /// The state must hold `STATE_PER_PARAM * params` values, or none when no step
    /// was taken (`step` 0): anything else is an error, and nothing changes, rather
    /// than moment estimates silently reset to zero at the next step.
    ///
    /// ```
    /// use nn_core::prelude::*;
    /// use nn_core::train::OptimizerStateError;
    /// let mut adam = OptimizerState::new(Adam::new(1e-3));
    /// let err = adam.restore(1000, &[0.5; 7], 67).unwrap_err();
    /// assert_eq!(err, OptimizerStateError { step: 1000, expected: 134, found: 7 });
    /// assert_eq!(adam.steps(), 0);
    /// adam.restore(1000, &[0.5; 134], 67).unwrap();
    /// assert_eq!((adam.steps(), adam.state().len()), (1000, 134));
    /// ```
    pub fn restore(&mut self, step: u64, state: &[f32], params: usize) -> Result<(), OptimizerStateError> {
        let expected = O::STATE_PER_PARAM.saturating_mul(params);
        if state.len() != expected && !(state.is_empty() && step == 0) {
            return Err(OptimizerStateError { step, expected, found: state.len() });
        }
        self.step = step;
        self.state.clear();
        self.state.extend_from_slice(state);
        Ok(())
    }
}

/// Optimizer state of the wrong length for the parameters (see
/// [`OptimizerState::restore`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OptimizerStateError {
    /// The step count given.
    pub step: u64,
    /// Values the optimizer keeps for the parameters.
    pub expected: usize,
    /// Values given.
    pub found: usize,
}

impl core::fmt::Display for OptimizerStateError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "optimizer state of {} values for step {}; the optimizer keeps {} values for these parameters",
            self.found, self.step, self.expected
        )
    }
}

#[cfg(feature = "std")]
impl std::error::Error for OptimizerStateError {}
