//! # Firmware: the int8 digits classifiers baked into the firmware as Rust source
//!
//! Quantizes the MLP and CNN of `no-std-check/src/nets.rs` (their f32 weights from
//! `no-std-check/weights/*.safetensors`, which `firmware_digits` trains) after
//! training, calibrated on the first 300 training images of the same split, and writes
//! each as a Rust module of `static` int8 arrays (`quant::codegen`):
//! `no-std-check/weights/digits_{mlp,cnn}_int8.rs`. The firmware includes them, and the
//! `const` check in each file fails the build if its shapes, zero points, clamps or
//! multipliers could not run. The CNN's batch norm is folded into its convolution.
//!
//! Run it with `cargo run --release --example firmware_int8`; a second run writes the
//! same files.
use std::path::Path;

use nn_core::data;
use nn_core::io::{load_safetensors, LoadOptions};
use nn_core::prelude::*;
use nn_core::quant::calibrate::{FloatDense, QuantizeOptions};
use nn_core::quant::quantize::{fold_batch_norm, quantize_sequential, FloatConv2d, FloatLayer, QuantizedSequential};
use nn_core::quant::ConvGeometry;
use nn_core::quant::FusedActivation;
use nn_core::quant::PoolGeometry;
use nn_examples::{data_file, model_tensor, JsonObject};

#[path = "../no-std-check/src/nets.rs"]
mod nets;
use nets::{argmax, DigitsCnn, DigitsMlp};

/// The seed of the split (as `firmware_digits`).
const SEED: u64 = 1;
/// Training images the activation ranges are calibrated on.
const CALIBRATION_SAMPLES: usize = 300;
/// `BatchNorm2d`'s epsilon (PyTorch's default).
const BATCH_NORM_EPS: f32 = 1e-5;

/// A Dense layer of `model` by name.
fn dense<'a, L: Network>(
    model: &'a Model<L>,
    name: &str,
    activation: FusedActivation,
) -> Result<FloatDense<'a>, String> {
    let (shape, weight) = model_tensor(model, &format!("{name}.weight"))?;
    let (_, bias) = model_tensor(model, &format!("{name}.bias"))?;
    Ok(FloatDense { weight, bias, inputs: shape[1], outputs: shape[0], activation })
}

/// The accuracy on `test` of an int8 network and of the f32 model it came from.
pub fn accuracies<L: Network>(
    network: &QuantizedSequential,
    model: &Model<L>,
    test: &Dataset,
) -> Result<(f32, f32), Box<dyn std::error::Error>> {
    let (mut int8, mut f32_correct) = (0, 0);
    for i in 0..test.len() {
        let label = test.target(i)[0] as usize;
        let logits = network.forward_real(test.input(i))?;
        let logits: Vec<f32> = logits.iter().map(|&v| f32::from(v)).collect();
        int8 += usize::from(argmax(&logits) == label);
        f32_correct += usize::from(argmax(&model.predict(test.input(i))?) == label);
    }
    Ok((int8 as f32 / test.len() as f32, f32_correct as f32 / test.len() as f32))
}

/// The text of `no-std-check/weights/digits_{mlp,cnn}_int8.rs` for `network`.
pub fn source(network: &QuantizedSequential, what: &str) -> String {
    let header = format!(
        "{what}, int8: weights per output channel,\n\
         activations calibrated on the first {CALIBRATION_SAMPLES} training images.\n\
         Written by `cargo run --release --example firmware_int8`; do not edit."
    );
    network.rust_source(&header)
}

/// What the generated files say they hold.
pub const MLP_WHAT: &str = "The digits MLP of `no-std-check/src/nets.rs`";
/// What the generated files say they hold.
pub const CNN_WHAT: &str = "The digits CNN of `no-std-check/src/nets.rs`";

/// The two f32 models, loaded from `no-std-check/weights/`, and their int8
/// quantizations; the test set.
pub struct Quantized {
    /// The f32 MLP.
    pub mlp: Model<DigitsMlp>,
    /// The f32 CNN.
    pub cnn: Model<DigitsCnn>,
    /// The int8 MLP.
    pub mlp_int8: QuantizedSequential,
    /// The int8 CNN.
    pub cnn_int8: QuantizedSequential,
    /// The test images.
    pub test: Dataset,
}

/// Loads both f32 models and quantizes them.
pub fn quantize() -> Result<Quantized, Box<dyn std::error::Error>> {
    let mut digits = data::digits(data_file("digits.csv.gz"))?;
    digits.scale_inputs(1.0 / 16.0);
    let (train, test) = digits.split(0.2, SEED);
    let calibration = &train.inputs()[..CALIBRATION_SAMPLES * train.input_len()];
    let root = weights_dir();
    let options = QuantizeOptions::default();

    let mut mlp = Model::<DigitsMlp>::zeros();
    load_safetensors(&mut mlp, root.join("digits_mlp.safetensors"), &LoadOptions::default())?;
    let layers = [
        FloatLayer::Dense(dense(&mlp, "hidden", FusedActivation::Relu)?),
        FloatLayer::Dense(dense(&mlp, "logits", FusedActivation::None)?),
    ];
    let mlp_int8 = quantize_sequential(&layers, calibration, &options)?;

    let mut cnn = Model::<DigitsCnn>::zeros();
    load_safetensors(&mut cnn, root.join("digits_cnn.safetensors"), &LoadOptions::default())?;
    let (mut weight, mut bias) =
        (model_tensor(&cnn, "conv.weight")?.1.to_vec(), model_tensor(&cnn, "conv.bias")?.1.to_vec());
    let [gamma, beta, mean, var] =
        ["weight", "bias", "running_mean", "running_var"].map(|t| model_tensor(&cnn, &format!("bn.{t}")));
    fold_batch_norm(&mut weight, &mut bias, gamma?.1, beta?.1, mean?.1, var?.1, BATCH_NORM_EPS)?;
    let conv = FloatConv2d {
        weight: &weight,
        bias: &bias,
        geometry: ConvGeometry {
            channels: 1,
            height: 8,
            width: 8,
            kernel: [3, 3],
            stride: [1, 1],
            padding: [1, 1],
            dilation: [1, 1],
            out_height: 8,
            out_width: 8,
        },
        filters: 8,
        groups: 1,
        activation: FusedActivation::Relu,
    };
    let pool = PoolGeometry {
        height: 8,
        width: 8,
        size: [2, 2],
        stride: [2, 2],
        padding: [0, 0],
        out_height: 4,
        out_width: 4,
    };
    let layers = [
        FloatLayer::Conv2d(conv),
        FloatLayer::MaxPool2d { geometry: pool, channels: 8 },
        FloatLayer::Dense(dense(&cnn, "logits", FusedActivation::None)?),
    ];
    let cnn_int8 = quantize_sequential(&layers, calibration, &options)?;
    Ok(Quantized { mlp, cnn, mlp_int8, cnn_int8, test })
}

/// Where the generated modules go.
pub fn weights_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("no-std-check/weights")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Quantized { mlp, cnn, mlp_int8, cnn_int8, test } = quantize()?;
    std::fs::write(weights_dir().join("digits_mlp_int8.rs"), source(&mlp_int8, MLP_WHAT))?;
    std::fs::write(weights_dir().join("digits_cnn_int8.rs"), source(&cnn_int8, CNN_WHAT))?;

    let (mlp_int8_accuracy, mlp_f32_accuracy) = accuracies(&mlp_int8, &mlp, &test)?;
    let (cnn_int8_accuracy, cnn_f32_accuracy) = accuracies(&cnn_int8, &cnn, &test)?;
    let (mlp_f32_bytes, cnn_f32_bytes) = (4 * DigitsMlp::STATE_LEN, 4 * DigitsCnn::STATE_LEN);
    println!(
        "MLP: test accuracy {mlp_f32_accuracy:.4} f32, {mlp_int8_accuracy:.4} int8; {mlp_f32_bytes} bytes f32, {} int8",
        mlp_int8.param_bytes()
    );
    println!(
        "CNN: test accuracy {cnn_f32_accuracy:.4} f32, {cnn_int8_accuracy:.4} int8; {cnn_f32_bytes} bytes f32, {} int8",
        cnn_int8.param_bytes()
    );
    let line = JsonObject::new()
        .string("example", "firmware_int8")
        .number("mlp_f32_accuracy", mlp_f32_accuracy.into())
        .number("mlp_int8_accuracy", mlp_int8_accuracy.into())
        .number("cnn_f32_accuracy", cnn_f32_accuracy.into())
        .number("cnn_int8_accuracy", cnn_int8_accuracy.into())
        .integer("mlp_f32_bytes", mlp_f32_bytes as i64)
        .integer("mlp_int8_bytes", mlp_int8.param_bytes() as i64)
        .integer("cnn_f32_bytes", cnn_f32_bytes as i64)
        .integer("cnn_int8_bytes", cnn_int8.param_bytes() as i64);
    println!("{line}");
    Ok(())
}
