//! Settings and inputs that training used to accept silently: each is a typed error
//! naming what is wrong, and the model never ends with a NaN weight it did not start
//! with.
use std::collections::BTreeMap;

use nn_core::io::{Checkpoint, LoadError};
use nn_core::loss::TargetError;
use nn_core::model::BatchLenError;
use nn_core::optim::{Optimizer, SettingError};
use nn_core::prelude::*;
use nn_core::train::OptimizerStateError;
use nn_core::train::{Constraint, GradClip, Metric, Mode, Penalty, Schedule, Select, TrainError};

network! {
    /// Two inputs, four hidden units, one output.
    pub struct Small: [2] -> [1] {
        hidden: Dense { units: 4, activation: Tanh },
        out: Dense { units: 1 },
    }
}

network! {
    /// Two inputs, three class scores.
    pub struct Classes: [2] -> [3] {
        out: Dense { units: 3 },
    }
}

/// Eight samples of two inputs with one target each.
fn data(targets: [f32; 8]) -> Dataset {
    let inputs = (0..16).map(|i| (i as f32 * 0.37).sin()).collect();
    Dataset::new(inputs, 2, targets.to_vec(), 1).unwrap()
}

fn regression() -> Dataset {
    data([0.5, -0.25, 1.0, 0.0, 0.75, -1.0, 0.25, 0.5])
}

/// Runs `fit` on a fresh model; returns the error and whether the model kept its
/// initial state bit for bit.
fn fails<O: Optimizer, Lo: Loss>(mut fit: Fit<Small, O, Lo>, train: &Dataset) -> (TrainError, bool) {
    let mut model = Model::<Small>::new(3);
    let before = model.state().to_vec();
    let err = fit.run(&mut model, train, None).expect_err("training must fail");
    let unchanged = model.state().iter().zip(&before).all(|(a, b)| a.to_bits() == b.to_bits());
    (err, unchanged)
}

fn setting(err: &TrainError) -> &'static str {
    match err {
        TrainError::InvalidSetting(e) => e.setting,
        other => panic!("expected InvalidSetting, got {other:?}"),
    }
}

#[test]
fn learning_rates_that_are_nan_or_infinite_are_rejected_before_the_first_step() {
    for lr in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.1] {
        let (err, unchanged) = fails(Fit::new(Sgd::new(lr), MeanSquaredError).epochs(1), &regression());
        assert_eq!(setting(&err), "Sgd.lr", "{lr}");
        assert!(unchanged);
        let (err, _) = fails(Fit::new(Adam::new(lr), MeanSquaredError), &regression());
        assert_eq!(setting(&err), "Adam.lr");
        let (err, _) = fails(Fit::new(RmsProp::new(lr), MeanSquaredError), &regression());
        assert_eq!(setting(&err), "RmsProp.lr");
        let (err, _) = fails(Fit::new(AdaGrad::new(lr), MeanSquaredError), &regression());
        assert_eq!(setting(&err), "AdaGrad.lr");
    }
    let fit = Fit::new(Sgd::new(0.1), MeanSquaredError).schedule(Schedule::Constant(f32::NAN));
    let (err, unchanged) = fails(fit, &regression());
    assert_eq!(setting(&err), "Schedule::Constant");
    assert!(unchanged);
    let decay = Schedule::Exponential { initial: 0.1, rate: f32::INFINITY, steps: 10 };
    let (err, _) = fails(Fit::new(Sgd::new(0.1), MeanSquaredError).schedule(decay), &regression());
    assert_eq!(setting(&err), "Schedule::Exponential.rate");
}

#[test]
fn adam_with_beta1_of_1_or_eps_of_0_is_rejected() {
    let (err, unchanged) = fails(Fit::new(Adam { beta1: 1.0, ..Adam::new(1e-3) }, MeanSquaredError), &regression());
    assert_eq!(
        err,
        TrainError::InvalidSetting(SettingError { setting: "Adam.beta1", value: 1.0, expected: "a number in [0, 1)" })
    );
    assert!(unchanged);
    assert_eq!(err.to_string(), "invalid setting: Adam.beta1 is 1, expected a number in [0, 1)");
    let (err, _) = fails(Fit::new(Adam { beta2: 1.5, ..Adam::new(1e-3) }, MeanSquaredError), &regression());
    assert_eq!(setting(&err), "Adam.beta2");
    // With zero gradients, eps = 0 made every update 0 / 0.
    let (err, unchanged) = fails(Fit::new(Adam { eps: 0.0, ..Adam::new(1e-3) }, MeanSquaredError), &regression());
    assert_eq!(setting(&err), "Adam.eps");
    assert!(unchanged);
    let (err, _) = fails(Fit::new(AdamW::new(1e-3, f32::NAN), MeanSquaredError), &regression());
    assert_eq!(setting(&err), "AdamW.weight_decay");
}

#[test]
fn penalties_clipping_and_constraints_are_checked() {
    let sgd = || Fit::new(Sgd::new(0.1), MeanSquaredError);
    let (err, unchanged) = fails(sgd().penalty(Penalty::l2(f32::NAN)), &regression());
    assert_eq!(setting(&err), "Penalty.l2");
    assert!(unchanged);
    let (err, _) = fails(sgd().penalty(Penalty::l1(-1.0)), &regression());
    assert_eq!(setting(&err), "Penalty.l1");
    // These two used to panic inside `clamp`.
    let (err, _) = fails(sgd().clip(GradClip::Value(-1.0)), &regression());
    assert_eq!(setting(&err), "GradClip::Value");
    let (err, _) = fails(sgd().constraint(Select::All, Constraint::Clip { min: 1.0, max: 0.0 }), &regression());
    assert_eq!(setting(&err), "Constraint::Clip.max");
    let (err, _) = fails(sgd().clip(GradClip::GlobalNorm(f32::NAN)), &regression());
    assert_eq!(setting(&err), "GradClip::GlobalNorm");
}

#[test]
fn a_validation_split_of_nan_or_5_is_rejected() {
    for share in [f32::NAN, 5.0, 1.0, -0.5] {
        let (err, unchanged) = fails(Fit::new(Sgd::new(0.1), MeanSquaredError).validation_split(share), &regression());
        assert_eq!(setting(&err), "validation_split", "{share}");
        assert!(unchanged);
    }
    let mut model = Model::<Small>::new(3);
    let mut fit = Fit::new(Sgd::new(0.1), MeanSquaredError).epochs(1).validation_split(0.25);
    assert!(fit.run(&mut model, &regression(), None).unwrap().last().unwrap().val_loss.is_some());
}

#[test]
fn a_penalty_that_overflows_the_loss_stops_training_before_the_step() {
    // The data loss is small; the penalty alone makes the loss infinite.
    let fit = Fit::new(Sgd::new(0.1), MeanSquaredError).penalty(Penalty::l2(f32::MAX).on(Select::All));
    let (err, unchanged) = fails(fit, &regression());
    match err {
        TrainError::NonFiniteLoss { epoch: 1, batch: 1, loss } => assert_eq!(loss, f32::INFINITY),
        other => panic!("expected NonFiniteLoss, got {other:?}"),
    }
    assert!(unchanged);
}

#[test]
fn a_step_that_overflows_a_weight_is_undone() {
    // The output bias's gradient is about -200: lr * gradient exceeds f32::MAX, so the
    // first step would make it infinite.
    let (err, unchanged) = fails(Fit::new(Sgd::new(f32::MAX), MeanSquaredError).batch_size(8), &data([100.0; 8]));
    assert_eq!(err, TrainError::NonFiniteWeights { epoch: 1, batch: 1 });
    assert!(unchanged);
    assert!(err.to_string().contains("epoch 1, batch 1"), "{err}");
}

/// SGD that writes NaN into the parameters at its third step: stands for any update
/// gone wrong.
#[derive(Clone, Copy, Debug)]
struct NanAtThirdStep;

impl Optimizer for NanAtThirdStep {
    const STATE_PER_PARAM: usize = 1;
    fn learning_rate(&self) -> f32 {
        0.01
    }
    fn set_learning_rate(&mut self, _: f32) {}
    fn update(&self, step: u64, params: &mut [f32], grads: &[f32], state: &mut [f32]) {
        for ((p, g), s) in params.iter_mut().zip(grads).zip(state.iter_mut()) {
            *s += 1.0;
            *p = if step == 3 { f32::NAN } else { *p - 0.01 * g };
        }
    }
}

#[test]
fn the_weights_and_optimizer_state_of_the_last_finite_step_are_restored() {
    let train = regression();
    // The reference: two steps (batches of 4, no shuffling) of the same optimizer.
    let mut reference = Model::<Small>::new(3);
    let mut fit = Fit::new(NanAtThirdStep, MeanSquaredError).batch_size(4).shuffle(false).epochs(1);
    fit.run(&mut reference, &train, None).unwrap();
    assert_eq!(fit.optimizer.steps(), 2);

    let mut model = Model::<Small>::new(3);
    let mut fit = Fit::new(NanAtThirdStep, MeanSquaredError).batch_size(4).shuffle(false).epochs(3);
    let err = fit.run(&mut model, &train, None).unwrap_err();
    assert_eq!(err, TrainError::NonFiniteWeights { epoch: 2, batch: 1 });
    assert_eq!(model.state(), reference.state());
    assert!(model.params().iter().all(|p| p.is_finite()));
    assert_eq!(fit.optimizer.steps(), 2);
    assert!(fit.optimizer.state().iter().all(|&s| s == 2.0));
}

#[test]
fn a_schedule_that_overflows_is_an_error_naming_the_batch() {
    let decay = Schedule::Exponential { initial: 1.0, rate: 1e30, steps: 1 };
    // Frozen weights keep the loss finite while the rate grows.
    let mut fit = Fit::new(Sgd::new(0.0), MeanSquaredError).schedule(decay).freeze(Select::All).batch_size(8).epochs(5);
    let mut model = Model::<Small>::new(3);
    let err = fit.run(&mut model, &regression(), None).unwrap_err();
    // Step 2 (from 0) asks for 1e60, which is infinite in f32: epoch 3.
    assert!(matches!(err, TrainError::ScheduledRate { epoch: 3, batch: 1, rate } if rate == f32::INFINITY), "{err:?}");
}

#[test]
fn early_stopping_on_a_misspelled_or_absent_series_is_an_error() {
    let sgd = || Fit::new(Sgd::new(0.1), MeanSquaredError).metrics(&[Metric::MeanAbsoluteError]);
    let (err, unchanged) = fails(sgd().early_stopping(EarlyStopping::new("val_los", Mode::Min, 2)), &regression());
    match &err {
        TrainError::UnknownMonitor { setting: "early_stopping", name: "val_los", available } => {
            assert_eq!(available, &["loss", "mae"]);
        }
        other => panic!("expected UnknownMonitor, got {other:?}"),
    }
    assert!(unchanged);
    assert_eq!(
        err.to_string(),
        "early_stopping monitors `val_los`, which this training does not produce; it produces `loss`, `mae`"
    );
    // `val_loss` needs validation data.
    let (err, _) = fails(sgd().early_stopping(EarlyStopping::new("val_loss", Mode::Min, 2)), &regression());
    assert!(matches!(err, TrainError::UnknownMonitor { name: "val_loss", .. }), "{err:?}");
    let plateau = ReduceOnPlateau::new("accuracy", Mode::Max, 0.5, 2);
    let (err, _) = fails(sgd().reduce_on_plateau(plateau), &regression());
    assert!(matches!(err, TrainError::UnknownMonitor { setting: "reduce_on_plateau", .. }), "{err:?}");
    let (err, _) = fails(sgd().reduce_on_plateau(ReduceOnPlateau::new("loss", Mode::Min, 2.0, 2)), &regression());
    assert_eq!(setting(&err), "ReduceOnPlateau.factor");

    // Spelled right, with validation data: trains.
    let mut model = Model::<Small>::new(3);
    let mut fit = sgd().validation_split(0.25).early_stopping(EarlyStopping::new("val_mae", Mode::Min, 2)).epochs(2);
    assert_eq!(fit.run(&mut model, &regression(), None).unwrap().epochs.len(), 2);
}

#[test]
fn binary_cross_entropy_targets_must_be_probabilities() {
    for (bad, at) in [(1.5, 2), (-0.25, 0), (2.0, 7)] {
        let mut targets = [0.0, 1.0, 0.5, 1.0, 0.0, 0.25, 1.0, 0.0];
        targets[at] = bad;
        let (err, unchanged) = fails(Fit::new(Sgd::new(0.1), BinaryCrossEntropy::from_logits()), &data(targets));
        assert_eq!(err, TrainError::BadTarget { sample: at, error: TargetError::NotAProbability { value: bad } });
        assert!(unchanged);
        assert_eq!(
            err.to_string(),
            format!("target of sample {at}: target value {bad} is not a probability in [0, 1]")
        );
    }
    let mut model = Model::<Small>::new(3);
    let mut fit = Fit::new(Sgd::new(0.1), BinaryCrossEntropy::new()).epochs(1);
    assert!(fit.run(&mut model, &data([0.0, 1.0, 0.5, 1.0, 0.0, 0.25, 1.0, 0.0]), None).is_ok());
}

#[test]
fn predict_rejects_a_partial_sample() {
    let model = Model::<Small>::new(3);
    assert_eq!(model.predict(&[0.5; 5]), Err(BatchLenError { sample: 2, found: 5 }));
    assert_eq!(model.predict(&[0.5; 1]), Err(BatchLenError { sample: 2, found: 1 }));
    assert_eq!(model.predict(&[]).unwrap(), Vec::<f32>::new());
    let two = model.predict(&[0.5; 4]).unwrap();
    assert_eq!(two.len(), 2);
    assert_eq!(two[0].to_bits(), two[1].to_bits());
    assert_eq!(
        BatchLenError { sample: 2, found: 5 }.to_string(),
        "the batch holds 5 values, not a whole number of samples of 2 values"
    );
}

#[test]
fn optimizer_state_of_the_wrong_length_is_rejected() {
    network! {
        /// 65 parameters: 6 * 8 + 8, then 8 + 1.
        pub struct Net65: [6] -> [1] {
            hidden: Dense { units: 8 },
            out: Dense { units: 1 },
        }
    }
    assert_eq!(Net65::PARAMS, 65);
    let mut adam = OptimizerState::new(Adam::new(1e-3));
    let err = adam.restore(1000, &[0.5; 7], Net65::PARAMS).unwrap_err();
    assert_eq!(err, OptimizerStateError { step: 1000, expected: 130, found: 7 });
    assert_eq!((adam.steps(), adam.state().len()), (0, 0));
    // No state with a step count: the moments would restart from zero.
    assert!(adam.restore(1000, &[], Net65::PARAMS).is_err());
    adam.restore(0, &[], Net65::PARAMS).unwrap();
    adam.restore(1000, &[0.5; 130], Net65::PARAMS).unwrap();
    assert_eq!((adam.steps(), adam.state().len()), (1000, 130));
    let mut sgd = OptimizerState::new(Sgd::momentum(0.1, 0.9));
    assert!(sgd.restore(5, &[0.5; 130], Net65::PARAMS).is_err());
    sgd.restore(5, &[0.5; 65], Net65::PARAMS).unwrap();

    // Through a checkpoint.
    let model = Model::<Net65>::new(1);
    let checkpoint = Checkpoint {
        epoch: 3,
        optimizer_step: 1000,
        optimizer_state: &[0.5f32; 7][..],
        seed: 1,
        metadata: BTreeMap::new(),
    };
    let bytes = checkpoint.to_bytes(&model).unwrap();
    let mut loaded_model = Model::<Net65>::zeros();
    let loaded = Checkpoint::from_bytes(&mut loaded_model, &bytes).unwrap();
    let mut resumed = OptimizerState::new(Adam::new(1e-3));
    let err = resumed.restore(loaded.optimizer_step, &loaded.optimizer_state, Net65::PARAMS).unwrap_err();
    assert_eq!(err.found, 7);
}

#[test]
fn checkpoint_counters_must_be_written_in_plain_digits() {
    let model = Model::<Classes>::new(1);
    let checkpoint =
        Checkpoint { epoch: 15, optimizer_step: 0, optimizer_state: &[][..], seed: 1, metadata: BTreeMap::new() };
    let bytes = checkpoint.to_bytes(&model).unwrap();
    let mut target = Model::<Classes>::zeros();
    assert_eq!(Checkpoint::from_bytes(&mut target, &bytes).unwrap().epoch, 15);
    let written = br#""__checkpoint.epoch":"15""#;
    let at = bytes.windows(written.len()).position(|w| w == written).expect("the epoch in the header");
    for spelling in ["+5", "05", " 5", "5 ", "1_", "-0"] {
        let mut edited = bytes.clone();
        edited[at + written.len() - 3..at + written.len() - 1].copy_from_slice(spelling.as_bytes());
        let mut target = Model::<Classes>::zeros();
        match Checkpoint::from_bytes(&mut target, &edited) {
            Err(LoadError::NotACheckpoint { key, found, .. }) => {
                assert_eq!(key, "__checkpoint.epoch");
                assert_eq!(found, Some(format!("`{spelling}`")));
            }
            other => panic!("{spelling:?}: expected NotACheckpoint, got {other:?}"),
        }
        assert!(target.state().iter().all(|&v| v == 0.0), "the model is untouched");
    }
}
