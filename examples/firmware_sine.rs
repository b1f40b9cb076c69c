//! # Firmware: the TinyML "hello world" sine model
//!
//! Trains the `Sine` network of `no-std-check/src/nets.rs` (two dense layers of 16
//! ReLU units, then one output: the first example of TensorFlow Lite Micro and
//! MicroFlow) to give `sin(x)` for `x` in `[0, 2 pi]`, on 1000 seeded uniform samples
//! (20 % held out), and writes its weights to `firmware/weights/sine.safetensors`,
//! which the `sine` firmware bakes in (`firmware/src/bin/sine.rs`).
//!
//! Run it with `cargo run --release --example firmware_sine`; a second run writes the
//! same file.
use std::path::Path;

use nn_core::io::save_safetensors;
use nn_core::prelude::*;
use nn_examples::{timed, JsonObject};

#[path = "../no-std-check/src/nets.rs"]
#[allow(dead_code)]
mod nets;
use nets::Sine;

/// The seed of the samples, the split, the initial weights and the shuffling.
const SEED: u64 = 7;
/// Samples drawn.
const SAMPLES: usize = 1000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut rng = Rng::new(SEED);
    let x: Vec<f32> = (0..SAMPLES).map(|_| rng.uniform_in(0.0, core::f32::consts::TAU)).collect();
    let y: Vec<f32> = x.iter().map(|&x| (x as f64).sin() as f32).collect();
    let (train, test) = Dataset::new(x, 1, y, 1)?.split(0.2, SEED);

    let mut model = Model::<Sine>::new(SEED);
    let loss = MeanSquaredError;
    let mut fit = Fit::new(Adam::new(3e-3), loss).epochs(3000).batch_size(32).seed(SEED);
    let (history, seconds) = timed(|| fit.run(&mut model, &train, None));
    history?;
    let mse = model.evaluate(&test, &loss, &[])?.loss;
    let mut max_error = 0.0f32;
    for i in 0..=1000 {
        let x = i as f32 * core::f32::consts::TAU / 1000.0;
        max_error = max_error.max((model.predict_one(&[x].into())[0] - x.sin()).abs());
    }
    println!("test MSE {mse:.6}, largest error over [0, 2 pi] {max_error:.4} ({seconds:.1} s)");

    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("firmware/weights/sine.safetensors");
    save_safetensors(&model, &path)?;
    let line = JsonObject::new()
        .string("example", "firmware_sine")
        .number("test_mse", mse.into())
        .number("max_error", max_error.into())
        .integer("params", Sine::PARAMS as i64);
    println!("{line}");
    Ok(())
}
