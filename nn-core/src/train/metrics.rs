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
    /// A metric on one output of a network with several outputs, made by
    /// [`Losses::metric`](crate::multi::Losses::metric).
    Output(OutputMetric),
}

/// A metric on one output of a network with several outputs (see
/// [`Losses::metric`](crate::multi::Losses::metric)): the ranges of that output in an
/// output sample and of its targets in a target sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OutputMetric {
    pub(crate) name: &'static str,
    pub(crate) pred: (usize, usize),
    pub(crate) target: (usize, usize),
    pub(crate) metric: &'static Metric,
}

impl Metric {
    /// The name in histories (`"accuracy"`, `"mae"`, `"mse"`).
    /// With several outputs, `"{output}_{metric}"` (`"same_accuracy"`).
    pub fn name(self) -> &'static str {
        match self {
            Metric::Accuracy | Metric::BinaryAccuracy { .. } => "accuracy",
            Metric::MeanAbsoluteError => "mae",
            Metric::MeanSquaredError => "mse",
            Metric::Output(m) => m.name,
        }
    }

    /// The position of the metric's name in `nn_core::__output_metric_names!`.
    pub(crate) fn index(self) -> usize {
        match self {
            Metric::Accuracy | Metric::BinaryAccuracy { .. } => 0,
            Metric::MeanAbsoluteError => 1,
            Metric::MeanSquaredError => 2,
            Metric::Output(m) => m.metric.index(),
        }
    }

    /// The metric's sum over one sample (divided by the sample count by the caller)
    /// and the number of values it counted.
    pub(crate) fn sample(self, pred: &[f32], target: &[f32]) -> (f64, usize) {
        match self {
            Metric::Output(m) => match (pred.get(m.pred.0..m.pred.1), target.get(m.target.0..m.target.1)) {
                (Some(p), Some(t)) if !matches!(m.metric, Metric::Output(_)) => m.metric.sample(p, t),
                _ => (0.0, 0),
            },
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

#[cfg(test)]
mod tests {
    use super::Metric;

    #[test]
    fn output_metric_names_follow_the_metric_names() {
        let names = crate::__output_metric_names!("out");
        for metric in [
            Metric::Accuracy,
            Metric::BinaryAccuracy { threshold: 0.0 },
            Metric::MeanAbsoluteError,
            Metric::MeanSquaredError,
        ] {
            assert_eq!(names[metric.index()], alloc::format!("out_{}", metric.name()));
        }
    }
}
