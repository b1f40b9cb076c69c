//! Watching training: the [`Observer`] hook of `fit`, a progress bar per epoch and PNG
//! pictures (curves, image grids, heat maps).
//!
//! | item | needs | gives |
//! |---|---|---|
//! | [`Observer`], [`BatchLog`] | `alloc` | calls from [`Fit`](crate::train::Fit) at every batch, epoch and at the end |
//! | `EpochProgress` | feature `progress` | a bar per epoch on standard error with the running loss and metrics; `Fit::progress` |
//! | `plot_history`, `plot_panels` | feature `plot` | training and validation curves as PNG; `Fit::plot_to` |
//! | `ImageGrid` | feature `plot` | a grid of grayscale images (digits, reconstructions, generated samples) as PNG |
//! | `HeatMap` | feature `plot` | a matrix (attention weights) as a coloured PNG with row and column labels |
//!
//! The features keep the core small: `progress` adds `indicatif`, `plot` adds
//! `plotters` (bitmap drawing, line series, text through `ab_glyph` with the bundled
//! DejaVu Sans font, see `assets/DejaVuSans.LICENSE`) and the `png` encoder.
//!
//! ```
//! use nn_core::prelude::*;
//! use nn_core::report::{BatchLog, Observer};
//!
//! /// Counts the batches of a run.
//! #[derive(Default)]
//! struct Count(usize);
//! impl Observer for Count {
//!     fn batch_end(&mut self, _log: &BatchLog<'_>) {
//!         self.0 += 1;
//!     }
//! }
//!
//! network! { pub struct Net: [2] -> [2] { out: Dense { units: 2 } } }
//! let train = Dataset::new(vec![0.0, 1.0, 1.0, 0.0, 0.5, 0.5], 2, vec![1.0, 0.0, 1.0], 1).unwrap();
//! let mut model = Model::<Net>::new(1);
//! let mut fit = Fit::new(Sgd::new(0.1), SparseCategoricalCrossEntropy::from_logits())
//!     .epochs(3)
//!     .batch_size(2)
//!     .observe(Count::default());
//! fit.run(&mut model, &train, None).unwrap();
//! ```
use alloc::string::String;
use core::fmt::Write;

use crate::train::{EpochLog, History, Metric};

#[cfg(feature = "plot")]
mod plot;
#[cfg(feature = "progress")]
mod progress;

#[cfg(feature = "plot")]
pub use plot::{plot_history, plot_panels, HeatMap, ImageGrid, Panel, PlotError, PlotOnEnd};
#[cfg(feature = "progress")]
pub use progress::{EpochProgress, ProgressDrawTarget, TermLike};

/// Called by [`Fit`](crate::train::Fit) while it trains; every method does nothing
/// unless overridden. Register one with [`Fit::observe`](crate::train::Fit::observe).
pub trait Observer: Send {
    /// Before the first batch of `epoch` (counted from 1 over all runs of the `Fit`);
    /// `last_epoch` is the epoch the run ends with unless stopped early, and `batches`
    /// the number of mini-batches per epoch.
    fn epoch_start(&mut self, epoch: usize, last_epoch: usize, batches: usize) {
        let _ = (epoch, last_epoch, batches);
    }

    /// After each optimizer step.
    fn batch_end(&mut self, log: &BatchLog<'_>) {
        let _ = log;
    }

    /// After each epoch, validation included; the epoch is `history.last()`.
    fn epoch_end(&mut self, history: &History) {
        let _ = history;
    }

    /// When the run ends (after the last epoch or an early stop, with the restored
    /// weights in place). Not called when training stops with an error.
    fn train_end(&mut self, history: &History) {
        let _ = history;
    }
}

/// The state of an epoch after one of its batches.
#[derive(Clone, Copy, Debug)]
pub struct BatchLog<'a> {
    /// The epoch (from 1).
    pub epoch: usize,
    /// The batch within the epoch (from 1).
    pub batch: usize,
    /// Batches per epoch.
    pub batches: usize,
    /// The mean training loss over the epoch's batches so far (penalties included).
    pub loss: f32,
    names: Names<'a>,
    sums: &'a [(f64, usize)],
}

/// The names of a batch record's running means: `fit`'s metrics, or the values of a
/// custom step.
#[derive(Clone, Copy, Debug)]
enum Names<'a> {
    Metrics(&'a [Metric]),
    Values(&'a [&'static str]),
}

impl<'a> BatchLog<'a> {
    /// A record from the metric sums (`sum, count`) that `fit` keeps per metric.
    pub(crate) fn new(
        epoch: usize,
        batch: usize,
        batches: usize,
        loss: f32,
        metrics: &'a [Metric],
        sums: &'a [(f64, usize)],
    ) -> Self {
        BatchLog { epoch, batch, batches, loss, names: Names::Metrics(metrics), sums }
    }

    /// A record from the sums (`sum, count`) of the named values of a custom step
    /// (see [`CustomFit`](crate::train::CustomFit)).
    pub(crate) fn named(
        epoch: usize,
        batch: usize,
        batches: usize,
        loss: f32,
        names: &'a [&'static str],
        sums: &'a [(f64, usize)],
    ) -> Self {
        BatchLog { epoch, batch, batches, loss, names: Names::Values(names), sums }
    }

    /// Each training metric's mean over the epoch's samples so far, by Keras name (for
    /// a custom step, each of its values' mean over the epoch's batches so far).
    pub fn metrics(&self) -> impl Iterator<Item = (&'static str, f32)> + 'a {
        let names = self.names;
        let count = match names {
            Names::Metrics(m) => m.len(),
            Names::Values(n) => n.len(),
        };
        let name = move |k: usize| match names {
            Names::Metrics(m) => m[k].name(),
            Names::Values(n) => n[k],
        };
        self.sums.iter().take(count).enumerate().map(move |(k, &(s, c))| (name(k), (s / c.max(1) as f64) as f32))
    }
}

/// One epoch as a line: `loss 0.1234  accuracy 0.9500  val_loss 0.2345  val_accuracy
/// 0.9100` (four decimals, the order of [`EpochLog`]).
pub fn epoch_summary(log: &EpochLog) -> String {
    let mut line = String::new();
    let _ = write!(line, "loss {:.4}", log.loss);
    for (n, v) in &log.metrics {
        let _ = write!(line, "  {n} {v:.4}");
    }
    if let Some(v) = log.val_loss {
        let _ = write!(line, "  val_loss {v:.4}");
    }
    for (n, v) in &log.val_metrics {
        let _ = write!(line, "  val_{n} {v:.4}");
    }
    line
}
