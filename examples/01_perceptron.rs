//! # 1. The perceptron: one neuron, one decision
//!
//! A perceptron is the smallest network there is: one `Dense` unit computing
//! `sigmoid(w . x + b)`, the probability that a sample belongs to the positive class.
//! This example teaches it to tell *Iris setosa* from the two other iris species by
//! their four measurements, and shows the steps every later example repeats:
//!
//! 1. load a data set ([`nn_core::data::iris`]) and relabel it (setosa = 1, the rest = 0);
//! 2. split it, seeded, into 80 % training and 20 % test samples;
//! 3. standardize the features with statistics of the *training* part only;
//! 4. declare the network with `network!` and train it with `Fit` (plain SGD on binary
//!    cross-entropy);
//! 5. measure accuracy on the test part, which training never saw, and read the
//!    learned weights: the one linear boundary the perceptron can draw.
//!
//! Run it with `cargo run --release --example 01_perceptron`.
use nn_core::data;
use nn_core::prelude::*;
use nn_core::train::Metric;
use nn_examples::{data_file, timed, JsonObject};

network! {
    /// One sigmoid unit over the four iris measurements.
    pub struct Perceptron: [4] -> [1] {
        out: Dense { units: 1, activation: Sigmoid },
    }
}

/// The seed of the split, the initial weights and the shuffling.
const SEED: u64 = 42;
/// The features, in the order of the columns of `iris.csv`.
const FEATURES: [&str; 4] = ["sepal length", "sepal width", "petal length", "petal width"];

/// What a run measured.
pub struct Report {
    /// Accuracy on the 30 test flowers.
    pub test_accuracy: f32,
    /// Accuracy on the 120 training flowers.
    pub train_accuracy: f32,
    /// Epochs trained.
    pub epochs: usize,
    /// Seconds spent in `Fit::run`.
    pub train_seconds: f64,
    /// The trained model.
    pub model: Model<Perceptron>,
}

/// Loads iris, trains the perceptron for `epochs` epochs and evaluates it.
pub fn run(epochs: usize) -> Result<Report, Box<dyn std::error::Error>> {
    let mut flowers = data::iris(data_file("iris.csv"))?;
    // Class 0 is setosa: it becomes the positive class, the other two the negative.
    flowers.map_targets(|t| *t = if *t == 0.0 { 1.0 } else { 0.0 });

    let (mut train, mut test) = flowers.split(0.2, SEED);
    let (mean, std) = train.feature_stats();
    train.standardize(&mean, &std);
    test.standardize(&mean, &std);

    let mut model = Model::<Perceptron>::new(SEED);
    let loss = BinaryCrossEntropy::new();
    let mut fit = Fit::new(Sgd::new(0.1), loss).epochs(epochs).batch_size(16).seed(SEED).metrics(&[Metric::Accuracy]);
    let (history, train_seconds) = timed(|| fit.run(&mut model, &train, None));
    history?;

    let accuracy = |data: &Dataset| model.evaluate(data, &loss, &[Metric::Accuracy]).map(|e| e.metric("accuracy"));
    let test_accuracy = accuracy(&test)?.unwrap_or(0.0);
    let train_accuracy = accuracy(&train)?.unwrap_or(0.0);
    Ok(Report { test_accuracy, train_accuracy, epochs, train_seconds, model })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let report = run(20)?;
    println!("{}\n", report.model.summary());

    // weight [1, 4], then bias [1]: the boundary is w . x + b = 0 in standardized units.
    let params = report.model.params();
    println!("learned boundary (standardized features): setosa when");
    for (name, w) in FEATURES.iter().zip(&params[..4]) {
        println!("  {w:+8.3} * {name}");
    }
    println!("  {:+8.3}  > 0", params[4]);
    println!(
        "\naccuracy: train {:.3}, test {:.3} ({} epochs, {:.3} s)",
        report.train_accuracy, report.test_accuracy, report.epochs, report.train_seconds
    );

    let line = JsonObject::new()
        .string("example", "01_perceptron")
        .number("test_accuracy", report.test_accuracy.into())
        .number("train_accuracy", report.train_accuracy.into())
        .integer("epochs", report.epochs as i64)
        .number("train_seconds", report.train_seconds);
    println!("{line}");
    Ok(())
}
