//! What training reports: a record per epoch ([`EpochLog`]), the series of a run
//! ([`History`], Keras's `History`) and the loss and metrics of an evaluation.
use alloc::vec::Vec;

/// The record of one epoch.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochLog {
    /// The epoch (from 1).
    pub epoch: usize,
    /// Mean training loss over the epoch's batches.
    pub loss: f32,
    /// Training metrics (computed on the batches in training mode, as Keras does),
    /// after the loss of each output when the loss is one per output
    /// ([`Losses`](crate::multi::Losses)): `"{output}_loss"`, the mean over the
    /// epoch's batches of the output's unweighted loss, as Keras reports it.
    pub metrics: Vec<(&'static str, f32)>,
    /// Validation loss, when validation data was given.
    pub val_loss: Option<f32>,
    /// Validation metrics (and losses per output), named as `metrics`.
    pub val_metrics: Vec<(&'static str, f32)>,
    /// The learning rate used in this epoch.
    pub learning_rate: f32,
}

/// Every metric per epoch, as Keras' `History`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    /// One record per epoch.
    pub epochs: Vec<EpochLog>,
}

impl History {
    /// One series by Keras name: `"loss"`, `"val_loss"`, `"accuracy"`,
    /// `"val_accuracy"`, `"mae"`, `"lr"`, and for a loss per output each output's
    /// `"{output}_loss"` and `"val_{output}_loss"`; empty if unknown.
    pub fn series(&self, name: &str) -> Vec<f32> {
        self.epochs
            .iter()
            .filter_map(|e| match name {
                "loss" => Some(e.loss),
                "val_loss" => e.val_loss,
                "lr" => Some(e.learning_rate),
                _ => match name.strip_prefix("val_") {
                    Some(m) => e.val_metrics.iter().find(|(n, _)| *n == m).map(|(_, v)| *v),
                    None => e.metrics.iter().find(|(n, _)| *n == name).map(|(_, v)| *v),
                },
            })
            .collect()
    }

    /// The last epoch's record.
    pub fn last(&self) -> Option<&EpochLog> {
        self.epochs.last()
    }
}

/// Loss and metrics of a model on a data set.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// The mean loss.
    pub loss: f32,
    /// Each metric's value, after each output's loss (`"{output}_loss"`) for a loss
    /// per output.
    pub metrics: Vec<(&'static str, f32)>,
}

impl Evaluation {
    /// A metric by name.
    pub fn metric(&self, name: &str) -> Option<f32> {
        self.metrics.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }
}
