//! One thread and two give the same bits for an MLP's training steps with Adam: the
//! batch forward (split by samples), the parameter and input gradients (split by rows
//! or columns) and Adam's update (split by blocks of parameters) are computed in child
//! processes of this test binary with `MATMUL_NUM_THREADS` 1 and 2, and the loss and
//! the parameters after three steps compared bit for bit. The layers and the batch are
//! large enough for every one of these to be split (`gemm::PARALLEL_MIN_FLOPS`
//! multiply-adds, `kernels::optim::PARALLEL_MIN_PARAMS` parameters) with the
//! `threading` feature (`cargo test --workspace` enables it through `nn-bench`; alone,
//! `cargo test --test training --features nn-core/threading`); without it both children
//! run on one thread.
use nn_core::prelude::*;

use crate::thread_children;

network! {
    /// 300-256-256-10, ReLU: at batch 64, each hidden layer's products at least 2^22
    /// multiply-adds, 145 000 parameters.
    pub struct ThreadedMlp: [300] -> [10] {
        fc1: Dense { units: 256, activation: Relu },
        fc2: Dense { units: 256, activation: Relu },
        logits: Dense { units: 10 },
    }
}

/// The child's marker: set, the ignored test prints its outputs.
const CHILD: &str = "NN_MLP_THREADS_CHILD";

/// The losses of three steps on a batch of 64 samples (one input negative zero) and
/// the parameters after them.
fn outputs() -> Vec<f32> {
    let batch = 64;
    let mut model = Model::<ThreadedMlp>::new(3);
    let mut ws = Workspace::<ThreadedMlp>::new();
    let mut opt = OptimizerState::new(Adam::new(1e-3));
    let mut rng = Rng::new(4);
    let mut x: Vec<f32> = (0..batch * 300).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
    x[7] = -0.0;
    let t: Vec<f32> = (0..batch).map(|i| (i % 10) as f32).collect();
    let loss = SparseCategoricalCrossEntropy::from_logits();
    let mut losses = Vec::new();
    for _ in 0..3 {
        ws.zero_grads();
        model.forward_train(&mut ws, &x, &mut rng);
        losses.push(ws.loss(&loss, &t));
        model.backward(&mut ws, &x, None);
        opt.step(model.params_mut(), ws.grads());
    }
    [losses, model.params().to_vec()].concat()
}

/// Run by [`one_and_two_threads_give_the_same_bits`] in a child process: prints the
/// outputs' bits.
#[test]
#[ignore = "a child process of one_and_two_threads_give_the_same_bits"]
fn mlp_outputs_under_threads() {
    if !thread_children::is_child(CHILD) {
        return;
    }
    let values = outputs();
    assert_eq!(values.len(), 3 + ThreadedMlp::PARAMS, "outputs");
    // (A line of its own after the test's name, which libtest prints first.)
    println!("outputs");
    thread_children::print_bits("losses and parameters", &values);
}

#[test]
fn one_and_two_threads_give_the_same_bits() {
    thread_children::assert_one_and_two_threads_agree("mlp_threads::mlp_outputs_under_threads", CHILD, 1);
}
