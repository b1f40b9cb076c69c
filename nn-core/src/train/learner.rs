//! [`Learner`]: one network of a custom training step, with its workspace and its own
//! optimizer.
use alloc::vec::Vec;

use super::{OptimizerState, Workspace};
use crate::layer::Layer;
use crate::loss::Loss;
use crate::model::Model;
use crate::optim::Optimizer;
use crate::rng::Rng;

/// A model with its workspace and its own optimizer: what a [`TrainStep`](super::TrainStep)
/// with several networks holds per network (a GAN's generator and discriminator).
///
/// A step zeroes the gradients, runs [`Learner::forward_train`], sets the output
/// gradient (from a loss with [`Learner::loss`], or from the network that consumed
/// the outputs with [`Learner::set_output_grad`] / [`Learner::add_output_grad`]), runs
/// a backward, and [`Learner::step`]s. The gradient with respect to the input, which a
/// network passes to the one that produced its input, comes from
/// [`Learner::input_grad`] (this network's parameters untouched: a frozen
/// discriminator) or [`Learner::backward_with_input_grad`] (this network learns too).
///
/// ```
/// use nn_core::prelude::*;
/// use nn_core::train::Learner;
/// network! { pub struct G: [2] -> [3] { out: Dense { units: 3 } } }
/// network! { pub struct D: [3] -> [1] { out: Dense { units: 1 } } }
/// let (mut g, mut d) = (Learner::new(Model::<G>::new(1), Sgd::new(0.1)), Learner::new(Model::<D>::new(2), Sgd::new(0.1)));
/// let (noise, mut rng) = ([0.5, -1.0], Rng::new(0));
/// let d_before = d.model.params().to_vec();
/// let first = {
///     g.zero_grads();
///     g.forward_train(&noise, &mut rng);
///     d.forward_train(g.output(), &mut rng);
///     let loss = d.loss(&MeanSquaredError, &[1.0]);
///     // D's gradient with respect to G's output is G's output gradient.
///     g.set_output_grad(d.input_grad(g.output()));
///     g.backward(&noise);
///     g.step();
///     loss
/// };
/// g.forward_train(&noise, &mut rng);
/// d.forward_train(g.output(), &mut rng);
/// assert!(d.loss(&MeanSquaredError, &[1.0]) < first);
/// // Only G learned.
/// assert_eq!(d.model.params(), d_before);
/// ```
pub struct Learner<L: Layer, O> {
    /// The network and its parameters.
    pub model: Model<L>,
    /// The buffers of its steps.
    pub workspace: Workspace<L>,
    /// Its optimizer, with the optimizer's state.
    pub optimizer: OptimizerState<O>,
    /// The gradient with respect to the input of the last backward that computed it.
    input_grad: Vec<f32>,
}

impl<L: Layer, O: Optimizer> Learner<L, O> {
    /// `model`, trained by `optimizer`.
    pub fn new(model: Model<L>, optimizer: O) -> Self {
        Learner {
            model,
            workspace: Workspace::new(),
            optimizer: OptimizerState::new(optimizer),
            input_grad: Vec::new(),
        }
    }

    /// Sets the parameter gradients to zero (`backward` adds to them).
    pub fn zero_grads(&mut self) {
        self.workspace.zero_grads();
    }

    /// Training forward of the batch `x` (see [`Model::forward_train`]); returns the
    /// outputs.
    pub fn forward_train(&mut self, x: &[f32], rng: &mut Rng) -> &[f32] {
        self.model.forward_train(&mut self.workspace, x, rng)
    }

    /// The outputs of the last training forward.
    pub fn output(&self) -> &[f32] {
        self.workspace.output()
    }

    /// The loss of the last outputs against `targets`; its gradient becomes the output
    /// gradient.
    pub fn loss<Lo: Loss>(&mut self, loss: &Lo, targets: &[f32]) -> f32 {
        self.workspace.loss(loss, targets)
    }

    /// The gradient with respect to the last outputs, read by the next backward.
    pub fn output_grad_mut(&mut self) -> &mut [f32] {
        self.workspace.output_grad_mut()
    }

    /// Sets the output gradient to `grad` (the input gradient of the network that
    /// consumed the outputs). Panics if `grad` is not as long as the outputs.
    pub fn set_output_grad(&mut self, grad: &[f32]) {
        self.workspace.output_grad_mut().copy_from_slice(grad);
    }

    /// Adds `grad` to the output gradient: gradients of several losses meeting in one
    /// tensor. Panics if `grad` is not as long as the outputs.
    pub fn add_output_grad(&mut self, grad: &[f32]) {
        let out = self.workspace.output_grad_mut();
        assert_eq!(out.len(), grad.len(), "the gradient added is not as long as the outputs");
        out.iter_mut().zip(grad).for_each(|(o, g)| *o += g);
    }

    /// Backward of the last training forward (same `x`): adds the parameter gradients.
    pub fn backward(&mut self, x: &[f32]) {
        self.model.backward(&mut self.workspace, x, None);
    }

    /// Backward of the last training forward (same `x`) that adds the parameter
    /// gradients and returns the gradient with respect to `x`.
    pub fn backward_with_input_grad(&mut self, x: &[f32]) -> &[f32] {
        self.input_grad.resize(x.len(), 0.0);
        self.model.backward(&mut self.workspace, x, Some(&mut self.input_grad));
        &self.input_grad
    }

    /// The gradient of the last loss with respect to `x`, the input of the last
    /// training forward (see [`Model::input_grad`]); the parameter gradients keep their
    /// values.
    pub fn input_grad(&mut self, x: &[f32]) -> &[f32] {
        self.input_grad.resize(x.len(), 0.0);
        self.model.input_grad(&mut self.workspace, x, &mut self.input_grad);
        &self.input_grad
    }

    /// One optimizer step of the parameters from the accumulated gradients.
    pub fn step(&mut self) {
        self.optimizer.step(self.model.params_mut(), self.workspace.grads());
    }

    /// The optimizer's learning rate: what a [`TrainStep`](super::TrainStep) reports
    /// as its `learning_rate`.
    pub fn learning_rate(&self) -> f32 {
        self.optimizer.optimizer.learning_rate()
    }

    /// Sets the optimizer's learning rate (a schedule's or reduce-on-plateau's, through
    /// [`TrainStep::set_learning_rate`](super::TrainStep::set_learning_rate)).
    pub fn set_learning_rate(&mut self, rate: f32) {
        self.optimizer.optimizer.set_learning_rate(rate);
    }

    /// Batch inference (evaluation mode), as [`Model::predict`].
    pub fn predict(&self, x: &[f32]) -> Result<Vec<f32>, crate::model::BatchLenError> {
        self.model.predict(x)
    }
}
