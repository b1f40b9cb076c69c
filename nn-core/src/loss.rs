//! Loss functions, with PyTorch's reductions.
//!
//! | loss | target per sample | reduction |
//! |---|---|---|
//! | [`MeanSquaredError`] | same shape as the output | mean over all elements |
//! | [`MeanAbsoluteError`] | same shape as the output | mean over all elements |
//! | [`BinaryCrossEntropy`] | same shape, values in `[0, 1]` | mean over all elements |
//! | [`CategoricalCrossEntropy`] | one-hot (or soft) vector over the classes | mean over the batch |
//! | [`SparseCategoricalCrossEntropy`] | one class index, stored as `f32` | mean over the batch |
//! | [`GanLoss`] | one label per sample (1 real, 0 fake), broadcast over its scores | mean over all elements |
//!
//! The `from_logits` forms take raw scores: binary cross-entropy uses
//! `max(z, 0) - z t + log(1 + exp(-|z|))` and the categorical forms the shifted
//! log-softmax `(z - max) - log(sum(exp(z - max)))` with the fused gradient
//! `softmax(z) - t`, so they never overflow and stay accurate at any scale. The
//! probability forms clamp `p` to `[1e-7, 1 - 1e-7]` as Keras does.
//!
//! Losses on pairs and triplets of embeddings (contrastive, triplet margin, cosine
//! embedding), for networks with shared weights, are in [`embedding`].
use crate::activation::{shifted_exp, shifted_exp_sum, sigmoid};
use crate::kernels::maths::exp;

pub mod embedding;

pub use embedding::{ContrastiveLoss, CosineEmbeddingLoss, EmbeddingLossError, PairLoss, TripletMarginLoss};

const EPS: f32 = 1e-7;

/// A loss: a scalar from a batch of predictions and targets, and its gradient.
pub trait Loss {
    /// The name shown in histories.
    const NAME: &'static str;

    /// Target floats per sample for an output of `output_len` floats.
    fn target_len(&self, output_len: usize) -> usize {
        output_len
    }

    /// Checks one sample's target; `Err` says what is wrong with it.
    fn check_target(&self, _target: &[f32], _output_len: usize) -> Result<(), TargetError> {
        Ok(())
    }

    /// The reduced loss of a batch. When `grad` is given, `dL/dpred` is written into it
    /// (already divided by the reduction count).
    fn compute(&self, pred: &[f32], target: &[f32], output_len: usize, grad: Option<&mut [f32]>) -> f32;

    /// The number of parts of a loss made of one loss per output
    /// ([`Losses`](crate::multi::Losses)), each reported in histories; 0 for a loss
    /// of one part.
    fn parts(&self) -> usize {
        0
    }

    /// The history name of part `k` (`"{output}_loss"`).
    fn part_name(&self, _k: usize) -> &'static str {
        ""
    }

    /// The unweighted loss of each part on a batch, one per part into `out`.
    fn compute_parts(&self, _pred: &[f32], _target: &[f32], _output_len: usize, _out: &mut [f32]) {}
}

/// What is wrong with a target value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TargetError {
    /// A class index outside `0..classes` or not an integer.
    LabelOutOfRange {
        /// The value found.
        label: f32,
        /// The number of classes of the output.
        classes: usize,
    },
    /// A value that is NaN or infinite.
    NotFinite,
    /// A binary cross-entropy target outside `[0, 1]`: not a probability.
    NotAProbability {
        /// The value found.
        value: f32,
    },
}

impl core::fmt::Display for TargetError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            TargetError::LabelOutOfRange { label, classes } => {
                write!(f, "label {label} is not a class index in 0..{classes}")
            }
            TargetError::NotFinite => f.write_str("target value is NaN or infinite"),
            TargetError::NotAProbability { value } => {
                write!(f, "target value {value} is not a probability in [0, 1]")
            }
        }
    }
}

fn check_finite(target: &[f32]) -> Result<(), TargetError> {
    if target.iter().all(|v| v.is_finite()) {
        Ok(())
    } else {
        Err(TargetError::NotFinite)
    }
}

/// Mean squared error: `mean((p - t)^2)`.
#[derive(Clone, Copy, Debug, Default)]
pub struct MeanSquaredError;

impl Loss for MeanSquaredError {
    const NAME: &'static str = "mse";
    fn check_target(&self, target: &[f32], _: usize) -> Result<(), TargetError> {
        check_finite(target)
    }
    fn compute(&self, pred: &[f32], target: &[f32], _: usize, grad: Option<&mut [f32]>) -> f32 {
        let n = pred.len() as f32;
        let mut sum = 0.0f64;
        for (&p, &t) in pred.iter().zip(target) {
            sum += ((p - t) * (p - t)) as f64;
        }
        if let Some(g) = grad {
            for ((g, &p), &t) in g.iter_mut().zip(pred).zip(target) {
                *g = 2.0 * (p - t) / n;
            }
        }
        (sum / n as f64) as f32
    }
}

/// Mean absolute error: `mean(|p - t|)` (gradient `sign(p - t)`, 0 at 0 as PyTorch).
#[derive(Clone, Copy, Debug, Default)]
pub struct MeanAbsoluteError;

impl Loss for MeanAbsoluteError {
    const NAME: &'static str = "mae";
    fn check_target(&self, target: &[f32], _: usize) -> Result<(), TargetError> {
        check_finite(target)
    }
    fn compute(&self, pred: &[f32], target: &[f32], _: usize, grad: Option<&mut [f32]>) -> f32 {
        let n = pred.len() as f32;
        let mut sum = 0.0f64;
        for (&p, &t) in pred.iter().zip(target) {
            sum += (p - t).abs() as f64;
        }
        if let Some(g) = grad {
            for ((g, &p), &t) in g.iter_mut().zip(pred).zip(target) {
                let d = p - t;
                *g = if d > 0.0 {
                    1.0 / n
                } else if d < 0.0 {
                    -1.0 / n
                } else {
                    0.0
                };
            }
        }
        (sum / n as f64) as f32
    }
}

/// Binary cross-entropy on probabilities, or on logits with `from_logits`.
#[derive(Clone, Copy, Debug, Default)]
pub struct BinaryCrossEntropy {
    /// Whether predictions are logits (no sigmoid applied yet).
    pub from_logits: bool,
}

impl BinaryCrossEntropy {
    /// On probabilities (after a sigmoid).
    pub const fn new() -> Self {
        BinaryCrossEntropy { from_logits: false }
    }
    /// On logits: `BCEWithLogitsLoss`.
    pub const fn from_logits() -> Self {
        BinaryCrossEntropy { from_logits: true }
    }
}

impl Loss for BinaryCrossEntropy {
    const NAME: &'static str = "binary_crossentropy";
    /// Every target must be a probability in `[0, 1]` (as PyTorch's `BCELoss`
    /// requires; outside it the loss has no minimum).
    fn check_target(&self, target: &[f32], _: usize) -> Result<(), TargetError> {
        check_finite(target)?;
        match target.iter().find(|t| !(0.0..=1.0).contains(*t)) {
            Some(&value) => Err(TargetError::NotAProbability { value }),
            None => Ok(()),
        }
    }
    fn compute(&self, pred: &[f32], target: &[f32], _: usize, mut grad: Option<&mut [f32]>) -> f32 {
        let n = pred.len() as f32;
        let mut sum = 0.0f64;
        for (i, (&p, &t)) in pred.iter().zip(target).enumerate() {
            let (loss, g) = if self.from_logits {
                let z = p;
                let loss = z.max(0.0) - z * t + libm::log1pf(exp(-z.abs()));
                (loss, sigmoid(z) - t)
            } else {
                let q = p.clamp(EPS, 1.0 - EPS);
                let loss = -(t * libm::logf(q) + (1.0 - t) * libm::logf(1.0 - q));
                let g = if p == q { (q - t) / (q * (1.0 - q)) } else { 0.0 };
                (loss, g)
            };
            sum += loss as f64;
            if let Some(grad) = grad.as_deref_mut() {
                grad[i] = g / n;
            }
        }
        (sum / n as f64) as f32
    }
}

/// Categorical cross-entropy with one-hot (or soft) targets.
#[derive(Clone, Copy, Debug, Default)]
pub struct CategoricalCrossEntropy {
    /// Whether predictions are logits (no softmax applied yet).
    pub from_logits: bool,
}

impl CategoricalCrossEntropy {
    /// On probabilities (after a softmax).
    pub const fn new() -> Self {
        CategoricalCrossEntropy { from_logits: false }
    }
    /// On logits: the fused, stable `log_softmax` form.
    pub const fn from_logits() -> Self {
        CategoricalCrossEntropy { from_logits: true }
    }
}

/// Cross-entropy of one row against a target distribution `t`; writes the gradient
/// scaled by `scale` when asked.
fn cross_entropy_row(from_logits: bool, row: &[f32], t: &[f32], scale: f32, grad: Option<&mut [f32]>) -> f32 {
    if from_logits {
        // -log_softmax(z)_i = (max - z_i) + ln(sum)
        // With a gradient, `exp(z - max)` is written into it and turned into
        // `scale (softmax(z) sum(t) - t)`.
        let (max, sum) = match grad {
            Some(g) => {
                let (max, sum) = shifted_exp(row, g);
                let t_sum: f32 = t.iter().sum();
                for (g, &t) in g.iter_mut().zip(t) {
                    *g = scale * (*g / sum * t_sum - t);
                }
                (max, sum)
            }
            None => shifted_exp_sum(row),
        };
        let log_sum = libm::logf(sum);
        row.iter().zip(t).map(|(&z, &t)| t * ((max - z) + log_sum)).sum()
    } else {
        let mut loss = 0.0;
        for (&p, &t) in row.iter().zip(t) {
            loss -= t * libm::logf(p.clamp(EPS, 1.0 - EPS));
        }
        if let Some(g) = grad {
            for ((g, &p), &t) in g.iter_mut().zip(row).zip(t) {
                let q = p.clamp(EPS, 1.0 - EPS);
                *g = if p == q { -scale * t / q } else { 0.0 };
            }
        }
        loss
    }
}

impl Loss for CategoricalCrossEntropy {
    const NAME: &'static str = "categorical_crossentropy";
    fn check_target(&self, target: &[f32], _: usize) -> Result<(), TargetError> {
        check_finite(target)
    }
    fn compute(&self, pred: &[f32], target: &[f32], width: usize, mut grad: Option<&mut [f32]>) -> f32 {
        let batch = pred.len() / width;
        let scale = 1.0 / batch as f32;
        let mut sum = 0.0f64;
        for b in 0..batch {
            let r = b * width..(b + 1) * width;
            let g = grad.as_deref_mut().map(|g| &mut g[r.clone()]);
            sum += cross_entropy_row(self.from_logits, &pred[r.clone()], &target[r], scale, g) as f64;
        }
        (sum / batch as f64) as f32
    }
}

/// Categorical cross-entropy with integer labels (one `f32` class index per sample).
#[derive(Clone, Copy, Debug, Default)]
pub struct SparseCategoricalCrossEntropy {
    /// Whether predictions are logits (PyTorch's `CrossEntropyLoss`).
    pub from_logits: bool,
}

impl SparseCategoricalCrossEntropy {
    /// On probabilities (after a softmax).
    pub const fn new() -> Self {
        SparseCategoricalCrossEntropy { from_logits: false }
    }
    /// On logits: PyTorch's `CrossEntropyLoss`.
    pub const fn from_logits() -> Self {
        SparseCategoricalCrossEntropy { from_logits: true }
    }
}

/// The class index a sparse target holds, if valid.
pub fn label_index(label: f32, classes: usize) -> Option<usize> {
    if label >= 0.0 && label < classes as f32 && libm::truncf(label) == label {
        Some(label as usize)
    } else {
        None
    }
}

impl Loss for SparseCategoricalCrossEntropy {
    const NAME: &'static str = "sparse_categorical_crossentropy";
    fn target_len(&self, _: usize) -> usize {
        1
    }
    fn check_target(&self, target: &[f32], classes: usize) -> Result<(), TargetError> {
        match target.first().and_then(|&l| label_index(l, classes)) {
            Some(_) => Ok(()),
            None => Err(TargetError::LabelOutOfRange { label: target.first().copied().unwrap_or(f32::NAN), classes }),
        }
    }
    fn compute(&self, pred: &[f32], target: &[f32], width: usize, mut grad: Option<&mut [f32]>) -> f32 {
        let batch = pred.len() / width;
        let scale = 1.0 / batch as f32;
        let mut sum = 0.0f64;
        for b in 0..batch {
            let row = &pred[b * width..(b + 1) * width];
            // An invalid label (rejected by `check_target` before training) counts as
            // class 0 rather than panicking.
            let k = label_index(target[b], width).unwrap_or(0);
            let g = grad.as_deref_mut().map(|g| &mut g[b * width..(b + 1) * width]);
            let loss = if self.from_logits {
                // With a gradient, `exp(z - max)` is written into it and turned into
                // `scale (softmax(z) - onehot(k))`.
                let (max, exp_sum) = match g {
                    Some(g) => {
                        let (max, exp_sum) = shifted_exp(row, g);
                        g.iter_mut().for_each(|g| *g = scale * *g / exp_sum);
                        g[k] -= scale;
                        (max, exp_sum)
                    }
                    None => shifted_exp_sum(row),
                };
                (max - row[k]) + libm::logf(exp_sum)
            } else {
                let q = row[k].clamp(EPS, 1.0 - EPS);
                if let Some(g) = g {
                    g.fill(0.0);
                    if q == row[k] {
                        g[k] = -scale / q;
                    }
                }
                -libm::logf(q)
            };
            sum += loss as f64;
        }
        (sum / batch as f64) as f32
    }
}

/// What a [`GanLoss`] measures between a discriminator's raw scores and the labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GanObjective {
    /// The original GAN's binary cross-entropy on logits,
    /// `max(z, 0) - z t + log(1 + exp(-|z|))`: PyTorch's `BCEWithLogitsLoss`.
    Logistic,
    /// The least-squares GAN's `(z - t)^2` (LSGAN, used by CycleGAN): PyTorch's
    /// `MSELoss`. Its gradient does not vanish for samples the discriminator already
    /// classifies correctly but that lie far from the real data.
    LeastSquares,
}

/// The adversarial loss of a GAN: a discriminator's raw scores (logits) against one
/// label per sample, broadcast over all of that sample's scores (one score, or a map of
/// patch scores), reduced by the mean over every score as PyTorch's
/// `loss(scores, torch.full_like(scores, label))`.
///
/// The discriminator is trained towards [`GanLoss::real_label`] on real samples and
/// [`GanLoss::FAKE_LABEL`] on generated ones; the generator towards
/// [`GanLoss::GENERATOR_LABEL`] on its own samples (the non-saturating form).
/// One-sided label smoothing lowers only the discriminator's real label (to 0.9 with
/// smoothing 0.1), so that it is never pushed to infinitely confident scores; the
/// generator's target stays 1.
///
/// ```
/// use nn_core::loss::{GanLoss, Loss};
/// let loss = GanLoss::logistic().label_smoothing(0.1);
/// assert_eq!(loss.real_label(), 0.9);
/// // Two samples of one score each, labelled real.
/// let labels = [loss.real_label(); 2];
/// let mut grad = [0.0; 2];
/// let value = loss.compute(&[0.0, 0.0], &labels, 1, Some(&mut grad));
/// assert!((value - std::f32::consts::LN_2).abs() < 1e-6);
/// assert!((grad[0] - (0.5 - 0.9) / 2.0).abs() < 1e-6);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GanLoss {
    /// What is measured.
    pub objective: GanObjective,
    /// How much the discriminator's real label is lowered below 1.
    pub label_smoothing: f32,
}

impl GanLoss {
    /// The label of generated samples for the discriminator.
    pub const FAKE_LABEL: f32 = 0.0;
    /// The label the generator trains its samples towards.
    pub const GENERATOR_LABEL: f32 = 1.0;

    /// Binary cross-entropy on logits, without label smoothing.
    pub const fn logistic() -> Self {
        GanLoss { objective: GanObjective::Logistic, label_smoothing: 0.0 }
    }

    /// The least-squares loss, without label smoothing.
    pub const fn least_squares() -> Self {
        GanLoss { objective: GanObjective::LeastSquares, label_smoothing: 0.0 }
    }

    /// With one-sided label smoothing: the discriminator's real label becomes
    /// `1 - smoothing`.
    pub const fn label_smoothing(self, smoothing: f32) -> Self {
        GanLoss { label_smoothing: smoothing, ..self }
    }

    /// The label of real samples for the discriminator: `1 - label_smoothing`.
    pub fn real_label(&self) -> f32 {
        1.0 - self.label_smoothing
    }

    /// The loss of one score `z` with label `t` and its derivative.
    fn score(&self, z: f32, t: f32) -> (f32, f32) {
        match self.objective {
            GanObjective::Logistic => (z.max(0.0) - z * t + libm::log1pf(exp(-z.abs())), sigmoid(z) - t),
            GanObjective::LeastSquares => ((z - t) * (z - t), 2.0 * (z - t)),
        }
    }
}

impl Loss for GanLoss {
    const NAME: &'static str = "gan";
    fn target_len(&self, _: usize) -> usize {
        1
    }
    fn check_target(&self, target: &[f32], _: usize) -> Result<(), TargetError> {
        check_finite(target)
    }
    fn compute(&self, pred: &[f32], target: &[f32], width: usize, mut grad: Option<&mut [f32]>) -> f32 {
        let n = pred.len() as f32;
        let mut sum = 0.0f64;
        for (b, (scores, &t)) in pred.chunks(width.max(1)).zip(target).enumerate() {
            for (j, &z) in scores.iter().enumerate() {
                let (loss, g) = self.score(z, t);
                sum += loss as f64;
                if let Some(grad) = grad.as_deref_mut() {
                    grad[b * width + j] = g / n;
                }
            }
        }
        (sum / n as f64) as f32
    }
}
