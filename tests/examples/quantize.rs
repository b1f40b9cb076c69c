//! `15_quantize`: the int8 digits MLP, digits CNN and sine model against their f32 originals.
//!
//! The example file is compiled into this test as a module and its `run` function is
//! called with the example's own settings (only `main`, which prints, is left out).

#[allow(dead_code)]
#[path = "../../examples/15_quantize.rs"]
mod example;

use std::sync::OnceLock;

/// The example's run, shared by the tests (it trains both models once).
fn report() -> &'static example::Report {
    static REPORT: OnceLock<example::Report> = OnceLock::new();
    REPORT.get_or_init(|| example::run(example::MLP_EPOCHS, example::CNN_EPOCHS, example::SINE_EPOCHS, false).unwrap())
}

#[test]
fn int8_mlp_keeps_its_accuracy_in_under_a_third_of_the_bytes() {
    let r = report();
    assert_eq!(r.test_samples, 359);
    assert!(r.mlp_f32_accuracy >= 0.97, "f32 accuracy {}", r.mlp_f32_accuracy);
    for (granularity, int8) in [("per channel", r.mlp_per_channel), ("per tensor", r.mlp_per_tensor)] {
        let points = 100.0 * (int8.accuracy - r.mlp_f32_accuracy).abs();
        assert!(points <= 0.5, "{granularity}: int8 {} vs f32 {}", int8.accuracy, r.mlp_f32_accuracy);
    }
    // 17024 weights, 202 biases: 4 bytes each in f32.
    assert_eq!(r.mlp_f32_bytes, 4 * (64 * 128 + 128 * 64 + 64 * 10 + 128 + 64 + 10));
    // 1 byte a weight, 4 a bias and a weight scale, 8 for each of the 4 activation tensors.
    assert_eq!(r.mlp_per_channel.bytes, 17024 + 4 * 202 + 4 * 202 + 8 * 4);
    assert_eq!(r.mlp_per_tensor.bytes, 17024 + 4 * 202 + 4 * 3 + 8 * 4);
    assert!(10 * r.mlp_per_channel.bytes <= 3 * r.mlp_f32_bytes);
}

#[test]
fn int8_cnn_keeps_its_accuracy_in_about_a_quarter_of_the_bytes() {
    let r = report();
    assert!(r.cnn_f32_accuracy >= 0.985, "f32 accuracy {}", r.cnn_f32_accuracy);
    for (granularity, int8) in [("per channel", r.cnn_per_channel), ("per tensor", r.cnn_per_tensor)] {
        let points = 100.0 * (int8.accuracy - r.cnn_f32_accuracy).abs();
        assert!(points <= 0.5, "{granularity}: int8 {} vs f32 {}", int8.accuracy, r.cnn_f32_accuracy);
    }
    // conv1 160, bn1 32 (and 32 running statistics), conv2 4640, fc1 32832, logits 650.
    assert_eq!(r.cnn_f32_bytes, 4 * (160 + 32 + 32 + 4640 + 32832 + 650));
    // The batch norm folded away: 38160 int8 weights, 122 int32 biases, 122 weight
    // scales per channel (4 per tensor), 8 bytes for each of the 5 activation tensors.
    assert_eq!(r.cnn_per_channel.bytes, 38160 + 4 * 122 + 4 * 122 + 8 * 5);
    assert_eq!(r.cnn_per_tensor.bytes, 38160 + 4 * 122 + 4 * 4 + 8 * 5);
    assert!(100 * r.cnn_per_channel.bytes <= 26 * r.cnn_f32_bytes);
}

#[test]
fn int8_sine_model_stays_close_to_sin() {
    let r = report();
    // 288 weights and 33 biases.
    assert_eq!(r.sine_f32_bytes, 4 * (288 + 33));
    assert_eq!(r.sine_int8_bytes, 288 + 4 * 33 + 4 * 33 + 8 * 4);
    assert!(r.sine_f32.max_error < 0.1, "f32 {:?}", r.sine_f32);
    for int8 in [r.sine_int8, r.sine_int8_per_tensor] {
        // An output step of the int8 model is about 2 / 255; the error grows by a few.
        assert!(int8.max_error < r.sine_f32.max_error + 0.05, "int8 {int8:?} vs f32 {:?}", r.sine_f32);
        assert!(int8.mse < 1e-3, "int8 {int8:?} vs f32 {:?}", r.sine_f32);
    }
}
