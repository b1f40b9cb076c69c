//! Early stopping: stop when a monitored value stops improving, and restore the
//! weights of the best epoch.
use alloc::vec::Vec;

use super::history::EpochLog;
use super::schedule::Mode;
use crate::optim::SettingError;

/// Keras' `EarlyStopping`: stop after `patience` epochs without an improvement larger
/// than `min_delta` of `monitor`; with `restore_best`, the model ends with the exact
/// parameters and buffers of the best epoch.
#[derive(Clone, Debug, PartialEq)]
pub struct EarlyStopping {
    /// The monitored series (`"val_loss"`, `"val_accuracy"`, `"loss"`...).
    pub monitor: &'static str,
    /// Min (a loss) or max (an accuracy).
    pub mode: Mode,
    /// Epochs without improvement tolerated.
    pub patience: usize,
    /// The smallest change that counts as an improvement.
    pub min_delta: f32,
    /// Restore the best epoch's weights when training ends.
    pub restore_best: bool,
    pub(crate) best: f32,
    pub(crate) best_epoch: usize,
    pub(crate) wait: usize,
    pub(crate) best_state: Vec<f32>,
}

impl EarlyStopping {
    /// Stop when `monitor` has not improved for `patience` epochs, restoring the best
    /// weights.
    pub fn new(monitor: &'static str, mode: Mode, patience: usize) -> Self {
        EarlyStopping {
            monitor,
            mode,
            patience,
            min_delta: 0.0,
            restore_best: true,
            best: mode.worst(),
            best_epoch: 0,
            wait: 0,
            best_state: Vec::new(),
        }
    }

    /// Sets the minimum improvement.
    pub fn min_delta(mut self, min_delta: f32) -> Self {
        self.min_delta = min_delta;
        self
    }

    /// Whether to restore the best weights at the end.
    pub fn restore_best(mut self, restore: bool) -> Self {
        self.restore_best = restore;
        self
    }

    /// Checks `min_delta`: finite and at least 0. (The monitored name is checked by
    /// `Fit::run`, which knows the series training produces.)
    pub fn check(&self) -> Result<(), SettingError> {
        SettingError::non_negative("EarlyStopping.min_delta", self.min_delta)
    }

    /// The epoch (from 1) with the best monitored value so far.
    pub fn best_epoch(&self) -> usize {
        self.best_epoch
    }

    /// The best monitored value so far.
    pub fn best_value(&self) -> f32 {
        self.best
    }

    /// Records an epoch; returns whether training should continue.
    pub(crate) fn observe(&mut self, log: &EpochLog, state: &[f32]) -> bool {
        let value = monitored(log, self.monitor).unwrap_or(f32::NAN);
        if value.is_finite() && self.mode.improves(value, self.best, self.min_delta) {
            self.best = value;
            self.best_epoch = log.epoch;
            self.wait = 0;
            if self.restore_best {
                self.best_state.clear();
                self.best_state.extend_from_slice(state);
            }
            true
        } else {
            self.wait += 1;
            self.wait < self.patience
        }
    }
}

/// The value of a named series in one epoch's record.
pub fn monitored(log: &EpochLog, name: &str) -> Option<f32> {
    match name {
        "loss" => Some(log.loss),
        "val_loss" => log.val_loss,
        _ => match name.strip_prefix("val_") {
            Some(m) => log.val_metrics.iter().find(|(n, _)| *n == m).map(|(_, v)| *v),
            None => log.metrics.iter().find(|(n, _)| *n == name).map(|(_, v)| *v),
        },
    }
}
