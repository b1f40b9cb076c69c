//! The epoch loop that [`Fit::run`](super::Fit::run) and
//! [`CustomFit::run`](super::CustomFit::run) share: epochs of shuffled mini-batches
//! gathered from a data set, one step per batch, observers, the history and early
//! stopping. What a step does, and what an epoch reports, is the caller's
//! ([`EpochSteps`]). Also what both check and apply around it: the builder methods
//! of the settings they share ([`loop_setters`]), the learning-rate schedule of a step
//! ([`scheduled_rate`]) and the monitored names of the callbacks
//! ([`check_callbacks`]).
use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::callbacks::EarlyStopping;
use super::history::{EpochLog, History};
use super::schedule::{ReduceOnPlateau, Schedule};
use super::{Dataset, TrainError};
use crate::report::Observer;
use crate::rng::Rng;

/// The builder methods of the settings that [`Fit`](super::Fit) and
/// [`CustomFit`](super::CustomFit) share, written once for both (inside an `impl`
/// of a type with the fields `epochs`, `batch_size`, `shuffle`, `verbose`,
/// `schedule`, `plateau`, `early_stopping`, `observers` and `looping`).
macro_rules! loop_setters {
    () => {
        /// Sets the number of epochs per run.
        pub fn epochs(mut self, epochs: usize) -> Self {
            self.epochs = epochs;
            self
        }

        /// Sets the mini-batch size.
        pub fn batch_size(mut self, batch_size: usize) -> Self {
            self.batch_size = batch_size;
            self
        }

        /// Seeds shuffling and the random source of the steps (dropout, noise; a
        /// custom step's [`StepCtx::rng`](crate::train::StepCtx::rng)).
        pub fn seed(mut self, seed: u64) -> Self {
            self.looping.rng = crate::rng::Rng::new(seed);
            self
        }

        /// Turns shuffling on or off.
        pub fn shuffle(mut self, shuffle: bool) -> Self {
            self.shuffle = shuffle;
            self
        }

        /// Prints one line per epoch to standard error.
        pub fn verbose(mut self, verbose: bool) -> Self {
            self.verbose = verbose;
            self
        }

        /// Sets a learning-rate schedule: the rate of every step, from the number of
        /// steps before it and its epoch (see [`Schedule`](crate::train::schedule::Schedule)).
        pub fn schedule(mut self, schedule: crate::train::schedule::Schedule) -> Self {
            self.schedule = Some(schedule);
            self
        }

        /// Reduces the learning rate on a plateau of a monitored value.
        pub fn reduce_on_plateau(mut self, plateau: crate::train::schedule::ReduceOnPlateau) -> Self {
            self.plateau = Some(plateau);
            self
        }

        /// Stops early when a monitored value stops improving.
        pub fn early_stopping(mut self, early: crate::train::EarlyStopping) -> Self {
            self.early_stopping = Some(early);
            self
        }

        /// Adds an observer, called at every batch and epoch (see
        /// [`Observer`](crate::report::Observer)).
        pub fn observe(mut self, observer: impl crate::report::Observer + 'static) -> Self {
            self.observers.push(alloc::boxed::Box::new(observer));
            self
        }

        /// With `true`, draws a progress bar per epoch on standard error with the
        /// running loss and metrics, then a line per finished epoch (feature
        /// `progress`; nothing is drawn when standard error is not a terminal).
        /// Without the feature, prints one line per epoch as `verbose`. With `false`,
        /// changes nothing.
        pub fn progress(self, on: bool) -> Self {
            if !on {
                return self;
            }
            #[cfg(feature = "progress")]
            return self.observe(crate::report::EpochProgress::stderr());
            #[cfg(not(feature = "progress"))]
            self.verbose(true)
        }

        /// Writes the training and validation curves as a PNG at `path` when a run
        /// ends (feature `plot`; see [`crate::report::plot_history`]).
        #[cfg(feature = "plot")]
        pub fn plot_to(self, path: impl Into<std::path::PathBuf>) -> Self {
            self.observe(crate::report::PlotOnEnd::new(path))
        }

        /// The early-stopping state after a run (best epoch, best value).
        pub fn early_stopping_state(&self) -> Option<&crate::train::EarlyStopping> {
            self.early_stopping.as_ref()
        }

        /// Epochs completed by all runs so far.
        pub fn epochs_done(&self) -> usize {
            self.looping.epochs_done
        }
    };
}
pub(crate) use loop_setters;

/// The rate `schedule` gives the step of epoch `epoch` and batch `batch` (both
/// counted from 1) after `steps` steps, or [`TrainError::ScheduledRate`] if it is
/// NaN, infinite or negative (the step is then not taken).
pub(crate) fn scheduled_rate(schedule: &Schedule, steps: usize, epoch: usize, batch: usize) -> Result<f32, TrainError> {
    let rate = schedule.rate(steps, epoch - 1);
    if rate.is_finite() && rate >= 0.0 {
        Ok(rate)
    } else {
        Err(TrainError::ScheduledRate { epoch, batch, rate })
    }
}

/// Checks the settings of reduce-on-plateau and early stopping and that each monitors
/// a series training produces: one of `series`, or `val_` and one of `validation`
/// (the validation series, none without validation data).
pub(crate) fn check_callbacks(
    plateau: Option<&ReduceOnPlateau>,
    early: Option<&EarlyStopping>,
    series: &[&str],
    validation: &[&str],
) -> Result<(), TrainError> {
    let known = |name: &str| match name.strip_prefix("val_") {
        Some(m) => validation.contains(&m),
        None => series.contains(&name),
    };
    let unknown = |setting: &'static str, name: &'static str| {
        let train = series.iter().map(|n| String::from(*n));
        let available = train.chain(validation.iter().map(|n| format!("val_{n}"))).collect();
        TrainError::UnknownMonitor { setting, name, available }
    };
    if let Some(plateau) = plateau {
        plateau.check()?;
        if !known(plateau.monitor) {
            return Err(unknown("reduce_on_plateau", plateau.monitor));
        }
    }
    if let Some(early) = early {
        early.check()?;
        if !known(early.monitor) {
            return Err(unknown("early_stopping", early.monitor));
        }
    }
    Ok(())
}

/// After an epoch's record: reduce-on-plateau's new rate from the current `rate`, when
/// the monitored series is in the record.
pub(crate) fn plateau_rate(plateau: Option<&mut ReduceOnPlateau>, log: &EpochLog, rate: f32) -> Option<f32> {
    let plateau = plateau?;
    let value = super::callbacks::monitored(log, plateau.monitor)?;
    Some(plateau.update(value, rate))
}

/// The state a loop keeps between steps and runs: the random source (shuffling, and
/// the steps' dropout and noise), the epochs and batches done, and the gathered batch.
pub(crate) struct LoopState {
    pub(crate) rng: Rng,
    /// Epochs completed by all runs so far.
    pub(crate) epochs_done: usize,
    /// Batches stepped in the current epoch.
    pub(crate) batches_in_epoch: usize,
    inputs: Vec<f32>,
    targets: Vec<f32>,
}

impl LoopState {
    pub(crate) fn new(seed: u64) -> Self {
        LoopState { rng: Rng::new(seed), epochs_done: 0, batches_in_epoch: 0, inputs: Vec::new(), targets: Vec::new() }
    }

    /// The epoch and batch (both from 1) of the next step.
    pub(crate) fn position(&self) -> (usize, usize) {
        (self.epochs_done + 1, self.batches_in_epoch + 1)
    }
}

/// What runs inside the loop: the step of a batch and the reports around it.
pub(crate) trait EpochSteps {
    /// Epochs of this run, whether to shuffle, and whether to skip a last batch
    /// smaller than the others.
    fn plan(&self) -> (usize, bool, bool);
    /// The loop's state.
    fn state(&mut self) -> &mut LoopState;
    /// The observers called at every batch and epoch.
    fn observers(&mut self) -> &mut [Box<dyn Observer>];
    /// Before the first batch of an epoch: clears the epoch's sums.
    fn begin_epoch(&mut self);
    /// One step on a batch of `samples` whole samples; returns the batch's loss and
    /// counts the batch in `state().batches_in_epoch`.
    fn step(&mut self, inputs: &[f32], targets: &[f32], samples: usize) -> Result<f32, TrainError>;
    /// After a step: the observers' `batch_end` with the epoch's running means.
    fn batch_end(&mut self, epoch: usize, batches: usize, mean_loss: f32);
    /// The record of the epoch just trained (validation included), with its printing
    /// and reduce-on-plateau.
    fn epoch_log(&mut self, loss: f32) -> Result<EpochLog, TrainError>;
    /// After the record: the caller's callback and early stopping. Whether to go on.
    fn keep_going(&mut self, log: &EpochLog) -> bool;
    /// After the last epoch (or an early stop): the best weights restored.
    fn finish(&mut self);
}

/// Trains `steps` for its epochs over batches of `batch` samples of `train`,
/// recording every epoch in `history`.
pub(crate) fn run_epochs<S: EpochSteps>(
    steps: &mut S,
    train: &Dataset,
    batch: usize,
    history: &mut History,
) -> Result<(), TrainError> {
    let mut order: Vec<usize> = (0..train.len()).collect();
    let (epochs, ..) = steps.plan();
    let last_epoch = steps.state().epochs_done + epochs;
    for _ in 0..epochs {
        let loss = train_epoch(steps, train, &mut order, batch, last_epoch)?;
        let log = steps.epoch_log(loss)?;
        let go_on = steps.keep_going(&log);
        history.epochs.push(log);
        steps.observers().iter_mut().for_each(|o| o.epoch_end(history));
        if !go_on {
            break;
        }
    }
    steps.finish();
    steps.observers().iter_mut().for_each(|o| o.train_end(history));
    Ok(())
}

/// One epoch of (shuffled) batches of `train`; returns the mean loss.
fn train_epoch<S: EpochSteps>(
    steps: &mut S,
    train: &Dataset,
    order: &mut [usize],
    batch: usize,
    last_epoch: usize,
) -> Result<f32, TrainError> {
    let (_, shuffle, drop_last) = steps.plan();
    let state = steps.state();
    let epoch = state.epochs_done + 1;
    if shuffle {
        state.rng.shuffle(order);
    }
    state.batches_in_epoch = 0;
    let (mut xb, mut tb) = (core::mem::take(&mut state.inputs), core::mem::take(&mut state.targets));
    let n_batches = if drop_last { order.len() / batch } else { order.len().div_ceil(batch) };
    steps.observers().iter_mut().for_each(|o| o.epoch_start(epoch, last_epoch, n_batches));
    steps.begin_epoch();
    let (in_len, t_len) = (train.input_len(), train.target_len());
    let mut loss_sum = 0.0f64;
    let mut result = Ok(());
    for chunk in order.chunks(batch).take(n_batches) {
        xb.clear();
        tb.clear();
        for &i in chunk {
            xb.extend_from_slice(train.input(i));
            tb.extend_from_slice(train.target(i));
        }
        match steps.step(&xb[..chunk.len() * in_len], &tb[..chunk.len() * t_len], chunk.len()) {
            Ok(loss) => loss_sum += loss as f64,
            Err(e) => {
                result = Err(e);
                break;
            }
        }
        let done = steps.state().batches_in_epoch;
        steps.batch_end(epoch, n_batches, (loss_sum / done as f64) as f32);
    }
    let state = steps.state();
    (state.inputs, state.targets) = (xb, tb);
    result?;
    state.epochs_done += 1;
    Ok((loss_sum / state.batches_in_epoch.max(1) as f64) as f32)
}
