//! Optimizers, with PyTorch's update rules (so fixtures match `torch.optim`).
//!
//! An optimizer is a small settings value; its per-parameter state (velocities,
//! moment estimates) is a flat slice of `STATE_PER_PARAM * params` floats owned by the
//! caller, so training works without a heap (`no_std` firmware gives a `static` array)
//! and checkpoints can save it.
//!
//! | optimizer | update (g: gradient, lr: learning rate) |
//! |---|---|
//! | [`Sgd`] | `p -= lr g`; momentum `v = mu v + g`, `p -= lr v`; Nesterov `p -= lr (g + mu v)` |
//! | [`AdaGrad`] | `s += g^2`, `p -= lr g / (sqrt(s) + eps)` |
//! | [`RmsProp`] | `s = a s + (1 - a) g^2`, `p -= lr g / (sqrt(s) + eps)` |
//! | [`Adam`] | `m = b1 m + (1 - b1) g`, `v = b2 v + (1 - b2) g^2`, `p -= lr m^ / (sqrt(v^) + eps)` |
//! | [`AdamW`] | Adam, after the decoupled decay `p -= lr wd p` |
//!
//! [`Optimizer::check`] says whether the settings can train (a finite learning rate
//! `>= 0`, Adam's betas in `[0, 1)`, `eps > 0`, ...); `Fit::run` calls it before the
//! first step and returns a [`SettingError`] naming the setting.

use core::fmt;

use crate::kernels;
use crate::kernels::optim::AdamStep;

/// A training setting with a value it cannot train with: a NaN learning rate, Adam's
/// `beta1` of 1, a negative penalty. [`Fit::run`](crate::train::Fit::run) checks every
/// setting before the first step and returns this (inside
/// [`TrainError::InvalidSetting`](crate::train::TrainError::InvalidSetting)).
///
/// ```
/// use nn_core::optim::{Adam, Optimizer, SettingError};
/// let err = Adam { beta1: 1.0, ..Adam::new(1e-3) }.check().unwrap_err();
/// assert_eq!(err, SettingError { setting: "Adam.beta1", value: 1.0, expected: "a number in [0, 1)" });
/// assert_eq!(err.to_string(), "Adam.beta1 is 1, expected a number in [0, 1)");
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SettingError {
    /// The setting (`"Adam.lr"`, `"validation_split"`, `"Penalty.l2"`).
    pub setting: &'static str,
    /// The value found.
    pub value: f32,
    /// What the setting accepts.
    pub expected: &'static str,
}

impl fmt::Display for SettingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is {}, expected {}", self.setting, self.value, self.expected)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for SettingError {}

impl SettingError {
    /// `Ok` if `value` is finite and at least 0.
    pub fn non_negative(setting: &'static str, value: f32) -> Result<(), SettingError> {
        Self::require(value.is_finite() && value >= 0.0, setting, value, "a finite number >= 0")
    }

    /// `Ok` if `value` is finite and above 0.
    pub fn positive(setting: &'static str, value: f32) -> Result<(), SettingError> {
        Self::require(value.is_finite() && value > 0.0, setting, value, "a finite number > 0")
    }

    /// `Ok` if `0 <= value < 1`.
    pub fn below_one(setting: &'static str, value: f32) -> Result<(), SettingError> {
        Self::require((0.0..1.0).contains(&value), setting, value, "a number in [0, 1)")
    }

    /// `Ok` if `0 <= value <= 1`.
    pub fn share(setting: &'static str, value: f32) -> Result<(), SettingError> {
        Self::require((0.0..=1.0).contains(&value), setting, value, "a number in [0, 1]")
    }

    fn require(ok: bool, setting: &'static str, value: f32, expected: &'static str) -> Result<(), SettingError> {
        if ok {
            Ok(())
        } else {
            Err(SettingError { setting, value, expected })
        }
    }
}

/// An optimizer: updates parameters from their gradients.
pub trait Optimizer {
    /// Floats of state per parameter.
    const STATE_PER_PARAM: usize;

    /// The current learning rate.
    fn learning_rate(&self) -> f32;

    /// Sets the learning rate (schedules call this between steps).
    fn set_learning_rate(&mut self, lr: f32);

    /// One update. `step` counts from 1; `state` holds
    /// `STATE_PER_PARAM * params.len()` floats, zero before the first step.
    fn update(&self, step: u64, params: &mut [f32], grads: &[f32], state: &mut [f32]);

    /// Checks the settings: `Err` names the first one training cannot use. By
    /// default, the learning rate must be finite and at least 0.
    fn check(&self) -> Result<(), SettingError> {
        SettingError::non_negative("learning rate", self.learning_rate())
    }
}

/// Stochastic gradient descent, with optional momentum and Nesterov momentum. With the
/// whole data set as one batch it is plain gradient descent.
#[derive(Clone, Copy, Debug)]
pub struct Sgd {
    /// The learning rate.
    pub lr: f32,
    /// The momentum factor (0: none).
    pub momentum: f32,
    /// Nesterov's look-ahead form of momentum.
    pub nesterov: bool,
}

impl Sgd {
    /// Plain SGD.
    pub const fn new(lr: f32) -> Self {
        Sgd { lr, momentum: 0.0, nesterov: false }
    }
    /// SGD with momentum.
    pub const fn momentum(lr: f32, momentum: f32) -> Self {
        Sgd { lr, momentum, nesterov: false }
    }
    /// SGD with Nesterov momentum.
    pub const fn nesterov(lr: f32, momentum: f32) -> Self {
        Sgd { lr, momentum, nesterov: true }
    }
}

impl Optimizer for Sgd {
    const STATE_PER_PARAM: usize = 1;
    fn learning_rate(&self) -> f32 {
        self.lr
    }
    fn set_learning_rate(&mut self, lr: f32) {
        self.lr = lr;
    }
    fn check(&self) -> Result<(), SettingError> {
        SettingError::non_negative("Sgd.lr", self.lr)?;
        SettingError::non_negative("Sgd.momentum", self.momentum)
    }
    fn update(&self, step: u64, params: &mut [f32], grads: &[f32], state: &mut [f32]) {
        if self.momentum == 0.0 {
            for (p, &g) in params.iter_mut().zip(grads) {
                *p -= self.lr * g;
            }
            return;
        }
        for ((p, &g), v) in params.iter_mut().zip(grads).zip(state.iter_mut()) {
            // PyTorch: the first step sets the buffer to the gradient.
            *v = if step == 1 { g } else { self.momentum * *v + g };
            let d = if self.nesterov { g + self.momentum * *v } else { *v };
            *p -= self.lr * d;
        }
    }
}

/// AdaGrad: per-parameter rates shrinking with the sum of squared gradients.
#[derive(Clone, Copy, Debug)]
pub struct AdaGrad {
    /// The learning rate.
    pub lr: f32,
    /// Added to the denominator (PyTorch default 1e-10).
    pub eps: f32,
}

impl AdaGrad {
    /// AdaGrad with PyTorch's epsilon.
    pub const fn new(lr: f32) -> Self {
        AdaGrad { lr, eps: 1e-10 }
    }
}

impl Optimizer for AdaGrad {
    const STATE_PER_PARAM: usize = 1;
    fn learning_rate(&self) -> f32 {
        self.lr
    }
    fn set_learning_rate(&mut self, lr: f32) {
        self.lr = lr;
    }
    fn check(&self) -> Result<(), SettingError> {
        SettingError::non_negative("AdaGrad.lr", self.lr)?;
        SettingError::positive("AdaGrad.eps", self.eps)
    }
    fn update(&self, _step: u64, params: &mut [f32], grads: &[f32], state: &mut [f32]) {
        for ((p, &g), s) in params.iter_mut().zip(grads).zip(state.iter_mut()) {
            *s += g * g;
            *p -= self.lr * g / (libm::sqrtf(*s) + self.eps);
        }
    }
}

/// RMSProp: rates scaled by a running mean of squared gradients.
#[derive(Clone, Copy, Debug)]
pub struct RmsProp {
    /// The learning rate.
    pub lr: f32,
    /// The smoothing constant (PyTorch's `alpha`, default 0.99).
    pub alpha: f32,
    /// Added to the denominator (default 1e-8).
    pub eps: f32,
}

impl RmsProp {
    /// RMSProp with PyTorch's defaults.
    pub const fn new(lr: f32) -> Self {
        RmsProp { lr, alpha: 0.99, eps: 1e-8 }
    }
}

impl Optimizer for RmsProp {
    const STATE_PER_PARAM: usize = 1;
    fn learning_rate(&self) -> f32 {
        self.lr
    }
    fn set_learning_rate(&mut self, lr: f32) {
        self.lr = lr;
    }
    fn check(&self) -> Result<(), SettingError> {
        SettingError::non_negative("RmsProp.lr", self.lr)?;
        SettingError::share("RmsProp.alpha", self.alpha)?;
        SettingError::positive("RmsProp.eps", self.eps)
    }
    fn update(&self, _step: u64, params: &mut [f32], grads: &[f32], state: &mut [f32]) {
        for ((p, &g), s) in params.iter_mut().zip(grads).zip(state.iter_mut()) {
            *s = self.alpha * *s + (1.0 - self.alpha) * g * g;
            *p -= self.lr * g / (libm::sqrtf(*s) + self.eps);
        }
    }
}

/// Adam: bias-corrected first and second moment estimates.
#[derive(Clone, Copy, Debug)]
pub struct Adam {
    /// The learning rate (default 1e-3).
    pub lr: f32,
    /// Decay of the first moment (default 0.9).
    pub beta1: f32,
    /// Decay of the second moment (default 0.999).
    pub beta2: f32,
    /// Added to the denominator (default 1e-8).
    pub eps: f32,
}

impl Adam {
    /// Adam with the usual defaults and the given learning rate.
    pub const fn new(lr: f32) -> Self {
        Adam { lr, beta1: 0.9, beta2: 0.999, eps: 1e-8 }
    }
}

impl Default for Adam {
    fn default() -> Self {
        Adam::new(1e-3)
    }
}

fn adam_update(adam: &Adam, step: u64, params: &mut [f32], grads: &[f32], state: &mut [f32]) {
    let (m, v) = state.split_at_mut(params.len());
    let t = step.max(1) as i32;
    let bc1 = 1.0 - libm::powf(adam.beta1, t as f32);
    let bc2 = 1.0 - libm::powf(adam.beta2, t as f32);
    let step_size = adam.lr / bc1;
    let bc2_sqrt = libm::sqrtf(bc2);
    let kernel_step = AdamStep { beta1: adam.beta1, beta2: adam.beta2, step_size, bc2_sqrt, eps: adam.eps };
    kernels::optim::adam(&kernel_step, params, grads, m, v);
}

impl Optimizer for Adam {
    const STATE_PER_PARAM: usize = 2;
    fn learning_rate(&self) -> f32 {
        self.lr
    }
    fn set_learning_rate(&mut self, lr: f32) {
        self.lr = lr;
    }
    fn check(&self) -> Result<(), SettingError> {
        SettingError::non_negative("Adam.lr", self.lr)?;
        SettingError::below_one("Adam.beta1", self.beta1)?;
        SettingError::below_one("Adam.beta2", self.beta2)?;
        SettingError::positive("Adam.eps", self.eps)
    }
    fn update(&self, step: u64, params: &mut [f32], grads: &[f32], state: &mut [f32]) {
        adam_update(self, step, params, grads, state)
    }
}

/// AdamW: Adam with decoupled weight decay (`torch.optim.AdamW`).
#[derive(Clone, Copy, Debug)]
pub struct AdamW {
    /// The Adam settings.
    pub adam: Adam,
    /// The decoupled decay factor (PyTorch default 0.01).
    pub weight_decay: f32,
}

impl AdamW {
    /// AdamW with the given learning rate and decay.
    pub const fn new(lr: f32, weight_decay: f32) -> Self {
        AdamW { adam: Adam::new(lr), weight_decay }
    }
}

impl Optimizer for AdamW {
    const STATE_PER_PARAM: usize = 2;
    fn learning_rate(&self) -> f32 {
        self.adam.lr
    }
    fn set_learning_rate(&mut self, lr: f32) {
        self.adam.lr = lr;
    }
    fn check(&self) -> Result<(), SettingError> {
        self.adam.check()?;
        SettingError::non_negative("AdamW.weight_decay", self.weight_decay)
    }
    fn update(&self, step: u64, params: &mut [f32], grads: &[f32], state: &mut [f32]) {
        let decay = 1.0 - self.adam.lr * self.weight_decay;
        params.iter_mut().for_each(|p| *p *= decay);
        adam_update(&self.adam, step, params, grads, state)
    }
}
