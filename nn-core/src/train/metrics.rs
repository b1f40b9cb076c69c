//! Metrics reported by `fit` and `evaluate`.
use crate::shape::argmax;

/// A metric over predictions and targets.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Metric {
    /// The share of correct predictions. With several outputs: the argmax against a
    /// class index (one target value) or against the argmax of a one-hot target. With
    /// one output: the prediction thresholded at 0.5 against the 0/1 target (use
    /// [`Metric::BinaryAccuracy`] with threshold 0 for logits).
    Accuracy,
    /// One-output accuracy with the given decision threshold.
    BinaryAccuracy {
        /// Predictions above it count as class 1.
        threshold: f32,
    },
    /// Mean absolute error over all values.
    MeanAbsoluteError,
    /// Mean squared error over all values.
    MeanSquaredError,
}

impl Metric {
    /// The name in histories (`"accuracy"`, `"mae"`, `"mse"`).
    pub fn name(self) -> &'static str {
        match self {
            Metric::Accuracy | Metric::BinaryAccuracy { .. } => "accuracy",
            Metric::MeanAbsoluteError => "mae",
            Metric::MeanSquaredError => "mse",
        }
    }

    /// The metric's sum over one sample (divided by the sample count by the caller)
    /// and the number of values it counted.
    pub(crate) fn sample(self, pred: &[f32], target: &[f32]) -> (f64, usize) {
        match self {
            Metric::Accuracy | Metric::BinaryAccuracy { .. } if pred.len() == 1 => {
                let threshold = match self {
                    Metric::BinaryAccuracy { threshold } => threshold,
                    _ => 0.5,
                };
                let p = pred[0] > threshold;
                let t = target[0] > 0.5;
                ((p == t) as u8 as f64, 1)
            }
            Metric::Accuracy | Metric::BinaryAccuracy { .. } => {
                let predicted = argmax(pred);
                let actual = if target.len() == 1 { target[0] as usize } else { argmax(target) };
                ((predicted == actual) as u8 as f64, 1)
            }
            Metric::MeanAbsoluteError => (pred.iter().zip(target).map(|(p, t)| (p - t).abs() as f64).sum(), pred.len()),
            Metric::MeanSquaredError => {
                (pred.iter().zip(target).map(|(p, t)| ((p - t) * (p - t)) as f64).sum(), pred.len())
            }
        }
    }
}
