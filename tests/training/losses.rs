//! Every loss of `nn_core::loss`: its gradient against central differences of its
//! own value, hand-computed values for tiny cases, the stability of the `from_logits`
//! forms at logits of +-1000, and target validation.
//!
//! Finite differences: tolerance `1e-4 + 1e-3 |expected|`. The loss is an `f32`, so
//! its rounding divided by `2h` is about `6e-8 |L| / h`; the truncation is `h^2 / 6`
//! times the third derivative. Logits, regressions and MAE (kept 0.1 from its kink)
//! take `h = 1e-2`; probabilities stay in `[0.2, 0.8]`, away from the clamps, where the
//! third derivative of `-ln p` is at most `2 / p^3 = 250`, and take `h = 3e-3`.
//!
//! Hand-computed values use `f64` math written here from the definitions
//! (PyTorch's `MSELoss`, `L1Loss`, `BCELoss`, `BCEWithLogitsLoss`, `CrossEntropyLoss`
//! and Keras's categorical cross-entropy), within `1e-6` relative: the `f32` rounding
//! of the inputs and the result.
use crate::gradcheck;

use gradcheck::{assert_close, assert_close_where, central_differences_f32, uniform, Tolerance};
use nn_core::loss::{
    BinaryCrossEntropy, CategoricalCrossEntropy, GanLoss, Loss, MeanAbsoluteError, MeanSquaredError,
    SparseCategoricalCrossEntropy, TargetError,
};
use nn_core::Rng;

/// The step of the finite differences on logits and regression outputs.
const H_SMOOTH: f32 = 1e-2;
/// The step of the finite differences on probabilities.
const H_PROBABILITY: f32 = 3e-3;
/// Analytic gradient against finite differences of the `f32` loss.
const DIFFERENCES: Tolerance = Tolerance { abs: 1e-4, rel: 1e-3 };
/// Against hand-computed `f64` values.
const EXACT: Tolerance = Tolerance { abs: 1e-7, rel: 1e-6 };

/// Checks `loss`'s gradient against central differences of its value; where `kink` is
/// set, a difference that moves a prediction across its target is skipped (none may).
fn check_gradient<L: Loss>(what: &str, loss: &L, pred: &[f32], target: &[f32], width: usize, h: f32, kink: bool) {
    // The gradient is written, not accumulated: it starts as NaN.
    let mut grad = vec![f32::NAN; pred.len()];
    let value = loss.compute(pred, target, width, Some(&mut grad));
    assert_eq!(value, loss.compute(pred, target, width, None), "{what}: the value does not depend on the gradient");
    let numeric = central_differences_f32(pred, h, |p| {
        let sides = if kink { p.iter().zip(target).map(|(p, t)| p > t).collect() } else { Vec::new() };
        (loss.compute(p, target, width, None) as f64, sides)
    });
    assert_close_where(&format!("{what}: gradient vs finite differences"), &grad, &numeric, DIFFERENCES, 0);
}

/// `batch` rows of `width` one-hot targets and their class indices.
fn one_hot(rng: &mut Rng, batch: usize, width: usize) -> (Vec<f32>, Vec<f32>) {
    let labels: Vec<f32> = (0..batch).map(|_| (rng.next_u32() as usize % width) as f32).collect();
    let mut targets = vec![0.0; batch * width];
    for (b, &label) in labels.iter().enumerate() {
        targets[b * width + label as usize] = 1.0;
    }
    (targets, labels)
}

/// `batch` rows of `width` positive values summing to `total`.
fn distributions(rng: &mut Rng, batch: usize, width: usize, total: f32) -> Vec<f32> {
    let mut rows = uniform(rng, batch * width, 0.1, 1.0);
    for row in rows.chunks_mut(width) {
        let sum: f32 = row.iter().sum();
        row.iter_mut().for_each(|v| *v *= total / sum);
    }
    rows
}

#[test]
fn regression_loss_gradients_match_finite_differences() {
    let mut rng = Rng::new(1);
    let (batch, width) = (4, 3);
    let pred = uniform(&mut rng, batch * width, -2.0, 2.0);
    let target = uniform(&mut rng, batch * width, -2.0, 2.0);
    check_gradient("mse", &MeanSquaredError, &pred, &target, width, H_SMOOTH, false);

    // MAE away from its kink: every prediction at least 0.1 from its target.
    let offsets = uniform(&mut rng, batch * width, 0.1, 1.0);
    let target: Vec<f32> =
        pred.iter().zip(&offsets).enumerate().map(|(i, (p, d))| if i % 2 == 0 { p + d } else { p - d }).collect();
    check_gradient("mae", &MeanAbsoluteError, &pred, &target, width, H_SMOOTH, true);
}

#[test]
fn binary_cross_entropy_gradients_match_finite_differences() {
    let mut rng = Rng::new(2);
    let n = 10;
    let hard: Vec<f32> = (0..n).map(|i| (i % 2) as f32).collect();
    let soft = uniform(&mut rng, n, 0.0, 1.0);
    let probabilities = uniform(&mut rng, n, 0.2, 0.8);
    let logits = uniform(&mut rng, n, -4.0, 4.0);
    for (kind, target) in [("hard", &hard), ("soft", &soft)] {
        let (bce, what) = (BinaryCrossEntropy::new(), format!("bce {kind}"));
        check_gradient(&what, &bce, &probabilities, target, 1, H_PROBABILITY, false);
        let (bce, what) = (BinaryCrossEntropy::from_logits(), format!("bce logits {kind}"));
        check_gradient(&what, &bce, &logits, target, 1, H_SMOOTH, false);
    }
}

#[test]
fn categorical_cross_entropy_gradients_match_finite_differences() {
    let mut rng = Rng::new(3);
    let (batch, width) = (4, 5);
    let (one_hot, labels) = one_hot(&mut rng, batch, width);
    let soft = distributions(&mut rng, batch, width, 1.0);
    // Soft targets that do not sum to 1 (label smoothing gone wrong still has a gradient).
    let unnormalised = distributions(&mut rng, batch, width, 1.5);
    let probabilities = uniform(&mut rng, batch * width, 0.2, 0.8);
    let logits = uniform(&mut rng, batch * width, -4.0, 4.0);
    for (kind, target) in [("one-hot", &one_hot), ("soft", &soft), ("sum 1.5", &unnormalised)] {
        let what = format!("cce {kind}");
        check_gradient(&what, &CategoricalCrossEntropy::new(), &probabilities, target, width, H_PROBABILITY, false);
        let what = format!("cce logits {kind}");
        check_gradient(&what, &CategoricalCrossEntropy::from_logits(), &logits, target, width, H_SMOOTH, false);
    }
    let sparse = SparseCategoricalCrossEntropy::new();
    check_gradient("sparse cce", &sparse, &probabilities, &labels, width, H_PROBABILITY, false);
    let sparse = SparseCategoricalCrossEntropy::from_logits();
    check_gradient("sparse cce logits", &sparse, &logits, &labels, width, H_SMOOTH, false);

    // The sparse forms equal the one-hot forms.
    let one_hot_logits = CategoricalCrossEntropy::from_logits().compute(&logits, &one_hot, width, None);
    let sparse_logits = SparseCategoricalCrossEntropy::from_logits().compute(&logits, &labels, width, None);
    assert!((one_hot_logits - sparse_logits).abs() <= 1e-6 * one_hot_logits.abs());
}

/// The loss and gradient of `loss`, against hand-computed values.
fn check_values<L: Loss>(what: &str, loss: &L, pred: &[f32], target: &[f32], width: usize, value: f64, grad: &[f64]) {
    let mut found = vec![f32::NAN; pred.len()];
    let found_value = loss.compute(pred, target, width, Some(&mut found));
    assert_close(&format!("{what}: value"), &[found_value], &[value], EXACT);
    assert_close(&format!("{what}: gradient"), &found, grad, EXACT);
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

#[test]
fn losses_match_hand_computed_values() {
    // MSE: mean of (1, 0, 4, 0); gradient 2 (p - t) / 4.
    check_values(
        "mse",
        &MeanSquaredError,
        &[1.0, 2.0, 3.0, 4.0],
        &[0.0, 2.0, 5.0, 4.0],
        2,
        1.25,
        &[0.5, 0.0, -1.0, 0.0],
    );
    // MAE: mean of (1, 0.5, 2, 0); gradient sign(p - t) / 4, 0 where p == t.
    check_values(
        "mae",
        &MeanAbsoluteError,
        &[1.0, 2.0, 3.0, 4.0],
        &[0.0, 2.5, 5.0, 4.0],
        2,
        0.875,
        &[0.25, -0.25, -0.25, 0.0],
    );

    // BCE on probabilities: -(t ln p + (1 - t) ln(1 - p)), gradient (p - t) / (p (1 - p)) / n.
    let bce = |p: f64, t: f64| -(t * p.ln() + (1.0 - t) * (1.0 - p).ln());
    let bce_grad = |p: f64, t: f64| (p - t) / (p * (1.0 - p));
    let (p, t) = ([0.8, 0.3, 0.5], [1.0, 0.0, 0.25]);
    check_values(
        "bce",
        &BinaryCrossEntropy::new(),
        &p.map(|v| v as f32),
        &t.map(|v| v as f32),
        1,
        (0..3).map(|i| bce(p[i], t[i])).sum::<f64>() / 3.0,
        &(0..3).map(|i| bce_grad(p[i], t[i]) / 3.0).collect::<Vec<_>>(),
    );
    // BCE on logits: the same loss of sigmoid(z); gradient (sigmoid(z) - t) / n.
    let (z, t) = ([2.0, -1.0, 0.5], [1.0, 0.0, 0.25]);
    check_values(
        "bce logits",
        &BinaryCrossEntropy::from_logits(),
        &z.map(|v| v as f32),
        &t.map(|v| v as f32),
        1,
        (0..3).map(|i| bce(sigmoid(z[i]), t[i])).sum::<f64>() / 3.0,
        &(0..3).map(|i| (sigmoid(z[i]) - t[i]) / 3.0).collect::<Vec<_>>(),
    );

    // CCE on probabilities, one-hot: mean over the batch of -ln p[label]; gradient
    // -t / p / batch.
    let (ln, half) = (f64::ln, 0.5);
    check_values(
        "cce",
        &CategoricalCrossEntropy::new(),
        &[0.7, 0.2, 0.1, 0.1, 0.1, 0.8],
        &[1.0, 0.0, 0.0, 0.0, 0.0, 1.0],
        3,
        -(ln(0.7) + ln(0.8)) * half,
        &[-half / 0.7, 0.0, 0.0, 0.0, 0.0, -half / 0.8],
    );
    // CCE on logits: ln(sum e^z) - z[label]; gradient softmax(z) - t. Second row: soft
    // target [0.5, 0.5, 0] with softmax [0.25, 0.75, 0] (logit ln 3 against 0, third
    // logit -inf in effect).
    let sum = 1f64.exp() + 2f64.exp() + 3f64.exp();
    let softmax = [1f64.exp() / sum, 2f64.exp() / sum, 3f64.exp() / sum];
    let tail = (-40f64).exp() / (1.0 + 3.0);
    check_values(
        "cce logits",
        &CategoricalCrossEntropy::from_logits(),
        &[1.0, 2.0, 3.0, 0.0, 3f64.ln() as f32, -40.0],
        &[0.0, 0.0, 1.0, 0.5, 0.5, 0.0],
        3,
        ((sum.ln() - 3.0) + -(0.5 * ln(0.25) + 0.5 * ln(0.75))) * half,
        &[softmax[0] * half, softmax[1] * half, (softmax[2] - 1.0) * half, -0.25 * half, 0.25 * half, tail * half],
    );

    // Sparse CCE: the same with class indices.
    check_values(
        "sparse cce",
        &SparseCategoricalCrossEntropy::new(),
        &[0.2, 0.5, 0.3, 0.6, 0.3, 0.1],
        &[1.0, 0.0],
        3,
        -(ln(0.5) + ln(0.6)) * half,
        &[0.0, -half / 0.5, 0.0, -half / 0.6, 0.0, 0.0],
    );
    check_values(
        "sparse cce logits",
        &SparseCategoricalCrossEntropy::from_logits(),
        &[1.0, 2.0, 3.0],
        &[0.0],
        3,
        sum.ln() - 1.0,
        &[softmax[0] - 1.0, softmax[1], softmax[2]],
    );
}

#[test]
fn probability_losses_clamp_like_keras() {
    // p = 0 against t = 1 costs -ln(1e-7), with a zero gradient past the clamp; p = 1
    // against t = 0 costs -ln(1 - (1 - 1e-7)), where 1 - 1e-7 rounds to 1 - 2^-23 in f32.
    let clamped = -(1e-7f32 as f64).ln();
    let clamped_high = -(1.0 - (1.0f32 - 1e-7) as f64).ln();
    assert_eq!(1.0f32 - 1e-7, 1.0 - f32::EPSILON);
    let mut grad = [f32::NAN; 2];
    let loss = BinaryCrossEntropy::new().compute(&[0.0, 1.0], &[1.0, 0.0], 1, Some(&mut grad));
    let expected = (clamped + clamped_high) / 2.0;
    assert_close("bce at 0 and 1", &[loss], &[expected], Tolerance { abs: 0.0, rel: 1e-6 });
    assert_eq!(grad, [0.0, 0.0]);

    let loss = CategoricalCrossEntropy::new().compute(&[0.0, 1.0], &[1.0, 0.0], 2, Some(&mut grad));
    assert_close("cce at 0", &[loss], &[clamped], Tolerance { abs: 0.0, rel: 1e-6 });
    assert_eq!(grad, [0.0, 0.0]);

    let loss = SparseCategoricalCrossEntropy::new().compute(&[0.0, 1.0], &[0.0], 2, Some(&mut grad));
    assert_close("sparse cce at 0", &[loss], &[clamped], Tolerance { abs: 0.0, rel: 1e-6 });
    assert_eq!(grad, [0.0, 0.0]);
}

#[test]
fn logit_losses_are_stable_at_extreme_logits() {
    // BCE: z = +-1000 against t = 1 and 0 costs max(z, 0) - z t + ln(1 + e^-|z|), that
    // is 0, 1000, 1000, 0; the gradient sigmoid(z) - t is 0, -1, 1, 0 (over n = 4).
    check_values(
        "bce logits at +-1000",
        &BinaryCrossEntropy::from_logits(),
        &[1000.0, -1000.0, 1000.0, -1000.0],
        &[1.0, 1.0, 0.0, 0.0],
        1,
        500.0,
        &[0.0, -0.25, 0.25, 0.0],
    );

    // CCE: [1000, -1000, 0] with label 1 costs 2000, gradient [1, -1, 0];
    // [-1000, 1000, 1000] with label 2 costs ln 2, gradient [0, 0.5, -0.5]; both over
    // a batch of 2.
    let logits = [1000.0, -1000.0, 0.0, -1000.0, 1000.0, 1000.0];
    let value = (2000.0 + 2f64.ln()) / 2.0;
    let grad = [0.5, -0.5, 0.0, 0.0, 0.25, -0.25];
    let one_hot = [0.0, 1.0, 0.0, 0.0, 0.0, 1.0];
    check_values("cce logits at +-1000", &CategoricalCrossEntropy::from_logits(), &logits, &one_hot, 3, value, &grad);
    let sparse = SparseCategoricalCrossEntropy::from_logits();
    check_values("sparse cce logits at +-1000", &sparse, &logits, &[1.0, 2.0], 3, value, &grad);
}

#[test]
fn sparse_targets_must_be_class_indices() {
    let loss = SparseCategoricalCrossEntropy::from_logits();
    assert_eq!(loss.target_len(10), 1);
    for label in [0.0, 1.0, 2.0] {
        assert_eq!(loss.check_target(&[label], 3), Ok(()), "label {label}");
    }
    for label in [-1.0, -0.5, 1.5, 3.0, 4.0, f32::INFINITY, f32::NEG_INFINITY] {
        assert_eq!(
            loss.check_target(&[label], 3),
            Err(TargetError::LabelOutOfRange { label, classes: 3 }),
            "label {label}"
        );
    }
    match loss.check_target(&[f32::NAN], 3) {
        Err(TargetError::LabelOutOfRange { label, classes: 3 }) => assert!(label.is_nan()),
        other => panic!("NaN label accepted: {other:?}"),
    }
    let message = loss.check_target(&[3.0], 3).unwrap_err().to_string();
    assert!(message.contains('3') && message.contains("0..3"), "{message}");
}

#[test]
fn dense_targets_must_be_finite() {
    fn check<L: Loss>(loss: L) {
        let name = L::NAME;
        assert_eq!(loss.check_target(&[0.0, 1.0, 0.5], 3), Ok(()), "{name}");
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            assert_eq!(loss.check_target(&[0.0, bad, 0.5], 3), Err(TargetError::NotFinite), "{name}: {bad}");
        }
    }
    check(MeanSquaredError);
    check(MeanAbsoluteError);
    check(BinaryCrossEntropy::new());
    check(BinaryCrossEntropy::from_logits());
    check(CategoricalCrossEntropy::new());
    check(CategoricalCrossEntropy::from_logits());
}

#[test]
fn gan_loss_gradients_match_finite_differences() {
    let mut rng = Rng::new(7);
    // Four samples of three patch scores each, one label per sample.
    let (batch, width) = (4, 3);
    let scores = uniform(&mut rng, batch * width, -3.0, 3.0);
    for loss in [GanLoss::logistic(), GanLoss::least_squares(), GanLoss::logistic().label_smoothing(0.1)] {
        let labels = [loss.real_label(), GanLoss::FAKE_LABEL, GanLoss::GENERATOR_LABEL, 0.3];
        check_gradient(&format!("{loss:?}"), &loss, &scores, &labels, width, H_SMOOTH, false);
    }
}

#[test]
fn gan_loss_broadcasts_each_label_over_its_samples_scores() {
    // The same values as the element-wise losses with the label repeated per score.
    let mut rng = Rng::new(8);
    let (batch, width) = (3, 4);
    let scores = uniform(&mut rng, batch * width, -3.0, 3.0);
    let labels = [0.9, 0.0, 1.0];
    let repeated: Vec<f32> = labels.iter().flat_map(|&t| [t; 4]).collect();
    for (gan, what) in [(GanLoss::logistic(), "logistic"), (GanLoss::least_squares(), "least squares")] {
        let mut grad = vec![f32::NAN; scores.len()];
        let value = gan.compute(&scores, &labels, width, Some(&mut grad));
        let mut expected_grad = vec![f32::NAN; scores.len()];
        let expected = if what == "logistic" {
            BinaryCrossEntropy::from_logits().compute(&scores, &repeated, width, Some(&mut expected_grad))
        } else {
            MeanSquaredError.compute(&scores, &repeated, width, Some(&mut expected_grad))
        };
        assert_close(&format!("{what}: value"), &[value], &[expected as f64], EXACT);
        let expected_grad: Vec<f64> = expected_grad.iter().map(|&g| g as f64).collect();
        assert_close(&format!("{what}: gradient"), &grad, &expected_grad, EXACT);
    }
    // One target value per sample; a label that is not finite is rejected.
    assert_eq!(GanLoss::logistic().target_len(width), 1);
    assert_eq!(GanLoss::least_squares().check_target(&[f32::NAN], width), Err(TargetError::NotFinite));
    assert_eq!(GanLoss::logistic().label_smoothing(0.2).real_label(), 0.8);
}
