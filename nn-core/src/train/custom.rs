//! A training step of the caller's own inside `fit`'s loop: Keras's overridden
//! `train_step`. [`CustomFit`] runs the epochs, the shuffled mini-batches, the
//! observers, the history and early stopping, as [`Fit`](super::Fit) does (the same
//! loop); a [`TrainStep`] does what one batch needs: several networks, each with its
//! own optimizer ([`Learner`](super::Learner)), gradients passed from one to the
//! other, several losses.
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use super::callbacks::EarlyStopping;
use super::epochs::{run_epochs, EpochSteps, LoopState};
use super::history::{EpochLog, History};
use super::{Dataset, TrainError};
use crate::optim::SettingError;
use crate::report::{BatchLog, Observer};
use crate::rng::Rng;

/// One training step on a batch, written by the caller: Keras's `train_step`.
///
/// A step reports one value per name of [`TrainStep::names`] (a discriminator's and a
/// generator's loss); [`CustomFit`] averages each over the epoch's batches into the
/// [`History`] series of that name, and reports the first as the series `"loss"`.
///
/// ```
/// use nn_core::prelude::*;
/// use nn_core::train::{Batch, CustomFit, Learner, StepCtx, TrainError, TrainStep};
/// network! { pub struct Net: [2] -> [1] { out: Dense { units: 1 } } }
///
/// /// Regression with the loss halved: a step `Fit` cannot express.
/// struct Halved(Learner<Net, Sgd>);
///
/// impl TrainStep for Halved {
///     fn names(&self) -> &[&'static str] {
///         &["half_mse"]
///     }
///
///     fn train_step(&mut self, cx: &mut StepCtx<'_>, batch: Batch<'_>, values: &mut [f32]) -> Result<(), TrainError> {
///         let net = &mut self.0;
///         net.zero_grads();
///         net.forward_train(batch.inputs, cx.rng());
///         values[0] = 0.5 * net.loss(&MeanSquaredError, batch.targets);
///         net.output_grad_mut().iter_mut().for_each(|g| *g *= 0.5);
///         net.backward(batch.inputs);
///         net.step();
///         Ok(())
///     }
/// }
///
/// let data = Dataset::new(vec![1.0, 2.0, -1.0, 0.5], 2, vec![1.0, -1.0], 1).unwrap();
/// let mut step = Halved(Learner::new(Model::new(1), Sgd::new(0.1)));
/// let history = CustomFit::new().epochs(50).batch_size(2).run(&mut step, &data).unwrap();
/// let losses = history.series("half_mse");
/// assert_eq!(losses.len(), 50);
/// assert_eq!(history.series("loss"), losses);
/// assert!(losses[49] < losses[0] / 100.0);
/// ```
pub trait TrainStep {
    /// The names of the values a step reports (`"d_loss"`, `"g_loss"`), at least one.
    fn names(&self) -> &[&'static str];

    /// One step on `batch`: forwards, losses, backwards and optimizer steps. Writes
    /// one value per name into `values` (as long as [`TrainStep::names`]). An error
    /// stops training; the step decides what it applied before returning it.
    fn train_step(&mut self, cx: &mut StepCtx<'_>, batch: Batch<'_>, values: &mut [f32]) -> Result<(), TrainError>;

    /// Calls `f` on the state of every model the step trains, always in the same
    /// order: what early stopping saves at the best epoch and, with
    /// [`EarlyStopping::restore_best`], puts back when training ends. The default visits
    /// nothing (so nothing is restored).
    fn visit_state(&mut self, f: &mut dyn FnMut(&mut [f32])) {
        let _ = f;
    }
}

/// A batch of whole samples of the data set, gathered (and shuffled) by the loop.
#[derive(Clone, Copy, Debug)]
pub struct Batch<'a> {
    /// The samples' inputs, one after the other.
    pub inputs: &'a [f32],
    /// The samples' targets, one after the other.
    pub targets: &'a [f32],
    /// The number of samples.
    pub samples: usize,
}

/// What a step gets from the loop besides its batch: the random source and where it
/// is in training.
pub struct StepCtx<'a> {
    rng: &'a mut Rng,
    epoch: usize,
    batch: usize,
}

impl StepCtx<'_> {
    /// The loop's random source (the one that shuffles, seeded by
    /// [`CustomFit::seed`]): for noise, dropout and sampling.
    pub fn rng(&mut self) -> &mut Rng {
        self.rng
    }

    /// The epoch (from 1, counted over all runs of the `CustomFit`).
    pub fn epoch(&self) -> usize {
        self.epoch
    }

    /// The batch within the epoch (from 1).
    pub fn batch(&self) -> usize {
        self.batch
    }
}

/// `fit` around a [`TrainStep`]: epochs of shuffled mini-batches of a [`Dataset`],
/// observers, the [`History`] of the step's values, early stopping. Calling
/// [`CustomFit::run`] again continues the epoch count and the random sequence.
///
/// Unlike [`Fit`](super::Fit) it has no optimizer, loss, metrics or validation of its
/// own: the step owns its networks and optimizers. The history's `"lr"` series is
/// NaN (a step may have several rates). A value that is NaN or infinite stops the run
/// with [`TrainError::NonFiniteLoss`] after that step.
pub struct CustomFit {
    /// Epochs per `run`.
    pub epochs: usize,
    /// Samples per mini-batch.
    pub batch_size: usize,
    /// Whether to shuffle the samples every epoch.
    pub shuffle: bool,
    /// Whether to skip the last batch of an epoch when it is smaller than
    /// `batch_size` (PyTorch's `drop_last`).
    pub drop_last: bool,
    /// Print one line per epoch to standard error (`std` only).
    pub verbose: bool,
    /// Stop when a monitored series (one of the step's names, or `"loss"`) stops
    /// improving.
    pub early_stopping: Option<EarlyStopping>,
    /// Called at every batch and epoch (see [`crate::report`]).
    pub observers: Vec<Box<dyn Observer>>,
    looping: LoopState,
    /// The step's names, its last values and the current epoch's sums.
    names: Vec<&'static str>,
    values: Vec<f32>,
    sums: Vec<(f64, usize)>,
}

impl Default for CustomFit {
    fn default() -> Self {
        Self::new()
    }
}

impl CustomFit {
    /// 10 epochs of batches of 32, shuffled with seed 0, the last smaller batch kept,
    /// quiet.
    pub fn new() -> Self {
        CustomFit {
            epochs: 10,
            batch_size: 32,
            shuffle: true,
            drop_last: false,
            verbose: false,
            early_stopping: None,
            observers: Vec::new(),
            looping: LoopState::new(0),
            names: Vec::new(),
            values: Vec::new(),
            sums: Vec::new(),
        }
    }

    /// Sets the number of epochs.
    pub fn epochs(mut self, epochs: usize) -> Self {
        self.epochs = epochs;
        self
    }

    /// Sets the mini-batch size.
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// Seeds shuffling and the steps' random source ([`StepCtx::rng`]).
    pub fn seed(mut self, seed: u64) -> Self {
        self.looping.rng = Rng::new(seed);
        self
    }

    /// Turns shuffling on or off.
    pub fn shuffle(mut self, shuffle: bool) -> Self {
        self.shuffle = shuffle;
        self
    }

    /// Skips the last batch of every epoch when it is smaller than the batch size.
    pub fn drop_last(mut self, drop_last: bool) -> Self {
        self.drop_last = drop_last;
        self
    }

    /// Prints one line per epoch to standard error.
    pub fn verbose(mut self, verbose: bool) -> Self {
        self.verbose = verbose;
        self
    }

    /// Stops early when a monitored series stops improving.
    pub fn early_stopping(mut self, early: EarlyStopping) -> Self {
        self.early_stopping = Some(early);
        self
    }

    /// Adds an observer, called at every batch and epoch (see [`Observer`]).
    pub fn observe(mut self, observer: impl Observer + 'static) -> Self {
        self.observers.push(Box::new(observer));
        self
    }

    /// Epochs completed by all runs so far.
    pub fn epochs_done(&self) -> usize {
        self.looping.epochs_done
    }

    /// Trains with `step` on `train` for `self.epochs` epochs and returns the history
    /// of the step's values.
    ///
    /// Checks first: the batch size, that the data set has samples, that the step has
    /// at least one name and that early stopping monitors one of them (or `"loss"`).
    pub fn run<S: TrainStep>(&mut self, step: &mut S, train: &Dataset) -> Result<History, TrainError> {
        let mut history = History::default();
        self.run_with(step, train, |_, _| true, &mut history)?;
        Ok(history)
    }

    /// Like [`CustomFit::run`], calling `on_epoch(step, log)` after each epoch (Keras's
    /// `on_epoch_end` with the model at hand: print, draw samples); training stops
    /// early when it returns `false`. Records go into `history`.
    pub fn run_with<S: TrainStep>(
        &mut self,
        step: &mut S,
        train: &Dataset,
        mut on_epoch: impl FnMut(&mut S, &EpochLog) -> bool,
        history: &mut History,
    ) -> Result<(), TrainError> {
        if self.batch_size == 0 {
            return Err(TrainError::BatchSizeZero);
        }
        if train.is_empty() {
            return Err(TrainError::EmptyDataset);
        }
        self.names.clear();
        self.names.extend_from_slice(step.names());
        if self.names.is_empty() {
            let e = SettingError { setting: "TrainStep::names", value: 0.0, expected: "at least one name" };
            return Err(TrainError::InvalidSetting(e));
        }
        if let Some(early) = &self.early_stopping {
            early.check()?;
            if early.monitor != "loss" && !self.names.contains(&early.monitor) {
                let available = core::iter::once("loss").chain(self.names.iter().copied()).map(String::from);
                return Err(TrainError::UnknownMonitor {
                    setting: "early_stopping",
                    name: early.monitor,
                    available: available.collect(),
                });
            }
        }
        self.values.clear();
        self.values.resize(self.names.len(), 0.0);
        let batch = self.batch_size.min(train.len());
        run_epochs(&mut Custom { fit: self, step, on_epoch: &mut on_epoch }, train, batch, history)
    }
}

/// A run of [`CustomFit::run_with`] as the epoch loop sees it.
struct Custom<'a, S, F> {
    fit: &'a mut CustomFit,
    step: &'a mut S,
    on_epoch: &'a mut F,
}

impl<S: TrainStep, F: FnMut(&mut S, &EpochLog) -> bool> EpochSteps for Custom<'_, S, F> {
    fn plan(&self) -> (usize, bool, bool) {
        (self.fit.epochs, self.fit.shuffle, self.fit.drop_last)
    }

    fn state(&mut self) -> &mut LoopState {
        &mut self.fit.looping
    }

    fn observers(&mut self) -> &mut [Box<dyn Observer>] {
        &mut self.fit.observers
    }

    fn begin_epoch(&mut self) {
        self.fit.sums.clear();
        self.fit.sums.resize(self.fit.names.len(), (0.0, 0));
    }

    fn step(&mut self, inputs: &[f32], targets: &[f32], samples: usize) -> Result<f32, TrainError> {
        let fit = &mut *self.fit;
        let (epoch, batch) = fit.looping.position();
        let mut cx = StepCtx { rng: &mut fit.looping.rng, epoch, batch };
        fit.values.fill(0.0);
        self.step.train_step(&mut cx, Batch { inputs, targets, samples }, &mut fit.values)?;
        if let Some(&loss) = fit.values.iter().find(|v| !v.is_finite()) {
            return Err(TrainError::NonFiniteLoss { epoch, batch, loss });
        }
        for (sum, &v) in fit.sums.iter_mut().zip(&fit.values) {
            sum.0 += v as f64;
            sum.1 += 1;
        }
        fit.looping.batches_in_epoch += 1;
        Ok(fit.values[0])
    }

    fn batch_end(&mut self, epoch: usize, batches: usize, mean_loss: f32) {
        let fit = &mut *self.fit;
        if !fit.observers.is_empty() {
            let batch = fit.looping.batches_in_epoch;
            let log = BatchLog::named(epoch, batch, batches, mean_loss, &fit.names, &fit.sums);
            fit.observers.iter_mut().for_each(|o| o.batch_end(&log));
        }
    }

    fn epoch_log(&mut self, loss: f32) -> EpochLog {
        let fit = &*self.fit;
        let metrics = fit.names.iter().zip(&fit.sums).map(|(&n, &(s, c))| (n, (s / c.max(1) as f64) as f32));
        let log = EpochLog {
            epoch: fit.looping.epochs_done,
            loss,
            metrics: metrics.collect(),
            val_loss: None,
            val_metrics: Vec::new(),
            learning_rate: f32::NAN,
        };
        if fit.verbose {
            super::fit::print_epoch(&log);
        }
        log
    }

    fn keep_going(&mut self, log: &EpochLog) -> bool {
        let go_on = (self.on_epoch)(self.step, log);
        let Some(early) = &mut self.fit.early_stopping else { return go_on };
        let mut state = Vec::new();
        if early.restore_best {
            self.step.visit_state(&mut |s| state.extend_from_slice(s));
        }
        early.observe(log, &state) && go_on
    }

    fn finish(&mut self) {
        let Some(early) = &self.fit.early_stopping else { return };
        if early.restore_best && !early.best_state.is_empty() {
            let mut rest = &early.best_state[..];
            self.step.visit_state(&mut |s| {
                let (saved, tail) = rest.split_at(s.len().min(rest.len()));
                s[..saved.len()].copy_from_slice(saved);
                rest = tail;
            });
        }
    }
}
