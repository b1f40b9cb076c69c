//! # Firmware: the digits classifiers whose weights are baked into the check binaries
//!
//! Trains the small MLP and CNN of `no-std-check/src/nets.rs` on the UCI digits with
//! fixed seeds, writes their weights to `no-std-check/weights/*.safetensors` (which
//! `include_weights!` bakes into `no-std-check` and `nn-capi` at compile time) and
//! the first test images with their labels to `no-std-check/src/samples.rs`.
//!
//! Run it with `cargo run --release --example firmware_digits`; a second run writes
//! the same files.
use std::fmt::Write as _;
use std::path::Path;

use nn_core::data;
use nn_core::io::save_safetensors;
use nn_core::prelude::*;
use nn_core::train::Metric;
use nn_examples::{data_file, timed, JsonObject};

#[path = "../no-std-check/src/nets.rs"]
mod nets;
use nets::{argmax, DigitsCnn, DigitsMlp};

/// The seed of the split (the same as `02_mlp_digits`), the initial weights and the
/// shuffling.
const SEED: u64 = 1;
/// Test images written to `samples.rs`.
const SAMPLES: usize = 16;

fn train<L: Network>(
    train: &Dataset,
    test: &Dataset,
    epochs: usize,
) -> Result<(Model<L>, f32), Box<dyn std::error::Error>> {
    let mut model = Model::<L>::new(SEED);
    let loss = SparseCategoricalCrossEntropy::from_logits();
    let mut fit = Fit::new(Adam::new(3e-3), loss).epochs(epochs).batch_size(32).seed(SEED);
    fit.run(&mut model, train, None)?;
    let accuracy = model.evaluate(test, &loss, &[Metric::Accuracy])?.metric("accuracy").unwrap_or(0.0);
    Ok((model, accuracy))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut digits = data::digits(data_file("digits.csv.gz"))?;
    digits.scale_inputs(1.0 / 16.0);
    let (train_set, test_set) = digits.split(0.2, SEED);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("no-std-check");

    let (mlp, mlp_seconds) = timed(|| train::<DigitsMlp>(&train_set, &test_set, 60));
    let (mlp, mlp_accuracy) = mlp?;
    save_safetensors(&mlp, root.join("weights/digits_mlp.safetensors"))?;
    let (cnn, cnn_seconds) = timed(|| train::<DigitsCnn>(&train_set, &test_set, 30));
    let (cnn, cnn_accuracy) = cnn?;
    save_safetensors(&cnn, root.join("weights/digits_cnn.safetensors"))?;
    println!("MLP test accuracy {mlp_accuracy:.4} ({mlp_seconds:.1} s), CNN {cnn_accuracy:.4} ({cnn_seconds:.1} s)");

    // The first test images with their labels; both models must classify them right.
    let mut text = String::from(
        "//! The first test images of the digits (seeded 80/20 split, pixels / 16) and their\n\
         //! labels. Written by `cargo run --release --example firmware_digits`.\n\n\
         /// `(pixels, label)`.\npub const SAMPLES: [([f32; 64], usize); ",
    );
    writeln!(text, "{SAMPLES}] = [")?;
    for i in 0..SAMPLES {
        let x = test_set.input(i);
        let label = test_set.target(i)[0] as usize;
        let xm: [f32; 64] = x.try_into()?;
        let mlp_label = argmax(&mlp.predict_one(&xm.into()));
        let cnn_label = argmax(&cnn.predict_one(&Tensor::from_slice(x).ok_or("image size")?));
        if mlp_label != label || cnn_label != label {
            return Err(format!("test image {i}: label {label}, MLP {mlp_label}, CNN {cnn_label}").into());
        }
        let pixels: Vec<String> = x.iter().map(|v| format!("{v:?}")).collect();
        writeln!(text, "    ([{}], {label}),", pixels.join(", "))?;
    }
    text.push_str("];\n");
    std::fs::write(root.join("src/samples.rs"), text)?;

    let line = JsonObject::new()
        .string("example", "firmware_digits")
        .number("mlp_test_accuracy", mlp_accuracy.into())
        .number("cnn_test_accuracy", cnn_accuracy.into())
        .integer("mlp_params", DigitsMlp::PARAMS as i64)
        .integer("cnn_params", DigitsCnn::PARAMS as i64);
    println!("{line}");
    Ok(())
}
