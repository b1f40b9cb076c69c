//! `firmware_int8`: the generated int8 modules baked into the firmware are what the
//! example writes from the f32 weights, and the int8 models keep the f32 accuracy.

#[allow(dead_code)]
#[path = "../../examples/firmware_int8.rs"]
mod example;

#[test]
fn generated_int8_modules_are_up_to_date_and_as_accurate_as_f32() {
    let q = example::quantize().unwrap();
    for (network, what, file) in
        [(&q.mlp_int8, example::MLP_WHAT, "digits_mlp_int8.rs"), (&q.cnn_int8, example::CNN_WHAT, "digits_cnn_int8.rs")]
    {
        let committed = std::fs::read_to_string(example::weights_dir().join(file)).unwrap();
        assert!(
            committed == example::source(network, what),
            "no-std-check/weights/{file} is stale: run `cargo run --release --example firmware_int8`"
        );
    }
    // 0.9889 and 0.9916 on the 359 test images: within half a point of f32.
    let (mlp_int8, mlp_f32) = example::accuracies(&q.mlp_int8, &q.mlp, &q.test).unwrap();
    let (cnn_int8, cnn_f32) = example::accuracies(&q.cnn_int8, &q.cnn, &q.test).unwrap();
    assert!((mlp_int8 - mlp_f32).abs() <= 0.005, "MLP int8 {mlp_int8} f32 {mlp_f32}");
    assert!((cnn_int8 - cnn_f32).abs() <= 0.005, "CNN int8 {cnn_int8} f32 {cnn_f32}");
}
