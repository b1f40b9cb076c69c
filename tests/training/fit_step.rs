//! `Fit::step` is the step of `Fit::run`: the same batches stepped by hand give the
//! same parameters and losses bit for bit, frozen tensors and penalties included, and
//! a batch that does not fit the network is an error before anything changes.
use nn_core::prelude::*;
use nn_core::train::{Penalty, Select, TrainError};

network! {
    pub struct Net: [3] -> [2] {
        hidden: Dense { units: 5, activation: Tanh },
        out: Dense { units: 2 },
    }
}

fn fit() -> Fit<Net, AdamW, MeanSquaredError> {
    Fit::new(AdamW::new(0.01, 0.1), MeanSquaredError)
        .epochs(3)
        .batch_size(4)
        .shuffle(false)
        .freeze(Select::layer("hidden"))
        .penalty(Penalty::l2(1e-3))
}

#[test]
fn run_is_step_over_the_batches() {
    let mut rng = Rng::new(2);
    let x: Vec<f32> = (0..10 * 3).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
    let t: Vec<f32> = (0..10 * 2).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
    let data = Dataset::new(x.clone(), 3, t.clone(), 2).unwrap();

    let mut by_run = Model::<Net>::new(1);
    let history = fit().run(&mut by_run, &data, None).unwrap();

    let mut by_step = Model::<Net>::new(1);
    let hidden = by_step.params()[..3 * 5 + 5].to_vec();
    let mut stepper = fit();
    for epoch in 0..3 {
        let mut sum = 0.0f64;
        for start in (0..10).step_by(4) {
            let end = (start + 4).min(10);
            sum += stepper.step(&mut by_step, &x[start * 3..end * 3], &t[start * 2..end * 2]).unwrap() as f64;
        }
        assert_eq!(history.epochs[epoch].loss, (sum / 3.0) as f32);
    }
    assert_eq!(by_run.state(), by_step.state());
    assert_eq!(&by_step.params()[..hidden.len()], &hidden[..], "the frozen layer kept its weights");
    assert_ne!(&by_step.params()[hidden.len()..], &Model::<Net>::new(1).params()[hidden.len()..]);
}

#[test]
fn step_checks_its_batch() {
    let mut model = Model::<Net>::new(1);
    let before = model.state().to_vec();
    let mut fit = fit();
    assert_eq!(fit.step(&mut model, &[1.0, 2.0], &[0.0, 0.0]), Err(TrainError::InputWidth { expected: 3, found: 2 }));
    assert_eq!(fit.step(&mut model, &[1.0, 2.0, 3.0], &[0.0]), Err(TrainError::TargetWidth { expected: 2, found: 1 }));
    assert_eq!(
        fit.step(&mut model, &[1.0, f32::NAN, 3.0], &[0.0, 0.0]),
        Err(TrainError::NonFiniteInput { sample: 0, index: 1 })
    );
    assert_eq!(fit.step(&mut model, &[], &[]), Err(TrainError::EmptyDataset));
    assert_eq!(model.state(), &before[..]);
}
