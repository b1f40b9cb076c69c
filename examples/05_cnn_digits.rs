//! # 5. A convolutional network reads handwritten digits
//!
//! Convolutions see an image as an image: a 3x3 filter slides over the 8x8 digit and
//! answers the same question (an edge, a corner) everywhere. This example teaches:
//!
//! - images as `[channels, height, width]` shapes (`[1, 8, 8]`), checked at compile
//!   time through every layer: `Same` padding keeps 8x8, `MaxPool2d { size: 2 }`
//!   halves it, `Flatten` turns `[32, 4, 4]` into the `[512]` a `Dense` layer needs
//!   (forgetting it is a compile error that says so);
//! - batch normalisation, with batch statistics while training and running statistics
//!   when predicting;
//! - the network's `summary()`: layers, output shapes and parameter counts.
//!
//! Run it with `cargo run --release --example 05_cnn_digits`.
use nn_core::data;
use nn_core::prelude::*;
use nn_core::train::Metric;
use nn_examples::{data_file, timed, JsonObject};

network! {
    /// Two convolution blocks, then a dense classifier.
    pub struct DigitCnn: [1, 8, 8] -> [10] {
        conv1: Conv2d { filters: 16, kernel: 3, padding: Same },
        bn1: BatchNorm2d,
        relu1: Relu,
        conv2: Conv2d { filters: 32, kernel: 3, padding: Same },
        relu2: Relu,
        pool: MaxPool2d { size: 2 } => [32, 4, 4],
        flat: Flatten,
        fc1: Dense { units: 64, activation: Relu },
        drop: Dropout { rate: 0.3 },
        logits: Dense { units: 10 },
    }
}

/// The seed of the split, the initial weights and the shuffling.
const SEED: u64 = 1;
/// Epochs of the full run.
pub const EPOCHS: usize = 25;

/// Trains the CNN and returns the test accuracy and the training time in seconds.
pub fn run(epochs: usize, verbose: bool) -> Result<(f32, f64), Box<dyn std::error::Error>> {
    let mut digits = data::digits(data_file("digits.csv.gz"))?;
    digits.scale_inputs(1.0 / 16.0);
    let (train, test) = digits.split(0.2, SEED);
    let mut model = Model::<DigitCnn>::new(SEED);
    let loss = SparseCategoricalCrossEntropy::from_logits();
    let mut fit = Fit::new(Adam::new(2e-3), loss)
        .epochs(epochs)
        .batch_size(32)
        .seed(SEED)
        .metrics(&[Metric::Accuracy])
        .verbose(verbose);
    let (history, seconds) = timed(|| fit.run(&mut model, &train, None));
    history?;
    let accuracy = model.evaluate(&test, &loss, &[Metric::Accuracy])?.metric("accuracy").unwrap_or(0.0);
    Ok((accuracy, seconds))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("{}\n", Model::<DigitCnn>::zeros().summary());
    let (accuracy, seconds) = run(EPOCHS, true)?;
    let line = JsonObject::new()
        .string("example", "05_cnn_digits")
        .number("test_accuracy", accuracy.into())
        .number("train_seconds", seconds);
    println!("{line}");
    Ok(())
}
