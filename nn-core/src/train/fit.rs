//! `fit` and `evaluate`: epochs of shuffled mini-batches over the step API.
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
use core::ops::Range;

use super::callbacks::EarlyStopping;
use super::epochs::{check_callbacks, plateau_rate, run_epochs, scheduled_rate, EpochSteps, LoopState};
use super::frozen::FrozenParams;
use super::history::{EpochLog, Evaluation, History};
use super::regularize::{apply_penalty, Constraint, GradClip, Penalty, Select};
use super::schedule::{ReduceOnPlateau, Schedule};
use super::{Dataset, Metric, OptimizerState, Workspace};
use crate::layer::Layer;
use crate::loss::{Loss, TargetError};
use crate::model::Model;
use crate::optim::{Optimizer, SettingError};
use crate::quant::calibrate::WeightGranularity;
use crate::quant::qat::WeightFakeQuant;
use crate::report::{BatchLog, Observer};
use crate::shape::Shape;

/// Why training or evaluation stopped.
#[derive(Clone, Debug, PartialEq)]
pub enum TrainError {
    /// `batch_size` was zero.
    BatchSizeZero,
    /// The data set has no samples.
    EmptyDataset,
    /// The data set's samples do not have the network's input size.
    InputWidth {
        /// The network's input values per sample.
        expected: usize,
        /// The data set's.
        found: usize,
    },
    /// The data set's targets do not have the size the loss needs.
    TargetWidth {
        /// Target values per sample the loss needs for this output.
        expected: usize,
        /// The data set's.
        found: usize,
    },
    /// An input value is NaN or infinite.
    NonFiniteInput {
        /// The sample index.
        sample: usize,
        /// The value index within the sample.
        index: usize,
    },
    /// A target the loss cannot use (a label out of range, a NaN).
    BadTarget {
        /// The sample index.
        sample: usize,
        /// What is wrong.
        error: TargetError,
    },
    /// The loss, with its penalties, became NaN or infinite; the step that produced
    /// it was not applied.
    NonFiniteLoss {
        /// The epoch (from 1).
        epoch: usize,
        /// The batch within the epoch (from 1).
        batch: usize,
        /// The loss value.
        loss: f32,
    },
    /// An optimizer step made a parameter NaN or infinite. The parameters and the
    /// optimizer's state are back to their values before that step.
    NonFiniteWeights {
        /// The epoch (from 1).
        epoch: usize,
        /// The batch within the epoch (from 1).
        batch: usize,
    },
    /// The learning-rate schedule gave a rate that is NaN, infinite or negative (an
    /// exponential growth that overflowed); the step was not applied.
    ScheduledRate {
        /// The epoch (from 1).
        epoch: usize,
        /// The batch within the epoch (from 1).
        batch: usize,
        /// The rate.
        rate: f32,
    },
    /// A setting training cannot use (checked before the first step): a NaN learning
    /// rate, Adam's `beta1` of 1, a penalty of NaN, a `validation_split` of 5.
    InvalidSetting(SettingError),
    /// Early stopping or reduce-on-plateau monitors a series that this training does
    /// not produce (a misspelled name, a validation series without validation data).
    UnknownMonitor {
        /// `"early_stopping"` or `"reduce_on_plateau"`.
        setting: &'static str,
        /// The name monitored.
        name: &'static str,
        /// The series this training produces.
        available: Vec<String>,
    },
}

impl From<SettingError> for TrainError {
    fn from(e: SettingError) -> Self {
        TrainError::InvalidSetting(e)
    }
}

impl fmt::Display for TrainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrainError::BatchSizeZero => f.write_str("batch size must be at least 1"),
            TrainError::EmptyDataset => f.write_str("the data set has no samples"),
            TrainError::InputWidth { expected, found } => {
                write!(f, "the network takes {expected} input values per sample, the data set has {found}")
            }
            TrainError::TargetWidth { expected, found } => {
                write!(f, "the loss needs {expected} target values per sample, the data set has {found}")
            }
            TrainError::NonFiniteInput { sample, index } => {
                write!(f, "input value {index} of sample {sample} is NaN or infinite")
            }
            TrainError::BadTarget { sample, error } => write!(f, "target of sample {sample}: {error}"),
            TrainError::NonFiniteLoss { epoch, batch, loss } => write!(
                f,
                "the loss became {loss} at epoch {epoch}, batch {batch}; training stopped before applying that step"
            ),
            TrainError::NonFiniteWeights { epoch, batch } => write!(
                f,
                "the optimizer step of epoch {epoch}, batch {batch} made a weight NaN or infinite; \
                 the weights of before that step were restored"
            ),
            TrainError::ScheduledRate { epoch, batch, rate } => write!(
                f,
                "the schedule gave the learning rate {rate} at epoch {epoch}, batch {batch}; \
                 training stopped before applying that step"
            ),
            TrainError::InvalidSetting(e) => write!(f, "invalid setting: {e}"),
            TrainError::UnknownMonitor { setting, name, available } => {
                write!(f, "{setting} monitors `{name}`, which this training does not produce; it produces ")?;
                for (i, a) in available.iter().enumerate() {
                    write!(f, "{}`{a}`", if i == 0 { "" } else { ", " })?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for TrainError {}

/// A training run's settings and state: optimizer (with its state), loss, epochs,
/// batch size, shuffling seed and metrics. Calling [`Fit::run`] again continues
/// training with the same optimizer state.
///
/// ```
/// # use nn_core::prelude::*;
/// # use nn_core::train::Metric;
/// # network! { pub struct Net: [2] -> [2] { out: Dense { units: 2 } } }
/// # let train = Dataset::new(vec![0.0, 1.0, 1.0, 0.0], 2, vec![1.0, 0.0], 1).unwrap();
/// let mut model = Model::<Net>::new(1);
/// let mut fit = Fit::new(Adam::new(0.1), SparseCategoricalCrossEntropy::from_logits())
///     .epochs(100)
///     .batch_size(2)
///     .metrics(&[Metric::Accuracy]);
/// let history = fit.run(&mut model, &train, None).unwrap();
/// assert_eq!(history.series("accuracy").last(), Some(&1.0));
/// ```
pub struct Fit<L: Layer, O, Lo> {
    /// The optimizer and its state.
    pub optimizer: OptimizerState<O>,
    /// The loss minimised.
    pub loss: Lo,
    /// Epochs per `run`.
    pub epochs: usize,
    /// Samples per mini-batch (the last batch of an epoch may be smaller). A batch the
    /// size of the data set is plain gradient descent.
    pub batch_size: usize,
    /// Whether to shuffle the samples every epoch.
    pub shuffle: bool,
    /// Metrics computed for training and validation data.
    pub metrics: Vec<Metric>,
    /// Print one line per epoch to standard error (`std` only).
    pub verbose: bool,
    /// Weight penalties added to the loss.
    pub penalties: Vec<Penalty>,
    /// Constraints enforced after every step.
    pub constraints: Vec<(Select, Constraint)>,
    /// Gradient clipping before every step.
    pub clip: Option<GradClip>,
    /// The learning-rate schedule (replaces the optimizer's rate at every step).
    pub schedule: Option<Schedule>,
    /// Reduce the rate when a monitored value stops improving.
    pub plateau: Option<ReduceOnPlateau>,
    /// Stop when a monitored value stops improving.
    pub early_stopping: Option<EarlyStopping>,
    /// Tensors that are never updated (transfer learning).
    pub frozen: Vec<Select>,
    /// Hold out this share of the training data (its last samples, before shuffling,
    /// as Keras) as validation data when none is given.
    pub validation_split: f32,
    /// Called at every batch and epoch: progress bars, plots (see [`crate::report`]).
    pub observers: Vec<Box<dyn Observer>>,
    /// Weights trained with fake quantization (see [`Fit::fake_quantize_weights`]).
    pub fake_quantized_weights: Option<(Select, WeightGranularity)>,
    /// The epoch loop's state: random source, epochs and batches done.
    looping: LoopState,
    workspace: Workspace<L>,
    /// The current epoch's metric sums and counts, one per metric.
    metric_sums: Vec<(f64, usize)>,
    /// The current epoch's sums of each output's loss (a loss per output), and the
    /// last batch's values.
    part_sums: Vec<f64>,
    part_values: Vec<f32>,
    /// The settings as the steps read them (see [`Fit::step`]).
    prepared: Option<Prepared>,
}

impl<L: Layer, O: Optimizer, Lo: Loss> Fit<L, O, Lo> {
    /// A run with `optimizer` and `loss`: 10 epochs of batches of 32, shuffled with
    /// seed 0, no metrics, quiet.
    pub fn new(optimizer: O, loss: Lo) -> Self {
        Fit {
            optimizer: OptimizerState::new(optimizer),
            loss,
            epochs: 10,
            batch_size: 32,
            shuffle: true,
            metrics: Vec::new(),
            verbose: false,
            penalties: Vec::new(),
            constraints: Vec::new(),
            clip: None,
            schedule: None,
            plateau: None,
            early_stopping: None,
            frozen: Vec::new(),
            validation_split: 0.0,
            observers: Vec::new(),
            fake_quantized_weights: None,
            looping: LoopState::new(0),
            workspace: Workspace::new(),
            metric_sums: Vec::new(),
            part_sums: Vec::new(),
            part_values: Vec::new(),
            prepared: None,
        }
    }

    super::epochs::loop_setters!();

    /// Quantization-aware training of the selected weight tensors of two or more
    /// dimensions (Dense weights, convolution filters; biases stay float, as int8
    /// keeps them in int32): every step's forward and backward passes see them int8
    /// symmetric with one scale per output channel or one per tensor, as
    /// `model.quantize` will store them, and the step updates the float weights with
    /// the gradient taken at the quantized ones (the straight-through estimator; see
    /// [`crate::quant::qat::WeightFakeQuant`]). The model keeps its float weights, and
    /// evaluation (validation data, `model.evaluate`, `model.predict`) uses them;
    /// `WeightFakeQuant::of_weights(..).quantize(..)` on a copy of the parameters gives
    /// the network training saw.
    ///
    /// ```
    /// # use nn_core::prelude::*;
    /// # use nn_core::quant::calibrate::WeightGranularity;
    /// # use nn_core::train::Select;
    /// # network! { pub struct Net: [2] -> [1] { out: Dense { units: 1 } } }
    /// let mut model = Model::<Net>::new(1);
    /// let mut fit = Fit::new(Sgd::new(0.1), MeanSquaredError)
    ///     .fake_quantize_weights(Select::Weights, WeightGranularity::PerChannel);
    /// let (x, t) = ([1.0, 2.0, -1.0, 0.5], [1.0, -1.0]);
    /// for _ in 0..100 {
    ///     fit.step(&mut model, &x, &t).unwrap();
    /// }
    /// assert!(fit.step(&mut model, &x, &t).unwrap() < 1e-3);
    /// ```
    pub fn fake_quantize_weights(mut self, select: Select, granularity: WeightGranularity) -> Self {
        self.fake_quantized_weights = Some((select, granularity));
        self.prepared = None;
        self
    }

    /// Sets the metrics.
    pub fn metrics(mut self, metrics: &[Metric]) -> Self {
        self.metrics = metrics.to_vec();
        self
    }

    /// Adds a weight penalty (L1 / L2).
    pub fn penalty(mut self, penalty: Penalty) -> Self {
        self.penalties.push(penalty);
        self.prepared = None;
        self
    }

    /// Adds a constraint on the selected tensors.
    pub fn constraint(mut self, select: Select, constraint: Constraint) -> Self {
        self.constraints.push((select, constraint));
        self.prepared = None;
        self
    }

    /// Clips gradients before every step.
    pub fn clip(mut self, clip: GradClip) -> Self {
        self.clip = Some(clip);
        self
    }

    /// Freezes the selected tensors: they keep their values bit for bit, and their
    /// gradients are not computed (see [`Model::backward_frozen`]).
    pub fn freeze(mut self, select: Select) -> Self {
        self.frozen.push(select);
        self.prepared = None;
        self
    }

    /// Holds out this share of the training data for validation when no validation
    /// data is given: a number in `[0, 1)` (checked by [`Fit::run`]).
    pub fn validation_split(mut self, share: f32) -> Self {
        self.validation_split = share;
        self
    }

    /// Checks every setting and monitored name (see [`Fit::run`]); `validation` says
    /// whether validation series will exist.
    fn check_settings(&self, validation: bool) -> Result<(), TrainError> {
        self.optimizer.optimizer.check()?;
        if let Some(schedule) = &self.schedule {
            schedule.check()?;
        }
        for penalty in &self.penalties {
            penalty.check()?;
        }
        if let Some(clip) = &self.clip {
            clip.check()?;
        }
        for (_, constraint) in &self.constraints {
            constraint.check()?;
        }
        SettingError::below_one("validation_split", self.validation_split)?;
        let parts = (0..self.loss.parts()).map(|k| self.loss.part_name(k));
        let series: Vec<&str> =
            core::iter::once("loss").chain(parts).chain(self.metrics.iter().map(|m| m.name())).collect();
        let validation = if validation { &series[..] } else { &[] };
        check_callbacks(self.plateau.as_ref(), self.early_stopping.as_ref(), &series, validation)
    }

    /// Trains `model` on `train` for `self.epochs` epochs, evaluating on `validation`
    /// after each.
    ///
    /// Checks first, before any step: every setting ([`TrainError::InvalidSetting`]
    /// names the first that training cannot use: the optimizer's through
    /// [`Optimizer::check`], the schedule, penalties, clipping, constraints,
    /// `validation_split`), the monitored names ([`TrainError::UnknownMonitor`]) and
    /// the data. Then stops with an error naming the epoch and batch if the loss with
    /// its penalties becomes NaN or infinite (the step is not applied), or if a step
    /// makes a parameter NaN or infinite (the parameters and optimizer state of
    /// before that step are restored): the model never ends with a non-finite weight
    /// it did not start with.
    ///
    /// ```
    /// # use nn_core::prelude::*;
    /// # use nn_core::optim::SettingError;
    /// # network! { pub struct Net: [2] -> [1] { out: Dense { units: 1 } } }
    /// # let data = Dataset::new(vec![0.0, 1.0, 1.0, 0.0], 2, vec![1.0, 0.0], 1).unwrap();
    /// let mut model = Model::<Net>::new(1);
    /// let before = model.state().to_vec();
    /// let mut fit = Fit::new(Adam::new(f32::NAN), MeanSquaredError);
    /// let err = fit.run(&mut model, &data, None).unwrap_err();
    /// let expected = SettingError { setting: "Adam.lr", value: f32::NAN, expected: "a finite number >= 0" };
    /// assert_eq!(err.to_string(), format!("invalid setting: {expected}"));
    /// assert_eq!(model.state(), before);
    /// ```
    pub fn run<P: AsRef<[f32]> + AsMut<[f32]>>(
        &mut self,
        model: &mut Model<L, P>,
        train: &Dataset,
        validation: Option<&Dataset>,
    ) -> Result<History, TrainError> {
        let mut history = History::default();
        self.run_with(model, train, validation, |_, _| true, &mut history)?;
        Ok(history)
    }

    /// Like [`Fit::run`], calling `on_epoch(model, log)` after each epoch; training
    /// stops early when it returns `false`. Records go into `history`.
    pub fn run_with<P: AsRef<[f32]> + AsMut<[f32]>>(
        &mut self,
        model: &mut Model<L, P>,
        train: &Dataset,
        validation: Option<&Dataset>,
        mut on_epoch: impl FnMut(&mut Model<L, P>, &EpochLog) -> bool,
        history: &mut History,
    ) -> Result<(), TrainError> {
        if self.batch_size == 0 {
            return Err(TrainError::BatchSizeZero);
        }
        let split = self.held_out(train, validation);
        let (train, validation) = match &split {
            Some((t, v)) => (t, Some(v)),
            None => (train, validation),
        };
        self.check_settings(validation.is_some())?;
        validate::<L, Lo>(&self.loss, train)?;
        if let Some(v) = validation {
            validate::<L, Lo>(&self.loss, v)?;
        }
        self.prepared = Some(Prepared::new(self, model.layer()));
        let batch = self.batch_size.min(train.len());
        let mut steps = Standard { fit: self, model, validation, batch, on_epoch: &mut on_epoch };
        let result = run_epochs(&mut steps, train, batch, history);
        // A step outside a run reads the settings again.
        self.prepared = None;
        result
    }

    /// The training and validation sets when `validation_split` holds out the last
    /// samples of `train` (no validation data given), else `None`.
    fn held_out(&self, train: &Dataset, validation: Option<&Dataset>) -> Option<(Dataset, Dataset)> {
        if validation.is_some() || !(self.validation_split > 0.0 && self.validation_split < 1.0) || train.len() < 2 {
            return None;
        }
        let n_val = (libm::roundf(train.len() as f32 * self.validation_split) as usize).clamp(1, train.len() - 1);
        let cut = train.len() - n_val;
        Some((train.select(&(0..cut).collect::<Vec<_>>()), train.select(&(cut..train.len()).collect::<Vec<_>>())))
    }

    /// The record of the epoch just trained: its mean loss, its metrics and the
    /// validation loss and metrics.
    fn epoch_log<P: AsRef<[f32]>>(
        &mut self,
        model: &Model<L, P>,
        loss: f32,
        validation: Option<&Dataset>,
        batch: usize,
    ) -> EpochLog {
        let batches = self.looping.batches_in_epoch.max(1) as f64;
        let parts = self.part_sums.iter().enumerate().map(|(k, &s)| (self.loss.part_name(k), (s / batches) as f32));
        let metrics = parts.chain(
            self.metrics.iter().zip(&self.metric_sums).map(|(m, &(s, c))| (m.name(), (s / c.max(1) as f64) as f32)),
        );
        let (val_loss, val_metrics) = match validation {
            Some(v) => {
                let e = evaluate_with(model, v, &self.loss, &self.metrics, batch, &mut self.workspace);
                (Some(e.loss), e.metrics)
            }
            None => (None, Vec::new()),
        };
        EpochLog {
            epoch: self.looping.epochs_done,
            loss,
            metrics: metrics.collect(),
            val_loss,
            val_metrics,
            learning_rate: self.optimizer.optimizer.learning_rate(),
        }
    }

    /// The end of an epoch before the caller's callback: printing and reduce-on-plateau.
    fn report_epoch(&mut self, log: &EpochLog) {
        if self.verbose {
            print_epoch(log);
        }
        if let Some(lr) = plateau_rate(self.plateau.as_mut(), log, self.optimizer.optimizer.learning_rate()) {
            self.optimizer.optimizer.set_learning_rate(lr);
        }
    }

    /// One training step on a batch: training forward, the loss and its penalties,
    /// backward (frozen tensors skipped), clipping, the scheduled learning rate, the
    /// optimizer step, then frozen tensors kept and constraints enforced. Returns the
    /// batch's loss with its penalties and adds the batch to the epoch's metrics.
    /// [`Fit::run`] calls it for every batch; a custom loop (curriculum, data made on
    /// the fly) calls it on batches of its own.
    ///
    /// `inputs` holds whole samples of the network's input, `targets` as many samples
    /// of the loss's targets; both are checked (sizes, finite inputs, valid targets),
    /// and the settings (penalties, constraints, frozen tensors) are read at the start
    /// of a run and, outside a run, at the first step after construction, after a run
    /// or after a builder method changed them. On an error nothing is applied (a step that makes a
    /// parameter NaN or infinite is undone, see [`Fit::run`]).
    ///
    /// ```
    /// # use nn_core::prelude::*;
    /// # network! { pub struct Net: [2] -> [1] { out: Dense { units: 1 } } }
    /// let mut model = Model::<Net>::new(1);
    /// let mut fit = Fit::new(Sgd::new(0.1), MeanSquaredError);
    /// let (x, t) = ([1.0, 2.0, -1.0, 0.5], [1.0, -1.0]);
    /// let first = fit.step(&mut model, &x, &t).unwrap();
    /// for _ in 0..50 {
    ///     fit.step(&mut model, &x, &t).unwrap();
    /// }
    /// assert!(fit.step(&mut model, &x, &t).unwrap() < first / 100.0);
    /// ```
    pub fn step<P: AsRef<[f32]> + AsMut<[f32]>>(
        &mut self,
        model: &mut Model<L, P>,
        inputs: &[f32],
        targets: &[f32],
    ) -> Result<f32, TrainError> {
        let (in_len, out_len) = (<L::Input as Shape>::LEN, <L::Output as Shape>::LEN);
        let t_len = self.loss.target_len(out_len);
        let m = check_batch(&self.loss, inputs, targets, (in_len, out_len, t_len))?;
        if self.prepared.is_none() {
            self.check_settings(false)?;
            self.prepared = Some(Prepared::new(self, model.layer()));
        }
        if self.metric_sums.len() != self.metrics.len() {
            self.metric_sums.resize(self.metrics.len(), (0.0, 0));
        }
        let (epoch, batch) = self.looping.position();
        let prepared = self.prepared.as_mut().expect("prepared above");
        let ws = &mut self.workspace;
        ws.zero_grads();
        if let Some(weights) = &mut prepared.fake_quantized_weights {
            weights.quantize(model.params_mut());
        }
        model.forward_train(ws, inputs, &mut self.looping.rng);
        let mut loss = ws.loss(&self.loss, targets);
        self.part_values.resize(self.loss.parts(), 0.0);
        if !self.part_values.is_empty() {
            self.loss.compute_parts(&ws.output()[..m * out_len], targets, out_len, &mut self.part_values);
        }
        for (metric, sum) in self.metrics.iter().zip(&mut self.metric_sums) {
            for s in 0..m {
                let (v, c) =
                    metric.sample(&ws.output()[s * out_len..(s + 1) * out_len], &targets[s * t_len..(s + 1) * t_len]);
                sum.0 += v;
                sum.1 += c;
            }
        }
        model.backward_frozen(ws, inputs, None, prepared.frozen.view());
        if let Some(weights) = &mut prepared.fake_quantized_weights {
            weights.restore(model.params_mut());
        }
        for (l1, l2, ranges) in &prepared.penalties {
            loss += apply_penalty(*l1, *l2, ranges, model.params(), ws.grads_mut());
        }
        if !loss.is_finite() {
            return Err(TrainError::NonFiniteLoss { epoch, batch, loss });
        }
        prepared.frozen.hold(model.params(), ws.grads_mut());
        if let Some(clip) = self.clip {
            clip.apply(ws.grads_mut());
        }
        if let Some(schedule) = &self.schedule {
            let rate = scheduled_rate(schedule, self.optimizer.steps() as usize, epoch, batch)?;
            self.optimizer.optimizer.set_learning_rate(rate);
        }
        prepared.last_params.clear();
        prepared.last_params.extend_from_slice(model.params());
        prepared.last_state.clone_from(&self.optimizer.state);
        let last_step = self.optimizer.step;
        self.optimizer.step(model.params_mut(), ws.grads());
        prepared.frozen.restore(model.params_mut());
        for (c, ranges) in &prepared.constraints {
            c.apply(ranges, model.params_mut());
        }
        if !model.params().iter().all(|p| p.is_finite()) {
            model.params_mut().copy_from_slice(&prepared.last_params);
            self.optimizer.state.clone_from(&prepared.last_state);
            self.optimizer.step = last_step;
            return Err(TrainError::NonFiniteWeights { epoch, batch });
        }
        self.part_sums.resize(self.part_values.len(), 0.0);
        for (sum, &value) in self.part_sums.iter_mut().zip(&self.part_values) {
            *sum += value as f64;
        }
        self.looping.batches_in_epoch += 1;
        Ok(loss)
    }
}

/// A run of [`Fit::run_with`] as the epoch loop sees it: [`Fit::step`] on `model`,
/// the epoch's record with validation, the caller's callback and early stopping.
struct Standard<'a, L: Layer, O, Lo, P, F> {
    fit: &'a mut Fit<L, O, Lo>,
    model: &'a mut Model<L, P>,
    validation: Option<&'a Dataset>,
    batch: usize,
    on_epoch: &'a mut F,
}

impl<L, O, Lo, P, F> EpochSteps for Standard<'_, L, O, Lo, P, F>
where
    L: Layer,
    O: Optimizer,
    Lo: Loss,
    P: AsRef<[f32]> + AsMut<[f32]>,
    F: FnMut(&mut Model<L, P>, &EpochLog) -> bool,
{
    fn plan(&self) -> (usize, bool, bool) {
        (self.fit.epochs, self.fit.shuffle, false)
    }

    fn state(&mut self) -> &mut LoopState {
        &mut self.fit.looping
    }

    fn observers(&mut self) -> &mut [Box<dyn Observer>] {
        &mut self.fit.observers
    }

    fn begin_epoch(&mut self) {
        self.fit.metric_sums.clear();
        self.fit.metric_sums.resize(self.fit.metrics.len(), (0.0, 0));
        self.fit.part_sums.clear();
    }

    fn step(&mut self, inputs: &[f32], targets: &[f32], _samples: usize) -> Result<f32, TrainError> {
        self.fit.step(self.model, inputs, targets)
    }

    fn batch_end(&mut self, epoch: usize, batches: usize, mean_loss: f32) {
        let fit = &mut *self.fit;
        if !fit.observers.is_empty() {
            let batch = fit.looping.batches_in_epoch;
            let log = BatchLog::new(epoch, batch, batches, mean_loss, &fit.metrics, &fit.metric_sums);
            fit.observers.iter_mut().for_each(|o| o.batch_end(&log));
        }
    }

    fn epoch_log(&mut self, loss: f32) -> Result<EpochLog, TrainError> {
        let log = self.fit.epoch_log(self.model, loss, self.validation, self.batch);
        self.fit.report_epoch(&log);
        Ok(log)
    }

    fn keep_going(&mut self, log: &EpochLog) -> bool {
        let mut go_on = (self.on_epoch)(self.model, log);
        if let Some(early) = &mut self.fit.early_stopping {
            go_on &= early.observe(log, self.model.state());
        }
        go_on
    }

    fn finish(&mut self) {
        if let Some(early) = &self.fit.early_stopping {
            if early.restore_best && !early.best_state.is_empty() {
                self.model.state_mut().copy_from_slice(&early.best_state);
            }
        }
    }
}

/// Parameter ranges with their row lengths (see [`Select::ranges`]).
type Ranges = Vec<(Range<usize>, usize)>;

/// What the steps of a run read from the settings, computed once: the parameter
/// ranges of the penalties, constraints and frozen tensors, and the parameters and
/// optimizer state of before the current step (put back if the step makes a
/// parameter NaN or infinite).
struct Prepared {
    penalties: Vec<(f32, f32, Ranges)>,
    constraints: Vec<(Constraint, Ranges)>,
    frozen: FrozenParams,
    last_params: Vec<f32>,
    last_state: Vec<f32>,
    fake_quantized_weights: Option<WeightFakeQuant>,
}

impl Prepared {
    fn new<L: Layer, O, Lo>(fit: &Fit<L, O, Lo>, layer: &L) -> Self {
        Prepared {
            penalties: fit.penalties.iter().map(|p| (p.l1, p.l2, p.select.ranges(layer))).collect(),
            constraints: fit.constraints.iter().map(|(s, c)| (*c, s.ranges(layer))).collect(),
            frozen: FrozenParams::new(&fit.frozen, layer),
            last_params: Vec::new(),
            last_state: Vec::new(),
            fake_quantized_weights: fit
                .fake_quantized_weights
                .as_ref()
                .map(|(select, granularity)| WeightFakeQuant::new(select.ranges_of_rank(layer, 2), *granularity)),
        }
    }
}

/// The number of samples in a batch of `inputs` and `targets`, checked as
/// [`validate`] checks a data set.
fn check_batch<Lo: Loss>(
    loss: &Lo,
    inputs: &[f32],
    targets: &[f32],
    (in_len, out_len, t_len): (usize, usize, usize),
) -> Result<usize, TrainError> {
    let m = match inputs.len().checked_rem(in_len) {
        Some(0) => inputs.len() / in_len,
        _ => return Err(TrainError::InputWidth { expected: in_len, found: inputs.len() }),
    };
    if m == 0 {
        return Err(TrainError::EmptyDataset);
    }
    if targets.len() != m * t_len {
        return Err(TrainError::TargetWidth { expected: t_len, found: targets.len() / m });
    }
    for (sample, (x, t)) in inputs.chunks_exact(in_len).zip(targets.chunks_exact(t_len.max(1))).enumerate() {
        if let Some(index) = x.iter().position(|v| !v.is_finite()) {
            return Err(TrainError::NonFiniteInput { sample, index });
        }
        loss.check_target(t, out_len).map_err(|error| TrainError::BadTarget { sample, error })?;
    }
    Ok(m)
}

#[cfg(feature = "std")]
pub(crate) fn print_epoch(log: &EpochLog) {
    let mut line = std::string::String::new();
    use core::fmt::Write;
    let _ = write!(line, "epoch {:>3}  loss {:.4}", log.epoch, log.loss);
    for (n, v) in &log.metrics {
        let _ = write!(line, "  {n} {v:.4}");
    }
    if let Some(v) = log.val_loss {
        let _ = write!(line, "  val_loss {v:.4}");
    }
    for (n, v) in &log.val_metrics {
        let _ = write!(line, "  val_{n} {v:.4}");
    }
    std::eprintln!("{line}");
}

#[cfg(not(feature = "std"))]
pub(crate) fn print_epoch(_log: &EpochLog) {}

/// Checks a data set against a network and loss: sizes, finite inputs, valid targets.
pub(crate) fn validate<L: Layer, Lo: Loss>(loss: &Lo, data: &Dataset) -> Result<(), TrainError> {
    if data.is_empty() {
        return Err(TrainError::EmptyDataset);
    }
    let in_len = <L::Input as Shape>::LEN;
    let out_len = <L::Output as Shape>::LEN;
    if data.input_len() != in_len {
        return Err(TrainError::InputWidth { expected: in_len, found: data.input_len() });
    }
    let t_len = loss.target_len(out_len);
    if data.target_len() != t_len {
        return Err(TrainError::TargetWidth { expected: t_len, found: data.target_len() });
    }
    for i in 0..data.len() {
        if let Some(index) = data.input(i).iter().position(|v| !v.is_finite()) {
            return Err(TrainError::NonFiniteInput { sample: i, index });
        }
        loss.check_target(data.target(i), out_len).map_err(|error| TrainError::BadTarget { sample: i, error })?;
    }
    Ok(())
}

pub(crate) fn evaluate_with<L: Layer, P: AsRef<[f32]>, Lo: Loss>(
    model: &Model<L, P>,
    data: &Dataset,
    loss: &Lo,
    metrics: &[Metric],
    batch: usize,
    ws: &mut Workspace<L>,
) -> Evaluation {
    let in_len = <L::Input as Shape>::LEN;
    let out_len = <L::Output as Shape>::LEN;
    let t_len = data.target_len();
    let batch = batch.max(1);
    ws.reserve(batch.min(data.len()));
    let mut loss_sum = 0.0f64;
    let mut sums = vec![(0.0f64, 0usize); metrics.len()];
    let (mut part_sums, mut parts) = (vec![0.0f64; loss.parts()], vec![0.0f32; loss.parts()]);
    let n = data.len();
    let mut start = 0;
    while start < n {
        let m = batch.min(n - start);
        let x = &data.inputs()[start * in_len..(start + m) * in_len];
        let t = &data.targets()[start * t_len..(start + m) * t_len];
        let y = &mut ws.output[..m * out_len];
        model.forward_slices(x, y, &mut ws.scratch[..m * L::SCRATCH]);
        loss_sum += loss.compute(y, t, out_len, None) as f64 * m as f64;
        if !parts.is_empty() {
            loss.compute_parts(y, t, out_len, &mut parts);
            for (sum, &part) in part_sums.iter_mut().zip(&parts) {
                *sum += part as f64 * m as f64;
            }
        }
        for (k, metric) in metrics.iter().enumerate() {
            for s in 0..m {
                let (v, c) = metric.sample(&y[s * out_len..(s + 1) * out_len], &t[s * t_len..(s + 1) * t_len]);
                sums[k].0 += v;
                sums[k].1 += c;
            }
        }
        start += m;
    }
    Evaluation {
        loss: (loss_sum / n.max(1) as f64) as f32,
        metrics: part_sums
            .iter()
            .enumerate()
            .map(|(k, &s)| (loss.part_name(k), (s / n.max(1) as f64) as f32))
            .chain(metrics.iter().zip(&sums).map(|(m, &(s, c))| (m.name(), (s / c.max(1) as f64) as f32)))
            .collect(),
    }
}
