//! The Transformer example's training run, shortened: the code a reader runs (only
//! `main`, which prints, is left out) must sort unseen sequences. The full run (2500
//! steps) sorts every test sequence; a third of it already sorts almost all.
#[allow(dead_code)]
#[path = "../../examples/08_transformer.rs"]
mod example;

#[test]
fn transformer_learns_to_sort_unseen_sequences() {
    let report = example::run(800, false);
    assert!(report.token_accuracy >= 0.99, "token accuracy {}", report.token_accuracy);
    assert!(report.sequence_accuracy >= 0.95, "sequence accuracy {}", report.sequence_accuracy);
    // The heat map reads the weights of the trained model: every row is a distribution.
    let weights = example::attention_weights(&report.model, &report.test[..8], 1);
    assert_eq!(weights.len(), 4 * 8 * 8);
    for row in weights.chunks_exact(8) {
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    }
}
