//! The tutorial examples' training runs, checked against the results they promise.
//!
//! Each example file is compiled into this test as a module and its `run` function is
//! called with the example's own settings, so the test exercises exactly the code a
//! reader runs (only `main`, which prints, is left out).

#[allow(dead_code)]
#[path = "../../examples/01_perceptron.rs"]
mod perceptron;

#[allow(dead_code)]
#[path = "../../examples/02_mlp_digits.rs"]
mod mlp_digits;

#[allow(dead_code)]
#[path = "../../examples/03_regression_co2.rs"]
mod regression_co2;

#[test]
fn perceptron_separates_setosa_perfectly() {
    let report = perceptron::run(20).unwrap();
    assert_eq!(report.test_accuracy, 1.0);
    assert_eq!(report.train_accuracy, 1.0);
}

#[test]
fn mlp_reads_at_least_97_percent_of_test_digits() {
    let report = mlp_digits::run(mlp_digits::EPOCHS, false).unwrap();
    assert_eq!(report.epochs, mlp_digits::EPOCHS);
    assert_eq!(report.test_samples, 359);
    assert!(report.test_accuracy >= 0.97, "test accuracy {}", report.test_accuracy);
}

#[test]
fn co2_networks_beat_the_naive_forecasts() {
    let report = regression_co2::run(regression_co2::EPOCHS).unwrap();
    assert_eq!((report.weeks, report.missing_weeks), (2284, 59));
    // Every week before 1997 with a measured target and 52 weeks of history, then the
    // measured weeks of 1997-2001.
    assert_eq!(report.samples, (1929, 261));
    for (loss, scores) in [("MSE", report.trained_with_mse), ("MAE", report.trained_with_mae)] {
        assert!(
            scores.beats(&report.seasonal_naive),
            "trained with {loss}: {scores:?} vs seasonal naive {:?}",
            report.seasonal_naive
        );
        assert!(
            scores.beats(&report.persistence),
            "trained with {loss}: {scores:?} vs persistence {:?}",
            report.persistence
        );
    }
}
