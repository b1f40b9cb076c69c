//! The regularization and transfer-learning examples, run with their own settings and
//! checked against what they promise.
//!
//! Each example file is compiled into this test as a module and its `run` function is
//! called, so the test exercises exactly the code a reader runs (only `main`, which
//! prints, is left out).
use std::path::Path;

#[allow(dead_code)]
#[path = "../../examples/04_regularization.rs"]
mod example;

#[allow(dead_code)]
#[path = "../../examples/13_transfer_learning.rs"]
mod transfer_learning;

fn png_size(path: &Path) -> (u32, u32) {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let reader = png::Decoder::new(std::io::BufReader::new(file)).read_info().expect("a PNG");
    let info = reader.info();
    (info.width, info.height)
}

#[test]
fn a_regularized_run_beats_the_over_fitted_one() {
    use example::{EPOCHS, RUNS};
    let curves = Path::new(env!("CARGO_TARGET_TMPDIR")).join("04_regularization.png");
    let _ = std::fs::remove_file(&curves);
    let report = example::run(EPOCHS, &curves, false).unwrap();

    assert_eq!(report.runs.iter().map(|r| r.name).collect::<Vec<_>>(), RUNS);
    assert_eq!(report.test_samples, 1797 - 200 - 200);
    let none = report.accuracy("none");
    let best = RUNS[1..].iter().map(|name| report.accuracy(name)).fold(f32::MIN, f32::max);
    assert!(best > none, "no regularized run beats {none}: {:?}", report.runs);

    // Every run but early stopping trains all epochs; early stopping follows the
    // unregularized run exactly (same seed, same batches) until it stops, and keeps
    // the epoch with the lowest validation loss.
    for run in &report.runs[..4] {
        assert_eq!(run.history.epochs.len(), EPOCHS, "{}", run.name);
    }
    let early = &report.runs[4].history;
    assert!(early.epochs.len() < EPOCHS, "early stopping ran all {EPOCHS} epochs");
    assert_eq!(early.epochs[..], report.runs[0].history.epochs[..early.epochs.len()]);
    let val = early.series("val_loss");
    let lowest = (0..val.len()).min_by(|&a, &b| val[a].total_cmp(&val[b])).unwrap();
    assert_eq!(report.best_epoch, lowest + 1);
    assert_eq!(early.epochs.len(), report.best_epoch + example::PATIENCE);

    // Three charts of five curves, side by side.
    assert_eq!(png_size(&curves), (1440, 360));
}

#[test]
fn transfer_learning_loads_and_freezes_the_extractor() {
    use transfer_learning::{EPOCHS, PRETRAIN_EPOCHS, SEEDS, SHOTS};
    let folder = Path::new(env!("CARGO_TARGET_TMPDIR")).join("13_transfer_learning");
    let report = transfer_learning::run(SEEDS[0], PRETRAIN_EPOCHS, EPOCHS, &folder, false).unwrap();

    assert!(report.pretrain_accuracy >= 0.97, "pretraining: {}", report.pretrain_accuracy);
    assert_eq!(
        report.loaded,
        ["features.conv1.weight", "features.conv1.bias", "features.conv2.weight", "features.conv2.bias"]
    );
    assert!(report.extractor_unchanged, "the frozen extractor changed");
    assert_eq!(report.train_samples, 5 * SHOTS);
    // The bundled file holds 896 images of the digits 5 to 9.
    assert_eq!(report.test_samples, 896 - 5 * SHOTS);
    // What the example states: the frozen pretrained extractor beats the same network
    // trained from scratch on the same images by a clear margin (8.6 points with this
    // seed, 3.8 to 8.6 over the three seeds of `main`), and random frozen features do
    // worse than both.
    assert!(report.transfer_accuracy >= report.scratch_accuracy + 0.05, "{report:?}");
    assert!(report.random_features_accuracy < report.scratch_accuracy, "{report:?}");
    assert!(folder.join("13_transfer_learning_features.safetensors").is_file());
}
