//! # 15. int8 quantization: four times smaller, integers only
//!
//! A microcontroller without a floating-point unit runs int8 models: every weight
//! and activation is an 8-bit integer `q` standing for the real value
//! `scale * (q - zero_point)`, and a layer is integer multiply-accumulates followed
//! by a fixed-point rescaling. This example takes trained f32 models, quantizes them
//! after training from a calibration set, runs them with the integer kernels of
//! `nn_core::quant` (bit-exact with TensorFlow Lite Micro) and measures what was
//! lost. It teaches:
//!
//! - post-training quantization of a whole `network!` model with
//!   `model.quantize(&calibration, &options)` (`quant::network::Quantize`): the
//!   network's description, which the macro writes, says which layers there are, so
//!   none is listed by hand; the f32 model runs over a calibration set (300 training
//!   images here) to find each activation's range; weights become int8 symmetric,
//!   biases int32 with scale `input_scale * weight_scale`, activations int8 with a
//!   scale and zero point;
//! - one weight scale per output channel (the TensorFlow Lite default) against one
//!   for the whole tensor, side by side;
//! - integer-only inference: the input is quantized once, then every layer runs the
//!   integer kernels of `nn_core::quant`, and the digit is the largest int8 logit (no
//!   dequantization needed); the sine model's one output is dequantized;
//! - model sizes: f32 is 4 bytes a parameter; int8 is 1 byte a weight, 4 a bias
//!   (int32), 4 a weight scale, and 8 (scale and zero point) for each activation
//!   tensor;
//! - what the quantizer does with the CNN's other layers: the batch norm is folded
//!   into the convolution before it, each ReLU into the layer before it, the max
//!   pooling keeps its input's scale, the flatten and the dropout are the identity.
//!
//! The models: the digits MLP of `02_mlp_digits` and the digits CNN of
//! `05_cnn_digits` (same layers, seed and split), and the TinyML "hello world" sine
//! model (Dense 16 ReLU, Dense 16 ReLU, Dense 1, fitted to `sin(x)` on `[0, 2π]`).
//!
//! Over ten seeds of the split and the initial weights (1 to 10) the int8 MLP's
//! test accuracy is within one image (0.28 points) of the f32 model's, per channel
//! and per tensor alike; the sine model's largest error grows by at most 0.046.
//!
//! Run it with `cargo run --release --example 15_quantize`.
use std::f32::consts::TAU;

use nn_core::data;
use nn_core::prelude::*;
use nn_core::quant::calibrate::{QuantizeOptions, WeightGranularity};
use nn_core::quant::network::Quantize;
use nn_core::quant::quantize::QuantizedSequential;
use nn_core::quant::sequential::Int8Layer;
use nn_core::quant::QuantError;
use nn_core::train::Metric;
use nn_examples::{data_file, model_tensor, timed, JsonObject};

network! {
    /// The MLP of `02_mlp_digits`: two hidden ReLU layers with dropout, then 10 logits.
    pub struct DigitMlp: [64] -> [10] {
        hidden1: Dense { units: 128, activation: Relu },
        drop1: Dropout { rate: 0.2 },
        hidden2: Dense { units: 64, activation: Relu },
        drop2: Dropout { rate: 0.2 },
        logits: Dense { units: 10 },
    }
}

network! {
    /// The CNN of `05_cnn_digits`: two convolution blocks, then a dense classifier.
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

network! {
    /// TensorFlow Lite Micro's "hello world": `x -> sin(x)` on `[0, 2π]`.
    pub struct SineMlp: [1] -> [1] {
        hidden1: Dense { units: 16, activation: Relu },
        hidden2: Dense { units: 16, activation: Relu },
        out: Dense { units: 1 },
    }
}

/// The seed of the split, the initial weights and the shuffling (as `02_mlp_digits`).
const SEED: u64 = 1;
/// Epochs of the digits MLP (as `02_mlp_digits`).
pub const MLP_EPOCHS: usize = 30;
/// Epochs of the digits CNN (as `05_cnn_digits`).
pub const CNN_EPOCHS: usize = 25;
/// Epochs of the sine model.
pub const SINE_EPOCHS: usize = 2000;
/// Training images the activation ranges are calibrated on.
pub const CALIBRATION_SAMPLES: usize = 300;
/// Points of the sine's training grid on `[0, 2π]`.
const SINE_TRAIN_POINTS: usize = 1000;
/// Points of the sine's test grid, none of them a training point.
pub const SINE_TEST_POINTS: usize = 629;

/// One quantization of the digits MLP.
#[derive(Debug, Clone, Copy)]
pub struct DigitsInt8 {
    /// Test accuracy of the integer-only model.
    pub accuracy: f32,
    /// Bytes of its weights, biases and scales.
    pub bytes: usize,
}

/// Errors of the sine model against `sin` on the test grid.
#[derive(Debug, Clone, Copy)]
pub struct SineErrors {
    /// Mean squared error.
    pub mse: f32,
    /// Largest absolute error.
    pub max_error: f32,
}

/// What a run measured.
pub struct Report {
    /// Test images (20 % of 1797).
    pub test_samples: usize,
    /// Test accuracy of the f32 MLP.
    pub mlp_f32_accuracy: f32,
    /// Bytes of the f32 MLP's parameters.
    pub mlp_f32_bytes: usize,
    /// The MLP with a weight scale per output channel.
    pub mlp_per_channel: DigitsInt8,
    /// The MLP with one weight scale per layer.
    pub mlp_per_tensor: DigitsInt8,
    /// Test accuracy of the f32 CNN.
    pub cnn_f32_accuracy: f32,
    /// Bytes of the f32 CNN's parameters and batch-norm statistics.
    pub cnn_f32_bytes: usize,
    /// The CNN with a weight scale per output channel.
    pub cnn_per_channel: DigitsInt8,
    /// The CNN with one weight scale per layer.
    pub cnn_per_tensor: DigitsInt8,
    /// The f32 sine model.
    pub sine_f32: SineErrors,
    /// The int8 sine model (per-channel weights).
    pub sine_int8: SineErrors,
    /// The int8 sine model with per-tensor weights.
    pub sine_int8_per_tensor: SineErrors,
    /// Bytes of the f32 sine model's parameters.
    pub sine_f32_bytes: usize,
    /// Bytes of the int8 sine model (per-channel weights).
    pub sine_int8_bytes: usize,
    /// Seconds spent training both models.
    pub train_seconds: f64,
}

/// Bytes of an int8 network: 1 a weight, 4 a bias, 4 a weight scale, and a scale and
/// zero point (8 bytes) for the input and each Dense layer's or convolution's output
/// (a pooling keeps its input's).
fn int8_bytes(network: &QuantizedSequential) -> usize {
    let mut tensors = 1;
    let mut bytes = 0;
    for layer in &network.layers {
        if let Int8Layer::Dense { weight, bias, .. } | Int8Layer::Conv2d { weight, bias, .. } = layer.layer() {
            bytes += weight.len() + 4 * bias.len() + 4 * layer.weight_scales().len();
            tensors += 1;
        }
    }
    bytes + 8 * tensors
}

/// The index of the largest value (the first of equals).
fn argmax<T: PartialOrd + Copy>(values: &[T]) -> usize {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best
}

/// Test accuracy of an int8 network on `test`: the digit is its largest int8 logit.
fn int8_accuracy(network: &QuantizedSequential, test: &Dataset) -> Result<f32, QuantError> {
    let mut correct = 0;
    for i in 0..test.len() {
        if argmax(&network.forward_real(test.input(i))?) == test.target(i)[0] as usize {
            correct += 1;
        }
    }
    Ok(correct as f32 / test.len() as f32)
}

/// Mean squared and largest absolute error of `predictions` against `sin(xs)`.
fn sine_errors(xs: &[f32], predictions: &[f32]) -> SineErrors {
    let mut sum = 0.0f64;
    let mut max_error = 0.0f32;
    for (&x, &p) in xs.iter().zip(predictions) {
        let e = p - x.sin();
        sum += (e as f64) * (e as f64);
        max_error = max_error.max(e.abs());
    }
    SineErrors { mse: (sum / xs.len() as f64) as f32, max_error }
}

/// The int8 sine model's predictions on `xs`, dequantized.
fn sine_int8(network: &QuantizedSequential, xs: &[f32]) -> Result<Vec<f32>, QuantError> {
    let output = network.output();
    xs.iter().map(|&x| Ok(output.dequantize(network.forward_real(&[x])?[0]))).collect()
}

/// Trains the three models, quantizes them per channel and per tensor, and measures them.
pub fn run(
    mlp_epochs: usize,
    cnn_epochs: usize,
    sine_epochs: usize,
    verbose: bool,
) -> Result<Report, Box<dyn std::error::Error>> {
    // The digits MLP, as 02_mlp_digits trains it.
    let mut digits = data::digits(data_file("digits.csv.gz"))?;
    digits.scale_inputs(1.0 / 16.0);
    let (train, test) = digits.split(0.2, SEED);
    let mut mlp = Model::<DigitMlp>::new(SEED);
    let loss = SparseCategoricalCrossEntropy::from_logits();
    let mut fit = Fit::new(Adam::new(2e-3), loss).epochs(mlp_epochs).batch_size(32).seed(SEED);
    let (trained, mlp_seconds) = timed(|| fit.run(&mut mlp, &train, None));
    trained?;
    let mlp_f32_accuracy = mlp.evaluate(&test, &loss, &[Metric::Accuracy])?.metric("accuracy").unwrap_or(0.0);

    // The digits CNN, as 05_cnn_digits trains it.
    let mut cnn = Model::<DigitCnn>::new(SEED);
    let mut fit = Fit::new(Adam::new(2e-3), loss).epochs(cnn_epochs).batch_size(32).seed(SEED);
    let (trained, cnn_seconds) = timed(|| fit.run(&mut cnn, &train, None));
    trained?;
    let cnn_f32_accuracy = cnn.evaluate(&test, &loss, &[Metric::Accuracy])?.metric("accuracy").unwrap_or(0.0);

    // The sine model on an even grid of [0, 2π].
    let xs: Vec<f32> = (0..SINE_TRAIN_POINTS).map(|i| TAU * (i as f32 + 0.5) / SINE_TRAIN_POINTS as f32).collect();
    let ys: Vec<f32> = xs.iter().map(|x| x.sin()).collect();
    let sine_train = Dataset::new(xs, 1, ys, 1)?;
    let mut sine = Model::<SineMlp>::new(SEED);
    let mut fit = Fit::new(Adam::new(1e-2), MeanSquaredError).epochs(sine_epochs).batch_size(32).seed(SEED);
    let (trained, sine_seconds) = timed(|| fit.run(&mut sine, &sine_train, None));
    trained?;
    if verbose {
        println!(
            "trained the MLP in {mlp_seconds:.2} s, the CNN in {cnn_seconds:.2} s and the sine model in {sine_seconds:.2} s"
        );
    }

    // Calibration: the first training images (the split has shuffled them).
    let calibration = &train.inputs()[..CALIBRATION_SAMPLES * train.input_len()];
    let digits_int8 = |network: QuantizedSequential| -> Result<DigitsInt8, QuantError> {
        Ok(DigitsInt8 { accuracy: int8_accuracy(&network, &test)?, bytes: int8_bytes(&network) })
    };
    let options = |weights| QuantizeOptions { weights, ..QuantizeOptions::default() };
    let (per_channel, per_tensor) = (options(WeightGranularity::PerChannel), options(WeightGranularity::PerTensor));
    let mlp_per_channel = digits_int8(mlp.quantize(calibration, &per_channel)?)?;
    let mlp_per_tensor = digits_int8(mlp.quantize(calibration, &per_tensor)?)?;
    let cnn_per_channel = digits_int8(cnn.quantize(calibration, &per_channel)?)?;
    let cnn_per_tensor = digits_int8(cnn.quantize(calibration, &per_tensor)?)?;
    // The f32 CNN's inference state: its parameters and bn1's running statistics.
    let statistics = model_tensor(&cnn, "bn1.running_mean")?.1.len() + model_tensor(&cnn, "bn1.running_var")?.1.len();

    // The sine model, calibrated on its training grid, tested between its points.
    let grid: Vec<f32> = (0..SINE_TEST_POINTS).map(|i| TAU * i as f32 / (SINE_TEST_POINTS - 1) as f32).collect();
    let sine_f32 = sine_errors(&grid, &sine.predict(&grid)?);
    let sine_per_channel = sine.quantize(sine_train.inputs(), &per_channel)?;
    let sine_per_tensor = sine.quantize(sine_train.inputs(), &per_tensor)?;

    Ok(Report {
        test_samples: test.len(),
        mlp_f32_accuracy,
        mlp_f32_bytes: 4 * mlp.params().len(),
        mlp_per_channel,
        mlp_per_tensor,
        cnn_f32_accuracy,
        cnn_f32_bytes: 4 * (cnn.params().len() + statistics),
        cnn_per_channel,
        cnn_per_tensor,
        sine_f32,
        sine_int8: sine_errors(&grid, &sine_int8(&sine_per_channel, &grid)?),
        sine_int8_per_tensor: sine_errors(&grid, &sine_int8(&sine_per_tensor, &grid)?),
        sine_f32_bytes: 4 * sine.params().len(),
        sine_int8_bytes: int8_bytes(&sine_per_channel),
        train_seconds: mlp_seconds + cnn_seconds + sine_seconds,
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let r = run(MLP_EPOCHS, CNN_EPOCHS, SINE_EPOCHS, true)?;
    let (pc, pt) = (r.mlp_per_channel, r.mlp_per_tensor);
    println!("\ndigits MLP on {} test images ({CALIBRATION_SAMPLES} calibration images):", r.test_samples);
    println!("  {:<26} {:>9} {:>8}", "model", "accuracy", "bytes");
    println!("  {:<26} {:>9.4} {:>8}", "f32", r.mlp_f32_accuracy, r.mlp_f32_bytes);
    println!("  {:<26} {:>9.4} {:>8}", "int8, per-channel weights", pc.accuracy, pc.bytes);
    println!("  {:<26} {:>9.4} {:>8}", "int8, per-tensor weights", pt.accuracy, pt.bytes);
    let (cc, ct) = (r.cnn_per_channel, r.cnn_per_tensor);
    println!("\ndigits CNN (batch norm folded into its first convolution):");
    println!("  {:<26} {:>9} {:>8}", "model", "accuracy", "bytes");
    println!("  {:<26} {:>9.4} {:>8}", "f32", r.cnn_f32_accuracy, r.cnn_f32_bytes);
    println!("  {:<26} {:>9.4} {:>8}", "int8, per-channel weights", cc.accuracy, cc.bytes);
    println!("  {:<26} {:>9.4} {:>8}", "int8, per-tensor weights", ct.accuracy, ct.bytes);
    println!("\nsine model against sin(x) on {SINE_TEST_POINTS} points of [0, 2π]:");
    println!("  {:<26} {:>10} {:>9} {:>6}", "model", "MSE", "max error", "bytes");
    println!("  {:<26} {:>10.6} {:>9.4} {:>6}", "f32", r.sine_f32.mse, r.sine_f32.max_error, r.sine_f32_bytes);
    println!(
        "  {:<26} {:>10.6} {:>9.4} {:>6}",
        "int8, per-channel weights", r.sine_int8.mse, r.sine_int8.max_error, r.sine_int8_bytes
    );
    println!(
        "  {:<26} {:>10.6} {:>9.4}",
        "int8, per-tensor weights", r.sine_int8_per_tensor.mse, r.sine_int8_per_tensor.max_error
    );

    let line = JsonObject::new()
        .string("example", "15_quantize")
        .number("mlp_f32_accuracy", r.mlp_f32_accuracy.into())
        .number("mlp_int8_accuracy", pc.accuracy.into())
        .number("mlp_int8_per_tensor_accuracy", pt.accuracy.into())
        .integer("mlp_f32_bytes", r.mlp_f32_bytes as i64)
        .integer("mlp_int8_bytes", pc.bytes as i64)
        .integer("mlp_int8_per_tensor_bytes", pt.bytes as i64)
        .number("cnn_f32_accuracy", r.cnn_f32_accuracy.into())
        .number("cnn_int8_accuracy", cc.accuracy.into())
        .number("cnn_int8_per_tensor_accuracy", ct.accuracy.into())
        .integer("cnn_f32_bytes", r.cnn_f32_bytes as i64)
        .integer("cnn_int8_bytes", cc.bytes as i64)
        .integer("cnn_int8_per_tensor_bytes", ct.bytes as i64)
        .number("sine_f32_mse", r.sine_f32.mse.into())
        .number("sine_int8_mse", r.sine_int8.mse.into())
        .number("sine_int8_per_tensor_mse", r.sine_int8_per_tensor.mse.into())
        .number("sine_f32_max_error", r.sine_f32.max_error.into())
        .number("sine_int8_max_error", r.sine_int8.max_error.into())
        .integer("sine_f32_bytes", r.sine_f32_bytes as i64)
        .integer("sine_int8_bytes", r.sine_int8_bytes as i64)
        .number("train_seconds", r.train_seconds);
    println!("{line}");
    Ok(())
}
