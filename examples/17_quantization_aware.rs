//! # 17. Quantization-aware training: train for the int8 model you will run
//!
//! Post-training quantization (`15_quantize`) rounds a trained f32 model to int8 and
//! hopes that the rounding does not matter. Quantization-aware training lets the model
//! see the rounding while it trains, so that it learns weights and activation ranges
//! that survive it (PyTorch's `torch.ao.quantization` QAT, TensorFlow's
//! `tfmot.quantization.keras.quantize_model`). It teaches:
//!
//! - `FakeQuant` layers in `network!`: each quantizes and dequantizes the activations
//!   it reads to int8 (one scale and zero point for the tensor), passes the gradient
//!   straight through where a value lies in the range and not where it saturated, and
//!   learns the range as a moving average of the batches' (frozen in `model.eval()`);
//! - `Fit::fake_quantize_weights`: the forward and backward passes see the weights
//!   int8 symmetric (here one scale per tensor, the harder case), while the optimizer
//!   updates the float weights underneath (the straight-through estimator);
//! - `model.quantize(..)` of a model with `FakeQuant` layers: the activations they
//!   follow take the trained ranges instead of the calibration set's, and the int8
//!   network computes what training saw.
//!
//! The recipe is PyTorch's: train in f32, then fine-tune with fake quantization. Both
//! models here start from the same f32 training; one continues in f32 and is quantized
//! after training, the other continues with fake quantization. The model is the
//! TinyML "hello world" sine model of `15_quantize` made smaller (Dense 8 ReLU,
//! Dense 8 ReLU, Dense 1, on `[0, 2π]`), with one weight scale per tensor: with so
//! few units every rounded weight counts.
//!
//! Run it with `cargo run --release --example 17_quantization_aware`.
use std::f32::consts::TAU;

use nn_core::prelude::*;
use nn_core::quant::calibrate::{QuantizeOptions, WeightGranularity};
use nn_core::quant::network::Quantize;
use nn_core::quant::qat::WeightFakeQuant;
use nn_core::quant::quantize::QuantizedSequential;
use nn_core::quant::QuantError;
use nn_core::train::Select;
use nn_examples::{timed, JsonObject};

network! {
    /// The f32 model.
    pub struct Sine: [1] -> [1] {
        hidden1: Dense { units: 8, activation: Relu },
        hidden2: Dense { units: 8, activation: Relu },
        out: Dense { units: 1 },
    }
}

network! {
    /// The same layers with a `FakeQuant` after the input and after every layer: the
    /// tensors int8 will quantize.
    pub struct SineQat: [1] -> [1] {
        input_quant: FakeQuant,
        hidden1: Dense { units: 8, activation: Relu },
        hidden1_quant: FakeQuant,
        hidden2: Dense { units: 8, activation: Relu },
        hidden2_quant: FakeQuant,
        out: Dense { units: 1 },
        out_quant: FakeQuant,
    }
}

/// The seeds of the initial weights and the shuffling, one run each.
pub const SEEDS: std::ops::RangeInclusive<u64> = 1..=5;
/// Epochs of f32 training both models start from.
pub const F32_EPOCHS: usize = 1000;
/// Epochs each model then continues: in f32, or with fake quantization.
pub const FINE_TUNE_EPOCHS: usize = 1000;
/// The learning rate of the fine-tuning (Adam).
const FINE_TUNE_RATE: f32 = 1e-3;
/// The batch of the fine-tuning: large enough that a batch's extremes, which the
/// `FakeQuant` ranges follow, are near the data's (with batches of 32 the input's
/// range would stop short of 2π, and the largest inputs would saturate).
const FINE_TUNE_BATCH: usize = 250;
/// Points of the training grid on `[0, 2π]`.
const TRAIN_POINTS: usize = 1000;
/// Points of the test grid, none of them a training point.
pub const TEST_POINTS: usize = 629;
/// The weight scales of both int8 models.
pub const WEIGHTS: WeightGranularity = WeightGranularity::PerTensor;

/// Errors against `sin` on the test grid.
#[derive(Debug, Clone, Copy)]
pub struct Errors {
    /// Mean squared error.
    pub mse: f32,
    /// Largest absolute error.
    pub max_error: f32,
}

/// What a run measured.
pub struct Report {
    /// The f32 model after all its epochs.
    pub f32_model: Errors,
    /// That model quantized after training.
    pub post_training: Errors,
    /// The fine-tuned model with fake quantization, in f32 inference (what it trained).
    pub qat_float: Errors,
    /// That model quantized: its int8 network.
    pub qat_int8: Errors,
    /// The mean absolute difference between the fake-quantized f32 inference and the
    /// int8 network's dequantized output.
    pub qat_float_vs_int8: f32,
    /// Seconds of training, all of it.
    pub train_seconds: f64,
}

/// Mean squared and largest absolute error of `predictions` against `sin(xs)`.
fn errors(xs: &[f32], predictions: &[f32]) -> Errors {
    let mut sum = 0.0f64;
    let mut max_error = 0.0f32;
    for (&x, &p) in xs.iter().zip(predictions) {
        let e = p - x.sin();
        sum += (e as f64) * (e as f64);
        max_error = max_error.max(e.abs());
    }
    Errors { mse: (sum / xs.len() as f64) as f32, max_error }
}

/// The int8 network's predictions on `xs`, dequantized.
fn int8_predictions(network: &QuantizedSequential, xs: &[f32]) -> Result<Vec<f32>, QuantError> {
    let output = network.output();
    xs.iter().map(|&x| Ok(output.dequantize(network.forward_real(&[x])?[0]))).collect()
}

/// Copies the parameters of `from` into the tensors of the same name of `to`.
fn copy_parameters<A: Network, B: Network>(from: &Model<A>, to: &mut Model<B>) {
    let mut source = Vec::new();
    from.visit_tensors(&mut |t| {
        if t.trainable {
            source.push((t.path.to_string(), from.params()[t.offset..t.offset + t.len].to_vec()));
        }
    });
    let mut targets = Vec::new();
    to.visit_tensors(&mut |t| {
        if t.trainable {
            targets.push((t.path.to_string(), t.offset));
        }
    });
    for (name, offset) in targets {
        if let Some((_, values)) = source.iter().find(|(n, _)| *n == name) {
            to.params_mut()[offset..offset + values.len()].copy_from_slice(values);
        }
    }
}

/// The fine-tuning's settings, for either model.
fn fine_tune<L: Layer>(epochs: usize, seed: u64) -> Fit<L, Adam, MeanSquaredError> {
    Fit::new(Adam::new(FINE_TUNE_RATE), MeanSquaredError).epochs(epochs).batch_size(FINE_TUNE_BATCH).seed(seed)
}

/// Trains, fine-tunes both ways, quantizes both and measures them.
pub fn run(seed: u64, f32_epochs: usize, fine_tune_epochs: usize) -> Result<Report, Box<dyn std::error::Error>> {
    let xs: Vec<f32> = (0..TRAIN_POINTS).map(|i| TAU * (i as f32 + 0.5) / TRAIN_POINTS as f32).collect();
    let ys: Vec<f32> = xs.iter().map(|x| x.sin()).collect();
    let train = Dataset::new(xs, 1, ys, 1)?;
    let grid: Vec<f32> = (0..TEST_POINTS).map(|i| TAU * i as f32 / (TEST_POINTS - 1) as f32).collect();

    // f32 training, then f32 fine-tuning at a lower rate.
    let mut model = Model::<Sine>::new(seed);
    let mut fit = Fit::new(Adam::new(1e-2), MeanSquaredError).epochs(f32_epochs).batch_size(32).seed(seed);
    let (trained, mut seconds) = timed(|| fit.run(&mut model, &train, None));
    trained?;
    let mut qat = Model::<SineQat>::new(seed);
    copy_parameters(&model, &mut qat);
    let mut fit = fine_tune(fine_tune_epochs, seed);
    let (trained, s) = timed(|| fit.run(&mut model, &train, None));
    trained?;
    seconds += s;

    // Quantization-aware fine-tuning from the same f32 weights.
    let mut fit = fine_tune(fine_tune_epochs, seed).fake_quantize_weights(Select::Weights, WEIGHTS);
    let (trained, s) = timed(|| fit.run(&mut qat, &train, None));
    trained?;
    seconds += s;
    qat.eval();

    let options = QuantizeOptions { weights: WEIGHTS, ..QuantizeOptions::default() };
    let post_training = model.quantize(train.inputs(), &options)?;
    let qat_int8 = qat.quantize(train.inputs(), &options)?;
    let qat_int8_predictions = int8_predictions(&qat_int8, &grid)?;
    // The f32 inference of the QAT model fake-quantizes its activations with the
    // trained ranges; its weights are the float ones, quantized here as training saw them.
    let mut quantized_weights = qat.clone();
    WeightFakeQuant::of_weights(qat.layer(), WEIGHTS).quantize(quantized_weights.params_mut());
    let qat_float_predictions = quantized_weights.predict(&grid)?;
    let qat_float_vs_int8 =
        qat_float_predictions.iter().zip(&qat_int8_predictions).map(|(a, b)| (a - b).abs()).sum::<f32>()
            / grid.len() as f32;

    Ok(Report {
        f32_model: errors(&grid, &model.predict(&grid)?),
        post_training: errors(&grid, &int8_predictions(&post_training, &grid)?),
        qat_float: errors(&grid, &qat_float_predictions),
        qat_int8: errors(&grid, &qat_int8_predictions),
        qat_float_vs_int8,
        train_seconds: seconds,
    })
}

/// The mean of `f` over the runs.
pub fn mean(runs: &[Report], f: impl Fn(&Report) -> f32) -> f32 {
    runs.iter().map(f).sum::<f32>() / runs.len() as f32
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut runs = Vec::new();
    println!("sine model against sin(x) on {TEST_POINTS} points of [0, 2π], per-tensor int8 weights; MSE:");
    println!("  {:>4} {:>10} {:>12} {:>12} {:>12}", "seed", "f32", "int8 (PTQ)", "QAT f32", "int8 (QAT)");
    for seed in SEEDS {
        let r = run(seed, F32_EPOCHS, FINE_TUNE_EPOCHS)?;
        println!(
            "  {seed:>4} {:>10.6} {:>12.6} {:>12.6} {:>12.6}",
            r.f32_model.mse, r.post_training.mse, r.qat_float.mse, r.qat_int8.mse
        );
        runs.push(r);
    }
    let (f32_mse, ptq, qat_float, qat) = (
        mean(&runs, |r| r.f32_model.mse),
        mean(&runs, |r| r.post_training.mse),
        mean(&runs, |r| r.qat_float.mse),
        mean(&runs, |r| r.qat_int8.mse),
    );
    println!("  {:>4} {f32_mse:>10.6} {ptq:>12.6} {qat_float:>12.6} {qat:>12.6}", "mean");
    let gap = mean(&runs, |r| r.qat_float_vs_int8);
    println!("the QAT models' int8 outputs are on average {gap:.5} from their fake-quantized f32 inference");
    let seconds: f64 = runs.iter().map(|r| r.train_seconds).sum();
    let line = JsonObject::new()
        .string("example", "17_quantization_aware")
        .number("f32_mse", f32_mse.into())
        .number("post_training_int8_mse", ptq.into())
        .number("qat_int8_mse", qat.into())
        .number("f32_max_error", mean(&runs, |r| r.f32_model.max_error).into())
        .number("post_training_int8_max_error", mean(&runs, |r| r.post_training.max_error).into())
        .number("qat_int8_max_error", mean(&runs, |r| r.qat_int8.max_error).into())
        .number("qat_float_vs_int8", gap.into())
        .number("train_seconds", seconds);
    println!("{line}");
    Ok(())
}
