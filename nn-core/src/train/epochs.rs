//! The epoch loop that [`Fit::run`](super::Fit::run) and
//! [`CustomFit::run`](super::CustomFit::run) share: epochs of shuffled mini-batches
//! gathered from a data set, one step per batch, observers, the history and early
//! stopping. What a step does, and what an epoch reports, is the caller's
//! ([`EpochSteps`]).
use alloc::boxed::Box;
use alloc::vec::Vec;

use super::history::{EpochLog, History};
use super::{Dataset, TrainError};
use crate::report::Observer;
use crate::rng::Rng;

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
    /// The record of the epoch just trained (validation included), with its printing.
    fn epoch_log(&mut self, loss: f32) -> EpochLog;
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
        let log = steps.epoch_log(loss);
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
