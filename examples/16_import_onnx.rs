//! # 16. Import a model from ONNX
//!
//! A digits CNN trained in PyTorch travels as ONNX, the format most frameworks
//! export, and becomes a `network!` of this library with `nn-import`. This example
//! teaches:
//!
//! - generating the network's source and weights from the `.onnx` file:
//!   `cargo run -p nn-import -- examples/data/onnx_digits.onnx --name DigitCnn
//!   --out examples/imported/digit_cnn.rs --weights examples/data/onnx_digits.safetensors`
//!   wrote `examples/imported/digit_cnn.rs` (read it: one layer per ONNX operator,
//!   named after the PyTorch module's attributes, each with its output shape);
//! - loading the weights at run time (`load_safetensors`) or baking them into the
//!   binary at compile time (`include_weights!`, as firmware does: no file, no heap;
//!   `firmware/src/bin/onnx_digits.rs` runs this model on microcontrollers under QEMU);
//! - checking the import: the logits on the 359 test images against the logits
//!   onnxruntime computed from the same `.onnx` file (committed with the images).
//!
//! The PyTorch side is `tools/onnx/digits.py`: it trained the model, exported it
//! with `torch.onnx.export` and ran onnxruntime.
//!
//! Run it with `cargo run --release --example 16_import_onnx`.
use std::collections::BTreeMap;
use std::error::Error;

use nn_core::io::{load_safetensors, LoadOptions};
use nn_core::prelude::*;
use nn_examples::{data_file, JsonObject};
use safetensors::SafeTensors;

#[path = "imported/digit_cnn.rs"]
mod digit_cnn;

pub use digit_cnn::DigitCnn;

/// The imported weights, baked into the binary at compile time.
static BAKED: [f32; DigitCnn::STATE_LEN] = nn_core::include_weights!(DigitCnn, "examples/data/onnx_digits.safetensors");

/// The test images with onnxruntime's logits on them.
pub const TEST_FILE: &str = "onnx_digits_test.safetensors";

/// What the example measured.
#[derive(Clone, Debug)]
pub struct Report {
    /// Test images.
    pub test_samples: usize,
    /// The largest absolute difference between our logits and onnxruntime's.
    pub max_abs_diff: f32,
    /// The largest difference relative to the bar `1e-5 |e| + 1e-6` (at most 1 when
    /// every logit is within it).
    pub worst_against_bar: f32,
    /// The fraction of test images where our most likely digit is onnxruntime's.
    pub argmax_agreement: f32,
    /// Our test accuracy.
    pub test_accuracy: f32,
    /// onnxruntime's test accuracy.
    pub onnxruntime_test_accuracy: f32,
    /// Whether the model with baked weights gives the loaded model's logits, bit for
    /// bit, one image at a time.
    pub baked_same: bool,
    /// Parameters of the network.
    pub params: usize,
}

fn read_tensors(name: &str) -> Result<BTreeMap<String, Vec<f32>>, Box<dyn Error>> {
    let path = data_file(name);
    let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let file = SafeTensors::deserialize(&bytes)?;
    Ok(file
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            let values = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            (name, values)
        })
        .collect())
}

fn argmax_rows(values: &[f32]) -> Vec<usize> {
    let argmax = |row: &[f32]| (0..row.len()).fold(0, |best, i| if row[i] > row[best] { i } else { best });
    values.chunks(10).map(argmax).collect()
}

fn agreement(a: &[usize], b: &[usize]) -> f32 {
    a.iter().zip(b).filter(|(x, y)| x == y).count() as f32 / a.len() as f32
}

pub fn run() -> Result<Report, Box<dyn Error>> {
    let test = read_tensors(TEST_FILE)?;
    let (inputs, labels, expected) = (&test["inputs"], &test["labels"], &test["logits"]);
    let mut model = Model::<DigitCnn>::zeros();
    load_safetensors(&mut model, data_file("onnx_digits.safetensors"), &LoadOptions::default())?;
    let logits = model.predict(inputs)?;
    // The baked model, one image at a time as firmware runs it, against the loaded one.
    let baked = Model::from_static(DigitCnn, &BAKED);
    let baked_same = inputs.chunks(64).all(|image| {
        let mut x = Tensor::<<DigitCnn as Layer>::Input>::zeros();
        x.as_mut_slice().copy_from_slice(image);
        baked.predict_one(&x).as_slice() == model.predict_one(&x).as_slice()
    });
    let max_abs_diff = logits.iter().zip(expected).map(|(a, e)| (a - e).abs()).fold(0.0, f32::max);
    let worst_against_bar =
        logits.iter().zip(expected).map(|(a, e)| (a - e).abs() / (1e-5 * e.abs() + 1e-6)).fold(0.0, f32::max);
    let truth: Vec<usize> = labels.iter().map(|&l| l as usize).collect();
    let (ours, theirs) = (argmax_rows(&logits), argmax_rows(expected));
    Ok(Report {
        test_samples: truth.len(),
        max_abs_diff,
        worst_against_bar,
        argmax_agreement: agreement(&ours, &theirs),
        test_accuracy: agreement(&ours, &truth),
        onnxruntime_test_accuracy: agreement(&theirs, &truth),
        baked_same,
        params: DigitCnn::PARAMS,
    })
}

fn main() -> Result<(), Box<dyn Error>> {
    let report = run()?;
    println!("{}", model_summary());
    println!(
        "{} test images: largest logit difference to onnxruntime {:.3e} ({:.2} of the bar 1e-5 |e| + 1e-6)",
        report.test_samples, report.max_abs_diff, report.worst_against_bar
    );
    println!("same most likely digit as onnxruntime: {:.4}", report.argmax_agreement);
    println!("test accuracy {:.4} (onnxruntime {:.4})", report.test_accuracy, report.onnxruntime_test_accuracy);
    println!("baked weights give the same logits: {}", report.baked_same);
    let json = JsonObject::new()
        .exact_number("max_abs_diff", f64::from(report.max_abs_diff))
        .number("argmax_agreement", f64::from(report.argmax_agreement))
        .number("test_accuracy", f64::from(report.test_accuracy))
        .integer("params", report.params as i64);
    println!("{json}");
    Ok(())
}

fn model_summary() -> String {
    Model::<DigitCnn>::zeros().summary().to_string()
}
