//! `17_quantization_aware`: a small per-tensor int8 sine model, quantized after
//! training against fine-tuned with fake quantization.
//!
//! The example file is compiled into this test as a module and its `run` function is
//! called with the example's own settings (only `main`, which prints, is left out).

#[allow(dead_code)]
#[path = "../../examples/17_quantization_aware.rs"]
mod example;

#[test]
fn quantization_aware_training_beats_post_training_quantization_on_average() {
    let runs: Vec<example::Report> = example::SEEDS
        .map(|seed| example::run(seed, example::F32_EPOCHS, example::FINE_TUNE_EPOCHS).unwrap())
        .collect();
    let f32_mse = example::mean(&runs, |r| r.f32_model.mse);
    let post_training = example::mean(&runs, |r| r.post_training.mse);
    let qat = example::mean(&runs, |r| r.qat_int8.mse);
    assert!(f32_mse < 0.002, "f32 MSE {f32_mse}");
    // Rounding to int8 costs the model; training with it recovers part of the loss.
    assert!(post_training > 1.5 * f32_mse, "post-training {post_training} vs f32 {f32_mse}");
    assert!(qat < 0.9 * post_training, "QAT {qat} vs post-training {post_training}");
    // The int8 network computes what the fake-quantized float network trained: on
    // average within a fraction of the output's step (2 / 255).
    for r in &runs {
        assert!(r.qat_float_vs_int8 < 0.004, "{}", r.qat_float_vs_int8);
        assert!((r.qat_int8.mse - r.qat_float.mse).abs() < 0.2 * r.qat_float.mse);
    }
}
