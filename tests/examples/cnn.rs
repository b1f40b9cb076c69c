//! The CNN example's training run, checked against the accuracy it promises.

#[allow(dead_code)]
#[path = "../../examples/05_cnn_digits.rs"]
mod cnn_digits;

#[test]
fn cnn_reads_at_least_98_5_percent_of_test_digits() {
    let (accuracy, _) = cnn_digits::run(cnn_digits::EPOCHS, false).unwrap();
    assert!(accuracy >= 0.985, "test accuracy {accuracy}");
}
