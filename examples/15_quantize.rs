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
//! - post-training quantization with `quant::calibrate::quantize_dense_stack`: the
//!   f32 model runs over a calibration set (300 training images here) to find each
//!   activation's range; weights become int8 symmetric, biases int32 with scale
//!   `input_scale * weight_scale`, activations int8 with a scale and zero point;
//! - one weight scale per output channel (the TensorFlow Lite default) against one
//!   for the whole tensor, side by side;
//! - integer-only inference: the input is quantized once, then every Dense layer is
//!   `quant::fully_connected` on int8 values, and the digit is the largest int8
//!   logit (no dequantization needed); the sine model's one output is dequantized;
//! - model sizes: f32 is 4 bytes a parameter; int8 is 1 byte a weight, 4 a bias
//!   (int32), 4 a weight scale, and 8 (scale and zero point) for each activation
//!   tensor.
//!
//! - a convolutional network quantized with `quant::quantize::quantize_sequential`:
//!   the batch norm is folded into the convolution before it
//!   (`quant::quantize::fold_batch_norm`), each ReLU into the layer before it, the
//!   max pooling keeps its input's scale, and the dropout is the identity.
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
use nn_core::kernels::conv::ConvGeometry;
use nn_core::kernels::pool::PoolGeometry;
use nn_core::prelude::*;
use nn_core::quant::calibrate::{quantize_dense_stack, FloatDense, QuantizeOptions, QuantizedDense, WeightGranularity};
use nn_core::quant::quantize::{fold_batch_norm, quantize_sequential, FloatConv2d, FloatLayer, QuantizedSequential};
use nn_core::quant::{FusedActivation, QuantError};
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

/// The dense layers of the MLP (the dropouts are the identity at inference).
const MLP_DENSE: [(&str, FusedActivation); 3] =
    [("hidden1", FusedActivation::Relu), ("hidden2", FusedActivation::Relu), ("logits", FusedActivation::None)];
/// The dense layers of the sine model.
const SINE_DENSE: [(&str, FusedActivation); 3] =
    [("hidden1", FusedActivation::Relu), ("hidden2", FusedActivation::Relu), ("out", FusedActivation::None)];

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

/// The f32 Dense layers `names` of `model`, read from its parameters by name.
fn float_dense<'a, L: Network>(
    model: &'a Model<L>,
    names: &[(&str, FusedActivation)],
) -> Result<Vec<FloatDense<'a>>, Box<dyn std::error::Error>> {
    names
        .iter()
        .map(|&(name, activation)| {
            let (shape, weight) = model_tensor(model, &format!("{name}.weight"))?;
            let (_, bias) = model_tensor(model, &format!("{name}.bias"))?;
            Ok(FloatDense { weight, bias, inputs: shape[1], outputs: shape[0], activation })
        })
        .collect()
}

/// `BatchNorm2d`'s epsilon (PyTorch's default).
const BATCH_NORM_EPS: f32 = 1e-5;

/// The CNN's convolutions with the batch norm folded into the first, and its
/// inference-time layers: conv1 + bn1 + ReLU, conv2 + ReLU, 2x2 max pooling, fc1 +
/// ReLU, logits (the flatten is implicit, the dropout the identity).
struct FloatCnn<'a> {
    conv1: (Vec<f32>, Vec<f32>),
    conv2: (&'a [f32], &'a [f32]),
    fc1: FloatDense<'a>,
    logits: FloatDense<'a>,
    /// Bytes of the f32 model's inference state: its parameters and running statistics.
    f32_bytes: usize,
}

impl<'a> FloatCnn<'a> {
    fn new(model: &'a Model<DigitCnn>) -> Result<Self, Box<dyn std::error::Error>> {
        let (mut w1, mut b1) =
            (model_tensor(model, "conv1.weight")?.1.to_vec(), model_tensor(model, "conv1.bias")?.1.to_vec());
        let [gamma, beta, mean, var] =
            ["weight", "bias", "running_mean", "running_var"].map(|t| model_tensor(model, &format!("bn1.{t}")));
        let (gamma, beta, mean, var) = (gamma?.1, beta?.1, mean?.1, var?.1);
        fold_batch_norm(&mut w1, &mut b1, gamma, beta, mean, var, BATCH_NORM_EPS)?;
        let dense = float_dense(model, &[("fc1", FusedActivation::Relu), ("logits", FusedActivation::None)])?;
        Ok(FloatCnn {
            conv1: (w1, b1),
            conv2: (model_tensor(model, "conv2.weight")?.1, model_tensor(model, "conv2.bias")?.1),
            fc1: dense[0],
            logits: dense[1],
            f32_bytes: 4 * (model.params().len() + mean.len() + var.len()),
        })
    }

    fn layers<'b>(&'b self) -> Vec<FloatLayer<'b>> {
        let same_3x3 = |channels| ConvGeometry {
            channels,
            height: 8,
            width: 8,
            kernel: [3, 3],
            stride: [1, 1],
            padding: [1, 1],
            dilation: [1, 1],
            out_height: 8,
            out_width: 8,
        };
        let conv = |channels, filters, (weight, bias): (&'b [f32], &'b [f32])| -> FloatLayer<'b> {
            FloatLayer::Conv2d(FloatConv2d {
                weight,
                bias,
                geometry: same_3x3(channels),
                filters,
                groups: 1,
                activation: FusedActivation::Relu,
            })
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
        vec![
            conv(1, 16, (&self.conv1.0, &self.conv1.1)),
            conv(16, 32, self.conv2),
            FloatLayer::MaxPool2d { geometry: pool, channels: 32 },
            FloatLayer::Dense(self.fc1),
            FloatLayer::Dense(self.logits),
        ]
    }
}

/// Bytes of an int8 network, counted as [`int8_bytes`] counts them.
fn network_int8_bytes(network: &QuantizedSequential) -> usize {
    let weighted: Vec<_> = network.layers.iter().filter(|l| !l.weight_scales().is_empty()).collect();
    let per_layer: usize = weighted
        .iter()
        .map(|l| match l.layer() {
            nn_core::quant::sequential::Int8Layer::Dense { weight, bias, .. }
            | nn_core::quant::sequential::Int8Layer::Conv2d { weight, bias, .. } => {
                weight.len() + 4 * bias.len() + 4 * l.weight_scales().len()
            }
            _ => 0,
        })
        .sum();
    per_layer + 8 * (weighted.len() + 1)
}

/// Test accuracy of an int8 network on `test`: the digit is its largest int8 logit.
fn network_accuracy(network: &QuantizedSequential, test: &Dataset) -> Result<f32, QuantError> {
    let mut correct = 0;
    for i in 0..test.len() {
        if argmax(&network.forward_real(test.input(i))?) == test.target(i)[0] as usize {
            correct += 1;
        }
    }
    Ok(correct as f32 / test.len() as f32)
}

/// Bytes of an f32 Dense stack: 4 a parameter.
fn f32_bytes(layers: &[FloatDense<'_>]) -> usize {
    layers.iter().map(|l| 4 * (l.weight.len() + l.bias.len())).sum()
}

/// Bytes of an int8 Dense stack: 1 a weight, 4 a bias, 4 a weight scale, and a scale
/// and zero point (8 bytes) for the input and each layer's output.
fn int8_bytes(layers: &[QuantizedDense]) -> usize {
    let per_layer: usize = layers.iter().map(|l| l.weight.len() + 4 * l.bias.len() + 4 * l.weight_scales.len()).sum();
    per_layer + 8 * (layers.len() + 1)
}

/// One sample through the int8 stack: quantizes `x` with the first layer's input
/// quantization, then runs the integer kernels; returns the last layer's int8 output.
fn int8_forward(layers: &[QuantizedDense], x: &[f32]) -> Result<Vec<i8>, QuantError> {
    let mut q: Vec<i8> = x.iter().map(|&v| layers[0].input.quantize(v)).collect();
    for layer in layers {
        let mut y = vec![0i8; layer.bias.len()];
        layer.forward(&q, &mut y)?;
        q = y;
    }
    Ok(q)
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

/// Test accuracy of the int8 stack on `test`.
fn int8_accuracy(layers: &[QuantizedDense], test: &Dataset) -> Result<f32, QuantError> {
    let mut correct = 0;
    for i in 0..test.len() {
        let logits = int8_forward(layers, test.input(i))?;
        if argmax(&logits) == test.target(i)[0] as usize {
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
fn sine_int8(layers: &[QuantizedDense], xs: &[f32]) -> Result<Vec<f32>, QuantError> {
    let output = layers[layers.len() - 1].output;
    xs.iter().map(|&x| Ok(output.dequantize(int8_forward(layers, &[x])?[0]))).collect()
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
    let mlp_layers = float_dense(&mlp, &MLP_DENSE)?;
    let quantize_mlp = |weights| -> Result<DigitsInt8, Box<dyn std::error::Error>> {
        let options = QuantizeOptions { weights, ..QuantizeOptions::default() };
        let layers = quantize_dense_stack(&mlp_layers, calibration, &options)?;
        Ok(DigitsInt8 { accuracy: int8_accuracy(&layers, &test)?, bytes: int8_bytes(&layers) })
    };
    let mlp_per_channel = quantize_mlp(WeightGranularity::PerChannel)?;
    let mlp_per_tensor = quantize_mlp(WeightGranularity::PerTensor)?;

    let float_cnn = FloatCnn::new(&cnn)?;
    let cnn_layers = float_cnn.layers();
    let quantize_cnn = |weights| -> Result<DigitsInt8, Box<dyn std::error::Error>> {
        let options = QuantizeOptions { weights, ..QuantizeOptions::default() };
        let network = quantize_sequential(&cnn_layers, calibration, &options)?;
        Ok(DigitsInt8 { accuracy: network_accuracy(&network, &test)?, bytes: network_int8_bytes(&network) })
    };
    let cnn_per_channel = quantize_cnn(WeightGranularity::PerChannel)?;
    let cnn_per_tensor = quantize_cnn(WeightGranularity::PerTensor)?;

    // The sine model, calibrated on its training grid, tested between its points.
    let grid: Vec<f32> = (0..SINE_TEST_POINTS).map(|i| TAU * i as f32 / (SINE_TEST_POINTS - 1) as f32).collect();
    let sine_f32 = sine_errors(&grid, &sine.predict(&grid)?);
    let sine_layers = float_dense(&sine, &SINE_DENSE)?;
    let per_channel = quantize_dense_stack(&sine_layers, sine_train.inputs(), &QuantizeOptions::default())?;
    let options = QuantizeOptions { weights: WeightGranularity::PerTensor, ..QuantizeOptions::default() };
    let per_tensor = quantize_dense_stack(&sine_layers, sine_train.inputs(), &options)?;

    Ok(Report {
        test_samples: test.len(),
        mlp_f32_accuracy,
        mlp_f32_bytes: f32_bytes(&mlp_layers),
        mlp_per_channel,
        mlp_per_tensor,
        cnn_f32_accuracy,
        cnn_f32_bytes: float_cnn.f32_bytes,
        cnn_per_channel,
        cnn_per_tensor,
        sine_f32,
        sine_int8: sine_errors(&grid, &sine_int8(&per_channel, &grid)?),
        sine_int8_per_tensor: sine_errors(&grid, &sine_int8(&per_tensor, &grid)?),
        sine_f32_bytes: f32_bytes(&sine_layers),
        sine_int8_bytes: int8_bytes(&per_channel),
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
