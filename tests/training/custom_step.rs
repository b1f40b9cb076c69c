//! A training step of the caller's own (`TrainStep`) inside `fit`'s loop
//! (`CustomFit`), and the pieces such a step uses: `Learner` (a model with its own
//! optimizer) and the gradient with respect to the input (`Model::input_grad`).
use std::sync::{Arc, Mutex};

use nn_core::layer::Frozen;
use nn_core::prelude::*;
use nn_core::report::{BatchLog, Observer};
use nn_core::train::{Batch, CustomFit, History, Learner, Mode, Schedule, StepCtx, TrainError, TrainStep};
use nn_core::{BackwardCtx, TrainCtx};

use crate::gradcheck::{central_differences_f32, uniform, weighted_sum};

network! {
    /// Smooth everywhere (no kinks), so central differences are exact to O(h^2).
    pub struct Critic: [1, 4, 4] -> [2] {
        conv: Conv2d { filters: 3, kernel: 3, stride: 1, padding: 1 },
        act: Tanh,
        flat: Flatten,
        hidden: Dense { units: 4, activation: Tanh },
        out: Dense { units: 2 },
    }
}

const BATCH: usize = 3;
const IN: usize = 16;

/// `Model::input_grad` and both `Learner` backwards against central differences of
/// the weighted sum of the outputs, and against the layer's own backward called with
/// raw slices: the same input gradient bit for bit, the parameter gradients untouched
/// by `input_grad`.
#[test]
fn input_gradient_matches_finite_differences_and_the_raw_backward() {
    let mut rng = Rng::new(5);
    let x = uniform(&mut rng, BATCH * IN, -1.0, 1.0);
    let upstream = uniform(&mut rng, BATCH * 2, -1.0, 1.0);
    let model = Model::<Critic>::new(3);
    let params = model.params().to_vec();

    // The raw path: the generated methods with their caches and scratch.
    let mut y = vec![0.0; BATCH * 2];
    let mut cache = vec![0.0; BATCH * <Critic as Layer>::CACHE];
    let mut scratch = vec![0.0; BATCH * <Critic as Layer>::SCRATCH];
    let cx = TrainCtx {
        params: &params,
        buffers: &mut [],
        cache: &mut cache,
        scratch: &mut scratch,
        rng: &mut Rng::new(0),
        training: true,
    };
    Critic.forward_train(&x, &mut y, cx);
    let (mut dy, mut raw_dx, mut raw_grads) = (upstream.clone(), vec![0.0; x.len()], vec![0.0; params.len()]);
    let cx = BackwardCtx {
        params: &params,
        cache: &cache,
        grads: &mut raw_grads,
        frozen: Frozen::NONE,
        scratch: &mut scratch,
    };
    Critic.backward(&x, &y, &mut dy, Some(&mut raw_dx), cx);

    // `Model::input_grad`: the same values, no parameter gradient.
    let mut model = model;
    let mut ws = Workspace::<Critic>::new();
    model.forward_train(&mut ws, &x, &mut Rng::new(0));
    ws.output_grad_mut().copy_from_slice(&upstream);
    let mut dx = vec![0.0; x.len()];
    model.input_grad(&mut ws, &x, &mut dx);
    assert_eq!(dx, raw_dx);
    assert!(ws.grads().iter().all(|&g| g == 0.0));

    // `Learner`: input gradient alone, then with the parameter gradients.
    let mut learner = Learner::new(model, Sgd::new(0.1));
    learner.zero_grads();
    learner.forward_train(&x, &mut Rng::new(0));
    learner.set_output_grad(&upstream);
    assert_eq!(learner.input_grad(&x), &raw_dx[..]);
    assert!(learner.workspace.grads().iter().all(|&g| g == 0.0));
    learner.forward_train(&x, &mut Rng::new(0));
    learner.set_output_grad(&upstream);
    assert_eq!(learner.backward_with_input_grad(&x), &raw_dx[..]);
    assert_eq!(learner.workspace.grads(), &raw_grads[..]);

    // Central differences of sum(upstream * f(x)) in the input.
    let loss_at = |x: &[f32]| {
        let mut y = vec![0.0; BATCH * 2];
        let mut scratch = vec![0.0; BATCH * <Critic as Layer>::SCRATCH];
        Critic.forward(nn_core::Weights::new(&params, &[]), x, &mut y, &mut scratch);
        (weighted_sum(&upstream, &y), Vec::new())
    };
    let numeric = central_differences_f32(&x, 1e-2, loss_at);
    for (i, (a, n)) in dx.iter().zip(&numeric).enumerate() {
        let n = n.expect("tanh has no kink");
        assert!((*a as f64 - n).abs() < 1e-3 * (1.0 + n.abs()), "input {i}: {a} vs {n}");
    }
}

network! {
    pub struct Net: [3] -> [2] {
        hidden: Dense { units: 5, activation: Tanh },
        out: Dense { units: 2 },
    }
}

/// `Fit`'s own step written as a `TrainStep`.
struct PlainStep(Learner<Net, Adam>);

impl TrainStep for PlainStep {
    fn names(&self) -> &[&'static str] {
        &["mse"]
    }

    fn train_step(&mut self, cx: &mut StepCtx<'_>, batch: Batch<'_>, values: &mut [f32]) -> Result<(), TrainError> {
        let net = &mut self.0;
        net.zero_grads();
        net.forward_train(batch.inputs, cx.rng());
        values[0] = net.loss(&MeanSquaredError, batch.targets);
        net.backward(batch.inputs);
        net.step();
        Ok(())
    }

    fn visit_state(&mut self, f: &mut dyn FnMut(&mut [f32])) {
        f(self.0.model.state_mut());
    }

    fn test_names(&self) -> &[&'static str] {
        &["mse"]
    }

    /// `Fit`'s validation: inference on the batch, the loss without its gradient.
    fn test_step(&mut self, batch: Batch<'_>, values: &mut [f32]) -> Result<(), TrainError> {
        let y = self.0.predict(batch.inputs).expect("whole samples");
        values[0] = MeanSquaredError.compute(&y, batch.targets, 2, None);
        Ok(())
    }

    fn learning_rate(&self) -> Option<f32> {
        Some(self.0.learning_rate())
    }

    fn set_learning_rate(&mut self, rate: f32) {
        self.0.set_learning_rate(rate);
    }
}

fn data(samples: usize) -> Dataset {
    let mut rng = Rng::new(2);
    Dataset::new(uniform(&mut rng, samples * 3, -1.0, 1.0), 3, uniform(&mut rng, samples * 2, -1.0, 1.0), 2).unwrap()
}

/// The same shuffled batches, the same random source, the same arithmetic: a custom
/// step that does what `Fit::step` does ends with the same weights and losses.
#[test]
fn a_custom_step_reproducing_fit_gives_identical_weights_and_losses() {
    let data = data(10);
    let mut by_fit = Model::<Net>::new(1);
    let history = Fit::new(Adam::new(0.01), MeanSquaredError)
        .epochs(4)
        .batch_size(4)
        .seed(7)
        .run(&mut by_fit, &data, None)
        .unwrap();

    let mut step = PlainStep(Learner::new(Model::new(1), Adam::new(0.01)));
    let custom = CustomFit::new().epochs(4).batch_size(4).seed(7).run(&mut step, &data, None).unwrap();
    assert_eq!(step.0.model.params(), by_fit.params());
    assert_eq!(custom.series("loss"), history.series("loss"));
    assert_eq!(custom.series("mse"), history.series("loss"));
    assert_eq!(step.0.optimizer.steps(), 12);
}

/// With validation data, a schedule and early stopping on the validation loss: the
/// same weights (those of the best epoch, restored), the same training, validation and
/// learning-rate series, the same stopping epoch as `Fit`.
#[test]
fn a_custom_step_reproducing_fit_validates_schedules_and_stops_as_fit() {
    let (train, validation) = (data(12), data(30).select(&(12..30).collect::<Vec<_>>()));
    let schedule = Schedule::Exponential { initial: 0.05, rate: 0.5, steps: 6 };
    let early = || EarlyStopping::new("val_loss", Mode::Min, 3);
    let mut by_fit = Model::<Net>::new(3);
    let mut fit = Fit::new(Adam::new(0.01), MeanSquaredError)
        .epochs(60)
        .batch_size(5)
        .seed(2)
        .schedule(schedule)
        .early_stopping(early());
    let history = fit.run(&mut by_fit, &train, Some(&validation)).unwrap();

    let mut step = PlainStep(Learner::new(Model::new(3), Adam::new(0.01)));
    let mut custom = CustomFit::new().epochs(60).batch_size(5).seed(2).schedule(schedule).early_stopping(early());
    let custom_history = custom.run(&mut step, &train, Some(&validation)).unwrap();

    let stopped = history.epochs.len();
    assert!(stopped < 60, "early stopping did not stop");
    assert_eq!(custom_history.epochs.len(), stopped);
    let best = fit.early_stopping_state().unwrap().best_epoch();
    assert_eq!(custom.early_stopping_state().unwrap().best_epoch(), best);
    assert_eq!(step.0.model.params(), by_fit.params());
    for name in ["loss", "val_loss", "lr"] {
        assert_eq!(custom_history.series(name), history.series(name), "{name}");
    }
    assert_eq!(custom_history.series("val_mse"), history.series("val_loss"));
    // Three batches an epoch: the rate of each epoch's last step.
    let rates: Vec<f32> = (0..3).map(|e| schedule.rate(3 * e + 2, e)).collect();
    assert_eq!(custom_history.series("lr")[..3], rates);
}

/// Reduce-on-plateau on the validation loss sets the same rates as `Fit`'s.
#[test]
fn reduce_on_plateau_sets_the_rates_fit_sets() {
    let (train, validation) = (data(12), data(30).select(&(12..30).collect::<Vec<_>>()));
    let plateau = || ReduceOnPlateau::new("val_loss", Mode::Min, 0.5, 2);
    let mut by_fit = Model::<Net>::new(4);
    let history = Fit::new(Adam::new(0.05), MeanSquaredError)
        .epochs(30)
        .batch_size(4)
        .reduce_on_plateau(plateau())
        .run(&mut by_fit, &train, Some(&validation))
        .unwrap();
    let mut step = PlainStep(Learner::new(Model::new(4), Adam::new(0.05)));
    let custom = CustomFit::new()
        .epochs(30)
        .batch_size(4)
        .reduce_on_plateau(plateau())
        .run(&mut step, &train, Some(&validation))
        .unwrap();
    let rates = history.series("lr");
    assert!(rates[29] < 0.05, "the rate was never reduced: {rates:?}");
    assert_eq!(custom.series("lr"), rates);
    assert_eq!(custom.series("val_loss"), history.series("val_loss"));
    assert_eq!(step.0.model.params(), by_fit.params());
}

/// Settings training cannot use are typed errors before any step.
#[test]
fn nonsense_settings_are_typed_errors_before_any_step() {
    let (train, validation) = (data(8), data(4));
    let fresh = || PlainStep(Learner::new(Model::new(1), Adam::new(0.01)));
    let untouched = |step: &PlainStep| step.0.model.params() == Model::<Net>::new(1).params();
    let setting = |e: TrainError| match e {
        TrainError::InvalidSetting(e) => e.setting,
        other => panic!("{other:?}"),
    };

    let mut step = fresh();
    let err = CustomFit::new().schedule(Schedule::Constant(f32::NAN)).run(&mut step, &train, None).unwrap_err();
    assert_eq!(setting(err), "Schedule::Constant");
    let plateau = ReduceOnPlateau::new("loss", Mode::Min, 1.5, 2);
    let err = CustomFit::new().reduce_on_plateau(plateau).run(&mut step, &train, None).unwrap_err();
    assert_eq!(setting(err), "ReduceOnPlateau.factor");
    let early = EarlyStopping::new("loss", Mode::Min, 2).min_delta(-1.0);
    let err = CustomFit::new().early_stopping(early).run(&mut step, &train, None).unwrap_err();
    assert_eq!(setting(err), "EarlyStopping.min_delta");
    assert!(untouched(&step));

    // A step without a learning rate cannot be scheduled, one without a test step
    // cannot validate.
    let err = CustomFit::new().schedule(Schedule::Constant(0.1)).run(&mut Diverging, &train, None).unwrap_err();
    assert_eq!(setting(err), "TrainStep::learning_rate");
    let err = CustomFit::new().run(&mut Diverging, &train, Some(&validation)).unwrap_err();
    assert_eq!(setting(err), "TrainStep::test_names");

    // Validation data of other sample sizes, or none to monitor.
    let narrow = Dataset::new(vec![0.0; 8], 2, vec![0.0; 8], 2).unwrap();
    let err = CustomFit::new().run(&mut step, &train, Some(&narrow)).unwrap_err();
    assert_eq!(err, TrainError::InputWidth { expected: 3, found: 2 });
    let early = || EarlyStopping::new("val_mse", Mode::Min, 2);
    let err = CustomFit::new().early_stopping(early()).run(&mut step, &train, None).unwrap_err();
    let available = vec!["loss".to_string(), "mse".into()];
    assert_eq!(err, TrainError::UnknownMonitor { setting: "early_stopping", name: "val_mse", available });
    assert!(untouched(&step));
    let history = CustomFit::new().epochs(2).early_stopping(early()).run(&mut step, &train, Some(&validation)).unwrap();
    assert_eq!(history.series("val_mse").len(), 2);

    // A schedule whose rate overflows stops at the step it would have set.
    let exploding = Schedule::Exponential { initial: 1e10, rate: 1e30, steps: 1 };
    let mut step = fresh();
    let err = CustomFit::new().batch_size(4).schedule(exploding).run(&mut step, &train, None).unwrap_err();
    assert_eq!(err, TrainError::ScheduledRate { epoch: 1, batch: 2, rate: f32::INFINITY });
}

/// A step that reports where it is: `a` the batch number, `b` ten times the epoch, `c`
/// the batch's sample count.
struct Positions {
    seen: Vec<(usize, usize, usize)>,
}

impl TrainStep for Positions {
    fn names(&self) -> &[&'static str] {
        &["a", "b", "c"]
    }

    fn train_step(&mut self, cx: &mut StepCtx<'_>, batch: Batch<'_>, values: &mut [f32]) -> Result<(), TrainError> {
        assert_eq!((batch.inputs.len(), batch.targets.len()), (batch.samples * 3, batch.samples * 2));
        self.seen.push((cx.epoch(), cx.batch(), batch.samples));
        values.copy_from_slice(&[cx.batch() as f32, 10.0 * cx.epoch() as f32, batch.samples as f32]);
        Ok(())
    }
}

/// Records what the observers are told.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<String>>>);

impl Observer for Recorder {
    fn batch_end(&mut self, log: &BatchLog<'_>) {
        let metrics: Vec<String> = log.metrics().map(|(n, v)| format!("{n}={v}")).collect();
        self.0.lock().unwrap().push(format!("{}.{} loss={} {}", log.epoch, log.batch, log.loss, metrics.join(" ")));
    }

    fn epoch_end(&mut self, history: &History) {
        self.0.lock().unwrap().push(format!("end {}", history.epochs.len()));
    }
}

/// A `Positions` whose test step reports `n` the batch's samples and `x` its first
/// input value.
struct Validated(Positions);

impl TrainStep for Validated {
    fn names(&self) -> &[&'static str] {
        self.0.names()
    }

    fn train_step(&mut self, cx: &mut StepCtx<'_>, batch: Batch<'_>, values: &mut [f32]) -> Result<(), TrainError> {
        self.0.train_step(cx, batch, values)
    }

    fn test_names(&self) -> &[&'static str] {
        &["n", "x"]
    }

    fn test_step(&mut self, batch: Batch<'_>, values: &mut [f32]) -> Result<(), TrainError> {
        values.copy_from_slice(&[batch.samples as f32, batch.inputs[0]]);
        Ok(())
    }
}

/// Validation batches in order, of the training batch size; each test value is
/// weighted by its batch's samples, the first is also the validation loss.
#[test]
fn validation_values_are_means_over_the_samples() {
    let validation = Dataset::new((0..30).map(|v| v as f32).collect(), 3, vec![0.0; 20], 2).unwrap();
    let mut step = Validated(Positions { seen: Vec::new() });
    let history = CustomFit::new().epochs(2).batch_size(4).run(&mut step, &data(10), Some(&validation)).unwrap();
    // Batches of 4, 4 and 2 samples starting at samples 0, 4 and 8 (first inputs 0, 12, 24).
    let n = (4.0 * 4.0 + 4.0 * 4.0 + 2.0 * 2.0) / 10.0;
    let x = (4.0 * 0.0 + 4.0 * 12.0 + 2.0 * 24.0) / 10.0;
    assert_eq!(history.series("val_n"), [n, n]);
    assert_eq!(history.series("val_loss"), [n, n]);
    assert_eq!(history.series("val_x"), [x, x]);
    assert_eq!(history.series("a"), [2.0, 2.0]);
}

#[test]
fn history_and_observers_see_the_custom_values() {
    let recorder = Recorder::default();
    let mut fit = CustomFit::new().epochs(2).batch_size(4).observe(recorder.clone());
    let mut step = Positions { seen: Vec::new() };
    let history = fit.run(&mut step, &data(10), None).unwrap();
    // Batches of 4, 4 and 2 samples; the first value is the loss.
    assert_eq!(history.series("a"), [2.0, 2.0]);
    assert_eq!(history.series("loss"), [2.0, 2.0]);
    assert_eq!(history.series("b"), [10.0, 20.0]);
    assert_eq!(history.series("c"), [10.0 / 3.0, 10.0 / 3.0]);
    assert!(history.series("lr").iter().all(|r| r.is_nan()));
    let log = recorder.0.lock().unwrap().clone();
    assert_eq!(
        log[..4],
        ["1.1 loss=1 a=1 b=10 c=4", "1.2 loss=1.5 a=1.5 b=10 c=4", "1.3 loss=2 a=2 b=10 c=3.3333333", "end 1"]
    );

    // A second run goes on counting epochs; `drop_last` skips the batch of 2.
    fit.drop_last = true;
    fit.epochs = 1;
    let history = fit.run(&mut step, &data(10), None).unwrap();
    assert_eq!((history.series("b"), history.series("c")), (vec![30.0], vec![4.0]));
    assert_eq!(&step.seen[6..], [(3, 1, 4), (3, 2, 4)]);
    assert_eq!(fit.epochs_done(), 3);
}

/// A step whose loss grows after the second epoch: early stopping on one of its
/// names stops it and puts back the state of the best epoch.
struct Worsening {
    state: Vec<f32>,
}

impl TrainStep for Worsening {
    fn names(&self) -> &[&'static str] {
        &["d_loss", "g_loss"]
    }

    fn train_step(&mut self, cx: &mut StepCtx<'_>, _: Batch<'_>, values: &mut [f32]) -> Result<(), TrainError> {
        self.state[0] = cx.epoch() as f32;
        let g = (cx.epoch() as f32 - 2.0).abs();
        values.copy_from_slice(&[0.0, g]);
        Ok(())
    }

    fn visit_state(&mut self, f: &mut dyn FnMut(&mut [f32])) {
        f(&mut self.state);
    }
}

#[test]
fn early_stopping_monitors_a_custom_value_and_restores_the_best_state() {
    let mut fit = CustomFit::new().epochs(10).early_stopping(EarlyStopping::new("g_loss", Mode::Min, 2));
    let mut step = Worsening { state: vec![0.0] };
    let history = fit.run(&mut step, &data(4), None).unwrap();
    assert_eq!(history.series("g_loss"), [1.0, 0.0, 1.0, 2.0]);
    assert_eq!(step.state, [2.0]);

    let mut fit = CustomFit::new().early_stopping(EarlyStopping::new("val_g_loss", Mode::Min, 2));
    let err = fit.run(&mut step, &data(4), None).unwrap_err();
    let available = vec!["loss".to_string(), "d_loss".into(), "g_loss".into()];
    assert_eq!(err, TrainError::UnknownMonitor { setting: "early_stopping", name: "val_g_loss", available });
}

/// A step that breaks its state at epoch 2, batch 2: with a NaN value (`nan_value`)
/// or with a NaN weight and finite values.
struct Breaking {
    state: Vec<f32>,
    nan_value: bool,
}

impl TrainStep for Breaking {
    fn names(&self) -> &[&'static str] {
        &["loss"]
    }

    fn train_step(&mut self, cx: &mut StepCtx<'_>, _: Batch<'_>, values: &mut [f32]) -> Result<(), TrainError> {
        let at = (cx.epoch() * 10 + cx.batch()) as f32;
        let broken = (cx.epoch(), cx.batch()) == (2, 2);
        self.state.copy_from_slice(&[at, if broken && !self.nan_value { f32::NAN } else { at }]);
        values[0] = if broken && self.nan_value { f32::NAN } else { 1.0 };
        Ok(())
    }

    fn visit_state(&mut self, f: &mut dyn FnMut(&mut [f32])) {
        f(&mut self.state);
    }
}

/// As `Fit`: a NaN value or weight stops the run naming the batch, with the state of
/// before that step.
#[test]
fn a_non_finite_value_or_weight_puts_back_the_state_of_before_the_step() {
    let mut step = Breaking { state: vec![0.0; 2], nan_value: true };
    let err = CustomFit::new().batch_size(4).run(&mut step, &data(10), None).unwrap_err();
    assert!(matches!(err, TrainError::NonFiniteLoss { epoch: 2, batch: 2, loss } if loss.is_nan()));
    assert_eq!(step.state, [21.0, 21.0]);
    let mut step = Breaking { state: vec![0.0; 2], nan_value: false };
    let err = CustomFit::new().batch_size(4).run(&mut step, &data(10), None).unwrap_err();
    assert_eq!(err, TrainError::NonFiniteWeights { epoch: 2, batch: 2 });
    assert_eq!(step.state, [21.0, 21.0]);
}

/// A value that is NaN stops the run at that batch.
struct Diverging;

impl TrainStep for Diverging {
    fn names(&self) -> &[&'static str] {
        &["loss"]
    }

    fn train_step(&mut self, cx: &mut StepCtx<'_>, _: Batch<'_>, values: &mut [f32]) -> Result<(), TrainError> {
        values[0] = if cx.epoch() == 2 && cx.batch() == 3 { f32::INFINITY } else { 1.0 };
        Ok(())
    }
}

#[test]
fn a_non_finite_value_stops_the_run_naming_the_batch() {
    let err = CustomFit::new().batch_size(2).run(&mut Diverging, &data(10), None).unwrap_err();
    assert_eq!(err, TrainError::NonFiniteLoss { epoch: 2, batch: 3, loss: f32::INFINITY });
    assert_eq!(CustomFit::new().batch_size(0).run(&mut Diverging, &data(10), None), Err(TrainError::BatchSizeZero));
}
