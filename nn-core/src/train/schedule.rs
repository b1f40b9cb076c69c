//! Learning-rate schedules.
//!
//! A schedule gives the learning rate of each optimizer step from the step count and
//! the epoch. Formulas (`lr0`: initial rate, `t`: step from 0, `e`: epoch from 0):
//!
//! | schedule | rate |
//! |---|---|
//! | [`Schedule::Constant`] | `lr0` |
//! | [`Schedule::StepDecay`] | `lr0 * factor^floor(e / every)` |
//! | [`Schedule::Exponential`] | `lr0 * rate^(t / steps)` |
//! | [`Schedule::InverseTime`] | `lr0 / (1 + rate * t / steps)` |
//! | [`Schedule::Cosine`] | linear warm-up `lr0 * (t + 1) / warmup` for `t < warmup`, then `min + (lr0 - min) (1 + cos(pi p)) / 2` with `p = (t - warmup) / (total - warmup)` |
//!
//! Reduce-on-plateau depends on a monitored metric rather than the step: see
//! [`ReduceOnPlateau`].

use crate::optim::SettingError;

/// A learning rate as a function of the step (and epoch).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Schedule {
    /// A fixed rate.
    Constant(f32),
    /// Multiply by `factor` every `every` epochs.
    StepDecay {
        /// The initial rate.
        initial: f32,
        /// The factor (e.g. 0.5).
        factor: f32,
        /// Epochs between drops.
        every: usize,
    },
    /// Exponential decay: `initial * rate^(step / steps)`.
    Exponential {
        /// The initial rate.
        initial: f32,
        /// The decay rate per `steps`.
        rate: f32,
        /// The decay period in steps.
        steps: usize,
    },
    /// Inverse-time decay: `initial / (1 + rate * step / steps)`.
    InverseTime {
        /// The initial rate.
        initial: f32,
        /// The decay rate.
        rate: f32,
        /// The decay period in steps.
        steps: usize,
    },
    /// Cosine decay to `min` over `total` steps after `warmup` steps of linear warm-up.
    Cosine {
        /// The peak rate.
        initial: f32,
        /// The final rate.
        min: f32,
        /// Warm-up steps.
        warmup: usize,
        /// Total steps (warm-up included).
        total: usize,
    },
}

impl Schedule {
    /// Checks the settings: rates and factors finite and at least 0.
    pub fn check(&self) -> Result<(), SettingError> {
        match *self {
            Schedule::Constant(lr) => SettingError::non_negative("Schedule::Constant", lr),
            Schedule::StepDecay { initial, factor, .. } => {
                SettingError::non_negative("Schedule::StepDecay.initial", initial)?;
                SettingError::non_negative("Schedule::StepDecay.factor", factor)
            }
            Schedule::Exponential { initial, rate, .. } => {
                SettingError::non_negative("Schedule::Exponential.initial", initial)?;
                SettingError::non_negative("Schedule::Exponential.rate", rate)
            }
            Schedule::InverseTime { initial, rate, .. } => {
                SettingError::non_negative("Schedule::InverseTime.initial", initial)?;
                SettingError::non_negative("Schedule::InverseTime.rate", rate)
            }
            Schedule::Cosine { initial, min, .. } => {
                SettingError::non_negative("Schedule::Cosine.initial", initial)?;
                SettingError::non_negative("Schedule::Cosine.min", min)
            }
        }
    }

    /// The rate for optimizer step `step` (from 0) in epoch `epoch` (from 0).
    pub fn rate(&self, step: usize, epoch: usize) -> f32 {
        match *self {
            Schedule::Constant(lr) => lr,
            Schedule::StepDecay { initial, factor, every } => {
                initial * libm::powf(factor, (epoch / every.max(1)) as f32)
            }
            Schedule::Exponential { initial, rate, steps } => {
                initial * libm::powf(rate, step as f32 / steps.max(1) as f32)
            }
            Schedule::InverseTime { initial, rate, steps } => {
                initial / (1.0 + rate * step as f32 / steps.max(1) as f32)
            }
            Schedule::Cosine { initial, min, warmup, total } => {
                if step < warmup {
                    initial * (step + 1) as f32 / warmup as f32
                } else {
                    let span = total.saturating_sub(warmup).max(1);
                    let p = ((step - warmup) as f32 / span as f32).min(1.0);
                    min + (initial - min) * 0.5 * (1.0 + libm::cosf(core::f32::consts::PI * p))
                }
            }
        }
    }
}

/// Whether a monitored value improves by going down (a loss) or up (an accuracy).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Lower is better.
    Min,
    /// Higher is better.
    Max,
}

impl Mode {
    /// Whether `value` improves on `best` by more than `min_delta`.
    pub fn improves(self, value: f32, best: f32, min_delta: f32) -> bool {
        match self {
            Mode::Min => value < best - min_delta,
            Mode::Max => value > best + min_delta,
        }
    }

    /// The worst possible value.
    pub fn worst(self) -> f32 {
        match self {
            Mode::Min => f32::INFINITY,
            Mode::Max => f32::NEG_INFINITY,
        }
    }
}

/// Multiplies the learning rate by `factor` when the monitored value has not improved
/// for `patience` epochs (Keras' `ReduceLROnPlateau`).
#[derive(Clone, Debug, PartialEq)]
pub struct ReduceOnPlateau {
    /// The monitored series (`"val_loss"`, `"loss"`, `"val_accuracy"`...).
    pub monitor: &'static str,
    /// Min or max.
    pub mode: Mode,
    /// The factor applied to the rate (e.g. 0.5).
    pub factor: f32,
    /// Epochs without improvement before reducing.
    pub patience: usize,
    /// The smallest change that counts as an improvement.
    pub min_delta: f32,
    /// The rate is never reduced below this.
    pub min_lr: f32,
    best: f32,
    wait: usize,
}

impl ReduceOnPlateau {
    /// Reduce by `factor` after `patience` epochs without improvement of `monitor`.
    pub fn new(monitor: &'static str, mode: Mode, factor: f32, patience: usize) -> Self {
        ReduceOnPlateau { monitor, mode, factor, patience, min_delta: 1e-4, min_lr: 0.0, best: mode.worst(), wait: 0 }
    }

    /// Checks the settings: `factor` in `[0, 1)`, `min_delta` and `min_lr` finite
    /// and at least 0.
    pub fn check(&self) -> Result<(), SettingError> {
        SettingError::below_one("ReduceOnPlateau.factor", self.factor)?;
        SettingError::non_negative("ReduceOnPlateau.min_delta", self.min_delta)?;
        SettingError::non_negative("ReduceOnPlateau.min_lr", self.min_lr)
    }

    /// Feeds one epoch's value; returns the new rate given the current one.
    pub fn update(&mut self, value: f32, lr: f32) -> f32 {
        if self.mode.improves(value, self.best, self.min_delta) {
            self.best = value;
            self.wait = 0;
            lr
        } else {
            self.wait += 1;
            if self.wait >= self.patience {
                self.wait = 0;
                (lr * self.factor).max(self.min_lr)
            } else {
                lr
            }
        }
    }
}
