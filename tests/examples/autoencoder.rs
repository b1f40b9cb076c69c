//! The autoencoder example's run, checked against what it promises: the better
//! autoencoder reconstructs the test digits better than PCA with as many components as
//! its code, and its frozen encoder feeds a classifier.

#[allow(dead_code)]
#[path = "../../examples/09_autoencoder.rs"]
mod example;

#[test]
fn an_autoencoder_beats_pca_and_its_frozen_encoder_classifies() {
    let report = example::run(example::EPOCHS, example::HEAD_EPOCHS, false).unwrap();
    let best = report.separate_mse.min(report.tied_mse);
    assert!(best < report.pca_mse, "{report:?}");
    assert!(report.separate_mse < 0.05 && report.tied_mse < 0.05, "{report:?}");
    assert!(report.encoder_unchanged, "the frozen encoder trained");
    assert!(report.frozen_encoder_accuracy >= 0.9, "{report:?}");
    assert!(report.picture.is_file());
    // Tied: the decoder keeps only its biases.
    assert_eq!(report.params.0 - report.params.1, 128 * 12 + 64 * 128);
}

#[test]
fn pca_reconstructs_data_in_its_span_exactly() {
    // Rows in a 2-dimensional affine subspace of R^4: 2 components reproduce them.
    let rows: Vec<f32> = (0..20)
        .flat_map(|i| {
            let (a, b) = ((i as f32 * 0.37).sin(), (i as f32 * 0.91).cos());
            [1.0 + a, 2.0 * a - b, b, 0.5 - a + 3.0 * b]
        })
        .collect();
    let pca = example::Pca::fit(&rows, 4, 2);
    let back = pca.reconstruct(&rows);
    for (x, y) in rows.iter().zip(&back) {
        assert!((x - y).abs() < 1e-5, "{x} against {y}");
    }
    // One component does not.
    let one = example::Pca::fit(&rows, 4, 1).reconstruct(&rows);
    assert!(rows.iter().zip(&one).any(|(x, y)| (x - y).abs() > 0.1));
}
