//! The ONNX import example, checked against the figures it promises: the imported
//! digits CNN gives onnxruntime's logits on the 359 test images.

#[allow(dead_code)]
#[path = "../../examples/16_import_onnx.rs"]
mod example;

#[test]
fn imported_onnx_model_matches_onnxruntime() {
    let report = example::run().unwrap();
    assert_eq!(report.test_samples, 359);
    // The bar of `14_import_pytorch`; the logits' sums run in another order than
    // onnxruntime's, so a logit near zero may differ by more than 1e-5 |e| + 1e-6.
    assert!(report.max_abs_diff <= 1e-5, "{report:?}");
    assert_eq!(report.argmax_agreement, 1.0);
    assert_eq!(report.test_accuracy, report.onnxruntime_test_accuracy);
    assert!(report.test_accuracy >= 0.97, "{report:?}");
    assert!(report.baked_same);
}
