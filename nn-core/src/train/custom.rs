//! A training step of the caller's own inside `fit`'s loop: Keras's overridden
//! `train_step` (and `test_step`). [`CustomFit`] runs the epochs, the shuffled
//! mini-batches, the observers, the history, validation, the learning-rate schedule,
//! reduce-on-plateau and early stopping, as [`Fit`](super::Fit) does (the same loop,
//! settings and types); a [`TrainStep`] does what one batch needs: several networks,
//! each with its own optimizer ([`Learner`](super::Learner)), gradients passed from
//! one to the other, several losses, and what one validation batch reports.
use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;

use super::callbacks::EarlyStopping;
use super::epochs::{check_callbacks, plateau_rate, run_epochs, scheduled_rate, EpochSteps, LoopState};
use super::history::{EpochLog, History};
use super::schedule::{ReduceOnPlateau, Schedule};
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
/// let history = CustomFit::new().epochs(50).batch_size(2).run(&mut step, &data, None).unwrap();
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

    /// The names of the values [`TrainStep::test_step`] reports, none by default (a
    /// step without validation: [`CustomFit::run`] then refuses validation data).
    fn test_names(&self) -> &[&'static str] {
        &[]
    }

    /// Keras's `test_step`: evaluates `batch` of the validation data (inference, no
    /// update) and writes one value per name of [`TrainStep::test_names`] into
    /// `values`, each the batch's mean. Called after every epoch on the validation
    /// data in order; each name's mean over the samples becomes the history's series
    /// `"val_{name}"`. The default writes nothing.
    fn test_step(&mut self, batch: Batch<'_>, values: &mut [f32]) -> Result<(), TrainError> {
        let _ = (batch, values);
        Ok(())
    }

    /// The learning rate of the step's optimizers (the history's `"lr"`), `None` (the
    /// default) for a step that has none to show or set: then a schedule or
    /// reduce-on-plateau is refused.
    fn learning_rate(&self) -> Option<f32> {
        None
    }

    /// Sets the learning rate of the step's optimizers (those it chooses): called by a
    /// schedule before every step and by reduce-on-plateau after an epoch. The
    /// default does nothing.
    fn set_learning_rate(&mut self, rate: f32) {
        let _ = rate;
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
/// observers, the [`History`] of the step's values, validation by the step's
/// [`TrainStep::test_step`], a learning-rate schedule, reduce-on-plateau and early
/// stopping, as [`Fit`](super::Fit) has them (the same loop and the same types).
/// Calling [`CustomFit::run`] again continues the epoch and step counts and the
/// random sequence.
///
/// Unlike `Fit` it has no optimizer, loss or metrics of its own: the step owns its
/// networks and optimizers, and reports its values by name. What is `Fit`'s is the
/// step's here:
///
/// - the history: the mean of each of [`TrainStep::names`] over the epoch's batches
///   (each batch counts once), the first also as `"loss"`; with validation data, the
///   mean of each of [`TrainStep::test_names`] over the validation samples (each
///   batch weighted by its samples, as [`Model::evaluate`](crate::Model::evaluate)
///   does) as `"val_{name}"`, the first also as `"val_loss"`;
/// - the learning rate: a schedule or reduce-on-plateau sets it with
///   [`TrainStep::set_learning_rate`] and the history's `"lr"` is
///   [`TrainStep::learning_rate`] (NaN when the step has none). A schedule's step
///   count is the number of steps this `CustomFit` ran, over all its runs;
/// - a value that is NaN or infinite, or a model state (what
///   [`TrainStep::visit_state`] visits) that a step made NaN or infinite, stops the
///   run with [`TrainError::NonFiniteLoss`] or [`TrainError::NonFiniteWeights`]
///   naming the epoch and batch, and the visited state is put back as it was before
///   that step, as `Fit` leaves the model (the state of the step's optimizers, which
///   the loop does not see, keeps that step).
///
/// ```
/// use nn_core::prelude::*;
/// use nn_core::train::schedule::Schedule;
/// use nn_core::train::{Batch, CustomFit, Learner, StepCtx, TrainError, TrainStep};
/// network! { pub struct Net: [2] -> [1] { out: Dense { units: 1 } } }
///
/// /// Regression, as `Fit` would train it, with a validation pass of its own.
/// struct Plain(Learner<Net, Sgd>);
///
/// impl TrainStep for Plain {
///     fn names(&self) -> &[&'static str] {
///         &["mse"]
///     }
///
///     fn train_step(&mut self, cx: &mut StepCtx<'_>, batch: Batch<'_>, values: &mut [f32]) -> Result<(), TrainError> {
///         let net = &mut self.0;
///         net.zero_grads();
///         net.forward_train(batch.inputs, cx.rng());
///         values[0] = net.loss(&MeanSquaredError, batch.targets);
///         net.backward(batch.inputs);
///         net.step();
///         Ok(())
///     }
///
///     fn test_names(&self) -> &[&'static str] {
///         &["mse"]
///     }
///
///     fn test_step(&mut self, batch: Batch<'_>, values: &mut [f32]) -> Result<(), TrainError> {
///         let y = self.0.predict(batch.inputs).expect("whole samples");
///         values[0] = MeanSquaredError.compute(&y, batch.targets, 1, None);
///         Ok(())
///     }
///
///     fn learning_rate(&self) -> Option<f32> {
///         Some(self.0.learning_rate())
///     }
///
///     fn set_learning_rate(&mut self, rate: f32) {
///         self.0.set_learning_rate(rate);
///     }
/// }
///
/// let data = Dataset::new(vec![1.0, 2.0, -1.0, 0.5, 0.0, 1.0], 2, vec![1.0, -1.0, 0.5], 1).unwrap();
/// let mut step = Plain(Learner::new(Model::new(1), Sgd::new(0.1)));
/// let mut fit = CustomFit::new().epochs(40).batch_size(2).schedule(Schedule::StepDecay { initial: 0.1, factor: 0.5, every: 20 });
/// let history = fit.run(&mut step, &data, Some(&data)).unwrap();
/// assert_eq!(history.series("val_mse"), history.series("val_loss"));
/// assert_eq!(history.series("lr")[..2], [0.1, 0.1]);
/// assert_eq!(history.series("lr")[39], 0.05);
/// assert!(history.series("val_loss")[39] < history.series("val_loss")[0] / 10.0);
/// ```
pub struct CustomFit {
    /// Epochs per `run`.
    pub epochs: usize,
    /// Samples per mini-batch (and per validation batch).
    pub batch_size: usize,
    /// Whether to shuffle the samples every epoch.
    pub shuffle: bool,
    /// Whether to skip the last batch of an epoch when it is smaller than
    /// `batch_size` (PyTorch's `drop_last`).
    pub drop_last: bool,
    /// Print one line per epoch to standard error (`std` only).
    pub verbose: bool,
    /// The learning-rate schedule (set through [`TrainStep::set_learning_rate`]
    /// before every step).
    pub schedule: Option<Schedule>,
    /// Reduce the rate when a monitored series stops improving.
    pub plateau: Option<ReduceOnPlateau>,
    /// Stop when a monitored series (one of the step's names, `"loss"`, or with
    /// validation data `"val_loss"` and `"val_"` and one of its test names) stops
    /// improving.
    pub early_stopping: Option<EarlyStopping>,
    /// Called at every batch and epoch (see [`crate::report`]).
    pub observers: Vec<Box<dyn Observer>>,
    looping: LoopState,
    /// Steps taken by all runs so far (a schedule's step count).
    steps_done: usize,
    /// The step's names, its last values and the current epoch's sums.
    names: Vec<&'static str>,
    values: Vec<f32>,
    sums: Vec<(f64, usize)>,
    /// The step's test names and the validation values of one batch.
    test_names: Vec<&'static str>,
    test_values: Vec<f32>,
    /// The visited state of before the current step (put back if the step makes a
    /// value or the state NaN or infinite).
    last_state: Vec<f32>,
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
            schedule: None,
            plateau: None,
            early_stopping: None,
            observers: Vec::new(),
            looping: LoopState::new(0),
            steps_done: 0,
            names: Vec::new(),
            values: Vec::new(),
            sums: Vec::new(),
            test_names: Vec::new(),
            test_values: Vec::new(),
            last_state: Vec::new(),
        }
    }

    super::epochs::loop_setters!();

    /// Skips the last batch of every epoch when it is smaller than the batch size.
    pub fn drop_last(mut self, drop_last: bool) -> Self {
        self.drop_last = drop_last;
        self
    }

    /// Trains with `step` on `train` for `self.epochs` epochs, validating on
    /// `validation` after each with [`TrainStep::test_step`], and returns the history
    /// of the step's values.
    ///
    /// Checks first, before any step: the batch size, that the data sets have samples
    /// and that `validation`'s samples are as long as `train`'s, that the step has at
    /// least one name (and one test name with validation data), the settings of the
    /// schedule, reduce-on-plateau and early stopping ([`TrainError::InvalidSetting`]),
    /// that a schedule or reduce-on-plateau has a learning rate to set
    /// ([`TrainStep::learning_rate`]) and that the callbacks monitor a series this
    /// training produces ([`TrainError::UnknownMonitor`]).
    pub fn run<S: TrainStep>(
        &mut self,
        step: &mut S,
        train: &Dataset,
        validation: Option<&Dataset>,
    ) -> Result<History, TrainError> {
        let mut history = History::default();
        self.run_with(step, train, validation, |_, _| true, &mut history)?;
        Ok(history)
    }

    /// Like [`CustomFit::run`], calling `on_epoch(step, log)` after each epoch (Keras's
    /// `on_epoch_end` with the model at hand: print, draw samples); training stops
    /// early when it returns `false`. Records go into `history`.
    pub fn run_with<S: TrainStep>(
        &mut self,
        step: &mut S,
        train: &Dataset,
        validation: Option<&Dataset>,
        mut on_epoch: impl FnMut(&mut S, &EpochLog) -> bool,
        history: &mut History,
    ) -> Result<(), TrainError> {
        self.check(step, train, validation)?;
        self.values.clear();
        self.values.resize(self.names.len(), 0.0);
        self.test_values.clear();
        self.test_values.resize(self.test_names.len(), 0.0);
        let batch = self.batch_size.min(train.len());
        let mut custom = Custom { fit: self, step, validation, batch, on_epoch: &mut on_epoch };
        run_epochs(&mut custom, train, batch, history)
    }

    /// The checks of [`CustomFit::run`]; reads the step's names.
    fn check<S: TrainStep>(
        &mut self,
        step: &S,
        train: &Dataset,
        validation: Option<&Dataset>,
    ) -> Result<(), TrainError> {
        if self.batch_size == 0 {
            return Err(TrainError::BatchSizeZero);
        }
        if train.is_empty() || validation.is_some_and(Dataset::is_empty) {
            return Err(TrainError::EmptyDataset);
        }
        if let Some(v) = validation {
            if v.input_len() != train.input_len() {
                return Err(TrainError::InputWidth { expected: train.input_len(), found: v.input_len() });
            }
            if v.target_len() != train.target_len() {
                return Err(TrainError::TargetWidth { expected: train.target_len(), found: v.target_len() });
            }
        }
        self.names.clear();
        self.names.extend_from_slice(step.names());
        if self.names.is_empty() {
            let e = SettingError { setting: "TrainStep::names", value: 0.0, expected: "at least one name" };
            return Err(TrainError::InvalidSetting(e));
        }
        self.test_names.clear();
        if validation.is_some() {
            self.test_names.extend_from_slice(step.test_names());
            if self.test_names.is_empty() {
                let expected = "at least one name with validation data";
                return Err(TrainError::InvalidSetting(SettingError {
                    setting: "TrainStep::test_names",
                    value: 0.0,
                    expected,
                }));
            }
        }
        if let Some(schedule) = &self.schedule {
            schedule.check()?;
        }
        if (self.schedule.is_some() || self.plateau.is_some()) && step.learning_rate().is_none() {
            let expected = "a rate (`Some`) for a schedule or reduce-on-plateau to set";
            return Err(TrainError::InvalidSetting(SettingError {
                setting: "TrainStep::learning_rate",
                value: f32::NAN,
                expected,
            }));
        }
        let series: Vec<&str> = core::iter::once("loss").chain(self.names.iter().copied()).collect();
        let val_series: Vec<&str> = match validation {
            Some(_) => core::iter::once("loss").chain(self.test_names.iter().copied()).collect(),
            None => Vec::new(),
        };
        check_callbacks(self.plateau.as_ref(), self.early_stopping.as_ref(), &series, &val_series)
    }

    /// The mean of each test value over the samples of `data`, in batches of `batch`.
    fn validate<S: TrainStep>(&mut self, step: &mut S, data: &Dataset, batch: usize) -> Result<Vec<f64>, TrainError> {
        let (in_len, t_len) = (data.input_len(), data.target_len());
        let mut sums = vec![0.0f64; self.test_names.len()];
        let n = data.len();
        let mut start = 0;
        while start < n {
            let m = batch.min(n - start);
            let inputs = &data.inputs()[start * in_len..(start + m) * in_len];
            let targets = &data.targets()[start * t_len..(start + m) * t_len];
            self.test_values.fill(0.0);
            step.test_step(Batch { inputs, targets, samples: m }, &mut self.test_values)?;
            for (sum, &v) in sums.iter_mut().zip(&self.test_values) {
                *sum += v as f64 * m as f64;
            }
            start += m;
        }
        sums.iter_mut().for_each(|s| *s /= n as f64);
        Ok(sums)
    }
}

/// Puts `saved` back into the state `step` visits (what `saved` was taken from).
fn put_back<S: TrainStep>(step: &mut S, saved: &[f32]) {
    let mut rest = saved;
    step.visit_state(&mut |s| {
        let (part, tail) = rest.split_at(s.len().min(rest.len()));
        s[..part.len()].copy_from_slice(part);
        rest = tail;
    });
}

/// A run of [`CustomFit::run_with`] as the epoch loop sees it.
struct Custom<'a, S, F> {
    fit: &'a mut CustomFit,
    step: &'a mut S,
    validation: Option<&'a Dataset>,
    batch: usize,
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
        if let Some(schedule) = &fit.schedule {
            let rate = scheduled_rate(schedule, fit.steps_done, epoch, batch)?;
            self.step.set_learning_rate(rate);
        }
        fit.last_state.clear();
        self.step.visit_state(&mut |s| fit.last_state.extend_from_slice(s));
        let mut cx = StepCtx { rng: &mut fit.looping.rng, epoch, batch };
        fit.values.fill(0.0);
        self.step.train_step(&mut cx, Batch { inputs, targets, samples }, &mut fit.values)?;
        if let Some(&loss) = fit.values.iter().find(|v| !v.is_finite()) {
            put_back(self.step, &fit.last_state);
            return Err(TrainError::NonFiniteLoss { epoch, batch, loss });
        }
        let mut finite = true;
        self.step.visit_state(&mut |s| finite &= s.iter().all(|v| v.is_finite()));
        if !finite {
            put_back(self.step, &fit.last_state);
            return Err(TrainError::NonFiniteWeights { epoch, batch });
        }
        for (sum, &v) in fit.sums.iter_mut().zip(&fit.values) {
            sum.0 += v as f64;
            sum.1 += 1;
        }
        fit.steps_done += 1;
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

    fn epoch_log(&mut self, loss: f32) -> Result<EpochLog, TrainError> {
        let (val_loss, val_metrics) = match self.validation {
            Some(data) => {
                let means = self.fit.validate(self.step, data, self.batch)?;
                let metrics: Vec<(&'static str, f32)> =
                    self.fit.test_names.iter().zip(&means).map(|(&n, &v)| (n, v as f32)).collect();
                (Some(metrics[0].1), metrics)
            }
            None => (None, Vec::new()),
        };
        let fit = &mut *self.fit;
        let metrics = fit.names.iter().zip(&fit.sums).map(|(&n, &(s, c))| (n, (s / c.max(1) as f64) as f32));
        let log = EpochLog {
            epoch: fit.looping.epochs_done,
            loss,
            metrics: metrics.collect(),
            val_loss,
            val_metrics,
            learning_rate: self.step.learning_rate().unwrap_or(f32::NAN),
        };
        if fit.verbose {
            super::fit::print_epoch(&log);
        }
        if let Some(rate) = self.step.learning_rate() {
            if let Some(rate) = plateau_rate(fit.plateau.as_mut(), &log, rate) {
                self.step.set_learning_rate(rate);
            }
        }
        Ok(log)
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
            put_back(self.step, &early.best_state);
        }
    }
}
