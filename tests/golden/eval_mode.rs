//! Golden test of the run-time evaluation mode (`Model::eval`, PyTorch's
//! `model.eval()` with gradients enabled) against PyTorch: a network with a
//! `BatchNorm2d`, a `BatchNorm1d` and two `Dropout`s takes a training step in
//! evaluation mode. Its outputs, input gradient and parameter gradients are those of
//! the deterministic network (dropout the identity, batch norm on its running
//! statistics), the running statistics stay unchanged, and one epoch of `Fit` (one
//! full batch, SGD) moves the parameters as `torch.optim.SGD` does (fixture
//! `eval_mode_step`, group `eval_mode`, written by `tools/fixtures/generate.py`).
use crate::fixtures;

use fixtures::{assert_close, Fixture};
use nn_core::prelude::*;

/// f32 rounding of sums of a few dozen terms (see `tests/golden/basics.rs`).
const RTOL: f32 = 1e-5;
const ATOL: f32 = 1e-6;

network! {
    /// PyTorch's `EvalModeNet` of `tools/fixtures/generate.py`.
    pub struct EvalModeNet: [2, 3, 3] -> [3] {
        bn2: BatchNorm2d,
        flat: Flatten,
        drop1: Dropout { rate: 0.5 },
        fc: Dense { units: 5 },
        bn1: BatchNorm1d { momentum: 0.3 },
        tanh: Tanh,
        drop2: Dropout { rate: 0.25 },
        out: Dense { units: 3 },
    }
}

/// The model with the fixture's parameters (`param.*`) and buffers (`buffer.*`).
fn load(f: &Fixture) -> Model<EvalModeNet> {
    let mut model = Model::<EvalModeNet>::zeros();
    let mut state = vec![f32::NAN; model.state().len()];
    model.visit_tensors(&mut |t| {
        let key = if t.trainable { format!("param.{}", t.path) } else { format!("buffer.{}", t.path) };
        assert_eq!(f.shape(&key), t.shape, "shape of `{key}`");
        let at = if t.trainable { t.offset } else { EvalModeNet::PARAMS + t.offset };
        state[at..at + t.len].copy_from_slice(f.values(&key));
    });
    assert!(state.iter().all(|v| !v.is_nan()), "the fixture fills every tensor");
    model.state_mut().copy_from_slice(&state);
    model
}

/// Compares every trainable tensor of `values` (a parameter-sized array) with
/// `<prefix>.<name>`, and every buffer of `model` with `updated.<name>`.
fn check_tensors(model: &Model<EvalModeNet>, f: &Fixture, prefix: &str, values: &[f32]) {
    model.visit_tensors(&mut |t| {
        if t.trainable {
            let key = format!("{prefix}.{}", t.path);
            assert_close(&key, &values[t.offset..t.offset + t.len], f.values(&key), RTOL, ATOL);
        } else {
            let at = EvalModeNet::PARAMS + t.offset;
            let key = format!("updated.{}", t.path);
            assert_eq!(&model.state()[at..at + t.len], f.values(&key), "{key}: evaluation mode changed a buffer");
        }
    });
}

#[test]
fn a_training_step_in_eval_mode_matches_torch() {
    let f = Fixture::load("eval_mode_step");
    assert_eq!(f.meta("group"), "eval_mode");
    let (x, target) = (f.values("input"), f.values("target"));
    let batch = f.batch();

    // The step API: forward_train and backward in evaluation mode.
    let mut model = load(&f);
    assert!(model.is_training(), "a model starts in training mode");
    model.eval();
    assert!(!model.is_training());
    let mut ws = Workspace::<EvalModeNet>::new();
    let mut rng = Rng::new(5);
    let y = model.forward_train(&mut ws, x, &mut rng).to_vec();
    assert_close("output", &y, f.values("output"), RTOL, ATOL);
    assert_eq!(y, model.predict(x).unwrap(), "evaluation mode computes what inference computes");
    // dL/dy of the mean squared error over all `batch * 3` outputs.
    let n = (batch * 3) as f32;
    let dy: Vec<f32> = y.iter().zip(target).map(|(y, t)| 2.0 * (y - t) / n).collect();
    ws.output_grad_mut().copy_from_slice(&dy);
    ws.grads_mut().fill(0.0);
    let mut dx = vec![f32::NAN; x.len()];
    model.backward(&mut ws, x, Some(&mut dx));
    assert_close("grad_input", &dx, f.values("grad_input"), RTOL, ATOL);
    check_tensors(&model, &f, "grad", ws.grads());

    // `Fit` honours the mode: one epoch of one full batch is one SGD step.
    let mut model = load(&f);
    model.eval();
    let data = Dataset::new(x.to_vec(), 18, target.to_vec(), 3).unwrap();
    let lr = f.option_f32("sgd_lr");
    Fit::new(Sgd::new(lr), MeanSquaredError)
        .epochs(1)
        .batch_size(batch)
        .shuffle(false)
        .run(&mut model, &data, None)
        .unwrap();
    let params = model.params().to_vec();
    check_tensors(&model, &f, "sgd_step", &params);

    // Back in training mode, the same step uses the batch's statistics and moves them.
    let mut model = load(&f);
    model.eval().train();
    let before = model.buffers().to_vec();
    let y = model.forward_train(&mut ws, x, &mut rng).to_vec();
    assert_ne!(model.buffers(), &before[..], "training mode updates the running statistics");
    assert!(y.iter().zip(f.values("output")).any(|(a, b)| (a - b).abs() > 1e-3), "training mode differs");
}
