//! After warm-up, a training step and batch-1 inference allocate nothing: a counting
//! global allocator proves it.
use nn_core::prelude::*;

use crate::counting_alloc::allocations as allocations_during;

network! {
    /// The digits MLP with dropout.
    pub struct DigitMlp: [64] -> [10] {
        fc1: Dense { units: 64, activation: Relu },
        drop: Dropout { rate: 0.2 },
        fc2: Dense { units: 32, activation: Tanh },
        logits: Dense { units: 10 },
    }
}

/// Runs one warm-up training step of `model` (cross-entropy, Adam) on `x` and `t`, then
/// `steps` more, asserting that those allocate nothing and that every loss is finite.
pub(crate) fn train_without_allocating<L: Network>(
    model: &mut Model<L>,
    x: &[f32],
    t: &[f32],
    steps: usize,
    rng: &mut Rng,
) {
    let mut ws = Workspace::<L>::new();
    let mut opt = OptimizerState::new(Adam::new(1e-3));
    let loss = SparseCategoricalCrossEntropy::from_logits();
    let mut step = |model: &mut Model<L>, ws: &mut Workspace<L>, rng: &mut Rng| {
        ws.zero_grads();
        model.forward_train(ws, x, rng);
        let l = ws.loss(&loss, t);
        model.backward(ws, x, None);
        opt.step(model.params_mut(), ws.grads());
        l
    };
    step(model, &mut ws, rng); // warm-up: buffers and optimizer state
    let mut losses = Vec::with_capacity(steps);
    let n = allocations_during(|| {
        for _ in 0..steps {
            losses.push(step(model, &mut ws, rng));
        }
    });
    assert_eq!(n, 0, "training steps allocated {n} times");
    assert!(losses.iter().all(|l| l.is_finite()));
}

#[test]
fn training_step_and_inference_allocate_nothing_after_warm_up() {
    let batch = 32;
    let mut rng = Rng::new(1);
    let x: Vec<f32> = (0..batch * 64).map(|_| rng.uniform()).collect();
    let t: Vec<f32> = (0..batch).map(|i| (i % 10) as f32).collect();
    let mut model = Model::<DigitMlp>::new(3);
    train_without_allocating(&mut model, &x, &t, 10, &mut rng);
    let sample = Tensor::<Shape1<64>>::from_slice(&x[..64]).unwrap();
    let mut out = Tensor::<Shape1<10>>::zeros();
    let n = allocations_during(|| out = model.predict_one(&sample));
    assert_eq!(n, 0, "batch-1 inference allocated {n} times");
    assert!(out.iter().all(|v| v.is_finite()));
}
