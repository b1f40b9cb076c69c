//! Regularization applied by `fit`: weight penalties, gradient clipping, weight
//! constraints and frozen parameters, each selected by tensor name.
//!
//! | piece | when | effect |
//! |---|---|---|
//! | [`Penalty`] L1 / L2 | added to the loss and its gradient | `loss += l1 sum|w| + l2 sum w^2`, `grad += l1 sign(w) + 2 l2 w` (Keras' form) |
//! | [`GradClip`] | after backward, before the step | each gradient to `[-v, v]`, or all scaled so their global L2 norm is at most `n` |
//! | [`Constraint`] | after each optimizer step | max-norm per output unit, non-negative, clip to `[min, max]`, unit-norm |
//! | freezing | the step | frozen tensors are never updated |
//!
//! Decoupled weight decay is the optimizer [`crate::optim::AdamW`].
use alloc::string::String;
use alloc::vec::Vec;
use core::ops::Range;

use crate::layer::{Layer, TensorInfo};
use crate::optim::SettingError;

/// Which tensors a penalty, constraint or freeze applies to.
#[derive(Clone, Debug, PartialEq)]
pub enum Select {
    /// Every parameter tensor.
    All,
    /// Every weight (`*.weight`, `*.weight_ih_l0`, ...): the usual target of weight
    /// decay, which leaves biases and normalisation parameters alone.
    Weights,
    /// The tensors whose dotted name starts with this prefix (`"fc1."`, `"encoder."`).
    Prefix(String),
}

impl Select {
    /// The tensors of the layer (or sub-network) named `name`: `Prefix("name.")`.
    pub fn layer(name: &str) -> Self {
        let mut p = String::from(name);
        p.push('.');
        Select::Prefix(p)
    }

    fn matches(&self, info: &TensorInfo<'_>) -> bool {
        if !info.trainable {
            return false;
        }
        match self {
            Select::All => true,
            Select::Weights => info.path.name.starts_with("weight"),
            Select::Prefix(p) => {
                let mut buf = String::new();
                use core::fmt::Write;
                let _ = write!(buf, "{}", info.path);
                buf.starts_with(p.as_str())
            }
        }
    }

    /// The parameter ranges of the selected tensors, with the length of their rows
    /// (all dimensions but the first: one output unit of a dense or conv weight).
    pub fn ranges<L: Layer>(&self, layer: &L) -> Vec<(Range<usize>, usize)> {
        self.ranges_of_rank(layer, 0)
    }

    /// [`Select::ranges`] of the selected tensors with at least `rank` dimensions
    /// (2: weight matrices and filters, not biases or normalisation parameters).
    pub(crate) fn ranges_of_rank<L: Layer>(&self, layer: &L, rank: usize) -> Vec<(Range<usize>, usize)> {
        let mut out = Vec::new();
        layer.visit_tensors(None, 0, 0, &mut |info| {
            if self.matches(info) && info.shape.len() >= rank {
                let row = if info.shape.len() > 1 { info.len / info.shape[0].max(1) } else { info.len };
                out.push((info.offset..info.offset + info.len, row.max(1)));
            }
        });
        out
    }
}

/// An L1 and/or L2 weight penalty on the selected tensors.
#[derive(Clone, Debug, PartialEq)]
pub struct Penalty {
    /// The tensors penalised.
    pub select: Select,
    /// The L1 factor.
    pub l1: f32,
    /// The L2 factor.
    pub l2: f32,
}

impl Penalty {
    /// `l2 * sum(w^2)` over all weights.
    pub fn l2(l2: f32) -> Self {
        Penalty { select: Select::Weights, l1: 0.0, l2 }
    }
    /// `l1 * sum(|w|)` over all weights.
    pub fn l1(l1: f32) -> Self {
        Penalty { select: Select::Weights, l1, l2: 0.0 }
    }
    /// The same penalty on other tensors.
    pub fn on(mut self, select: Select) -> Self {
        self.select = select;
        self
    }

    /// Checks the factors: each finite and at least 0.
    pub fn check(&self) -> Result<(), SettingError> {
        SettingError::non_negative("Penalty.l1", self.l1)?;
        SettingError::non_negative("Penalty.l2", self.l2)
    }
}

/// Adds the penalty over `ranges` to `grads` and returns its value.
pub fn apply_penalty(l1: f32, l2: f32, ranges: &[(Range<usize>, usize)], params: &[f32], grads: &mut [f32]) -> f32 {
    let mut value = 0.0f64;
    for (r, _) in ranges {
        for (g, &w) in grads[r.clone()].iter_mut().zip(&params[r.clone()]) {
            value += (l1 * w.abs() + l2 * w * w) as f64;
            let sign = if w > 0.0 {
                1.0
            } else if w < 0.0 {
                -1.0
            } else {
                0.0
            };
            *g += l1 * sign + 2.0 * l2 * w;
        }
    }
    value as f32
}

/// Gradient clipping.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum GradClip {
    /// Clip every gradient value to `[-v, v]`.
    Value(f32),
    /// Scale all gradients so that their global L2 norm is at most this
    /// (`torch.nn.utils.clip_grad_norm_`).
    GlobalNorm(f32),
}

impl GradClip {
    /// Checks the bound: finite and above 0.
    pub fn check(&self) -> Result<(), SettingError> {
        match *self {
            GradClip::Value(v) => SettingError::positive("GradClip::Value", v),
            GradClip::GlobalNorm(n) => SettingError::positive("GradClip::GlobalNorm", n),
        }
    }

    /// Clips `grads` in place; returns the global norm before clipping.
    pub fn apply(self, grads: &mut [f32]) -> f32 {
        let norm = libm::sqrt(grads.iter().map(|&g| (g as f64) * (g as f64)).sum::<f64>()) as f32;
        match self {
            GradClip::Value(v) => grads.iter_mut().for_each(|g| *g = g.clamp(-v, v)),
            GradClip::GlobalNorm(max) => {
                // PyTorch: scale = max / (norm + 1e-6), applied when below 1.
                let scale = max / (norm + 1e-6);
                if scale < 1.0 {
                    grads.iter_mut().for_each(|g| *g *= scale);
                }
            }
        }
        norm
    }
}

/// A constraint on weights, enforced after every optimizer step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Constraint {
    /// Each output unit's incoming weight vector (a row of a dense `[out, in]`
    /// weight, one filter of a convolution) has L2 norm at most this.
    MaxNorm(f32),
    /// Each output unit's weight vector has L2 norm 1.
    UnitNorm,
    /// Every value is at least 0.
    NonNegative,
    /// Every value lies in `[min, max]`.
    Clip {
        /// The lower bound.
        min: f32,
        /// The upper bound.
        max: f32,
    },
}

impl Constraint {
    /// Checks the bounds: a finite `MaxNorm` of at least 0, finite `Clip` bounds with
    /// `min <= max`.
    pub fn check(&self) -> Result<(), SettingError> {
        match *self {
            Constraint::MaxNorm(max) => SettingError::non_negative("Constraint::MaxNorm", max),
            Constraint::Clip { min, max } => {
                let finite = |setting, value: f32| {
                    if value.is_finite() {
                        Ok(())
                    } else {
                        Err(SettingError { setting, value, expected: "a finite number" })
                    }
                };
                finite("Constraint::Clip.min", min)?;
                finite("Constraint::Clip.max", max)?;
                if min <= max {
                    Ok(())
                } else {
                    Err(SettingError { setting: "Constraint::Clip.max", value: max, expected: "a number >= min" })
                }
            }
            Constraint::UnitNorm | Constraint::NonNegative => Ok(()),
        }
    }

    /// Enforces the constraint on `params` over `ranges` (with their row lengths).
    pub fn apply(self, ranges: &[(Range<usize>, usize)], params: &mut [f32]) {
        for (r, row) in ranges {
            let values = &mut params[r.clone()];
            match self {
                Constraint::NonNegative => values.iter_mut().for_each(|v| *v = v.max(0.0)),
                Constraint::Clip { min, max } => values.iter_mut().for_each(|v| *v = v.clamp(min, max)),
                Constraint::MaxNorm(max) => {
                    for unit in values.chunks_mut(*row) {
                        let norm = libm::sqrtf(unit.iter().map(|v| v * v).sum::<f32>());
                        if norm > max {
                            // Keras: w * clip(norm, 0, max) / (eps + norm).
                            let scale = max / (1e-7 + norm);
                            unit.iter_mut().for_each(|v| *v *= scale);
                        }
                    }
                }
                Constraint::UnitNorm => {
                    for unit in values.chunks_mut(*row) {
                        let norm = libm::sqrtf(unit.iter().map(|v| v * v).sum::<f32>());
                        let scale = 1.0 / (1e-7 + norm);
                        unit.iter_mut().for_each(|v| *v *= scale);
                    }
                }
            }
        }
    }
}
