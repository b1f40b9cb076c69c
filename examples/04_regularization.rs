//! # 4. Regularization: over-fitting made visible, and five ways to narrow the gap
//!
//! A network with far more parameters than training samples learns its training set
//! by heart, mistakes included: it classifies every training sample as labelled, with
//! a loss near zero, while on samples it has not seen it does much worse. The distance
//! between the two is the *generalization gap*, and a large one is over-fitting
//! (과적합). This example makes it visible: a large MLP (64-256-256-10, 85 000
//! parameters) learns from only 200 handwritten digits (about twenty per class), 40 of
//! which carry a wrong label, as real labels sometimes do, and is measured after every
//! epoch on those 200 digits and on 300 correctly labelled validation digits it never
//! trains on. Five runs start from the same initial weights:
//!
//! - **none**: plain training (Adam, learning rate 1e-3, batches of 32, 200 epochs),
//!   the over-fitting baseline;
//! - **dropout** (드롭아웃): a `Dropout` layer after each hidden layer zeroes half of
//!   its outputs at random in every training step (and does nothing when predicting),
//!   so no unit can rely on a few others;
//! - **L2** (가중치 감쇠, weight decay): `Penalty::l2` adds `l2 * sum(w^2)` over the
//!   weights to the loss (here `l2 = 0.01`), pulling every weight towards zero;
//! - **max-norm** (제약, constraint): `Constraint::MaxNorm` rescales, after every
//!   step, each unit's incoming weight vector whose length exceeds a bound (here 0.5);
//! - **early stopping** (조기 종료): `EarlyStopping` watches the validation loss,
//!   stops when it has not improved for 10 epochs, and restores the weights of the
//!   best epoch.
//!
//! Each run reports two gaps, measured in inference mode with its final weights: the
//! **accuracy gap** (training accuracy, against the labels it was given, minus
//! validation accuracy) and the **loss gap** (validation cross-entropy minus training
//! cross-entropy). The figures are means over three seeds, each seed drawing its own
//! training, validation and test digits, wrong labels, initial weights and batches;
//! the test digits (the remaining 1297) are used only once, at the end. The curves of
//! the first seed are written to `target/04_regularization.png`: training loss,
//! validation loss and both gaps per epoch (the early-stopping curve hides the
//! unregularized one until it stops, since both take the same steps).
//!
//! Measured (`cargo run --release --example 04_regularization`; means over seeds 1,
//! 2 and 3; accuracies on the training, validation and test digits):
//!
//! | run | training | validation | accuracy gap | loss gap | test |
//! |---|---|---|---|---|---|
//! | none | 1.000 | 0.794 | 0.206 | 0.755 | 0.802 |
//! | dropout | 0.998 | 0.831 | 0.167 | 0.527 | 0.830 |
//! | L2 | 0.853 | 0.867 | -0.013 | 0.100 | 0.837 |
//! | max-norm | 0.793 | 0.812 | -0.019 | -0.011 | 0.801 |
//! | early stopping | 0.918 | 0.859 | 0.059 | 0.205 | 0.843 |
//!
//! Without regularization the network fits all 200 labels, the 40 wrong ones
//! included, and its validation loss, after a minimum near epoch 20, grows again.
//! Every strategy narrows both gaps. L2 and max-norm close them: they no longer fit
//! the wrong labels. L2 and early stopping also classify the unseen test digits best
//! (0.837 and 0.843 against 0.802); dropout narrows the gap less and gains nearly as
//! much (0.830); max-norm, with this tight bound, closes the gap by fitting the
//! training digits less well rather than by doing better on new ones (0.801). Early
//! stopping chooses its epoch on the validation digits, so its validation gap is a
//! little optimistic; the test accuracy, on digits no run has seen, is the fair
//! comparison.
//!
//! Run it with `cargo run --release --example 04_regularization`.
use std::path::{Path, PathBuf};

use nn_core::data;
use nn_core::prelude::*;
use nn_core::report::{plot_panels, Panel};
use nn_core::train::{Constraint, History, Metric, Mode, Penalty, Select, TrainError};
use nn_examples::{data_file, timed, JsonObject};

network! {
    /// Far more weights than training samples.
    pub struct WideMlp: [64] -> [10] {
        hidden1: Dense { units: 256, activation: Relu },
        hidden2: Dense { units: 256, activation: Relu },
        logits: Dense { units: 10 },
    }

    /// The same network with dropout after each hidden layer (same parameters, so the
    /// same initial weights for the same seed).
    pub struct WideMlpDropout: [64] -> [10] {
        hidden1: Dense { units: 256, activation: Relu },
        drop1: Dropout { rate: 0.5 },
        hidden2: Dense { units: 256, activation: Relu },
        drop2: Dropout { rate: 0.5 },
        logits: Dense { units: 10 },
    }
}

/// The seeds averaged over; each sets the split, the initial weights, the shuffling
/// and the dropout masks. The curves are those of the first.
pub const SEEDS: [u64; 3] = [1, 2, 3];
/// Training digits (about ten per class).
pub const TRAIN_SAMPLES: usize = 200;
/// Validation digits, for the gaps, the curves and early stopping.
pub const VALIDATION_SAMPLES: usize = 300;
/// Epochs of every run (early stopping usually ends sooner).
pub const EPOCHS: usize = 200;

/// Training digits given a wrong label.
pub const WRONG_LABELS: usize = 40;

/// The L2 factor.
pub const L2: f32 = 1e-2;
/// The largest norm of a unit's incoming weights.
pub const MAX_NORM: f32 = 0.5;
/// Epochs without a better validation loss before early stopping ends a run.
pub const PATIENCE: usize = 10;

/// The five ways of training, in the order of the report.
pub const RUNS: [&str; 5] = ["none", "dropout", "l2", "max_norm", "early_stopping"];

/// Loss and accuracy of a model on one data set, in inference mode.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Score {
    /// Mean cross-entropy.
    pub loss: f32,
    /// Share of correctly classified samples.
    pub accuracy: f32,
}

/// One run's outcome for one seed.
#[derive(Clone, Debug)]
pub struct RunReport {
    /// The run's name (one of [`RUNS`]).
    pub name: &'static str,
    /// The final model on the training digits.
    pub train: Score,
    /// The final model on the validation digits.
    pub validation: Score,
    /// The final model on the test digits.
    pub test: Score,
    /// The per-epoch record of `Fit` (training-mode loss, validation loss and accuracy).
    pub history: History,
    /// The training digits in inference mode after every epoch.
    pub train_curve: Vec<Score>,
}

impl RunReport {
    /// Training accuracy minus validation accuracy.
    pub fn accuracy_gap(&self) -> f32 {
        self.train.accuracy - self.validation.accuracy
    }

    /// Validation loss minus training loss.
    pub fn loss_gap(&self) -> f32 {
        self.validation.loss - self.train.loss
    }
}

/// The five runs of one seed.
#[derive(Clone, Debug)]
pub struct SeedReport {
    /// The seed.
    pub seed: u64,
    /// One entry per run, in the order of [`RUNS`].
    pub runs: Vec<RunReport>,
    /// The epoch whose weights early stopping restored.
    pub best_epoch: usize,
}

/// What the example measured.
#[derive(Clone, Debug)]
pub struct Report {
    /// One entry per seed.
    pub seeds: Vec<SeedReport>,
    /// Test digits per seed.
    pub test_samples: usize,
    /// Seconds spent training and measuring all runs.
    pub train_seconds: f64,
}

impl Report {
    /// The mean over seeds of `value` for the run called `name`.
    pub fn mean(&self, name: &str, value: impl Fn(&RunReport) -> f32) -> f32 {
        let values: Vec<f32> =
            self.seeds.iter().flat_map(|s| s.runs.iter().filter(|r| r.name == name)).map(value).collect();
        values.iter().sum::<f32>() / values.len() as f32
    }

    /// The mean accuracy gap of the run called `name`.
    pub fn accuracy_gap(&self, name: &str) -> f32 {
        self.mean(name, RunReport::accuracy_gap)
    }

    /// The mean loss gap of the run called `name`.
    pub fn loss_gap(&self, name: &str) -> f32 {
        self.mean(name, RunReport::loss_gap)
    }
}

/// A training run with the settings every run shares.
fn fit<L: Layer>(seed: u64, epochs: usize, progress: bool) -> Fit<L, Adam, SparseCategoricalCrossEntropy> {
    Fit::new(Adam::new(1e-3), SparseCategoricalCrossEntropy::from_logits())
        .epochs(epochs)
        .batch_size(32)
        .seed(seed)
        .metrics(&[Metric::Accuracy])
        .progress(progress)
}

/// Loss and accuracy of `model` on `data`, in inference mode.
fn score<L: Layer>(model: &Model<L>, data: &Dataset) -> Result<Score, TrainError> {
    let e = model.evaluate(data, &SparseCategoricalCrossEntropy::from_logits(), &[Metric::Accuracy])?;
    Ok(Score { loss: e.loss, accuracy: e.metric("accuracy").unwrap_or(f32::NAN) })
}

/// The training, validation and test digits.
type Sets<'a> = (&'a Dataset, &'a Dataset, &'a Dataset);

/// Trains `model` with `fit`, scoring the training digits after every epoch, then
/// scores the final model on all three sets.
fn train<L: Layer>(
    name: &'static str,
    fit: &mut Fit<L, Adam, SparseCategoricalCrossEntropy>,
    mut model: Model<L>,
    (train, validation, test): Sets<'_>,
) -> Result<RunReport, TrainError> {
    let mut history = History::default();
    let mut train_curve = Vec::new();
    let mut error = None;
    fit.run_with(
        &mut model,
        train,
        Some(validation),
        |model, _| match score(model, train) {
            Ok(s) => {
                train_curve.push(s);
                true
            }
            Err(e) => {
                error = Some(e);
                false
            }
        },
        &mut history,
    )?;
    if let Some(e) = error {
        return Err(e);
    }
    Ok(RunReport {
        name,
        train: score(&model, train)?,
        validation: score(&model, validation)?,
        test: score(&model, test)?,
        history,
        train_curve,
    })
}

/// Gives `WRONG_LABELS` of the training digits, chosen with `seed`, a wrong label
/// drawn at random from the nine others.
fn mislabel(train: &mut Dataset, seed: u64) {
    let mut rng = Rng::new(seed);
    let mut order: Vec<usize> = (0..train.len()).collect();
    rng.shuffle(&mut order);
    let wrong = &order[..WRONG_LABELS];
    let mut index = 0;
    train.map_targets(|label| {
        if wrong.contains(&index) {
            *label = ((*label as usize + 1 + rng.below(9)) % 10) as f32;
        }
        index += 1;
    });
}

/// The five runs of one seed on its own split of the digits.
fn run_seed(digits: &Dataset, seed: u64, epochs: usize, progress: bool) -> Result<(SeedReport, usize), TrainError> {
    let (rest, mut train_set) = digits.split(TRAIN_SAMPLES as f32 / digits.len() as f32, seed);
    mislabel(&mut train_set, seed);
    let (test_set, validation) = rest.split(VALIDATION_SAMPLES as f32 / rest.len() as f32, seed);
    let data = (&train_set, &validation, &test_set);

    let plain = || fit::<WideMlp>(seed, epochs, progress);
    let none = train("none", &mut plain(), Model::new(seed), data)?;
    let dropout = train("dropout", &mut fit::<WideMlpDropout>(seed, epochs, progress), Model::new(seed), data)?;
    let l2 = train("l2", &mut plain().penalty(Penalty::l2(L2)), Model::new(seed), data)?;
    let mut max_norm_fit = plain().constraint(Select::Weights, Constraint::MaxNorm(MAX_NORM));
    let max_norm = train("max_norm", &mut max_norm_fit, Model::new(seed), data)?;
    let mut early_fit = plain().early_stopping(EarlyStopping::new("val_loss", Mode::Min, PATIENCE));
    let early_stopping = train("early_stopping", &mut early_fit, Model::new(seed), data)?;
    let best_epoch = early_fit.early_stopping_state().map_or(0, |e| e.best_epoch());
    let runs = vec![none, dropout, l2, max_norm, early_stopping];
    Ok((SeedReport { seed, runs, best_epoch }, test_set.len()))
}

/// Loads the digits, trains the five runs for `epochs` epochs with each of `seeds`
/// (with a progress bar when `progress`), writes the first seed's curves to `curves`
/// and measures the gaps.
pub fn run(seeds: &[u64], epochs: usize, curves: &Path, progress: bool) -> Result<Report, Box<dyn std::error::Error>> {
    let mut digits = data::digits(data_file("digits.csv.gz"))?;
    digits.scale_inputs(1.0 / 16.0);

    let (outcome, train_seconds) = timed(|| -> Result<_, TrainError> {
        let mut reports = Vec::new();
        let mut test_samples = 0;
        for &seed in seeds {
            let (report, tests) = run_seed(&digits, seed, epochs, progress)?;
            reports.push(report);
            test_samples = tests;
        }
        Ok((reports, test_samples))
    });
    let (seeds, test_samples) = outcome?;

    // One chart per series, one curve per run of the first seed.
    let first = &seeds.first().ok_or("no seed given")?.runs;
    let chart = |title: &str, y_label: &str, series: &dyn Fn(&RunReport) -> Vec<f32>| {
        let panel = Panel::new(title).y_label(y_label);
        first.iter().fold(panel, |panel, run| panel.curve(run.name, series(run)))
    };
    let train_loss = |r: &RunReport| r.train_curve.iter().map(|s| s.loss).collect::<Vec<_>>();
    let loss_gap = |r: &RunReport| {
        r.history.series("val_loss").iter().zip(&r.train_curve).map(|(v, t)| v - t.loss).collect::<Vec<_>>()
    };
    let accuracy_gap = |r: &RunReport| {
        r.history.series("val_accuracy").iter().zip(&r.train_curve).map(|(v, t)| t.accuracy - v).collect::<Vec<_>>()
    };
    plot_panels(
        curves,
        &[
            chart("training loss (inference mode)", "cross-entropy", &train_loss),
            chart("validation loss", "cross-entropy", &|r| r.history.series("val_loss")),
            chart("loss gap: validation - training", "cross-entropy", &loss_gap),
            chart("accuracy gap: training - validation", "accuracy", &accuracy_gap),
        ],
    )?;
    Ok(Report { seeds, test_samples, train_seconds })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let curves: PathBuf = [env!("CARGO_MANIFEST_DIR"), "target", "04_regularization.png"].iter().collect();
    let report = run(&SEEDS, EPOCHS, &curves, true)?;
    println!(
        "{TRAIN_SAMPLES} training, {VALIDATION_SAMPLES} validation and {} test digits; means over seeds {SEEDS:?}:",
        report.test_samples
    );
    println!("  run             train acc  val acc  acc gap  train loss  val loss  loss gap  test acc");
    for name in RUNS {
        let mean = |value: &dyn Fn(&RunReport) -> f32| report.mean(name, value);
        println!(
            "  {name:<15} {:>9.4}  {:>7.4}  {:>7.4}  {:>10.4}  {:>8.4}  {:>8.4}  {:>8.4}",
            mean(&|r| r.train.accuracy),
            mean(&|r| r.validation.accuracy),
            report.accuracy_gap(name),
            mean(&|r| r.train.loss),
            mean(&|r| r.validation.loss),
            report.loss_gap(name),
            mean(&|r| r.test.accuracy),
        );
    }
    let best_epochs: Vec<usize> = report.seeds.iter().map(|s| s.best_epoch).collect();
    println!("early stopping restored epochs {best_epochs:?}; curves of seed {} in {}", SEEDS[0], curves.display());
    println!("trained in {:.2} s", report.train_seconds);

    let per_run = |value: &dyn Fn(&str) -> f32| {
        RUNS.iter().fold(JsonObject::new(), |object, name| object.number(name, value(name).into()))
    };
    let line = JsonObject::new()
        .string("example", "04_regularization")
        .integer("seeds", SEEDS.len() as i64)
        .object("accuracy_gap", per_run(&|name| report.accuracy_gap(name)))
        .object("loss_gap", per_run(&|name| report.loss_gap(name)))
        .object("test_accuracy", per_run(&|name| report.mean(name, |r| r.test.accuracy)))
        .number("train_seconds", report.train_seconds);
    println!("{line}");
    Ok(())
}
