//! Regularization and training control, checked against values computed by hand.
use nn_core::layers::Dense;
use nn_core::prelude::*;
use nn_core::train::regularize::apply_penalty;
use nn_core::train::{Constraint, GradClip, History, Mode, Penalty, Schedule, Select, TrainError};

fn dense_model(seed: u64) -> Model<Dense<3, 2>> {
    let mut m = Model::from_state(Dense::<3, 2>::new(Activation::Identity), vec![0.0; 8]).unwrap();
    m.init(seed);
    m
}

fn toy_data() -> Dataset {
    let mut rng = Rng::new(5);
    let n = 40;
    let x: Vec<f32> = (0..n * 3).map(|_| rng.normal()).collect();
    let y: Vec<f32> = x.chunks(3).flat_map(|r| [r[0] - 2.0 * r[1], 0.5 * r[2] + 1.0]).collect();
    Dataset::new(x, 3, y, 2).unwrap()
}

#[test]
fn l1_and_l2_penalty_values_and_gradients() {
    let params = [1.0f32, -2.0, 0.0, 3.0];
    let mut grads = [0.0f32; 4];
    let ranges = vec![(0..4, 2)];
    let v = apply_penalty(0.1, 0.01, &ranges, &params, &mut grads);
    // 0.1 * (1 + 2 + 0 + 3) + 0.01 * (1 + 4 + 0 + 9)
    assert!((v - 0.74).abs() < 1e-6, "{v}");
    // 0.1 * sign(w) + 2 * 0.01 * w
    let expected = [0.1 + 0.02, -0.1 - 0.04, 0.0, 0.1 + 0.06];
    for (g, e) in grads.iter().zip(expected) {
        assert!((g - e).abs() < 1e-6, "{g} vs {e}");
    }
}

#[test]
fn penalties_select_weights_not_biases() {
    let m = dense_model(1);
    let ranges = Select::Weights.ranges(m.layer());
    assert_eq!(ranges, vec![(0..6, 3)]);
    let all = Select::All.ranges(m.layer());
    assert_eq!(all, vec![(0..6, 3), (6..8, 2)]);
    assert_eq!(Select::layer("fc1").ranges(m.layer()), vec![]);
}

#[test]
fn constraints() {
    let ranges = vec![(0..6, 3)];
    // Rows [3, 4, 0] (norm 5) and [0.3, 0.4, 0] (norm 0.5).
    let base = [3.0f32, 4.0, 0.0, 0.3, 0.4, 0.0];
    let mut p = base;
    Constraint::MaxNorm(1.0).apply(&ranges, &mut p);
    assert!((p[0] - 0.6).abs() < 1e-5 && (p[1] - 0.8).abs() < 1e-5);
    assert_eq!(&p[3..], &base[3..], "a row within the bound is untouched");
    let mut p = base;
    Constraint::UnitNorm.apply(&ranges, &mut p);
    assert!((p[3] - 0.6).abs() < 1e-5 && (p[4] - 0.8).abs() < 1e-5);
    let mut p = [-1.0f32, 2.0, -0.5, 0.0, 7.0, -3.0];
    Constraint::NonNegative.apply(&ranges, &mut p);
    assert_eq!(p, [0.0, 2.0, 0.0, 0.0, 7.0, 0.0]);
    let mut p = [-1.0f32, 2.0, -0.5, 0.0, 7.0, -3.0];
    Constraint::Clip { min: -0.5, max: 1.0 }.apply(&ranges, &mut p);
    assert_eq!(p, [-0.5, 1.0, -0.5, 0.0, 1.0, -0.5]);
}

#[test]
fn gradient_clipping() {
    let mut g = [3.0f32, -4.0, 0.5];
    GradClip::Value(1.0).apply(&mut g);
    assert_eq!(g, [1.0, -1.0, 0.5]);
    let mut g = [3.0f32, 4.0];
    let norm = GradClip::GlobalNorm(1.0).apply(&mut g);
    assert!((norm - 5.0).abs() < 1e-6);
    // PyTorch: scale = 1 / (5 + 1e-6)
    assert!((g[0] - 0.6).abs() < 1e-6 && (g[1] - 0.8).abs() < 1e-6);
    let mut g = [0.3f32, 0.4];
    GradClip::GlobalNorm(1.0).apply(&mut g);
    assert_eq!(g, [0.3, 0.4], "below the bound nothing changes");
}

#[test]
fn schedules_at_known_steps() {
    let close = |a: f32, b: f32| assert!((a - b).abs() < 1e-7 * b.abs().max(1.0), "{a} vs {b}");
    let s = Schedule::StepDecay { initial: 0.1, factor: 0.5, every: 10 };
    close(s.rate(0, 0), 0.1);
    close(s.rate(999, 9), 0.1);
    close(s.rate(0, 10), 0.05);
    close(s.rate(0, 25), 0.025);
    let s = Schedule::Exponential { initial: 0.1, rate: 0.96, steps: 100 };
    close(s.rate(0, 0), 0.1);
    close(s.rate(100, 0), 0.096);
    close(s.rate(250, 0), 0.1 * 0.96f32.powf(2.5));
    let s = Schedule::InverseTime { initial: 0.1, rate: 0.5, steps: 10 };
    close(s.rate(20, 0), 0.05);
    let s = Schedule::Cosine { initial: 1.0, min: 0.0, warmup: 10, total: 110 };
    close(s.rate(0, 0), 0.1);
    close(s.rate(9, 0), 1.0);
    close(s.rate(10, 0), 1.0);
    close(s.rate(60, 0), 0.5);
    close(s.rate(110, 0), 0.0);
    let mut p = ReduceOnPlateau::new("val_loss", Mode::Min, 0.5, 2);
    let mut lr = 0.1;
    for v in [1.0, 0.9, 0.95, 0.96] {
        lr = p.update(v, lr);
    }
    close(lr, 0.05);
    lr = p.update(0.97, lr);
    close(lr, 0.05);
    lr = p.update(0.98, lr);
    close(lr, 0.025);
}

#[test]
fn frozen_parameters_are_unchanged_bit_for_bit() {
    let data = toy_data();
    let mut model = dense_model(3);
    let before = model.params().to_vec();
    let mut fit = Fit::new(Adam::new(0.05), MeanSquaredError)
        .epochs(5)
        .batch_size(8)
        .freeze(Select::Weights)
        .penalty(Penalty::l2(0.1).on(Select::All));
    fit.run(&mut model, &data, None).unwrap();
    assert_eq!(model.params()[..6], before[..6], "frozen weights changed");
    assert_ne!(model.params()[6..], before[6..], "biases should train");
    // With AdamW's decoupled decay too.
    let mut model = dense_model(3);
    let mut fit = Fit::new(AdamW::new(0.05, 0.1), MeanSquaredError).epochs(2).freeze(Select::Weights);
    fit.run(&mut model, &data, None).unwrap();
    assert_eq!(model.params()[..6], before[..6]);
}

#[test]
fn early_stopping_restores_the_best_epoch_exactly() {
    let data = toy_data();
    let (train, val) = data.split(0.5, 1);
    // A learning rate so large that the validation loss soon gets worse.
    let mut model = dense_model(4);
    let mut snapshots = Vec::new();
    let mut history = History::default();
    let mut fit = Fit::new(Sgd::new(0.6), MeanSquaredError)
        .epochs(30)
        .batch_size(4)
        .early_stopping(EarlyStopping::new("val_loss", Mode::Min, 2));
    fit.run_with(
        &mut model,
        &train,
        Some(&val),
        |m, _| {
            snapshots.push(m.state().to_vec());
            true
        },
        &mut history,
    )
    .unwrap();
    let val_losses = history.series("val_loss");
    let best = fit.early_stopping_state().unwrap().best_epoch();
    let min_epoch = 1 + val_losses.iter().enumerate().min_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
    assert_eq!(best, min_epoch);
    assert!(history.epochs.len() < 30, "training should have stopped early: {val_losses:?}");
    assert_eq!(history.epochs.len(), best + 2, "patience 2 means two epochs after the best");
    assert_eq!(model.state(), &snapshots[best - 1][..], "weights are not those of the best epoch");
}

#[test]
fn training_errors_name_the_problem() {
    let data = toy_data();
    let mut model = dense_model(1);
    let err = Fit::new(Sgd::new(0.1), MeanSquaredError).batch_size(0).run(&mut model, &data, None).unwrap_err();
    assert_eq!(err, TrainError::BatchSizeZero);
    let wrong = Dataset::new(vec![0.0; 8], 4, vec![0.0; 4], 2).unwrap();
    let err = Fit::new(Sgd::new(0.1), MeanSquaredError).run(&mut model, &wrong, None).unwrap_err();
    assert_eq!(err, TrainError::InputWidth { expected: 3, found: 4 });
    // A learning rate that diverges to infinity: the error names epoch and batch.
    let mut model = dense_model(1);
    let before = model.state().to_vec();
    let err = Fit::new(Sgd::new(1e6), MeanSquaredError).epochs(50).batch_size(8).run(&mut model, &data, None);
    match err {
        Err(TrainError::NonFiniteLoss { epoch, batch, .. }) => {
            assert!(epoch >= 1 && batch >= 1);
            let msg = err.unwrap_err().to_string();
            assert!(msg.contains(&format!("epoch {epoch}, batch {batch}")), "{msg}");
        }
        other => panic!("expected a non-finite loss error, got {other:?}"),
    }
    assert_ne!(model.state(), &before[..]);
    let mut labels = Dataset::new(vec![0.0; 6], 3, vec![0.0, 2.0], 1).unwrap();
    let err = Fit::new(Sgd::new(0.1), SparseCategoricalCrossEntropy::from_logits())
        .run(&mut model, &labels, None)
        .unwrap_err();
    assert!(matches!(err, TrainError::BadTarget { sample: 1, .. }), "{err:?}");
    assert!(err.to_string().contains("label 2"), "{err}");
    labels.inputs_mut()[4] = f32::NAN;
    let err = Model::<Dense<3, 2>>::from_state(Dense::new(Activation::Identity), vec![0.0; 8])
        .unwrap()
        .evaluate(&labels, &MeanSquaredError, &[])
        .unwrap_err();
    assert!(matches!(err, TrainError::TargetWidth { .. } | TrainError::NonFiniteInput { .. }), "{err:?}");
}

#[test]
fn same_seed_same_result() {
    let data = toy_data();
    let run = || {
        let mut model = dense_model(9);
        Fit::new(Adam::new(0.01), MeanSquaredError)
            .epochs(3)
            .batch_size(7)
            .seed(42)
            .run(&mut model, &data, None)
            .unwrap();
        model.state().to_vec()
    };
    assert_eq!(run(), run());
}

#[test]
fn validation_split_takes_the_last_samples() {
    let data = toy_data();
    let mut model = dense_model(2);
    let history = Fit::new(Adam::new(0.01), MeanSquaredError)
        .epochs(2)
        .validation_split(0.25)
        .run(&mut model, &data, None)
        .unwrap();
    assert_eq!(history.series("val_loss").len(), 2);
    let val = data.select(&(30..40).collect::<Vec<_>>());
    let e = model.evaluate(&val, &MeanSquaredError, &[]).unwrap();
    assert!((e.loss - history.series("val_loss")[1]).abs() < 1e-6);
}
